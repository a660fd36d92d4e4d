//! What the device tree says about the machine: RAM, the console UART, reserved memory.
//! Board facts come from here at boot, never from constants (the Pi 4's RAM size varies).

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
                *slot = Some(PhysAddr::new(region.starting_address as u64));
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
        let uart = fdt
            .chosen()
            .stdout()
            .filter(|node| {
                node.compatible()
                    .is_some_and(|c| c.all().any(|s| s == "arm,pl011"))
            })
            .or_else(|| fdt.find_compatible(&["arm,pl011"]))
            .and_then(|node| node.reg()?.next())
            .map(|region| PhysAddr::new(region.starting_address as u64));
        Ok(Self {
            ram_start: PhysAddr::new(ram_start),
            ram_end: PhysAddr::new(ram_end),
            uart,
            dtb_size: fdt.total_size() as u64,
            gic: GicInfo::from_fdt(fdt),
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
    fn refuses_a_kernel_outside_ram() {
        let fdt = Fdt::new(VIRT_DTB).unwrap();
        assert_eq!(
            BootInfo::from_fdt(&fdt, PhysAddr::new(0x1000)).unwrap_err(),
            BootInfoError::NoRam
        );
    }
}
