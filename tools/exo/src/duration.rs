//! Durations in configuration files: `<n>us`, `<n>ms` or `<n>s`.

/// Microseconds in a millisecond.
pub const MS: u64 = 1_000;
/// Microseconds in a second.
pub const S: u64 = 1_000_000;

/// Parses `"<digits>us"`, `"<digits>ms"` or `"<digits>s"` (no spaces, a unit is required)
/// into microseconds.
///
/// Returns a message fit for a configuration error on failure.
pub fn parse_us(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let multiplier = match unit {
        "us" => 1,
        "ms" => MS,
        "s" => S,
        _ => {
            return Err(format!(
                "bad duration `{text}`: expected `<n>us`, `<n>ms` or `<n>s`"
            ));
        }
    };
    if digits.is_empty() {
        return Err(format!("bad duration `{text}`: no number before the unit"));
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("duration `{text}` is too large"))
}

/// Microseconds as written in a configuration: the largest unit that divides them.
pub fn display_us(us: u64) -> String {
    if us != 0 && us.is_multiple_of(S) {
        format!("{} s", us / S)
    } else if us != 0 && us.is_multiple_of(MS) {
        format!("{} ms", us / MS)
    } else {
        format!("{us} us")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_units() {
        assert_eq!(parse_us("1us"), Ok(1));
        assert_eq!(parse_us("10ms"), Ok(10_000));
        assert_eq!(parse_us("2s"), Ok(2_000_000));
        assert_eq!(parse_us("0ms"), Ok(0));
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "", "10", "ms", "10 ms", "10MS", "1.5s", "-1ms", "10min", "10ns", "1sec",
        ] {
            assert!(parse_us(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(
            parse_us("99999999999999999s")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn displays_in_the_largest_unit() {
        assert_eq!(display_us(10_000), "10 ms");
        assert_eq!(display_us(10 * S), "10 s");
        assert_eq!(display_us(1500), "1500 us");
        assert_eq!(display_us(0), "0 us");
    }
}
