//! What the device tree says about the machine: RAM, the console UART, the interrupt
//! controller, how to power off. Board facts come from here at boot, never from constants
//! (the Pi 4's RAM size varies).
//!
//! Device addresses are translated through the `ranges` of the bus they sit on (Devicetree
//! Specification 2.3.8): the Pi describes its peripherals at VideoCore bus addresses under
//! `/soc`, which the CPU sees elsewhere. Buses directly under the root are translated;
//! deeper nesting is not (no board exo runs on needs it).

use exo_abi::PhysAddr;
use fdt::Fdt;

/// The machine as the kernel needs to know it.
#[derive(Clone, Copy, Debug)]
pub struct BootInfo {
    /// Start of the RAM bank the kernel was loaded into.
    pub ram_start: PhysAddr,
    /// End (exclusive) of that bank.
    pub ram_end: PhysAddr,
    /// Base of the PL011 console, if any.
    pub uart: Option<PhysAddr>,
    /// Size of the device tree blob itself.
    pub dtb_size: u64,
    /// The interrupt controller, if the kernel knows its kind.
    pub gic: Option<GicInfo>,
    /// How to power the machine off.
    pub power_off: PowerOff,
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

/// Translates `address`, a bus address of the node named `name`, to a CPU physical address
/// through the `ranges` of its parent bus, if that bus sits directly under the root.
fn translate(fdt: &Fdt<'_>, name: &str, address: u64) -> u64 {
    let Some(root) = fdt.find_node("/") else {
        return address;
    };
    let parent_cells = root.cell_sizes().address_cells;
    for bus in root.children() {
        if !bus.children().any(|child| child.name == name) {
            continue;
        }
        let Some(ranges) = bus.property("ranges") else {
            return address;
        };
        let sizes = bus.cell_sizes();
        let cells = |bytes: &[u8]| {
            bytes.chunks_exact(4).fold(0u64, |value, cell| {
                (value << 32) | u64::from(u32::from_be_bytes([cell[0], cell[1], cell[2], cell[3]]))
            })
        };
        let entry = 4 * (sizes.address_cells + parent_cells + sizes.size_cells);
        if entry == 0 {
            return address;
        }
        for range in ranges.value.chunks_exact(entry) {
            let (child, rest) = range.split_at(4 * sizes.address_cells);
            let (parent, size) = rest.split_at(4 * parent_cells);
            let (child, parent, size) = (cells(child), cells(parent), cells(size));
            if address >= child && address - child < size {
                return parent + (address - child);
            }
        }
        return address;
    }
    address
}

/// The node `/chosen/stdout-path` names (a path or an alias, options after `:` ignored).
/// Looked up by its last path component: `fdt` 0.1.5's own `Chosen::stdout` panics on an
/// alias with options (the Pi's `serial0:115200n8`) and its `find_node` misses nested paths.
fn stdout<'b, 'a>(fdt: &'b Fdt<'a>) -> Option<fdt::node::FdtNode<'b, 'a>> {
    let property = fdt.find_node("/chosen")?.property("stdout-path")?;
    let value = core::str::from_utf8(property.value).ok()?;
    let name = value.trim_end_matches('\0').split(':').next()?;
    let path = if name.starts_with('/') {
        name
    } else {
        fdt.aliases()?.resolve(name)?
    };
    let last = path.rsplit('/').next()?;
    fdt.all_nodes().find(|node| node.name == last)
}

/// The first `reg` region of `node`, translated to a CPU physical address.
fn first_region(fdt: &Fdt<'_>, node: fdt::node::FdtNode<'_, '_>) -> Option<PhysAddr> {
    let region = node.reg()?.next()?;
    Some(PhysAddr::new(translate(
        fdt,
        node.name,
        region.starting_address as u64,
    )))
}

impl PowerOff {
    fn from_fdt(fdt: &Fdt<'_>) -> Self {
        let psci = fdt
            .all_nodes()
            .find(|node| node.name == "psci" || node.name.starts_with("psci@"))
            .and_then(|node| node.property("method"))
            .is_some_and(|method| method.value.starts_with(b"smc"));
        if psci {
            return PowerOff::Psci;
        }
        fdt.find_compatible(&["brcm,bcm2835-pm-wdt", "brcm,bcm2835-pm"])
            .and_then(|node| first_region(fdt, node))
            .map_or(PowerOff::None, |base| PowerOff::Bcm2835Watchdog { base })
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
    fn from_fdt(fdt: &Fdt<'_>) -> Option<Self> {
        let frames = |node: fdt::node::FdtNode<'_, '_>| {
            let mut bases = [None; 4];
            for (slot, region) in bases.iter_mut().zip(node.reg().into_iter().flatten()) {
                let base = translate(fdt, node.name, region.starting_address as u64);
                *slot = Some(PhysAddr::new(base));
            }
            bases
        };
        if let Some(node) = fdt.find_compatible(&["arm,gic-v3"]) {
            let [gicd, gicr, ..] = frames(node);
            return Some(GicInfo::V3 {
                gicd: gicd?,
                gicr: gicr?,
            });
        }
        let node =
            fdt.find_compatible(&["arm,gic-400", "arm,cortex-a15-gic", "arm,cortex-a9-gic"])?;
        let [gicd, gicc, gich, gicv] = frames(node);
        Some(GicInfo::V2 {
            gicd: gicd?,
            gicc: gicc?,
            gich,
            gicv,
        })
    }
}

/// Why the device tree could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// Not a valid flattened device tree.
    BadDeviceTree,
    /// No memory bank contains the kernel.
    NoRam,
}

impl BootInfo {
    /// Reads the device tree; `kernel` is any address inside the kernel image, used to pick
    /// the RAM bank.
    pub fn from_fdt(fdt: &Fdt<'_>, kernel: PhysAddr) -> Result<Self, BootInfoError> {
        let (ram_start, ram_end) = fdt
            .memory()
            .regions()
            .filter_map(|r| {
                let start = r.starting_address as u64;
                Some((start, start.checked_add(r.size? as u64)?))
            })
            .find(|&(start, end)| start <= kernel.raw() && kernel.raw() < end)
            .ok_or(BootInfoError::NoRam)?;
        let uart = stdout(fdt)
            .filter(|node| {
                node.compatible()
                    .is_some_and(|c| c.all().any(|s| s == "arm,pl011"))
            })
            .or_else(|| fdt.find_compatible(&["arm,pl011"]))
            .and_then(|node| first_region(fdt, node));
        Ok(Self {
            ram_start: PhysAddr::new(ram_start),
            ram_end: PhysAddr::new(ram_end),
            uart,
            dtb_size: fdt.total_size() as u64,
            gic: GicInfo::from_fdt(fdt),
            power_off: PowerOff::from_fdt(fdt),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Device tree QEMU 10 generates for
    /// `-M virt,virtualization=on,gic-version=3 -cpu cortex-a72 -m 1G` (`dumpdtb=`).
    const VIRT_DTB: &[u8] = include_bytes!("../tests/fixtures/qemu-virt-gicv3.dtb");

    #[test]
    fn reads_ram_and_console_of_qemu_virt() {
        let fdt = Fdt::new(VIRT_DTB).unwrap();
        let info = BootInfo::from_fdt(&fdt, PhysAddr::new(0x4008_0000)).unwrap();
        assert_eq!(info.ram_start, PhysAddr::new(0x4000_0000));
        assert_eq!(info.ram_end, PhysAddr::new(0x8000_0000));
        assert_eq!(info.uart, Some(PhysAddr::new(0x0900_0000)));
        assert_eq!(info.dtb_size, VIRT_DTB.len() as u64);
    }

    #[test]
    fn finds_the_gicv3_frames() {
        let fdt = Fdt::new(VIRT_DTB).unwrap();
        let info = BootInfo::from_fdt(&fdt, PhysAddr::new(0x4008_0000)).unwrap();
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
        let fdt = Fdt::new(dtb).unwrap();
        let info = BootInfo::from_fdt(&fdt, PhysAddr::new(0x4008_0000)).unwrap();
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
        let fdt = Fdt::new(VIRT_DTB).unwrap();
        let info = BootInfo::from_fdt(&fdt, PhysAddr::new(0x4008_0000)).unwrap();
        assert_eq!(info.power_off, PowerOff::Psci);
    }

    /// The device tree exo gives QEMU `raspi4b` (`platform/raspi4b/qemu-raspi4b.dts`,
    /// compiled with dtc), with the 2 GiB memory node QEMU writes into it.
    #[test]
    fn translates_the_pi_peripherals_through_the_soc_ranges() {
        let dtb: &[u8] = include_bytes!("../tests/fixtures/qemu-raspi4b.dtb");
        let fdt = Fdt::new(dtb).unwrap();
        let info = BootInfo::from_fdt(&fdt, PhysAddr::new(0x8_0000)).unwrap();
        assert_eq!(info.ram_start, PhysAddr::new(0));
        assert_eq!(info.uart, Some(PhysAddr::new(0xFE20_1000)));
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

    #[test]
    fn refuses_a_kernel_outside_ram() {
        let fdt = Fdt::new(VIRT_DTB).unwrap();
        assert_eq!(
            BootInfo::from_fdt(&fdt, PhysAddr::new(0x1000)).unwrap_err(),
            BootInfoError::NoRam
        );
    }
}
