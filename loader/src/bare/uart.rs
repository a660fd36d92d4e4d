//! The console UARTs of the BCM2711, polled: the auxiliary mini UART (the stock device
//! tree's console, GPIO 14/15) and the PL011 (with the disable-bt overlay). 115200 8N1 from
//! the clocks `exo image`'s config.txt fixes: the core clock at 500 MHz for the mini UART,
//! 48 MHz for the PL011.

use core::fmt;

/// The auxiliary block (BCM2711 ARM peripherals 2.1.1): AUX_ENABLES at +0x04, the mini
/// UART's registers from +0x40.
const AUX: usize = 0xFE21_5000;
/// The PL011 uart0.
const PL011: usize = 0xFE20_1000;

/// A console UART.
#[derive(Clone, Copy)]
pub enum Uart {
    /// The mini UART.
    Mini,
    /// The PL011.
    Pl011,
}

fn write(address: usize, value: u32) {
    // SAFETY: `address` is a register of one of the UARTs above, mapped as Device memory.
    unsafe { (address as *mut u32).write_volatile(value) }
}

fn read(address: usize) -> u32 {
    // SAFETY: as in `write`.
    unsafe { (address as *const u32).read_volatile() }
}

impl Uart {
    /// The UART `exo image` chose: 1 is the PL011, anything else the mini UART.
    pub fn from_config(word: u32) -> Self {
        if word == 1 { Uart::Pl011 } else { Uart::Mini }
    }

    /// What it is, for the banner.
    pub fn describe(&self) -> &'static str {
        match self {
            Uart::Mini => "console on the mini UART at 0xfe215040, 115200 8N1",
            Uart::Pl011 => "console on the PL011 at 0xfe201000, 115200 8N1",
        }
    }

    /// Programs 115200 8N1, FIFOs on, interrupts off.
    pub fn init(&self) {
        match self {
            Uart::Mini => {
                write(AUX + 0x04, read(AUX + 0x04) | 1); // AUX_ENABLES: mini UART
                write(AUX + 0x60, 0); // CNTL: receiver and transmitter off
                write(AUX + 0x44, 0); // IER: no interrupts
                write(AUX + 0x4C, 3); // LCR: 8 bits
                write(AUX + 0x50, 0); // MCR: RTS high
                write(AUX + 0x48, 0xC6); // IIR: clear both FIFOs
                write(AUX + 0x68, 541); // BAUD: 500 MHz / (8 * 542) = 115314
                write(AUX + 0x60, 3); // CNTL: receiver and transmitter on
            }
            Uart::Pl011 => {
                write(PL011 + 0x30, 0); // CR: off
                write(PL011 + 0x44, 0x7FF); // ICR: clear interrupts
                write(PL011 + 0x24, 26); // IBRD: 48 MHz / (16 * 115200) = 26.04
                write(PL011 + 0x28, 3); // FBRD: 0.04 * 64
                write(PL011 + 0x2C, 0x70); // LCRH: 8 bits, FIFOs on
                write(PL011 + 0x38, 0); // IMSC: no interrupts
                write(PL011 + 0x30, 0x301); // CR: UART, TX and RX on
            }
        }
    }

    /// Sends `byte`, waiting for room.
    pub fn put(&self, byte: u8) {
        match self {
            Uart::Mini => {
                while read(AUX + 0x54) & 0x20 == 0 {} // LSR: transmitter can take a byte
                write(AUX + 0x40, u32::from(byte));
            }
            Uart::Pl011 => {
                while read(PL011 + 0x18) & 0x20 != 0 {} // FR: TXFF
                write(PL011, u32::from(byte));
            }
        }
    }

    /// A received byte, if one is waiting.
    pub fn get(&self) -> Option<u8> {
        match self {
            Uart::Mini => (read(AUX + 0x54) & 1 != 0).then(|| read(AUX + 0x40) as u8),
            Uart::Pl011 => (read(PL011 + 0x18) & 0x10 == 0).then(|| read(PL011) as u8),
        }
    }

    /// Waits until everything sent has left the transmitter.
    pub fn flush(&self) {
        match self {
            Uart::Mini => while read(AUX + 0x54) & 0x40 == 0 {}, // LSR: transmitter idle
            Uart::Pl011 => while read(PL011 + 0x18) & 0x08 != 0 {}, // FR: BUSY
        }
    }
}

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            self.put(byte);
        }
        Ok(())
    }
}
