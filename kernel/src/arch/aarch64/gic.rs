//! The physical interrupt controller as the kernel uses it: GICv3 (system-register CPU
//! interface, `ICH_*_EL2` virtualization registers) or GICv2 / GIC-400 (memory-mapped `GICC`,
//! `GICH` and `GICV` frames), set up through the `arm-gic` crate.
//!
//! Physical IRQs are routed to EL2 (`HCR_EL2.IMO`) while partitions run; at EL2 itself they
//! stay masked, so the kernel takes them only through the lower-EL IRQ vector (or after `WFI`
//! when idle). The kernel keeps three interrupts for itself: the EL2 physical timer (time
//! slices), the virtual interface's maintenance interrupt (list registers ran low) and nothing
//! else. Every other interrupt belongs to a partition: the kernel acknowledges it, drops the
//! priority and writes it into a list register with the hardware bit, so the partition's own
//! EOI deactivates the physical interrupt with no kernel on the path (GICv3 architecture
//! specification IHI 0069, 11.1 and 12.4 `ICH_LR<n>_EL2`; GICv2 IHI 0048, 5.3 `GICH_LR<n>`).
//! For that the kernel runs with split priority drop and deactivation (`EOImode` = 1): the
//! kernel deactivates its own interrupts with `ICC_DIR_EL1` / `GICC_DIR`.
//!
//! The distributor registers this module touches directly (pending, active, routing) are the
//! same offsets on both versions (IHI 0069 12.9, IHI 0048 4.3); `arm-gic` has no calls for them.

use super::list_register as lr;
use crate::boot_info::GicInfo;
use crate::cpus::{CoreId, MAX_CORES};
use crate::irq::VirtualIrq;
use crate::kernel::{CpuInterface, GicFacts, SpiOp};
use aarch64_cpu::registers::*;
use arm_gic::gicv2::GicV2;
use arm_gic::gicv3::{GicCpuInterface, GicV3};
use arm_gic::{IntId, InterruptGroup, UniqueMmioPointer};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering::Relaxed};
use exo_abi::{Ipa, PhysAddr};

/// The EL2 physical timer's PPI (INTID 26; Arm BSA / the Generic Timer's fixed assignment).
pub const HYP_TIMER: IntId = IntId::ppi(10);
/// The EL1 virtual timer's PPI (INTID 27), injected into the partition whose timer it is.
pub const VTIMER: IntId = IntId::ppi(11);
/// The virtual interface's maintenance interrupt (PPI 9, INTID 25; Arm BSA).
pub const MAINTENANCE: IntId = IntId::ppi(9);

/// Priority of kernel interrupts (lower is more urgent).
const KERNEL_PRIORITY: u8 = 0x80;
/// Physical priority of partitions' interrupts: below the kernel's, whatever virtual
/// priority a partition chooses.
const GUEST_PRIORITY: u8 = 0xA0;

/// Distributor registers (IHI 0069 12.9 / IHI 0048 4.3): byte offsets of the first of each
/// bank of 32-interrupt registers.
mod gicd {
    pub const TYPER: usize = 0x004;
    pub const IIDR: usize = 0x008;
    pub const ICENABLER: usize = 0x180;
    pub const ISPENDR: usize = 0x200;
    pub const ICPENDR: usize = 0x280;
    pub const ISACTIVER: usize = 0x300;
    pub const ICACTIVER: usize = 0x380;
    pub const ITARGETSR: usize = 0x800;
    pub const IROUTER: usize = 0x6000;
}

/// Offset of the SGI/PPI frame from a redistributor's base (GICv3 12.10).
const GICR_SGI_FRAME: usize = 0x1_0000;

/// GICv2 CPU interface registers (IHI 0048 4.4).
mod gicc {
    pub const CTLR: usize = 0x000;
    /// `GICC_CTLR.EOImode` (bit 9 without Security Extensions; EOImodeNS in the Non-secure
    /// view with them).
    pub const CTLR_EOI_MODE: u32 = 1 << 9;
    pub const DIR: usize = 0x1000;
}

/// GICv2 virtual interface control registers (IHI 0048 5.3).
mod gich {
    pub const HCR: usize = 0x000;
    pub const VTR: usize = 0x004;
    pub const VMCR: usize = 0x008;
    pub const ELSR0: usize = 0x030;
    pub const APR: usize = 0x0F0;
    pub const LR: usize = 0x100;
}

/// `ICH_HCR_EL2` / `GICH_HCR` bits (same positions): En, UIE.
const HCR_EN: u64 = 1 << 0;
const HCR_UIE: u64 = 1 << 1;

/// A 4 KiB-aligned register frame, identity mapped as Device memory at EL2.
#[derive(Clone, Copy)]
struct Frame(usize);

impl Frame {
    fn read(self, offset: usize) -> u32 {
        // SAFETY: the frame's base comes from the device tree and lies in the EL2 identity
        // map's device range; `offset` is a register offset of that frame (a constant above,
        // or a bank index below 32 for 1020 INTIDs); 32-bit reads of GIC registers have no
        // side effects other than the acknowledge registers, which are not read here.
        unsafe { core::ptr::read_volatile((self.0 + offset) as *const u32) }
    }

    fn write(self, offset: usize, value: u32) {
        // SAFETY: as for `read`; writes change only the GIC state the register describes.
        unsafe { core::ptr::write_volatile((self.0 + offset) as *mut u32, value) }
    }

    fn write64(self, offset: usize, value: u64) {
        // SAFETY: as for `read`; `GICD_IROUTER<n>` is a 64-bit register (IHI 0069 12.9.22).
        unsafe { core::ptr::write_volatile((self.0 + offset) as *mut u64, value) }
    }

    /// Writes the bit of `intid` in a bank of set/clear registers starting at `bank`.
    fn write_bit(self, bank: usize, intid: u32) {
        self.write(bank + 4 * (intid as usize / 32), 1 << (intid % 32));
    }

    /// Reads the bit of `intid` in a bank starting at `bank`.
    fn read_bit(self, bank: usize, intid: u32) -> bool {
        self.read(bank + 4 * (intid as usize / 32)) & (1 << (intid % 32)) != 0
    }
}

enum Gic {
    /// The driver is held so that nothing else can alias the GICv3 frames.
    V3 { gic: GicV3<'static>, gicd: Frame },
    V2 {
        gic: GicV2<'static>,
        group: InterruptGroup,
        gicd: Frame,
        gicc: Frame,
        /// Virtual interface control, if the GIC has virtualization extensions.
        gich: Option<Frame>,
    },
}

// SAFETY: the GIC register frames may be driven from any core; the mutex below serialises
// every use.
unsafe impl Send for Gic {}

static GIC: spin::Mutex<Option<Gic>> = spin::Mutex::new(None);
/// GICv3: how many active-priority registers of each group the virtual interface has.
static APRS: AtomicUsize = AtomicUsize::new(0);
/// What the kernel keeps of one core's part of the GIC. Each core writes only its own
/// (through [`here`]), from its trap path. (Whether its `UIE` is set the portable kernel
/// keeps, per core: it calls [`notify_on_underflow`] only to change it.)
struct CoreGic {
    /// Whether the virtual timer's physical PPI may be active on it: only the kernel makes
    /// it so, by acknowledging it or by restoring a vCPU's saved active state, and this is
    /// set at both; it is cleared when a world switch takes the active state along
    /// (reading it only while set). True at boot, so the first switch reads it.
    vtimer_may_be_active: AtomicBool,
    /// GICv3: its redistributor's SGI/PPI frame (0 until its part is set up).
    sgi: AtomicUsize,
    /// GICv2: its CPU interface's bit in `GICD_ITARGETSR<n>` (0 until set up).
    target: AtomicU8,
}

static CORES: [CoreGic; MAX_CORES] = [const {
    CoreGic {
        vtimer_may_be_active: AtomicBool::new(true),
        sgi: AtomicUsize::new(0),
        target: AtomicU8::new(0),
    }
}; MAX_CORES];

/// This core's part of the GIC.
#[inline]
fn here() -> &'static CoreGic {
    &CORES[super::cores::this_core().index()]
}

/// This core's redistributor SGI/PPI frame (GICv3).
fn sgi_frame() -> Frame {
    Frame(here().sgi.load(Relaxed))
}
/// Whether the virtual CPU interface is GICv3's system registers (`ICH_*_EL2`, per core,
/// touched only by the trap path under the kernel lock): then a world switch with the
/// timer PPI inactive needs no access through the `GIC` driver and not its lock.
static V3_INTERFACE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
/// Number of list registers (0: no virtual interface).
static LIST_REGISTERS: AtomicUsize = AtomicUsize::new(0);
/// Records the distributor's INTIDs and says what it is, for a look at a new board's
/// console. GICD_IIDR (IHI 0048B 4.3.3, IHI 0069 12.9.14): ProductID in bits [31:24],
/// Implementer (JEP106, 0x43B for Arm) in [11:0]; the GIC-400 reads 0x0200143B (GIC-400
/// TRM, "Distributor register summary").
fn found_distributor(gicd: Frame) {
    let lines = lines(gicd);
    LINES.store(lines, Relaxed);
    let iidr = gicd.read(gicd::IIDR);
    let product = if iidr & 0xFF00_0FFF == 0x0200_043B {
        "Arm GIC-400"
    } else {
        "not a GIC-400"
    };
    log::info!(
        "GIC distributor at {:#x}: GICD_IIDR {iidr:#010x} ({product}), {lines} INTIDs, {} \
         list registers",
        gicd.0,
        LIST_REGISTERS.load(Relaxed)
    );
}

/// INTIDs the distributor implements.
static LINES: AtomicUsize = AtomicUsize::new(0);
/// GICv3: the redistributors' base (for the other cores to find theirs).
static GICR_BASE: AtomicU64 = AtomicU64::new(0);
/// GICv2: the guest's CPU interface IPA (0 on GICv3) and the hardware `GICV` frame.
static GUEST_GICC: AtomicU64 = AtomicU64::new(0);
static GICV: AtomicU64 = AtomicU64::new(0);

/// Which GIC was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// GICv3.
    V3,
    /// GICv2.
    V2,
}

/// Initialises the GIC described by the device tree, once, on the boot core: the distributor
/// and every redistributor's defaults, then this core's part ([`init_this_core`]'s).
pub fn init(info: GicInfo) -> Result<Version, &'static str> {
    let (gic, version) = match info {
        GicInfo::V3 { gicd, gicr } => init_v3(gicd, gicr)?,
        GicInfo::V2 {
            gicd,
            gicc,
            gich,
            gicv,
        } => init_v2(gicd, gicc, gich, gicv)?,
    };
    *GIC.lock() = Some(gic);
    Ok(version)
}

/// The GICv3 distributor and redistributors, then the boot core's CPU interface.
fn init_v3(gicd: PhysAddr, gicr: PhysAddr) -> Result<(Gic, Version), &'static str> {
    let (gicd_base, gicr_base) = (gicd.raw() as usize, gicr.raw() as usize);
    // ICC_SRE_EL2: system-register access for EL2 and EL1 (GICv3 12.2.x).
    GicCpuInterface::enable_system_register_el2(true);
    let gicd = NonNull::new(gicd.raw() as *mut _).ok_or("GICD at address 0")?;
    let gicr = NonNull::new(gicr_base as *mut _).ok_or("GICR at address 0")?;
    GICR_BASE.store(gicr_base as u64, Relaxed);
    let redistributors = Redistributors::walk(gicr_base);
    let (index, frame) = redistributors
        .this_core()
        .ok_or("no GICv3 redistributor has this core's affinity")?;
    // SAFETY: the device tree names these frames; they are identity mapped as Device memory
    // at EL2, and this is the only driver instance; `count` redistributors were found there.
    let mut gic = unsafe { GicV3::new(UniqueMmioPointer::new(gicd), gicr, redistributors.count) }
        .map_err(|_| "GICv3 redistributor not found")?;
    // The distributor, every redistributor's defaults, and this core's redistributor awake.
    gic.setup(index);
    this_core_v3(&mut gic, index)?;
    let lrs = (ICH_VTR_EL2.get() & 0x1F) as usize + 1;
    LIST_REGISTERS.store(lrs.min(16), Relaxed);
    V3_INTERFACE.store(true, Relaxed);
    // 1, 2 or 4 for 5, 6 or 7 preemption bits (ICH_VTR_EL2.PREbits + 1).
    let preemption_bits = ((ICH_VTR_EL2.get() >> 26) & 0b111) as usize + 1;
    APRS.store(1 << preemption_bits.clamp(5, 7).saturating_sub(5), Relaxed);
    clear_v3_virtual_interface();
    let gicd = Frame(gicd_base);
    found_distributor(gicd);
    here().sgi.store(frame.0 + GICR_SGI_FRAME, Relaxed);
    Ok((Gic::V3 { gic, gicd }, Version::V3))
}

/// This core's GICv3 interrupts and CPU interface (redistributor `index`): the kernel's
/// PPIs, the priority mask, `EOImode` and the virtual interface on (`ICH_HCR_EL2.En`).
fn this_core_v3(gic: &mut GicV3<'static>, index: usize) -> Result<(), &'static str> {
    for intid in [HYP_TIMER, MAINTENANCE, VTIMER] {
        gic.set_interrupt_priority(intid, Some(index), ppi_priority(intid))
            .map_err(|_| "cannot set a PPI's priority")?;
        gic.enable_interrupt(intid, Some(index), true)
            .map_err(|_| "cannot enable a PPI")?;
    }
    GicCpuInterface::set_priority_mask(0xFF);
    // SAFETY: ICC_CTLR_EL1.EOImode (bit 1) = 1: EOI only drops priority; the kernel
    // deactivates its own interrupts with ICC_DIR_EL1 (GICv3 12.2.6). No memory effect.
    unsafe { core::arch::asm!("msr icc_ctlr_el1, {}", in(reg) 0b10u64, options(nomem, nostack)) };
    ICH_HCR_EL2.set(HCR_EN);
    Ok(())
}

/// List and active-priority registers reset to UNKNOWN values: start from empty ones (a
/// restore writes only what its vCPU had in use), only the implemented ones (the others
/// are UNDEFINED to access; IHI 0069 12.4).
fn clear_v3_virtual_interface() {
    for n in 0..LIST_REGISTERS.load(Relaxed) {
        write_lr(n, 0);
    }
    for base in [0, 4] {
        for n in base..base + active_priority_registers() {
            write_apr(n, 0);
        }
    }
}

/// The physical priority of a kernel PPI: the virtual timer's is a partition's.
fn ppi_priority(intid: IntId) -> u8 {
    if intid == VTIMER {
        GUEST_PRIORITY
    } else {
        KERNEL_PRIORITY
    }
}

/// The GICv2 distributor, then the boot core's CPU interface and virtual interface control.
fn init_v2(
    gicd: PhysAddr,
    gicc: PhysAddr,
    gich: Option<PhysAddr>,
    gicv: Option<PhysAddr>,
) -> Result<(Gic, Version), &'static str> {
    // SAFETY: as above, for the GICv2 distributor and CPU interface frames.
    let mut gic = unsafe { GicV2::new(gicd.raw() as *mut _, gicc.raw() as *mut _) };
    let group = if gic.typer().has_security_extension() {
        InterruptGroup::Group1
    } else {
        InterruptGroup::Group0
    };
    let gicc_frame = Frame(gicc.raw() as usize);
    let gich = match (gich, gicv) {
        (Some(gich), Some(gicv)) => {
            let gich = Frame(gich.raw() as usize);
            let lrs = (gich.read(gich::VTR) & 0x3F) as usize + 1;
            LIST_REGISTERS.store(lrs.min(16), Relaxed);
            GUEST_GICC.store(gicc.raw(), Relaxed);
            GICV.store(gicv.raw(), Relaxed);
            Some(gich)
        }
        _ => None,
    };
    let gicd = Frame(gicd.raw() as usize);
    this_core_v2(&mut gic, gicd, gicc_frame, gich)?;
    found_distributor(gicd);
    let gic = Gic::V2 {
        gic,
        group,
        gicd,
        gicc: gicc_frame,
        gich,
    };
    Ok((gic, Version::V2))
}

/// This core's GICv2 state, all banked per core at the common addresses (IHI 0048 4.3 and
/// 5.3): the SGI/PPI groups (`GICD_IGROUPR0`), the kernel's PPIs' priorities and enables
/// (`GICD_IPRIORITYR0..7`, `GICD_ISENABLER0`), the CPU interface (`GICC_CTLR` with
/// `EOImode`, `GICC_PMR`) and, with virtualization extensions, `GICH_HCR.En` and empty list
/// registers. `GicV2::setup` also rewrites the (global) SPI groups, to the same values.
fn this_core_v2(
    gic: &mut GicV2<'static>,
    gicd: Frame,
    gicc: Frame,
    gich: Option<Frame>,
) -> Result<(), &'static str> {
    gic.setup();
    // GICD_ITARGETSR0..7 are banked: each core reads its own CPU interface's bit in every
    // byte (IHI 0048 4.3.12).
    here()
        .target
        .store(gicd.read(gicd::ITARGETSR) as u8, Relaxed);
    for intid in [HYP_TIMER, MAINTENANCE, VTIMER] {
        gic.set_interrupt_priority(intid, ppi_priority(intid));
        gic.enable_interrupt(intid, true)
            .map_err(|_| "cannot enable a PPI")?;
    }
    gicc.write(gicc::CTLR, gicc.read(gicc::CTLR) | gicc::CTLR_EOI_MODE);
    if let Some(gich) = gich {
        gich.write(gich::HCR, HCR_EN as u32);
        for n in 0..LIST_REGISTERS.load(Relaxed) {
            gich.write(gich::LR + 4 * n, 0);
        }
    }
    Ok(())
}

/// Sets up this core's part of the GIC, on a secondary core after [`init`] ran on the boot
/// core: GICv3 system-register access (`ICC_SRE_EL2`), this core's redistributor awake
/// (`GICR_WAKER`; IHI 0069, "GICR_WAKER, Redistributor Wake Register") and its PPIs, the
/// CPU interface and the virtual interface; or the GICv2 banked equivalents. Interrupts
/// stay masked at EL2 (`PSTATE.I`).
pub fn init_this_core() -> Result<(), &'static str> {
    let mut guard = GIC.lock();
    match guard.as_mut().ok_or("no interrupt controller")? {
        Gic::V3 { gic, .. } => {
            GicCpuInterface::enable_system_register_el2(true);
            let gicr = GICR_BASE.load(Relaxed) as usize;
            let (index, frame) = Redistributors::walk(gicr)
                .this_core()
                .ok_or("no GICv3 redistributor has this core's affinity")?;
            here().sgi.store(frame.0 + GICR_SGI_FRAME, Relaxed);
            // ICC_SRE_EL1, GICR_WAKER.ProcessorSleep = 0, ICC_CTLR_EL1 defaults.
            gic.init_cpu(index);
            this_core_v3(gic, index)?;
            GicCpuInterface::enable_group1(true);
            clear_v3_virtual_interface();
        }
        Gic::V2 {
            gic,
            gicd,
            gicc,
            gich,
            ..
        } => this_core_v2(gic, *gicd, *gicc, *gich)?,
    }
    Ok(())
}

/// The GICv3 redistributors: contiguous frames from the `GICR` base, two 64 KiB frames each
/// (four with `GICR_TYPER.VLPIS`, GICv4), the last one marked by `GICR_TYPER.Last`
/// (IHI 0069, "GICR_TYPER, Redistributor Type Register"). At most
/// [`crate::cpus::MAX_CORES`] are looked at.
struct Redistributors {
    base: usize,
    stride: usize,
    count: usize,
}

/// `GICR_TYPER`'s offset in a redistributor's first frame, and its bits: VLPIS, Last, and
/// the affinity in bits 63:32 (Aff3.Aff2.Aff1.Aff0).
const GICR_TYPER: usize = 0x8;
const GICR_TYPER_VLPIS: u32 = 1 << 1;
const GICR_TYPER_LAST: u32 = 1 << 4;

impl Redistributors {
    fn walk(base: usize) -> Self {
        let typer = Frame(base).read(GICR_TYPER);
        let stride = if typer & GICR_TYPER_VLPIS != 0 {
            0x4_0000
        } else {
            0x2_0000
        };
        let mut count = 0;
        while count < crate::cpus::MAX_CORES {
            count += 1;
            if Frame(base + (count - 1) * stride).read(GICR_TYPER) & GICR_TYPER_LAST != 0 {
                break;
            }
        }
        Self {
            base,
            stride,
            count,
        }
    }

    /// The index and frame of this core's redistributor: the one whose `GICR_TYPER`
    /// affinity is this core's `MPIDR_EL1` affinity.
    fn this_core(&self) -> Option<(usize, Frame)> {
        let mpidr = MPIDR_EL1.get();
        let affinity = (mpidr & 0xFF_FFFF) | ((mpidr >> 8) & 0xFF00_0000);
        (0..self.count)
            .map(|index| (index, Frame(self.base + index * self.stride)))
            .find(|(_, frame)| u64::from(frame.read(GICR_TYPER + 4)) == affinity)
    }
}

/// INTIDs the distributor implements: `32 * (GICD_TYPER.ITLinesNumber + 1)`, at most 1020.
fn lines(gicd: Frame) -> usize {
    (32 * ((gicd.read(gicd::TYPER) & 0x1F) as usize + 1)).min(1020)
}

/// A GIC frame a Linux partition reaches through traps (see `linux_trap`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrappedFrame {
    /// The distributor at this physical base (seen at the same IPA), `size` bytes.
    Distributor {
        /// Physical base.
        base: usize,
        /// 64 KiB on GICv3, 4 KiB on GICv2.
        size: u64,
    },
    /// GICv3: the first redistributor (seen at its physical base), 128 KiB.
    Redistributor {
        /// Physical base.
        base: u64,
    },
}

/// The GIC frame `ipa` lies in, with the offset in it, if it is one a Linux partition's
/// device tree names: the distributor, and on GICv3 one redistributor.
pub fn trapped_frame(ipa: u64) -> Option<(TrappedFrame, u64)> {
    let (gicd, size) = match GIC.lock().as_ref()? {
        Gic::V3 { gicd, .. } => (gicd.0, 0x1_0000),
        Gic::V2 { gicd, .. } => (gicd.0, 0x1000),
    };
    if let Some(offset) = ipa.checked_sub(gicd as u64).filter(|&o| o < size) {
        return Some((TrappedFrame::Distributor { base: gicd, size }, offset));
    }
    let gicr = GICR_BASE.load(Relaxed);
    let redistributor = crate::linux::REDISTRIBUTOR_SIZE;
    ipa.checked_sub(gicr)
        .filter(|&offset| gicr != 0 && offset < redistributor)
        .map(|offset| (TrappedFrame::Redistributor { base: gicr }, offset))
}

/// What partitions see of the GIC.
pub fn facts() -> GicFacts {
    let lines = LINES.load(Relaxed) as u32;
    let interface = match (&*GIC.lock(), LIST_REGISTERS.load(Relaxed)) {
        (_, 0) | (None, _) => CpuInterface::None,
        (Some(Gic::V3 { .. }), _) => CpuInterface::SystemRegisters,
        (Some(Gic::V2 { .. }), _) => CpuInterface::Mapped {
            ipa: Ipa::new(GUEST_GICC.load(Relaxed)),
            phys: PhysAddr::new(GICV.load(Relaxed)),
            // GICV_CTLR..GICV_EOIR in the first page, GICV_DIR in the second (IHI 0048 5.4).
            pages: 2,
        },
    };
    GicFacts { interface, lines }
}

/// Acknowledges the highest-priority pending interrupt, if any.
pub fn acknowledge() -> Option<IntId> {
    let intid = match GIC.lock().as_mut()? {
        Gic::V3 { .. } => GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1),
        Gic::V2 { gic, group, .. } => gic.get_and_acknowledge_interrupt(*group),
    };
    if intid == Some(VTIMER) {
        here().vtimer_may_be_active.store(true, Relaxed);
    }
    intid
}

/// Drops the running priority of an acknowledged interrupt without deactivating it: it is
/// going to a partition, whose EOI deactivates it through the list register's hardware bit.
pub fn drop_priority(intid: IntId) {
    match GIC.lock().as_mut() {
        Some(Gic::V3 { .. }) => GicCpuInterface::end_interrupt(intid, InterruptGroup::Group1),
        Some(Gic::V2 { gic, group, .. }) => gic.end_interrupt(intid, *group),
        None => {}
    }
}

/// Ends (priority drop and deactivation) an interrupt the kernel handled itself.
pub fn end(intid: IntId) {
    drop_priority(intid);
    deactivate(intid.raw_value());
}

/// Deactivates an interrupt whose priority was dropped (`ICC_DIR_EL1` / `GICC_DIR`).
fn deactivate(intid: u32) {
    match GIC.lock().as_ref() {
        Some(Gic::V3 { .. }) => {
            // SAFETY: ICC_DIR_EL1 deactivates the interrupt (EOImode = 1); no memory effect.
            unsafe {
                core::arch::asm!("msr icc_dir_el1, {}", in(reg) u64::from(intid), options(nomem, nostack))
            };
        }
        Some(Gic::V2 { gicc, .. }) => gicc.write(gicc::DIR, intid),
        None => {}
    }
}

/// Drives SPI `intid` (or, for [`SpiOp::Release`], also a PPI) in the distributor.
pub fn spi(intid: u32, op: SpiOp) {
    let mut guard = GIC.lock();
    let Some(gic) = guard.as_mut() else { return };
    let id = IntId::spi(intid.saturating_sub(32));
    let spi = intid >= 32;
    match (gic, op) {
        (Gic::V3 { gic, gicd, .. }, SpiOp::Enable) if spi => {
            let _ = gic.set_interrupt_priority(id, None, GUEST_PRIORITY);
            // To the core of the owner enabling it: partitions run on one core.
            route_v3(*gicd, intid, super::cores::this_core());
            let _ = gic.enable_interrupt(id, None, true);
        }
        (
            Gic::V2 {
                gic, group, gicd, ..
            },
            SpiOp::Enable,
        ) if spi => {
            gic.set_interrupt_priority(id, GUEST_PRIORITY);
            gic.set_group(id, *group);
            route_v2(*gicd, intid, super::cores::this_core());
            let _ = gic.enable_interrupt(id, true);
        }
        (Gic::V3 { gicd, .. } | Gic::V2 { gicd, .. }, SpiOp::Disable) if spi => {
            gicd.write_bit(gicd::ICENABLER, intid);
        }
        (Gic::V3 { gicd, .. }, SpiOp::Target(core)) if spi => route_v3(*gicd, intid, core),
        (Gic::V2 { gicd, .. }, SpiOp::Target(core)) if spi => route_v2(*gicd, intid, core),
        (Gic::V3 { gicd, .. } | Gic::V2 { gicd, .. }, SpiOp::Raise) if spi => {
            gicd.write_bit(gicd::ISPENDR, intid);
        }
        (Gic::V3 { gicd, .. }, SpiOp::Release) => {
            let frame = if spi { *gicd } else { sgi_frame() };
            release(frame, intid, spi);
        }
        (Gic::V2 { gicd, .. }, SpiOp::Release) => release(*gicd, intid, spi),
        _ => {}
    }
}

/// Disables (SPIs only), clears pending and deactivates `intid` in `frame` (the distributor,
/// or on GICv3 for a PPI the redistributor's SGI frame, which has the same bank offsets).
fn release(frame: Frame, intid: u32, spi: bool) {
    if spi {
        frame.write_bit(gicd::ICENABLER, intid);
        frame.write_bit(gicd::ICPENDR, intid);
    }
    frame.write_bit(gicd::ICACTIVER, intid);
}

/// Routes an SPI to `core`: `GICD_IROUTER<n>` = its affinity, Aff3 in bits 39:32 and
/// Aff2..Aff0 in 23:0 as in `MPIDR_EL1`, `Interrupt_Routing_Mode` 0 (IHI 0069 12.9.22).
fn route_v3(gicd: Frame, intid: u32, core: CoreId) {
    let affinity = super::cores::mpidr_of(core).unwrap_or(0) & crate::cpus::MPIDR_AFFINITY_MASK;
    gicd.write64(gicd::IROUTER + 8 * intid as usize, affinity);
}

/// Routes an SPI to `core`: its CPU interface's bit in the SPI's byte of
/// `GICD_ITARGETSR<n>` (IHI 0048 4.3.12). A core whose bit is not known gets the SPI to
/// the boot core's.
fn route_v2(gicd: Frame, intid: u32, core: CoreId) {
    let mask = match CORES[core.index()].target.load(Relaxed) {
        0 => CORES[0].target.load(Relaxed).max(1),
        mask => mask,
    };
    let word = gicd::ITARGETSR + 4 * (intid as usize / 4);
    let shift = 8 * (intid % 4);
    let value = (gicd.read(word) & !(0xFF << shift)) | (u32::from(mask) << shift);
    gicd.write(word, value);
}

impl Gic {
    /// List register `n` of the live virtual interface, decoded.
    #[inline]
    fn entry(&self, n: usize) -> Option<lr::Entry> {
        match self {
            Gic::V3 { .. } => Some(lr::decode_v3(read_lr(n))),
            Gic::V2 { gich, .. } => Some(lr::decode_v2(gich.as_ref()?.read(gich::LR + 4 * n))),
        }
    }
}

/// Puts `irq` into the live virtual interface: merged with an entry for the same INTID if
/// there is one, else into an empty list register. False if none is free.
pub fn inject(irq: VirtualIrq) -> bool {
    let count = LIST_REGISTERS.load(Relaxed);
    let guard = GIC.lock();
    let Some(gic) = guard.as_ref() else {
        return false;
    };
    let write = |n: usize, entry: VirtualIrq, active: bool| match gic {
        Gic::V3 { .. } => write_lr(n, lr::encode_v3(entry) | if active { 1 << 63 } else { 0 }),
        Gic::V2 {
            gich: Some(gich), ..
        } => gich.write(
            gich::LR + 4 * n,
            lr::encode_v2(entry) | if active { 1 << 29 } else { 0 },
        ),
        Gic::V2 { gich: None, .. } => {}
    };
    // Empty list registers (ICH_ELRSR_EL2 / GICH_ELSR0 bit set: no interrupt, nothing to
    // signal on EOI) are not read: they are free.
    let empty = match gic {
        Gic::V3 { .. } => read_elrsr(),
        Gic::V2 {
            gich: Some(gich), ..
        } => u64::from(gich.read(gich::ELSR0)),
        Gic::V2 { gich: None, .. } => 0,
    };
    let mut free = None;
    for n in 0..count {
        if empty & (1 << n) != 0 {
            free = free.or(Some(n));
            continue;
        }
        let Some(entry) = gic.entry(n) else {
            return false;
        };
        if entry.pending || entry.active {
            if entry.intid == irq.intid {
                if !entry.pending && !entry.hardware {
                    // Active in the partition and raised again: pending and active.
                    write(n, irq, true);
                }
                return true;
            }
        } else if free.is_none() {
            free = Some(n);
        }
    }
    match free {
        Some(n) => {
            write(n, irq, false);
            true
        }
        None => false,
    }
}

/// Asks for the maintenance interrupt when at most one list register holds an interrupt
/// (`UIE`), or stops asking. (The kernel calls this only when that changes.)
pub fn notify_on_underflow(on: bool) {
    let guard = GIC.lock();
    match guard.as_ref() {
        Some(Gic::V3 { .. }) if LIST_REGISTERS.load(Relaxed) > 0 => {
            let hcr = ICH_HCR_EL2.get();
            ICH_HCR_EL2.set(if on { hcr | HCR_UIE } else { hcr & !HCR_UIE });
        }
        Some(Gic::V2 {
            gich: Some(gich), ..
        }) => {
            let hcr = gich.read(gich::HCR);
            let uie = HCR_UIE as u32;
            gich.write(gich::HCR, if on { hcr | uie } else { hcr & !uie });
        }
        _ => {}
    }
}

/// Whether a list register of the live virtual interface holds a pending interrupt.
pub fn live_virtual_pending() -> bool {
    let guard = GIC.lock();
    let Some(gic) = guard.as_ref() else {
        return false;
    };
    (0..LIST_REGISTERS.load(Relaxed)).any(|n| gic.entry(n).is_some_and(|e| e.pending))
}

/// The virtual CPU interface state of one vCPU, saved while it does not run.
#[derive(Clone, Copy, Debug)]
pub struct VcpuGic {
    vmcr: u64,
    /// Active priorities: `ICH_AP0R<n>_EL2` then `ICH_AP1R<n>_EL2` on GICv3 (as many as the
    /// implemented preemption bits need), `GICH_APR` in `[0]` on GICv2.
    apr: [u64; 8],
    /// GICv3: bit `n` set when `apr[n]` is non-zero (only those are written back).
    live_aprs: u8,
    lrs: [u64; 16],
    /// Bit `n` set when `lrs[n]` holds an interrupt (only those are written back).
    live_lrs: u16,
    /// The virtual timer's physical PPI was active (in service by this partition).
    vtimer_active: bool,
}

impl VcpuGic {
    /// A vCPU that has not run: interface disabled, nothing pending.
    pub const EMPTY: Self = Self {
        vmcr: 0,
        apr: [0; 8],
        live_aprs: 0,
        lrs: [0; 16],
        live_lrs: 0,
        vtimer_active: false,
    };

    /// Saves the live state of core `core` (this core) into `self` and leaves the
    /// interface empty for the next vCPU.
    pub fn save(&mut self, core: CoreId) {
        if V3_INTERFACE.load(Relaxed) && !CORES[core.index()].vtimer_may_be_active.load(Relaxed) {
            // Nothing to read through the redistributor: no driver access, no lock.
            self.save_v3();
            self.vtimer_active = false;
            return;
        }
        let lrs = LIST_REGISTERS.load(Relaxed);
        let guard = GIC.lock();
        match guard.as_ref() {
            Some(Gic::V3 { .. }) if lrs > 0 => {
                self.save_v3();
                self.vtimer_active =
                    take_vtimer_active(core, Frame(CORES[core.index()].sgi.load(Relaxed)));
            }
            Some(Gic::V2 {
                gich: Some(gich),
                gicd,
                ..
            }) => {
                self.vmcr = u64::from(gich.read(gich::VMCR));
                self.apr[0] = u64::from(gich.read(gich::APR));
                let empty = gich.read(gich::ELSR0);
                self.live_lrs = 0;
                for n in 0..lrs {
                    if empty & (1 << n) == 0 {
                        self.lrs[n] = u64::from(gich.read(gich::LR + 4 * n));
                        self.live_lrs |= 1 << n;
                        gich.write(gich::LR + 4 * n, 0);
                    }
                }
                gich.write(gich::APR, 0);
                // The banked PPI registers of the distributor (IHI 0048 4.3.x).
                self.vtimer_active = take_vtimer_active(core, *gicd);
            }
            _ => {}
        }
    }

    /// GICv3: saves and empties `ICH_VMCR_EL2`, the active-priority and the list registers.
    fn save_v3(&mut self) {
        let lrs = LIST_REGISTERS.load(Relaxed);
        self.vmcr = ICH_VMCR_EL2.get();
        // Only non-zero active-priority registers are cleared and written back:
        // between a save and the next restore every live one is zero.
        self.live_aprs = 0;
        if active_priority_registers() == 1 {
            // Five preemption bits (the common case, QEMU's and the A72's): one
            // register per group, read without the generic dispatch.
            let (ap0, ap1) = (ICH_AP0R0_EL2.get(), ICH_AP1R0_EL2.get());
            if ap0 != 0 {
                self.apr[0] = ap0;
                self.live_aprs |= 1;
                ICH_AP0R0_EL2.set(0);
            }
            if ap1 != 0 {
                self.apr[4] = ap1;
                self.live_aprs |= 1 << 4;
                ICH_AP1R0_EL2.set(0);
            }
        } else {
            for base in [0, 4] {
                for n in base..base + active_priority_registers() {
                    let apr = read_apr(n);
                    if apr != 0 {
                        self.apr[n] = apr;
                        self.live_aprs |= 1 << n;
                        write_apr(n, 0);
                    }
                }
            }
        }
        // Only list registers holding something (ICH_ELRSR_EL2 clear) are read and
        // cleared; the rest are empty already.
        let mut live = !read_elrsr() & ((1 << lrs) - 1);
        self.live_lrs = live as u16;
        while live != 0 {
            let n = live.trailing_zeros() as usize;
            live &= live - 1;
            self.lrs[n] = read_lr(n);
            write_lr(n, 0);
        }
    }

    /// GICv3: loads what [`VcpuGic::save_v3`] saved into the (empty) live interface.
    fn restore_v3(&self) {
        ICH_VMCR_EL2.set(self.vmcr);
        // The live interface is empty (saved or discarded before, zeroed at boot): write
        // only what this vCPU had in use.
        let mut live = self.live_aprs;
        while live != 0 {
            let n = live.trailing_zeros() as usize;
            live &= live - 1;
            write_apr(n, self.apr[n]);
        }
        let mut live = self.live_lrs;
        while live != 0 {
            let n = live.trailing_zeros() as usize;
            live &= live - 1;
            write_lr(n, self.lrs[n]);
        }
    }

    /// Empties the live interface without keeping anything: its partition has ended.
    pub fn discard(core: CoreId) {
        let mut scratch = Self::EMPTY;
        scratch.save(core);
    }

    /// Loads `self` into the virtual CPU interface of core `core` (this core).
    pub fn restore(&self, core: CoreId) {
        if V3_INTERFACE.load(Relaxed) && !self.vtimer_active {
            // No active state to write through the redistributor: no driver access.
            self.restore_v3();
            return;
        }
        let lrs = LIST_REGISTERS.load(Relaxed);
        let guard = GIC.lock();
        match guard.as_ref() {
            Some(Gic::V3 { .. }) if lrs > 0 => {
                if self.vtimer_active {
                    CORES[core.index()]
                        .vtimer_may_be_active
                        .store(true, Relaxed);
                    Frame(CORES[core.index()].sgi.load(Relaxed))
                        .write_bit(gicd::ISACTIVER, VTIMER.raw_value());
                }
                self.restore_v3();
            }
            Some(Gic::V2 {
                gich: Some(gich),
                gicd,
                ..
            }) => {
                if self.vtimer_active {
                    CORES[core.index()]
                        .vtimer_may_be_active
                        .store(true, Relaxed);
                    gicd.write_bit(gicd::ISACTIVER, VTIMER.raw_value());
                }
                gich.write(gich::VMCR, self.vmcr as u32);
                gich.write(gich::APR, self.apr[0] as u32);
                for n in (0..lrs).filter(|n| self.live_lrs & (1 << n) != 0) {
                    gich.write(gich::LR + 4 * n, self.lrs[n] as u32);
                }
            }
            _ => {}
        }
    }
}

/// The timer PPI's active state belongs to the vCPU being switched out: read and clear it
/// (KVM does the same), or the next partition's timer could not fire until this one's EOI.
/// `frame` holds the banked PPI registers: the GICv3 redistributor's SGI frame, or the
/// GICv2 distributor.
///
/// The read is skipped while this core's `vtimer_may_be_active` is clear: a switch with the
/// timer quiet costs no redistributor access.
fn take_vtimer_active(core: CoreId, frame: Frame) -> bool {
    let may_be_active = &CORES[core.index()].vtimer_may_be_active;
    if !may_be_active.load(Relaxed) {
        return false;
    }
    // Inactive from here on, whatever it was (cleared below if active).
    may_be_active.store(false, Relaxed);
    let active = frame.read_bit(gicd::ISACTIVER, VTIMER.raw_value());
    if active {
        frame.write_bit(gicd::ICACTIVER, VTIMER.raw_value());
    }
    active
}

/// How many `ICH_AP0R<n>_EL2` (and as many `ICH_AP1R<n>_EL2`) registers hold state: 1, 2
/// or 4 for 5, 6 or 7 preemption bits (`ICH_VTR_EL2.PREbits` + 1; IHI 0069 12.4.1).
fn active_priority_registers() -> usize {
    APRS.load(Relaxed)
}

/// `ICH_ELRSR_EL2` (IHI 0069 12.4.3): bit `n` set when list register `n` holds no interrupt.
fn read_elrsr() -> u64 {
    let value: u64;
    // SAFETY: reading ICH_ELRSR_EL2 (op0=3, op1=4, CRn=12, CRm=11, op2=5) has no side effect.
    unsafe { core::arch::asm!("mrs {}, s3_4_c12_c11_5", out(reg) value, options(nomem, nostack)) };
    value
}

/// `ICH_AP0R<n>_EL2` for `n` in 0..4, `ICH_AP1R<n-4>_EL2` for `n` in 4..8.
fn read_apr(n: usize) -> u64 {
    match n {
        0 => ICH_AP0R0_EL2.get(),
        1 => ICH_AP0R1_EL2.get(),
        2 => ICH_AP0R2_EL2.get(),
        3 => ICH_AP0R3_EL2.get(),
        4 => ICH_AP1R0_EL2.get(),
        5 => ICH_AP1R1_EL2.get(),
        6 => ICH_AP1R2_EL2.get(),
        7 => ICH_AP1R3_EL2.get(),
        _ => 0,
    }
}

/// Writes the register [`read_apr`] reads.
fn write_apr(n: usize, value: u64) {
    match n {
        0 => ICH_AP0R0_EL2.set(value),
        1 => ICH_AP0R1_EL2.set(value),
        2 => ICH_AP0R2_EL2.set(value),
        3 => ICH_AP0R3_EL2.set(value),
        4 => ICH_AP1R0_EL2.set(value),
        5 => ICH_AP1R1_EL2.set(value),
        6 => ICH_AP1R2_EL2.set(value),
        7 => ICH_AP1R3_EL2.set(value),
        _ => {}
    }
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
