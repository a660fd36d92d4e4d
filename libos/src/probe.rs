//! Word accesses by IPA, outside Rust's objects: deliberate reads of memory the program does
//! not own (isolation tests) and reads and writes of frames the program bound itself with
//! [`crate::mem`], which may be taken away at any time and so are never Rust references.
//!
//! An access to an IPA that is not bound in the partition's stage-2 tables does not complete:
//! the kernel stops the partition, or reflects the fault to the upcall handler
//! ([`crate::upcall::set_fault_handler`]), which may bind something and retry, or skip the
//! access (a skipped read returns an unspecified value).

use exo_abi::Ipa;

use crate::{arch, mem, memory};

/// Why a probe was refused without touching memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeRefused {
    /// The address is null or not 8-byte aligned.
    BadAddress,
    /// The address lies in memory this program's Rust code owns (its image, the free memory
    /// handed out by [`crate::memory`] or the heap window); accessing it here would bypass
    /// Rust's aliasing rules, so use a reference instead.
    OwnMemory,
}

/// Reads the `u64` at `ipa` with one volatile load.
///
/// May fault: if `ipa` is not bound readable, the kernel stops the partition and this never
/// returns. Refuses (without reading) null or misaligned addresses and memory the program
/// owns.
pub fn read_u64(ipa: Ipa) -> Result<u64, ProbeRefused> {
    check(ipa)?;
    Ok(arch::read_u64(ipa))
}

/// Writes `value` to the `u64` at `ipa` with one volatile store. Same rules and refusals as
/// [`read_u64`].
pub fn write_u64(ipa: Ipa, value: u64) -> Result<(), ProbeRefused> {
    check(ipa)?;
    arch::write_u64(ipa, value);
    Ok(())
}

/// Refuses null, misaligned and own-memory addresses.
fn check(ipa: Ipa) -> Result<(), ProbeRefused> {
    if ipa.raw() == 0 || !ipa.raw().is_multiple_of(8) {
        return Err(ProbeRefused::BadAddress);
    }
    let end = ipa.checked_add(8).ok_or(ProbeRefused::BadAddress)?;
    if arch::overlaps_image(ipa, end)
        || memory::overlaps_claimed(ipa, end)
        || mem::heap::overlaps_window(ipa, end)
    {
        return Err(ProbeRefused::OwnMemory);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_without_touching_memory() {
        assert_eq!(read_u64(Ipa::new(0)), Err(ProbeRefused::BadAddress));
        assert_eq!(
            write_u64(Ipa::new(0x1003), 1),
            Err(ProbeRefused::BadAddress)
        );
        let heap = mem::heap::HEAP_WINDOW_START.add(64);
        assert_eq!(write_u64(heap, 1), Err(ProbeRefused::OwnMemory));
    }
}
