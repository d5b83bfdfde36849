//! Scalar resolution the way Kubernetes reads YAML (YAML 1.1 rules of go-yaml v2, used by sigs.k8s.io/yaml).
//!
//! No YAML crate does this: saphyr and friends follow YAML 1.2's core schema, where `yes` is a string and
//! `0644` is decimal 644. Kubernetes reads `yes`/`on`/`y` as `true` and `0644` as octal 420, and
//! that difference is exactly what users trip on (`value: yes` in an env var is rejected by the API server).

/// A scalar after type resolution.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
}

impl Value<'_> {
    /// The JSON type name, as the Kubernetes API server would report it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::Float(_) => "number",
            Value::Str(_) => "string",
        }
    }
}

/// Resolves a plain (unquoted, untagged) scalar with YAML 1.1 rules.
pub fn resolve_plain(text: &str) -> Value<'_> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false);
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.') {
        return Value::Str(text);
    }
    if let Some(i) = parse_int(text) {
        return Value::Int(i);
    }
    if let Some(f) = parse_float(text) {
        return Value::Float(f);
    }
    Value::Str(text)
}

/// Resolves a scalar that carries an explicit core tag (`!!str`, `!!int`, ...).
pub fn resolve_tagged<'a>(text: &'a str, tag: &str) -> Value<'a> {
    match tag {
        "str" => Value::Str(text),
        "bool" | "int" | "float" | "null" => match resolve_plain(text) {
            Value::Str(s) => Value::Str(s),
            other => other,
        },
        _ => Value::Str(text),
    }
}

fn parse_int(text: &str) -> Option<i128> {
    let (negative, body) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if body.is_empty() {
        return None;
    }
    let cleaned: String = body.chars().filter(|c| *c != '_').collect();
    if cleaned.is_empty() || body.starts_with('_') {
        return None;
    }
    let (radix, digits) = if let Some(rest) = cleaned.strip_prefix("0b") {
        (2, rest)
    } else if let Some(rest) = cleaned.strip_prefix("0x") {
        (16, rest)
    } else if let Some(rest) = cleaned.strip_prefix("0o") {
        (8, rest)
    } else if cleaned.len() > 1 && cleaned.starts_with('0') {
        // YAML 1.1: a leading zero means octal (`0644` is 420).
        (8, &cleaned[1..])
    } else {
        (10, cleaned.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

fn parse_float(text: &str) -> Option<f64> {
    // YAML 1.1 float: [-+]?([0-9][0-9_]*)?\.[0-9.]*([eE][-+][0-9]+)? ; go-yaml also accepts 1e3.
    let cleaned: String = text.chars().filter(|c| *c != '_').collect();
    let body = cleaned.trim_start_matches(['-', '+']);
    if body.is_empty() || !body.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+')) {
        return None;
    }
    if !body.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    cleaned.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_1_1_booleans() {
        for t in ["yes", "Yes", "on", "ON", "y", "true"] {
            assert_eq!(resolve_plain(t), Value::Bool(true), "{t}");
        }
        for t in ["no", "off", "Off", "n", "FALSE"] {
            assert_eq!(resolve_plain(t), Value::Bool(false), "{t}");
        }
        assert_eq!(resolve_plain("yess"), Value::Str("yess"));
    }

    #[test]
    fn yaml_1_1_numbers() {
        assert_eq!(resolve_plain("0644"), Value::Int(420));
        assert_eq!(resolve_plain("0x1F"), Value::Int(31));
        assert_eq!(resolve_plain("0b101"), Value::Int(5));
        assert_eq!(resolve_plain("-12"), Value::Int(-12));
        assert_eq!(resolve_plain("1_000"), Value::Int(1000));
        assert_eq!(resolve_plain("0"), Value::Int(0));
        assert_eq!(resolve_plain("1.5"), Value::Float(1.5));
        assert_eq!(resolve_plain("1e3"), Value::Float(1000.0));
        // go-yaml v2: an invalid octal falls through to its float pattern.
        assert_eq!(resolve_plain("089"), Value::Float(89.0));
        assert_eq!(resolve_plain("30s"), Value::Str("30s"));
        assert_eq!(resolve_plain("100Mi"), Value::Str("100Mi"));
        assert_eq!(resolve_plain("1.2.3"), Value::Str("1.2.3"));
        assert_eq!(resolve_plain("-"), Value::Str("-"));
    }

    #[test]
    fn nulls_and_tags() {
        assert_eq!(resolve_plain("~"), Value::Null);
        assert_eq!(resolve_plain(""), Value::Null);
        assert_eq!(resolve_tagged("yes", "str"), Value::Str("yes"));
        assert_eq!(resolve_tagged("12", "int"), Value::Int(12));
    }
}
