//! What the device tree says about the machine: RAM, the console UART, the interrupt
//! controller, how to power off. Board facts come from here at boot, never from constants
//! (the Pi 4's RAM size varies).
//!
//! Device addresses are translated through the `ranges` of every bus above them
//! ([`crate::device_tree::Located::regions`]): the Pi describes its peripherals at
//! VideoCore bus addresses under `/soc`, which the CPU sees elsewhere.

use crate::device_tree::{Banks, DeviceTree, DtbError, Located};
use core::fmt;
use exo_abi::PhysAddr;

/// The machine as the kernel needs to know it.
#[derive(Clone, Copy, Debug)]
pub struct BootInfo {
    /// Start of the RAM bank the kernel was loaded into.
    pub ram_start: PhysAddr,
    /// End (exclusive) of that bank.
    pub ram_end: PhysAddr,
    /// Every memory bank the tree describes, in tree order ([`crate::mem::ram::Ram`]
    /// sorts and merges them).
    pub memory: Banks,
    /// The `reserved-memory` regions with an address: never given out.
    pub reserved: Banks,
    /// The PL011 the console goes to, if the tree has one.
    pub console: Option<ConsoleUart>,
    /// Size of the device tree blob itself.
    pub dtb_size: u64,
    /// The interrupt controller, if the kernel knows its kind.
    pub gic: Option<GicInfo>,
    /// How to power the machine off.
    pub power_off: PowerOff,
}

/// The console UART and how it was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsoleUart {
    /// Base of the UART's registers (the node's first `reg` entry).
    pub base: PhysAddr,
    /// Which driver runs it.
    pub kind: UartKind,
    /// Its input clock from the device tree ([`DeviceTree::clock_frequency`]), if given.
    pub clock_hz: Option<u32>,
    /// Whether `/chosen/stdout-path` names it; if not, it is the tree's first enabled
    /// PL011 because `stdout-path` is absent or names a UART the kernel has no driver for.
    pub named_by_stdout: bool,
}

/// The UARTs the kernel drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UartKind {
    /// Arm PL011 (`arm,pl011`).
    Pl011,
    /// The BCM2835 auxiliary mini UART (`brcm,bcm2835-aux-uart`), the Raspberry Pi's
    /// default console.
    MiniUart,
}

impl UartKind {
    fn of(node: &Located<'_>) -> Option<Self> {
        if node.is_compatible("arm,pl011") {
            Some(Self::Pl011)
        } else if node.is_compatible("brcm,bcm2835-aux-uart") {
            Some(Self::MiniUart)
        } else {
            None
        }
    }
}

impl ConsoleUart {
    /// The input clock: the device tree's, else what the Pi firmware sets up (the PL011's
    /// 48 MHz UART clock; the mini UART's 500 MHz core clock, fixed by `config.txt`).
    pub fn clock_or_default(&self) -> u32 {
        self.clock_hz.unwrap_or(match self.kind {
            UartKind::Pl011 => crate::drivers::pl011::DEFAULT_CLOCK_HZ,
            UartKind::MiniUart => crate::drivers::bcm2835_aux_uart::DEFAULT_CLOCK_HZ,
        })
    }
}

/// How the kernel powers the machine off at the end of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerOff {
    /// PSCI `SYSTEM_OFF` through `SMC` (firmware at EL3, or QEMU `virt`'s built-in PSCI).
    Psci,
    /// The BCM2835/BCM2711 power-management watchdog: a full reset, marked as a halt for the
    /// Pi firmware (what Linux does on a Pi); QEMU with `-no-reboot` exits.
    Bcm2835Watchdog {
        /// The PM block's base.
        base: PhysAddr,
    },
    /// Nothing known: wait for ever.
    None,
}

impl PowerOff {
    fn from_fdt(tree: &DeviceTree<'_>) -> Self {
        let psci = tree
            .find(&mut |node| node.name() == "psci" || node.name().starts_with("psci@"))
            .and_then(|psci| crate::device_tree::string(psci.node(), "method"))
            .is_some_and(|method| method.starts_with("smc"));
        if psci {
            return PowerOff::Psci;
        }
        tree.find_compatible(&["brcm,bcm2835-pm-wdt", "brcm,bcm2835-pm"])
            .and_then(|node| node.first_region())
            .map_or(PowerOff::None, |pm| PowerOff::Bcm2835Watchdog {
                base: PhysAddr::new(pm.start),
            })
    }
}

/// Where the Generic Interrupt Controller's register frames are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicInfo {
    /// GICv3: distributor and redistributors (system-register CPU interface).
    V3 {
        /// Distributor (GICD).
        gicd: PhysAddr,
        /// First redistributor (GICR).
        gicr: PhysAddr,
    },
    /// GICv2 (GIC-400 on the Raspberry Pi 4): distributor and memory-mapped CPU interface,
    /// plus the virtualization frames when the GIC has them.
    V2 {
        /// Distributor (GICD).
        gicd: PhysAddr,
        /// CPU interface (GICC).
        gicc: PhysAddr,
        /// Virtual interface control (GICH), for the hypervisor.
        gich: Option<PhysAddr>,
        /// Virtual CPU interface (GICV), what a guest sees as its GICC.
        gicv: Option<PhysAddr>,
    },
}

impl GicInfo {
    fn from_fdt(tree: &DeviceTree<'_>) -> Option<Self> {
        let frames = |node: Located<'_>| {
            let mut bases = [None; 4];
            for (slot, region) in bases.iter_mut().zip(node.regions()) {
                *slot = region.map(|r| PhysAddr::new(r.start));
            }
            bases
        };
        if let Some(node) = tree.find_compatible(&["arm,gic-v3"]) {
            let [gicd, gicr, ..] = frames(node);
            return Some(GicInfo::V3 {
                gicd: gicd?,
                gicr: gicr?,
            });
        }
        let node =
            tree.find_compatible(&["arm,gic-400", "arm,cortex-a15-gic", "arm,cortex-a9-gic"])?;
        let [gicd, gicc, gich, gicv] = frames(node);
        Some(GicInfo::V2 {
            gicd: gicd?,
            gicc: gicc?,
            gich,
            gicv,
        })
    }
}

/// Why the machine cannot be booted from what the loader passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// Not a valid flattened device tree.
    BadDeviceTree(DtbError),
    /// No memory bank contains the kernel.
    NoRam {
        /// The kernel address looked for.
        kernel: PhysAddr,
        /// How many non-empty banks the tree lists.
        banks: usize,
    },
}

impl From<DtbError> for BootInfoError {
    fn from(error: DtbError) -> Self {
        Self::BadDeviceTree(error)
    }
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadDeviceTree(error) => write!(f, "no usable device tree: {error}"),
            Self::NoRam { kernel, banks } => write!(
                f,
                "no memory bank of the device tree holds the kernel at {:#x} ({banks} \
                 non-empty banks)",
                kernel.raw()
            ),
        }
    }
}

/// The console: the UART `stdout-path` names if the kernel drives it, else the first
/// enabled PL011.
fn console(tree: &DeviceTree<'_>) -> Option<ConsoleUart> {
    let described = |node: Located<'_>, kind, named_by_stdout| {
        Some(ConsoleUart {
            base: PhysAddr::new(node.first_region()?.start),
            kind,
            clock_hz: tree.clock_frequency(node.node()),
            named_by_stdout,
        })
    };
    tree.stdout()
        .and_then(|node| described(node, UartKind::of(&node)?, true))
        .or_else(|| {
            described(
                tree.find_compatible(&["arm,pl011"])?,
                UartKind::Pl011,
                false,
            )
        })
}

impl BootInfo {
    /// Reads the device tree; `kernel` is any address inside the kernel image, used to pick
    /// the RAM bank.
    pub fn from_fdt(tree: &DeviceTree<'_>, kernel: PhysAddr) -> Result<Self, BootInfoError> {
        let banks = tree.memory_banks();
        let (ram_start, ram_end) = banks
            .as_slice()
            .iter()
            .find(|bank| bank.contains(kernel.raw()))
            .and_then(|bank| Some((bank.start, bank.end()?)))
            .ok_or(BootInfoError::NoRam {
                kernel,
                banks: banks.as_slice().len(),
            })?;
        Ok(Self {
            ram_start: PhysAddr::new(ram_start),
            ram_end: PhysAddr::new(ram_end),
            memory: banks,
            reserved: tree.reserved_memory(),
            console: console(tree),
            dtb_size: tree.size() as u64,
            gic: GicInfo::from_fdt(tree),
            power_off: PowerOff::from_fdt(tree),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Device tree QEMU 10 generates for
    /// `-M virt,virtualization=on,gic-version=3 -cpu cortex-a72 -m 1G` (`dumpdtb=`).
    const VIRT_DTB: &[u8] = include_bytes!("../tests/fixtures/qemu-virt-gicv3.dtb");
    /// The Raspberry Pi 4's own device tree (Linux's, from Debian) with the memory node the
    /// firmware writes on 2, 4 and 8 GiB boards (`kernel/tests/fixtures/README.md`).
    const PI_2GIB: &[u8] = include_bytes!("../tests/fixtures/rpi4b-2gib.dtb");
    const PI_4GIB: &[u8] = include_bytes!("../tests/fixtures/rpi4b-4gib.dtb");
    const PI_8GIB: &[u8] = include_bytes!("../tests/fixtures/rpi4b-8gib.dtb");
    /// What QEMU `raspi4b` hands the kernel given `rpi4b-2gib.dtb`: its edits leave 329
    /// `FDT_NOP` tokens, on which the `fdt` 0.1.5 crate panicked.
    const PI_UNDER_QEMU: &[u8] = include_bytes!("../tests/fixtures/qemu-raspi4b-real.dtb");
    /// A kernel address in the Pi's first bank (the firmware loads the image at 0x80000).
    const PI_KERNEL: PhysAddr = PhysAddr::new(0x8_0000);

    fn boot(dtb: &[u8], kernel: u64) -> Result<BootInfo, BootInfoError> {
        BootInfo::from_fdt(&DeviceTree::new(dtb).unwrap(), PhysAddr::new(kernel))
    }

    #[test]
    fn reads_ram_and_console_of_qemu_virt() {
        let info = boot(VIRT_DTB, 0x4008_0000).unwrap();
        assert_eq!(info.ram_start, PhysAddr::new(0x4000_0000));
        assert_eq!(info.ram_end, PhysAddr::new(0x8000_0000));
        assert_eq!(
            info.console,
            Some(ConsoleUart {
                base: PhysAddr::new(0x0900_0000),
                kind: UartKind::Pl011,
                // QEMU's `apb-pclk` fixed clock, through the PL011's `clocks` phandle.
                clock_hz: Some(24_000_000),
                named_by_stdout: true
            })
        );
        assert_eq!(info.dtb_size, VIRT_DTB.len() as u64);
    }

    #[test]
    fn finds_the_gicv3_frames() {
        let info = boot(VIRT_DTB, 0x4008_0000).unwrap();
        assert_eq!(
            info.gic,
            Some(GicInfo::V3 {
                gicd: PhysAddr::new(0x0800_0000),
                gicr: PhysAddr::new(0x080A_0000)
            })
        );
    }

    #[test]
    fn finds_the_gicv2_frames_with_virtualization_extensions() {
        let dtb: &[u8] = include_bytes!("../tests/fixtures/qemu-virt-gicv2.dtb");
        let info = boot(dtb, 0x4008_0000).unwrap();
        assert_eq!(
            info.gic,
            Some(GicInfo::V2 {
                gicd: PhysAddr::new(0x0800_0000),
                gicc: PhysAddr::new(0x0801_0000),
                gich: Some(PhysAddr::new(0x0803_0000)),
                gicv: Some(PhysAddr::new(0x0804_0000)),
            })
        );
    }

    #[test]
    fn qemu_virt_powers_off_through_psci() {
        let info = boot(VIRT_DTB, 0x4008_0000).unwrap();
        assert_eq!(info.power_off, PowerOff::Psci);
    }

    /// The device tree exo gives QEMU `raspi4b` (`platform/raspi4b/qemu-raspi4b.dts`,
    /// compiled with dtc), with the 960 MiB memory node QEMU writes into it.
    #[test]
    fn translates_the_pi_peripherals_through_the_soc_ranges() {
        let dtb: &[u8] = include_bytes!("../tests/fixtures/qemu-raspi4b.dtb");
        let info = boot(dtb, PI_KERNEL.raw()).unwrap();
        assert_eq!(info.ram_start, PhysAddr::new(0));
        assert_eq!(info.console.unwrap().base, PhysAddr::new(0xFE20_1000));
        assert_eq!(
            info.gic,
            Some(GicInfo::V2 {
                gicd: PhysAddr::new(0xFF84_1000),
                gicc: PhysAddr::new(0xFF84_2000),
                gich: Some(PhysAddr::new(0xFF84_4000)),
                gicv: Some(PhysAddr::new(0xFF84_6000)),
            })
        );
        assert_eq!(
            info.power_off,
            PowerOff::Bcm2835Watchdog {
                base: PhysAddr::new(0xFE10_0000)
            }
        );
    }

    /// A `stdout-path` naming a UART the kernel has no driver for: the console is the first
    /// enabled PL011, with the Pi firmware's 48 MHz UART clock.
    #[test]
    fn falls_back_to_the_first_pl011_when_stdout_names_an_unknown_uart() {
        let mut dtb = PI_2GIB.to_vec();
        let known = b"brcm,bcm2835-aux-uart\0";
        let at = dtb.windows(known.len()).position(|w| w == known).unwrap();
        dtb[at + known.len() - 2] = b'X';
        let info = boot(&dtb, PI_KERNEL.raw()).unwrap();
        let console = info.console.unwrap();
        assert_eq!(
            console,
            ConsoleUart {
                base: PhysAddr::new(0xFE20_1000),
                kind: UartKind::Pl011,
                clock_hz: None,
                named_by_stdout: false
            }
        );
        assert_eq!(console.clock_or_default(), 48_000_000);
    }

    /// Everything the kernel needs from the Pi's own tree, as the firmware or QEMU passes it.
    fn assert_pi(info: &BootInfo) {
        // stdout-path is `serial1`, the mini UART (bus 0x7e215040 through /soc's ranges);
        // its clock is the clock manager's VPU clock, which the tree gives no rate for, so
        // the driver uses the 500 MHz config.txt fixes.
        let console = info.console.unwrap();
        assert_eq!(
            console,
            ConsoleUart {
                base: PhysAddr::new(0xFE21_5040),
                kind: UartKind::MiniUart,
                clock_hz: None,
                named_by_stdout: true
            }
        );
        assert_eq!(console.clock_or_default(), 500_000_000);
        assert_eq!(
            info.gic,
            Some(GicInfo::V2 {
                gicd: PhysAddr::new(0xFF84_1000),
                gicc: PhysAddr::new(0xFF84_2000),
                gich: Some(PhysAddr::new(0xFF84_4000)),
                gicv: Some(PhysAddr::new(0xFF84_6000)),
            })
        );
        // The PM node lists three register blocks; the watchdog is the first.
        assert_eq!(
            info.power_off,
            PowerOff::Bcm2835Watchdog {
                base: PhysAddr::new(0xFE10_0000)
            }
        );
    }

    #[test]
    fn reads_the_real_pi_tree_with_each_memory_size() {
        for dtb in [PI_2GIB, PI_4GIB, PI_8GIB] {
            let info = boot(dtb, PI_KERNEL.raw()).unwrap();
            // The kernel's bank: below the VideoCore's 76 MiB, on every board.
            assert_eq!(info.ram_start, PhysAddr::new(0));
            assert_eq!(info.ram_end, PhysAddr::new(0x3B40_0000));
            assert_eq!(info.dtb_size, dtb.len() as u64);
            assert_pi(&info);
        }
    }

    #[test]
    fn picks_the_bank_holding_the_kernel_among_several() {
        let high = boot(PI_4GIB, 0x4008_0000).unwrap();
        assert_eq!(
            (high.ram_start.raw(), high.ram_end.raw()),
            (0x4000_0000, 0xFC00_0000)
        );
        let above_4gib = boot(PI_8GIB, 0x1_9000_0000).unwrap();
        assert_eq!(
            (above_4gib.ram_start.raw(), above_4gib.ram_end.raw()),
            (0x1_8000_0000, 0x2_0000_0000)
        );
        // The 2 GiB board ends at 0x8000_0000; the 76 MiB VideoCore hole is in no bank.
        assert_eq!(
            boot(PI_2GIB, 0x9000_0000).unwrap_err(),
            BootInfoError::NoRam {
                kernel: PhysAddr::new(0x9000_0000),
                banks: 2
            }
        );
        assert!(matches!(
            boot(PI_2GIB, 0x3C00_0000),
            Err(BootInfoError::NoRam { .. })
        ));
    }

    /// Every bank and every reserved-memory region with an address reaches the kernel, in
    /// tree order, whichever bank it boots in.
    #[test]
    fn reads_every_bank_and_the_reserved_memory_regions() {
        let dtb: &[u8] = include_bytes!("../tests/fixtures/rpi4b-8gib-reserved.dtb");
        let info = boot(dtb, PI_KERNEL.raw()).unwrap();
        let regions = |banks: &Banks| -> std::vec::Vec<(u64, u64)> {
            banks.as_slice().iter().map(|r| (r.start, r.size)).collect()
        };
        assert_eq!(
            regions(&info.memory),
            [
                (0, 0x3B40_0000),
                (0x4000_0000, 0xBC00_0000),
                (0x1_0000_0000, 0x8000_0000),
                (0x1_8000_0000, 0x8000_0000)
            ]
        );
        // firmware@3b000000 and pstore@17ff00000; not the dynamic linux,cma pool nor the
        // disabled, empty nvram@0.
        assert_eq!(
            regions(&info.reserved),
            [(0x1_7FF0_0000, 0x20_0000), (0x3B00_0000, 0x50_0000)]
        );
        let stock = boot(PI_4GIB, PI_KERNEL.raw()).unwrap();
        assert_eq!(stock.reserved.as_slice(), []);
    }

    #[test]
    fn reads_the_real_pi_tree_as_qemu_edits_it_with_nop_tokens() {
        let info = boot(PI_UNDER_QEMU, PI_KERNEL.raw()).unwrap();
        // QEMU raspi4b writes one bank: the first 960 MiB.
        assert_eq!((info.ram_start.raw(), info.ram_end.raw()), (0, 0x3C00_0000));
        assert_pi(&info);
    }

    #[test]
    fn the_stock_pi_tree_before_the_firmware_fills_memory_has_no_ram() {
        let stock: &[u8] = include_bytes!("../tests/fixtures/bcm2711-rpi-4-b.dtb");
        let error = boot(stock, PI_KERNEL.raw()).unwrap_err();
        assert_eq!(
            error,
            BootInfoError::NoRam {
                kernel: PI_KERNEL,
                banks: 0
            }
        );
        assert_eq!(
            error.to_string(),
            "no memory bank of the device tree holds the kernel at 0x80000 (0 non-empty banks)"
        );
    }

    #[test]
    fn refuses_a_kernel_outside_ram() {
        assert_eq!(
            boot(VIRT_DTB, 0x1000).unwrap_err(),
            BootInfoError::NoRam {
                kernel: PhysAddr::new(0x1000),
                banks: 1
            }
        );
    }
}
