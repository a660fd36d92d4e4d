//! AArch64 EL1 machine layer: the boot stub, the exception vector table and the raw memory
//! accesses behind the library OS's safe interfaces.
//!
//! The kernel enters the image at `_start` at EL1 with the stage-1 MMU off (`SCTLR_EL1.M == 0`)
//! and `HCR_EL2.DC == 1`, so every data access is Normal write-back memory and a virtual
//! address *is* an IPA: pointers and IPAs convert by identity here and nowhere else.

use core::arch::global_asm;

use aarch64_cpu::registers::{ELR_EL1, ESR_EL1, FAR_EL1, Readable, SPSR_EL1};
use exo_abi::Ipa;

use super::{Syndrome, VectorSlot};

// The boot stub. Entered with x0 = IPA of the info page, DAIF masked, SP undefined.
//
// 1. Select SP_EL1 (`SPSel`, Arm ARM C5.2.18) so the stack pointer we set is the one
//    exceptions use.
// 2. Zero .bss with a loop that needs no stack (the stack lives in its own segment, outside
//    .bss; linker script `libos/guest.ld`).
// 3. Point SP at the top of the 64 KiB stack.
// 4. Install the vector table in VBAR_EL1 (Arm ARM D19.2.159) and synchronise with ISB.
// 5. Call the Rust entry with the info page IPA; it never returns.
global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
    .type _start, %function
_start:
    mov     x19, x0
    msr     spsel, #1
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
0:  cmp     x1, x2
    b.hs    1f
    stp     xzr, xzr, [x1], #16
    b       0b
1:  adrp    x1, __stack_top
    add     x1, x1, :lo12:__stack_top
    mov     sp, x1
    adrp    x1, exo_libos_vectors
    add     x1, x1, :lo12:exo_libos_vectors
    msr     vbar_el1, x1
    isb
    mov     x29, xzr
    mov     x30, xzr
    mov     x0, x19
    bl      {start}
2:  wfe
    b       2b
    .size _start, . - _start
    "#,
    start = sym start,
);

// The EL1 vector table (Arm ARM D1.3.1): 16 slots of 0x80 bytes, 2 KiB aligned. Every slot
// passes its index in x0 to a common path that switches to the exception stack (the fault
// may have been a stack overflow) and calls `exception`, which never returns. Nothing is
// saved: the library OS reports and exits, it does not resume.
global_asm!(
    r#"
    .section .text.vectors, "ax"
    .balign 0x800
    .global exo_libos_vectors
exo_libos_vectors:
    .irp slot, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    .balign 0x80
    mov     x0, #\slot
    b       3f
    .endr
3:  adrp    x1, __exception_stack_top
    add     x1, x1, :lo12:__exception_stack_top
    mov     sp, x1
    mov     x29, xzr
    mov     x30, xzr
    bl      {exception}
4:  wfe
    b       4b
    "#,
    exception = sym exception,
);

/// Linker-script symbols (`libos/guest.ld`); only their addresses mean anything.
mod image {
    unsafe extern "C" {
        pub(super) static __image_start: u8;
        pub(super) static __image_end: u8;
    }
}

/// Rust entry from `_start`.
extern "C" fn start(info_ipa: u64) -> ! {
    crate::runtime::start(Ipa::new(info_ipa))
}

/// Rust entry from the vector table, on the exception stack.
extern "C" fn exception(slot: u64) -> ! {
    crate::runtime::exception(Syndrome {
        slot: VectorSlot(slot),
        esr: ESR_EL1.get(),
        far: FAR_EL1.get(),
        elr: ELR_EL1.get(),
        spsr: SPSR_EL1.get(),
    })
}

/// Issues `HVC #0` with `function` in `w0` and `args` in `x1`.., returning `x0` (SMCCC 1.1).
pub(crate) fn hvc(function: u32, args: [u64; 6]) -> u64 {
    let mut all = [0; 17];
    all[..6].copy_from_slice(&args);
    smccc::hvc64(function, all)[0]
}

/// The IPA of a byte buffer in our own memory (identity: the stage-1 MMU is off).
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
    // out memory `probe` accepts), and any bit pattern is a valid `u64`. With the MMU off the
    // address is the IPA. A load from an unbound IPA is stopped by stage 2 and never returns.
    unsafe { core::ptr::read_volatile(ipa.raw() as *const u64) }
}

/// The read-only info page at `ipa`, or `None` if `ipa` is null or not page aligned.
pub(crate) fn info_page(ipa: Ipa) -> Option<&'static [u8; exo_abi::info::SIZE]> {
    if ipa.raw() == 0 || !ipa.is_page_aligned() {
        return None;
    }
    // SAFETY: the kernel binds the info page readable at the IPA it passes in x0 for the
    // whole life of the partition, writes it only before entry, and we never write it; the
    // address is page aligned (so aligned for `u8`), non-null, and with the MMU off it is the
    // IPA itself.
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

/// Waits forever with interrupts masked (`WFE` loop).
pub(crate) fn halt() -> ! {
    loop {
        aarch64_cpu::asm::wfe();
    }
}

unsafe extern "Rust" {
    /// The program's entry point, defined by [`crate::entry!`].
    fn exo_libos_guest_main(info: &crate::Info) -> crate::ExitCode;
}

/// Calls the program's entry point.
pub(crate) fn guest_main(info: &crate::Info) -> crate::ExitCode {
    // SAFETY: `exo_libos_guest_main` is defined only by `crate::entry!`, with exactly this
    // signature (the macro type-checks the program's function against it). A program without
    // `entry!` fails to link rather than reaching here.
    unsafe { exo_libos_guest_main(info) }
}
