//! Raw memory: the identity between pointers and IPAs, the program image's bounds, and the
//! few volatile accesses to memory no Rust object covers (probed words, the kernel's shared
//! pages, the info page, the free RAM past the image).
//!
//! Stage 1 maps every IPA to itself (see `stage1`), so a pointer's address *is* its IPA: the
//! conversions here are the only place that relies on it.

use exo_abi::{Ipa, PhysAddr};

/// Linker-script symbols (`libos/guest.ld`); only their addresses mean anything.
mod image {
    unsafe extern "C" {
        pub(super) static __image_start: u8;
        pub(super) static __image_end: u8;
    }
}

/// The IPA of a buffer of words the kernel is to fill (identity: stage 1 maps IPAs to
/// themselves).
pub(crate) fn ipa_of_words(words: &mut [u64]) -> Ipa {
    Ipa::new(words.as_mut_ptr() as u64)
}

/// The IPA of an array of frame addresses in our own memory (identity); the kernel writes `u64`s there, which `PhysAddr` is (`repr(transparent)`).
pub(crate) fn ipa_of_frames(frames: &mut [PhysAddr]) -> Ipa {
    Ipa::new(frames.as_mut_ptr() as u64)
}

/// The IPA of a byte buffer in our own memory (identity).
pub(crate) fn ipa_of(bytes: &[u8]) -> Ipa {
    Ipa::new(bytes.as_ptr() as u64)
}

/// First IPA past the program image (page aligned: see the linker script).
pub(crate) fn image_end() -> Ipa {
    Ipa::new(&raw const image::__image_end as u64)
}

/// Whether `[start, end)` overlaps the program image (text, data, stacks, bss).
pub(crate) fn overlaps_image(start: Ipa, end: Ipa) -> bool {
    let image_start = Ipa::new(&raw const image::__image_start as u64);
    start < image_end() && image_start < end
}

/// Reads the `u64` at `ipa` with a single volatile load.
///
/// The caller has checked that `ipa` is aligned, not null and outside the program image, so
/// the load cannot alias anything Rust owns. If `ipa` is not bound readable in stage 2 the
/// load does not complete: the kernel stops the partition.
pub(crate) fn read_u64(ipa: Ipa) -> u64 {
    debug_assert!(ipa.raw() != 0 && ipa.raw().is_multiple_of(8));
    debug_assert!(!overlaps_image(ipa, ipa.add(8)));
    // SAFETY: the address is non-null and aligned (checked by `crate::probe`), lies outside
    // every Rust object of this program (outside the image, and `crate::memory` never hands
    // out memory `probe` accepts), and any bit pattern is a valid `u64`. Stage 1 is an
    // identity map, so the address is the IPA (or `crate::mmu`'s alias of a bound page). A
    // load from an unbound IPA is stopped by stage 2 and never returns.
    unsafe { core::ptr::read_volatile(ipa.raw() as *const u64) }
}

/// Writes `value` to the `u64` at `ipa` with a single volatile store.
///
/// Same contract as [`read_u64`]: the caller (`crate::probe`) has checked that `ipa` is
/// aligned, not null and outside every Rust object of this program. A store to an unbound
/// IPA stops the partition, or is reflected as a fault upcall if one is registered.
pub(crate) fn write_u64(ipa: Ipa, value: u64) {
    debug_assert!(ipa.raw() != 0 && ipa.raw().is_multiple_of(8));
    debug_assert!(!overlaps_image(ipa, ipa.add(8)));
    // SAFETY: as for `read_u64`: non-null, aligned, outside the image, the free memory handed
    // out by `crate::memory` and the heap window (checked by `crate::probe`), so no Rust
    // object lives there and the store cannot break Rust's aliasing rules. The address is the
    // IPA (identity stage 1) or an alias; stage 2 decides whether the store completes.
    unsafe { core::ptr::write_volatile(ipa.raw() as *mut u64, value) }
}

/// Copies pages the kernel shares read-only (the revocation page, the repossession vector)
/// into `out`, one volatile `u64` load at a time: the kernel rewrites them between our runs,
/// so no Rust reference may cover them. `false` (nothing copied) unless `ipa` is page aligned
/// and `[ipa, ipa + out.len())` lies in the kernel's IPA window.
pub(crate) fn copy_kernel_pages(ipa: Ipa, out: &mut [u8]) -> bool {
    use exo_abi::info::{KERNEL_WINDOW_END, KERNEL_WINDOW_START};
    let end = ipa.checked_add(out.len() as u64);
    if !ipa.is_page_aligned()
        || ipa < KERNEL_WINDOW_START
        || end.is_none_or(|end| end > KERNEL_WINDOW_END)
    {
        return false;
    }
    for (index, chunk) in out.chunks_mut(8).enumerate() {
        let address = ipa.raw() + index as u64 * 8;
        // SAFETY: the address is 8-byte aligned, non-null, inside the kernel's IPA window
        // (checked above), where the kernel binds its shared pages read-only for the life of
        // the partition; no Rust object lives there (the window is below the image), and any
        // bit pattern is a valid `u64`.
        let word = unsafe { core::ptr::read_volatile(address as *const u64) };
        chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
    }
    true
}

/// The read-only info page the kernel passed at entry ([`info_page_ipa`](super::info_page_ipa)),
/// or `None` if that IPA is null or not page aligned.
pub(crate) fn info_page() -> Option<&'static [u8; exo_abi::info::SIZE]> {
    let ipa = super::info_page_ipa();
    if ipa.raw() == 0 || !ipa.is_page_aligned() {
        return None;
    }
    // SAFETY: the IPA is the one the kernel passed in x0 at entry (`_start` stored it; no
    // one else writes it). The kernel binds the info page readable there for the
    // whole life of the partition, writes it only before entry, and we never write it; the
    // address is page aligned (so aligned for `u8`), non-null, and stage 1 maps it to the IPA
    // itself.
    Some(unsafe { &*(ipa.raw() as *const [u8; exo_abi::info::SIZE]) })
}

/// Turns `[start, end)` of free guest RAM into a byte slice.
///
/// Only `crate::memory` calls this, once, with a range it has checked is bound read-write
/// Normal memory outside the image.
pub(crate) fn claim(start: Ipa, end: Ipa) -> &'static mut [u8] {
    assert!(start.raw() != 0 && start <= end && !overlaps_image(start, end));
    // SAFETY: `crate::memory` calls this at most once, for a range bound read-write Normal
    // memory in stage 2 (per the info page) past the end of the image, so no other Rust
    // reference covers it; the kernel zero-fills it, so every byte is initialised; the range
    // is non-null and within the quota, far below `isize::MAX`.
    unsafe {
        core::slice::from_raw_parts_mut(start.raw() as *mut u8, (end.raw() - start.raw()) as usize)
    }
}

/// The pointer to the byte at `ipa` (identity: stage 1 maps every IPA to itself), with the
/// provenance Rust gave the memory it was exposed from. Creating it is safe; using it is
/// what needs a reason.
pub(crate) fn pointer_at(ipa: Ipa) -> *mut u8 {
    core::ptr::with_exposed_provenance_mut(ipa.raw() as usize)
}

/// The IPA of the byte `pointer` points at (identity), exposing its provenance so
/// [`pointer_at`] may give it back.
pub(crate) fn ipa_at(pointer: *mut u8) -> Ipa {
    Ipa::new(pointer.expose_provenance() as u64)
}
