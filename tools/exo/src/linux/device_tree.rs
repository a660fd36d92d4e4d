//! The device tree a Linux partition boots with, generated from the configuration with
//! rust-vmm's `vm-fdt` writer. It describes the partition, not the machine: its RAM, its
//! vCPUs, PSCI through HVC (exo answers for the partition's own vCPUs), the timer, the GIC
//! frames at the IPAs the partition sees them, the devices it owns, and `/chosen` with the
//! command line, the console and the initramfs.
//!
//! Bindings followed (Linux `Documentation/devicetree/bindings/`): `arm/psci.yaml`,
//! `timer/arm,arch_timer.yaml`, `interrupt-controller/arm,gic-v3.yaml` and `arm,gic.yaml`,
//! `serial/pl011.yaml`, `clock/fixed-clock.yaml`; `/chosen` `linux,initrd-start`/`-end`
//! and `stdout-path` (devicetree specification 0.4, 3.6).

use anyhow::Context;
use vm_fdt::{FdtWriter, FdtWriterResult};

use super::layout::Layout;
use crate::board::Board;
use crate::config::{LinuxProgram, Partition, Program, System};

/// Phandle of the GIC node (every interrupt's parent).
const GIC_PHANDLE: u32 = 1;
/// Phandle of the PL011s' fixed clock.
const CLOCK_PHANDLE: u32 = 2;
/// The PL011s' reference clock: QEMU `virt`'s `apb-pclk`, 24 MHz. QEMU's PL011 ignores it
/// (no baud rate to generate); a board whose UART clock differs would need its own.
pub const UART_CLOCK_HZ: u32 = 24_000_000;

/// GIC interrupt specifier types (`arm,gic.yaml`: first cell).
const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;
/// Level-sensitive, active high (`IRQ_TYPE_LEVEL_HIGH`).
const LEVEL_HIGH: u32 = 4;

/// The architected timer PPIs, as `interrupts` cells (INTID - 16), in the binding's order:
/// secure physical (29), non-secure physical (30), virtual (27), hypervisor (26). Linux at
/// EL1 uses only the virtual timer; exo traps the physical one.
const TIMER_PPIS: [u32; 4] = [13, 14, 11, 10];

/// The GIC as the partition sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicView {
    /// GICv3: the distributor (64 KiB) and one redistributor (128 KiB) per vCPU; the CPU
    /// interface is the system-register one (virtual, through `ICH_*_EL2`).
    V3 {
        /// IPA of the distributor.
        distributor: u64,
        /// IPA of the first redistributor.
        redistributors: u64,
    },
    /// GICv2: the distributor (4 KiB) and the CPU interface (8 KiB), the latter really the
    /// hardware's virtual CPU interface (`GICV`), bound where the board's `GICC` is.
    V2 {
        /// IPA of the distributor.
        distributor: u64,
        /// IPA of the CPU interface.
        cpu_interface: u64,
    },
}

impl GicView {
    /// Where the board's GIC frames are seen: at the same IPAs as their physical addresses.
    pub fn of_board(board: &Board) -> anyhow::Result<Self> {
        let base = |name: &str| {
            board
                .devices
                .iter()
                .find(|d| d.name == name)
                .map(|d| d.base)
                .with_context(|| format!("board `{}` has no device `{name}`", board.name))
        };
        Ok(match board.gic.version {
            3 => GicView::V3 {
                distributor: base("gicd")?,
                redistributors: base("gicr")?,
            },
            _ => GicView::V2 {
                distributor: base("gicd")?,
                cpu_interface: board.gic.cpu_interface.with_context(|| {
                    format!("board `{}` has a GICv2 but no cpu_interface", board.name)
                })?,
            },
        })
    }
}

/// A device the partition owns, as its device tree shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceView {
    /// Its `compatible` (a PL011 also gets `arm,primecell` and its clocks).
    pub compatible: String,
    /// IPA of its registers.
    pub ipa: u64,
    /// Size of its registers.
    pub size: u64,
    /// Its SPIs (INTIDs).
    pub interrupts: Vec<u32>,
}

impl DeviceView {
    /// The node's name: `<kind>@<ipa>`, as QEMU and Linux trees name them.
    pub fn node_name(&self) -> String {
        let kind = self
            .compatible
            .rsplit(',')
            .next()
            .unwrap_or(&self.compatible);
        format!("{kind}@{:x}", self.ipa)
    }

    fn is_pl011(&self) -> bool {
        self.compatible == "arm,pl011"
    }
}

/// Everything the device tree says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description {
    /// The partition's name (in `model`).
    pub name: String,
    /// Its RAM and where the initramfs is.
    pub layout: Layout,
    /// Whether it has an initramfs (else no `linux,initrd-*`).
    pub has_initrd: bool,
    /// The kernel command line.
    pub bootargs: String,
    /// Number of vCPUs, MPIDR 0, 1, ...
    pub vcpus: u32,
    /// The GIC.
    pub gic: GicView,
    /// Its devices; `console` indexes the one `stdout-path` names.
    pub devices: Vec<DeviceView>,
    /// Index in `devices` of the console.
    pub console: usize,
}

impl Description {
    /// The description of Linux partition `partition` running `linux` on `board`.
    pub fn of_partition(
        board: &Board,
        partition: &Partition,
        linux: &LinuxProgram,
    ) -> anyhow::Result<Self> {
        let mut devices = Vec::new();
        let mut console = None;
        for owned in &partition.devices {
            let Some(device) = owned
                .name
                .as_deref()
                .and_then(|name| board.devices.iter().find(|d| d.name == name))
            else {
                continue; // a region by address: mapped, but nothing to describe
            };
            let Some(compatible) = &device.compatible else {
                continue;
            };
            if device.name == linux.console {
                console = Some(devices.len());
            }
            devices.push(DeviceView {
                compatible: compatible.clone(),
                ipa: owned.region.ipa.raw(),
                size: owned.region.size,
                interrupts: device.interrupts.clone(),
            });
        }
        Ok(Self {
            name: partition.name.clone(),
            layout: linux.layout,
            has_initrd: linux.initrd.is_some(),
            bootargs: linux.bootargs.clone(),
            vcpus: 1,
            gic: GicView::of_board(board)?,
            console: console.with_context(|| {
                format!(
                    "console `{}` of `{}` not found",
                    linux.console, partition.name
                )
            })?,
            devices,
        })
    }

    /// The flattened device tree blob.
    pub fn to_dtb(&self) -> FdtWriterResult<Vec<u8>> {
        let mut fdt = FdtWriter::new()?;
        let root = fdt.begin_node("")?;
        fdt.property_string("compatible", "exo,linux-partition")?;
        fdt.property_string("model", &format!("exo Linux partition {}", self.name))?;
        fdt.property_u32("#address-cells", 2)?;
        fdt.property_u32("#size-cells", 2)?;
        fdt.property_u32("interrupt-parent", GIC_PHANDLE)?;
        self.chosen(&mut fdt)?;
        self.memory(&mut fdt)?;
        self.cpus(&mut fdt)?;
        psci(&mut fdt)?;
        self.timer(&mut fdt)?;
        self.interrupt_controller(&mut fdt)?;
        if self.devices.iter().any(DeviceView::is_pl011) {
            uart_clock(&mut fdt)?;
        }
        for device in &self.devices {
            self.device(&mut fdt, device)?;
        }
        fdt.end_node(root)?;
        fdt.finish()
    }

    fn chosen(&self, fdt: &mut FdtWriter) -> FdtWriterResult<()> {
        let chosen = fdt.begin_node("chosen")?;
        fdt.property_string("bootargs", &self.bootargs)?;
        let console = &self.devices[self.console];
        fdt.property_string("stdout-path", &format!("/{}", console.node_name()))?;
        if self.has_initrd {
            fdt.property_u64("linux,initrd-start", self.layout.initrd.0)?;
            fdt.property_u64("linux,initrd-end", self.layout.initrd.1)?;
        }
        fdt.end_node(chosen)
    }

    fn memory(&self, fdt: &mut FdtWriter) -> FdtWriterResult<()> {
        let base = self.layout.ram_base;
        let memory = fdt.begin_node(&format!("memory@{base:x}"))?;
        fdt.property_string("device_type", "memory")?;
        fdt.property_array_u64("reg", &[base, self.layout.ram_size])?;
        fdt.end_node(memory)
    }

    fn cpus(&self, fdt: &mut FdtWriter) -> FdtWriterResult<()> {
        let cpus = fdt.begin_node("cpus")?;
        fdt.property_u32("#address-cells", 1)?;
        fdt.property_u32("#size-cells", 0)?;
        for vcpu in 0..self.vcpus {
            let cpu = fdt.begin_node(&format!("cpu@{vcpu:x}"))?;
            fdt.property_string("device_type", "cpu")?;
            fdt.property_string("compatible", "arm,armv8")?;
            fdt.property_u32("reg", vcpu)?;
            fdt.property_string("enable-method", "psci")?;
            fdt.end_node(cpu)?;
        }
        fdt.end_node(cpus)
    }

    /// The architected timer's PPIs; on GICv2 their cells name the vCPUs they go to.
    fn timer(&self, fdt: &mut FdtWriter) -> FdtWriterResult<()> {
        let flags = match self.gic {
            GicView::V3 { .. } => LEVEL_HIGH,
            GicView::V2 { .. } => LEVEL_HIGH | (((1 << self.vcpus) - 1) << 8),
        };
        let cells: Vec<u32> = TIMER_PPIS
            .iter()
            .flat_map(|&ppi| [GIC_PPI, ppi, flags])
            .collect();
        let timer = fdt.begin_node("timer")?;
        fdt.property_string_list(
            "compatible",
            vec!["arm,armv8-timer".into(), "arm,armv7-timer".into()],
        )?;
        fdt.property_array_u32("interrupts", &cells)?;
        fdt.property_null("always-on")?;
        fdt.end_node(timer)
    }

    fn interrupt_controller(&self, fdt: &mut FdtWriter) -> FdtWriterResult<()> {
        let (distributor, compatible, reg) = match self.gic {
            GicView::V3 {
                distributor,
                redistributors,
            } => (
                distributor,
                "arm,gic-v3",
                [
                    distributor,
                    0x1_0000,
                    redistributors,
                    0x2_0000 * u64::from(self.vcpus),
                ],
            ),
            GicView::V2 {
                distributor,
                cpu_interface,
            } => (
                distributor,
                "arm,cortex-a15-gic",
                [distributor, 0x1000, cpu_interface, 0x2000],
            ),
        };
        let gic = fdt.begin_node(&format!("intc@{distributor:x}"))?;
        fdt.property_string("compatible", compatible)?;
        fdt.property_array_u64("reg", &reg)?;
        fdt.property_u32("#interrupt-cells", 3)?;
        fdt.property_u32("#address-cells", 0)?;
        fdt.property_null("interrupt-controller")?;
        if let GicView::V3 { .. } = self.gic {
            fdt.property_u32("#redistributor-regions", 1)?;
        }
        fdt.property_phandle(GIC_PHANDLE)?;
        fdt.end_node(gic)
    }

    fn device(&self, fdt: &mut FdtWriter, device: &DeviceView) -> FdtWriterResult<()> {
        let node = fdt.begin_node(&device.node_name())?;
        if device.is_pl011() {
            fdt.property_string_list(
                "compatible",
                vec![device.compatible.clone(), "arm,primecell".into()],
            )?;
        } else {
            fdt.property_string("compatible", &device.compatible)?;
        }
        fdt.property_array_u64("reg", &[device.ipa, device.size])?;
        let cells: Vec<u32> = device
            .interrupts
            .iter()
            .flat_map(|&intid| [GIC_SPI, intid - 32, LEVEL_HIGH])
            .collect();
        if !cells.is_empty() {
            fdt.property_array_u32("interrupts", &cells)?;
        }
        if device.is_pl011() {
            fdt.property_array_u32("clocks", &[CLOCK_PHANDLE, CLOCK_PHANDLE])?;
            fdt.property_string_list("clock-names", vec!["uartclk".into(), "apb_pclk".into()])?;
        }
        fdt.end_node(node)
    }
}

/// The device tree of Linux partition `name` of `system`.
pub fn of_system(system: &System, name: &str) -> anyhow::Result<Vec<u8>> {
    let partition = system
        .partitions
        .iter()
        .find(|p| p.name == name)
        .with_context(|| format!("no partition `{name}` in {}", system.path.display()))?;
    let Program::Linux(linux) = &partition.program else {
        anyhow::bail!("partition `{name}` runs a library OS, not Linux");
    };
    let description = Description::of_partition(&system.board, partition, linux)?;
    description
        .to_dtb()
        .map_err(|e| anyhow::anyhow!("writing the device tree of `{name}`: {e}"))
}

/// PSCI through HVC: exo answers for the partition's own vCPUs.
fn psci(fdt: &mut FdtWriter) -> FdtWriterResult<()> {
    let psci = fdt.begin_node("psci")?;
    fdt.property_string_list(
        "compatible",
        vec!["arm,psci-1.0".into(), "arm,psci-0.2".into()],
    )?;
    fdt.property_string("method", "hvc")?;
    fdt.end_node(psci)
}

/// The PL011s' reference clock.
fn uart_clock(fdt: &mut FdtWriter) -> FdtWriterResult<()> {
    let clock = fdt.begin_node("apb-pclk")?;
    fdt.property_string("compatible", "fixed-clock")?;
    fdt.property_u32("#clock-cells", 0)?;
    fdt.property_u32("clock-frequency", UART_CLOCK_HZ)?;
    fdt.property_string("clock-output-names", "clk24mhz")?;
    fdt.property_phandle(CLOCK_PHANDLE)?;
    fdt.end_node(clock)
}

#[cfg(test)]
mod tests;
