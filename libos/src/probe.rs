//! Deliberate reads of memory the program does not own, for isolation tests.
//!
//! A read of an IPA that is not bound in the partition's stage-2 tables does not return: the
//! kernel takes the stage-2 fault and stops the partition. That is the point of these
//! functions; do not use them for ordinary memory.

use exo_abi::Ipa;

use crate::{arch, memory};

/// Why a probe was refused without touching memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeRefused {
    /// The address is null or not 8-byte aligned.
    BadAddress,
    /// The address lies in memory this program's Rust code owns (its image or the free
    /// memory handed out by [`crate::memory`]); reading it here would bypass Rust's aliasing
    /// rules, so use a reference instead.
    OwnMemory,
}

/// Reads the `u64` at `ipa` with one volatile load.
///
/// May fault: if `ipa` is not bound readable, the kernel stops the partition and this never
/// returns. Refuses (without reading) null or misaligned addresses and memory the program
/// owns.
pub fn read_u64(ipa: Ipa) -> Result<u64, ProbeRefused> {
    if ipa.raw() == 0 || !ipa.raw().is_multiple_of(8) {
        return Err(ProbeRefused::BadAddress);
    }
    let end = ipa.checked_add(8).ok_or(ProbeRefused::BadAddress)?;
    if arch::overlaps_image(ipa, end) || memory::overlaps_claimed(ipa, end) {
        return Err(ProbeRefused::OwnMemory);
    }
    Ok(arch::read_u64(ipa))
}
