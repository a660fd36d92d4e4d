//! Arm PrimeCell UART (PL011) transmit path, for the kernel console
//! (PL011 Technical Reference Manual, DDI 0183, section 3 "Programmers model").

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {u32,
    /// Flag register, UARTFR (TRM 3.3.3).
    FR [
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// UART busy transmitting.
        BUSY OFFSET(3) NUMBITS(1) [],
    ],
}

register_structs! {
    /// The PL011 register block.
    Registers {
        (0x00 => dr: WriteOnly<u32>),
        (0x04 => _reserved0),
        (0x18 => fr: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x24 => ibrd: ReadWrite<u32>),
        (0x28 => fbrd: ReadWrite<u32>),
        (0x2c => lcrh: ReadWrite<u32>),
        (0x30 => cr: ReadWrite<u32>),
        (0x34 => _ifls),
        (0x38 => imsc: ReadWrite<u32>),
        (0x3c => _ris),
        (0x40 => _mis),
        (0x44 => icr: WriteOnly<u32>),
        (0x48 => @END),
    }
}

/// The PL011's reference clock when the device tree gives none: the Raspberry Pi 4
/// firmware's UART clock (`init_uart_clock`, 48 MHz by default).
pub const DEFAULT_CLOCK_HZ: u32 = 48_000_000;
/// The console's baud rate.
pub const BAUD: u32 = 115_200;

/// A register written while programming the UART.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Register {
    /// UARTIBRD, the integer part of the baud divisor (TRM 3.3.6).
    Ibrd,
    /// UARTFBRD, its fraction in 64ths (3.3.7).
    Fbrd,
    /// UARTLCR_H, line control (3.3.7): word length, FIFOs.
    Lcrh,
    /// UARTCR, control (3.3.8).
    Cr,
    /// UARTIMSC, interrupt mask (3.3.10).
    Imsc,
    /// UARTICR, interrupt clear (3.3.13).
    Icr,
}

/// UARTLCR_H: 8-bit words (WLEN = 0b11) with FIFOs (FEN); one stop bit, no parity.
pub const LCRH_8N1_FIFO: u32 = (0b11 << 5) | (1 << 4);
/// UARTCR: UART, transmitter and receiver enabled (UARTEN, TXE, RXE).
pub const CR_ENABLE: u32 = 1 | (1 << 8) | (1 << 9);

/// UARTIBRD and UARTFBRD for `baud` from `clock_hz`: the divisor clock / (16 × baud) in
/// 64ths, rounded (TRM 3.3.6).
pub fn baud_divisors(clock_hz: u32, baud: u32) -> (u32, u32) {
    let baud = u64::from(baud.max(1));
    let sixty_fourths = (4 * u64::from(clock_hz) + baud / 2) / baud;
    (
        u32::try_from(sixty_fourths >> 6).unwrap_or(u32::MAX) & 0xffff,
        (sixty_fourths & 63) as u32,
    )
}

/// How the UART is programmed once its transmitter is idle, in order (TRM 3.3.8): disabled,
/// FIFOs flushed (FEN cleared), interrupts masked and cleared, the divisors, then UARTLCR_H
/// (whose write latches the divisors) for 8N1 with FIFOs, then enabled.
pub fn init_sequence(clock_hz: u32) -> [(Register, u32); 8] {
    let (ibrd, fbrd) = baud_divisors(clock_hz, BAUD);
    [
        (Register::Cr, 0),
        (Register::Lcrh, 0),
        (Register::Imsc, 0),
        (Register::Icr, 0x7ff),
        (Register::Ibrd, ibrd),
        (Register::Fbrd, fbrd),
        (Register::Lcrh, LCRH_8N1_FIFO),
        (Register::Cr, CR_ENABLE),
    ]
}

/// A PL011 at a fixed physical address (identity mapped as Device memory at EL2).
pub struct Pl011 {
    registers: &'static Registers,
    /// A wait timed out: the UART does not transmit, so bytes are dropped from now on.
    stuck: bool,
}

// SAFETY: the register block is device memory reachable from any core; exclusive use is
// provided by whoever owns the `Pl011` (the console mutex).
unsafe impl Send for Pl011 {}

impl Pl011 {
    /// Wraps the UART at `base`.
    ///
    /// # Safety
    /// `base` must be the address of a PL011 register block, mapped as Device memory, and
    /// no other code may drive this UART's transmitter concurrently.
    pub const unsafe fn new(base: u64) -> Self {
        // SAFETY: the caller guarantees `base` is a mapped PL011 register block that lives
        // for the whole run of the kernel.
        let registers = unsafe { &*(base as *const Registers) };
        Self {
            registers,
            stuck: false,
        }
    }

    /// Programs the UART for 115200 8N1 from `clock_hz` ([`init_sequence`]), after the
    /// bytes already queued have gone (a bounded wait).
    pub fn init(&mut self, clock_hz: u32) {
        self.flush();
        let r = self.registers;
        for (register, value) in init_sequence(clock_hz) {
            match register {
                Register::Ibrd => r.ibrd.set(value),
                Register::Fbrd => r.fbrd.set(value),
                Register::Lcrh => r.lcrh.set(value),
                Register::Cr => r.cr.set(value),
                Register::Imsc => r.imsc.set(value),
                Register::Icr => r.icr.set(value),
            }
        }
    }

    /// Waits while `flag` is set in UARTFR, within [`super::bounded_wait`]'s bound; false
    /// (and the UART marked stuck) if it stayed set.
    fn wait_while(&mut self, flag: tock_registers::fields::Field<u32, FR::Register>) -> bool {
        let fr = &self.registers.fr;
        super::bounded_wait(&mut self.stuck, || fr.is_set(flag))
    }

    /// Sends one byte, waiting while the transmit FIFO is full; dropped if the UART is
    /// stuck.
    pub fn put(&mut self, byte: u8) {
        if self.wait_while(FR::TXFF) {
            self.registers.dr.set(u32::from(byte));
        }
    }

    /// Waits until every queued byte has left the UART (or the wait gives up).
    pub fn flush(&mut self) {
        self.wait_while(FR::BUSY);
    }

    /// Whether the UART is enabled (UARTCR.UARTEN). Firmware or QEMU has set it up.
    pub fn is_enabled(&self) -> bool {
        self.registers.cr.get() & 1 != 0
    }
}

impl crate::console::Sink for Pl011 {
    fn write_bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if byte == b'\n' {
                self.put(b'\r');
            }
            self.put(byte);
        }
    }
}

#[cfg(test)]
mod tests;
