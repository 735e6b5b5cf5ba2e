//! cty values and types as they cross Terraform's plugin protocol (tfplugin5).
//!
//! Terraform sends every value as a msgpack `DynamicValue` in cty's wire format
//! (Terraform's `docs/plugin-protocol/object-wire-format.md`), raw state as cty
//! JSON, and schema types as cty type JSON. This module is the only place those
//! encodings live: the rest of the provider works with [`Value`] and [`Type`],
//! or with plain serde structs through [`from_value`] and [`to_value`].
//!
//! All decoders read untrusted bytes, so they never panic: input size is capped
//! at [`MAX_INPUT_BYTES`], nesting at [`MAX_DEPTH`], and no length read from the
//! input is trusted for allocation beyond the bytes that actually remain.
//!
//! Numbers follow cty's rule of never losing precision: integers that fit an
//! `i64` are [`Number::Int`], fractions exactly representable as `f64` are
//! [`Number::Float`], and everything else is kept as decimal text in
//! [`Number::Big`] (and goes back on the wire as a string, as cty does).

use std::collections::BTreeMap;
use std::fmt;

/// Deepest nesting of collections accepted in values, types and JSON documents;
/// real schemas stay far below this, and the cap keeps recursion bounded.
pub const MAX_DEPTH: usize = 64;

/// Largest msgpack or JSON document accepted; bounds memory use on hostile input.
pub const MAX_INPUT_BYTES: usize = 64 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/// A cty type, as used in schemas and to guide decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    String,
    Number,
    Bool,
    /// cty's `DynamicPseudoType`: the real type travels with the value.
    Dynamic,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Object(BTreeMap<String, Type>),
    Tuple(Vec<Type>),
}

impl Type {
    /// `list(t)` without the `Box::new` noise.
    pub fn list(t: Type) -> Type {
        Type::List(Box::new(t))
    }

    /// `set(t)` without the `Box::new` noise.
    pub fn set(t: Type) -> Type {
        Type::Set(Box::new(t))
    }

    /// `map(t)` without the `Box::new` noise.
    pub fn map(t: Type) -> Type {
        Type::Map(Box::new(t))
    }

    /// cty's type JSON, as schemas carry it: `"string"`, `["list","string"]`,
    /// `["object",{"a":"number"}]`, `["tuple",["string","bool"]]`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        let kind = |k: &str, inner: J| J::Array(vec![J::from(k), inner]);
        match self {
            Type::String => J::from("string"),
            Type::Number => J::from("number"),
            Type::Bool => J::from("bool"),
            Type::Dynamic => J::from("dynamic"),
            Type::List(e) => kind("list", e.to_json()),
            Type::Set(e) => kind("set", e.to_json()),
            Type::Map(e) => kind("map", e.to_json()),
            Type::Object(attrs) => kind(
                "object",
                J::Object(
                    attrs
                        .iter()
                        .map(|(name, t)| (name.clone(), t.to_json()))
                        .collect(),
                ),
            ),
            Type::Tuple(elems) => {
                kind("tuple", J::Array(elems.iter().map(Type::to_json).collect()))
            }
        }
    }

    /// [`Type::to_json`] as bytes, the form `Schema.Attribute.type` wants.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }

    /// Parses cty type JSON. An object type's optional third element (the
    /// optional-attribute list of type constraints) is accepted and ignored,
    /// since schemas have no use for it.
    pub fn from_json(v: &serde_json::Value) -> Result<Type, Error> {
        let mut path = Path::root();
        let node = Json::from_serde(v, &mut path, 0)?;
        Type::from_json_node(&node, &path, 0)
    }

    fn from_json_node(j: &Json, path: &Path, depth: usize) -> Result<Type, Error> {
        check_depth(path, depth)?;
        let invalid = |expected: &str, found: String| Error::InvalidType {
            path: path.clone(),
            expected: expected.to_owned(),
            found,
        };
        match j {
            Json::String(name) => match name.as_str() {
                "string" => Ok(Type::String),
                "number" => Ok(Type::Number),
                "bool" => Ok(Type::Bool),
                "dynamic" => Ok(Type::Dynamic),
                other => Err(invalid(
                    r#"a primitive type name ("string", "number", "bool" or "dynamic")"#,
                    format!("{other:?}"),
                )),
            },
            Json::Array(items) => {
                let elem = |e: &Json| Type::from_json_node(e, path, depth + 1);
                match items.as_slice() {
                    [Json::String(kind), rest @ ..] => match (kind.as_str(), rest) {
                        ("list", [e]) => Ok(Type::list(elem(e)?)),
                        ("set", [e]) => Ok(Type::set(elem(e)?)),
                        ("map", [e]) => Ok(Type::map(elem(e)?)),
                        ("object", [Json::Object(attrs)])
                        | ("object", [Json::Object(attrs), Json::Array(_)]) => attrs
                            .iter()
                            .map(|(name, t)| Ok((name.clone(), elem(t)?)))
                            .collect::<Result<_, Error>>()
                            .map(Type::Object),
                        ("tuple", [Json::Array(elems)]) => elems
                            .iter()
                            .map(elem)
                            .collect::<Result<_, _>>()
                            .map(Type::Tuple),
                        (kind, rest) => Err(invalid(
                            r#"["list"|"set"|"map", T], ["object", {..}] or ["tuple", [..]]"#,
                            format!("{kind:?} with {} argument(s)", rest.len()),
                        )),
                    },
                    _ => Err(invalid(
                        "a type kind string as the first array element",
                        "an array without one".to_owned(),
                    )),
                }
            }
            other => Err(invalid(
                "a type name string or array",
                other.describe().to_owned(),
            )),
        }
    }

    /// Short name for "expected ..." messages.
    fn describe(&self) -> &'static str {
        match self {
            Type::String => "string",
            Type::Number => "number",
            Type::Bool => "bool",
            Type::Dynamic => "dynamic",
            Type::List(_) => "list",
            Type::Set(_) => "set",
            Type::Map(_) => "map",
            Type::Object(_) => "object",
            Type::Tuple(_) => "tuple",
        }
    }
}

// ---------------------------------------------------------------------------
// Values and numbers
// ---------------------------------------------------------------------------

/// A cty value. Values carry no type of their own: the [`Type`] given to the
/// encoders and decoders says how they are laid out.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    /// Not known until apply; unknown refinements from Terraform are dropped.
    Unknown,
    Bool(bool),
    Number(Number),
    String(String),
    List(Vec<Value>),
    Set(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Object(BTreeMap<String, Value>),
    Tuple(Vec<Value>),
}

/// Returned by [`Value::get_attr`] for absent attributes, so callers can chain.
static NULL: Value = Value::Null;

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// False only for an unknown value itself; see [`Value::is_wholly_known`].
    pub fn is_known(&self) -> bool {
        !matches!(self, Value::Unknown)
    }

    /// True when no unknown appears anywhere inside, i.e. the value can be
    /// turned into JSON or a serde struct.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::List(items) | Value::Set(items) | Value::Tuple(items) => {
                items.iter().all(Value::is_wholly_known)
            }
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_wholly_known),
            _ => true,
        }
    }

    /// The named attribute of an object, or null for anything else, so that
    /// `v.get_attr("a").get_attr("b")` works without matching at each step.
    pub fn get_attr(&self, name: &str) -> &Value {
        match self {
            Value::Object(attrs) => attrs.get(name).unwrap_or(&NULL),
            _ => &NULL,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number as an `i64` when it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    /// The number as the nearest `f64` (lossy for big or very precise numbers).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    /// A null of any type: values are untyped, so this is always `Value::Null`;
    /// it exists so call sites read like cty's `NullVal(ty)`.
    pub fn null_of(_ty: &Type) -> Value {
        Value::Null
    }

    /// Plain JSON for serde: sets and tuples become arrays, maps and objects
    /// become objects, and unknowns are an error naming where they are.
    /// `path` is where this value sits, for error messages.
    pub fn to_json(&self, path: &Path) -> Result<serde_json::Value, Error> {
        value_to_serde(self, &mut path.clone(), 0)
    }

    /// Builds a value from plain JSON (e.g. a serialized serde struct), guided
    /// by `ty`. Missing object attributes become null; extra ones are an error.
    /// Like cty, strings are accepted for numbers and bools, and numbers and
    /// bools for strings. Where the type is dynamic, the JSON's own shape
    /// decides (arrays become tuples, objects become objects).
    pub fn from_json_typed(v: &serde_json::Value, ty: &Type) -> Result<Value, Error> {
        let mut path = Path::root();
        let node = Json::from_serde(v, &mut path, 0)?;
        value_from_json(&node, ty, JsonMode::Plain, &mut path, 0)
    }

    /// Short name for "found ..." messages.
    fn describe(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Unknown => "unknown value",
            Value::Bool(_) => "bool value",
            Value::Number(_) => "number value",
            Value::String(_) => "string value",
            Value::List(_) => "list value",
            Value::Set(_) => "set value",
            Value::Map(_) => "map value",
            Value::Object(_) => "object value",
            Value::Tuple(_) => "tuple value",
        }
    }
}

/// A cty number. cty numbers are arbitrary-precision decimals; this keeps the
/// common cases cheap and the rest exact as text.
#[derive(Clone, Debug)]
pub enum Number {
    Int(i64),
    Float(f64),
    /// Decimal text that fits neither an `i64` nor exactly an `f64`, e.g.
    /// `"123456789012345678901234567890"` or `"0.1"`.
    Big(String),
}

impl Number {
    /// Parses decimal text (`-12`, `0.1`, `1.5e300`) into the narrowest exact
    /// form: `Int` for integers in `i64`, `Float` for fractions an `f64` holds
    /// exactly, `Big` (canonical text) otherwise. `None` for anything else,
    /// including `inf` and `NaN`.
    pub fn parse(text: &str) -> Option<Number> {
        Decimal::parse(text).map(Decimal::into_number)
    }

    /// `Int` when `f` is integral and fits an `i64`, so `3.0` and `3` act alike.
    pub fn from_f64(f: f64) -> Number {
        match f64_to_i64(f) {
            Some(i) => Number::Int(i),
            None => Number::Float(f),
        }
    }

    /// The number as an `i64` when it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Number::Int(i) => Some(*i),
            Number::Float(f) => f64_to_i64(*f),
            Number::Big(s) => Decimal::parse(s)?.to_i64(),
        }
    }

    /// The nearest finite `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            // Rounding to nearest is the documented intent here.
            Number::Int(i) => Some(*i as f64),
            Number::Float(f) => Some(*f).filter(|f| f.is_finite()),
            Number::Big(s) => Decimal::parse(s)?
                .render()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite()),
        }
    }

    /// The exact decimal value, with floats taken at their shortest
    /// round-tripping form so `Float(0.1)` equals `Big("0.1")`.
    fn decimal(&self) -> Option<Decimal> {
        match self {
            Number::Int(i) => Decimal::parse(&i.to_string()),
            Number::Float(f) if f.is_finite() => Decimal::parse(&format!("{f:e}")),
            Number::Float(_) => None,
            Number::Big(s) => Decimal::parse(s),
        }
    }

    /// The form to put on the wire: `None` for NaN, infinities and junk text.
    fn canonical(&self) -> Option<Number> {
        match self {
            Number::Int(i) => Some(Number::Int(*i)),
            Number::Float(f) if f.is_finite() => Some(Number::from_f64(*f)),
            Number::Float(_) => None,
            Number::Big(s) => Number::parse(s),
        }
    }
}

/// Numeric equality across representations: `Int(3) == Float(3.0)` and
/// `Float(0.1) == Big("0.1")` (floats compare by their shortest decimal form).
/// NaN equals nothing, as in IEEE 754.
impl PartialEq for Number {
    fn eq(&self, other: &Number) -> bool {
        if let (Number::Float(a), Number::Float(b)) = (self, other) {
            return a == b;
        }
        match (self.decimal(), other.decimal()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }
}

/// Plain decimal text, the same form cty prints (`1e-7` shows as `0.0000001`).
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.decimal()) {
            (Number::Int(i), _) => write!(f, "{i}"),
            (_, Some(d)) => f.write_str(&d.render()),
            // Not a valid number: show it as it is rather than fail to print.
            (Number::Float(x), None) => write!(f, "{x}"),
            (Number::Big(text), None) => f.write_str(text),
        }
    }
}

/// `f` as an `i64` when it is integral and in range (never saturating).
fn f64_to_i64(f: f64) -> Option<i64> {
    // 2^63 is exactly representable, so these bounds are exact.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if f.is_finite() && f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f) {
        Some(f as i64)
    } else {
        None
    }
}

/// An exact decimal: `digits × 10^exponent`, with no leading or trailing zeros
/// in `digits` (empty means zero), so equal numbers have equal fields.
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: String,
    exponent: i64,
}

impl Decimal {
    fn zero() -> Decimal {
        Decimal {
            negative: false,
            digits: String::new(),
            exponent: 0,
        }
    }

    /// Accepts `[+-]digits[.digits][e[+-]digits]` (either digit run may be
    /// empty, not both). Rejects `inf`, `NaN`, hex and anything else.
    fn parse(text: &str) -> Option<Decimal> {
        let b = text.as_bytes();
        let digit_run = |mut i: usize| {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            i
        };
        let (negative, mut i) = match b.first() {
            Some(b'-') => (true, 1),
            Some(b'+') => (false, 1),
            _ => (false, 0),
        };
        let int_end = digit_run(i);
        let int_digits = text.get(i..int_end)?;
        i = int_end;
        let mut frac_digits = "";
        if b.get(i) == Some(&b'.') {
            let end = digit_run(i + 1);
            frac_digits = text.get(i + 1..end)?;
            i = end;
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return None;
        }
        let mut exp: i64 = 0;
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            let exp_negative = match b.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let end = digit_run(i);
            if end == i {
                return None;
            }
            for &c in b.get(i..end)? {
                exp = exp.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
            }
            if exp_negative {
                exp = -exp;
            }
            i = end;
        }
        if i != b.len() {
            return None;
        }
        let mut digits = format!("{int_digits}{frac_digits}");
        let mut exponent = exp.checked_sub(i64::try_from(frac_digits.len()).ok()?)?;
        let leading = digits.bytes().take_while(|&c| c == b'0').count();
        digits.drain(..leading);
        let trailing = digits.bytes().rev().take_while(|&c| c == b'0').count();
        digits.truncate(digits.len() - trailing);
        exponent = exponent.checked_add(i64::try_from(trailing).ok()?)?;
        if digits.is_empty() {
            return Some(Decimal::zero());
        }
        Some(Decimal {
            negative,
            digits,
            exponent,
        })
    }

    /// The exact decimal value of a finite `f64` (every binary fraction has a
    /// finite decimal expansion; Rust prints it exactly given enough places).
    fn exact_of_f64(f: f64) -> Option<Decimal> {
        if !f.is_finite() {
            return None;
        }
        if f == 0.0 {
            return Some(Decimal::zero());
        }
        let bits = f.to_bits();
        let biased = i64::try_from((bits >> 52) & 0x7ff).ok()?;
        let fraction = bits & ((1u64 << 52) - 1);
        let (mantissa, exp2) = if biased == 0 {
            (fraction, -1074)
        } else {
            (fraction | (1u64 << 52), biased - 1075)
        };
        let exp2 = exp2 + i64::from(mantissa.trailing_zeros());
        // 2^-k has exactly k decimal places.
        let places = usize::try_from(-exp2).unwrap_or(0);
        Decimal::parse(&format!("{f:.places$}"))
    }

    fn to_i64(&self) -> Option<i64> {
        if self.digits.is_empty() {
            return Some(0);
        }
        // In i128: an exponent near i64::MAX (`1e9223372036854775807`)
        // must not wrap around into a small one.
        if self.exponent < 0 || self.digits.len() as i128 + i128::from(self.exponent) > 19 {
            return None;
        }
        let mut v: i128 = 0;
        for c in self.digits.bytes() {
            v = v * 10 + i128::from(c - b'0');
        }
        for _ in 0..self.exponent {
            v *= 10;
        }
        i64::try_from(if self.negative { -v } else { v }).ok()
    }

    /// See [`Number::parse`] for the rule.
    fn into_number(self) -> Number {
        if let Some(i) = self.to_i64() {
            return Number::Int(i);
        }
        if self.exponent < 0 {
            let text = self.render();
            if let Ok(f) = text.parse::<f64>() {
                if Decimal::exact_of_f64(f).as_ref() == Some(&self) {
                    return Number::Float(f);
                }
            }
            return Number::Big(text);
        }
        Number::Big(self.render())
    }

    /// Canonical text that is valid both as JSON and for cty's number parser:
    /// positional when reasonably short, scientific otherwise.
    fn render(&self) -> String {
        if self.digits.is_empty() {
            return "0".to_owned();
        }
        let mut out = String::with_capacity(self.digits.len() + 8);
        if self.negative {
            out.push('-');
        }
        let n = self.digits.len() as i128;
        let e = i128::from(self.exponent);
        if e >= 0 && n + e <= 40 {
            out.push_str(&self.digits);
            out.extend(std::iter::repeat_n('0', e as usize));
        } else if e < 0 && -e < n {
            let (whole, frac) = self.digits.split_at((n + e) as usize);
            out.push_str(whole);
            out.push('.');
            out.push_str(frac);
        } else if e < 0 && -e - n <= 6 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-e - n) as usize));
            out.push_str(&self.digits);
        } else {
            let (first, rest) = self.digits.split_at(1);
            out.push_str(first);
            if !rest.is_empty() {
                out.push('.');
                out.push_str(rest);
            }
            out.push('e');
            out.push_str(&(e + n - 1).to_string());
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Paths and errors
// ---------------------------------------------------------------------------

/// One step from a value into a nested one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathStep {
    Attr(String),
    Key(String),
    Index(i64),
}

/// Where in a value something happened; maps onto tfplugin5 `AttributePath`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path(pub Vec<PathStep>);

impl Path {
    pub fn root() -> Path {
        Path::default()
    }

    pub fn attr(&self, name: &str) -> Path {
        self.with(PathStep::Attr(name.to_owned()))
    }

    pub fn key(&self, key: &str) -> Path {
        self.with(PathStep::Key(key.to_owned()))
    }

    pub fn index(&self, index: i64) -> Path {
        self.with(PathStep::Index(index))
    }

    fn with(&self, step: PathStep) -> Path {
        let mut steps = self.0.clone();
        steps.push(step);
        Path(steps)
    }
}

/// Terraform-style: `database.read_replicas[0]`, `tags["team"]`; the root is
/// the empty string.
impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                PathStep::Attr(name) if i == 0 => write!(f, "{name}")?,
                PathStep::Attr(name) => write!(f, ".{name}")?,
                PathStep::Key(key) => write!(f, "[{key:?}]")?,
                PathStep::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Renders the `at ...` prefix of error messages, naming the root explicitly.
struct At<'a>(&'a Path);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 .0.is_empty() {
            f.write_str("at root")
        } else {
            write!(f, "at {}", self.0)
        }
    }
}

/// Why a value could not be decoded, encoded or converted. Every variant says
/// where (see [`Error::path`]) so diagnostics can point at the attribute.
#[derive(thiserror::Error, Debug)]
pub enum Error {
    /// The data has a different shape than the type or value calls for.
    #[error("{}: expected {expected}, found {found}", At(.path))]
    Mismatch {
        path: Path,
        expected: String,
        found: String,
    },
    /// An object carries an attribute its type does not have; `path` ends in it.
    #[error("{}: expected one of the attributes {expected}, found unexpected attribute {name:?}", At(.path))]
    UnexpectedAttribute {
        path: Path,
        name: String,
        expected: String,
    },
    /// An unknown value where only known ones can go (JSON, serde structs).
    #[error("{}: expected a known value, found a value not yet known", At(.path))]
    Unknown { path: Path },
    /// Text or a float that is not a finite decimal number.
    #[error("{}: expected a finite decimal number, found {found:?}", At(.path))]
    InvalidNumber { path: Path, found: String },
    /// Type JSON that is not a cty type.
    #[error("{}: invalid type JSON: expected {expected}, found {found}", At(.path))]
    InvalidType {
        path: Path,
        expected: String,
        found: String,
    },
    /// Nesting beyond [`MAX_DEPTH`].
    #[error("{}: expected at most {max} levels of nesting, found more", At(.path))]
    TooDeep { path: Path, max: usize },
    /// Bytes that are not well-formed msgpack, or a value too large to write.
    #[error("{}: malformed msgpack: {detail}", At(.path))]
    Msgpack { path: Path, detail: String },
    /// Bytes that are not well-formed JSON.
    #[error("{}: malformed JSON: {detail}", At(.path))]
    Json { path: Path, detail: String },
    /// serde could not map between a value and a Rust struct.
    #[error("{}: cannot convert with serde: {detail}", At(.path))]
    Serde { path: Path, detail: String },
}

impl Error {
    /// Where in the value the error happened (the root for whole-document
    /// problems such as truncated input).
    pub fn path(&self) -> &Path {
        match self {
            Error::Mismatch { path, .. }
            | Error::UnexpectedAttribute { path, .. }
            | Error::Unknown { path }
            | Error::InvalidNumber { path, .. }
            | Error::InvalidType { path, .. }
            | Error::TooDeep { path, .. }
            | Error::Msgpack { path, .. }
            | Error::Json { path, .. }
            | Error::Serde { path, .. } => path,
        }
    }
}

fn mismatch(path: &Path, expected: &str, found: &str) -> Error {
    Error::Mismatch {
        path: path.clone(),
        expected: expected.to_owned(),
        found: found.to_owned(),
    }
}

fn invalid_number(path: &Path, found: &str) -> Error {
    Error::InvalidNumber {
        path: path.clone(),
        found: found.to_owned(),
    }
}

fn unexpected_attribute<T>(path: &Path, name: &str, attrs: &BTreeMap<String, T>) -> Error {
    let names: Vec<&str> = attrs.keys().map(String::as_str).collect();
    Error::UnexpectedAttribute {
        path: path.attr(name),
        name: name.to_owned(),
        expected: format!("({})", names.join(", ")),
    }
}

fn check_depth(path: &Path, depth: usize) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(Error::TooDeep {
            path: path.clone(),
            max: MAX_DEPTH,
        });
    }
    Ok(())
}

fn check_size(len: usize, json: bool) -> Result<(), Error> {
    if len <= MAX_INPUT_BYTES {
        return Ok(());
    }
    let detail = format!("expected at most {MAX_INPUT_BYTES} bytes, found {len}");
    let path = Path::root();
    Err(if json {
        Error::Json { path, detail }
    } else {
        Error::Msgpack { path, detail }
    })
}

/// Runs `f` with `step` pushed onto `path`, popping it whatever `f` returns;
/// one shared path avoids cloning it at every node.
fn in_step<T>(path: &mut Path, step: PathStep, f: impl FnOnce(&mut Path) -> T) -> T {
    path.0.push(step);
    let out = f(path);
    path.0.pop();
    out
}

fn index_step(i: usize) -> PathStep {
    PathStep::Index(i64::try_from(i).unwrap_or(i64::MAX))
}

// ---------------------------------------------------------------------------
// msgpack
// ---------------------------------------------------------------------------

/// Builders and in-place edits, for code that assembles planned or read
/// state attribute by attribute.
impl Value {
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn int(i: i64) -> Value {
        Value::Number(Number::Int(i))
    }

    pub fn opt_string(s: Option<impl Into<String>>) -> Value {
        s.map_or(Value::Null, |s| Value::String(s.into()))
    }

    pub fn strings<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Value {
        Value::List(items.into_iter().map(|s| Value::String(s.into())).collect())
    }

    pub fn string_map<K: Into<String>, V: Into<String>>(
        items: impl IntoIterator<Item = (K, V)>,
    ) -> Value {
        Value::Map(
            items
                .into_iter()
                .map(|(k, v)| (k.into(), Value::String(v.into())))
                .collect(),
        )
    }

    /// Sets an attribute, turning a null value into an empty object first.
    pub fn set_attr(&mut self, name: &str, value: Value) {
        if !matches!(self, Value::Object(_)) {
            *self = Value::Object(BTreeMap::new());
        }
        if let Value::Object(attrs) = self {
            attrs.insert(name.to_string(), value);
        }
    }

    /// A mutable handle on an attribute of an object (created as null).
    pub fn attr_mut(&mut self, name: &str) -> &mut Value {
        if !matches!(self, Value::Object(_)) {
            *self = Value::Object(BTreeMap::new());
        }
        match self {
            Value::Object(attrs) => attrs.entry(name.to_string()).or_insert(Value::Null),
            _ => unreachable!("made an object just above"),
        }
    }

    /// Strings of a known list or set; None when null, unknown or not all
    /// elements are known strings.
    pub fn as_strings(&self) -> Option<Vec<String>> {
        match self {
            Value::List(items) | Value::Set(items) | Value::Tuple(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => None,
        }
    }

    /// A known map of strings as a BTreeMap.
    pub fn as_string_map(&self) -> Option<BTreeMap<String, String>> {
        match self {
            Value::Map(items) | Value::Object(items) => items
                .iter()
                .map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect(),
            _ => None,
        }
    }
}

/// Decodes a tfplugin5 `DynamicValue.msgpack` of type `ty`.
pub fn decode_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, Error> {
    check_size(bytes.len(), false)?;
    let mut reader = Reader { buf: bytes, pos: 0 };
    let mut path = Path::root();
    let value = decode_mp(&mut reader, ty, &mut path, 0)?;
    let trailing = bytes.len() - reader.pos;
    if trailing != 0 {
        return Err(Error::Msgpack {
            path,
            detail: format!("expected end of input, found {trailing} trailing byte(s)"),
        });
    }
    Ok(value)
}

/// How numbers are written to msgpack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Numbers {
    /// As cty writes them: msgpack ints and floats where they are exact,
    /// decimal text otherwise.
    Compact,
    /// Always as decimal text, which cty reads exactly as it reads a number
    /// from JSON. For refreshed state: Terraform 1.11 decides whether a
    /// refresh changed an object by comparing the object it decoded from
    /// the provider's answer with the one it decoded from the stored JSON
    /// state structurally (`reflect.DeepEqual`, big-float precision
    /// included). A number read from a msgpack int carries another
    /// precision than the same number read from JSON text, so with
    /// [`Numbers::Compact`] every refresh of an object holding a number
    /// counts as a change and `plan -refresh-only -detailed-exitcode` exits
    /// 2 although nothing changed.
    DecimalText,
}

/// Encodes `v` as a tfplugin5 `DynamicValue.msgpack` of type `ty`.
pub fn encode_msgpack(v: &Value, ty: &Type) -> Result<Vec<u8>, Error> {
    encode_msgpack_with(v, ty, Numbers::Compact)
}

/// [`encode_msgpack`] with numbers written as `numbers` says.
pub fn encode_msgpack_with(v: &Value, ty: &Type, numbers: Numbers) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    encode_mp(&mut out, v, ty, &mut Path::root(), 0, numbers)?;
    Ok(out)
}

/// One msgpack item's header; strings, binaries and extensions borrow their
/// payload, while arrays and maps only carry a count already checked against
/// the bytes left.
enum Head<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    /// Only for values above `i64::MAX`.
    UInt(u64),
    Float(f64),
    Str(&'a [u8]),
    Bin(&'a [u8]),
    Array(usize),
    Map(usize),
    Ext,
}

impl Head<'_> {
    fn describe(&self) -> &'static str {
        match self {
            Head::Nil => "msgpack nil",
            Head::Bool(_) => "msgpack bool",
            Head::Int(_) | Head::UInt(_) => "msgpack integer",
            Head::Float(_) => "msgpack float",
            Head::Str(_) => "msgpack string",
            Head::Bin(_) => "msgpack binary",
            Head::Array(_) => "msgpack array",
            Head::Map(_) => "msgpack map",
            Head::Ext => "msgpack extension",
        }
    }
}

/// A bounds-checked cursor over the input; a hand-written reader keeps every
/// length check and allocation decision in view.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn truncated(&self, path: &Path, wanted: usize) -> Error {
        Error::Msgpack {
            path: path.clone(),
            detail: format!(
                "expected {wanted} more byte(s) at offset {}, found {}",
                self.pos,
                self.remaining()
            ),
        }
    }

    fn take(&mut self, n: usize, path: &Path) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.buf.len());
        match end.and_then(|end| self.buf.get(self.pos..end)) {
            Some(bytes) => {
                self.pos += n;
                Ok(bytes)
            }
            None => Err(self.truncated(path, n)),
        }
    }

    fn byte(&mut self, path: &Path) -> Result<u8, Error> {
        self.take(1, path).map(|b| b[0])
    }

    /// A big-endian unsigned integer of `n` (1, 2, 4 or 8) bytes.
    fn uint(&mut self, n: usize, path: &Path) -> Result<u64, Error> {
        Ok(self
            .take(n, path)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// A length field of `n` bytes; `u32` at most, so it fits `usize`.
    fn len(&mut self, n: usize, path: &Path) -> Result<usize, Error> {
        let len = self.uint(n, path)?;
        // Unreachable on 32- and 64-bit targets, where a u32 fits.
        usize::try_from(len).map_err(|_| Error::Msgpack {
            path: path.clone(),
            detail: format!("expected a length this platform can address, found {len}"),
        })
    }

    /// Rejects counts that cannot possibly be backed by the remaining input
    /// (every item takes at least one byte) before anything is allocated.
    fn count(&self, items: usize, per_item: usize, path: &Path) -> Result<usize, Error> {
        match items.checked_mul(per_item) {
            Some(needed) if needed <= self.remaining() => Ok(items),
            _ => Err(Error::Msgpack {
                path: path.clone(),
                detail: format!(
                    "expected at least {} byte(s) for {items} declared item(s), found {}",
                    items.saturating_mul(per_item),
                    self.remaining()
                ),
            }),
        }
    }

    fn head(&mut self, path: &Path) -> Result<Head<'a>, Error> {
        let marker = self.byte(path)?;
        let head = match marker {
            0x00..=0x7f => Head::Int(i64::from(marker)),
            0x80..=0x8f => Head::Map(self.count(usize::from(marker & 0x0f), 2, path)?),
            0x90..=0x9f => Head::Array(self.count(usize::from(marker & 0x0f), 1, path)?),
            0xa0..=0xbf => Head::Str(self.take(usize::from(marker & 0x1f), path)?),
            0xc0 => Head::Nil,
            0xc2 => Head::Bool(false),
            0xc3 => Head::Bool(true),
            0xc4..=0xc6 => {
                let n = self.len(1 << (marker - 0xc4), path)?;
                Head::Bin(self.take(n, path)?)
            }
            0xc7..=0xc9 => {
                let n = self.len(1 << (marker - 0xc7), path)?;
                self.take(n.saturating_add(1), path)?;
                Head::Ext
            }
            0xca => Head::Float(f64::from(f32::from_bits(self.uint(4, path)? as u32))),
            0xcb => Head::Float(f64::from_bits(self.uint(8, path)?)),
            0xcc..=0xcf => {
                let u = self.uint(1 << (marker - 0xcc), path)?;
                i64::try_from(u).map_or(Head::UInt(u), Head::Int)
            }
            0xd0..=0xd3 => {
                let n = 1usize << (marker - 0xd0);
                let u = self.uint(n, path)?;
                // Sign-extend from n bytes.
                let shift = 64 - 8 * n as u32;
                Head::Int(((u << shift) as i64) >> shift)
            }
            0xd4..=0xd8 => {
                self.take(1 + (1 << (marker - 0xd4)), path)?;
                Head::Ext
            }
            0xd9..=0xdb => {
                let n = self.len(1 << (marker - 0xd9), path)?;
                Head::Str(self.take(n, path)?)
            }
            0xdc | 0xdd => {
                let n = self.len(2 << (marker - 0xdc), path)?;
                Head::Array(self.count(n, 1, path)?)
            }
            0xde | 0xdf => {
                let n = self.len(2 << (marker - 0xde), path)?;
                Head::Map(self.count(n, 2, path)?)
            }
            0xe0..=0xff => Head::Int(i64::from(marker as i8)),
            0xc1 => {
                return Err(Error::Msgpack {
                    path: path.clone(),
                    detail: format!(
                        "expected a msgpack value at offset {}, found reserved marker 0xc1",
                        self.pos - 1
                    ),
                })
            }
        };
        Ok(head)
    }
}

fn utf8<'a>(bytes: &'a [u8], path: &Path) -> Result<&'a str, Error> {
    std::str::from_utf8(bytes).map_err(|e| {
        mismatch(
            path,
            "UTF-8 text",
            &format!("invalid UTF-8 at byte {} of the string", e.valid_up_to()),
        )
    })
}

/// A msgpack string or binary holding UTF-8; what else is there is named in
/// the error as `found`.
fn text_of<'a>(head: &Head<'a>, path: &Path, expected: &str) -> Result<&'a str, Error> {
    match *head {
        Head::Str(b) | Head::Bin(b) => utf8(b, path),
        ref other => Err(mismatch(path, expected, other.describe())),
    }
}

fn decode_mp(r: &mut Reader<'_>, ty: &Type, path: &mut Path, depth: usize) -> Result<Value, Error> {
    check_depth(path, depth)?;
    let head = r.head(path)?;
    match head {
        Head::Nil => return Ok(Value::Null),
        // Any extension is an unknown: code 0 plain, code 12 refined (its
        // refinement payload is skipped), others reserved for the same use.
        Head::Ext => return Ok(Value::Unknown),
        _ => {}
    }
    match ty {
        Type::String => Ok(Value::String(text_of(&head, path, "string")?.to_owned())),
        Type::Number => number_from_head(&head, path).map(Value::Number),
        Type::Bool => match head {
            Head::Bool(b) => Ok(Value::Bool(b)),
            other => Err(mismatch(path, "bool", other.describe())),
        },
        Type::List(elem) | Type::Set(elem) => {
            let Head::Array(n) = head else {
                return Err(mismatch(path, ty.describe(), head.describe()));
            };
            let mut items = Vec::with_capacity(n.min(1024));
            for i in 0..n {
                items.push(in_step(path, index_step(i), |p| {
                    decode_mp(r, elem, p, depth + 1)
                })?);
            }
            Ok(match ty {
                Type::Set(_) => Value::Set(items),
                _ => Value::List(items),
            })
        }
        Type::Tuple(elems) => {
            let Head::Array(n) = head else {
                return Err(mismatch(path, "tuple", head.describe()));
            };
            if n != elems.len() {
                return Err(mismatch(
                    path,
                    &format!("tuple of {} element(s)", elems.len()),
                    &format!("msgpack array of {n}"),
                ));
            }
            let mut items = Vec::with_capacity(n);
            for (i, elem) in elems.iter().enumerate() {
                items.push(in_step(path, index_step(i), |p| {
                    decode_mp(r, elem, p, depth + 1)
                })?);
            }
            Ok(Value::Tuple(items))
        }
        Type::Map(elem) => {
            let Head::Map(n) = head else {
                return Err(mismatch(path, "map", head.describe()));
            };
            let mut entries = BTreeMap::new();
            for _ in 0..n {
                let key = text_of(&r.head(path)?, path, "string map key")?;
                let step = PathStep::Key(key.to_owned());
                let v = in_step(path, step, |p| decode_mp(r, elem, p, depth + 1))?;
                if entries.insert(key.to_owned(), v).is_some() {
                    return Err(mismatch(
                        &path.key(key),
                        "unique map keys",
                        "a duplicate key",
                    ));
                }
            }
            Ok(Value::Map(entries))
        }
        Type::Object(attrs) => {
            let Head::Map(n) = head else {
                return Err(mismatch(path, "object", head.describe()));
            };
            let mut values = BTreeMap::new();
            for _ in 0..n {
                let name = text_of(&r.head(path)?, path, "string attribute name")?;
                let Some(attr_ty) = attrs.get(name) else {
                    return Err(unexpected_attribute(path, name, attrs));
                };
                let step = PathStep::Attr(name.to_owned());
                let v = in_step(path, step, |p| decode_mp(r, attr_ty, p, depth + 1))?;
                if values.insert(name.to_owned(), v).is_some() {
                    return Err(mismatch(
                        &path.attr(name),
                        "unique attributes",
                        "a duplicate attribute",
                    ));
                }
            }
            fill_missing_attrs(&mut values, attrs);
            Ok(Value::Object(values))
        }
        Type::Dynamic => {
            let Head::Array(2) = head else {
                return Err(mismatch(
                    path,
                    "dynamic value as a [type JSON, value] msgpack array",
                    head.describe(),
                ));
            };
            let type_json = match r.head(path)? {
                Head::Str(b) | Head::Bin(b) => b,
                other => return Err(mismatch(path, "type JSON bytes", other.describe())),
            };
            let inner = parse_type_bytes(type_json, path)?;
            decode_mp(r, &inner, path, depth + 1)
        }
    }
}

/// Attributes absent from the input are null, so every object value holds
/// exactly its type's attributes.
fn fill_missing_attrs(values: &mut BTreeMap<String, Value>, attrs: &BTreeMap<String, Type>) {
    for name in attrs.keys() {
        values.entry(name.clone()).or_insert(Value::Null);
    }
}

fn parse_type_bytes(bytes: &[u8], path: &Path) -> Result<Type, Error> {
    let node = JsonParser::parse_document(bytes).map_err(|e| match e {
        Error::Json { detail, .. } => Error::InvalidType {
            path: path.clone(),
            expected: "type JSON".to_owned(),
            found: detail,
        },
        other => other,
    })?;
    Type::from_json_node(&node, path, 0)
}

fn number_from_head(head: &Head<'_>, path: &Path) -> Result<Number, Error> {
    match *head {
        Head::Int(i) => Ok(Number::Int(i)),
        Head::UInt(u) => Ok(Number::Big(u.to_string())),
        Head::Float(f) if f.is_finite() => Ok(Number::from_f64(f)),
        Head::Float(f) => Err(invalid_number(path, &f.to_string())),
        // cty sends numbers that fit no msgpack int or float as decimal text.
        Head::Str(b) | Head::Bin(b) => {
            let text = utf8(b, path)?;
            Number::parse(text).ok_or_else(|| invalid_number(path, text))
        }
        ref other => Err(mismatch(path, "number", other.describe())),
    }
}

fn write_uint_be(out: &mut Vec<u8>, marker: u8, bytes: &[u8]) {
    out.push(marker);
    out.extend_from_slice(bytes);
}

/// The smallest msgpack integer form, as cty's encoder picks.
fn write_int(out: &mut Vec<u8>, i: i64) {
    if let Ok(u) = u64::try_from(i) {
        if u < 0x80 {
            out.push(u as u8);
        } else if let Ok(b) = u8::try_from(u) {
            write_uint_be(out, 0xcc, &[b]);
        } else if let Ok(h) = u16::try_from(u) {
            write_uint_be(out, 0xcd, &h.to_be_bytes());
        } else if let Ok(w) = u32::try_from(u) {
            write_uint_be(out, 0xce, &w.to_be_bytes());
        } else {
            write_uint_be(out, 0xcf, &u.to_be_bytes());
        }
    } else if i >= -32 {
        out.push(i as i8 as u8);
    } else if let Ok(b) = i8::try_from(i) {
        write_uint_be(out, 0xd0, &b.to_be_bytes());
    } else if let Ok(h) = i16::try_from(i) {
        write_uint_be(out, 0xd1, &h.to_be_bytes());
    } else if let Ok(w) = i32::try_from(i) {
        write_uint_be(out, 0xd2, &w.to_be_bytes());
    } else {
        write_uint_be(out, 0xd3, &i.to_be_bytes());
    }
}

/// Writes a length header: the fix form when `fix_base` allows and the value
/// fits under `fix_limit`, else the 8/16/32-bit forms starting at `marker8`
/// (`None` when that family has no 8-bit form).
fn write_len(
    out: &mut Vec<u8>,
    len: usize,
    fix: (u8, usize),
    marker8: Option<u8>,
    marker16: u8,
    path: &Path,
) -> Result<(), Error> {
    let (fix_base, fix_limit) = fix;
    if len < fix_limit {
        out.push(fix_base | len as u8);
    } else if let (Some(m), Ok(b)) = (marker8, u8::try_from(len)) {
        write_uint_be(out, m, &[b]);
    } else if let Ok(h) = u16::try_from(len) {
        write_uint_be(out, marker16, &h.to_be_bytes());
    } else if let Ok(w) = u32::try_from(len) {
        write_uint_be(out, marker16 + 1, &w.to_be_bytes());
    } else {
        return Err(Error::Msgpack {
            path: path.clone(),
            detail: format!("expected at most {} items or bytes, found {len}", u32::MAX),
        });
    }
    Ok(())
}

fn write_str(out: &mut Vec<u8>, s: &str, path: &Path) -> Result<(), Error> {
    write_len(out, s.len(), (0xa0, 32), Some(0xd9), 0xda, path)?;
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn write_bin(out: &mut Vec<u8>, b: &[u8], path: &Path) -> Result<(), Error> {
    write_len(out, b.len(), (0, 0), Some(0xc4), 0xc5, path)?;
    out.extend_from_slice(b);
    Ok(())
}

fn write_array_len(out: &mut Vec<u8>, n: usize, path: &Path) -> Result<(), Error> {
    write_len(out, n, (0x90, 16), None, 0xdc, path)
}

fn write_map_len(out: &mut Vec<u8>, n: usize, path: &Path) -> Result<(), Error> {
    write_len(out, n, (0x80, 16), None, 0xde, path)
}

fn write_number(out: &mut Vec<u8>, n: &Number, path: &Path, numbers: Numbers) -> Result<(), Error> {
    match n.canonical() {
        Some(n) if numbers == Numbers::DecimalText => write_str(out, &n.to_string(), path)?,
        Some(Number::Int(i)) => write_int(out, i),
        Some(Number::Float(f)) => write_uint_be(out, 0xcb, &f.to_bits().to_be_bytes()),
        Some(Number::Big(text)) => write_str(out, &text, path)?,
        None => return Err(invalid_number(path, &n.to_string())),
    }
    Ok(())
}

fn encode_mp(
    out: &mut Vec<u8>,
    v: &Value,
    ty: &Type,
    path: &mut Path,
    depth: usize,
    numbers: Numbers,
) -> Result<(), Error> {
    check_depth(path, depth)?;
    match (ty, v) {
        (_, Value::Null) => out.push(0xc0),
        // fixext1, type 0, payload 0: cty's plain unknown.
        (_, Value::Unknown) => out.extend_from_slice(&[0xd4, 0, 0]),
        (Type::Dynamic, _) => {
            let inferred = infer_type(v, path, depth)?;
            write_array_len(out, 2, path)?;
            write_bin(out, &inferred.to_json_bytes(), path)?;
            encode_mp(out, v, &inferred, path, depth + 1, numbers)?;
        }
        (Type::String, Value::String(s)) => write_str(out, s, path)?,
        (Type::Number, Value::Number(n)) => write_number(out, n, path, numbers)?,
        (Type::Bool, Value::Bool(b)) => out.push(if *b { 0xc3 } else { 0xc2 }),
        (
            Type::List(elem) | Type::Set(elem),
            Value::List(items) | Value::Set(items) | Value::Tuple(items),
        ) => {
            write_array_len(out, items.len(), path)?;
            for (i, item) in items.iter().enumerate() {
                in_step(path, index_step(i), |p| {
                    encode_mp(out, item, elem, p, depth + 1, numbers)
                })?;
            }
        }
        (Type::Tuple(elems), Value::List(items) | Value::Set(items) | Value::Tuple(items)) => {
            check_tuple_len(elems, items, path)?;
            write_array_len(out, items.len(), path)?;
            for (i, (item, elem)) in items.iter().zip(elems).enumerate() {
                in_step(path, index_step(i), |p| {
                    encode_mp(out, item, elem, p, depth + 1, numbers)
                })?;
            }
        }
        (Type::Map(elem), Value::Map(entries) | Value::Object(entries)) => {
            write_map_len(out, entries.len(), path)?;
            for (key, item) in entries {
                write_str(out, key, path)?;
                let step = PathStep::Key(key.clone());
                in_step(path, step, |p| {
                    encode_mp(out, item, elem, p, depth + 1, numbers)
                })?;
            }
        }
        (Type::Object(attrs), Value::Object(values) | Value::Map(values)) => {
            check_no_extra_attrs(values, attrs, path)?;
            write_map_len(out, attrs.len(), path)?;
            for (name, attr_ty) in attrs {
                write_str(out, name, path)?;
                let item = values.get(name).unwrap_or(&NULL);
                let step = PathStep::Attr(name.clone());
                in_step(path, step, |p| {
                    encode_mp(out, item, attr_ty, p, depth + 1, numbers)
                })?;
            }
        }
        (ty, v) => return Err(mismatch(path, ty.describe(), v.describe())),
    }
    Ok(())
}

fn check_tuple_len(elems: &[Type], items: &[Value], path: &Path) -> Result<(), Error> {
    if elems.len() == items.len() {
        return Ok(());
    }
    Err(mismatch(
        path,
        &format!("tuple of {} element(s)", elems.len()),
        &format!("{} element(s)", items.len()),
    ))
}

fn check_no_extra_attrs(
    values: &BTreeMap<String, Value>,
    attrs: &BTreeMap<String, Type>,
    path: &Path,
) -> Result<(), Error> {
    match values.keys().find(|name| !attrs.contains_key(*name)) {
        Some(name) => Err(unexpected_attribute(path, name, attrs)),
        None => Ok(()),
    }
}

/// The type a known value has on its own, for writing it where the schema
/// says "dynamic". Nulls and unknowns inside collections say nothing about
/// their type, so they give way to whatever their siblings have.
fn infer_type(v: &Value, path: &mut Path, depth: usize) -> Result<Type, Error> {
    check_depth(path, depth)?;
    Ok(match v {
        Value::Null | Value::Unknown => Type::Dynamic,
        Value::Bool(_) => Type::Bool,
        Value::Number(_) => Type::Number,
        Value::String(_) => Type::String,
        Value::List(items) => Type::list(infer_common(
            items.iter().enumerate(),
            index_step,
            path,
            depth,
        )?),
        Value::Set(items) => Type::set(infer_common(
            items.iter().enumerate(),
            index_step,
            path,
            depth,
        )?),
        Value::Map(entries) => Type::map(infer_common(
            entries.iter(),
            |k: &String| PathStep::Key(k.clone()),
            path,
            depth,
        )?),
        Value::Object(attrs) => Type::Object(
            attrs
                .iter()
                .map(|(name, item)| {
                    let step = PathStep::Attr(name.clone());
                    Ok((
                        name.clone(),
                        in_step(path, step, |p| infer_type(item, p, depth + 1))?,
                    ))
                })
                .collect::<Result<_, Error>>()?,
        ),
        Value::Tuple(items) => Type::Tuple(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| in_step(path, index_step(i), |p| infer_type(item, p, depth + 1)))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// The single element type of a list, set or map value.
fn infer_common<'v, K>(
    items: impl Iterator<Item = (K, &'v Value)>,
    step: impl Fn(K) -> PathStep,
    path: &mut Path,
    depth: usize,
) -> Result<Type, Error> {
    let mut common = Type::Dynamic;
    for (k, item) in items {
        let step = step(k);
        let t = in_step(path, step.clone(), |p| infer_type(item, p, depth + 1))?;
        let found = format!("{} after {}", t.to_json(), common.to_json());
        common = unify(common, t).ok_or_else(|| {
            let mut at = path.clone();
            at.0.push(step);
            mismatch(&at, "elements of one type", &found)
        })?;
    }
    Ok(common)
}

/// The most specific type both `a` and `b` conform to, treating dynamic (from
/// nulls and unknowns) as a wildcard.
fn unify(a: Type, b: Type) -> Option<Type> {
    Some(match (a, b) {
        (Type::Dynamic, t) | (t, Type::Dynamic) => t,
        (Type::List(x), Type::List(y)) => Type::list(unify(*x, *y)?),
        (Type::Set(x), Type::Set(y)) => Type::set(unify(*x, *y)?),
        (Type::Map(x), Type::Map(y)) => Type::map(unify(*x, *y)?),
        (Type::Object(x), Type::Object(y)) if x.keys().eq(y.keys()) => Type::Object(
            x.into_iter()
                .zip(y.into_values())
                .map(|((name, tx), ty)| Some((name, unify(tx, ty)?)))
                .collect::<Option<_>>()?,
        ),
        (Type::Tuple(x), Type::Tuple(y)) if x.len() == y.len() => Type::Tuple(
            x.into_iter()
                .zip(y)
                .map(|(tx, ty)| unify(tx, ty))
                .collect::<Option<_>>()?,
        ),
        (x, y) if x == y => x,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

/// Decodes cty JSON (raw state in `UpgradeResourceState`) of type `ty`. JSON
/// has no unknowns; dynamic values are `{"value": .., "type": ..}` as cty
/// writes them. Number literals keep full precision (see [`Number::parse`]).
pub fn decode_json(bytes: &[u8], ty: &Type) -> Result<Value, Error> {
    let node = JsonParser::parse_document(bytes)?;
    value_from_json(&node, ty, JsonMode::Cty, &mut Path::root(), 0)
}

/// Encodes `v` as cty JSON of type `ty`; unknowns are an error naming where.
pub fn encode_json(v: &Value, ty: &Type) -> Result<Vec<u8>, Error> {
    let mut out = String::new();
    encode_js(&mut out, v, ty, &mut Path::root(), 0)?;
    Ok(out.into_bytes())
}

/// A known value to a serde struct, through [`Value::to_json`].
pub fn from_value<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, Error> {
    let json = v.to_json(&Path::root())?;
    serde_json::from_value(json).map_err(|e| Error::Serde {
        path: Path::root(),
        detail: e.to_string(),
    })
}

/// A serde struct to a value of type `ty`, through [`Value::from_json_typed`].
pub fn to_value<T: serde::Serialize>(t: &T, ty: &Type) -> Result<Value, Error> {
    let json = serde_json::to_value(t).map_err(|e| Error::Serde {
        path: Path::root(),
        detail: e.to_string(),
    })?;
    Value::from_json_typed(&json, ty)
}

/// How dynamic values appear in JSON: cty's `{"value","type"}` wrapper in
/// state, or plain JSON (typed by its own shape) from serde.
#[derive(Clone, Copy, PartialEq, Eq)]
enum JsonMode {
    Cty,
    Plain,
}

/// A parsed JSON document. Unlike `serde_json::Value` (without its
/// `arbitrary_precision` feature) it keeps big number literals exact.
enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

impl Json {
    fn from_serde(v: &serde_json::Value, path: &mut Path, depth: usize) -> Result<Json, Error> {
        use serde_json::Value as J;
        check_depth(path, depth)?;
        Ok(match v {
            J::Null => Json::Null,
            J::Bool(b) => Json::Bool(*b),
            J::Number(n) => Json::Number(if let Some(i) = n.as_i64() {
                Number::Int(i)
            } else if let Some(u) = n.as_u64() {
                Number::Big(u.to_string())
            } else {
                Number::from_f64(n.as_f64().unwrap_or(f64::NAN))
            }),
            J::String(s) => Json::String(s.clone()),
            J::Array(items) => Json::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        in_step(path, index_step(i), |p| {
                            Json::from_serde(item, p, depth + 1)
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            J::Object(m) => Json::Object(
                m.iter()
                    .map(|(k, item)| {
                        let step = PathStep::Key(k.clone());
                        Ok((
                            k.clone(),
                            in_step(path, step, |p| Json::from_serde(item, p, depth + 1))?,
                        ))
                    })
                    .collect::<Result<_, Error>>()?,
            ),
        })
    }

    fn describe(&self) -> &'static str {
        match self {
            Json::Null => "JSON null",
            Json::Bool(_) => "JSON bool",
            Json::Number(_) => "JSON number",
            Json::String(_) => "JSON string",
            Json::Array(_) => "JSON array",
            Json::Object(_) => "JSON object",
        }
    }
}

/// A strict RFC 8259 parser; hand-written so number literals keep their text.
struct JsonParser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> JsonParser<'a> {
    fn parse_document(bytes: &'a [u8]) -> Result<Json, Error> {
        check_size(bytes.len(), true)?;
        let text = std::str::from_utf8(bytes).map_err(|e| Error::Json {
            path: Path::root(),
            detail: format!(
                "expected UTF-8 text, found an invalid byte at offset {}",
                e.valid_up_to()
            ),
        })?;
        let mut p = JsonParser {
            s: text.as_bytes(),
            pos: 0,
        };
        p.skip_ws();
        let v = p.value(0)?;
        p.skip_ws();
        if p.pos != p.s.len() {
            return Err(p.error("end of input"));
        }
        Ok(v)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn error(&self, expected: &str) -> Error {
        let found = match self.peek() {
            None => "end of input".to_owned(),
            Some(c) if c.is_ascii_graphic() => format!("{:?}", char::from(c)),
            Some(c) => format!("byte 0x{c:02x}"),
        };
        Error::Json {
            path: Path::root(),
            detail: format!("expected {expected} at offset {}, found {found}", self.pos),
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn literal(&mut self, word: &str, v: Json) -> Result<Json, Error> {
        if self.s.get(self.pos..self.pos + word.len()) == Some(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.error(&format!("{word:?}")))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, Error> {
        match self.peek() {
            Some(b'n') => self.literal("null", Json::Null),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'"') => self.string().map(Json::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => {
                check_depth(&Path::root(), depth + 1)?;
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.eat(b']') {
                    return Ok(Json::Array(items));
                }
                loop {
                    self.skip_ws();
                    items.push(self.value(depth + 1)?);
                    self.skip_ws();
                    if self.eat(b']') {
                        return Ok(Json::Array(items));
                    }
                    if !self.eat(b',') {
                        return Err(self.error("',' or ']'"));
                    }
                }
            }
            Some(b'{') => {
                check_depth(&Path::root(), depth + 1)?;
                self.pos += 1;
                let mut members = BTreeMap::new();
                self.skip_ws();
                if self.eat(b'}') {
                    return Ok(Json::Object(members));
                }
                loop {
                    self.skip_ws();
                    if self.peek() != Some(b'"') {
                        return Err(self.error("a string key"));
                    }
                    let key_at = self.pos;
                    let key = self.string()?;
                    self.skip_ws();
                    if !self.eat(b':') {
                        return Err(self.error("':'"));
                    }
                    self.skip_ws();
                    let v = self.value(depth + 1)?;
                    if members.insert(key, v).is_some() {
                        return Err(Error::Json {
                            path: Path::root(),
                            detail: format!(
                                "expected unique keys, found a duplicate key at offset {key_at}"
                            ),
                        });
                    }
                    self.skip_ws();
                    if self.eat(b'}') {
                        return Ok(Json::Object(members));
                    }
                    if !self.eat(b',') {
                        return Err(self.error("',' or '}'"));
                    }
                }
            }
            _ => Err(self.error("a JSON value")),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Json, Error> {
        let start = self.pos;
        self.eat(b'-');
        if self.eat(b'0') {
            // JSON forbids leading zeros.
        } else if self.digits() == 0 {
            return Err(self.error("a digit"));
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err(self.error("a digit after '.'"));
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _ = self.eat(b'+') || self.eat(b'-');
            if self.digits() == 0 {
                return Err(self.error("a digit in the exponent"));
            }
        }
        let text = std::str::from_utf8(self.s.get(start..self.pos).unwrap_or_default())
            .unwrap_or_default();
        Number::parse(text)
            .map(Json::Number)
            .ok_or_else(|| Error::Json {
                path: Path::root(),
                detail: format!(
                    "expected a representable number at offset {start}, found {text:?}"
                ),
            })
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let mut v = 0u32;
        for _ in 0..4 {
            let digit = self.peek().and_then(|c| char::from(c).to_digit(16));
            match digit {
                Some(d) => {
                    v = v * 16 + d;
                    self.pos += 1;
                }
                None => return Err(self.error("a hex digit")),
            }
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String, Error> {
        self.pos += 1; // opening quote, checked by the caller
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while self
                .peek()
                .is_some_and(|c| c != b'"' && c != b'\\' && c >= 0x20)
            {
                self.pos += 1;
            }
            // The input is valid UTF-8 and the run stops at an ASCII byte, so
            // it ends on a character boundary.
            let run = self.s.get(run_start..self.pos).unwrap_or_default();
            out.push_str(std::str::from_utf8(run).map_err(|_| self.error("UTF-8 text"))?);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self.peek();
                    self.pos += 1;
                    match c {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => out.push(self.unicode_escape()?),
                        _ => {
                            self.pos -= 1;
                            return Err(self.error("an escape character"));
                        }
                    }
                }
                _ => return Err(self.error("a string character or '\"'")),
            }
        }
    }

    /// The code point of `\uXXXX`, joining UTF-16 surrogate pairs.
    fn unicode_escape(&mut self) -> Result<char, Error> {
        let first = self.hex4()?;
        let code = match first {
            0xd800..=0xdbff => {
                if !(self.eat(b'\\') && self.eat(b'u')) {
                    return Err(self.error("a low surrogate escape"));
                }
                let second = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&second) {
                    return Err(self.error("a low surrogate escape"));
                }
                0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
            }
            0xdc00..=0xdfff => return Err(self.error("a high surrogate before a low one")),
            c => c,
        };
        char::from_u32(code).ok_or_else(|| self.error("a valid code point"))
    }
}

fn value_from_json(
    j: &Json,
    ty: &Type,
    mode: JsonMode,
    path: &mut Path,
    depth: usize,
) -> Result<Value, Error> {
    check_depth(path, depth)?;
    if let Json::Null = j {
        return Ok(Value::Null);
    }
    match ty {
        Type::String => match j {
            Json::String(s) => Ok(Value::String(s.clone())),
            Json::Number(n) => Ok(Value::String(n.to_string())),
            Json::Bool(b) => Ok(Value::String(b.to_string())),
            other => Err(mismatch(path, "string", other.describe())),
        },
        Type::Number => match j {
            Json::Number(n) => Ok(Value::Number(n.clone())),
            Json::String(s) => Number::parse(s)
                .map(Value::Number)
                .ok_or_else(|| invalid_number(path, s)),
            other => Err(mismatch(path, "number", other.describe())),
        },
        Type::Bool => match j {
            Json::Bool(b) => Ok(Value::Bool(*b)),
            Json::String(s) if s == "true" => Ok(Value::Bool(true)),
            Json::String(s) if s == "false" => Ok(Value::Bool(false)),
            other => Err(mismatch(path, "bool", other.describe())),
        },
        Type::List(elem) | Type::Set(elem) => {
            let Json::Array(items) = j else {
                return Err(mismatch(path, ty.describe(), j.describe()));
            };
            let values = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    in_step(path, index_step(i), |p| {
                        value_from_json(item, elem, mode, p, depth + 1)
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(match ty {
                Type::Set(_) => Value::Set(values),
                _ => Value::List(values),
            })
        }
        Type::Tuple(elems) => {
            let Json::Array(items) = j else {
                return Err(mismatch(path, "tuple", j.describe()));
            };
            if items.len() != elems.len() {
                return Err(mismatch(
                    path,
                    &format!("tuple of {} element(s)", elems.len()),
                    &format!("JSON array of {}", items.len()),
                ));
            }
            items
                .iter()
                .zip(elems)
                .enumerate()
                .map(|(i, (item, elem))| {
                    in_step(path, index_step(i), |p| {
                        value_from_json(item, elem, mode, p, depth + 1)
                    })
                })
                .collect::<Result<_, _>>()
                .map(Value::Tuple)
        }
        Type::Map(elem) => {
            let Json::Object(members) = j else {
                return Err(mismatch(path, "map", j.describe()));
            };
            members
                .iter()
                .map(|(k, item)| {
                    let step = PathStep::Key(k.clone());
                    Ok((
                        k.clone(),
                        in_step(path, step, |p| {
                            value_from_json(item, elem, mode, p, depth + 1)
                        })?,
                    ))
                })
                .collect::<Result<_, Error>>()
                .map(Value::Map)
        }
        Type::Object(attrs) => {
            let Json::Object(members) = j else {
                return Err(mismatch(path, "object", j.describe()));
            };
            let mut values = BTreeMap::new();
            for (name, item) in members {
                let Some(attr_ty) = attrs.get(name) else {
                    return Err(unexpected_attribute(path, name, attrs));
                };
                let step = PathStep::Attr(name.clone());
                let v = in_step(path, step, |p| {
                    value_from_json(item, attr_ty, mode, p, depth + 1)
                })?;
                values.insert(name.clone(), v);
            }
            fill_missing_attrs(&mut values, attrs);
            Ok(Value::Object(values))
        }
        Type::Dynamic => match mode {
            JsonMode::Plain => value_from_untyped_json(j, path, depth),
            JsonMode::Cty => {
                let expected = r#"a dynamic value as {"value": .., "type": ..}"#;
                let Json::Object(members) = j else {
                    return Err(mismatch(path, expected, j.describe()));
                };
                let (Some(inner_ty), Some(inner), 2) =
                    (members.get("type"), members.get("value"), members.len())
                else {
                    let keys: Vec<&str> = members.keys().map(String::as_str).collect();
                    return Err(mismatch(
                        path,
                        expected,
                        &format!("keys ({})", keys.join(", ")),
                    ));
                };
                let inner_ty = Type::from_json_node(inner_ty, path, 0)?;
                value_from_json(inner, &inner_ty, mode, path, depth + 1)
            }
        },
    }
}

/// Plain JSON under a dynamic type: its own shape is its type.
fn value_from_untyped_json(j: &Json, path: &mut Path, depth: usize) -> Result<Value, Error> {
    check_depth(path, depth)?;
    Ok(match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => Value::Number(n.clone()),
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Tuple(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    in_step(path, index_step(i), |p| {
                        value_from_untyped_json(item, p, depth + 1)
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(members) => Value::Object(
            members
                .iter()
                .map(|(k, item)| {
                    let step = PathStep::Attr(k.clone());
                    Ok((
                        k.clone(),
                        in_step(path, step, |p| value_from_untyped_json(item, p, depth + 1))?,
                    ))
                })
                .collect::<Result<_, Error>>()?,
        ),
    })
}

fn value_to_serde(v: &Value, path: &mut Path, depth: usize) -> Result<serde_json::Value, Error> {
    use serde_json::Value as J;
    check_depth(path, depth)?;
    Ok(match v {
        Value::Null => J::Null,
        Value::Unknown => return Err(Error::Unknown { path: path.clone() }),
        Value::Bool(b) => J::Bool(*b),
        Value::Number(n) => J::Number(number_to_serde(n, path)?),
        Value::String(s) => J::String(s.clone()),
        Value::List(items) | Value::Set(items) | Value::Tuple(items) => J::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    in_step(path, index_step(i), |p| value_to_serde(item, p, depth + 1))
                })
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(m) | Value::Object(m) => {
            let object = matches!(v, Value::Object(_));
            J::Object(
                m.iter()
                    .map(|(k, item)| {
                        let step = if object {
                            PathStep::Attr(k.clone())
                        } else {
                            PathStep::Key(k.clone())
                        };
                        Ok((
                            k.clone(),
                            in_step(path, step, |p| value_to_serde(item, p, depth + 1))?,
                        ))
                    })
                    .collect::<Result<_, Error>>()?,
            )
        }
    })
}

/// serde_json without `arbitrary_precision` holds i64, u64 or f64, so big
/// numbers go through the nearest of those (lossy beyond u64 / f64 precision).
fn number_to_serde(n: &Number, path: &Path) -> Result<serde_json::Number, Error> {
    let out = match n.canonical() {
        Some(Number::Int(i)) => Some(i.into()),
        Some(Number::Float(f)) => serde_json::Number::from_f64(f),
        Some(Number::Big(text)) => match text.parse::<u64>() {
            Ok(u) => Some(u.into()),
            Err(_) => text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64),
        },
        None => None,
    };
    out.ok_or_else(|| invalid_number(path, &n.to_string()))
}

fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn encode_js(
    out: &mut String,
    v: &Value,
    ty: &Type,
    path: &mut Path,
    depth: usize,
) -> Result<(), Error> {
    check_depth(path, depth)?;
    match (ty, v) {
        (_, Value::Null) => out.push_str("null"),
        (_, Value::Unknown) => return Err(Error::Unknown { path: path.clone() }),
        (Type::Dynamic, _) => {
            let inferred = infer_type(v, path, depth)?;
            out.push_str("{\"value\":");
            encode_js(out, v, &inferred, path, depth + 1)?;
            out.push_str(",\"type\":");
            out.push_str(&inferred.to_json().to_string());
            out.push('}');
        }
        (Type::String, Value::String(s)) => write_json_string(out, s),
        (Type::Number, Value::Number(n)) => match n.canonical() {
            Some(Number::Int(i)) => out.push_str(&i.to_string()),
            // Shortest round-tripping digits, in the same canonical layout as
            // Big text, which is already a valid JSON number literal.
            Some(Number::Float(f)) => out.push_str(&Number::Float(f).to_string()),
            Some(Number::Big(text)) => out.push_str(&text),
            None => return Err(invalid_number(path, &n.to_string())),
        },
        (Type::Bool, Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
        (
            Type::List(_) | Type::Set(_) | Type::Tuple(_),
            Value::List(items) | Value::Set(items) | Value::Tuple(items),
        ) => {
            if let Type::Tuple(elems) = ty {
                check_tuple_len(elems, items, path)?;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let elem = match ty {
                    Type::List(e) | Type::Set(e) => &**e,
                    Type::Tuple(elems) => elems.get(i).unwrap_or(&Type::Dynamic),
                    _ => &Type::Dynamic,
                };
                in_step(path, index_step(i), |p| {
                    encode_js(out, item, elem, p, depth + 1)
                })?;
            }
            out.push(']');
        }
        (Type::Map(elem), Value::Map(entries) | Value::Object(entries)) => {
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, key);
                out.push(':');
                let step = PathStep::Key(key.clone());
                in_step(path, step, |p| encode_js(out, item, elem, p, depth + 1))?;
            }
            out.push('}');
        }
        (Type::Object(attrs), Value::Object(values) | Value::Map(values)) => {
            check_no_extra_attrs(values, attrs, path)?;
            out.push('{');
            for (i, (name, attr_ty)) in attrs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, name);
                out.push(':');
                let item = values.get(name).unwrap_or(&NULL);
                let step = PathStep::Attr(name.clone());
                in_step(path, step, |p| encode_js(out, item, attr_ty, p, depth + 1))?;
            }
            out.push('}');
        }
        (ty, v) => return Err(mismatch(path, ty.describe(), v.describe())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    /// Bytes from space-separated hex, for hand-written wire data.
    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
            .collect()
    }

    /// A msgpack fixstr/str8 of `s`.
    fn mstr(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_str(&mut out, s, &Path::root()).expect("short string");
        out
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn obj(attrs: &[(&str, Type)]) -> Type {
        Type::Object(
            attrs
                .iter()
                .map(|(k, t)| (k.to_string(), t.clone()))
                .collect(),
        )
    }

    fn oval(attrs: &[(&str, Value)]) -> Value {
        Value::Object(
            attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    fn s(v: &str) -> Value {
        Value::String(v.to_string())
    }

    fn int(i: i64) -> Value {
        Value::Number(Number::Int(i))
    }

    fn big(t: &str) -> Value {
        Value::Number(Number::Big(t.to_string()))
    }

    fn float(f: f64) -> Value {
        Value::Number(Number::Float(f))
    }

    /// Encode, decode, compare; returns the bytes for further checks.
    fn round_trip(v: &Value, ty: &Type) -> Vec<u8> {
        let bytes = encode_msgpack(v, ty).expect("encode");
        let back = decode_msgpack(&bytes, ty).expect("decode");
        assert_eq!(&back, v, "msgpack round trip of {v:?} as {ty:?}");
        bytes
    }

    /// A schema shaped like a real resource, with every kind of type.
    fn big_type() -> Type {
        let replica = obj(&[("az", Type::String), ("size", Type::Number)]);
        obj(&[
            ("name", Type::String),
            ("enabled", Type::Bool),
            ("replicas", Type::list(replica)),
            ("tags", Type::map(Type::String)),
            ("ports", Type::set(Type::Number)),
            ("pair", Type::Tuple(vec![Type::String, Type::Bool])),
            ("extra", Type::Dynamic),
            (
                "nested",
                obj(&[("deep", obj(&[("leaf", Type::list(Type::String))]))]),
            ),
        ])
    }

    fn big_value() -> Value {
        oval(&[
            ("name", s("prod")),
            ("enabled", Value::Bool(true)),
            (
                "replicas",
                Value::List(vec![
                    oval(&[("az", s("eu-west-1a")), ("size", int(3))]),
                    oval(&[("az", s("eu-west-1b")), ("size", Value::Unknown)]),
                    oval(&[("az", Value::Null), ("size", float(0.5))]),
                ]),
            ),
            (
                "tags",
                Value::Map(
                    [
                        ("team".to_string(), s("infra")),
                        ("cost".to_string(), Value::Null),
                    ]
                    .into(),
                ),
            ),
            ("ports", Value::Set(vec![int(22), int(443)])),
            ("pair", Value::Tuple(vec![s("x"), Value::Bool(false)])),
            ("extra", oval(&[("k", Value::List(vec![s("a"), s("b")]))])),
            (
                "nested",
                oval(&[(
                    "deep",
                    oval(&[("leaf", Value::List(vec![s("l1"), Value::Unknown]))]),
                )]),
            ),
        ])
    }

    // ---- msgpack round trips ------------------------------------------------

    #[test]
    fn null_at_top_and_nested() {
        let ty = obj(&[("a", Type::String), ("b", Type::list(Type::Number))]);
        assert_eq!(encode_msgpack(&Value::Null, &ty).unwrap(), hex("c0"));
        assert_eq!(decode_msgpack(&hex("c0"), &ty).unwrap(), Value::Null);
        assert_eq!(
            decode_msgpack(&hex("c0"), &Type::Dynamic).unwrap(),
            Value::Null
        );

        let v = oval(&[("a", Value::Null), ("b", Value::Null)]);
        let expected = cat(&[&hex("82"), &mstr("a"), &hex("c0"), &mstr("b"), &hex("c0")]);
        assert_eq!(round_trip(&v, &ty), expected);
        // Attributes missing from the value are written as nil...
        assert_eq!(encode_msgpack(&oval(&[]), &ty).unwrap(), expected);
        // ...and attributes missing from the wire decode as null.
        assert_eq!(decode_msgpack(&hex("80"), &ty).unwrap(), v);
        let list = Value::List(vec![Value::Null, int(1)]);
        round_trip(&list, &Type::list(Type::Number));
    }

    #[test]
    fn unknown_plain_and_refined() {
        for ty in [Type::String, Type::Dynamic, big_type()] {
            assert_eq!(
                encode_msgpack(&Value::Unknown, &ty).unwrap(),
                hex("d4 00 00")
            );
            assert_eq!(
                decode_msgpack(&hex("d4 00 00"), &ty).unwrap(),
                Value::Unknown
            );
        }
        // Terraform 1.6+ refined unknown: ext 12 whose payload is a msgpack
        // map of refinements, here {1: true} ("definitely not null").
        let refined = hex("c7 03 0c 81 01 c3");
        assert_eq!(
            decode_msgpack(&refined, &Type::String).unwrap(),
            Value::Unknown
        );
        // Not null and string prefix "ab": {1: true, 2: "ab"} in an ext8.
        let payload = cat(&[&hex("82 01 c3 02"), &mstr("ab")]);
        let refined2 = cat(&[&hex("c7"), &[payload.len() as u8], &hex("0c"), &payload]);
        let ty = obj(&[("id", Type::String), ("n", Type::Number)]);
        let bytes = cat(&[
            &hex("82"),
            &mstr("id"),
            &refined2,
            &mstr("n"),
            &hex("d4 00 00"),
        ]);
        assert_eq!(
            decode_msgpack(&bytes, &ty).unwrap(),
            oval(&[("id", Value::Unknown), ("n", Value::Unknown)])
        );
        // Unknowns re-encode as the plain form.
        assert_eq!(
            encode_msgpack(&decode_msgpack(&bytes, &ty).unwrap(), &ty).unwrap(),
            cat(&[
                &hex("82"),
                &mstr("id"),
                &hex("d4 00 00"),
                &mstr("n"),
                &hex("d4 00 00")
            ])
        );
        let v = Value::List(vec![Value::Unknown, s("x")]);
        assert!(!v.is_wholly_known());
        assert!(v.is_known());
        round_trip(&v, &Type::list(Type::String));
    }

    #[test]
    fn nested_objects_lists_maps_sets_tuples_dynamic() {
        let ty = big_type();
        let v = big_value();
        round_trip(&v, &ty);
        assert_eq!(
            v.get_attr("nested").get_attr("deep").get_attr("missing"),
            &Value::Null
        );
        assert_eq!(v.get_attr("name").as_str(), Some("prod"));
        assert_eq!(v.get_attr("name").get_attr("x"), &Value::Null);
    }

    #[test]
    fn hand_written_nested_object() {
        // {"db": {"replicas": [{"az": "a"}], "tags": {"team": "x"}}}
        let ty = obj(&[(
            "db",
            obj(&[
                ("replicas", Type::list(obj(&[("az", Type::String)]))),
                ("tags", Type::map(Type::String)),
                ("ports", Type::set(Type::Number)),
                ("t", Type::Tuple(vec![Type::Number, Type::Bool])),
            ]),
        )]);
        let bytes = cat(&[
            &hex("81"),
            &mstr("db"),
            &hex("84"),
            &mstr("ports"),
            &hex("92 16 cd 01 bb"),
            &mstr("replicas"),
            &hex("91 81"),
            &mstr("az"),
            &mstr("a"),
            &mstr("t"),
            &hex("92 ff c2"),
            &mstr("tags"),
            &hex("81"),
            &mstr("team"),
            &mstr("x"),
        ]);
        let expected = oval(&[(
            "db",
            oval(&[
                ("ports", Value::Set(vec![int(22), int(443)])),
                ("replicas", Value::List(vec![oval(&[("az", s("a"))])])),
                ("t", Value::Tuple(vec![int(-1), Value::Bool(false)])),
                ("tags", Value::Map([("team".to_string(), s("x"))].into())),
            ]),
        )]);
        assert_eq!(decode_msgpack(&bytes, &ty).unwrap(), expected);
        assert_eq!(round_trip(&expected, &ty), bytes);
    }

    #[test]
    fn large_numbers() {
        let n = Type::Number;
        assert_eq!(
            round_trip(&int(i64::MAX), &n),
            hex("cf 7f ff ff ff ff ff ff ff")
        );
        assert_eq!(
            round_trip(&int(i64::MIN), &n),
            hex("d3 80 00 00 00 00 00 00 00")
        );
        assert_eq!(
            decode_msgpack(&hex("d3 7f ff ff ff ff ff ff ff"), &n).unwrap(),
            int(i64::MAX)
        );
        let max = decode_msgpack(&hex("cf ff ff ff ff ff ff ff ff"), &n).unwrap();
        assert_eq!(max, big("18446744073709551615"));
        assert!(matches!(max, Value::Number(Number::Big(_))));
        assert_eq!(max.as_i64(), None);
        assert_eq!(round_trip(&max, &n), mstr("18446744073709551615"));

        let huge = "123456789012345678901234567890";
        let v = decode_msgpack(&mstr(huge), &n).unwrap();
        assert!(matches!(&v, Value::Number(Number::Big(t)) if t == huge));
        assert_eq!(round_trip(&v, &n), mstr(huge));
        // Integer-valued strings that fit become Int.
        assert_eq!(decode_msgpack(&mstr("-42"), &n).unwrap(), int(-42));
        assert!(matches!(
            decode_msgpack(&mstr("-42"), &n).unwrap(),
            Value::Number(Number::Int(-42))
        ));
        // Smallest forms for a range of ints.
        for (i, bytes) in [
            (0, "00"),
            (127, "7f"),
            (128, "cc 80"),
            (255, "cc ff"),
            (256, "cd 01 00"),
            (65536, "ce 00 01 00 00"),
            (1 << 32, "cf 00 00 00 01 00 00 00 00"),
            (-1, "ff"),
            (-32, "e0"),
            (-33, "d0 df"),
            (-129, "d1 ff 7f"),
            (-32769, "d2 ff ff 7f ff"),
            (-(1 << 31) - 1, "d3 ff ff ff ff 7f ff ff ff"),
        ] {
            assert_eq!(round_trip(&int(i), &n), hex(bytes), "{i}");
        }
        // Every msgpack int width decodes.
        assert_eq!(decode_msgpack(&hex("d0 80"), &n).unwrap(), int(-128));
        assert_eq!(decode_msgpack(&hex("d1 80 00"), &n).unwrap(), int(-32768));
        assert_eq!(
            decode_msgpack(&hex("d2 80 00 00 00"), &n).unwrap(),
            int(-(1 << 31))
        );
        assert_eq!(
            decode_msgpack(&hex("ce ff ff ff ff"), &n).unwrap(),
            int(u32::MAX.into())
        );
    }

    #[test]
    fn fractional_numbers() {
        let n = Type::Number;
        for f in [0.5, -1.25, 1e-7, 1e300, f64::MIN_POSITIVE, 5e-324] {
            let bytes = round_trip(&float(f), &n);
            let mut expected = vec![0xcb];
            expected.extend_from_slice(&f.to_bits().to_be_bytes());
            assert_eq!(bytes, expected, "{f}");
        }
        // f32 on the wire.
        assert_eq!(
            decode_msgpack(&hex("ca 3f 00 00 00"), &n).unwrap(),
            float(0.5)
        );
        // Integral floats are written as ints and read back equal.
        assert_eq!(encode_msgpack(&float(3.0), &n).unwrap(), hex("03"));
        assert_eq!(
            decode_msgpack(&hex("cb 40 08 00 00 00 00 00 00"), &n).unwrap(),
            int(3)
        );
        // Decimal text: exact binary fractions become Float, the rest stay text.
        assert!(
            matches!(decode_msgpack(&mstr("0.5"), &n).unwrap(), Value::Number(Number::Float(f)) if f == 0.5)
        );
        let tenth = decode_msgpack(&mstr("0.1"), &n).unwrap();
        assert!(matches!(&tenth, Value::Number(Number::Big(t)) if t == "0.1"));
        assert_eq!(round_trip(&tenth, &n), mstr("0.1"));
        assert_eq!(tenth.as_f64(), Some(0.1));
        assert_eq!(decode_msgpack(&mstr("1e-7"), &n).unwrap(), big("0.0000001"));
        assert_eq!(decode_msgpack(&mstr("-1.25"), &n).unwrap(), float(-1.25));
        // Infinity and NaN are not numbers.
        for bad in [
            "inf", "Infinity", "NaN", "-inf", "", "1e", "0x10", "1.2.3", " 1",
        ] {
            let err = decode_msgpack(&mstr(bad), &n).unwrap_err();
            assert!(matches!(err, Error::InvalidNumber { .. }), "{bad}: {err}");
        }
        assert!(decode_msgpack(&hex("cb 7f f8 00 00 00 00 00 00"), &n).is_err());
        assert!(encode_msgpack(&float(f64::NAN), &n).is_err());
        assert!(encode_msgpack(&float(f64::INFINITY), &n).is_err());
        assert!(encode_msgpack(&big("twelve"), &n).is_err());
    }

    #[test]
    fn numbers_as_decimal_text_read_back_as_the_same_numbers() {
        let n = Type::Number;
        for (v, text) in [
            (int(5432), "5432"),
            (int(-7), "-7"),
            (int(0), "0"),
            (float(0.5), "0.5"),
            (big("0.1"), "0.1"),
            (
                big("123456789012345678901234567890"),
                "123456789012345678901234567890",
            ),
        ] {
            let bytes = encode_msgpack_with(&v, &n, Numbers::DecimalText).unwrap();
            assert_eq!(bytes, mstr(text), "{v:?}");
            assert_eq!(decode_msgpack(&bytes, &n).unwrap(), v);
        }
        // Inside collections too; other types are written as usual.
        let ty = obj(&[("size", Type::Number), ("name", Type::String)]);
        let v = oval(&[("size", int(3)), ("name", s("a"))]);
        let text = encode_msgpack_with(&v, &ty, Numbers::DecimalText).unwrap();
        assert_ne!(text, encode_msgpack(&v, &ty).unwrap());
        assert_eq!(decode_msgpack(&text, &ty).unwrap(), v);
        assert!(encode_msgpack_with(&float(f64::NAN), &n, Numbers::DecimalText).is_err());
    }

    #[test]
    fn number_equality_and_conversions() {
        assert_eq!(Number::Int(3), Number::Float(3.0));
        assert_eq!(Number::Float(0.1), Number::Big("0.1".into()));
        assert_eq!(Number::Big("1.50".into()), Number::Float(1.5));
        assert_eq!(Number::Big("1e3".into()), Number::Int(1000));
        assert_eq!(Number::Int(0), Number::Float(-0.0));
        assert_ne!(Number::Int(1), Number::Int(2));
        assert_ne!(Number::Float(f64::NAN), Number::Float(f64::NAN));
        assert_ne!(Number::Big("x".into()), Number::Big("x".into()));
        assert_eq!(Number::Float(4.0).as_i64(), Some(4));
        assert_eq!(Number::Float(4.5).as_i64(), None);
        assert_eq!(Number::Float(1e19).as_i64(), None);
        assert_eq!(Number::Big("12".into()).as_i64(), Some(12));
        assert_eq!(Number::Int(7).as_f64(), Some(7.0));
        assert_eq!(
            Number::parse("100000000000000000000"),
            Some(Number::Big("100000000000000000000".into()))
        );
        assert_eq!(Number::parse("0.000"), Some(Number::Int(0)));
        assert_eq!(Number::Big("1e-30".into()).to_string(), "1e-30");
        assert_eq!(Number::Float(1e-7).to_string(), "0.0000001");
        assert_eq!(Number::Float(-2.5).to_string(), "-2.5");
        assert_eq!(Number::Int(-9).to_string(), "-9");
        assert_eq!(Value::Number(Number::Float(2.0)).as_i64(), Some(2));
        assert_eq!(s("x").as_i64(), None);
        assert_eq!(Value::Bool(true).as_bool(), Some(true));
    }

    #[test]
    fn strings_unicode_and_binary() {
        let t = Type::String;
        for text in [
            "",
            "plain",
            "héllo wörld ✓ 日本語 🚀",
            &"long ".repeat(100),
            &"x".repeat(70_000),
        ] {
            round_trip(&s(text), &t);
        }
        let long = "é".repeat(20); // 40 bytes: str8
        assert_eq!(
            &encode_msgpack(&s(&long), &t).unwrap()[..2],
            &hex("d9 28")[..]
        );
        assert_eq!(
            &encode_msgpack(&s(&"x".repeat(300)), &t).unwrap()[..3],
            &hex("da 01 2c")[..]
        );
        // bin holding UTF-8 is accepted; invalid UTF-8 is not.
        assert_eq!(decode_msgpack(&hex("c4 02 68 69"), &t).unwrap(), s("hi"));
        assert!(decode_msgpack(&hex("c4 02 ff fe"), &t).is_err());
        assert!(decode_msgpack(&hex("a2 c3 28"), &t).is_err());
    }

    #[test]
    fn empty_collections() {
        round_trip(&Value::List(vec![]), &Type::list(Type::String));
        round_trip(&Value::Set(vec![]), &Type::set(Type::String));
        round_trip(&Value::Map(BTreeMap::new()), &Type::map(Type::Number));
        round_trip(&Value::Tuple(vec![]), &Type::Tuple(vec![]));
        round_trip(
            &Value::Object(BTreeMap::new()),
            &Type::Object(BTreeMap::new()),
        );
        assert_eq!(
            encode_msgpack(&Value::List(vec![]), &Type::list(Type::String)).unwrap(),
            hex("90")
        );
        assert_eq!(
            encode_msgpack(&Value::Map(BTreeMap::new()), &Type::map(Type::String)).unwrap(),
            hex("80")
        );
        let long: Vec<Value> = (0..70_000).map(int).collect();
        let bytes = round_trip(&Value::List(long), &Type::list(Type::Number));
        assert_eq!(&bytes[..5], &hex("dd 00 01 11 70")[..]);
    }

    #[test]
    fn dynamic_values() {
        let d = Type::Dynamic;
        let bytes = cat(&[&hex("92 c4 08"), b"\"string\"", &mstr("hello")]);
        assert_eq!(decode_msgpack(&bytes, &d).unwrap(), s("hello"));
        assert_eq!(encode_msgpack(&s("hello"), &d).unwrap(), bytes);
        // The type JSON may also come as a msgpack str.
        let bytes = cat(&[&hex("92"), &mstr("[\"list\",\"number\"]"), &hex("92 01 02")]);
        assert_eq!(
            decode_msgpack(&bytes, &d).unwrap(),
            Value::List(vec![int(1), int(2)])
        );
        for v in [
            int(5),
            Value::Bool(true),
            oval(&[
                ("a", int(1)),
                ("b", Value::List(vec![s("x"), Value::Null])),
                ("c", Value::Null),
            ]),
            Value::Tuple(vec![s("x"), int(1)]),
            Value::Map([("k".to_string(), Value::Set(vec![float(0.5)]))].into()),
            Value::List(vec![oval(&[("a", Value::Null)]), oval(&[("a", s("y"))])]),
            Value::List(vec![Value::Null]),
        ] {
            round_trip(&v, &d);
            round_trip(&oval(&[("x", v.clone())]), &obj(&[("x", Type::Dynamic)]));
        }
        let inferred = encode_msgpack(&oval(&[("a", int(1))]), &d).unwrap();
        let needle = br#"["object",{"a":"number"}]"#;
        assert!(inferred.windows(needle.len()).any(|w| w == needle));
        // Mixed element types cannot be one list.
        let err = encode_msgpack(&Value::List(vec![s("x"), int(1)]), &d).unwrap_err();
        assert_eq!(err.path(), &Path::root().index(1));
        // Wrong shapes and bad type JSON.
        assert!(decode_msgpack(&mstr("x"), &d).is_err());
        assert!(decode_msgpack(&cat(&[&hex("92"), &mstr("\"strin\""), &mstr("x")]), &d).is_err());
        assert!(decode_msgpack(&cat(&[&hex("92"), &mstr("[\"list\"]"), &hex("90")]), &d).is_err());
        assert!(decode_msgpack(&cat(&[&hex("92"), &mstr("\"number\""), &mstr("x")]), &d).is_err());
        assert!(decode_msgpack(&cat(&[&hex("92 01"), &mstr("x")]), &d).is_err());
    }

    // ---- msgpack errors -------------------------------------------------------

    #[test]
    fn wrong_type_names_the_path() {
        let ty = obj(&[("network", obj(&[("vpc_cidr", Type::String)]))]);
        let bytes = cat(&[
            &hex("81"),
            &mstr("network"),
            &hex("81"),
            &mstr("vpc_cidr"),
            &hex("05"),
        ]);
        let err = decode_msgpack(&bytes, &ty).unwrap_err();
        assert_eq!(err.path(), &Path::root().attr("network").attr("vpc_cidr"));
        assert_eq!(
            err.to_string(),
            "at network.vpc_cidr: expected string, found msgpack integer"
        );

        let ty = obj(&[(
            "database",
            obj(&[("read_replicas", Type::list(Type::Number))]),
        )]);
        let bytes = cat(&[
            &hex("81"),
            &mstr("database"),
            &hex("81"),
            &mstr("read_replicas"),
            &hex("91 c3"),
        ]);
        let err = decode_msgpack(&bytes, &ty).unwrap_err();
        assert!(
            err.to_string().contains("database.read_replicas[0]"),
            "{err}"
        );

        let ty = obj(&[("tags", Type::map(Type::String))]);
        let bytes = cat(&[
            &hex("81"),
            &mstr("tags"),
            &hex("81"),
            &mstr("team"),
            &hex("90"),
        ]);
        let err = decode_msgpack(&bytes, &ty).unwrap_err();
        assert_eq!(
            err.to_string(),
            "at tags[\"team\"]: expected string, found msgpack array"
        );

        let ty = obj(&[("a", Type::String)]);
        let err = decode_msgpack(&cat(&[&hex("81"), &mstr("bogus"), &hex("c0")]), &ty).unwrap_err();
        assert!(matches!(err, Error::UnexpectedAttribute { .. }));
        assert_eq!(err.path(), &Path::root().attr("bogus"));
        assert!(
            err.to_string().contains("bogus") && err.to_string().contains("(a)"),
            "{err}"
        );

        let err = encode_msgpack(&oval(&[("a", int(1))]), &ty).unwrap_err();
        assert_eq!(err.to_string(), "at a: expected string, found number value");
        let err = encode_msgpack(&oval(&[("zzz", int(1))]), &ty).unwrap_err();
        assert!(matches!(err, Error::UnexpectedAttribute { .. }));

        let err = decode_msgpack(&hex("05"), &Type::Bool).unwrap_err();
        assert_eq!(
            err.to_string(),
            "at root: expected bool, found msgpack integer"
        );
        assert!(decode_msgpack(
            &hex("91 01"),
            &Type::Tuple(vec![Type::Number, Type::Number])
        )
        .is_err());
        assert!(encode_msgpack(&Value::Tuple(vec![int(1)]), &Type::Tuple(vec![])).is_err());
        // Duplicate keys are rejected rather than silently merged.
        let dup = cat(&[&hex("82"), &mstr("a"), &hex("c0"), &mstr("a"), &hex("c0")]);
        assert!(decode_msgpack(&dup, &ty).is_err());
        assert!(decode_msgpack(&dup, &Type::map(Type::String)).is_err());
        // Non-string map keys.
        assert!(decode_msgpack(&hex("81 01 c0"), &Type::map(Type::String)).is_err());
    }

    #[test]
    fn truncated_input_is_an_error() {
        let ty = big_type();
        let bytes = encode_msgpack(&big_value(), &ty).unwrap();
        for len in 0..bytes.len() {
            assert!(
                decode_msgpack(&bytes[..len], &ty).is_err(),
                "prefix of {len}"
            );
        }
        let err = decode_msgpack(&[], &Type::String).unwrap_err();
        assert!(matches!(err, Error::Msgpack { .. }), "{err}");
        // Trailing bytes are an error too.
        assert!(decode_msgpack(&hex("c0 c0"), &Type::String).is_err());
        assert!(decode_msgpack(&hex("c1"), &Type::String).is_err());
        for cut in [
            "cd 01",
            "cb 00 00",
            "d9",
            "d9 05 61",
            "c7 05 00 01",
            "d4 00",
            "ca 00",
        ] {
            assert!(decode_msgpack(&hex(cut), &Type::Number).is_err(), "{cut}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let mut ty = Type::String;
        for _ in 0..1000 {
            ty = Type::list(ty);
        }
        let mut bytes = vec![0x91; 1000];
        bytes.push(0xc0);
        let err = decode_msgpack(&bytes, &ty).unwrap_err();
        assert!(matches!(err, Error::TooDeep { .. }), "{err}");
        let mut v = Value::Null;
        for _ in 0..1000 {
            v = Value::List(vec![v]);
        }
        assert!(matches!(
            encode_msgpack(&v, &ty),
            Err(Error::TooDeep { .. })
        ));
        assert!(matches!(
            encode_msgpack(&v, &Type::Dynamic),
            Err(Error::TooDeep { .. })
        ));
        assert!(matches!(
            v.to_json(&Path::root()),
            Err(Error::TooDeep { .. })
        ));
        assert!(matches!(encode_json(&v, &ty), Err(Error::TooDeep { .. })));

        // The same through a dynamic type whose JSON nests 1000 deep.
        let type_json = format!(
            "{}\"string\"{}",
            "[\"list\",".repeat(1000),
            "]".repeat(1000)
        );
        let mut bytes = hex("92");
        bytes.extend(hex("c5"));
        bytes.extend((type_json.len() as u16).to_be_bytes());
        bytes.extend(type_json.as_bytes());
        bytes.extend(vec![0x91; 1000]);
        bytes.push(0xc0);
        assert!(decode_msgpack(&bytes, &Type::Dynamic).is_err());
        // And dynamic wrappers nested inside each other.
        let mut nested = Vec::new();
        for _ in 0..1000 {
            nested.extend(cat(&[&hex("92"), &mstr("\"dynamic\"")]));
        }
        nested.push(0xc0);
        assert!(matches!(
            decode_msgpack(&nested, &Type::Dynamic),
            Err(Error::TooDeep { .. })
        ));

        // Nesting up to the limit still works.
        let mut ty = Type::String;
        let mut v = s("leaf");
        for _ in 0..MAX_DEPTH {
            ty = Type::list(ty);
            v = Value::List(vec![v]);
        }
        round_trip(&v, &ty);
    }

    #[test]
    fn huge_declared_lengths_are_errors() {
        let list = Type::list(Type::Number);
        // 2^31 elements declared, 3 bytes present.
        let err = decode_msgpack(&hex("dd 80 00 00 00 01 02 03"), &list).unwrap_err();
        assert!(matches!(err, Error::Msgpack { .. }), "{err}");
        assert!(decode_msgpack(&hex("dd ff ff ff ff"), &list).is_err());
        assert!(decode_msgpack(&hex("df ff ff ff ff 01 02 03"), &Type::map(Type::Number)).is_err());
        assert!(decode_msgpack(&hex("df ff ff ff ff"), &obj(&[])).is_err());
        assert!(decode_msgpack(&hex("db ff ff ff ff 61"), &Type::String).is_err());
        assert!(decode_msgpack(&hex("c6 ff ff ff ff 61"), &Type::String).is_err());
        assert!(decode_msgpack(&hex("c9 ff ff ff ff 00 61"), &Type::String).is_err());
        assert!(decode_msgpack(&hex("92 c6 ff ff ff ff"), &Type::Dynamic).is_err());
        let too_big = vec![0u8; MAX_INPUT_BYTES + 1];
        assert!(decode_msgpack(&too_big, &Type::Number).is_err());
        assert!(decode_json(&too_big, &Type::Number).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small xorshift generator keeps this deterministic without deps.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let types = [
            big_type(),
            Type::Dynamic,
            Type::list(Type::Dynamic),
            Type::map(Type::Number),
        ];
        let valid = encode_msgpack(&big_value(), &big_type()).unwrap();
        for round in 0..20_000 {
            let bytes: Vec<u8> = if round % 2 == 0 {
                let len = (next() % 64) as usize;
                (0..len).map(|_| next() as u8).collect()
            } else {
                let mut b = valid.clone();
                for _ in 0..(1 + next() % 4) {
                    let at = (next() as usize) % b.len();
                    b[at] = next() as u8;
                }
                b
            };
            for ty in &types {
                let _ = decode_msgpack(&bytes, ty);
                let _ = decode_json(&bytes, ty);
            }
        }
    }

    /// Found by `make fuzz` (cty_decode): an exponent near i64::MAX
    /// overflowed the size check of `Decimal::to_i64`, which panicked in
    /// debug builds and, wrapping in release builds, went on to multiply
    /// by ten i64::MAX times (a hang).
    #[test]
    fn exponents_near_the_i64_limit_stay_exact_text() {
        for text in [
            "1e9223372036854775807",
            "1955555E00000000009223372036854775807",
            "-7e9223372036854775800",
        ] {
            let n = Number::parse(text).expect(text);
            assert!(matches!(n, Number::Big(_)), "{text}: {n:?}");
            assert_eq!(n.as_i64(), None, "{text}");
        }
        let v = decode_json(b"1955555E00000000009223372036854775807", &Type::Number).unwrap();
        assert!(matches!(v, Value::Number(Number::Big(_))), "{v:?}");
        assert_eq!(
            Number::parse("1e18").and_then(|n| n.as_i64()),
            Some(1_000_000_000_000_000_000)
        );
    }

    // ---- type JSON ------------------------------------------------------------

    #[test]
    fn type_json_round_trips() {
        let cases = [
            (Type::String, r#""string""#),
            (Type::Number, r#""number""#),
            (Type::Bool, r#""bool""#),
            (Type::Dynamic, r#""dynamic""#),
            (Type::list(Type::String), r#"["list","string"]"#),
            (Type::set(Type::Number), r#"["set","number"]"#),
            (Type::map(Type::Bool), r#"["map","bool"]"#),
            (
                obj(&[("b", Type::Number), ("a", Type::list(Type::String))]),
                r#"["object",{"a":["list","string"],"b":"number"}]"#,
            ),
            (Type::Object(BTreeMap::new()), r#"["object",{}]"#),
            (
                Type::Tuple(vec![Type::String, Type::Dynamic]),
                r#"["tuple",["string","dynamic"]]"#,
            ),
            (Type::Tuple(vec![]), r#"["tuple",[]]"#),
            (big_type(), ""),
        ];
        for (ty, json) in cases {
            let bytes = ty.to_json_bytes();
            if !json.is_empty() {
                assert_eq!(String::from_utf8(bytes.clone()).unwrap(), json);
            }
            let parsed: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(parsed, ty.to_json());
            assert_eq!(Type::from_json(&parsed).unwrap(), ty);
        }
        // Type constraints' optional-attribute list is accepted.
        let with_optional = serde_json::json!(["object", {"a": "string"}, ["a"]]);
        assert_eq!(
            Type::from_json(&with_optional).unwrap(),
            obj(&[("a", Type::String)])
        );
        for bad in [
            serde_json::json!("strin"),
            serde_json::json!(["list"]),
            serde_json::json!(["list", "string", "x"]),
            serde_json::json!(["object", ["a"]]),
            serde_json::json!(["tuple", "string"]),
            serde_json::json!(["capsule", "x"]),
            serde_json::json!([]),
            serde_json::json!(1),
            serde_json::json!({"a": "string"}),
        ] {
            let err = Type::from_json(&bad).unwrap_err();
            assert!(matches!(err, Error::InvalidType { .. }), "{bad}: {err}");
        }
    }

    // ---- JSON -----------------------------------------------------------------

    #[test]
    fn json_decode_raw_state() {
        let ty = obj(&[
            ("id", Type::String),
            ("count", Type::Number),
            ("ratio", Type::Number),
            ("huge", Type::Number),
            ("tiny", Type::Number),
            ("on", Type::Bool),
            ("ids", Type::set(Type::String)),
            ("tags", Type::map(Type::String)),
            ("pair", Type::Tuple(vec![Type::Number, Type::String])),
            ("missing", Type::String),
            ("any", Type::Dynamic),
            ("anynull", Type::Dynamic),
        ]);
        let raw = r#" {
            "id": "i-123 \u00e9\ud83d\ude80\n", "count": 3, "ratio": -1.25,
            "huge": 123456789012345678901234567890, "tiny": 1e-7, "on": true,
            "ids": ["b", "a"], "tags": {"team": "x"}, "pair": [1, "y"],
            "any": {"value": ["a", 1], "type": ["tuple", ["string", "number"]]},
            "anynull": null
        } "#;
        let v = decode_json(raw.as_bytes(), &ty).unwrap();
        assert_eq!(v.get_attr("id"), &s("i-123 é🚀\n"));
        assert!(matches!(v.get_attr("count"), Value::Number(Number::Int(3))));
        assert!(matches!(v.get_attr("ratio"), Value::Number(Number::Float(f)) if *f == -1.25));
        assert!(
            matches!(v.get_attr("huge"), Value::Number(Number::Big(t)) if t == "123456789012345678901234567890")
        );
        assert_eq!(v.get_attr("tiny"), &float(1e-7));
        assert_eq!(v.get_attr("on"), &Value::Bool(true));
        assert_eq!(v.get_attr("ids"), &Value::Set(vec![s("b"), s("a")]));
        assert_eq!(
            v.get_attr("tags"),
            &Value::Map([("team".to_string(), s("x"))].into())
        );
        assert_eq!(v.get_attr("pair"), &Value::Tuple(vec![int(1), s("y")]));
        assert_eq!(v.get_attr("missing"), &Value::Null);
        assert_eq!(v.get_attr("any"), &Value::Tuple(vec![s("a"), int(1)]));
        assert!(v.is_wholly_known());

        // Round trip through encode_json and msgpack.
        let again = decode_json(&encode_json(&v, &ty).unwrap(), &ty).unwrap();
        assert_eq!(again, v);
        round_trip(&v, &ty);

        // Extra attributes and wrong types name the path.
        // Like cty, a number where a string goes is taken as its text.
        let lenient = decode_json(br#"{"tags": {"team": 1.5e999}}"#, &ty).unwrap();
        assert_eq!(
            lenient.get_attr("tags"),
            &Value::Map([("team".to_string(), s("1.5e999"))].into())
        );
        let err = decode_json(br#"{"tags": {"team": []}}"#, &ty).unwrap_err();
        assert_eq!(
            err.to_string(),
            "at tags[\"team\"]: expected string, found JSON array"
        );
        let err = decode_json(br#"{"bogus": 1}"#, &ty).unwrap_err();
        assert_eq!(err.path(), &Path::root().attr("bogus"));
        let err = decode_json(br#"{"pair": [1]}"#, &ty).unwrap_err();
        assert_eq!(err.path(), &Path::root().attr("pair"));
        assert!(decode_json(br#"{"any": ["a"]}"#, &ty).is_err());
        assert!(decode_json(br#"{"count": "nope"}"#, &ty).is_err());
        assert_eq!(
            decode_json(br#"{"count": "12"}"#, &ty)
                .unwrap()
                .get_attr("count"),
            &int(12)
        );
    }

    #[test]
    fn json_syntax_errors() {
        let ty = Type::Dynamic;
        for bad in [
            "",
            " ",
            "{",
            "[1,",
            "[1 2]",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "[01]",
            "1.",
            "-",
            "1e+",
            "\"abc",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\u12\"",
            "tru",
            "nul",
            "{\"a\":1,\"a\":2}",
            "\"\u{1}\"",
            "[] x",
            "{1:2}",
            "NaN",
            "Infinity",
        ] {
            let err = decode_json(bad.as_bytes(), &Type::list(Type::String)).unwrap_err();
            assert!(matches!(err, Error::Json { .. }), "{bad:?}: {err}");
            assert!(decode_json(bad.as_bytes(), &ty).is_err());
        }
        assert!(decode_json(&[0xff, 0xfe], &Type::String).is_err());
        let deep = "[".repeat(1000);
        assert!(matches!(
            decode_json(deep.as_bytes(), &ty),
            Err(Error::TooDeep { .. })
        ));
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(Value::from_json_typed(&serde_json::from_str(&deep).unwrap(), &ty).is_ok());
    }

    #[test]
    fn json_encode() {
        let ty = obj(&[
            ("a", Type::String),
            ("b", Type::Number),
            ("c", Type::list(Type::Number)),
            ("d", Type::Dynamic),
            ("e", Type::map(Type::Bool)),
        ]);
        let v = oval(&[
            ("a", s("q\"\\\u{1}é")),
            ("b", big("123456789012345678901234567890")),
            (
                "c",
                Value::List(vec![float(0.5), int(-3), big("0.1"), float(1e300)]),
            ),
            ("d", Value::Tuple(vec![s("x")])),
        ]);
        let out = String::from_utf8(encode_json(&v, &ty).unwrap()).unwrap();
        assert_eq!(
            out,
            r#"{"a":"q\"\\\u0001é","b":123456789012345678901234567890,"c":[0.5,-3,0.1,1e300],"d":{"value":["x"],"type":["tuple",["string"]]},"e":null}"#
        );
        assert_eq!(
            decode_json(out.as_bytes(), &ty).unwrap(),
            oval(&[("e", Value::Null)]).pipe_merge(&v)
        );
        let err = encode_json(&oval(&[("c", Value::List(vec![Value::Unknown]))]), &ty).unwrap_err();
        assert!(matches!(err, Error::Unknown { .. }));
        assert_eq!(
            err.to_string(),
            "at c[0]: expected a known value, found a value not yet known"
        );
        assert!(encode_json(&float(f64::NAN), &Type::Number).is_err());
    }

    /// Test helper: `self` with `other`'s object attributes laid over it.
    trait PipeMerge {
        fn pipe_merge(self, other: &Value) -> Value;
    }

    impl PipeMerge for Value {
        fn pipe_merge(self, other: &Value) -> Value {
            match (self, other) {
                (Value::Object(mut a), Value::Object(b)) => {
                    a.extend(b.clone());
                    Value::Object(a)
                }
                (a, _) => a,
            }
        }
    }

    #[test]
    fn to_json_plain() {
        let v = oval(&[
            ("n", int(1)),
            ("f", float(2.0)),
            ("u", big("18446744073709551615")),
            ("b", big("123456789012345678901234567890")),
            ("set", Value::Set(vec![s("x")])),
            ("m", Value::Map([("k".to_string(), Value::Null)].into())),
        ]);
        let j = v.to_json(&Path::root()).unwrap();
        assert_eq!(j["n"], serde_json::json!(1));
        assert_eq!(j["f"], serde_json::json!(2));
        assert_eq!(j["u"], serde_json::json!(u64::MAX));
        assert_eq!(j["b"].as_f64(), Some(1.2345678901234568e29));
        assert_eq!(j["set"], serde_json::json!(["x"]));
        assert_eq!(j["m"], serde_json::json!({"k": null}));
        let err = oval(&[("x", Value::List(vec![Value::Unknown]))])
            .to_json(&Path::root().attr("top"))
            .unwrap_err();
        assert_eq!(err.path(), &Path::root().attr("top").attr("x").index(0));
        assert!(err.to_string().contains("not yet known"));
    }

    // ---- serde structs ----------------------------------------------------------

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Network {
        name: String,
        cidr: Option<String>,
        size: Option<i64>,
        ratio: f64,
        zones: Vec<String>,
        tags: BTreeMap<String, String>,
        peer: Option<Peer>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Peer {
        id: u64,
        enabled: bool,
    }

    fn network_type() -> Type {
        obj(&[
            ("name", Type::String),
            ("cidr", Type::String),
            ("size", Type::Number),
            ("ratio", Type::Number),
            ("zones", Type::list(Type::String)),
            ("tags", Type::map(Type::String)),
            (
                "peer",
                obj(&[("id", Type::Number), ("enabled", Type::Bool)]),
            ),
        ])
    }

    #[test]
    fn serde_round_trip() {
        let ty = network_type();
        let n = Network {
            name: "main".into(),
            cidr: None,
            size: Some(24),
            ratio: 0.25,
            zones: vec!["a".into(), "b".into()],
            tags: [("team".to_string(), "infra".to_string())].into(),
            peer: Some(Peer {
                id: u64::MAX,
                enabled: true,
            }),
        };
        let v = to_value(&n, &ty).unwrap();
        assert_eq!(v.get_attr("cidr"), &Value::Null);
        assert_eq!(v.get_attr("size"), &int(24));
        assert_eq!(
            v.get_attr("peer").get_attr("id"),
            &big("18446744073709551615")
        );
        assert_eq!(from_value::<Network>(&v).unwrap(), n);
        // Through the wire too.
        let wire = decode_msgpack(&encode_msgpack(&v, &ty).unwrap(), &ty).unwrap();
        assert_eq!(from_value::<Network>(&wire).unwrap(), n);

        // Missing attributes decode as None.
        let sparse = oval(&[
            ("name", s("x")),
            ("ratio", int(1)),
            ("zones", Value::List(vec![])),
            ("tags", Value::Map(BTreeMap::new())),
        ]);
        let got: Network = from_value(&sparse).unwrap();
        assert_eq!(got.cidr, None);
        assert_eq!(got.peer, None);
        assert_eq!(got.ratio, 1.0);

        // Unknowns and shape errors are reported.
        let err = from_value::<Network>(
            &sparse
                .clone()
                .pipe_merge(&oval(&[("cidr", Value::Unknown)])),
        )
        .unwrap_err();
        assert_eq!(err.path(), &Path::root().attr("cidr"));
        assert!(matches!(
            from_value::<Network>(&oval(&[])),
            Err(Error::Serde { .. })
        ));
        let err = to_value(&n, &obj(&[("name", Type::String)])).unwrap_err();
        assert!(matches!(err, Error::UnexpectedAttribute { .. }));
        // A dynamic slot takes the JSON's own shape.
        let v = to_value(&serde_json::json!({"a": [1, "x"]}), &Type::Dynamic).unwrap();
        assert_eq!(v, oval(&[("a", Value::Tuple(vec![int(1), s("x")]))]));
    }

    // ---- paths ------------------------------------------------------------------

    #[test]
    fn path_display() {
        assert_eq!(Path::root().to_string(), "");
        assert_eq!(
            Path::root()
                .attr("database")
                .attr("read_replicas")
                .index(0)
                .to_string(),
            "database.read_replicas[0]"
        );
        assert_eq!(
            Path::root().attr("tags").key("team").to_string(),
            "tags[\"team\"]"
        );
        assert_eq!(Path::root().index(2).attr("x").to_string(), "[2].x");
        assert_eq!(Path::root().key("a\"b").to_string(), "[\"a\\\"b\"]");
        assert_eq!(Value::null_of(&Type::String), Value::Null);
        assert!(Value::Null.is_null());
        assert!(!Value::Unknown.is_known());
    }
}
