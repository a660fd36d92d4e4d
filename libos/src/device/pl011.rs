//! A driver for the Arm PrimeCell UART (PL011) in a device region the partition owns:
//! interrupt-driven receive, polled transmit (PL011 Technical Reference Manual, DDI 0183,
//! chapter 3 "Programmers Model").
//!
//! The receive interrupt (`UARTRXINTR`, unmasked by `RXIM`) is asserted when a byte arrives
//! (with the FIFOs on: when the receive FIFO reaches its trigger level) and stays so until the
//! data is read or the interrupt cleared; the receive timeout interrupt (`RTIM`) reports bytes
//! left below the trigger level. An interrupt handler should first
//! [`Pl011::clear_receive_interrupts`] and then [`Pl011::read_byte`] until `None`: a byte
//! arriving after the last read raises the interrupt again, while one arriving between the
//! clear and the reads is simply read (the next interrupt then finds nothing).

use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

use crate::arch::Mmio;
use crate::device::Region;

register_bitfields! {u32,
    /// Data register, UARTDR (TRM 3.3.1): a received byte and its error flags.
    DR [
        /// The byte.
        DATA OFFSET(0) NUMBITS(8) [],
        /// Overrun, break, parity and framing errors of this byte.
        ERRORS OFFSET(8) NUMBITS(4) [],
    ],
    /// Flag register, UARTFR (TRM 3.3.3).
    FR [
        /// UART busy transmitting.
        BUSY OFFSET(3) NUMBITS(1) [],
        /// Receive FIFO empty.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
    ],
    /// Line control register, UARTLCR_H (TRM 3.3.7).
    LCR_H [
        /// Enable the 16-entry FIFOs.
        FEN OFFSET(4) NUMBITS(1) [],
        /// Word length.
        WLEN OFFSET(5) NUMBITS(2) [
            Bits8 = 0b11,
        ],
    ],
    /// Control register, UARTCR (TRM 3.3.8).
    CR [
        /// UART enable.
        UARTEN OFFSET(0) NUMBITS(1) [],
        /// Transmit enable.
        TXE OFFSET(8) NUMBITS(1) [],
        /// Receive enable.
        RXE OFFSET(9) NUMBITS(1) [],
    ],
    /// Interrupt bits, shared by UARTIMSC, UARTRIS, UARTMIS and UARTICR (TRM 3.3.10-13).
    INT [
        /// Receive interrupt.
        RX OFFSET(4) NUMBITS(1) [],
        /// Transmit interrupt.
        TX OFFSET(5) NUMBITS(1) [],
        /// Receive timeout interrupt.
        RT OFFSET(6) NUMBITS(1) [],
        /// Every interrupt (bits 10:0).
        ALL OFFSET(0) NUMBITS(11) [],
    ],
}

register_structs! {
    /// The PL011 register block (TRM table 3-1).
    Registers {
        (0x000 => dr: ReadWrite<u32, DR::Register>),
        (0x004 => _reserved0),
        (0x018 => fr: ReadOnly<u32, FR::Register>),
        (0x01C => _reserved1),
        (0x02C => lcr_h: ReadWrite<u32, LCR_H::Register>),
        (0x030 => cr: ReadWrite<u32, CR::Register>),
        (0x034 => _ifls: ReadWrite<u32>),
        (0x038 => imsc: ReadWrite<u32, INT::Register>),
        (0x03C => _ris: ReadOnly<u32, INT::Register>),
        (0x040 => mis: ReadOnly<u32, INT::Register>),
        (0x044 => icr: WriteOnly<u32, INT::Register>),
        (0x048 => @END),
    }
}

/// A PL011 in a claimed device region.
pub struct Pl011 {
    registers: Mmio<Registers>,
    region: Region,
}

impl Pl011 {
    /// Drives the UART in `region` (as the board configured it: the baud rate is left
    /// alone; QEMU ignores it).
    pub fn new(region: Region) -> Self {
        Self {
            registers: region.registers(),
            region,
        }
    }

    /// The region the UART lives in.
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// Sets the UART up for interrupt-driven receive, following the TRM's order for
    /// reprogramming (3.3.8): disable it (`UARTCR = 0`), clear every interrupt (`UARTICR`),
    /// 8-bit words (`UARTLCR_H.WLEN`), unmask the receive and receive-timeout interrupts only
    /// (`UARTIMSC`), then enable it with transmit and receive (`UARTEN | TXE | RXE`).
    ///
    /// The FIFOs stay as they were ([`Pl011::set_fifos`]): changing `FEN` empties them, which
    /// would lose bytes that arrived before the set-up. Bytes already waiting raise no new
    /// interrupt: read them once after the handler is in place.
    pub fn enable_receive_interrupts(&mut self) {
        self.registers.cr.set(0);
        self.registers.icr.write(INT::ALL.val(0x7FF));
        self.registers.lcr_h.modify(LCR_H::WLEN::Bits8);
        self.registers.imsc.write(INT::RX::SET + INT::RT::SET);
        self.registers
            .cr
            .write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
    }

    /// Masks every interrupt of the UART (`UARTIMSC = 0`).
    pub fn disable_interrupts(&mut self) {
        self.registers.imsc.set(0);
    }

    /// The next received byte, or `None` if the receive FIFO is empty (`UARTFR.RXFE`).
    /// Bytes received with an error (`UARTDR` bits 11:8) are returned all the same.
    pub fn read_byte(&mut self) -> Option<u8> {
        if self.registers.fr.is_set(FR::RXFE) {
            return None;
        }
        Some(self.registers.dr.read(DR::DATA) as u8)
    }

    /// Whether a receive or receive-timeout interrupt is asserted (`UARTMIS`).
    pub fn receive_interrupt_pending(&self) -> bool {
        self.registers
            .mis
            .matches_any(&[INT::RX::SET, INT::RT::SET])
    }

    /// Clears the receive and receive-timeout interrupts (`UARTICR`); then read what is
    /// waiting (see the module documentation for the order).
    pub fn clear_receive_interrupts(&mut self) {
        self.registers.icr.write(INT::RX::SET + INT::RT::SET);
    }

    /// Sends one byte, waiting while the transmit FIFO is full (`UARTFR.TXFF`).
    pub fn write_byte(&mut self, byte: u8) {
        while self.registers.fr.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        self.registers.dr.write(DR::DATA.val(u32::from(byte)));
    }

    /// Sends `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_byte(byte);
        }
    }

    /// Waits until every queued byte has left (`UARTFR.BUSY` clear).
    pub fn flush(&mut self) {
        while self.registers.fr.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
    }

    /// Whether the UART is enabled with receive on (`UARTCR`).
    pub fn receiving(&self) -> bool {
        self.registers.cr.is_set(CR::UARTEN) && self.registers.cr.is_set(CR::RXE)
    }

    /// Turns the FIFOs on or off (`UARTLCR_H.FEN`). A change empties them (on QEMU at least):
    /// do it before any input can arrive.
    pub fn set_fifos(&mut self, enabled: bool) {
        let value = if enabled {
            LCR_H::FEN::SET
        } else {
            LCR_H::FEN::CLEAR
        };
        self.registers.lcr_h.modify(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_offsets_follow_the_trm() {
        assert_eq!(core::mem::offset_of!(Registers, fr), 0x18);
        assert_eq!(core::mem::offset_of!(Registers, lcr_h), 0x2C);
        assert_eq!(core::mem::offset_of!(Registers, cr), 0x30);
        assert_eq!(core::mem::offset_of!(Registers, imsc), 0x38);
        assert_eq!(core::mem::offset_of!(Registers, icr), 0x44);
    }

    #[test]
    fn receive_interrupt_setup_writes_the_expected_registers() {
        // On the host the registers are plain zeroed memory: what the driver wrote stays.
        let mut uart = Pl011::new(crate::device::test_region(1));
        uart.enable_receive_interrupts();
        let registers = &uart.registers;
        assert_eq!(
            registers.cr.get(),
            1 | 1 << 8 | 1 << 9,
            "UARTEN | TXE | RXE"
        );
        assert_eq!(
            registers.lcr_h.get(),
            0b11 << 5,
            "8-bit words, FIFOs left alone"
        );
        assert_eq!(registers.imsc.get(), 1 << 4 | 1 << 6, "RXIM | RTIM");
        assert!(uart.receiving());
        uart.set_fifos(true);
        assert_eq!(uart.registers.lcr_h.get(), 1 << 4 | 0b11 << 5);
        uart.disable_interrupts();
        assert_eq!(uart.registers.imsc.get(), 0);
    }

    #[test]
    fn bytes_go_out_through_the_data_register() {
        let mut uart = Pl011::new(crate::device::test_region(1));
        // FR reads 0 on the host: the transmit FIFO is never full, the receive FIFO holds
        // whatever DR holds.
        uart.write(b"ok");
        assert_eq!(uart.registers.dr.get(), u32::from(b'k'));
        assert_eq!(uart.read_byte(), Some(b'k'));
        uart.flush();
    }
}
