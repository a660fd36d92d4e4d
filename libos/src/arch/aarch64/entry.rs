//! The boot stub, `_start`: where the kernel enters the partition. It turns stage 1 on,
//! zeroes `.bss`, sets up the boot stack and the vector table, and hands control to the
//! program's entry stub (`exo_libos_guest_main`, which `crate::entry!` defines and which
//! calls the runtime's start with the program's `main`). That is the one way up from this
//! layer that is not a runtime hook: a link-time symbol, as a C runtime's `_start` calls
//! `main`.
//!
//! Multi-vCPU: this stub is the boot vCPU's. Each further vCPU will need its own stack
//! (today `__stack_top` is the only one) and a way to tell the runtime which vCPU it is.

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};

use exo_abi::Ipa;

use super::STAGE1;

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
// 3. Point SP at the top of the 64 KiB stack, and keep the info page's IPA in `INFO_PAGE`.
// 4. Install the vector table in VBAR_EL1 (Arm ARM D19.2.159) and synchronise with ISB.
// 5. Call the program's entry stub; it never returns.
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
    adrp    x1, {info_page}
    add     x1, x1, :lo12:{info_page}
    str     x19, [x1]
    adrp    x1, exo_libos_vectors
    add     x1, x1, :lo12:exo_libos_vectors
    msr     vbar_el1, x1
    isb
    mov     x29, xzr
    mov     x30, xzr
    bl      exo_libos_guest_main
2:  wfe
    b       2b
    .size _start, . - _start
    .ltorg
    "#,
    stage1 = sym STAGE1,
    info_page = sym INFO_PAGE,
);

/// The IPA of the info page, as the kernel passed it in `x0` (0 until `_start` stores it,
/// after zeroing `.bss`, before any Rust code runs; never written again).
static INFO_PAGE: AtomicU64 = AtomicU64::new(0);

/// The IPA of the info page the kernel passed at entry (no other: a program cannot make the
/// library OS read another page as its info page).
pub(crate) fn info_page_ipa() -> Ipa {
    Ipa::new(INFO_PAGE.load(Ordering::Relaxed))
}
