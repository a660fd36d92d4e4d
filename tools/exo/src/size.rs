//! Memory sizes in configuration files: a byte count or `<n>KiB`, `<n>MiB`, `<n>GiB`.

use std::fmt;

/// One kibibyte.
pub const KIB: u64 = 1 << 10;
/// One mebibyte.
pub const MIB: u64 = 1 << 20;
/// One gibibyte.
pub const GIB: u64 = 1 << 30;

/// Parses `"<digits>"` or `"<digits>KiB|MiB|GiB"` (no spaces, binary units only) into bytes.
///
/// Returns a message fit for a configuration error on failure.
pub fn parse(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let multiplier = match unit {
        "" => 1,
        "KiB" => KIB,
        "MiB" => MIB,
        "GiB" => GIB,
        _ => {
            return Err(format!(
                "bad memory size `{text}`: expected a byte count or `<n>KiB`, `<n>MiB` or `<n>GiB`"
            ));
        }
    };
    if digits.is_empty() {
        return Err(format!(
            "bad memory size `{text}`: no number before the unit"
        ));
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("memory size `{text}` is too large"))
}

/// A byte count that displays in the largest binary unit dividing it (`2 MiB`, `4100 KiB`,
/// `123 bytes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (unit, name) in [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
            if n != 0 && n.is_multiple_of(unit) {
                return write!(f, "{} {name}", n / unit);
            }
        }
        write!(f, "{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counts_and_binary_units() {
        assert_eq!(parse("4096"), Ok(4096));
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("4KiB"), Ok(4096));
        assert_eq!(parse("2MiB"), Ok(2 * MIB));
        assert_eq!(parse("1GiB"), Ok(GIB));
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "", "MiB", "2 MiB", "2MB", "2mib", "-1", "0x1000", "1.5GiB", "2MiBs",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse("99999999999GiB").unwrap_err().contains("too large"));
    }

    #[test]
    fn displays_in_the_largest_unit() {
        assert_eq!(Bytes(2 * MIB).to_string(), "2 MiB");
        assert_eq!(Bytes(4100 * KIB).to_string(), "4100 KiB");
        assert_eq!(Bytes(GIB).to_string(), "1 GiB");
        assert_eq!(Bytes(100).to_string(), "100 bytes");
        assert_eq!(Bytes(0).to_string(), "0 bytes");
    }
}
