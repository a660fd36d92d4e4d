//! The Raspberry Pi firmware's `config.txt` for an exo boot folder.
//!
//! What each line is for (Raspberry Pi documentation, "config.txt", sections "Boot
//! options", "Overclocking options" and "UARTs and Device Tree",
//! <https://www.raspberrypi.com/documentation/computers/config_txt.html> and
//! <https://www.raspberrypi.com/documentation/computers/configuration.html#configure-uarts>):
//!
//! - `arm_64bit=1`: start the cores in AArch64; core 0 enters `kernel` at EL2 with the
//!   device tree's address in `x0` (the Linux arm64 boot protocol exo's boot code expects).
//! - `kernel=kernel8.img`, `kernel_address=0x80000`: the image and where to load it; exo's
//!   `raspi4b` kernel is linked to run at 0x80000.
//! - `device_tree=bcm2711-rpi-4-b.dtb`: the tree the firmware fills (memory, `/chosen`)
//!   and passes.
//! - `enable_gic=1`: route interrupts through the GIC-400 (the Pi 4's default, stated so a
//!   board whose EEPROM configuration differs still gets it).
//! - `enable_uart=1`: the firmware muxes the primary UART onto GPIO 14/15.
//! - The mini UART's baud clock is the VPU core clock, which the firmware scales with load
//!   unless fixed; `enable_uart=1` is documented to fix it, but on the Pi 4 it does not
//!   always (raspberrypi/linux issue 4123: "enable_uart=1 NOT fixing core_freq"), so
//!   `core_freq=500` and `core_freq_min=500` pin it at the Pi 4's default 500 MHz, the
//!   clock exo's mini UART driver assumes when the device tree gives none.
//! - The PL011 console needs `dtoverlay=disable-bt` (Bluetooth otherwise owns uart0, and
//!   the overlay makes it the primary UART on GPIO 14/15); its clock is fixed (48 MHz).

use std::fmt::Write;

/// Which UART carries the console on GPIO 14/15.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Console {
    /// The BCM2835 auxiliary mini UART, the stock device tree's `stdout-path` (`serial1`).
    MiniUart,
    /// The PL011 uart0, through the `disable-bt` overlay.
    Pl011,
}

/// Name of the kernel image in the boot folder.
pub const KERNEL: &str = "kernel8.img";
/// Name of the device tree in the boot folder.
pub const DEVICE_TREE: &str = "bcm2711-rpi-4-b.dtb";
/// Where the PL011 console's overlay goes.
pub const DISABLE_BT_OVERLAY: &str = "overlays/disable-bt.dtbo";

/// The contents of `config.txt`.
pub fn config_txt(console: Console) -> String {
    let mut text = String::from("# Written by `exo image`: boots exo's kernel at EL2.\n");
    for line in [
        "arm_64bit=1",
        &format!("kernel={KERNEL}"),
        "kernel_address=0x80000",
        &format!("device_tree={DEVICE_TREE}"),
        "enable_gic=1",
        "enable_uart=1",
    ] {
        let _ = writeln!(text, "{line}");
    }
    match console {
        Console::MiniUart => {
            text.push_str("# The mini UART's clock is the core clock: fixed at 500 MHz.\n");
            text.push_str("core_freq=500\ncore_freq_min=500\n");
        }
        Console::Pl011 => {
            text.push_str("# The PL011 (uart0) on GPIO 14/15 instead of Bluetooth.\n");
            text.push_str("dtoverlay=disable-bt\n");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mini_uart_console_fixes_the_core_clock() {
        assert_eq!(
            config_txt(Console::MiniUart),
            "# Written by `exo image`: boots exo's kernel at EL2.\n\
             arm_64bit=1\n\
             kernel=kernel8.img\n\
             kernel_address=0x80000\n\
             device_tree=bcm2711-rpi-4-b.dtb\n\
             enable_gic=1\n\
             enable_uart=1\n\
             # The mini UART's clock is the core clock: fixed at 500 MHz.\n\
             core_freq=500\n\
             core_freq_min=500\n"
        );
    }

    #[test]
    fn the_pl011_console_moves_bluetooth_off_uart0() {
        let text = config_txt(Console::Pl011);
        assert!(text.ends_with(
            "enable_uart=1\n\
             # The PL011 (uart0) on GPIO 14/15 instead of Bluetooth.\n\
             dtoverlay=disable-bt\n"
        ));
        assert!(!text.contains("core_freq"));
    }
}
