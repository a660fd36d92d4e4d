//! The generic timer as the library OS sees it at EL1: the virtual count (`CNTVCT_EL0`), its
//! frequency and the EL1 virtual timer (`CNTV_*_EL0`), Arm ARM D11 and D19.12.

use aarch64_cpu::registers::Readable;

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
