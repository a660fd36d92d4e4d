//! `[system]` settings that tune the kernel's mechanisms rather than name resources: the
//! time-slice length (`slice`), how a revocation request is shared among borrowers
//! (`revocation_share`) and how many cores the machine starts (`cores`). Each refusal is a
//! [`Refusal`] naming the byte offset at fault.

use exo_abi::package::{DEFAULT_SLICE_US, MAX_SLICE_US, MIN_SLICE_US, RevocationShare};
use serde_spanned::Spanned;

use super::resources::Refusal;
use crate::board::Board;
use crate::duration::{display_us, parse_us};

/// `[system] slice`: the length of one time slice, in microseconds ([`DEFAULT_SLICE_US`]
/// when absent).
pub(super) fn slice_us(key: Option<&Spanned<String>>) -> Result<u64, Refusal> {
    let Some(key) = key else {
        return Ok(DEFAULT_SLICE_US);
    };
    let at = key.span().start;
    let us = parse_us(key.get_ref()).map_err(|m| (at, m))?;
    if !(MIN_SLICE_US..=MAX_SLICE_US).contains(&us) {
        return Err((
            at,
            format!(
                "time slice of {} must be between {} and {}",
                display_us(us),
                display_us(MIN_SLICE_US),
                display_us(MAX_SLICE_US)
            ),
        ));
    }
    Ok(us)
}

/// `[system] revocation_share`: one of [`RevocationShare::ALL`]'s names (proportional when
/// absent).
pub(super) fn revocation_share(key: Option<&Spanned<String>>) -> Result<RevocationShare, Refusal> {
    let Some(key) = key else {
        return Ok(RevocationShare::default());
    };
    RevocationShare::ALL
        .iter()
        .find(|(_, name)| name == key.get_ref())
        .map(|(share, _)| *share)
        .ok_or_else(|| {
            let known: Vec<&str> = RevocationShare::ALL.iter().map(|(_, n)| *n).collect();
            (
                key.span().start,
                format!(
                    "unknown revocation share `{}`; known: {}",
                    key.get_ref(),
                    known.join(", ")
                ),
            )
        })
}

/// `[system] cores`: how many cores QEMU starts, 1..=the board's `cores`; a board with
/// fixed cores takes only its own number. Absent: 1, or all of a fixed board's.
pub(super) fn cores(key: Option<&Spanned<i64>>, board: &Board) -> Result<u32, Refusal> {
    let Some(key) = key else {
        return Ok(board.cores);
    };
    let at = key.span().start;
    let asked = *key.get_ref();
    if board.fixed_cores && asked != i64::from(board.max_cores) {
        return Err((
            at,
            format!(
                "board `{}` always has {} cores; `cores` cannot change it",
                board.name, board.max_cores
            ),
        ));
    }
    u32::try_from(asked)
        .ok()
        .filter(|n| (1..=board.max_cores).contains(n))
        .ok_or_else(|| {
            (
                at,
                format!(
                    "{asked} cores: board `{}` has 1 to {}",
                    board.name, board.max_cores
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> Spanned<String> {
        // A span starting at 7 stands for "where the value was".
        let toml = format!("value = {text:?}");
        #[derive(serde::Deserialize)]
        struct One {
            value: Spanned<String>,
        }
        toml::from_str::<One>(&toml)
            .map(|o| o.value)
            .expect("test TOML")
    }

    #[test]
    fn slice_defaults_to_ten_milliseconds_and_is_bounded() {
        assert_eq!(slice_us(None), Ok(10_000));
        assert_eq!(slice_us(Some(&key("2ms"))), Ok(2_000));
        assert_eq!(slice_us(Some(&key("100us"))), Ok(100));
        let (at, message) = slice_us(Some(&key("50us"))).unwrap_err();
        assert_eq!(at, 8);
        assert_eq!(
            message,
            "time slice of 50 us must be between 100 us and 1 s"
        );
        assert!(slice_us(Some(&key("2 s"))).is_err());
        assert!(slice_us(Some(&key("2s"))).is_err());
    }

    #[test]
    fn revocation_share_names_every_policy_and_refuses_others() {
        assert_eq!(revocation_share(None), Ok(RevocationShare::Proportional));
        for (share, name) in RevocationShare::ALL {
            assert_eq!(revocation_share(Some(&key(name))), Ok(share));
        }
        let (_, message) = revocation_share(Some(&key("fair"))).unwrap_err();
        assert_eq!(
            message,
            "unknown revocation share `fair`; known: proportional, largest-first, partition-order"
        );
    }
}
