//! Go duration syntax (cli.md#durations): parsing user input such as `90s`, `1h30m` or `1.5m`, and
//! printing a duration the way Go's `time.Duration.String` does (`5m0s`, `1.2s`, `500ms`), because
//! messages and `ksail.yaml` use that notation.
//!
//! Unlike Go, a zero, negative or bare-number value is an error: every duration ksail reads is a
//! timeout, and those values are always mistakes.

use std::time::Duration;

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Why a duration string was rejected. The messages quote the input, which is never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration; use a value such as 90s, 5m or 1h30m")]
    Empty,
    #[error("duration {0:?} has no unit; add one of ns, us, ms, s, m, h (for example 90s)")]
    MissingUnit(String),
    #[error("duration {0:?} must be greater than zero; use a positive value such as 5m")]
    NotPositive(String),
    #[error("duration {0:?} is too large; use a value below 2562047h")]
    Overflow(String),
    #[error("invalid duration {0:?}; use Go syntax such as 90s, 1.5m or 1h30m")]
    Invalid(String),
}

/// Parse a Go duration that must be greater than zero.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let invalid = || DurationError::Invalid(text.to_string());
    let (negative, mut rest) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if rest.is_empty() {
        return Err(invalid());
    }
    // A negative duration is never valid here, whatever follows the sign ("-1" is not a
    // missing unit).
    if negative && rest.starts_with(|c: char| c.is_ascii_digit() || c == '.') && rest != "0" {
        return Err(DurationError::NotPositive(text.to_string()));
    }
    // Go accepts a bare "0"; here it is a zero duration, which is rejected below like "0s".
    if rest == "0" {
        return Err(DurationError::NotPositive(text.to_string()));
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (whole, fraction, after_number) = split_number(rest).ok_or_else(invalid)?;
        let unit_len = after_number
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_len);
        if unit.is_empty() {
            // "1h30" lacks a unit; "1..5s" is simply malformed.
            return Err(if after_number.is_empty() {
                DurationError::MissingUnit(text.to_string())
            } else {
                invalid()
            });
        }
        let unit_nanos = unit_nanos(unit).ok_or_else(invalid)?;
        total = total
            .checked_add(group_nanos(whole, fraction, unit_nanos).ok_or_else(|| overflow(text))?)
            .ok_or_else(|| overflow(text))?;
        rest = after_unit;
    }
    // Go's limit is the largest i64 number of nanoseconds.
    if total > i64::MAX as u128 {
        return Err(overflow(text));
    }
    if negative || total == 0 {
        return Err(DurationError::NotPositive(text.to_string()));
    }
    let seconds = (total / NANOS_PER_SECOND) as u64;
    let nanos = (total % NANOS_PER_SECOND) as u32;
    Ok(Duration::new(seconds, nanos))
}

fn overflow(text: &str) -> DurationError {
    DurationError::Overflow(text.to_string())
}

/// Split `12.5ms…` into `("12", "5", "ms…")`. Either digit run may be empty, but not both.
fn split_number(text: &str) -> Option<(&str, &str, &str)> {
    let whole_len = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (whole, rest) = text.split_at(whole_len);
    let (fraction, rest) = match rest.strip_prefix('.') {
        Some(after_dot) => {
            let len = after_dot
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after_dot.len());
            after_dot.split_at(len)
        }
        None => ("", rest),
    };
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    Some((whole, fraction, rest))
}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SECOND,
        "m" => 60 * NANOS_PER_SECOND,
        "h" => 3_600 * NANOS_PER_SECOND,
        _ => return None,
    })
}

/// `whole.fraction` × `unit` in nanoseconds, truncated like Go.
fn group_nanos(whole: &str, fraction: &str, unit: u128) -> Option<u128> {
    let whole_value: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = whole_value.checked_mul(unit)?;
    // Digits beyond nanosecond precision cannot change the result; dropping them keeps the
    // arithmetic in range for absurdly long fractions.
    let fraction = &fraction[..fraction.len().min(30)];
    if !fraction.is_empty() {
        let numerator: u128 = fraction.parse().ok()?;
        let scale = 10u128.checked_pow(fraction.len() as u32)?;
        nanos = nanos.checked_add(numerator.checked_mul(unit)? / scale)?;
    }
    Some(nanos)
}

/// Format a duration as Go's `time.Duration.String` does.
pub fn format_go(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", with_fraction(nanos, 3));
    }
    if nanos < NANOS_PER_SECOND {
        return format!("{}ms", with_fraction(nanos, 6));
    }
    let seconds_text = with_fraction(nanos % (60 * NANOS_PER_SECOND), 9);
    let whole_seconds = nanos / NANOS_PER_SECOND;
    let minutes = (whole_seconds / 60) % 60;
    let hours = whole_seconds / 3_600;
    if hours > 0 {
        format!("{hours}h{minutes}m{seconds_text}s")
    } else if minutes > 0 {
        format!("{minutes}m{seconds_text}s")
    } else {
        format!("{seconds_text}s")
    }
}

/// `value / 10^digits` printed with its fractional digits, trailing zeros (and a bare dot) removed.
fn with_fraction(value: u128, digits: u32) -> String {
    let scale = 10u128.pow(digits);
    let whole = value / scale;
    let fraction = value % scale;
    if fraction == 0 {
        return whole.to_string();
    }
    let fraction_text = format!("{fraction:0width$}", width = digits as usize);
    format!("{whole}.{}", fraction_text.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    #[test]
    fn parses_go_syntax() {
        let cases = [
            ("90s", Duration::from_secs(90)),
            ("1h30m", Duration::from_secs(5_400)),
            ("1.5m", Duration::from_secs(90)),
            ("500ms", ms(500)),
            ("10us", Duration::from_micros(10)),
            ("10µs", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            (".5s", ms(500)),
            ("1.s", Duration::from_secs(1)),
            ("+5m", Duration::from_secs(300)),
            ("1h0m0s", Duration::from_secs(3_600)),
            ("2m3.25s", Duration::from_millis(123_250)),
            ("0s1ms", ms(1)),
        ];
        for (input, expected) in cases {
            assert_eq!(parse(input), Ok(expected), "{input}");
        }
    }

    #[test]
    fn rejects_zero_negative_empty_and_bare_numbers() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert_eq!(parse("0"), Err(DurationError::NotPositive("0".into())));
        assert_eq!(parse("0s"), Err(DurationError::NotPositive("0s".into())));
        assert_eq!(parse("-5s"), Err(DurationError::NotPositive("-5s".into())));
        assert_eq!(parse("90"), Err(DurationError::MissingUnit("90".into())));
        assert_eq!(
            parse("1h30"),
            Err(DurationError::MissingUnit("1h30".into()))
        );
        for bad in ["s", "5x", "5 s", "1..5s", "-", "5sec", "five"] {
            assert_eq!(parse(bad), Err(DurationError::Invalid(bad.into())), "{bad}");
        }
        assert_eq!(
            parse("9999999999h"),
            Err(DurationError::Overflow("9999999999h".into()))
        );
    }

    #[test]
    fn error_messages_say_what_to_do() {
        assert_eq!(
            parse("90").unwrap_err().to_string(),
            "duration \"90\" has no unit; add one of ns, us, ms, s, m, h (for example 90s)"
        );
        assert_eq!(
            parse("-1m").unwrap_err().to_string(),
            "duration \"-1m\" must be greater than zero; use a positive value such as 5m"
        );
    }

    #[test]
    fn formats_like_go() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(300), "5m0s"),
            (Duration::from_secs(600), "10m0s"),
            (ms(1_200), "1.2s"),
            (Duration::from_secs(5_400), "1h30m0s"),
            (ms(500), "500ms"),
            (Duration::from_micros(1_500), "1.5ms"),
            (Duration::from_nanos(1_500), "1.5µs"),
            (Duration::from_nanos(42), "42ns"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(36_005), "10h0m5s"),
            (Duration::new(61, 1), "1m1.000000001s"),
        ];
        for (duration, expected) in cases {
            assert_eq!(format_go(duration), expected);
        }
    }

    #[test]
    fn format_and_parse_round_trip() {
        for text in ["5m0s", "1h30m0s", "1.2s", "500ms", "1.5µs", "42ns"] {
            assert_eq!(format_go(parse(text).unwrap()), text);
        }
    }
}
