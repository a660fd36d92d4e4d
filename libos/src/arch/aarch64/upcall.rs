//! The upcall entry stub (ABI `exo_abi::call::upcall`): where the kernel enters the library
//! OS with a notice. The stub and its Rust entry only move registers; the notice goes up
//! through the runtime's hooks to whatever dispatcher registered.

use core::arch::global_asm;

use exo_abi::Ipa;

use crate::runtime::hooks;

// The upcall entry (ABI `exo_abi::call::upcall`). The kernel enters here at EL1h with DAIF
// masked, x0 = reason, x1..x3 = values and every other register as the interrupted code left
// it; it restores them all on `EXO_UPCALL_RETURN`. The stub:
//
// 1. Keeps the interrupted SP in x9 and switches to the upcall stack (linker script): only
//    one upcall runs at a time, so one stack suffices, and the interrupted code may have
//    been deep in its own stack. (Multi-vCPU: one upcall at a time *per vCPU*, so one
//    upcall stack per vCPU.)
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

/// Rust entry from the upcall stub, on the upcall stack: runs the registered upcall
/// dispatcher and returns its `skip` flag.
extern "C" fn upcall(reason: u64, first: u64, second: u64, third: u64) -> u64 {
    hooks::upcall(reason, [first, second, third])
}

/// The IPA of the upcall entry stub, for `EXO_SET_UPCALL`.
pub(crate) fn upcall_entry() -> Ipa {
    unsafe extern "C" {
        static exo_libos_upcall_entry: u8;
    }
    Ipa::new(&raw const exo_libos_upcall_entry as u64)
}
