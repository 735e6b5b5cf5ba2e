//! `terraform-provider-idis drill restore-check|failover|dr-promote
//! --environment NAME [--region REGION] [--instance-class CLASS]
//! [--backup-retention-days DAYS]`: the drills, and the DR promotion of a
//! region outage, for Terraform 1.11, which has no actions. Same code as the actions; AWS
//! settings from the standard environment (`AWS_REGION`, `AWS_PROFILE`,
//! `AWS_ENDPOINT_URL`, ...), as the provider block reads them when empty.
//! Progress goes to stderr, the result line to stdout; exit 0 when the
//! drill passed, 1 when it failed or refused, 2 on bad usage, 130 after
//! Ctrl-C (the temporary instance deleted first).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{dr_promote, drill, failover_drill, restore_check, settle, validate};
use crate::protocol::cty::Value;
use crate::protocol::diag::Severity;
use crate::protocol::server::ActionProgress;
use crate::provider::config::{Aws, ProviderConfig};

pub const USAGE: &str = "Usage: terraform-provider-idis drill restore-check|failover|dr-promote --environment NAME [--region REGION] [--instance-class CLASS (restore-check)] [--backup-retention-days DAYS (dr-promote)]";

/// The action and configuration a command line asks for.
pub fn parse(args: &[String]) -> Result<(&'static str, Value), String> {
    let mut it = args.iter();
    let type_name = match it.next().map(String::as_str) {
        Some("restore-check") => restore_check::TYPE_NAME,
        Some("failover") | Some("failover-drill") => failover_drill::TYPE_NAME,
        Some("dr-promote") => dr_promote::TYPE_NAME,
        Some(other) => {
            return Err(format!(
                "unknown drill {other:?}: use restore-check, failover or dr-promote"
            ))
        }
        None => return Err("which drill? use restore-check, failover or dr-promote".into()),
    };
    let mut config = Value::Object(BTreeMap::new());
    for attr in [
        "environment",
        "region",
        "instance_class",
        "backup_retention_days",
    ] {
        config.set_attr(attr, Value::Null);
    }
    while let Some(flag) = it.next() {
        let attr = match flag.as_str() {
            "--environment" => "environment",
            "--region" => "region",
            "--instance-class" if type_name == restore_check::TYPE_NAME => "instance_class",
            "--backup-retention-days" if type_name == dr_promote::TYPE_NAME => {
                "backup_retention_days"
            }
            other => return Err(format!("unknown option {other:?}")),
        };
        let Some(value) = it.next() else {
            return Err(format!("{flag} needs a value"));
        };
        let value = if attr == "backup_retention_days" {
            Value::int(
                value
                    .parse()
                    .map_err(|_| format!("{flag} takes a whole number of days, not {value:?}"))?,
            )
        } else {
            Value::string(value)
        };
        config.set_attr(attr, value);
    }
    if config.get_attr("environment").is_null() {
        return Err("--environment is required".into());
    }
    Ok((type_name, config))
}

/// Runs the command line's drill; the process exit code.
pub async fn main(args: &[String]) -> u8 {
    let (type_name, config) = match parse(args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("terraform-provider-idis drill: {e}\n{USAGE}");
            return 2;
        }
    };
    let problems = validate(type_name, &config);
    if problems.has_errors() {
        for d in &problems.0 {
            eprintln!("Error: {}: {}", d.summary, d.detail);
        }
        return 2;
    }
    let stop = CancellationToken::new();
    let aws = match Aws::connect(ProviderConfig::default(), &stop).await {
        Ok(aws) => Arc::new(aws),
        Err(d) => {
            for d in &d.0 {
                eprintln!("Error: {}: {}", d.summary, d.detail);
            }
            return 1;
        }
    };
    let interrupted = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: stopping the drill and cleaning up");
            interrupted.cancel();
        }
    });
    let outcome = drill(&aws, type_name, &config, ActionProgress::to_stderr(), &stop).await;
    settle(Duration::from_secs(60)).await;
    for d in &outcome.diagnostics.0 {
        eprintln!(
            "{}: {}: {}",
            if d.severity == Severity::Error {
                "Error"
            } else {
                "Warning"
            },
            d.summary,
            d.detail
        );
    }
    if let Some(line) = &outcome.line {
        println!("{line}");
    }
    if stop.is_cancelled() {
        130
    } else if outcome.diagnostics.has_errors() || outcome.line.is_none() {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn a_command_line_becomes_an_action_config() {
        let (t, c) = parse(&args("restore-check --environment production --region eu-west-1 --instance-class db.t4g.medium")).unwrap();
        assert_eq!(t, restore_check::TYPE_NAME);
        assert_eq!(c.get_attr("environment").as_str(), Some("production"));
        assert_eq!(c.get_attr("instance_class").as_str(), Some("db.t4g.medium"));
        let (t, c) = parse(&args("failover --environment staging")).unwrap();
        assert_eq!(t, failover_drill::TYPE_NAME);
        assert!(c.get_attr("region").is_null());
        let (t, c) = parse(&args(
            "dr-promote --environment p --region us-west-2 --backup-retention-days 30",
        ))
        .unwrap();
        assert_eq!(t, dr_promote::TYPE_NAME);
        assert_eq!(c.get_attr("backup_retention_days").as_i64(), Some(30));
        assert!(parse(&args(
            "dr-promote --environment p --backup-retention-days a week"
        ))
        .unwrap_err()
        .contains("whole number of days"));
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        assert!(parse(&args("restore-check"))
            .unwrap_err()
            .contains("--environment is required"));
        assert!(parse(&args("chaos --environment p"))
            .unwrap_err()
            .contains("unknown drill"));
        assert!(parse(&args(
            "failover --environment p --instance-class db.t4g.small"
        ))
        .unwrap_err()
        .contains("unknown option"));
        assert!(parse(&args("failover --environment"))
            .unwrap_err()
            .contains("needs a value"));
    }
}
