//! Go-style durations (`720h`, `59m55s`, `1h30m`, `500ms`) as used in the CRDs (CEL `duration()` syntax).

use std::time::Duration;

/// Parses a Go duration string (units h, m, s, ms; no sign).
pub fn parse(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_len..];
    }
    (total.is_finite() && total < 1e10).then(|| Duration::from_secs_f64(total))
}

/// A duration in the same syntax, whole seconds: `2159h`, `1h30m`, `90s`.
pub fn format(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if out.is_empty() { "0".into() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_what_it_parses() {
        for s in ["2159h", "1h30m", "90h0m5s", "45s", "0"] {
            let d = parse(s).unwrap();
            assert_eq!(parse(&format(d)), Some(d), "{s}");
        }
        assert_eq!(format(Duration::from_secs(2159 * 3600)), "2159h");
    }

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse("720h"), Some(Duration::from_secs(720 * 3600)));
        assert_eq!(parse("59m55s"), Some(Duration::from_secs(3595)));
        assert_eq!(parse("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse("0"), Some(Duration::ZERO));
        for bad in ["", "h", "10", "10d", "-1h", "1h-"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
