//! AArch64 EL1 machine layer: the boot stub, the exception vector table and the raw memory
//! accesses behind the library OS's safe interfaces.
//!
//! The kernel enters the image at `_start` at EL1 with the stage-1 MMU off. The first thing
//! the boot stub does is turn it on, with [`STAGE1`]: an identity map of the whole 39-bit
//! IPA space as Normal write-back memory (stage 2 makes device regions Device whatever
//! stage 1 says, and decides every permission). So a virtual address *is* an IPA: pointers
//! and IPAs convert by identity here and nowhere else. The library OS owns stage 1 from then
//! on (see `crate::mmu` for the one remapping it offers).

use core::arch::global_asm;

use aarch64_cpu::registers::{ELR_EL1, ESR_EL1, FAR_EL1, Readable, SPSR_EL1};
use exo_abi::{Ipa, PhysAddr};

use super::{Syndrome, VectorSlot};

// The boot stub. Entered with x0 = IPA of the info page, DAIF masked, SP undefined, the MMU
// off (so data accesses are Device memory: nothing is written before step 1).
//
// 1. Stage 1 on: MAIR_EL1 attr 0 = Normal write-back (0xFF); TCR_EL1 = T0SZ 25 (39-bit VA,
//    walk from level 1), inner/outer write-back walks, inner shareable, 4 KiB granule, EPD1
//    (no TTBR1 walks), IPS 40 bits; TTBR0_EL1 = STAGE1 (built at compile time, loaded by the
//    kernel, so nothing is written with the MMU off); local TLB invalidated; SCTLR_EL1 M, C,
//    I set (Arm ARM D8.2, D24.2.x).
// 1b. Select SP_EL1 (`SPSel`, Arm ARM C5.2.18) so the stack pointer we set is the one
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
    mov     x1, #0xFF
    msr     mair_el1, x1
    ldr     x1, =0x200803519
    msr     tcr_el1, x1
    adrp    x1, {stage1}
    add     x1, x1, :lo12:{stage1}
    msr     ttbr0_el1, x1
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    mrs     x1, sctlr_el1
    mov     x2, #0x1005
    orr     x1, x1, x2
    msr     sctlr_el1, x1
    isb
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
    .ltorg
    "#,
    start = sym start,
    stage1 = sym STAGE1,
);

/// A 4 KiB translation table.
#[repr(C, align(4096))]
pub(crate) struct Table(pub(crate) core::cell::UnsafeCell<[u64; 512]>);

// SAFETY: the library OS runs on one vCPU; the tables are changed only through `crate::mmu`,
// with IRQs masked.
unsafe impl Sync for Table {}

/// Stage-1 level-1 block descriptor (Arm ARM D8.3.2): 1 GiB at `index << 30`, AttrIndx 0
/// (Normal write-back), EL1 read-write (AP 0b00), inner shareable, access flag set,
/// executable at EL1 (stage 2 decides), never at EL0 (UXN).
const fn identity_block(index: u64) -> u64 {
    (index << 30) | 0b01 | (0b11 << 8) | (1 << 10) | (1 << 54)
}

/// The level-1 table `_start` turns the MMU on with: every GiB of the IPA space mapped to
/// itself. In `.data`, so the kernel loads it with the image.
pub(crate) static STAGE1: Table = Table(core::cell::UnsafeCell::new({
    let mut entries = [0u64; 512];
    let mut i = 0;
    while i < 512 {
        entries[i] = identity_block(i as u64);
        i += 1;
    }
    entries
}));

// The EL1 vector table (Arm ARM D1.3.1): 16 slots of 0x80 bytes, 2 KiB aligned.
//
// Slot 5, an IRQ taken from EL1 with SP_EL1 (the library OS runs at EL1h), branches to the
// IRQ entry below, which resumes the interrupted code. Every other slot passes its index in
// x0 to a common path that switches to the exception stack (the fault may have been a stack
// overflow) and calls `exception`, which never returns. Nothing is saved: the library OS
// reports and exits, it does not resume.
//
// The IRQ entry runs on the interrupted stack (SP_EL1 is 16-byte aligned at every
// instruction, and AArch64 code has no red zone). IRQs do not nest: taking the exception sets
// PSTATE.I (Arm ARM D1.3.2) and nothing here clears it, so one frame per stack suffices. It
// saves everything AAPCS64 lets the Rust dispatcher clobber: x0..x18, x29, x30, all 32 SIMD
// registers in full (the callee keeps only the low halves of v8..v15), FPCR and FPSR, and
// ELR_EL1 / SPSR_EL1. The frame (720 bytes):
//
//   0    x0..x17 (pairs)     144  x18, x29       160  x30, ELR_EL1
//   176  SPSR_EL1, FPCR      192  FPSR, pad      208  q0..q31 (512 bytes)
//
// It then calls `irq`, restores the frame and returns with `ERET`, which restores PSTATE
// (including the interrupted DAIF) from SPSR_EL1 (Arm ARM C6.2.94).
global_asm!(
    r#"
    .section .text.vectors, "ax"
    .balign 0x800
    .global exo_libos_vectors
exo_libos_vectors:
    .irp slot, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    .balign 0x80
    .if \slot == 5
    b       6f
    .else
    mov     x0, #\slot
    b       3f
    .endif
    .endr
3:  adrp    x1, __exception_stack_top
    add     x1, x1, :lo12:__exception_stack_top
    mov     sp, x1
    mov     x29, xzr
    mov     x30, xzr
    bl      {exception}
4:  wfe
    b       4b

6:  sub     sp, sp, #720
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x29, [sp, #144]
    mrs     x0, elr_el1
    stp     x30, x0, [sp, #160]
    mrs     x0, spsr_el1
    mrs     x1, fpcr
    stp     x0, x1, [sp, #176]
    mrs     x0, fpsr
    str     x0, [sp, #192]
    add     x0, sp, #208
    stp     q0, q1, [x0, #0]
    stp     q2, q3, [x0, #32]
    stp     q4, q5, [x0, #64]
    stp     q6, q7, [x0, #96]
    stp     q8, q9, [x0, #128]
    stp     q10, q11, [x0, #160]
    stp     q12, q13, [x0, #192]
    stp     q14, q15, [x0, #224]
    stp     q16, q17, [x0, #256]
    stp     q18, q19, [x0, #288]
    stp     q20, q21, [x0, #320]
    stp     q22, q23, [x0, #352]
    stp     q24, q25, [x0, #384]
    stp     q26, q27, [x0, #416]
    stp     q28, q29, [x0, #448]
    stp     q30, q31, [x0, #480]
    bl      {irq}
    add     x0, sp, #208
    ldp     q0, q1, [x0, #0]
    ldp     q2, q3, [x0, #32]
    ldp     q4, q5, [x0, #64]
    ldp     q6, q7, [x0, #96]
    ldp     q8, q9, [x0, #128]
    ldp     q10, q11, [x0, #160]
    ldp     q12, q13, [x0, #192]
    ldp     q14, q15, [x0, #224]
    ldp     q16, q17, [x0, #256]
    ldp     q18, q19, [x0, #288]
    ldp     q20, q21, [x0, #320]
    ldp     q22, q23, [x0, #352]
    ldp     q24, q25, [x0, #384]
    ldp     q26, q27, [x0, #416]
    ldp     q28, q29, [x0, #448]
    ldp     q30, q31, [x0, #480]
    ldr     x0, [sp, #192]
    msr     fpsr, x0
    ldp     x0, x1, [sp, #176]
    msr     spsr_el1, x0
    msr     fpcr, x1
    ldp     x30, x0, [sp, #160]
    msr     elr_el1, x0
    ldp     x18, x29, [sp, #144]
    ldp     x16, x17, [sp, #128]
    ldp     x14, x15, [sp, #112]
    ldp     x12, x13, [sp, #96]
    ldp     x10, x11, [sp, #80]
    ldp     x8, x9, [sp, #64]
    ldp     x6, x7, [sp, #48]
    ldp     x4, x5, [sp, #32]
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #720
    eret
    "#,
    exception = sym exception,
    irq = sym irq,
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

/// Rust entry from the IRQ vector, on the interrupted stack with IRQs masked.
extern "C" fn irq() {
    crate::irq::dispatch();
}

/// Issues `HVC #0` with `function` in `w0` and `args` in `x1`.., returning `x0` (SMCCC 1.1).
pub(crate) fn hvc(function: u32, args: [u64; 6]) -> u64 {
    hvc4(function, args)[0]
}

/// Issues `HVC #0` like [`hvc`] and returns `x0`..`x3`, for calls with several results.
pub(crate) fn hvc4(function: u32, args: [u64; 6]) -> [u64; 4] {
    let [a1, a2, a3, a4, a5, a6] = args;
    let r = hvc8(function, [a1, a2, a3, a4, a5, a6, 0, 0]);
    [r[0], r[1], r[2], r[3]]
}

/// Issues `HVC #0` with `function` in `w0` and eight arguments in `x1`..`x8`, returning
/// `x0`..`x7`: for the protected control transfer calls, which carry seven words each way.
///
/// The registers are passed as registers: no argument array is built in memory (a 17-word
/// one, zeroed with SIMD stores, cost every call an FP/SIMD use and with it, under the
/// kernel's lazy FP/SIMD switch, a trap after every world switch).
#[inline(always)]
pub(crate) fn hvc8(function: u32, args: [u64; 8]) -> [u64; 8] {
    let [a1, a2, a3, a4, a5, a6, a7, a8] = args;
    let (r0, r1, r2, r3, r4, r5, r6, r7): (u64, u64, u64, u64, u64, u64, u64, u64);
    // SAFETY: an SMCCC call to exo's kernel (HVC #0): it reads x0..x8, writes at most
    // x0..x7 (SMCCC 1.1 lets it change x4..x17, so x8..x17 are declared clobbered too) and
    // may write memory the call's arguments name, as any function call may; it returns to
    // the next instruction with everything else as it was (an upcall in between returns
    // through EXO_UPCALL_RETURN with every register restored).
    unsafe {
        core::arch::asm!(
            "hvc #0",
            inlateout("x0") u64::from(function) => r0,
            inlateout("x1") a1 => r1,
            inlateout("x2") a2 => r2,
            inlateout("x3") a3 => r3,
            inlateout("x4") a4 => r4,
            inlateout("x5") a5 => r5,
            inlateout("x6") a6 => r6,
            inlateout("x7") a7 => r7,
            inlateout("x8") a8 => _,
            lateout("x9") _, lateout("x10") _, lateout("x11") _, lateout("x12") _,
            lateout("x13") _, lateout("x14") _, lateout("x15") _, lateout("x16") _,
            lateout("x17") _,
            options(nostack),
        );
    }
    [r0, r1, r2, r3, r4, r5, r6, r7]
}

/// The IPA of a buffer of words the kernel is to fill (identity: the stage-1 MMU is off).
pub(crate) fn ipa_of_words(words: &mut [u64]) -> Ipa {
    Ipa::new(words.as_mut_ptr() as u64)
}

/// The IPA of an array of frame addresses in our own memory (identity: the stage-1 MMU is
/// off); the kernel writes `u64`s there, which `PhysAddr` is (`repr(transparent)`).
pub(crate) fn ipa_of_frames(frames: &mut [PhysAddr]) -> Ipa {
    Ipa::new(frames.as_mut_ptr() as u64)
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
    // out memory `probe` accepts), and any bit pattern is a valid `u64`. Stage 1 is an
    // identity map, so the address is the IPA (or `crate::mmu`'s alias of a bound page). A load from an unbound IPA is stopped by stage 2 and never returns.
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

/// The system counter (`CNTVCT_EL0`, Arm ARM D19.12.22): readable at EL1 whatever the
/// kernel sets in `CNTHCTL_EL2`.
pub(crate) fn ticks() -> u64 {
    use aarch64_cpu::registers::CNTVCT_EL0;
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    CNTVCT_EL0.get()
}

/// The system counter's frequency in Hz (`CNTFRQ_EL0`, Arm ARM D19.12.16).
pub(crate) fn tick_frequency() -> u64 {
    use aarch64_cpu::registers::CNTFRQ_EL0;
    CNTFRQ_EL0.get()
}

// The upcall entry (ABI `exo_abi::call::upcall`). The kernel enters here at EL1h with DAIF
// masked, x0 = reason, x1..x3 = values and every other register as the interrupted code left
// it; it restores them all on `EXO_UPCALL_RETURN`. The stub:
//
// 1. Keeps the interrupted SP in x9 and switches to the upcall stack (linker script): only
//    one upcall runs at a time, so one stack suffices, and the interrupted code may have
//    been deep in its own stack.
// 2. Saves the interrupted SP on the upcall stack and calls the Rust dispatcher with the
//    reason and values in x0..x3 (AAPCS64); it returns the `skip` flag in x0.
// 3. Puts the interrupted SP back (whether or not the kernel restores SP_EL1) and issues
//    `EXO_UPCALL_RETURN(skip)` (0xC600_0019), which does not return.
global_asm!(
    r#"
    .section .text.upcall, "ax"
    .balign 4
    .global exo_libos_upcall_entry
    .type exo_libos_upcall_entry, %function
exo_libos_upcall_entry:
    mov     x9, sp
    adrp    x10, __upcall_stack_top
    add     x10, x10, :lo12:__upcall_stack_top
    mov     sp, x10
    str     x9, [sp, #-16]!
    mov     x29, xzr
    mov     x30, xzr
    bl      {dispatch}
    ldr     x9, [sp], #16
    mov     sp, x9
    mov     x1, x0
    movz    x0, #0x0019
    movk    x0, #0xC600, lsl #16
    hvc     #0
5:  wfe
    b       5b
    .size exo_libos_upcall_entry, . - exo_libos_upcall_entry
    "#,
    dispatch = sym upcall,
);

/// Rust entry from the upcall stub, on the upcall stack.
extern "C" fn upcall(reason: u64, first: u64, second: u64, third: u64) -> u64 {
    crate::upcall::dispatch(reason, [first, second, third])
}

/// The IPA of the upcall entry stub, for `EXO_SET_UPCALL`.
pub(crate) fn upcall_entry() -> Ipa {
    unsafe extern "C" {
        static exo_libos_upcall_entry: u8;
    }
    Ipa::new(&raw const exo_libos_upcall_entry as u64)
}

// SAFETY: `allocate` hands out disjoint ranges of heap-window memory that the library OS
// bound read-write for itself and never hands to anything else (the revocation policies skip
// pinned heap frames, and `crate::probe` refuses the heap window), aligned as asked; a block
// is only reused after `dealloc` returned it. With the MMU off an IPA is the address.
unsafe impl core::alloc::GlobalAlloc for crate::mem::heap::Allocator {
    unsafe fn alloc(&self, layout: core::alloc::Layout) -> *mut u8 {
        match crate::mem::heap::allocate(layout.size(), layout.align()) {
            Some(ipa) => core::ptr::with_exposed_provenance_mut(ipa.raw() as usize),
            None => core::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: core::alloc::Layout) {
        let ipa = Ipa::new(pointer.expose_provenance() as u64);
        crate::mem::heap::deallocate(ipa, layout.size(), layout.align());
    }
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

// Register isolation probes (see `crate::registers`).
//
// `exo_libos_spin_filled(pattern, spins)`: saves what AAPCS64 asks a callee to keep
// (x19..x30, d8..d15) and the EL0/EL1 thread registers it overwrites, fills every general
// register but the loop counter (x1), all 32 SIMD registers and TPIDR_EL0, TPIDRRO_EL0,
// TPIDR_EL1, CONTEXTIDR_EL1 and SP_EL0 with `pattern`, counts `spins` down without a
// hypercall (so the kernel's time slice preempts it with the pattern everywhere), then
// restores and returns.
//
// `exo_libos_yield_and_snapshot(buffer)`: yields (EXO_YIELD, 0xC600_0002) and, as soon as the
// kernel resumes it, stores x0..x30, q0..q31 and the five thread registers in `buffer`
// (104 words: x at 0, q at 32, sysregs at 96). x19 holds the buffer address.
global_asm!(
    r#"
    .section .text.exo_registers, "ax"
    .global exo_libos_spin_filled
exo_libos_spin_filled:
    sub     sp, sp, #208
    stp     x29, x30, [sp, #0]
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     x23, x24, [sp, #48]
    stp     x25, x26, [sp, #64]
    stp     x27, x28, [sp, #80]
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mrs     x2, tpidr_el0
    mrs     x3, tpidrro_el0
    stp     x2, x3, [sp, #160]
    mrs     x2, tpidr_el1
    mrs     x3, contextidr_el1
    stp     x2, x3, [sp, #176]
    mrs     x2, sp_el0
    str     x2, [sp, #192]
    msr     tpidr_el0, x0
    msr     tpidrro_el0, x0
    msr     tpidr_el1, x0
    msr     contextidr_el1, x0
    msr     sp_el0, x0
    dup     v0.2d, x0
    mov     v1.16b, v0.16b
    mov     v2.16b, v0.16b
    mov     v3.16b, v0.16b
    mov     v4.16b, v0.16b
    mov     v5.16b, v0.16b
    mov     v6.16b, v0.16b
    mov     v7.16b, v0.16b
    mov     v8.16b, v0.16b
    mov     v9.16b, v0.16b
    mov     v10.16b, v0.16b
    mov     v11.16b, v0.16b
    mov     v12.16b, v0.16b
    mov     v13.16b, v0.16b
    mov     v14.16b, v0.16b
    mov     v15.16b, v0.16b
    mov     v16.16b, v0.16b
    mov     v17.16b, v0.16b
    mov     v18.16b, v0.16b
    mov     v19.16b, v0.16b
    mov     v20.16b, v0.16b
    mov     v21.16b, v0.16b
    mov     v22.16b, v0.16b
    mov     v23.16b, v0.16b
    mov     v24.16b, v0.16b
    mov     v25.16b, v0.16b
    mov     v26.16b, v0.16b
    mov     v27.16b, v0.16b
    mov     v28.16b, v0.16b
    mov     v29.16b, v0.16b
    mov     v30.16b, v0.16b
    mov     v31.16b, v0.16b
    mov     x2, x0
    mov     x3, x0
    mov     x4, x0
    mov     x5, x0
    mov     x6, x0
    mov     x7, x0
    mov     x8, x0
    mov     x9, x0
    mov     x10, x0
    mov     x11, x0
    mov     x12, x0
    mov     x13, x0
    mov     x14, x0
    mov     x15, x0
    mov     x16, x0
    mov     x17, x0
    mov     x18, x0
    mov     x19, x0
    mov     x20, x0
    mov     x21, x0
    mov     x22, x0
    mov     x23, x0
    mov     x24, x0
    mov     x25, x0
    mov     x26, x0
    mov     x27, x0
    mov     x28, x0
    mov     x29, x0
    mov     x30, x0
1:  subs    x1, x1, #1
    b.ne    1b
    ldp     x2, x3, [sp, #160]
    msr     tpidr_el0, x2
    msr     tpidrro_el0, x3
    ldp     x2, x3, [sp, #176]
    msr     tpidr_el1, x2
    msr     contextidr_el1, x3
    ldr     x2, [sp, #192]
    msr     sp_el0, x2
    ldp     d14, d15, [sp, #144]
    ldp     d12, d13, [sp, #128]
    ldp     d10, d11, [sp, #112]
    ldp     d8, d9, [sp, #96]
    ldp     x27, x28, [sp, #80]
    ldp     x25, x26, [sp, #64]
    ldp     x23, x24, [sp, #48]
    ldp     x21, x22, [sp, #32]
    ldp     x19, x20, [sp, #16]
    ldp     x29, x30, [sp, #0]
    add     sp, sp, #208
    ret

    .global exo_libos_yield_and_snapshot
exo_libos_yield_and_snapshot:
    stp     x29, x30, [sp, #-32]!
    str     x19, [sp, #16]
    mov     x19, x0
    mov     x0, #0x0002
    movk    x0, #0xC600, lsl #16
    hvc     #0
    stp     x0, x1, [x19, #0]
    stp     x2, x3, [x19, #16]
    stp     x4, x5, [x19, #32]
    stp     x6, x7, [x19, #48]
    stp     x8, x9, [x19, #64]
    stp     x10, x11, [x19, #80]
    stp     x12, x13, [x19, #96]
    stp     x14, x15, [x19, #112]
    stp     x16, x17, [x19, #128]
    stp     x18, x19, [x19, #144]
    stp     x20, x21, [x19, #160]
    stp     x22, x23, [x19, #176]
    stp     x24, x25, [x19, #192]
    stp     x26, x27, [x19, #208]
    stp     x28, x29, [x19, #224]
    str     x30, [x19, #240]
    stp     q0, q1, [x19, #256]
    stp     q2, q3, [x19, #288]
    stp     q4, q5, [x19, #320]
    stp     q6, q7, [x19, #352]
    stp     q8, q9, [x19, #384]
    stp     q10, q11, [x19, #416]
    stp     q12, q13, [x19, #448]
    stp     q14, q15, [x19, #480]
    stp     q16, q17, [x19, #512]
    stp     q18, q19, [x19, #544]
    stp     q20, q21, [x19, #576]
    stp     q22, q23, [x19, #608]
    stp     q24, q25, [x19, #640]
    stp     q26, q27, [x19, #672]
    stp     q28, q29, [x19, #704]
    stp     q30, q31, [x19, #736]
    add     x4, x19, #768
    mrs     x2, tpidr_el0
    mrs     x3, tpidrro_el0
    stp     x2, x3, [x4, #0]
    mrs     x2, tpidr_el1
    mrs     x3, contextidr_el1
    stp     x2, x3, [x4, #16]
    mrs     x2, sp_el0
    str     x2, [x4, #32]
    ldr     x19, [sp, #16]
    ldp     x29, x30, [sp], #32
    ret
"#
);

unsafe extern "C" {
    fn exo_libos_spin_filled(pattern: u64, spins: u64);
    fn exo_libos_yield_and_snapshot(buffer: *mut u64);
}

/// `PMCCNTR_EL0` (Arm ARM D24.x).
pub(crate) fn read_cycle_counter() -> u64 {
    let value: u64;
    // SAFETY: a system-register read with no memory effect (on exo it traps to the kernel).
    unsafe { core::arch::asm!("mrs {}, pmccntr_el0", out(reg) value, options(nomem, nostack)) };
    value
}

/// Fills the registers with `pattern` and spins (see the assembly above).
pub(crate) fn spin_filled(pattern: u64, spins: u64) {
    // SAFETY: the routine saves and restores every register AAPCS64 makes callee-saved and
    // every system register it changes; it touches no memory but its own stack frame.
    unsafe { exo_libos_spin_filled(pattern, spins.max(1)) }
}

/// Yields, then snapshots the registers into `buffer`.
pub(crate) fn yield_and_snapshot(buffer: &mut [u64; 104]) {
    // SAFETY: the routine writes 808 bytes into `buffer` (832 bytes, exclusively borrowed)
    // and restores x19, x29 and x30; the hypercall may clobber only what SMCCC allows,
    // which the routine treats as clobbered.
    unsafe { exo_libos_yield_and_snapshot(buffer.as_mut_ptr()) }
}

// GICv3 CPU interface (GIC architecture specification IHI 0069, chapter 12). With
// `HCR_EL2.IMO` set, the kernel routes physical IRQs to EL2 and EL1 accesses to the `ICC_*`
// registers below reach the virtual CPU interface (`ICV_*`, IHI 0069 §12.1.4); the kernel
// fills the list registers it reads from.

/// Whether the PE implements the GIC system-register CPU interface:
/// `ID_AA64PFR0_EL1.GIC` (bits [27:24], Arm ARM D19.2.64) is non-zero. Without it every
/// `ICC_*` access is UNDEFINED (on QEMU `virt` with a GICv2, for instance).
pub(crate) fn gic_system_registers_implemented() -> bool {
    use aarch64_cpu::registers::ID_AA64PFR0_EL1;
    (ID_AA64PFR0_EL1.get() >> 24) & 0xF != 0
}

/// Sets `ICC_SRE_EL1.SRE` (IHI 0069 §12.2.22) to use the system-register interface and reads
/// it back: `false` if it stays 0 (the kernel or the GIC offers only the memory-mapped
/// interface). Call only if [`gic_system_registers_implemented`].
pub(crate) fn enable_gic_system_registers() -> bool {
    arm_gic::gicv3::GicCpuInterface::enable_system_register_el1();
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    let sre: u64;
    // SAFETY: reading ICC_SRE_EL1 (S3_0_C12_C12_5) has no side effect; the caller checked
    // that the system-register interface is implemented, so the read is not UNDEFINED.
    unsafe {
        core::arch::asm!("mrs {}, S3_0_C12_C12_5", out(reg) sre, options(nomem, nostack));
    }
    sre & 1 != 0
}

/// Opens the CPU interface to every Group 1 interrupt: `ICC_PMR_EL1 = 0xFF` (every priority
/// passes, IHI 0069 §12.2.15), `ICC_BPR1_EL1 = 0` (no subpriority grouping beyond the
/// minimum, §12.2.5), `ICC_IGRPEN1_EL1.Enable = 1` (§12.2.13). Call only once
/// [`enable_gic_system_registers`] returned `true`.
pub(crate) fn gic_cpu_interface_setup() {
    use arm_gic::gicv3::GicCpuInterface;
    GicCpuInterface::set_priority_mask(0xFF);
    // SAFETY: writing ICC_BPR1_EL1 (S3_0_C12_C12_3) only changes how priorities group for
    // preemption; with the system-register interface enabled (checked by the caller) the
    // write is defined and touches no memory.
    unsafe {
        core::arch::asm!("msr S3_0_C12_C12_3, xzr", options(nomem, nostack));
    }
    GicCpuInterface::enable_group1(true);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Acknowledges the highest-priority pending Group 1 interrupt (`ICC_IAR1_EL1`, IHI 0069
/// §12.2.12): its INTID, or `None` for the spurious INTID 1023.
pub(crate) fn acknowledge_interrupt() -> Option<u32> {
    use arm_gic::InterruptGroup;
    arm_gic::gicv3::GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1)
        .map(u32::from)
}

/// Ends an acknowledged Group 1 interrupt (`ICC_EOIR1_EL1`, IHI 0069 §12.2.10): drops the
/// running priority and, with `ICC_CTLR_EL1.EOImode == 0`, deactivates it; for a virtual
/// interrupt with the list register's HW bit set that deactivates the physical one too.
pub(crate) fn end_interrupt(intid: u32) {
    use arm_gic::{InterruptGroup, gicv3::GicCpuInterface};
    if let Ok(intid) = arm_gic::IntId::try_from(intid) {
        GicCpuInterface::end_interrupt(intid, InterruptGroup::Group1);
    }
}

/// Whether IRQs are masked at EL1 (`PSTATE.I`, `DAIF` Arm ARM C5.2.2).
pub(crate) fn irqs_masked() -> bool {
    use aarch64_cpu::registers::DAIF;
    DAIF.is_set(DAIF::I)
}

/// Masks IRQs at EL1 (`MSR DAIFSet, #2`, Arm ARM C5.2.2).
pub(crate) fn mask_irqs() {
    // SAFETY: setting PSTATE.I only delays interrupts; it touches no memory. The compiler
    // barrier (no `nomem`) keeps memory accesses of the masked section after it.
    unsafe { core::arch::asm!("msr daifset, #2", options(nostack)) }
}

/// Unmasks IRQs at EL1 (`MSR DAIFClr, #2`). Only `crate::irq` calls this, once the vector
/// table's IRQ entry and the dispatcher are ready.
pub(crate) fn unmask_irqs() {
    // SAFETY: the IRQ vector saves and restores everything the interrupted code may hold
    // (see the vector table above), so an IRQ may be taken at any instruction from here on.
    // No `nomem`: memory accesses of a masked section must not move past this.
    unsafe { core::arch::asm!("msr daifclr, #2", options(nostack)) }
}

/// Waits for an interrupt (`WFI`, Arm ARM C6.2.403). The kernel does not trap it, so the
/// partition idles the rest of its time slice here, or until an interrupt is pending.
pub(crate) fn wait_for_interrupt() {
    aarch64_cpu::asm::wfi();
}

/// Arms the EL1 virtual timer to fire when `CNTVCT_EL0 >= deadline`: `CNTV_CVAL_EL0` then
/// `CNTV_CTL_EL0 = ENABLE` with `IMASK` clear (Arm ARM D19.12.23/24), then `ISB` so the new
/// condition holds before anything that follows (such as an end of interrupt).
pub(crate) fn virtual_timer_arm(deadline: u64) {
    use aarch64_cpu::registers::{CNTV_CTL_EL0, CNTV_CVAL_EL0, Writeable};
    CNTV_CVAL_EL0.set(deadline);
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Disables the EL1 virtual timer (`CNTV_CTL_EL0 = 0`): its interrupt deasserts.
pub(crate) fn virtual_timer_disable() {
    use aarch64_cpu::registers::{CNTV_CTL_EL0, Writeable};
    CNTV_CTL_EL0.set(0);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Unmasks IRQs, synchronises the context and masks them again: an interrupt pending at the
/// CPU interface is taken (its handler runs) between the two. `ISB` makes the unmasking
/// visible before the re-masking (a pending interrupt is taken no later than the
/// context synchronisation event that follows the write to `PSTATE.I`; Arm ARM,
/// "Asynchronous exception masking").
pub(crate) fn take_pending_interrupts() {
    // SAFETY: as for `unmask_irqs`: the IRQ vector saves and restores everything the
    // interrupted code may hold, so an IRQ may be taken at the `ISB`. No `nomem`: memory
    // accesses must stay on their side of the window, where the handlers' effects are seen.
    unsafe {
        core::arch::asm!(
            "msr daifclr, #2",
            "isb",
            "msr daifset, #2",
            options(nostack)
        )
    }
}

/// A typed register block of a device bound in stage 2 as Device memory: the library OS's
/// one way from a device IPA to a reference (Tock's `StaticRef`). Built only by
/// [`Mmio::for_region`], from a [`crate::device::Region`].
pub(crate) struct Mmio<T: 'static> {
    registers: &'static T,
}

impl<T> Mmio<T> {
    /// The register block at the start of `region`.
    ///
    /// Panics if `T` does not fit in the region or the region is not aligned for `T`.
    pub(crate) fn for_region(region: &crate::device::Region) -> Self {
        let base = region.ipa().raw();
        assert!(
            core::mem::size_of::<T>() as u64 <= region.bytes()
                && base.is_multiple_of(core::mem::align_of::<T>() as u64),
            "a register block must fit its device region"
        );
        // SAFETY: a `device::Region` exists only for a run of pages the kernel bound as
        // Device memory at this IPA for the life of the partition (from the info page), and
        // at most once per run (`device` keeps a claim list), so this is the only reference
        // to those registers; `T` fits and is aligned (asserted above). The register types
        // are `UnsafeCell`-based and accessed only with volatile loads and stores, so the
        // device changing them behind our back does not break Rust's rules. With the stage-1
        // MMU off the address is the IPA; stage 2 makes the accesses Device-nGnRE.
        let registers = unsafe { &*(base as *const T) };
        Self { registers }
    }
}

impl<T> core::ops::Deref for Mmio<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.registers
    }
}

// SAFETY: device registers are reachable from any context of the partition's single vCPU;
// whoever owns the `Mmio` (a driver, usually behind a lock) provides exclusive use.
unsafe impl<T> Send for Mmio<T> {}

/// Tables for the alias window: the last GiB of the VA space, mapped page by page.
static ALIAS_L2: Table = Table(core::cell::UnsafeCell::new([0; 512]));
static ALIAS_L3: Table = Table(core::cell::UnsafeCell::new([0; 512]));

/// Where the alias window starts: the last GiB of the 39-bit VA space.
pub(crate) const ALIAS_BASE: u64 = 511 << 30;

/// Maps alias slot `slot` (a page of the window) to the page at `ipa`, or unmaps it (`None`).
/// Stage-1 descriptors change with break-before-make and TLB invalidation (Arm ARM D8.14).
pub(crate) fn map_alias(slot: usize, ipa: Option<Ipa>) {
    let table = |t: &Table| t.0.get() as u64 | 0b11;
    let barrier_and_flush = |va: u64| {
        // SAFETY: TLB maintenance of this vCPU's own stage 1; no memory effect beyond it.
        unsafe {
            core::arch::asm!(
                "dsb ishst",
                "tlbi vae1is, {}",
                "dsb ish",
                "isb",
                in(reg) va >> 12,
                options(nostack)
            )
        };
    };
    // SAFETY: single vCPU, IRQs masked by the caller (`crate::mmu`); nothing else writes the
    // tables, and the hardware walker only reads them.
    let (l1, l2, l3) = unsafe {
        (
            &mut *STAGE1.0.get(),
            &mut *ALIAS_L2.0.get(),
            &mut *ALIAS_L3.0.get(),
        )
    };
    if l1[511] != table(&ALIAS_L2) {
        l1[511] = 0;
        barrier_and_flush(ALIAS_BASE);
        // SAFETY: as above; the whole GiB's translations go, not just one page.
        unsafe {
            core::arch::asm!(
                "dsb ishst",
                "tlbi vmalle1is",
                "dsb ish",
                "isb",
                options(nostack)
            )
        };
        l2[0] = table(&ALIAS_L3);
        l1[511] = table(&ALIAS_L2);
    }
    let va = ALIAS_BASE + slot as u64 * 4096;
    l3[slot] = 0;
    barrier_and_flush(va);
    if let Some(ipa) = ipa {
        // Level-3 page descriptor: like the identity blocks, bits [1:0] = 0b11.
        l3[slot] = (ipa.page_base().raw()) | 0b11 | (0b11 << 8) | (1 << 10) | (1 << 54);
        barrier_and_flush(va);
    }
}
