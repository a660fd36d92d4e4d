//! Register isolation probes: assembly that fills every register with a pattern, or
//! snapshots them all after a yield, so a test can see whether anything leaked across a
//! world switch.

use core::arch::global_asm;

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
