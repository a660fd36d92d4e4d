//! Free memory: the part of the partition's quota past the program image.
//!
//! The kernel binds the whole quota read-write and zero-filled; the program image uses the
//! bottom of it. The library OS hands the rest to the program once, as a plain byte slice.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use exo_abi::info::MemoryKind;
use exo_abi::{Ipa, Rights};

use crate::Info;
use crate::arch;

/// Whether [`take_free_memory`] has handed the memory out.
static TAKEN: AtomicBool = AtomicBool::new(false);
/// The range handed out, so [`crate::probe`] can refuse it.
static CLAIMED_START: AtomicU64 = AtomicU64::new(0);
static CLAIMED_END: AtomicU64 = AtomicU64::new(0);

/// The zero-filled read-write memory from the end of the program image to the end of the
/// contiguous read-write RAM the info page lists, as one slice. `Some` on the first call
/// only; `None` afterwards or if there is no such memory.
pub fn take_free_memory(info: &Info) -> Option<&'static mut [u8]> {
    // A partition runs on one vCPU with interrupts masked: nothing can run between this load
    // and the store below. (Multi-vCPU: make it one `compare_exchange`.)
    if TAKEN.load(Ordering::Relaxed) {
        return None;
    }
    let start = arch::image_end();
    let end = info.covered_until(start, |binding| {
        binding.kind == MemoryKind::Normal && binding.rights.contains(Rights::READ_WRITE)
    });
    if end <= start {
        return None;
    }
    TAKEN.store(true, Ordering::Relaxed);
    CLAIMED_START.store(start.raw(), Ordering::Relaxed);
    CLAIMED_END.store(end.raw(), Ordering::Relaxed);
    Some(arch::claim(start, end))
}

/// Whether `[start, end)` overlaps memory handed out by [`take_free_memory`].
pub(crate) fn overlaps_claimed(start: Ipa, end: Ipa) -> bool {
    let claimed_start = Ipa::new(CLAIMED_START.load(Ordering::Relaxed));
    let claimed_end = Ipa::new(CLAIMED_END.load(Ordering::Relaxed));
    start < claimed_end && claimed_start < end
}
