//! The interrupt controller: the distributor's SPIs and the loaded vCPU's virtual CPU
//! interface (Hafnium's `arch/irq.h`).

use crate::cpus::CoreId;
use crate::irq::VirtualIrq;
use exo_abi::{Ipa, PhysAddr};

/// The GIC as the kernel drives it.
pub trait InterruptController {
    /// The interrupt controller partitions see.
    fn gic(&self) -> GicFacts;
    /// Drives SPI `intid` in the distributor (its ownership is already checked).
    fn spi(&mut self, intid: u32, op: SpiOp);
    /// Writes `irq` into a free list register of the loaded vCPU (or merges it with the same
    /// INTID there). Returns false when every list register is in use.
    fn inject(&mut self, irq: VirtualIrq) -> bool;
    /// Asks for (or cancels) a maintenance interrupt when the list registers run empty.
    fn notify_on_underflow(&mut self, on: bool);
    /// Whether the loaded vCPU has a virtual interrupt pending in a list register.
    fn live_virtual_pending(&self) -> bool;
}

/// An operation on a physical SPI in the distributor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpiOp {
    /// Enable (`GICD_ISENABLER`).
    Enable,
    /// Disable (`GICD_ICENABLER`).
    Disable,
    /// Route to a core (`GICD_IROUTER` / `GICD_ITARGETSR`).
    Target(CoreId),
    /// Make pending (`GICD_ISPENDR`), as its device would.
    Raise,
    /// Its owner is gone: disable, clear pending and deactivate.
    Release,
}

/// How partitions reach the GIC's virtual CPU interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuInterface {
    /// No virtual interface: partitions get no interrupts.
    None,
    /// GICv3 system registers (`ICC_*` reach `ICV_*`).
    SystemRegisters,
    /// GICv2: the `GICV` frame at `phys`, bound at `ipa` (the guest's `GICC` address).
    Mapped {
        /// Where partitions see it.
        ipa: Ipa,
        /// The hardware frame.
        phys: PhysAddr,
        /// Its size in pages.
        pages: u64,
    },
}

/// Facts about the interrupt controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GicFacts {
    /// The CPU interface partitions use.
    pub interface: CpuInterface,
    /// INTIDs the distributor implements (`32 * (GICD_TYPER.ITLinesNumber + 1)`).
    pub lines: u32,
}
