//! Device drivers the kernel itself uses. Everything else is the library OSes' business.

pub mod bcm2835_aux_uart;
pub mod bcm2835_watchdog;
pub mod pl011;

use crate::boot_info::{ConsoleUart, UartKind};

/// Polls of a UART's status register before a wait is given up: far longer than a full
/// FIFO takes to drain at any usable baud rate (each poll is a device read), yet finite
/// when the UART is not clocked or not enabled. The console then drops bytes instead of
/// hanging the kernel.
const MAX_POLLS: u32 = 1 << 22;

/// Polls `busy` until it is false, at most [`MAX_POLLS`] times. A UART that stays busy is
/// marked `stuck`, and every later wait gives up at once. Returns whether it became ready.
fn bounded_wait(stuck: &mut bool, mut busy: impl FnMut() -> bool) -> bool {
    let mut polls = 0;
    while !*stuck && busy() {
        polls += 1;
        *stuck = polls >= MAX_POLLS;
        core::hint::spin_loop();
    }
    !*stuck
}
use bcm2835_aux_uart::MiniUart;
use pl011::Pl011;

/// The console's UART, whichever kind the device tree names.
pub enum Uart {
    /// An Arm PL011.
    Pl011(Pl011),
    /// The BCM2835 auxiliary mini UART.
    MiniUart(MiniUart),
}

impl Uart {
    /// The UART `console` describes, not yet programmed.
    ///
    /// # Safety
    /// `console.base` must be the registers of a UART of `console.kind`, mapped as Device
    /// memory, that nothing else drives.
    pub unsafe fn new(console: &ConsoleUart) -> Self {
        let base = console.base.raw();
        match console.kind {
            // SAFETY: guaranteed by the caller.
            UartKind::Pl011 => Self::Pl011(unsafe { Pl011::new(base) }),
            // SAFETY: guaranteed by the caller (the node's `reg` is the UART's registers,
            // inside the auxiliary block).
            UartKind::MiniUart => Self::MiniUart(unsafe { MiniUart::new(base) }),
        }
    }

    /// Programs it for 115200 8N1 from `clock_hz` and enables it.
    pub fn init(&mut self, clock_hz: u32) {
        match self {
            Self::Pl011(uart) => uart.init(clock_hz),
            Self::MiniUart(uart) => uart.init(clock_hz),
        }
    }

    /// Waits (bounded) until every queued byte has left.
    pub fn flush(&mut self) {
        match self {
            Self::Pl011(uart) => uart.flush(),
            Self::MiniUart(uart) => uart.flush(),
        }
    }
}

impl crate::console::Sink for Uart {
    fn write_bytes(&mut self, bytes: &[u8]) {
        match self {
            Self::Pl011(uart) => uart.write_bytes(bytes),
            Self::MiniUart(uart) => uart.write_bytes(bytes),
        }
    }
}
