//! EL2 control registers for running library OSes at EL1: trap and routing controls,
//! stage-2 translation control, the timer and FP/SIMD access, power off.

use crate::boot_info::PowerOff;
use aarch64_cpu::registers::*;

/// `HCR_EL2` while partitions run (Arm ARM D24.2.48): VM (stage 2 on), SWIO, FMO/IMO/AMO
/// (physical FIQ/IRQ/SError to EL2), TSC (SMC traps to EL2, so PSCI over SMC reaches us),
/// TSW (data-cache maintenance by set/way traps: it would act on every partition's lines;
/// see `kernel::set_way`), RW (EL1 is AArch64). Not DC: a library OS runs its own stage-1
/// MMU (until it turns it on, its data accesses are Device memory, which is why the kernel
/// cleans what it loaded to the point of coherency first; see `Platform::clean_to_poc`).
const HCR_GUEST: u64 =
    (1 << 0) | (1 << 1) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 19) | (1 << 22) | (1 << 31);

/// IPA size used for every partition (see `mem::stage2::Geometry::default`).
const IPA_BITS: u64 = 39;

/// Physical address size from `ID_AA64MMFR0_EL1.PARange` (Arm ARM D24.2.81), as the
/// `VTCR_EL2.PS` / `TCR_EL2.PS` encoding, capped at 48 bits (0b101): no 52-bit output.
pub fn pa_range_encoding() -> u64 {
    ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange).min(0b101)
}

/// Configures EL2 for hosting partitions. Stage 2 is off until a partition's `VTTBR_EL2`
/// is loaded and `HCR_EL2.VM` set, both here before the first entry.
pub fn init() {
    // VTCR_EL2 (Arm ARM D24.2.204): T0SZ = 64 - 39, SL0 = 1 (start at level 1 with 4 KiB
    // granule), IRGN0/ORGN0 = write-back, SH0 = inner shareable, TG0 = 0b00 (4 KiB), PS from
    // PARange, bit 31 RES1.
    let vtcr = (64 - IPA_BITS)
        | (0b01 << 6)
        | (0b01 << 8)
        | (0b01 << 10)
        | (0b11 << 12)
        | (pa_range_encoding() << 16)
        | (1 << 31);
    VTCR_EL2.set(vtcr);
    // FP/SIMD trapped until a partition first uses it (`vcpu_state::take_fp`).
    trap_fp(true);
    // CNTHCTL_EL2 (D24.2.27): EL1 may read the physical counter (EL1PCTEN) but not program
    // the EL1 physical timer (EL1PCEN = 0); the virtual timer is the partition's own.
    CNTHCTL_EL2.set(0b01);
    CNTVOFF_EL2.set(0);
    // The vCPU reports the real CPU model and affinity 0 (MPIDR bit 31 is RES1).
    let midr = MIDR_EL1.get();
    // SAFETY: VPIDR_EL2 (D24.2.201) only sets the MIDR value EL1 reads; aarch64-cpu lacks it.
    unsafe { core::arch::asm!("msr vpidr_el2, {}", in(reg) midr, options(nomem, nostack)) };
    VMPIDR_EL2.set(1 << 31);
    // MDCR_EL2 (D24.2.x): the performance monitors and the debug registers are shared by
    // every partition on the core, so EL1 and EL0 accesses to them trap (TPMCR, TPM, TDA,
    // TDOSA, TDRA) and the kernel stops the partition, as for any trap it does not serve.
    // HPMN keeps its reset value, the number of counters (PMCR_EL0.N).
    let pmcr: u64;
    // SAFETY: reading PMCR_EL0 at EL2 has no side effect.
    unsafe { core::arch::asm!("mrs {}, pmcr_el0", out(reg) pmcr, options(nomem, nostack)) };
    let counters = (pmcr >> 11) & 0x1F;
    MDCR_EL2.set(counters | (1 << 5) | (1 << 6) | (1 << 9) | (1 << 10) | (1 << 11));
    HCR_EL2.set(HCR_GUEST);
    barrier_isb();
}

/// Points stage 2 at a partition's tables (`VTTBR_EL2`, D24.2.205: BADDR and VMID).
#[inline]
pub fn load_stage2(root: u64, vmid: u16) {
    VTTBR_EL2.set(root | (u64::from(vmid) << 48));
    barrier_isb();
}

/// `ISB`.
#[inline]
pub fn barrier_isb() {
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Arms the EL2 physical timer (D24.x `CNTHP_TVAL_EL2`, `CNTHP_CTL_EL2`) to fire `ticks`
/// from now. It interrupts through the GIC as [`super::gic::HYP_TIMER`].
#[inline]
pub fn arm_hyp_timer(ticks: u64) {
    // SAFETY: writing the EL2 timer's countdown has no memory effect.
    unsafe { core::arch::asm!("msr cnthp_tval_el2, {}", in(reg) ticks, options(nomem, nostack)) };
    // ENABLE = 1, IMASK = 0.
    CNTHP_CTL_EL2.set(1);
    barrier_isb();
}

/// Stops the EL2 physical timer (`CNTHP_CTL_EL2.ENABLE` = 0): no tick on this core.
#[inline]
pub fn stop_hyp_timer() {
    CNTHP_CTL_EL2.set(0);
    barrier_isb();
}

/// `CNTPCT_EL0`: the system counter now.
#[inline]
pub fn counter() -> u64 {
    CNTPCT_EL0.get()
}

/// Waits for an interrupt with IRQs still masked at EL2: `WFI` wakes on a pending interrupt
/// whatever `PSTATE.I` says (D1.x "Wait for Interrupt"), and the caller then acknowledges it.
#[inline]
pub fn wait_for_interrupt() {
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::SY);
    aarch64_cpu::asm::wfi();
}

/// `CNTFRQ_EL0`: the system counter frequency.
#[inline]
pub fn timer_frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// How to power off, from the device tree (set once at boot; PSCI until then).
static POWER_OFF: spin::Mutex<PowerOff> = spin::Mutex::new(PowerOff::Psci);

/// Records how this machine powers off.
pub fn set_power_off(method: PowerOff) {
    *POWER_OFF.lock() = method;
}

/// Says how the kernel will power off (`method` is the device tree's; with none, PSCI is
/// tried anyway).
pub fn announce_power_off(method: PowerOff) {
    match method {
        PowerOff::Psci => log::info!("power-off: PSCI SYSTEM_OFF through SMC"),
        PowerOff::Bcm2835Watchdog { base } => log::info!(
            "power-off: PM watchdog at {:#x}, a reset flagged as a halt (the board stays off \
             until power-cycled)",
            base.raw()
        ),
        PowerOff::None => log::info!(
            "power-off: the device tree names neither PSCI nor a PM watchdog: PSCI \
             SYSTEM_OFF tried anyway"
        ),
    }
}

/// Powers the machine off: PSCI `SYSTEM_OFF` over SMC (firmware or QEMU's built-in PSCI at
/// EL3), or on a Raspberry Pi the power-management watchdog. Waits forever if that returns.
pub fn system_off() -> ! {
    let method = POWER_OFF.try_lock().map_or(PowerOff::Psci, |m| *m);
    match method {
        PowerOff::Psci => {
            let _ = smccc::psci::system_off::<smccc::Smc>();
        }
        PowerOff::Bcm2835Watchdog { base } => {
            // SAFETY: the device tree names this PM block; it lies in the EL2 map's device
            // range, and the machine ends here.
            unsafe { crate::drivers::bcm2835_watchdog::halt(base.raw()) };
        }
        PowerOff::None => {}
    }
    loop {
        aarch64_cpu::asm::wfe();
    }
}

/// `CPTR_EL2` (non-VHE, Arm ARM D24.2.37): RES1 bits 13:12 and 9:0, and TFP (bit 10) when
/// `trap`: then every FP/SIMD instruction and FPCR/FPSR access at EL1, EL0 and EL2 traps
/// to EL2 with ESR_EL2.EC = 0x07. The kernel is built without FP/SIMD, so only
/// `vcpu_state`'s save and restore touch those registers, after lifting the trap.
#[inline]
pub fn trap_fp(trap: bool) {
    CPTR_EL2.set(0x33FF | (u64::from(trap) << 10));
}
