//! The PE's own state at EL1: masking IRQs (`PSTATE.I`), waiting for interrupts and events,
//! and halting.

use aarch64_cpu::registers::Readable;

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

/// Waits forever with interrupts masked (`WFE` loop).
pub(crate) fn halt() -> ! {
    loop {
        aarch64_cpu::asm::wfe();
    }
}
