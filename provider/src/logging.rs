//! Logs on stderr in hclog's JSON form, which go-plugin parses so that
//! Terraform shows each line at its level under `TF_LOG_PROVIDER`.
//!
//! The level comes from `TF_LOG_PROVIDER`, else `TF_LOG` (Terraform passes its
//! environment to the plugin). Nothing below `warn` is written by default.
//! Callers never pass secrets; the configuration layer redacts them before
//! anything here sees a value.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Off,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Off => "off",
        }
    }

    /// Parses Terraform's level words; `JSON` means trace, as in Terraform.
    pub fn parse(text: &str) -> Option<Level> {
        match text.trim().to_ascii_uppercase().as_str() {
            "TRACE" | "JSON" => Some(Level::Trace),
            "DEBUG" => Some(Level::Debug),
            "INFO" => Some(Level::Info),
            "WARN" => Some(Level::Warn),
            "ERROR" => Some(Level::Error),
            "OFF" => Some(Level::Off),
            _ => None,
        }
    }
}

static THRESHOLD: OnceLock<Level> = OnceLock::new();

fn threshold() -> Level {
    *THRESHOLD.get_or_init(|| {
        ["TF_LOG_PROVIDER", "TF_LOG"]
            .iter()
            .find_map(|var| std::env::var(var).ok().and_then(|v| Level::parse(&v)))
            .unwrap_or(Level::Warn)
    })
}

pub fn enabled(level: Level) -> bool {
    level != Level::Off && level >= threshold()
}

/// Writes one hclog JSON line with extra key/value fields.
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    if !enabled(level) {
        return;
    }
    let mut entry = serde_json::Map::new();
    entry.insert("@level".into(), level.name().into());
    entry.insert("@message".into(), message.into());
    entry.insert("@module".into(), "provider.terraform-provider-idis".into());
    entry.insert("@timestamp".into(), timestamp().into());
    for (key, value) in fields {
        entry.insert((*key).into(), (*value).into());
    }
    let line = serde_json::Value::Object(entry).to_string();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

pub fn trace(message: &str) {
    log(Level::Trace, message, &[]);
}
pub fn debug(message: &str) {
    log(Level::Debug, message, &[]);
}
pub fn info(message: &str) {
    log(Level::Info, message, &[]);
}
pub fn warn(message: &str) {
    log(Level::Warn, message, &[]);
}
pub fn error(message: &str) {
    log(Level::Error, message, &[]);
}

/// RFC 3339 UTC with microseconds, the form hclog writes.
fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_micros()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm), so no date crate is needed for a log timestamp.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_gregorian() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_414), (2025, 11, 22));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn terraform_level_words_parse() {
        assert_eq!(Level::parse("trace"), Some(Level::Trace));
        assert_eq!(Level::parse("JSON"), Some(Level::Trace));
        assert_eq!(Level::parse(" Warn "), Some(Level::Warn));
        assert_eq!(Level::parse("loud"), None);
    }
}
