//! `echo`: drives a UART of its own by interrupts. The configuration gives it `uart1` (a
//! PL011 with one SPI); it finds the device region in the info page's bindings and the SPI in
//! its owned interrupts, sets the UART up for receive interrupts and sleeps in
//! `EXO_WAIT_EVENT` until bytes arrive. Every byte received goes straight back out of the
//! same UART; every line is also printed on the console (`got: hello`). A line `quit` ends
//! the program (exit 0).

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use exo_guests::Failure;
use exo_libos::device::{self, pl011::Pl011};
use exo_libos::spin::Mutex;
use exo_libos::{ExitCode, Info, irq, println};

exo_libos::entry!(main);

/// Longest line kept (the rest of a longer line is dropped from the console copy).
const LINE_MAX: usize = 120;

/// The UART, shared by the interrupt handler and the main loop (always with IRQs masked).
static UART: Mutex<Option<Pl011>> = Mutex::new(None);
/// Bytes the handler took from the UART and the main loop has not echoed yet.
static RECEIVED: Mutex<Ring> = Mutex::new(Ring::new());
static INTERRUPTS: AtomicU64 = AtomicU64::new(0);
static OVERFLOWS: AtomicU64 = AtomicU64::new(0);

/// A byte queue from the interrupt handler to the main loop.
struct Ring {
    bytes: [u8; 256],
    head: usize,
    len: usize,
}

impl Ring {
    const fn new() -> Self {
        Self {
            bytes: [0; 256],
            head: 0,
            len: 0,
        }
    }

    /// Appends `byte`; `false` if the queue is full.
    fn push(&mut self, byte: u8) -> bool {
        if self.len == self.bytes.len() {
            return false;
        }
        let at = (self.head + self.len) % self.bytes.len();
        self.bytes[at] = byte;
        self.len += 1;
        true
    }

    fn pop(&mut self) -> Option<u8> {
        if self.len == 0 {
            return None;
        }
        let byte = self.bytes[self.head];
        self.head = (self.head + 1) % self.bytes.len();
        self.len -= 1;
        Some(byte)
    }
}

/// The UART's interrupt handler: clears the receive interrupts, then moves every waiting
/// byte to [`RECEIVED`] (see `Pl011` for why in that order).
fn on_uart(_intid: u32) {
    INTERRUPTS.fetch_add(1, Ordering::Relaxed);
    drain();
}

/// Takes every byte waiting in the UART.
fn drain() {
    let mut uart = UART.lock();
    let Some(uart) = uart.as_mut() else { return };
    uart.clear_receive_interrupts();
    let mut received = RECEIVED.lock();
    while let Some(byte) = uart.read_byte() {
        if !received.push(byte) {
            OVERFLOWS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn main(info: &Info) -> Result<ExitCode, Failure> {
    irq::init(info)?;
    let Some(binding) = device::regions(info).next() else {
        println!("no device region: the configuration must give this partition `uart1`");
        return Ok(ExitCode::FAILURE);
    };
    let Some(intid) = info.owned_interrupts().next() else {
        println!("no interrupt: the configuration must give this partition `uart1`");
        return Ok(ExitCode::FAILURE);
    };
    let mut uart = Pl011::new(device::claim(info, binding.ipa)?);
    uart.enable_receive_interrupts();
    irq::without_interrupts(|| *UART.lock() = Some(uart));
    irq::bind(intid, on_uart)?;
    // Bytes that arrived before the set-up raised no interrupt of their own.
    irq::without_interrupts(drain);
    println!(
        "PL011 at IPA {} (physical {}), SPI {intid}: echoing",
        binding.ipa, binding.phys
    );

    let mut line = [0u8; LINE_MAX];
    let mut len = 0;
    let (mut bytes, mut lines) = (0u64, 0u64);
    loop {
        let mut next = None;
        irq::wait_until(|| {
            next = RECEIVED.lock().pop();
            next.is_some()
        })?;
        let Some(byte) = next else { continue };
        bytes += 1;
        irq::without_interrupts(|| {
            if let Some(uart) = UART.lock().as_mut() {
                uart.write_byte(byte);
            }
        });
        match byte {
            b'\n' | b'\r' => {
                if len == 0 && byte == b'\n' {
                    // The second half of a "\r\n".
                    continue;
                }
                let text = core::str::from_utf8(&line[..len]).unwrap_or("<not UTF-8>");
                println!("got: {text}");
                lines += 1;
                if text == "quit" {
                    break;
                }
                len = 0;
            }
            _ if len < LINE_MAX => {
                line[len] = byte;
                len += 1;
            }
            _ => {}
        }
    }
    irq::without_interrupts(|| {
        if let Some(uart) = UART.lock().as_mut() {
            uart.flush();
            uart.disable_interrupts();
        }
    });
    let overflows = OVERFLOWS.load(Ordering::Relaxed);
    println!(
        "{bytes} bytes echoed, {lines} lines, {} receive interrupts",
        INTERRUPTS.load(Ordering::Relaxed)
    );
    if overflows != 0 {
        println!("{overflows} bytes dropped: the queue was full");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
