//! Board descriptions: `platform/<board>/board.toml`: RAM, interrupt controller, devices and
//! how to start QEMU for the board.
//!
//! For example:
//!
//! ```toml
//! description = "QEMU virt, GICv3, one Cortex-A72"
//! ram = "1GiB"                 # passed to QEMU as `-m`; bounds the partitions' quotas
//! ram_base = 0x4000_0000       # physical address of RAM; no device region may overlap it
//! linker_script = "kernel.ld"  # relative to the board's directory
//! cores = 8                    # optional (default 1): most cores `[system] cores` may ask
//!                              # QEMU for (`-smp`), at most 8
//! # fixed_cores = true         # optional: the machine always has `cores` (raspi4b), and
//!                              # the tool passes no `-smp`
//!
//! [gic]
//! version = 3                  # 2 or 3
//! max_intid = 287              # the last SPI: QEMU virt has 256 SPIs, INTIDs 32..=287
//! # cpu_interface = 0x0801_0000  GICv2 only (then required): the GICC frame, where
//! #                              partitions see their virtual CPU interface (2 pages)
//!
//! [qemu]
//! binary = "qemu-system-aarch64"
//! args = ["-M", "virt,virtualization=on,gic-version=3", "-nographic", "-serial", "stdio"]
//!
//! [devices.uart0]              # a device: an MMIO region and its interrupts (SPIs)
//! base = 0x0900_0000           # page aligned
//! size = "4KiB"                # a non-zero multiple of 4 KiB
//! interrupts = [33]            # optional (default [])
//! reserved = "the kernel's console"  # optional: the kernel keeps it, for this purpose
//!
//! [devices.uart1]
//! base = 0x0904_0000
//! size = "4KiB"
//! interrupts = [40]
//! qemu_serial = 1              # optional: it is QEMU's serial port 1 (`exo run` wires it)
//!
//! [devices.dma]
//! base = 0x0A00_0000
//! size = "4KiB"
//! dma = true                   # optional (default false): it masters the bus (DMA)
//! ```
//!
//! **DMA.** A device marked `dma = true` reads and writes physical memory itself. Without
//! an IOMMU (the BCM2711 has none) nothing translates or checks its accesses: stage 2 binds
//! the CPU, not the device, so a partition that programs it can read and write all RAM, the
//! kernel's and every other partition's. `exo check` refuses a partition owning such a
//! device (by name or by a region overlapping it) unless the partition says
//! `trusted_dma = true` (see [`crate::config`]).
//!
//! A partition owns a device with `devices = ["uart1"]` in its configuration; reserved
//! devices (the console UART, the GIC frames) are never a partition's, and neither are
//! their interrupts. The runner appends `-smp <cores>` (unless `fixed_cores`), `-m <ram>`
//! and `-kernel <image>` to `args`, and
//! the serial ports of owned devices (see [`crate::qemu`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use exo_abi::PAGE_SIZE;
use exo_abi::package::{FIRST_SPI, LAST_SPI, MAX_CORES};
use serde::Deserialize;
use serde_spanned::Spanned;

use crate::config::{ConfigError, SizeValue, line_of};
use crate::size::{Bytes, MIB};
use crate::workspace::Workspace;

/// RAM the kernel keeps for itself (its image, the boot package, page tables and frame
/// metadata): partitions' quotas together may use the board's RAM less this much.
pub const KERNEL_RESERVATION: u64 = 16 * MIB;
/// Size of a GICv2 CPU interface frame as a partition sees it (`GICC`/`GICV`: two pages).
pub const GIC_CPU_INTERFACE_SIZE: u64 = 2 * PAGE_SIZE;

/// A board, read from its `board.toml`.
#[derive(Clone, Debug)]
pub struct Board {
    /// The board's directory name under `platform/`.
    pub name: String,
    /// The board's directory.
    pub dir: PathBuf,
    /// One line saying what the board is.
    pub description: String,
    /// RAM size in bytes (a whole number of MiB).
    pub ram_bytes: u64,
    /// The machine has exactly this much RAM (QEMU `raspi4b` accepts only 2 GiB): a
    /// configuration may not change it.
    pub fixed_ram: bool,
    /// RAM the kernel finds and manages, when less than [`Board::ram_bytes`]: the kernel
    /// uses only the memory bank it boots in (960 MiB under QEMU `raspi4b`). See
    /// [`Board::kernel_ram`].
    pub kernel_ram_bytes: Option<u64>,
    /// Physical address at which RAM starts (page aligned).
    pub ram_base: u64,
    /// The address span the kernel's banks cover, holes included, from which its frame
    /// metadata is sized: the board's RAM size (the one `[system] memory` picks).
    pub span_bytes: u64,
    /// The board's RAM sizes and the RAM the kernel manages on each (`[ram_sizes]`, the Pi
    /// 4's banks as its firmware writes them), ascending: what `[system] memory` may pick on
    /// a board with [`Board::fixed_ram`].
    pub ram_sizes: Vec<(u64, u64)>,
    /// Most cores the board may run (`cores`, 1..=[`MAX_CORES`]).
    pub max_cores: u32,
    /// The machine always has [`Board::max_cores`] cores: a configuration may not change it,
    /// and QEMU gets no `-smp`.
    pub fixed_cores: bool,
    /// Cores QEMU starts: 1, or `[system] cores`, or all of a fixed board's.
    pub cores: u32,
    /// The kernel linker script (absolute path; may not exist until the kernel is built).
    pub linker_script: PathBuf,
    /// The QEMU binary (looked up on `PATH`).
    pub qemu_binary: String,
    /// QEMU arguments before `-m` and `-kernel`.
    pub qemu_args: Vec<String>,
    /// A device-tree source to compile with `dtc` and give QEMU as `-dtb` (absolute path),
    /// for machines QEMU does not describe itself (`raspi4b`).
    pub qemu_dtb: Option<PathBuf>,
    /// The interrupt controller.
    pub gic: Gic,
    /// The devices, in file order.
    pub devices: Vec<Device>,
}

/// A board's interrupt controller, as far as the configuration checks need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gic {
    /// Architecture version: 2 or 3.
    pub version: u32,
    /// The highest SPI INTID the distributor implements.
    pub max_intid: u32,
    /// GICv2: physical address of the CPU interface frame (`GICC`). A partition sees its
    /// virtual CPU interface at this IPA, [`GIC_CPU_INTERFACE_SIZE`] bytes; `None` on GICv3.
    pub cpu_interface: Option<u64>,
}

/// A device of a board: an MMIO region and the SPIs it raises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Its name, the key of its `[devices.<name>]` table.
    pub name: String,
    /// Physical base address (page aligned).
    pub base: u64,
    /// Size in bytes (a non-zero multiple of [`PAGE_SIZE`]).
    pub size: u64,
    /// Its interrupts (SPI INTIDs).
    pub interrupts: Vec<u32>,
    /// QEMU's serial port number when the device is one of QEMU's UARTs (0 is the console).
    pub qemu_serial: Option<u32>,
    /// What the kernel keeps the device for, when it is the kernel's (no partition may own
    /// it, its region or its interrupts).
    pub reserved: Option<String>,
    /// It masters the bus (DMA), past stage 2: only a partition trusted with all RAM may
    /// own it.
    pub dma: bool,
    /// Its device-tree `compatible` (`"arm,pl011"`), when the board says: a Linux
    /// partition owning it sees it in its device tree, and a PL011 can be its console.
    pub compatible: Option<String>,
    /// Line of its table header in the board file.
    pub line: usize,
}

impl Device {
    /// End of its region (exclusive).
    pub fn end(&self) -> u64 {
        self.base + self.size
    }
}

/// A half-open address range `start..end`, displayed in hexadecimal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// First address.
    pub start: u64,
    /// First address after it.
    pub end: u64,
}

impl Range {
    /// `size` bytes from `start` (saturating at the top of the address space).
    pub fn at(start: u64, size: u64) -> Self {
        Self {
            start,
            end: start.saturating_add(size),
        }
    }

    /// Whether the two ranges share an address.
    pub fn overlaps(&self, other: &Range) -> bool {
        self.start < other.end && other.start < self.end
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}..{:#x}", self.start, self.end)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoard {
    description: String,
    ram: Spanned<SizeValue>,
    #[serde(default)]
    fixed_ram: bool,
    kernel_ram: Option<Spanned<SizeValue>>,
    #[serde(default)]
    ram_sizes: BTreeMap<String, Spanned<SizeValue>>,
    ram_base: Spanned<i64>,
    cores: Option<Spanned<i64>>,
    #[serde(default)]
    fixed_cores: bool,
    linker_script: String,
    gic: Spanned<RawGic>,
    qemu: RawQemu,
    #[serde(default)]
    devices: BTreeMap<String, Spanned<RawDevice>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGic {
    version: Spanned<i64>,
    max_intid: Spanned<i64>,
    cpu_interface: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQemu {
    binary: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    dtb: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    base: Spanned<i64>,
    size: Spanned<SizeValue>,
    #[serde(default)]
    interrupts: Vec<Spanned<i64>>,
    qemu_serial: Option<Spanned<i64>>,
    reserved: Option<String>,
    #[serde(default)]
    dma: bool,
    compatible: Option<String>,
}

/// Why a board could not be loaded.
#[derive(Debug)]
pub enum BoardError {
    /// There is no `platform/<name>/board.toml`.
    Unknown,
    /// The board file is wrong.
    Invalid(ConfigError),
}

impl Board {
    /// Reads and checks `platform/<name>/board.toml`.
    pub fn load(workspace: &Workspace, name: &str) -> Result<Self, BoardError> {
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let dir = workspace.platform_dir().join(name);
        let path = dir.join("board.toml");
        if !valid_name || !path.is_file() {
            return Err(BoardError::Unknown);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| {
            BoardError::Invalid(ConfigError::new(&path, None, format!("cannot read: {e}")))
        })?;
        Self::parse(name, &dir, &path, &text).map_err(BoardError::Invalid)
    }

    fn parse(name: &str, dir: &Path, path: &Path, text: &str) -> Result<Self, ConfigError> {
        let error = |offset: usize, message: String| {
            ConfigError::new(path, Some(line_of(text, offset)), message)
        };
        let raw: RawBoard =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(path, text, &e))?;
        let ram_at = raw.ram.span().start;
        let ram_bytes = raw.ram.get_ref().bytes().map_err(|m| error(ram_at, m))?;
        if !ram_bytes.is_multiple_of(MIB) || ram_bytes <= KERNEL_RESERVATION {
            return Err(error(
                ram_at,
                format!(
                    "board RAM must be a whole number of MiB larger than the kernel's {}",
                    Bytes(KERNEL_RESERVATION)
                ),
            ));
        }
        let kernel_ram_bytes = match &raw.kernel_ram {
            Some(key) => {
                let at = key.span().start;
                let bytes = key.get_ref().bytes().map_err(|m| error(at, m))?;
                if !bytes.is_multiple_of(MIB) || bytes <= KERNEL_RESERVATION || bytes > ram_bytes {
                    return Err(error(
                        at,
                        format!(
                            "kernel_ram must be a whole number of MiB larger than the kernel's \
                             {} and at most `ram` ({})",
                            Bytes(KERNEL_RESERVATION),
                            Bytes(ram_bytes)
                        ),
                    ));
                }
                Some(bytes)
            }
            None => None,
        };
        let ram_base =
            address(&raw.ram_base, "ram_base").map_err(|m| error(raw.ram_base.span().start, m))?;
        if ram_base.checked_add(ram_bytes).is_none() {
            return Err(error(
                raw.ram_base.span().start,
                format!("RAM at {ram_base:#x} of {} wraps", Bytes(ram_bytes)),
            ));
        }
        let ram_sizes = parse_ram_sizes(&raw.ram_sizes).map_err(|(at, m)| error(at, m))?;
        let gic = parse_gic(raw.gic.get_ref()).map_err(|(at, m)| error(at, m))?;
        let max_cores = match &raw.cores {
            Some(key) => u32::try_from(*key.get_ref())
                .ok()
                .filter(|n| (1..=MAX_CORES as u32).contains(n))
                .ok_or_else(|| {
                    error(
                        key.span().start,
                        format!("cores must be between 1 and {MAX_CORES}"),
                    )
                })?,
            None => 1,
        };

        let mut devices = Vec::new();
        for (device_name, spanned) in &raw.devices {
            let at = spanned.span().start;
            let device = parse_device(device_name, spanned.get_ref(), &gic)
                .map_err(|(at, m)| error(at, m))?;
            devices.push(Device {
                line: line_of(text, at),
                ..device
            });
        }
        devices.sort_by_key(|d| d.line);
        check_devices(&devices, Range::at(ram_base, ram_bytes))
            .map_err(|(line, m)| ConfigError::new(path, Some(line), m))?;

        Ok(Self {
            name: name.to_owned(),
            dir: dir.to_path_buf(),
            description: raw.description,
            ram_bytes,
            fixed_ram: raw.fixed_ram,
            kernel_ram_bytes,
            ram_base,
            span_bytes: ram_bytes,
            ram_sizes,
            max_cores,
            fixed_cores: raw.fixed_cores,
            cores: if raw.fixed_cores { max_cores } else { 1 },
            linker_script: dir.join(raw.linker_script),
            qemu_binary: raw.qemu.binary,
            qemu_args: raw.qemu.args,
            qemu_dtb: raw.qemu.dtb.map(|source| dir.join(source)),
            gic,
            devices,
        })
    }

    /// RAM the kernel manages: [`Board::ram_bytes`], or the board's `kernel_ram` when it
    /// says the kernel finds less (or, sized by [`Board::with_ram_size`], what it finds on
    /// a board of that size).
    pub fn kernel_ram(&self) -> u64 {
        self.kernel_ram_bytes
            .map_or(self.ram_bytes, |bytes| bytes.min(self.span_bytes))
    }

    /// RAM the partitions' guarantees may add up to: [`Board::kernel_ram`] less
    /// [`KERNEL_RESERVATION`] (a first bound: [`crate::config::memory`] counts the frame
    /// metadata over [`Board::span_bytes`] exactly).
    pub fn partition_ram(&self) -> u64 {
        self.kernel_ram() - KERNEL_RESERVATION
    }

    /// Sizes the board to `bytes` of RAM, one of its [`Board::ram_sizes`]: the kernel then
    /// manages what the firmware describes on such a board. QEMU keeps its fixed `ram`.
    /// `None` if the board does not come in that size.
    pub fn with_ram_size(&mut self, bytes: u64) -> Option<()> {
        let (size, kernel_ram) = *self.ram_sizes.iter().find(|(size, _)| *size == bytes)?;
        self.kernel_ram_bytes = Some(kernel_ram);
        self.span_bytes = size;
        Some(())
    }

    /// The physical RAM range: [`Board::ram_base`], [`Board::ram_bytes`] long.
    pub fn ram(&self) -> Range {
        Range::at(self.ram_base, self.ram_bytes)
    }

    /// The device called `name`.
    pub fn device(&self, name: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.name == name)
    }

    /// Devices the kernel keeps ([`Device::reserved`]).
    pub fn reserved_devices(&self) -> impl Iterator<Item = &Device> {
        self.devices.iter().filter(|d| d.reserved.is_some())
    }

    /// The first DMA-capable device ([`Device::dma`]) whose region overlaps `region`.
    pub fn dma_device_in(&self, region: Range) -> Option<&Device> {
        self.devices
            .iter()
            .find(|d| d.dma && region.overlaps(&Range::at(d.base, d.size)))
    }

    /// Names of the devices a partition may own, in file order.
    pub fn ownable_devices(&self) -> Vec<String> {
        self.devices
            .iter()
            .filter(|d| d.reserved.is_none())
            .map(|d| d.name.clone())
            .collect()
    }

    /// The QEMU command that boots `image` on this board, with `binary` replacing the
    /// board's QEMU binary if given: the board's arguments, `-smp` [`Board::cores`] (unless
    /// the board's cores are fixed), `-m`, `-kernel`.
    pub fn qemu_command(&self, image: &Path, binary: Option<&Path>) -> Command {
        let mut command = match binary {
            Some(binary) => Command::new(binary),
            None => Command::new(&self.qemu_binary),
        };
        // No network card: exo gives partitions no NIC, and `virt`'s default one needs an
        // option ROM (efi-virtio.rom) that a `--no-install-recommends` QEMU lacks.
        command.args(["-nic", "none"]).args(&self.qemu_args);
        if !self.fixed_cores {
            command.arg("-smp").arg(self.cores.to_string());
        }
        command
            .arg("-m")
            .arg(format!("{}M", self.ram_bytes / MIB))
            .arg("-kernel")
            .arg(image);
        command
    }
}

/// A non-negative integer address key, as `u64`.
fn address(key: &Spanned<i64>, what: &str) -> Result<u64, String> {
    u64::try_from(*key.get_ref()).map_err(|_| format!("{what} must not be negative"))
}

/// Checks `[gic]`; an error carries the byte offset at fault.
/// `[ram_sizes]`: board RAM size = RAM the kernel manages on it, both whole MiB, the second
/// no larger than the first.
fn parse_ram_sizes(
    raw: &BTreeMap<String, Spanned<SizeValue>>,
) -> Result<Vec<(u64, u64)>, (usize, String)> {
    let mut sizes = Vec::new();
    for (key, value) in raw {
        let at = value.span().start;
        let size = crate::size::parse(key).map_err(|m| (at, m))?;
        let kernel_ram = value.get_ref().bytes().map_err(|m| (at, m))?;
        if !size.is_multiple_of(MIB)
            || !kernel_ram.is_multiple_of(MIB)
            || kernel_ram <= KERNEL_RESERVATION
            || kernel_ram > size
        {
            return Err((
                at,
                format!(
                    "ram_sizes: the RAM the kernel manages on a {} board must be a whole number \
                     of MiB larger than {} and at most the board's",
                    Bytes(size),
                    Bytes(KERNEL_RESERVATION)
                ),
            ));
        }
        sizes.push((size, kernel_ram));
    }
    sizes.sort_unstable();
    Ok(sizes)
}

fn parse_gic(raw: &RawGic) -> Result<Gic, (usize, String)> {
    let version = match *raw.version.get_ref() {
        2 => 2,
        3 => 3,
        other => {
            return Err((
                raw.version.span().start,
                format!("GIC version {other} is not supported: give 2 or 3"),
            ));
        }
    };
    let max_intid = u32::try_from(*raw.max_intid.get_ref())
        .ok()
        .filter(|n| (FIRST_SPI..=LAST_SPI).contains(n))
        .ok_or_else(|| {
            (
                raw.max_intid.span().start,
                format!(
                    "max_intid of {} must be the last SPI the distributor implements, between \
                     {FIRST_SPI} and {LAST_SPI}",
                    raw.max_intid.get_ref()
                ),
            )
        })?;
    let cpu_interface = match (&raw.cpu_interface, version) {
        (Some(key), 2) => {
            let at = key.span().start;
            let base = address(key, "cpu_interface").map_err(|m| (at, m))?;
            if !base.is_multiple_of(PAGE_SIZE) {
                return Err((at, format!("cpu_interface {base:#x} is not page aligned")));
            }
            Some(base)
        }
        (Some(key), _) => {
            return Err((
                key.span().start,
                "cpu_interface is for GICv2 only: on GICv3 the CPU interface is system \
                 registers"
                    .to_owned(),
            ));
        }
        (None, 2) => {
            return Err((
                raw.version.span().start,
                "a GICv2 needs `cpu_interface`: the GICC frame's address, where partitions \
                 see their virtual CPU interface"
                    .to_owned(),
            ));
        }
        (None, _) => None,
    };
    Ok(Gic {
        version,
        max_intid,
        cpu_interface,
    })
}

/// Checks one `[devices.<name>]` table (its `line` is filled in by the caller); an error
/// carries the byte offset at fault.
fn parse_device(name: &str, raw: &RawDevice, gic: &Gic) -> Result<Device, (usize, String)> {
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let base_at = raw.base.span().start;
    if !valid_name {
        return Err((
            base_at,
            format!("bad device name `{name}`: use A-Z, a-z, 0-9, `-` and `_`"),
        ));
    }
    let base = address(&raw.base, "base").map_err(|m| (base_at, m))?;
    if !base.is_multiple_of(PAGE_SIZE) {
        return Err((
            base_at,
            format!("device `{name}` at {base:#x} is not page aligned (4 KiB)"),
        ));
    }
    let size_at = raw.size.span().start;
    let size = raw.size.get_ref().bytes().map_err(|m| (size_at, m))?;
    if size == 0 || !size.is_multiple_of(PAGE_SIZE) || base.checked_add(size).is_none() {
        return Err((
            size_at,
            format!("device `{name}` has size {size}: give a non-zero multiple of 4 KiB"),
        ));
    }
    let mut interrupts = Vec::new();
    for intid in &raw.interrupts {
        let value = u32::try_from(*intid.get_ref())
            .ok()
            .filter(|n| (FIRST_SPI..=gic.max_intid).contains(n))
            .ok_or_else(|| {
                (
                    intid.span().start,
                    format!(
                        "interrupt {} of device `{name}` is not an SPI of this board \
                         ({FIRST_SPI}..={})",
                        intid.get_ref(),
                        gic.max_intid
                    ),
                )
            })?;
        if interrupts.contains(&value) {
            return Err((
                intid.span().start,
                format!("interrupt {value} is listed twice for device `{name}`"),
            ));
        }
        interrupts.push(value);
    }
    let qemu_serial = match &raw.qemu_serial {
        Some(key) => Some(
            u32::try_from(*key.get_ref())
                .ok()
                .filter(|&n| n >= 1 && raw.reserved.is_none())
                .ok_or_else(|| {
                    (
                        key.span().start,
                        format!(
                            "qemu_serial of `{name}` must be 1 or more (serial 0 is the \
                             kernel's console) and the device not reserved"
                        ),
                    )
                })?,
        ),
        None => None,
    };
    Ok(Device {
        name: name.to_owned(),
        base,
        size,
        interrupts,
        qemu_serial,
        reserved: raw.reserved.clone(),
        dma: raw.dma,
        compatible: raw.compatible.clone(),
        line: 0,
    })
}

/// Checks the devices against each other and RAM; an error carries the line at fault.
fn check_devices(devices: &[Device], ram: Range) -> Result<(), (usize, String)> {
    for (i, device) in devices.iter().enumerate() {
        let region = Range::at(device.base, device.size);
        if region.overlaps(&ram) {
            return Err((
                device.line,
                format!("device `{}` at {region} overlaps RAM at {ram}", device.name),
            ));
        }
        for earlier in &devices[..i] {
            if region.overlaps(&Range::at(earlier.base, earlier.size)) {
                return Err((
                    device.line,
                    format!(
                        "device `{}` at {region} overlaps device `{}` (line {})",
                        device.name, earlier.name, earlier.line
                    ),
                ));
            }
            if let Some(intid) = device
                .interrupts
                .iter()
                .find(|i| earlier.interrupts.contains(i))
            {
                return Err((
                    device.line,
                    format!(
                        "interrupt {intid} of device `{}` is also device `{}`'s (line {})",
                        device.name, earlier.name, earlier.line
                    ),
                ));
            }
            if device.qemu_serial.is_some() && device.qemu_serial == earlier.qemu_serial {
                return Err((
                    device.line,
                    format!(
                        "device `{}` is QEMU serial port {}, as is device `{}` (line {})",
                        device.name,
                        device.qemu_serial.unwrap_or_default(),
                        earlier.name,
                        earlier.line
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_boards_parse() {
        let workspace = Workspace::at(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
        let boards = workspace.boards();
        for name in ["qemu-virt", "qemu-virt-gicv2", "raspi4b"] {
            assert!(
                boards.iter().any(|b| b == name),
                "{name} missing from {boards:?}"
            );
            let board = match Board::load(&workspace, name) {
                Ok(board) => board,
                Err(BoardError::Invalid(e)) => panic!("{e}"),
                Err(BoardError::Unknown) => panic!("{name} unknown"),
            };
            assert!(board.ram_bytes >= 1 << 30);
            assert!(board.linker_script.ends_with("kernel.ld"));
            let command = board.qemu_command(Path::new("x.img"), None);
            let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy()).collect();
            assert_eq!(args[args.len() - 2..], ["-kernel", "x.img"]);
            assert!(
                args.windows(2).any(|w| w == ["-nic", "none"]),
                "{name}: QEMU must start with no NIC (its option ROM may be missing): {args:?}"
            );
        }
    }

    /// A valid board file before its devices: lines 1-9.
    const BOARD: &str = "description = \"x\"\nram = \"1GiB\"\nram_base = 0x4000_0000\n\
                         linker_script = \"k.ld\"\n[gic]\nversion = 3\nmax_intid = 287\n\
                         [qemu]\nbinary = \"q\"\n";

    fn parse(text: &str) -> Result<Board, ConfigError> {
        Board::parse(
            "x",
            Path::new("platform/x"),
            Path::new("platform/x/board.toml"),
            text,
        )
    }

    /// Expects `text` refused on `line` with `phrase` in the message.
    fn refused(text: &str, line: usize, phrase: &str) {
        let e = parse(text).expect_err("accepted a bad board");
        assert_eq!(e.line, Some(line), "wrong line: {e}");
        assert!(e.message.contains(phrase), "`{phrase}` not in: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("platform/x/board.toml:{line}: "))
        );
    }

    #[test]
    fn board_errors_name_the_line() {
        refused(&BOARD.replace("[qemu]", "speed = 3\n[qemu]"), 8, "speed");
        refused(&BOARD.replace("\"1GiB\"", "\"8MiB\""), 2, "larger than");
        refused(
            &BOARD.replace("ram_base = 0x4000_0000\n", ""),
            1,
            "missing field `ram_base`",
        );
        // `[ram_sizes]` is line 11: the kernel cannot manage more than the board has.
        let sizes = |entries: &str| format!("{BOARD}[ram_sizes]\n{entries}");
        refused(
            &sizes("\"1GiB\" = \"948MiB\"\n\"2GiB\" = \"3GiB\"\n"),
            12,
            "the RAM the kernel manages on a 2 GiB board",
        );
        refused(&sizes("\"lots\" = \"1GiB\"\n"), 11, "lots");
        let board = parse(&sizes("\"8GiB\" = \"8052MiB\"\n\"1GiB\" = \"948MiB\"\n")).unwrap();
        assert_eq!(
            board.ram_sizes,
            [(1 << 30, 948 << 20), (8 << 30, 8052 << 20)]
        );
        for cores in ["0", "9", "-1"] {
            let text = BOARD.replace("[gic]", &format!("cores = {cores}\n[gic]"));
            refused(&text, 5, "cores must be between 1 and 8");
        }
        let eight = parse(&BOARD.replace("[gic]", "cores = 8\n[gic]")).unwrap();
        assert_eq!(
            (eight.max_cores, eight.cores, eight.fixed_cores),
            (8, 1, false)
        );
    }

    #[test]
    fn the_shipped_boards_declare_their_devices() {
        let workspace = Workspace::at(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
        let load = |name: &str| match Board::load(&workspace, name) {
            Ok(board) => board,
            Err(BoardError::Invalid(e)) => panic!("{e}"),
            Err(BoardError::Unknown) => panic!("{name} unknown"),
        };
        for name in ["qemu-virt", "qemu-virt-gicv2"] {
            let board = load(name);
            assert_eq!(board.ram(), Range::at(0x4000_0000, 1 << 30));
            assert_eq!(board.gic.max_intid, 287);
            let uart0 = board.device("uart0").unwrap();
            assert_eq!((uart0.base, uart0.size), (0x0900_0000, 0x1000));
            assert_eq!(uart0.interrupts, [33]);
            assert!(uart0.reserved.is_some());
            let uart1 = board.device("uart1").unwrap();
            assert_eq!((uart1.base, uart1.size), (0x0904_0000, 0x1000));
            assert_eq!(
                (uart1.interrupts.as_slice(), uart1.qemu_serial),
                (&[40][..], Some(1))
            );
            assert_eq!(board.ownable_devices(), ["uart1"]);
            assert!(board.device("gicd").is_some_and(|d| d.reserved.is_some()));
        }
        let v3 = load("qemu-virt");
        assert_eq!((v3.gic.version, v3.gic.cpu_interface), (3, None));
        let gicr = v3.device("gicr").unwrap();
        assert_eq!((gicr.base, gicr.reserved.is_some()), (0x080A_0000, true));
        let v2 = load("qemu-virt-gicv2");
        assert_eq!(
            (v2.gic.version, v2.gic.cpu_interface),
            (2, Some(0x0801_0000))
        );
        for (frame, base) in [
            ("gicc", 0x0801_0000),
            ("gich", 0x0803_0000),
            ("gicv", 0x0804_0000),
        ] {
            let device = v2.device(frame).unwrap();
            assert_eq!((device.base, device.size), (base, 0x1_0000), "{frame}");
            assert!(device.reserved.is_some());
        }
        let pi = load("raspi4b");
        assert_eq!(pi.ram(), Range::at(0, 2 << 30));
        assert_eq!(
            (pi.gic.version, pi.gic.cpu_interface),
            (2, Some(0xFF84_2000))
        );
        assert_eq!(pi.device("uart0").unwrap().interrupts, [153]);
        // Every device a partition may own on the Pi masters the bus; the consoles do not.
        assert_eq!(
            pi.ownable_devices(),
            [
                "dma", "dma15", "emmc2", "emmc", "usb", "pcie", "genet", "hvs", "v3d"
            ]
        );
        assert!(pi.devices.iter().all(|d| d.dma == d.reserved.is_none()));
        let emmc2 = pi.device("emmc2").unwrap();
        assert_eq!(
            (emmc2.base, emmc2.interrupts.as_slice()),
            (0xFE34_0000, &[158][..])
        );
        assert_eq!(
            pi.dma_device_in(Range::at(0xFE00_7000, 0x1000))
                .map(|d| d.name.as_str()),
            Some("dma")
        );
        assert!(pi.dma_device_in(Range::at(0xFE20_1000, 0x1000)).is_none());
    }

    #[test]
    fn devices_parse_in_file_order() {
        let text = format!(
            "{BOARD}[devices.zeta]\nbase = 0x1000\nsize = 4096\ndma = true\n\
             [devices.alpha]\nbase = 0x2000\nsize = \"8KiB\"\ninterrupts = [32, 287]\n\
             reserved = \"a test\"\n"
        );
        let board = parse(&text).unwrap();
        let names: Vec<_> = board.devices.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["zeta", "alpha"]);
        assert_eq!(board.devices[0].line, 10);
        assert_eq!(board.devices[1].interrupts, [32, 287]);
        assert_eq!((board.devices[0].dma, board.devices[1].dma), (true, false));
        assert_eq!(board.ownable_devices(), ["zeta"]);
        assert_eq!(board.reserved_devices().count(), 1);
    }

    #[test]
    fn bad_gic() {
        refused(
            &BOARD.replace("version = 3", "version = 4"),
            6,
            "GIC version 4",
        );
        refused(&BOARD.replace("287", "1020"), 7, "between 32 and 1019");
        refused(&BOARD.replace("287", "31"), 7, "max_intid of 31");
        refused(
            &BOARD.replace("version = 3", "version = 2"),
            6,
            "a GICv2 needs `cpu_interface`",
        );
        refused(
            &BOARD.replace(
                "max_intid = 287",
                "max_intid = 287\ncpu_interface = 0x0801_0000",
            ),
            8,
            "for GICv2 only",
        );
        refused(
            &BOARD.replace(
                "version = 3\nmax_intid = 287",
                "version = 2\nmax_intid = 287\ncpu_interface = 0x0801_0800",
            ),
            8,
            "not page aligned",
        );
    }

    #[test]
    fn bad_devices() {
        let device = |body: &str| format!("{BOARD}[devices.d]\n{body}\n");
        refused(
            &device("base = 0x1800\nsize = 4096"),
            11,
            "not page aligned",
        );
        refused(
            &device("base = 0x1000\nsize = 0"),
            12,
            "non-zero multiple of 4 KiB",
        );
        refused(
            &device("base = 0x1000\nsize = 100"),
            12,
            "non-zero multiple",
        );
        refused(
            &device("base = -4096\nsize = 4096"),
            11,
            "must not be negative",
        );
        refused(
            &device("base = 0x1000\nsize = 4096\ninterrupts = [27]"),
            13,
            "not an SPI of this board (32..=287)",
        );
        refused(
            &device("base = 0x1000\nsize = 4096\ninterrupts = [288]"),
            13,
            "interrupt 288",
        );
        refused(
            &device("base = 0x1000\nsize = 4096\ninterrupts = [40, 40]"),
            13,
            "listed twice",
        );
        refused(
            &device("base = 0x3FFF_F000\nsize = \"8KiB\""),
            10,
            "overlaps RAM at 0x40000000..0x80000000",
        );
        refused(
            &device("base = 0x1000\nsize = 4096\nqemu_serial = 0"),
            13,
            "must be 1 or more",
        );
        refused(
            &device("base = 0x1000\nsize = 4096\nqemu_serial = 1\nreserved = \"x\""),
            13,
            "not reserved",
        );
        refused(
            &device("base = 0x1000\nsize = 4096\nirq = 3"),
            13,
            "unknown field `irq`",
        );
        let two = |second: &str| {
            format!(
                "{BOARD}[devices.a]\nbase = 0x1000\nsize = \"8KiB\"\ninterrupts = [40]\n\
                 qemu_serial = 1\n[devices.b]\n{second}\n"
            )
        };
        refused(
            &two("base = 0x2000\nsize = 4096"),
            15,
            "device `b` at 0x2000..0x3000 overlaps device `a` (line 10)",
        );
        refused(
            &two("base = 0x8000\nsize = 4096\ninterrupts = [40]"),
            15,
            "interrupt 40 of device `b` is also device `a`'s (line 10)",
        );
        refused(
            &two("base = 0x8000\nsize = 4096\nqemu_serial = 1"),
            15,
            "QEMU serial port 1, as is device `a`",
        );
    }
}
