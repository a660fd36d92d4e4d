//! The GICv2 virtual CPU interface: the memory-mapped `GICV_*` frame the kernel maps in place
//! of a physical `GICC` (GIC architecture specification v2, IHI 0048B, chapter 5 "GIC Support
//! for Virtualization"; each `GICV_*` register behaves as the `GICC_*` register of chapter 4).
//!
//! The kernel injects a partition's interrupts as Group 0 virtual interrupts through its
//! `GICH_LR<n>` list registers, with the hardware bit for physical ones; with
//! `GICV_CTLR.FIQEn == 0` they are signalled as virtual IRQs. The library OS acknowledges with
//! `GICV_IAR` and writes the very value it read back to `GICV_EOIR` (for an SGI the value
//! carries the source CPU in bits 12:10, and the end of interrupt must name it too).
//!
//! `arm-gic`'s GICv2 driver needs the distributor, which a partition does not have, so the
//! five registers used here are declared on their own.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

use crate::arch::Mmio;
use crate::device::Region;

register_bitfields! {u32,
    /// `GICV_CTLR`, the virtual CPU interface control register (IHI 0048B chapter 5; laid out
    /// as `GICC_CTLR`, 4.4.1, without the security extensions).
    CTLR [
        /// Forward Group 0 virtual interrupts to the PE.
        ENABLE_GRP0 OFFSET(0) NUMBITS(1) [],
        /// Forward Group 1 virtual interrupts to the PE.
        ENABLE_GRP1 OFFSET(1) NUMBITS(1) [],
        /// Signal Group 0 interrupts as FIQ (we want IRQ: clear).
        FIQ_EN OFFSET(3) NUMBITS(1) [],
        /// 1: `GICV_EOIR` only drops priority and `GICV_DIR` deactivates (we want 0).
        EOI_MODE OFFSET(9) NUMBITS(1) [],
    ],
    /// `GICV_IAR`, the interrupt acknowledge register (as `GICC_IAR`, 4.4.4).
    IAR [
        /// The INTID; 1023 when nothing is pending.
        INTERRUPT_ID OFFSET(0) NUMBITS(10) [],
        /// For an SGI, the CPU that requested it.
        CPU_ID OFFSET(10) NUMBITS(3) [],
    ],
}

register_structs! {
    /// The start of the `GICV_*` frame (offsets as for `GICC_*`, IHI 0048B table 4-2).
    pub(crate) Registers {
        (0x000 => ctlr: ReadWrite<u32, CTLR::Register>),
        (0x004 => pmr: ReadWrite<u32>),
        (0x008 => bpr: ReadWrite<u32>),
        (0x00C => iar: ReadOnly<u32, IAR::Register>),
        (0x010 => eoir: WriteOnly<u32>),
        (0x014 => @END),
    }
}

/// The INTID bits of an acknowledge value.
pub(crate) fn intid_of(acknowledged: u32) -> u32 {
    acknowledged & 0x3FF
}

/// The virtual CPU interface of the vCPU running this partition.
pub(crate) struct CpuInterface {
    registers: Mmio<Registers>,
    _region: Region,
}

impl CpuInterface {
    /// Drives the `GICV_*` frame in `region`.
    pub(crate) fn new(region: Region) -> Self {
        Self {
            registers: region.registers(),
            _region: region,
        }
    }

    /// Opens the interface to every virtual interrupt: `GICV_PMR = 0xFF` (every priority
    /// passes; implementations keep only the top bits, GIC-400 and QEMU five), `GICV_BPR = 0`
    /// (the smallest binary point the interface allows: no grouping beyond it), then
    /// `GICV_CTLR = EnableGrp0` with `FIQEn` and `EOImode` clear, so Group 0 interrupts come as
    /// IRQs and an end of interrupt also deactivates.
    pub(crate) fn setup(&mut self) {
        self.registers.pmr.set(0xFF);
        self.registers.bpr.set(0);
        self.registers.ctlr.write(CTLR::ENABLE_GRP0::SET);
    }

    /// Acknowledges the highest-priority pending virtual interrupt (`GICV_IAR`): the raw
    /// value, INTID in bits 9:0 (1023: none).
    pub(crate) fn acknowledge(&mut self) -> u32 {
        self.registers.iar.get()
    }

    /// Ends an interrupt (`GICV_EOIR`): `acknowledged` must be exactly what
    /// [`Self::acknowledge`] returned. Drops the running priority and deactivates it; for a
    /// list register with the hardware bit, the physical interrupt too.
    pub(crate) fn end(&mut self, acknowledged: u32) {
        self.registers.eoir.set(acknowledged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_offsets_follow_the_gicc_map() {
        assert_eq!(core::mem::offset_of!(Registers, pmr), 0x004);
        assert_eq!(core::mem::offset_of!(Registers, iar), 0x00C);
        assert_eq!(core::mem::offset_of!(Registers, eoir), 0x010);
    }

    #[test]
    fn setup_enables_group_0_as_irq_and_opens_every_priority() {
        let mut interface = CpuInterface::new(crate::device::test_region(2));
        interface.setup();
        assert_eq!(interface.registers.ctlr.get(), 1);
        assert_eq!(interface.registers.pmr.get(), 0xFF);
        assert_eq!(interface.registers.bpr.get(), 0);
        assert_eq!(interface.acknowledge(), 0, "the host stand-in reads zeroes");
    }

    #[test]
    fn the_intid_is_bits_9_to_0() {
        assert_eq!(intid_of(1023), 1023);
        assert_eq!(intid_of(3 << 10 | 10), 10, "SGI 10 from CPU 3");
        assert_eq!(intid_of(48), 48);
    }
}
