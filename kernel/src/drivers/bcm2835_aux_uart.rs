//! The BCM2835 auxiliary mini UART (UART1), the Raspberry Pi's default console on GPIO
//! 14/15 (BCM2835 ARM Peripherals, section 2 "Auxiliaries: UART1 & SPI1, SPI2"; the BCM2711
//! keeps the same block). The kernel programs it (enable, 8 bits, 115200 baud from the core
//! clock) and only transmits; the firmware's `enable_uart=1` muxes the pins.
//!
//! The device tree's node (`brcm,bcm2835-aux-uart`) gives the UART's registers at
//! `AUX + 0x40`; the block's enable bit, `AUX_ENABLES`, is at `AUX + 0x04`, so the
//! register block here starts at the auxiliary block's base.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {u32,
    /// AUX_MU_LSR_REG (2.2.2): line status.
    LSR [
        /// The transmit FIFO can accept at least one byte.
        TX_EMPTY OFFSET(5) NUMBITS(1) [],
        /// The transmit FIFO is empty and the transmitter idle.
        TX_IDLE OFFSET(6) NUMBITS(1) [],
    ],
}

register_structs! {
    /// The auxiliary block (at `AUX`, the mini UART's registers at +0x40).
    pub Registers {
        (0x00 => _irq),
        (0x04 => enables: ReadWrite<u32>),
        (0x08 => _reserved0),
        (0x40 => io: ReadWrite<u32>),
        (0x44 => ier: ReadWrite<u32>),
        (0x48 => iir: ReadWrite<u32>),
        (0x4c => lcr: ReadWrite<u32>),
        (0x50 => mcr: ReadWrite<u32>),
        (0x54 => lsr: ReadOnly<u32, LSR::Register>),
        (0x58 => _reserved1),
        (0x60 => cntl: ReadWrite<u32>),
        (0x64 => _stat),
        (0x68 => baud: ReadWrite<u32>),
        (0x6c => @END),
    }
}

/// Offset of the UART's registers in the auxiliary block (what the device tree's `reg`
/// points at).
pub const UART_OFFSET: u64 = 0x40;
/// The mini UART's clock when the device tree gives none: the VPU core clock, which the
/// boot folder's `config.txt` fixes at the Pi 4's default 500 MHz (`core_freq=500`).
pub const DEFAULT_CLOCK_HZ: u32 = 500_000_000;
/// The console's baud rate.
pub const BAUD: u32 = 115_200;

/// A register of the block, for [`init_sequence`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Register {
    /// AUX_ENABLES (2.1.1): bit 0 turns the mini UART on; while 0 its registers do not
    /// respond. Bits 1 and 2 are SPI1 and SPI2.
    Enables,
    /// AUX_MU_IER_REG.
    Ier,
    /// AUX_MU_IIR_REG.
    Iir,
    /// AUX_MU_LCR_REG.
    Lcr,
    /// AUX_MU_MCR_REG.
    Mcr,
    /// AUX_MU_CNTL_REG.
    Cntl,
    /// AUX_MU_BAUD_REG.
    Baud,
}

/// One step of programming the UART.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Sets these bits, keeping the others (the SPI enables share AUX_ENABLES).
    SetBits(Register, u32),
    /// Writes the value.
    Write(Register, u32),
}

/// AUX_MU_BAUD_REG for `baud` from `clock_hz` (2.2.1: baud = clock / (8 × (reg + 1))),
/// rounded to the nearest rate.
pub fn baud_divisor(clock_hz: u32, baud: u32) -> u32 {
    let eight = u64::from(baud) * 8;
    let divisor = (u64::from(clock_hz) + eight / 2) / eight;
    u32::try_from(divisor.saturating_sub(1)).unwrap_or(u32::MAX) & 0xffff
}

/// How the UART is programmed, in order: the block enabled first (its registers do not
/// respond before), transmitter and receiver off while the line is set, interrupts off,
/// 8-bit mode (LCR = 3: the datasheet's bit 0 alone gives 7 bits, erratum), RTS high,
/// both FIFOs cleared (IIR bits 2:1), the baud rate, then transmitter and receiver on.
pub fn init_sequence(clock_hz: u32) -> [Step; 8] {
    use Register::*;
    [
        Step::SetBits(Enables, 1),
        Step::Write(Cntl, 0),
        Step::Write(Ier, 0),
        Step::Write(Lcr, 3),
        Step::Write(Mcr, 0),
        Step::Write(Iir, 0b110),
        Step::Write(Baud, baud_divisor(clock_hz, BAUD)),
        Step::Write(Cntl, 0b11),
    ]
}

/// The mini UART.
pub struct MiniUart {
    registers: &'static Registers,
    stuck: bool,
}

// SAFETY: the register block is device memory reachable from any core; exclusive use is
// provided by whoever owns the `MiniUart` (the console mutex).
unsafe impl Send for MiniUart {}

impl MiniUart {
    /// Wraps the mini UART whose registers (the device tree's `reg`) are at `uart_base`.
    ///
    /// # Safety
    /// `uart_base - 0x40` must be the address of a BCM2835 auxiliary block, mapped as
    /// Device memory (or, in tests, memory laid out as one), used by nothing else.
    pub unsafe fn new(uart_base: u64) -> Self {
        let base = uart_base.wrapping_sub(UART_OFFSET);
        // SAFETY: the caller guarantees `base` is such a block, living as long as the kernel.
        let registers = unsafe { &*(base as *const Registers) };
        Self {
            registers,
            stuck: false,
        }
    }

    /// Programs the UART for 115200 8N1 from `clock_hz` ([`init_sequence`]).
    pub fn init(&mut self, clock_hz: u32) {
        for step in init_sequence(clock_hz) {
            self.apply(step);
        }
    }

    fn register(&self, register: Register) -> &ReadWrite<u32> {
        let r = self.registers;
        match register {
            Register::Enables => &r.enables,
            Register::Ier => &r.ier,
            Register::Iir => &r.iir,
            Register::Lcr => &r.lcr,
            Register::Mcr => &r.mcr,
            Register::Cntl => &r.cntl,
            Register::Baud => &r.baud,
        }
    }

    fn apply(&self, step: Step) {
        match step {
            Step::SetBits(register, bits) => {
                let register = self.register(register);
                register.set(register.get() | bits);
            }
            Step::Write(register, value) => self.register(register).set(value),
        }
    }

    /// Waits until `flag` is set in LSR, within [`super::bounded_wait`]'s bound; false (and
    /// the UART marked stuck) if it never was.
    fn wait_for(&mut self, flag: tock_registers::fields::Field<u32, LSR::Register>) -> bool {
        let lsr = &self.registers.lsr;
        super::bounded_wait(&mut self.stuck, || !lsr.is_set(flag))
    }

    /// Sends one byte once the FIFO has room; dropped if the UART is stuck.
    pub fn put(&mut self, byte: u8) {
        if self.wait_for(LSR::TX_EMPTY) {
            self.registers.io.set(u32::from(byte));
        }
    }

    /// Waits until every queued byte has left (or the wait gives up).
    pub fn flush(&mut self) {
        self.wait_for(LSR::TX_IDLE);
    }
}

impl crate::console::Sink for MiniUart {
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
