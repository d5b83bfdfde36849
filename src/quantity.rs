//! Kubernetes resource quantities (`250m`, `4Gi`, `1e3`) and Go durations (`30s`, `2m`), parsed exactly.
//!
//! Quantities are kept as rational numbers of milli-units so that `0.5` and `500m`, or `1Gi` and
//! `1073741824`, compare equal. See
//! <https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/>.

/// A quantity in thousandths of its unit (millicores, millibytes). i128 holds 10^18 Ei × 1000 easily.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(pub i128);

impl Quantity {
    pub fn millis(self) -> i128 {
        self.0
    }
}

/// Parses a quantity as the API server does; `None` when the API server would reject it.
pub fn parse_quantity(text: &str) -> Option<Quantity> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let (negative, number) = match number.as_bytes().first() {
        Some(b'-') => (true, &number[1..]),
        Some(b'+') => (false, &number[1..]),
        _ => (false, number),
    };
    if number.is_empty() || number.contains(['+', '-']) || number.matches('.').count() > 1 || number == "." {
        return None;
    }
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    // value = digits / 10^frac_len, scaled by the suffix, then by 1000 for milli-units.
    let digits: String = format!("{int_part}{frac_part}");
    let mantissa: i128 = digits.parse().ok()?;
    let frac_len = frac_part.len() as u32;
    let (mul, div_pow10): (i128, u32) = match suffix {
        "" => (1, 0),
        "m" => (1, 3),
        "k" => (1_000, 0),
        "M" => (1_000_000, 0),
        "G" => (1_000_000_000, 0),
        "T" => (1_000_000_000_000, 0),
        "P" => (1_000_000_000_000_000, 0),
        "E" => (1_000_000_000_000_000_000, 0),
        "Ki" => (1 << 10, 0),
        "Mi" => (1 << 20, 0),
        "Gi" => (1 << 30, 0),
        "Ti" => (1 << 40, 0),
        "Pi" => (1 << 50, 0),
        "Ei" => (1 << 60, 0),
        s if s.starts_with(['e', 'E']) => {
            let exp: i32 = s[1..].parse().ok()?;
            if !(-18..=18).contains(&exp) {
                return None;
            }
            if exp >= 0 { (10i128.pow(exp as u32), 0) } else { (1, (-exp) as u32) }
        }
        _ => return None,
    };
    let scaled = mantissa.checked_mul(mul)?.checked_mul(1000)?;
    let divisor = 10i128.checked_pow(frac_len + div_pow10)?;
    // Kubernetes rounds sub-milli precision up; we do the same. Checked: a mantissa near i128::MAX
    // overflowed here (found by reading the code for the fuzz targets).
    let value = scaled.checked_add(divisor - 1)? / divisor;
    Some(Quantity(if negative { -value } else { value }))
}

/// Parses a Go duration (`1h30m`, `2m`, `15s`, `500ms`) into milliseconds.
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(0);
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let factor = match &rest[..unit_end] {
            "ns" => 1e-6,
            "us" | "µs" => 1e-3,
            "ms" => 1.0,
            "s" => 1_000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            // Prometheus range selectors also allow days, weeks and years.
            "d" => 86_400_000.0,
            "w" => 604_800_000.0,
            "y" => 31_536_000_000.0,
            _ => return None,
        };
        total += value * factor;
        rest = &rest[unit_end..];
    }
    Some(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("250m"), Some(Quantity(250)));
        assert_eq!(parse_quantity("0.5"), Some(Quantity(500)));
        assert_eq!(parse_quantity("1"), Some(Quantity(1000)));
        assert_eq!(parse_quantity("1Gi"), parse_quantity("1073741824"));
        assert_eq!(parse_quantity("1e3"), parse_quantity("1k"));
        assert_eq!(parse_quantity("1.5Gi"), parse_quantity("1536Mi"));
        assert!(parse_quantity("100Gi").unwrap_or(Quantity(0)) > parse_quantity("99Gi").unwrap_or(Quantity(i128::MAX)));
        for bad in ["", "abc", "1.2.3", "10 Gi", "1GB", "--1", "Gi"] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
    }

    /// Found while writing the fuzz targets: rounding up a fraction overflowed i128 (a panic in debug builds, a negative
    /// quantity in release). Too large to hold is not a quantity kpath can compare.
    #[test]
    fn huge_quantities_do_not_overflow() {
        let max = i128::MAX / 1000;
        assert_eq!(parse_quantity(&format!("{}.{:03}", max / 1000, max % 1000)), None);
        assert_eq!(parse_quantity(&format!("-{}.{:03}", max / 1000, max % 1000)), None);
        assert_eq!(parse_quantity(&format!("{max}")), Some(Quantity(max * 1000)));
        assert_eq!(parse_quantity(&format!("{}", max + 1)), None);
        assert_eq!(parse_quantity("99999999999999999999999999999999999999999Ei"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("2m"), Some(120_000));
        assert_eq!(parse_duration_ms("1m30s"), Some(90_000));
        assert_eq!(parse_duration_ms("500ms"), Some(500));
        assert_eq!(parse_duration_ms("30"), None);
        assert_eq!(parse_duration_ms("x"), None);
    }
}
