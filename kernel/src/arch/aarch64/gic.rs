//! The physical interrupt controller as the kernel uses it: GICv3 (system-register CPU
//! interface) or GICv2 / GIC-400 (memory-mapped CPU interface), through the `arm-gic` crate.
//!
//! Physical IRQs are routed to EL2 (`HCR_EL2.IMO`) while partitions run; at EL2 itself they
//! stay masked, so the kernel takes them only through the lower-EL IRQ vector.
//! The kernel enables the EL2 physical timer (time slices) for itself and, on GICv3, the EL1
//! virtual timer for partitions: when a partition's virtual timer fires, the kernel only
//! drops the priority and injects the interrupt into that partition through a list register
//! with the hardware bit set, so the partition's own EOI deactivates the physical interrupt
//! with no kernel on the path (GICv3 architecture specification, 11.1 and 12.4 `ICH_LR<n>_EL2`).
//! On GICv3 the kernel runs with `ICC_CTLR_EL1.EOImode` = 1 for that reason: priority drop
//! (`ICC_EOIR1_EL1`) and deactivation (`ICC_DIR_EL1`) are separate.

use crate::boot_info::GicInfo;
use aarch64_cpu::registers::*;
use arm_gic::gicv2::GicV2;
use arm_gic::gicv3::{GicCpuInterface, GicV3};
use arm_gic::{IntId, InterruptGroup, UniqueMmioPointer};
use core::ptr::NonNull;

/// The EL2 physical timer's PPI (INTID 26; Arm BSA / the Generic Timer's fixed assignment).
pub const HYP_TIMER: IntId = IntId::ppi(10);

/// The EL1 virtual timer's PPI (INTID 27), injected into the partition whose timer it is.
pub const VTIMER: IntId = IntId::ppi(11);

/// Priority of kernel interrupts (lower is more urgent).
const KERNEL_PRIORITY: u8 = 0x80;
/// Priority of interrupts passed through to partitions.
const GUEST_PRIORITY: u8 = 0xA0;

/// Offset of the SGI/PPI frame from a redistributor's base (GICv3 12.10).
const GICR_SGI_FRAME: u64 = 0x1_0000;
/// GICR_ISACTIVER0 and GICR_ICACTIVER0 in the SGI frame (GICv3 12.11.x).
const GICR_ISACTIVER0: u64 = 0x0300;
const GICR_ICACTIVER0: u64 = 0x0380;

/// Where the boot core's redistributor SGI frame is, once a GICv3 is set up (0: none).
static GICR_SGI: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
/// Number of list registers (`ICH_VTR_EL2.ListRegs` + 1), once a GICv3 is set up.
static LIST_REGISTERS: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

enum Gic {
    /// The driver is held, unused for now, so that nothing else can alias the GICv3 frames;
    /// the CPU interface is reached through system registers.
    #[allow(dead_code)]
    V3(GicV3<'static>),
    V2(GicV2<'static>, InterruptGroup),
}

// SAFETY: the GIC register frames may be driven from any core; the mutex below serialises
// every use.
unsafe impl Send for Gic {}

static GIC: spin::Mutex<Option<Gic>> = spin::Mutex::new(None);

/// Which GIC was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// GICv3.
    V3,
    /// GICv2.
    V2,
}

/// Initialises the GIC described by the device tree and enables the hypervisor timer's
/// interrupt on this (the boot) core.
pub fn init(info: GicInfo) -> Result<Version, &'static str> {
    let (gic, version) = match info {
        GicInfo::V3 { gicd, gicr } => {
            let gicr_base = gicr.raw();
            // ICC_SRE_EL2: system-register access for EL2 and EL1 (GICv3 §12.1.x).
            GicCpuInterface::enable_system_register_el2(true);
            let gicd = NonNull::new(gicd.raw() as *mut _).ok_or("GICD at address 0")?;
            let gicr = NonNull::new(gicr.raw() as *mut _).ok_or("GICR at address 0")?;
            // SAFETY: the device tree names these frames; they are identity mapped as Device
            // memory at EL2, and this is the only driver instance.
            let mut gic = unsafe { GicV3::new(UniqueMmioPointer::new(gicd), gicr, 1) }
                .map_err(|_| "GICv3 redistributor not found")?;
            gic.setup(0);
            gic.set_interrupt_priority(HYP_TIMER, Some(0), KERNEL_PRIORITY)
                .map_err(|_| "cannot set the timer's priority")?;
            gic.enable_interrupt(HYP_TIMER, Some(0), true)
                .map_err(|_| "cannot enable the timer interrupt")?;
            gic.set_interrupt_priority(VTIMER, Some(0), GUEST_PRIORITY)
                .map_err(|_| "cannot set the virtual timer's priority")?;
            gic.enable_interrupt(VTIMER, Some(0), true)
                .map_err(|_| "cannot enable the virtual timer interrupt")?;
            GicCpuInterface::set_priority_mask(0xFF);
            // SAFETY: ICC_CTLR_EL1.EOImode (bit 1) = 1: EOI only drops priority; the kernel
            // deactivates its own interrupts with ICC_DIR_EL1 (GICv3 12.2.6). No memory effect.
            unsafe {
                core::arch::asm!("msr icc_ctlr_el1, {}", in(reg) 0b10u64, options(nomem, nostack))
            };
            // ICH_HCR_EL2.En: the virtual CPU interface is on (GICv3 12.4.x).
            ICH_HCR_EL2.set(1);
            let lrs = (ICH_VTR_EL2.get() & 0x1F) as usize + 1;
            LIST_REGISTERS.store(lrs.min(16), core::sync::atomic::Ordering::Relaxed);
            GICR_SGI.store(
                gicr_base + GICR_SGI_FRAME,
                core::sync::atomic::Ordering::Relaxed,
            );
            (Gic::V3(gic), Version::V3)
        }
        GicInfo::V2 { gicd, gicc, .. } => {
            // SAFETY: as above, for the GICv2 distributor and CPU interface frames.
            let mut gic = unsafe { GicV2::new(gicd.raw() as *mut _, gicc.raw() as *mut _) };
            gic.setup();
            let group = if gic.typer().has_security_extension() {
                InterruptGroup::Group1
            } else {
                InterruptGroup::Group0
            };
            gic.set_interrupt_priority(HYP_TIMER, KERNEL_PRIORITY);
            gic.enable_interrupt(HYP_TIMER, true)
                .map_err(|_| "cannot enable the timer interrupt")?;
            (Gic::V2(gic, group), Version::V2)
        }
    };
    *GIC.lock() = Some(gic);
    Ok(version)
}

/// Acknowledges the highest-priority pending interrupt, if any.
pub fn acknowledge() -> Option<IntId> {
    match GIC.lock().as_mut()? {
        Gic::V3(_) => GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1),
        Gic::V2(gic, group) => gic.get_and_acknowledge_interrupt(*group),
    }
}

/// Ends (priority drop and deactivation) an interrupt the kernel handled itself.
pub fn end(intid: IntId) {
    match GIC.lock().as_mut() {
        Some(Gic::V3(_)) => {
            GicCpuInterface::end_interrupt(intid, InterruptGroup::Group1);
            let raw = u64::from(intid.raw_value());
            // SAFETY: ICC_DIR_EL1 deactivates the interrupt (EOImode = 1); no memory effect.
            unsafe {
                core::arch::asm!("msr icc_dir_el1, {}", in(reg) raw, options(nomem, nostack))
            };
        }
        Some(Gic::V2(gic, group)) => gic.end_interrupt(intid, *group),
        None => {}
    }
}

/// Passes a physical interrupt to the running partition: priority drop only, then a list
/// register with the hardware bit, so the partition's EOI deactivates it. Returns false if no
/// list register was free (the interrupt stays active and is retried when one frees up).
pub fn pass_through(intid: IntId) -> bool {
    GicCpuInterface::end_interrupt(intid, InterruptGroup::Group1);
    let id = u64::from(intid.raw_value());
    // ICH_LR<n>_EL2 (GICv3 12.4.x): State[63:62] = 0b01 pending, HW[61], Group[60] = 1,
    // Priority[55:48], pINTID[41:32], vINTID[31:0].
    let lr =
        (0b01 << 62) | (1 << 61) | (1 << 60) | (u64::from(GUEST_PRIORITY) << 48) | (id << 32) | id;
    for n in 0..LIST_REGISTERS.load(core::sync::atomic::Ordering::Relaxed) {
        let current = read_lr(n);
        if current >> 62 != 0 && current & 0xFFFF_FFFF == id {
            return true; // already pending or active in the partition
        }
    }
    for n in 0..LIST_REGISTERS.load(core::sync::atomic::Ordering::Relaxed) {
        if read_lr(n) >> 62 == 0 {
            write_lr(n, lr);
            return true;
        }
    }
    false
}

/// The virtual CPU interface state of one vCPU, saved while it does not run.
#[derive(Clone, Copy, Debug)]
pub struct VcpuGic {
    vmcr: u64,
    ap1r0: u64,
    lrs: [u64; 16],
    /// The virtual timer's physical PPI was active (in service by this partition).
    vtimer_active: bool,
}

impl VcpuGic {
    /// A vCPU that has not run: interface disabled, nothing pending.
    pub const EMPTY: Self = Self {
        vmcr: 0,
        ap1r0: 0,
        lrs: [0; 16],
        vtimer_active: false,
    };

    /// Saves the live state into `self` and leaves the interface empty for the next vCPU.
    pub fn save(&mut self) {
        let lrs = LIST_REGISTERS.load(core::sync::atomic::Ordering::Relaxed);
        if lrs == 0 {
            return;
        }
        self.vmcr = ICH_VMCR_EL2.get();
        self.ap1r0 = ICH_AP1R0_EL2.get();
        for n in 0..lrs {
            self.lrs[n] = read_lr(n);
            write_lr(n, 0);
        }
        ICH_AP1R0_EL2.set(0);
        // The timer PPI's active state belongs to this vCPU: take it along (KVM does the
        // same), or the next partition's timer could not fire until this one's EOI.
        let bit = 1u32 << VTIMER.raw_value();
        self.vtimer_active = sgi_frame_read(GICR_ISACTIVER0) & bit != 0;
        if self.vtimer_active {
            sgi_frame_write(GICR_ICACTIVER0, bit);
        }
    }

    /// Loads `self` into the virtual CPU interface.
    pub fn restore(&self) {
        let lrs = LIST_REGISTERS.load(core::sync::atomic::Ordering::Relaxed);
        if lrs == 0 {
            return;
        }
        if self.vtimer_active {
            sgi_frame_write(GICR_ISACTIVER0, 1u32 << VTIMER.raw_value());
        }
        ICH_VMCR_EL2.set(self.vmcr);
        ICH_AP1R0_EL2.set(self.ap1r0);
        for n in 0..lrs {
            write_lr(n, self.lrs[n]);
        }
    }
}

/// Reads a redistributor SGI-frame register of the boot core.
fn sgi_frame_read(offset: u64) -> u32 {
    let base = GICR_SGI.load(core::sync::atomic::Ordering::Relaxed);
    // SAFETY: `base` is the boot core's redistributor SGI frame from the device tree,
    // identity mapped as Device memory; the register is a 32-bit read with no side effect.
    unsafe { core::ptr::read_volatile((base + offset) as *const u32) }
}

/// Writes a redistributor SGI-frame register of the boot core.
fn sgi_frame_write(offset: u64, value: u32) {
    let base = GICR_SGI.load(core::sync::atomic::Ordering::Relaxed);
    // SAFETY: as for `sgi_frame_read`; set/clear-active registers only change the state of
    // the interrupts whose bits are written.
    unsafe { core::ptr::write_volatile((base + offset) as *mut u32, value) }
}

macro_rules! list_registers {
    ($($n:literal => $reg:ident),* $(,)?) => {
        fn read_lr(n: usize) -> u64 {
            match n { $($n => $reg.get(),)* _ => 0 }
        }
        fn write_lr(n: usize, value: u64) {
            match n { $($n => $reg.set(value),)* _ => {} }
        }
    };
}

list_registers! {
    0 => ICH_LR0_EL2, 1 => ICH_LR1_EL2, 2 => ICH_LR2_EL2, 3 => ICH_LR3_EL2,
    4 => ICH_LR4_EL2, 5 => ICH_LR5_EL2, 6 => ICH_LR6_EL2, 7 => ICH_LR7_EL2,
    8 => ICH_LR8_EL2, 9 => ICH_LR9_EL2, 10 => ICH_LR10_EL2, 11 => ICH_LR11_EL2,
    12 => ICH_LR12_EL2, 13 => ICH_LR13_EL2, 14 => ICH_LR14_EL2, 15 => ICH_LR15_EL2,
}
