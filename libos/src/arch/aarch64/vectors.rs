//! The EL1 exception vector table and its two Rust entries. Neither decides anything: an
//! exception's syndrome and an IRQ go up through the runtime's hooks
//! (`crate::runtime::hooks`), which hold whatever the layers above registered.

use core::arch::global_asm;

use aarch64_cpu::registers::{ELR_EL1, ESR_EL1, FAR_EL1, Readable, SPSR_EL1};

use crate::arch::{Syndrome, VectorSlot};
use crate::runtime::hooks;

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

/// Rust entry from the vector table, on the exception stack: the syndrome goes to the
/// runtime, which reports it and exits.
extern "C" fn exception(slot: u64) -> ! {
    hooks::exception(Syndrome {
        slot: VectorSlot(slot),
        esr: ESR_EL1.get(),
        far: FAR_EL1.get(),
        elr: ELR_EL1.get(),
        spsr: SPSR_EL1.get(),
    })
}

/// Rust entry from the IRQ vector, on the interrupted stack with IRQs masked: runs the
/// registered interrupt dispatcher.
extern "C" fn irq() {
    hooks::irq();
}
