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
//! - `enable_jtag_gpio=1` (only with `exo image --jtag`): the firmware selects Alt4 on GPIO
//!   22-27, the Arm JTAG signals (ARM_TRST, ARM_RTCK, ARM_TDO, ARM_TCK, ARM_TDI, ARM_TMS),
//!   and "sets up some internal SoC connections" for the Arm cores' debug port ("GPIO
//!   control in config.txt", `enable_jtag_gpio`). Off by default: those pins are then free.

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

/// The contents of `config.txt`; with `jtag`, the Arm JTAG port on GPIO 22-27.
pub fn config_txt(console: Console, jtag: bool) -> String {
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
    if jtag {
        text.push_str("# The Arm JTAG port on GPIO 22-27 (Alt4), for OpenOCD.\n");
        text.push_str("enable_jtag_gpio=1\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mini_uart_console_fixes_the_core_clock() {
        assert_eq!(
            config_txt(Console::MiniUart, false),
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
        let text = config_txt(Console::Pl011, false);
        assert!(text.ends_with(
            "enable_uart=1\n\
             # The PL011 (uart0) on GPIO 14/15 instead of Bluetooth.\n\
             dtoverlay=disable-bt\n"
        ));
        assert!(!text.contains("core_freq"));
    }

    #[test]
    fn jtag_is_opt_in_and_puts_the_arm_debug_port_on_gpio_22_to_27() {
        for console in [Console::MiniUart, Console::Pl011] {
            assert!(!config_txt(console, false).contains("jtag"));
            let text = config_txt(console, true);
            let without = config_txt(console, false);
            assert_eq!(
                text.strip_prefix(without.as_str()),
                Some(
                    "# The Arm JTAG port on GPIO 22-27 (Alt4), for OpenOCD.\n\
                     enable_jtag_gpio=1\n"
                ),
                "{text}"
            );
        }
    }
}
