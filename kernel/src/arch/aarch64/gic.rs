//! The physical interrupt controller as the kernel uses it: GICv3 (system-register CPU
//! interface) or GICv2 / GIC-400 (memory-mapped CPU interface), through the `arm-gic` crate.
//!
//! Physical IRQs are routed to EL2 (`HCR_EL2.IMO`) while partitions run; at EL2 itself they
//! stay masked, so the kernel takes them only through the lower-EL IRQ vector.
//! Today the kernel enables one interrupt of its own: the EL2 physical timer, which drives
//! time slices.

use crate::boot_info::GicInfo;
use arm_gic::gicv2::GicV2;
use arm_gic::gicv3::{GicCpuInterface, GicV3};
use arm_gic::{IntId, InterruptGroup, UniqueMmioPointer};
use core::ptr::NonNull;

/// The EL2 physical timer's PPI (INTID 26; Arm BSA / the Generic Timer's fixed assignment).
pub const HYP_TIMER: IntId = IntId::ppi(10);

/// Priority of kernel interrupts (lower is more urgent).
const KERNEL_PRIORITY: u8 = 0x80;

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
            GicCpuInterface::set_priority_mask(0xFF);
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

/// Ends (priority drop and deactivation) an acknowledged interrupt.
pub fn end(intid: IntId) {
    match GIC.lock().as_mut() {
        Some(Gic::V3(_)) => GicCpuInterface::end_interrupt(intid, InterruptGroup::Group1),
        Some(Gic::V2(gic, group)) => gic.end_interrupt(intid, *group),
        None => {}
    }
}
