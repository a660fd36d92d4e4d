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
        (0x30 => cr: ReadWrite<u32>),
        (0x34 => @END),
    }
}

/// Polls of UARTFR before a wait is given up: far longer than a full FIFO takes to drain
/// at any usable baud rate (each poll is a device read), yet finite when the UART is not
/// clocked or not enabled. Then the console goes silent instead of hanging the kernel.
const MAX_POLLS: u32 = 1 << 22;

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

    /// Waits while `flag` is set in UARTFR, at most [`MAX_POLLS`] polls; false (and the
    /// UART marked stuck) if it stayed set.
    fn wait_while(&mut self, flag: tock_registers::fields::Field<u32, FR::Register>) -> bool {
        let mut polls = 0;
        while !self.stuck && self.registers.fr.is_set(flag) {
            polls += 1;
            self.stuck = polls >= MAX_POLLS;
            core::hint::spin_loop();
        }
        !self.stuck
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
