//! EL2 exception vectors (Arm ARM D1.3.1, "Exception vectors"): guest traps save the
//! partition's general registers into its [`VcpuRegs`] (pointed to by `TPIDR_EL2`), call
//! Rust, and resume whichever vCPU Rust returns. Exceptions taken from EL2 itself are kernel
//! bugs: they are reported with ESR/FAR/ELR decoded, then the kernel panics.

use super::esr::Esr;
use crate::vcpu::VcpuRegs;
use aarch64_cpu::registers::{ELR_EL2, ESR_EL2, FAR_EL2, Readable};

core::arch::global_asm!(
    r#"
/* Save x0..x30, ELR_EL2 and SPSR_EL2 of the running guest into *TPIDR_EL2. */
.macro SAVE_GUEST
    stp     x0, x1, [sp, #-16]!
    mrs     x0, tpidr_el2
    stp     x2, x3, [x0, #16]
    stp     x4, x5, [x0, #32]
    stp     x6, x7, [x0, #48]
    stp     x8, x9, [x0, #64]
    stp     x10, x11, [x0, #80]
    stp     x12, x13, [x0, #96]
    stp     x14, x15, [x0, #112]
    stp     x16, x17, [x0, #128]
    stp     x18, x19, [x0, #144]
    stp     x20, x21, [x0, #160]
    stp     x22, x23, [x0, #176]
    stp     x24, x25, [x0, #192]
    stp     x26, x27, [x0, #208]
    stp     x28, x29, [x0, #224]
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x0, #0]
    mrs     x1, elr_el2
    mrs     x2, spsr_el2
    stp     x30, x1, [x0, #240]
    str     x2, [x0, #256]
.endm

/* Exceptions taken at EL2 are kernel bugs and never return: switch to the emergency stack
 * (SP_EL0), so that even a kernel stack overflow into the guard page can be reported. */
.macro SAVE_EL2 kind
    msr     spsel, #0
    sub     sp, sp, #272
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x29, x30, [sp, #32]
    mov     x0, #\kind
    mov     x1, sp
    bl      exo_el2_exception
.endm

.macro VECTOR target
    .balign 0x80
    b       \target
.endm

    .section .text.vectors, "ax"
    .balign 0x800
    .global el2_vectors
el2_vectors:
    /* Current EL with SP_EL0: only while already reporting a kernel fault. Give up. */
    VECTOR  el2_double_fault
    VECTOR  el2_double_fault
    VECTOR  el2_double_fault
    VECTOR  el2_double_fault
    /* Current EL with SP_ELx. */
    VECTOR  el2_sync
    VECTOR  el2_irq
    VECTOR  el2_fiq
    VECTOR  el2_serror
    /* Lower EL, AArch64. */
    VECTOR  guest_sync
    VECTOR  guest_irq
    VECTOR  guest_fiq
    VECTOR  guest_serror
    /* Lower EL, AArch32: EL1 is always AArch64 (HCR_EL2.RW); treat as a bad trap. */
    VECTOR  guest_serror
    VECTOR  guest_serror
    VECTOR  guest_serror
    VECTOR  guest_serror

el2_double_fault:
    wfe
    b       el2_double_fault

el2_sync:   SAVE_EL2 0
el2_irq:    SAVE_EL2 1
el2_fiq:    SAVE_EL2 2
el2_serror: SAVE_EL2 3

guest_sync:
    SAVE_GUEST
    mov     x1, #0
    bl      exo_guest_trap
    b       exo_resume_vcpu
guest_irq:
    SAVE_GUEST
    mov     x1, #1
    bl      exo_guest_trap
    b       exo_resume_vcpu
guest_fiq:
    SAVE_GUEST
    mov     x1, #2
    bl      exo_guest_trap
    b       exo_resume_vcpu
guest_serror:
    SAVE_GUEST
    mov     x1, #3
    bl      exo_guest_trap
    b       exo_resume_vcpu

/* exo_resume_vcpu(regs: *const VcpuRegs) -> !: TPIDR_EL2 = regs; restore and ERET. */
    .global exo_resume_vcpu
exo_resume_vcpu:
    msr     tpidr_el2, x0
    ldp     x30, x1, [x0, #240]
    ldr     x2, [x0, #256]
    msr     elr_el2, x1
    msr     spsr_el2, x2
    ldp     x2, x3, [x0, #16]
    ldp     x4, x5, [x0, #32]
    ldp     x6, x7, [x0, #48]
    ldp     x8, x9, [x0, #64]
    ldp     x10, x11, [x0, #80]
    ldp     x12, x13, [x0, #96]
    ldp     x14, x15, [x0, #112]
    ldp     x16, x17, [x0, #128]
    ldp     x18, x19, [x0, #144]
    ldp     x20, x21, [x0, #160]
    ldp     x22, x23, [x0, #176]
    ldp     x24, x25, [x0, #192]
    ldp     x26, x27, [x0, #208]
    ldp     x28, x29, [x0, #224]
    ldp     x0, x1, [x0, #0]
    eret

/* exo_enter_first_vcpu(regs, stack_top) -> !: reset the EL2 stack, then resume. */
    .global exo_enter_first_vcpu
exo_enter_first_vcpu:
    mov     sp, x1
    b       exo_resume_vcpu
"#
);

// The assembly above hard-codes these offsets.
const _: () = {
    assert!(core::mem::offset_of!(VcpuRegs, x) == 0);
    assert!(core::mem::offset_of!(VcpuRegs, pc) == 248);
    assert!(core::mem::offset_of!(VcpuRegs, pstate) == 256);
};

unsafe extern "C" {
    /// Resets the EL2 stack pointer to `stack_top`, then restores the guest registers in `regs`
    /// and returns to the guest with ERET (`exo_resume_vcpu`).
    fn exo_enter_first_vcpu(regs: *const VcpuRegs, stack_top: u64) -> !;
}

/// Which vector an exception arrived through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExceptionKind {
    /// Synchronous: an instruction trapped or faulted.
    Synchronous,
    /// Physical IRQ.
    Irq,
    /// Physical FIQ.
    Fiq,
    /// SError, or any exception from AArch32.
    SError,
}

impl ExceptionKind {
    fn from_index(index: u64) -> Self {
        match index {
            0 => Self::Synchronous,
            1 => Self::Irq,
            2 => Self::Fiq,
            _ => Self::SError,
        }
    }
}

/// Enters a guest for the first time, resetting the EL2 stack: nothing on the current stack
/// survives.
///
/// # Safety
/// `regs` must stay valid and pinned for as long as the guest runs (it is where the next
/// trap saves the guest's registers), and the guest's stage-2 and EL1 state must be loaded.
pub unsafe fn enter_first_vcpu(regs: *const VcpuRegs, stack_top: u64) -> ! {
    // SAFETY: the caller guarantees `regs` is a live, loaded vCPU; `stack_top` is the top of
    // this core's EL2 stack, so resetting SP discards only frames we never return to.
    unsafe { exo_enter_first_vcpu(regs, stack_top) }
}

/// Called from the lower-EL vectors with the saved guest registers. Returns the registers of
/// the vCPU to resume (the same one, or another after a switch).
#[unsafe(no_mangle)]
extern "C" fn exo_guest_trap(regs: *mut VcpuRegs, kind: u64) -> *const VcpuRegs {
    let esr = Esr::new(ESR_EL2.get());
    if kind == 0 && esr.class() == super::esr::class::FP {
        // The first FP/SIMD use since the partition was switched in: nothing for the
        // kernel to decide (and nothing pending is skipped: the partition resumes at the
        // same instruction, and any interrupt is taken as it resumes).
        super::vcpu_state::take_fp();
        return regs;
    }
    let trap = super::trap::Trap::capture(ExceptionKind::from_index(kind), esr);
    super::trap::handle(regs, trap)
}

/// Called from the current-EL vectors: an exception inside the kernel is a kernel bug.
#[unsafe(no_mangle)]
extern "C" fn exo_el2_exception(kind: u64, _frame: *const u64) -> ! {
    let esr = Esr::new(ESR_EL2.get());
    let far = FAR_EL2.get();
    if super::boot::stack_guards().any(|guard| (guard..guard + 4096).contains(&far)) {
        panic!(
            "kernel stack overflow (access at {far:#x}, ELR_EL2={:#x})",
            ELR_EL2.get()
        );
    }
    panic!(
        "unexpected {:?} exception at EL2: ESR_EL2={:#x} ({}), FAR_EL2={:#x}, ELR_EL2={:#x}",
        ExceptionKind::from_index(kind),
        esr.raw(),
        esr,
        FAR_EL2.get(),
        ELR_EL2.get(),
    )
}
