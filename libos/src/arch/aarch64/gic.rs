//! The GICv3 CPU interface through system registers (GIC architecture specification IHI
//! 0069, chapter 12). The GICv2 memory-mapped interface is a typed register block driven
//! by the library OS's interrupt layer over [`Mmio`](super::Mmio).
//!
//! With `HCR_EL2.IMO` set, the kernel routes physical IRQs to EL2 and EL1 accesses to the
//! `ICC_*` registers below reach the virtual CPU interface (`ICV_*`, IHI 0069 §12.1.4); the
//! kernel fills the list registers it reads from.

use aarch64_cpu::registers::Readable;

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
