//! The BCM2835/BCM2711 power-management watchdog, used only to end a run on a Raspberry Pi:
//! a full-chip reset marked as a halt for the firmware (partition 63), the sequence Linux's
//! `bcm2835_wdt` power-off uses. QEMU's `raspi4b` resets on it, and with `-no-reboot` exits.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::ReadWrite;

register_structs! {
    /// The part of the PM block the watchdog uses.
    Registers {
        (0x00 => _reserved0),
        (0x1c => rstc: ReadWrite<u32>),
        (0x20 => rsts: ReadWrite<u32>),
        (0x24 => wdog: ReadWrite<u32>),
        (0x28 => @END),
    }
}

/// Every PM register write carries this password in bits 31:24.
const PASSWORD: u32 = 0x5A00_0000;
/// RSTC: the reset-configuration field, and its "full reset" value.
const RSTC_WRCFG_CLEAR: u32 = 0xFFFF_FFCF;
const RSTC_WRCFG_FULL_RESET: u32 = 0x0000_0020;
/// RSTS: the boot-partition bits; all set (partition 63) tells the firmware to halt.
const RSTS_PARTITION_CLEAR: u32 = 0xFFFF_FAAA;
const RSTS_PARTITION_HALT: u32 = 0x0000_0555;
/// Watchdog ticks (about 16 µs each) before the reset.
const TIMEOUT_TICKS: u32 = 10;

/// Resets the chip through the watchdog at `base`, asking the firmware to halt. Returns if
/// the reset does not happen at once.
///
/// # Safety
///
/// `base` must be the PM block the device tree names, mapped as Device memory, and nothing
/// else may use the watchdog: this ends the machine.
pub unsafe fn halt(base: u64) {
    // SAFETY: per the caller, `base` is the PM block's register frame.
    let registers = unsafe { &*(base as *const Registers) };
    let rsts = registers.rsts.get();
    registers
        .rsts
        .set(PASSWORD | (rsts & RSTS_PARTITION_CLEAR) | RSTS_PARTITION_HALT);
    registers.wdog.set(PASSWORD | TIMEOUT_TICKS);
    let rstc = registers.rstc.get();
    registers
        .rstc
        .set(PASSWORD | (rstc & RSTC_WRCFG_CLEAR) | RSTC_WRCFG_FULL_RESET);
}
