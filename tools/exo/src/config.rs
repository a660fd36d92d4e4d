//! System configurations: which board, which partitions, which program, how much memory,
//! which interrupts and devices each gets, which core each runs on and each core's time
//! slices. Checked here, on the host, before anything is built or booted.
//!
//! ```toml
//! [system]
//! board = "qemu-virt"   # optional; a directory under platform/
//! memory = "512MiB"     # optional; overrides the board's RAM (>= 64 MiB, whole MiB)
//! schedule = ["hello", "hello", "pong"]  # optional; core 0's time-slice vector, below;
//!                       # or per core: [system.schedule] with 0 = ["hello"], 1 = ["pong"]
//! poison_free_ram = true  # optional (default false), for tests: free RAM filled with 0xA5
//!                         # at boot, so a frame handed out unscrubbed shows
//! slice = "10ms"        # optional (default 10ms); one time slice, 100us..=1s
//! cores = 4             # optional (default 1, or all of a board with fixed cores): cores
//!                       # QEMU starts, up to the board's `cores`
//! revocation_share = "proportional"  # optional; or "largest-first", "partition-order":
//!                       # how a claim is shared among borrowers (see docs/configuration.md)
//!
//! [[partition]]
//! name = "hello"        # 1..=32 bytes of [A-Za-z0-9_-], unique
//! program = "hello"     # guests/src/bin/<program>.rs, or a path to an ELF file
//! memory = "2MiB"       # bytes, or <n>KiB/MiB/GiB; a non-zero multiple of 4 KiB
//! guarantee = "4MiB"    # optional (default: memory); never revoked; >= memory
//! borrow = "8MiB"       # optional (default 0); revocable, beyond the guarantee
//! revocation_deadline = "10ms"  # optional (default 10ms); <n>us/ms/s, 1us..=10s
//! max_aborts = 3        # optional (default 3); 0..=1000
//! talks_to = ["pong"]   # optional (default []); partitions it may EXO_CALL or EXO_SEND
//! capabilities = ["self-check"]  # optional (default []); see CAPABILITIES
//! interrupts = [48, 49] # optional (default []); SPIs it owns, 32..=<board max_intid>
//! devices = ["uart1"]   # optional (default []); board devices it owns, with their
//!                       # interrupts, or regions: { base = 0x0904_0000, size = "4KiB",
//!                       # ipa = 0x0904_0000 } (ipa optional, default base)
//! trusted_dma = true    # optional (default false); it may own DMA-capable devices,
//!                       # and so read and write all RAM (see below)
//! cores = [1]           # optional (default [0]); the core it runs on, below
//!                       # `[system] cores` (one core: several vCPUs are not supported yet)
//! ```
//!
//! A program containing `/` or ending in `.elf` is a path relative to the configuration
//! file's directory. A partition naming a `kernel` (with `initrd`, `bootargs`) instead of a
//! `program` runs an unmodified arm64 Linux kernel: see [`linux`] for its rules. Every
//! refusal is one [`ConfigError`] naming the file and the line.
//!
//! **Interrupts and devices.** An interrupt (an SPI) and a device have one owner. SGIs
//! (0-15) and PPIs (16-31) are never a partition's, nor are the interrupts and regions of
//! the board's devices marked `reserved` (the kernel's console UART, the GIC frames; see
//! [`crate::board`]). A device named in `devices` brings its MMIO region, seen at the same
//! IPA, and its interrupts; a region given by address brings none. Regions are page
//! aligned, outside RAM, apart from every other partition's, and seen below the kernel's
//! IPA window (`0x3FFF_0000`), apart from each other and, on GICv2, from the GIC CPU
//! interface the partition sees at the board's `cpu_interface`. At most 64 interrupts and
//! 16 regions per partition.
//!
//! **DMA.** A board device marked `dma = true` reads and writes physical memory itself,
//! and without an IOMMU (the Raspberry Pi 4 has none) stage 2 does not stand in its way: a
//! partition programming it can read and write all RAM, the kernel's included. A partition
//! owning one, by name or by a region overlapping it, is refused unless it says
//! `trusted_dma = true`, which puts it inside the trusted computing base.
//!
//! **Cores and time slices.** Each core has its own time-slice vector. `schedule` lists
//! partition names, one per slot (at most 256): a plain list is core 0's, a
//! `[system.schedule]` table gives one list per core number. A vector names only partitions
//! pinned to its core, and each of them at least once. A core left out gives each partition
//! pinned there one slot, in order.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use exo_abi::package::{MAX_PARTITIONS, PartitionFlags};
use exo_abi::{Name, PAGE_SIZE};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_spanned::Spanned;

use crate::board::{Board, BoardError, KERNEL_RESERVATION};
use cores::ScheduleKey;
pub use linux::LinuxProgram;
pub use resources::OwnedDevice;
use resources::{Claimant, Claims, DeviceList, IntidList};

mod cores;
mod linux;
pub mod memory;
mod resources;
mod system;
use crate::duration::display_us;
use crate::size::{Bytes, MIB};
use crate::workspace::Workspace;

/// The board a configuration without `[system] board` runs on.
pub const DEFAULT_BOARD: &str = "qemu-virt";
/// Smallest RAM `[system] memory` may give.
pub const MIN_SYSTEM_MEMORY: u64 = 64 * MIB;
/// Revocation deadline of a partition without `revocation_deadline`, in microseconds.
pub const DEFAULT_REVOCATION_DEADLINE_US: u64 = 10_000;
/// Shortest `revocation_deadline`, in microseconds.
pub const MIN_REVOCATION_DEADLINE_US: u64 = 1;
/// Longest `revocation_deadline`, in microseconds (10 s).
pub const MAX_REVOCATION_DEADLINE_US: u64 = 10_000_000;
/// Aborts a partition without `max_aborts` may suffer before it is terminated.
pub const DEFAULT_MAX_ABORTS: u32 = 3;
/// Largest `max_aborts`.
pub const MAX_MAX_ABORTS: u32 = 1000;

/// A refused configuration (or board file): where, and why.
///
/// Displays as `<path>:<line>: <message>`; the `exo` binary prefixes `error: `.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file at fault, as it was named.
    pub path: PathBuf,
    /// The 1-based line at fault, when there is one.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// Builds an error.
    pub fn new(path: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    /// Converts a TOML syntax or schema error, mapping its byte span to a line.
    pub fn from_toml(path: &Path, text: &str, error: &toml::de::Error) -> Self {
        let line = error.span().map(|span| line_of(text, span.start));
        Self::new(path, line, error.message().trim_end().replace('\n', "; "))
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The 1-based line holding byte `offset` of `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A checked system configuration.
#[derive(Clone, Debug)]
pub struct System {
    /// The configuration file, as it was named.
    pub path: PathBuf,
    /// The board it runs on. Its [`Board::ram_bytes`] is the RAM the system gets: the
    /// board file's, unless `[system] memory` overrides it (see [`System::memory_override`]).
    pub board: Board,
    /// `[system] memory`, when given (it is then also in `board.ram_bytes`, unless the board's
    /// RAM is fixed: then it picks one of `board.ram_sizes`, and QEMU keeps the fixed size).
    pub memory_override: Option<u64>,
    /// The partitions, in configuration order (which is partition-id order).
    pub partitions: Vec<Partition>,
    /// Each core's time-slice vector (one per core the system starts), one partition index
    /// per slot; empty for one slot per partition pinned to that core, in order.
    pub schedules: Vec<Vec<u8>>,
    /// `[system] poison_free_ram`: the kernel fills every free frame with
    /// [`exo_abi::package::POISON_BYTE`] at boot (test configurations).
    pub poison_free_ram: bool,
    /// `[system] slice`: one time slice, in microseconds.
    pub slice_us: u64,
    /// `[system] revocation_share`: how a claim is shared among borrowers.
    pub revocation_share: exo_abi::package::RevocationShare,
}

/// A QEMU serial port a partition's device needs (see [`crate::qemu`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialUse {
    /// QEMU's serial port number (1 for the second `-serial`).
    pub port: u32,
    /// The board device.
    pub device: String,
    /// The partition owning it.
    pub partition: String,
}

/// One checked partition.
#[derive(Clone, Debug)]
pub struct Partition {
    /// Its name (valid for [`Name`]).
    pub name: String,
    /// The program it runs.
    pub program: Program,
    /// Its memory quota in bytes, bound at boot: non-zero, a multiple of [`PAGE_SIZE`].
    pub memory_bytes: u64,
    /// Bytes it may hold that are never revoked: at least `memory_bytes`, a multiple of
    /// [`PAGE_SIZE`].
    pub guarantee_bytes: u64,
    /// Bytes it may hold beyond its guarantee (revocable): a multiple of [`PAGE_SIZE`].
    pub borrow_bytes: u64,
    /// How long it has to answer a revocation request, in microseconds.
    pub revocation_deadline_us: u64,
    /// Aborts it may suffer before it is terminated.
    pub max_aborts: u32,
    /// Partitions it may call or send to: bit `i` for the `i`-th partition (its id).
    pub talks_to: u64,
    /// What it may do beyond its own resources (`capabilities`).
    pub flags: PartitionFlags,
    /// SPIs (INTIDs) it owns: its devices' first, then its `interrupts`, in order.
    pub interrupts: Vec<u32>,
    /// Device regions it owns, in order.
    pub devices: Vec<OwnedDevice>,
    /// It may own DMA-capable devices (`trusted_dma`): it can read and write all RAM.
    pub trusted_dma: bool,
    /// The core it runs on (`cores`), below the system's core count.
    pub core: u32,
    /// Line of its `[[partition]]` header.
    pub line: usize,
    /// Line of its `memory` key.
    pub memory_line: usize,
}

impl System {
    /// One line per partition: what it runs and every resource the configuration binds
    /// to it (what `exo check` prints).
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let names: Vec<&str> = self.partitions.iter().map(|p| p.name.as_str()).collect();
        for (id, p) in self.partitions.iter().enumerate() {
            let mut line = format!(
                "  {id} {}: program {}, memory {}, guarantee {}",
                p.name,
                p.program.display_name(),
                Bytes(p.memory_bytes),
                Bytes(p.guarantee_bytes)
            );
            if let Program::Linux(linux) = &p.program {
                line += &linux.summary();
            }
            if p.borrow_bytes > 0 {
                line += &format!(
                    ", borrow {} (deadline {})",
                    Bytes(p.borrow_bytes),
                    display_us(p.revocation_deadline_us)
                );
            }
            if !p.interrupts.is_empty() {
                let spis: Vec<String> = p.interrupts.iter().map(u32::to_string).collect();
                line += &format!(", SPIs {}", spis.join(" "));
            }
            for d in &p.devices {
                let name = d.name.as_deref().unwrap_or("region");
                line += &format!(
                    ", {name} {:#x}+{} at IPA {:#x}",
                    d.region.phys.raw(),
                    Bytes(d.region.size),
                    d.region.ipa.raw()
                );
            }
            if p.trusted_dma {
                line += ", trusted with DMA (can reach all RAM)";
            }
            let peers: Vec<&str> = (0..names.len())
                .filter(|&i| p.talks_to & (1 << i) != 0)
                .map(|i| names[i])
                .collect();
            if !peers.is_empty() {
                line += &format!(", talks to {}", peers.join(" "));
            }
            if self.board.cores > 1 {
                line += &format!(", core {}", p.core);
            }
            let vector = &self.schedules[p.core as usize];
            if !vector.is_empty() {
                let slots = vector.iter().filter(|&&s| usize::from(s) == id).count();
                line += &format!(", {slots}/{} slots", vector.len());
            }
            out += &line;
            out.push('\n');
        }
        let cores = match self.board.cores {
            1 => "1 core".to_owned(),
            n => format!("{n} cores"),
        };
        out += &format!(
            "  {cores}; time slices of {}; revocation requests shared {}\n",
            display_us(self.slice_us),
            self.revocation_share.name()
        );
        out
    }
}

/// Where a partition's program comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program {
    /// A binary of the `exo-guests` package, cross-built by `exo build`.
    Guest(String),
    /// A prebuilt ELF file (absolute, or relative to the current directory).
    Elf(PathBuf),
    /// An unmodified arm64 Linux kernel, with its initramfs and command line.
    Linux(Box<LinuxProgram>),
}

impl Program {
    /// How the configuration names the program, for messages.
    pub fn display_name(&self) -> String {
        match self {
            Program::Guest(name) => name.clone(),
            Program::Elf(path) => path.display().to_string(),
            Program::Linux(linux) => format!("Linux kernel {}", linux.kernel.display()),
        }
    }
}

impl System {
    /// The configuration's file stem, which names its image.
    pub fn stem(&self) -> String {
        self.path
            .file_stem()
            .map_or_else(|| "system".to_owned(), |s| s.to_string_lossy().into_owned())
    }

    /// An error about this configuration at `line`.
    pub fn error_at(&self, line: usize, message: impl Into<String>) -> ConfigError {
        ConfigError::new(&self.path, Some(line), message)
    }

    /// The QEMU serial ports the partitions' devices are, by port.
    pub fn qemu_serials(&self) -> Vec<SerialUse> {
        let mut uses: Vec<SerialUse> = self
            .partitions
            .iter()
            .flat_map(|p| {
                p.devices.iter().filter_map(|d| {
                    Some(SerialUse {
                        port: d.qemu_serial?,
                        device: d.name.clone()?,
                        partition: p.name.clone(),
                    })
                })
            })
            .collect();
        uses.sort_by_key(|u| u.port);
        uses
    }

    /// The guest programs (bin names) the partitions need, deduplicated.
    pub fn guest_programs(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .partitions
            .iter()
            .filter_map(|p| match &p.program {
                Program::Guest(name) => Some(name.as_str()),
                Program::Elf(_) | Program::Linux(_) => None,
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// A memory size as written: an integer or a string such as `"2MiB"`.
#[derive(Clone, Debug)]
pub enum SizeValue {
    /// An integer byte count (possibly negative, refused when converted).
    Integer(i64),
    /// A string for [`crate::size::parse`].
    Text(String),
}

impl SizeValue {
    /// The size in bytes, or a message saying why it is not one.
    pub fn bytes(&self) -> Result<u64, String> {
        match self {
            SizeValue::Integer(n) => {
                u64::try_from(*n).map_err(|_| format!("memory size {n} is negative"))
            }
            SizeValue::Text(text) => crate::size::parse(text),
        }
    }
}

impl<'de> Deserialize<'de> for SizeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = SizeValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count or a string such as \"2MiB\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SizeValue, E> {
                Ok(SizeValue::Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SizeValue, E> {
                i64::try_from(v)
                    .map(SizeValue::Integer)
                    .map_err(|_| E::custom("memory size is too large"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SizeValue, E> {
                Ok(SizeValue::Text(v.to_owned()))
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    system: Option<RawSystem>,
    #[serde(default)]
    partition: Vec<Spanned<RawPartition>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    board: Option<Spanned<String>>,
    memory: Option<Spanned<SizeValue>>,
    schedule: Option<Spanned<ScheduleKey>>,
    poison_free_ram: Option<bool>,
    slice: Option<Spanned<String>>,
    revocation_share: Option<Spanned<String>>,
    cores: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartition {
    name: Spanned<String>,
    program: Option<Spanned<String>>,
    kernel: Option<Spanned<String>>,
    initrd: Option<Spanned<String>>,
    bootargs: Option<Spanned<String>>,
    memory: Spanned<SizeValue>,
    guarantee: Option<Spanned<SizeValue>>,
    borrow: Option<Spanned<SizeValue>>,
    revocation_deadline: Option<Spanned<String>>,
    max_aborts: Option<Spanned<i64>>,
    talks_to: Option<Vec<Spanned<String>>>,
    capabilities: Option<Vec<Spanned<String>>>,
    interrupts: Option<IntidList>,
    devices: Option<DeviceList>,
    trusted_dma: Option<bool>,
    cores: Option<Spanned<Vec<Spanned<i64>>>>,
}

/// The names `capabilities` accepts, with the flag each grants and what it allows.
pub const CAPABILITIES: [(&str, PartitionFlags, &str); 1] = [(
    "self-check",
    PartitionFlags::SELF_CHECK,
    "may call EXO_SELF_CHECK (a scan of every frame and stage 2 with interrupts masked)",
)];

/// Checks `capabilities`; an error carries the byte offset at fault.
fn capabilities(names: Option<&[Spanned<String>]>) -> Result<PartitionFlags, (usize, String)> {
    let mut flags = PartitionFlags::empty();
    for name in names.unwrap_or_default() {
        let Some((_, flag, _)) = CAPABILITIES.iter().find(|c| c.0 == name.get_ref()) else {
            let known: Vec<&str> = CAPABILITIES.iter().map(|c| c.0).collect();
            return Err((
                name.span().start,
                format!(
                    "unknown capability `{}`; known: {}",
                    name.get_ref(),
                    known.join(", ")
                ),
            ));
        };
        flags |= *flag;
    }
    Ok(flags)
}

/// Reads and checks a configuration file. `board_override` replaces `[system] board`.
pub fn load(
    workspace: &Workspace,
    path: &Path,
    board_override: Option<&str>,
) -> Result<System, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, None, format!("cannot read the configuration: {e}")))?;
    parse(workspace, path, &text, board_override)
}

/// Checks configuration `text`, read from `path` (relative programs resolve against its
/// directory).
pub fn parse(
    workspace: &Workspace,
    path: &Path,
    text: &str,
    board_override: Option<&str>,
) -> Result<System, ConfigError> {
    let error = |offset: usize, message: String| {
        ConfigError::new(path, Some(line_of(text, offset)), message)
    };
    let mut raw: RawConfig =
        toml::from_str(text).map_err(|e| ConfigError::from_toml(path, text, &e))?;

    let cores_key = raw.system.as_mut().and_then(|system| system.cores.take());
    let (board_key, memory_key, schedule_key, poison_free_ram, slice_key, share_key) =
        match raw.system {
            Some(system) => (
                system.board,
                system.memory,
                system.schedule,
                system.poison_free_ram.unwrap_or(false),
                system.slice,
                system.revocation_share,
            ),
            None => (None, None, None, false, None, None),
        };
    let slice_us = system::slice_us(slice_key.as_ref()).map_err(|(at, m)| error(at, m))?;
    let revocation_share =
        system::revocation_share(share_key.as_ref()).map_err(|(at, m)| error(at, m))?;
    let (board_name, board_line) = match (board_override, &board_key) {
        (Some(name), _) => (name.to_owned(), None),
        (None, Some(key)) => (key.get_ref().clone(), Some(line_of(text, key.span().start))),
        (None, None) => (DEFAULT_BOARD.to_owned(), None),
    };
    let mut board = match Board::load(workspace, &board_name) {
        Ok(board) => board,
        Err(BoardError::Invalid(e)) => return Err(e),
        Err(BoardError::Unknown) => {
            let source = if board_override.is_some() {
                " (given with --board)"
            } else {
                ""
            };
            return Err(ConfigError::new(
                path,
                board_line.or(Some(1)).filter(|_| board_override.is_none()),
                format!(
                    "unknown board `{board_name}`{source}: available boards are {} \
                     (directories under platform/ with a board.toml)",
                    list(&workspace.boards())
                ),
            ));
        }
    };

    board.cores = system::cores(cores_key.as_ref(), &board).map_err(|(at, m)| error(at, m))?;
    let memory_override = match &memory_key {
        Some(key) => {
            let at = key.span().start;
            let bytes = key.get_ref().bytes().map_err(|m| error(at, m))?;
            if board.fixed_ram && !board.ram_sizes.is_empty() {
                board.with_ram_size(bytes).ok_or_else(|| {
                    let sizes: Vec<String> = board
                        .ram_sizes
                        .iter()
                        .map(|(size, _)| Bytes(*size).to_string())
                        .collect();
                    error(
                        at,
                        format!(
                            "board `{}` comes with {} of RAM, not {}",
                            board.name,
                            sizes.join(", "),
                            Bytes(bytes)
                        ),
                    )
                })?;
            } else if board.fixed_ram && bytes != board.ram_bytes {
                return Err(error(
                    at,
                    format!(
                        "board `{}` has a fixed {} of RAM; `memory` cannot change it",
                        board.name,
                        Bytes(board.ram_bytes)
                    ),
                ));
            }
            if bytes < MIN_SYSTEM_MEMORY || !bytes.is_multiple_of(MIB) {
                return Err(error(
                    at,
                    format!(
                        "system memory of {} must be at least {} and a whole number of MiB",
                        Bytes(bytes),
                        Bytes(MIN_SYSTEM_MEMORY)
                    ),
                ));
            }
            if !board.fixed_ram {
                board.ram_bytes = bytes;
                board.span_bytes = bytes;
            }
            Some(bytes)
        }
        None => None,
    };
    // Who gives the kernel its RAM, for messages: "board `x`" or "`[system] memory`".
    let giver = if memory_override.is_some() {
        "`[system] memory`".to_owned()
    } else {
        format!("board `{}`", board.name)
    };
    let ram_source = format!("{giver} gives the kernel");
    let kernel_ram = board.kernel_ram();

    if raw.partition.is_empty() {
        return Err(ConfigError::new(
            path,
            Some(1),
            "no partitions: add at least one [[partition]] table",
        ));
    }
    if let Some(extra) = raw.partition.get(MAX_PARTITIONS) {
        return Err(error(
            extra.span().start,
            format!(
                "too many partitions: {} given, at most {MAX_PARTITIONS} are supported",
                raw.partition.len()
            ),
        ));
    }

    let config_dir = path.parent().unwrap_or(Path::new(""));
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut partitions = Vec::new();
    let mut total = 0u64;
    let mut fit = memory::Fit::default();
    let mut claims = Claims::default();
    for spanned in &raw.partition {
        let line = line_of(text, spanned.span().start);
        let raw = spanned.get_ref();

        let name = raw.name.get_ref();
        let valid = !name.is_empty()
            && name.len() <= Name::LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(error(
                raw.name.span().start,
                format!(
                    "bad partition name `{name}`: use 1 to {} characters from A-Z, a-z, 0-9, \
                     `-` and `_`",
                    Name::LEN
                ),
            ));
        }
        let name_line = line_of(text, raw.name.span().start);
        if let Some(first) = first_line.insert(name.clone(), name_line) {
            return Err(error(
                raw.name.span().start,
                format!("duplicate partition name `{name}` (first used on line {first})"),
            ));
        }

        let program = match (&raw.program, &raw.kernel) {
            (_, Some(_)) => None,
            (Some(program), None) => {
                linux::refuse_linux_keys_without_kernel(raw).map_err(|(at, m)| error(at, m))?;
                Some(
                    library_os_program(workspace, config_dir, program)
                        .map_err(|(at, m)| error(at, m))?,
                )
            }
            (None, None) => {
                return Err(error(
                    spanned.span().start,
                    format!(
                        "partition `{name}` runs nothing: give it a `program` (a library-OS \
                         program) or a `kernel` (an arm64 Linux kernel)"
                    ),
                ));
            }
        };

        let memory_at = raw.memory.span().start;
        let memory_bytes = raw
            .memory
            .get_ref()
            .bytes()
            .map_err(|m| error(memory_at, m))?;
        if memory_bytes == 0 {
            return Err(error(memory_at, "memory quota must not be zero".to_owned()));
        }
        if !memory_bytes.is_multiple_of(PAGE_SIZE) {
            return Err(error(
                memory_at,
                format!("memory quota of {memory_bytes} bytes is not a multiple of 4 KiB"),
            ));
        }
        if memory_bytes > kernel_ram {
            return Err(error(
                memory_at,
                format!(
                    "memory quota of {} for `{name}` is larger than the {} of RAM {ram_source}",
                    Bytes(memory_bytes),
                    Bytes(kernel_ram),
                ),
            ));
        }

        let (guarantee_bytes, guarantee_at) = match &raw.guarantee {
            Some(key) => {
                let at = key.span().start;
                let bytes = page_multiple(key.get_ref(), "guarantee").map_err(|m| error(at, m))?;
                if bytes < memory_bytes {
                    return Err(error(
                        at,
                        format!(
                            "guarantee of {} for `{name}` is smaller than its memory quota of {} \
                             (the quota is part of the guarantee)",
                            Bytes(bytes),
                            Bytes(memory_bytes)
                        ),
                    ));
                }
                (bytes, at)
            }
            None => (memory_bytes, memory_at),
        };

        let borrow_bytes = match &raw.borrow {
            Some(key) => {
                let at = key.span().start;
                let bytes = page_multiple(key.get_ref(), "borrow").map_err(|m| error(at, m))?;
                if guarantee_bytes
                    .checked_add(bytes)
                    .is_none_or(|sum| sum > kernel_ram)
                {
                    return Err(error(
                        at,
                        format!(
                            "guarantee of {} plus borrow of {} for `{name}` is more than the {} \
                             of RAM {ram_source}",
                            Bytes(guarantee_bytes),
                            Bytes(bytes),
                            Bytes(kernel_ram),
                        ),
                    ));
                }
                bytes
            }
            None => 0,
        };

        let revocation_deadline_us = match &raw.revocation_deadline {
            Some(key) => {
                let at = key.span().start;
                let us = crate::duration::parse_us(key.get_ref()).map_err(|m| error(at, m))?;
                if !(MIN_REVOCATION_DEADLINE_US..=MAX_REVOCATION_DEADLINE_US).contains(&us) {
                    return Err(error(
                        at,
                        format!(
                            "revocation deadline of {} must be between {} and {}",
                            display_us(us),
                            display_us(MIN_REVOCATION_DEADLINE_US),
                            display_us(MAX_REVOCATION_DEADLINE_US)
                        ),
                    ));
                }
                us
            }
            None => DEFAULT_REVOCATION_DEADLINE_US,
        };

        let max_aborts = match &raw.max_aborts {
            Some(key) => u32::try_from(*key.get_ref())
                .ok()
                .filter(|n| *n <= MAX_MAX_ABORTS)
                .ok_or_else(|| {
                    error(
                        key.span().start,
                        format!(
                            "max_aborts of {} must be between 0 and {MAX_MAX_ABORTS}",
                            key.get_ref()
                        ),
                    )
                })?,
            None => DEFAULT_MAX_ABORTS,
        };

        total += guarantee_bytes;
        if total > board.partition_ram() {
            return Err(error(
                guarantee_at,
                format!(
                    "partitions need {} but {ram_source} {}, of which {} are for partitions \
                     ({} are the kernel's): partition `{name}` brings the guarantees to {}",
                    Bytes(total),
                    Bytes(kernel_ram),
                    Bytes(board.partition_ram()),
                    Bytes(KERNEL_RESERVATION),
                    Bytes(total),
                ),
            ));
        }
        fit.add(&board, &giver, name, guarantee_bytes, borrow_bytes)
            .map_err(|m| error(guarantee_at, m))?;

        let trusted_dma = raw.trusted_dma.unwrap_or(false);
        let claimant = Claimant {
            name,
            board: &board,
            text,
            trusted_dma,
        };
        let resources = resources::claim(
            &mut claims,
            &claimant,
            raw.devices.as_ref(),
            raw.interrupts.as_ref(),
        )
        .map_err(|(at, m)| error(at, m))?;

        let program = match (program, &raw.kernel) {
            (Some(program), _) => program,
            (None, Some(kernel)) => {
                let context = linux::Context {
                    name,
                    config_dir,
                    board: &board,
                    memory_bytes,
                    at: spanned.span().start,
                    devices: &resources.devices,
                };
                Program::Linux(Box::new(
                    linux::check(raw, kernel, &context).map_err(|(at, m)| error(at, m))?,
                ))
            }
            (None, None) => unreachable!("a partition without program or kernel is refused above"),
        };

        partitions.push(Partition {
            name: name.clone(),
            program,
            memory_bytes,
            guarantee_bytes,
            borrow_bytes,
            revocation_deadline_us,
            max_aborts,
            talks_to: 0,
            flags: capabilities(raw.capabilities.as_deref()).map_err(|(at, m)| error(at, m))?,
            interrupts: resources.interrupts,
            devices: resources.devices,
            trusted_dma,
            core: cores::partition_core(raw.cores.as_ref(), name, board.cores)
                .map_err(|(at, m)| error(at, m))?,
            line,
            memory_line: line_of(text, memory_at),
        });
    }

    // Names may refer to partitions further down, so `talks_to` is resolved once all are
    // known. A partition's id is its index in configuration order.
    let names: Vec<String> = partitions.iter().map(|p| p.name.clone()).collect();
    for (partition, spanned) in partitions.iter_mut().zip(&raw.partition) {
        for target in spanned.get_ref().talks_to.iter().flatten() {
            let at = target.span().start;
            let target_name = target.get_ref();
            if *target_name == partition.name {
                return Err(error(
                    at,
                    format!(
                        "partition `{target_name}` names itself in `talks_to` (a partition \
                         cannot call itself)"
                    ),
                ));
            }
            let id = names.iter().position(|n| n == target_name).ok_or_else(|| {
                error(
                    at,
                    format!(
                        "`talks_to` of `{}` names `{target_name}`, which is not a partition of \
                         this system: partitions are {}",
                        partition.name,
                        list(&names)
                    ),
                )
            })?;
            partition.talks_to |= 1 << id;
        }
    }

    let pinned: Vec<u32> = partitions.iter().map(|p| p.core).collect();
    let schedules = cores::schedules(
        schedule_key.as_ref().map(Spanned::get_ref),
        schedule_key.as_ref().map_or(0, |key| key.span().start),
        &names,
        &pinned,
        board.cores,
    )
    .map_err(|(at, m)| error(at, m))?;

    Ok(System {
        path: path.to_path_buf(),
        board,
        memory_override,
        partitions,
        schedules,
        poison_free_ram,
        slice_us,
        revocation_share,
    })
}

/// Resolves `program`: a path to an ELF file (with `/` or ending in `.elf`, relative to
/// `config_dir`) or a guest program's name; an error carries the byte offset at fault.
fn library_os_program(
    workspace: &Workspace,
    config_dir: &Path,
    program: &Spanned<String>,
) -> Result<Program, (usize, String)> {
    let program_text = program.get_ref();
    let at = program.span().start;
    if program_text.contains('/') || program_text.ends_with(".elf") {
        let file = config_dir.join(program_text);
        if !file.is_file() {
            return Err((
                at,
                format!(
                    "program ELF file `{program_text}` not found (looked for {})",
                    file.display()
                ),
            ));
        }
        return Ok(Program::Elf(file));
    }
    let available = workspace.guest_programs();
    if !available.iter().any(|p| p == program_text) {
        return Err((
            at,
            format!(
                "no guest program `{program_text}`: available programs are {} \
                 (guests/src/bin/*.rs), or give a path to an ELF file",
                list(&available)
            ),
        ));
    }
    Ok(Program::Guest(program_text.clone()))
}

/// A size that must be a multiple of [`PAGE_SIZE`] (zero allowed), for key `what`.
fn page_multiple(value: &SizeValue, what: &str) -> Result<u64, String> {
    let bytes = value.bytes()?;
    if !bytes.is_multiple_of(PAGE_SIZE) {
        return Err(format!(
            "{what} of {bytes} bytes is not a multiple of 4 KiB"
        ));
    }
    Ok(bytes)
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Test helpers shared by this crate's unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::workspace::Workspace;

    /// A throwaway directory, removed when dropped.
    pub struct TempDir(pub PathBuf);

    impl TempDir {
        /// Creates a fresh directory under the system temporary directory.
        pub fn new() -> Self {
            static COUNT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "exo-tool-test-{}-{}",
                std::process::id(),
                COUNT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        /// Writes `contents` to `relative`, creating directories.
        pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
            let path = self.0.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, contents).unwrap();
            path
        }

        /// The directory.
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Devices of the made-up boards: the console (reserved), a UART a partition may own
    /// (QEMU serial 1, a PL011), a device with three interrupts, the reserved GIC
    /// distributor and redistributors, and a DMA controller.
    const DEVICES: &str = "
[devices.uart0]
base = 0x0900_0000
size = \"4KiB\"
interrupts = [33]
reserved = \"the kernel's console\"

[devices.uart1]
base = 0x0904_0000
size = \"4KiB\"
interrupts = [40]
qemu_serial = 1
compatible = \"arm,pl011\"

[devices.rtc]
base = 0x0901_0000
size = 4096
interrupts = [34, 35, 36]

[devices.gicd]
base = 0x0800_0000
size = \"64KiB\"
reserved = \"the GIC distributor (GICD)\"

[devices.gicr]
base = 0x080A_0000
size = 0xF6_0000
reserved = \"the GIC redistributors (GICR)\"

[devices.dma]
base = 0x0A10_0000
size = \"8KiB\"
interrupts = [70]
dma = true
";

    /// A made-up workspace: boards `qemu-virt` (GICv3, up to 8 cores) and `qemu-virt-gicv2`
    /// (GICC at `0x0801_0000`, 1 core), both with 1 GiB of RAM at `0x4000_0000`, INTIDs up
    /// to 287 and the devices above, `fixed`, like `qemu-virt` but with a fixed 1 GiB of
    /// which the kernel manages 960 MiB and 4 fixed cores (as raspi4b), and `sized`, like
    /// `fixed` but also sold with 4 GiB, of which the kernel manages 3956 MiB; guests `hello`
    /// and `counter`.
    pub fn workspace() -> (TempDir, Workspace) {
        let dir = TempDir::new();
        let board = |gic: &str| {
            format!(
                "description = \"test\"\nram = \"1GiB\"\nram_base = 0x4000_0000\n\
                 linker_script = \"kernel.ld\"\n[gic]\n{gic}\nmax_intid = 287\n\
                 [qemu]\nbinary = \"qemu-system-aarch64\"\n{DEVICES}"
            )
        };
        dir.write(
            "platform/qemu-virt/board.toml",
            board("version = 3").replace("linker_script", "cores = 8\nlinker_script"),
        );
        dir.write(
            "platform/qemu-virt-gicv2/board.toml",
            board("version = 2\ncpu_interface = 0x0801_0000"),
        );
        let fixed = board("version = 3").replace(
            "ram = \"1GiB\"\n",
            "ram = \"1GiB\"\nfixed_ram = true\nkernel_ram = \"960MiB\"\ncores = 4\n\
             fixed_cores = true\n",
        );
        dir.write("platform/fixed/board.toml", &fixed);
        dir.write(
            "platform/sized/board.toml",
            fixed + "[ram_sizes]\n\"1GiB\" = \"960MiB\"\n\"4GiB\" = \"3956MiB\"\n",
        );
        dir.write("guests/src/bin/hello.rs", "");
        dir.write("guests/src/bin/counter.rs", "");
        let workspace = Workspace::at(dir.path());
        (dir, workspace)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::workspace;
    use super::*;
    use exo_abi::package::DeviceRegion;
    use exo_abi::{Ipa, PhysAddr};

    /// Checks `text` as `configs/test.toml` and expects an error on `line` containing
    /// `phrase`.
    fn refused(text: &str, line: usize, phrase: &str) -> ConfigError {
        let (dir, workspace) = workspace();
        let path = dir.path().join("configs/test.toml");
        let e = parse(&workspace, &path, text, None).expect_err("accepted a bad configuration");
        assert_eq!(e.path, path);
        assert_eq!(e.line, Some(line), "wrong line in: {e}");
        assert!(e.message.contains(phrase), "`{phrase}` not in: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("{}:{line}: ", path.display())),
            "bad format: {e}"
        );
        e
    }

    const HELLO: &str = "[[partition]]\nname = \"hello\"\nprogram = \"hello\"\nmemory = \"2MiB\"\n";

    #[test]
    fn the_summary_names_every_binding() {
        let (dir, workspace) = workspace();
        let text = "[system]\nschedule = [\"a\", \"a\", \"b\"]\n\n[[partition]]\nname = \"a\"\n\
                    program = \"hello\"\nmemory = \"1MiB\"\nborrow = \"2MiB\"\n\
                    interrupts = [48]\ntalks_to = [\"b\"]\n\n[[partition]]\nname = \"b\"\n\
                    program = \"counter\"\nmemory = \"1MiB\"\n";
        let path = dir.path().join("configs/test.toml");
        let summary = parse(&workspace, &path, text, None).unwrap().summary();
        let lines: Vec<&str> = summary.lines().collect();
        assert_eq!(lines.len(), 3, "{summary}");
        assert_eq!(
            lines[2],
            "  1 core; time slices of 10 ms; revocation requests shared proportional"
        );
        for fragment in [
            "0 a: program hello",
            "borrow 2 MiB",
            "SPIs 48",
            "talks to b",
            "2/3 slots",
        ] {
            assert!(
                lines[0].contains(fragment),
                "`{fragment}` not in {}",
                lines[0]
            );
        }
        assert!(lines[1].contains("1 b: program counter") && lines[1].contains("1/3 slots"));
    }

    #[test]
    fn accepts_a_good_configuration() {
        let (dir, workspace) = workspace();
        let elf = dir.write("configs/prebuilt/x.elf", b"\x7fELF");
        let text = format!(
            "[system]\nboard = \"qemu-virt\"\n\n{HELLO}\n[[partition]]\nname = \"c-2_X\"\n\
             program = \"prebuilt/x.elf\"\nmemory = 8192\n"
        );
        let path = dir.path().join("configs/test.toml");
        let system = parse(&workspace, &path, &text, None).unwrap();
        assert_eq!(system.board.name, "qemu-virt");
        assert_eq!(system.stem(), "test");
        assert_eq!(system.partitions.len(), 2);
        let hello = &system.partitions[0];
        assert_eq!(
            (
                hello.name.as_str(),
                hello.memory_bytes,
                hello.line,
                hello.memory_line
            ),
            ("hello", 2 << 20, 4, 7)
        );
        assert_eq!(hello.program, Program::Guest("hello".into()));
        assert_eq!(system.partitions[1].program, Program::Elf(elf));
        assert_eq!(system.partitions[1].memory_bytes, 8192);
        assert_eq!(system.partitions[1].line, 9);
        assert_eq!(system.guest_programs(), ["hello"]);
    }

    #[test]
    fn default_board_is_qemu_virt() {
        let (dir, workspace) = workspace();
        let system = parse(&workspace, &dir.path().join("a.toml"), HELLO, None).unwrap();
        assert_eq!(system.board.name, DEFAULT_BOARD);
    }

    #[test]
    fn unknown_key_in_partition() {
        refused(&format!("{HELLO}vcpus = 2\n"), 5, "unknown field `vcpus`");
    }

    #[test]
    fn unknown_key_in_system_and_at_top() {
        refused(
            &format!("[system]\nboard = \"qemu-virt\"\nspeed = 1\n{HELLO}"),
            3,
            "speed",
        );
        refused(&format!("{HELLO}\n[extra]\nx = 1\n"), 6, "extra");
    }

    #[test]
    fn syntax_error() {
        refused(&format!("{HELLO}memory = \n"), 5, "");
    }

    #[test]
    fn missing_field() {
        refused(
            "\n[[partition]]\nname = \"hello\"\nprogram = \"hello\"\n",
            2,
            "memory",
        );
    }

    #[test]
    fn quota_larger_than_ram() {
        let text = format!(
            "{HELLO}\n[[partition]]\nname = \"big\"\nprogram = \"hello\"\nmemory = \"2GiB\"\n"
        );
        refused(&text, 9, "larger than the 1 GiB of RAM");
    }

    #[test]
    fn quotas_together_larger_than_partition_ram() {
        let mut text = String::new();
        for (i, memory) in ["512MiB", "400MiB", "100MiB", "4KiB"].iter().enumerate() {
            text += &format!(
                "[[partition]]\nname = \"p{i}\"\nprogram = \"hello\"\nmemory = \"{memory}\"\n"
            );
        }
        // 512 + 400 + 100 = 1012 MiB > 1024 - 16: the third partition crosses the line.
        let e = refused(&text, 12, "brings the guarantees to 1012 MiB");
        assert!(
            e.message.contains("`p2`") && e.message.contains("1008 MiB"),
            "{e}"
        );
    }

    /// A partition table `p<i>` with `memory` and `extra` lines (one key each).
    fn partition(i: usize, memory: &str, extra: &[&str]) -> String {
        let mut text =
            format!("[[partition]]\nname = \"p{i}\"\nprogram = \"hello\"\nmemory = {memory}\n");
        for line in extra {
            text += line;
            text += "\n";
        }
        text
    }

    #[test]
    fn memory_keys_have_defaults() {
        let (dir, workspace) = workspace();
        let system = parse(&workspace, &dir.path().join("a.toml"), HELLO, None).unwrap();
        let hello = &system.partitions[0];
        assert_eq!(hello.guarantee_bytes, hello.memory_bytes);
        assert_eq!(hello.borrow_bytes, 0);
        assert_eq!(hello.revocation_deadline_us, DEFAULT_REVOCATION_DEADLINE_US);
        assert_eq!(hello.revocation_deadline_us, 10_000);
        assert_eq!(hello.max_aborts, DEFAULT_MAX_ABORTS);
        assert_eq!(system.memory_override, None);
        assert_eq!(system.board.ram_bytes, 1 << 30);
    }

    #[test]
    fn poison_free_ram_is_off_unless_asked_for() {
        let (dir, workspace) = workspace();
        let path = dir.path().join("a.toml");
        assert!(
            !parse(&workspace, &path, HELLO, None)
                .unwrap()
                .poison_free_ram
        );
        let text = format!("[system]\npoison_free_ram = true\n{HELLO}");
        assert!(
            parse(&workspace, &path, &text, None)
                .unwrap()
                .poison_free_ram
        );
        let text = format!("[system]\npoison_free_ram = \"yes\"\n{HELLO}");
        assert!(parse(&workspace, &path, &text, None).is_err());
    }

    /// The QEMU arguments `text` (as `a.toml`) boots with, on `board`.
    fn qemu_args(text: &str, board: Option<&str>) -> Vec<String> {
        let (dir, workspace) = workspace();
        let system = parse(&workspace, &dir.path().join("a.toml"), text, board).unwrap();
        system
            .board
            .qemu_command(Path::new("x.img"), None)
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn cores_become_qemu_smp_within_the_board() {
        let smp = |args: &[String]| {
            args.windows(2)
                .find(|w| w[0] == "-smp")
                .map(|w| w[1].clone())
        };
        assert_eq!(smp(&qemu_args(HELLO, None)).as_deref(), Some("1"));
        let four = format!("[system]\ncores = 4\n{HELLO}");
        assert_eq!(smp(&qemu_args(&four, None)).as_deref(), Some("4"));
        // A board with fixed cores gets no -smp: the machine has its own.
        assert_eq!(smp(&qemu_args(HELLO, Some("fixed"))), None);
        assert_eq!(smp(&qemu_args(&four, Some("fixed"))), None);
        let (dir, workspace) = workspace();
        let system = parse(&workspace, &dir.path().join("a.toml"), &four, None).unwrap();
        assert!(
            system.summary().contains("  4 cores; time slices of 10 ms"),
            "{}",
            system.summary()
        );
        refused(
            &format!("[system]\ncores = 9\n{HELLO}"),
            2,
            "9 cores: board `qemu-virt` has 1 to 8",
        );
        refused(&format!("[system]\ncores = 0\n{HELLO}"), 2, "has 1 to 8");
        refused(
            &format!("[system]\nboard = \"qemu-virt-gicv2\"\ncores = 2\n{HELLO}"),
            3,
            "board `qemu-virt-gicv2` has 1 to 1",
        );
        refused(
            &format!("[system]\nboard = \"fixed\"\ncores = 2\n{HELLO}"),
            3,
            "board `fixed` always has 4 cores",
        );
    }

    #[test]
    fn accepts_memory_keys() {
        let (dir, workspace) = workspace();
        let text = format!(
            "[system]\nmemory = \"256MiB\"\n{}",
            partition(
                0,
                "\"2MiB\"",
                &[
                    "guarantee = \"8MiB\"",
                    "borrow = 16777216",
                    "revocation_deadline = \"250us\"",
                    "max_aborts = 0",
                ]
            )
        );
        let system = parse(&workspace, &dir.path().join("a.toml"), &text, None).unwrap();
        assert_eq!(system.memory_override, Some(256 << 20));
        assert_eq!(system.board.ram_bytes, 256 << 20);
        let args: Vec<_> = system
            .board
            .qemu_command(Path::new("x.img"), None)
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args.windows(2).any(|w| w == ["-m", "256M"]), "{args:?}");
        let p = &system.partitions[0];
        assert_eq!(
            (
                p.memory_bytes,
                p.guarantee_bytes,
                p.borrow_bytes,
                p.revocation_deadline_us,
                p.max_aborts
            ),
            (2 << 20, 8 << 20, 16 << 20, 250, 0)
        );
        for (deadline, us) in [("\"1us\"", 1), ("\"10s\"", 10_000_000), ("\"3ms\"", 3000)] {
            let text = partition(0, "4096", &[&format!("revocation_deadline = {deadline}")]);
            let system = parse(&workspace, &dir.path().join("a.toml"), &text, None).unwrap();
            assert_eq!(system.partitions[0].revocation_deadline_us, us);
        }
        let text = partition(0, "4096", &["max_aborts = 1000"]);
        let system = parse(&workspace, &dir.path().join("a.toml"), &text, None).unwrap();
        assert_eq!(system.partitions[0].max_aborts, 1000);
    }

    /// `[system] memory` on a board with a fixed RAM picks one of its sizes: partitions fit
    /// in what the kernel manages on it; QEMU keeps the fixed size.
    #[test]
    fn system_memory_picks_one_of_a_fixed_boards_sizes() {
        let (dir, workspace) = workspace();
        let two = |size: &str| {
            format!(
                "[system]\nboard = \"sized\"\nmemory = \"4GiB\"\n{}{}",
                partition(0, size, &[]),
                partition(1, size, &[])
            )
        };
        let system = parse(
            &workspace,
            &dir.path().join("a.toml"),
            &two("\"1900MiB\""),
            None,
        )
        .unwrap();
        assert_eq!(system.memory_override, Some(4 << 30));
        assert_eq!(system.board.kernel_ram(), 3956 << 20);
        assert_eq!(system.board.ram_bytes, 1 << 30, "QEMU keeps its fixed RAM");
        refused(
            &two("\"2000MiB\""),
            11,
            "partitions need 4000 MiB but `[system] memory` gives the kernel 3956 MiB",
        );
        let text = format!("[system]\nboard = \"sized\"\nmemory = \"2GiB\"\n{HELLO}");
        refused(
            &text,
            3,
            "board `sized` comes with 1 GiB, 4 GiB of RAM, not 2 GiB",
        );
    }

    #[test]
    fn bad_system_memory() {
        let case = |memory: &str, phrase: &str| {
            let text = format!("[system]\nboard = \"qemu-virt\"\nmemory = {memory}\n{HELLO}");
            refused(&text, 3, phrase);
        };
        case("\"32MiB\"", "at least 64 MiB");
        case("\"65537KiB\"", "whole number of MiB");
        case("\"1GB\"", "bad memory size `1GB`");
        case("-1", "negative");
        refused("[system]\nmemory = \"64MiB\"\nmemory = \"64MiB\"\n", 3, "");
    }

    #[test]
    fn a_board_with_fixed_ram_refuses_another_size() {
        let text = format!("[system]\nboard = \"fixed\"\nmemory = \"128MiB\"\n{HELLO}");
        refused(&text, 3, "board `fixed` has a fixed 1 GiB of RAM");
        let same = format!("[system]\nboard = \"fixed\"\nmemory = \"1GiB\"\n{HELLO}");
        let (dir, workspace) = workspace();
        let path = dir.path().join("configs/test.toml");
        assert!(parse(&workspace, &path, &same, None).is_ok());
    }

    #[test]
    fn system_memory_bounds_the_quotas() {
        let text = format!(
            "[system]\nmemory = \"128MiB\"\n{}{}",
            partition(0, "\"100MiB\"", &[]),
            partition(1, "\"200MiB\"", &[])
        );
        refused(
            &text,
            10,
            "memory quota of 200 MiB for `p1` is larger than the 128 MiB of RAM \
             `[system] memory` gives",
        );
        let text = format!(
            "[system]\nmemory = \"128MiB\"\n{}{}",
            partition(0, "\"100MiB\"", &[]),
            partition(1, "\"20MiB\"", &[])
        );
        refused(
            &text,
            10,
            "partitions need 120 MiB but `[system] memory` gives the kernel 128 MiB, of which \
             112 MiB are for partitions (16 MiB are the kernel's): partition `p1` brings the \
             guarantees to 120 MiB",
        );
    }

    #[test]
    fn partitions_must_fit_in_the_ram_the_kernel_manages() {
        // Board `fixed` has 1 GiB, but the kernel manages only 960 MiB of it (as raspi4b).
        let text = format!(
            "[system]\nboard = \"fixed\"\n{}",
            partition(0, "\"1000MiB\"", &[])
        );
        refused(
            &text,
            6,
            "memory quota of 1000 MiB for `p0` is larger than the 960 MiB of RAM board `fixed` \
             gives the kernel",
        );
        let text = format!(
            "[system]\nboard = \"fixed\"\n{}{}",
            partition(0, "\"600MiB\"", &[]),
            partition(1, "\"600MiB\"", &[])
        );
        refused(
            &text,
            10,
            "partitions need 1200 MiB but board `fixed` gives the kernel 960 MiB",
        );
    }

    #[test]
    fn kernel_pages_tables_and_metadata_count() {
        // 1008 MiB of guarantees pass the 16 MiB rule, but the tables for two 1 GiB reaches,
        // each partition's kernel pages, the frame metadata and the kernel image do not fit.
        let text = format!(
            "{}{}{}",
            partition(0, "\"1000MiB\"", &[]),
            partition(1, "\"4MiB\"", &["borrow = \"1020MiB\""]),
            partition(2, "\"4MiB\"", &["borrow = \"1020MiB\""])
        );
        let e = refused(
            &text,
            13,
            "partitions need 1021 MiB but board `qemu-virt` gives the kernel 1024 MiB, of which \
             it keeps about 8 MiB for itself",
        );
        assert!(
            e.message
                .contains("with `p2` the guarantees come to 1008 MiB")
                && e.message.contains("stage-2 tables to 13 MiB"),
            "{e}"
        );
        // Two of them fit.
        let text = format!(
            "{}{}",
            partition(0, "\"1000MiB\"", &[]),
            partition(1, "\"4MiB\"", &["borrow = \"1020MiB\""])
        );
        let (dir, workspace) = workspace();
        parse(&workspace, &dir.path().join("a.toml"), &text, None).unwrap();
    }

    #[test]
    fn guarantees_not_quotas_are_summed() {
        // 100 MiB of quotas, but 1000 MiB of guarantees: the second guarantee crosses.
        let text = format!(
            "{}{}",
            partition(0, "\"50MiB\"", &["guarantee = \"500MiB\""]),
            partition(
                1,
                "\"50MiB\"",
                &["borrow = \"100MiB\"", "guarantee = \"510MiB\""]
            )
        );
        let e = refused(&text, 11, "`p1` brings the guarantees to 1010 MiB");
        assert!(e.message.contains("1008 MiB are for partitions"), "{e}");
        // Borrowing is not counted against the others.
        let text = format!(
            "{}{}",
            partition(0, "\"500MiB\"", &["borrow = \"500MiB\""]),
            partition(1, "\"500MiB\"", &["borrow = \"500MiB\""])
        );
        let (dir, workspace) = workspace();
        parse(&workspace, &dir.path().join("a.toml"), &text, None).unwrap();
    }

    #[test]
    fn bad_guarantee() {
        let case = |guarantee: &str, phrase: &str| {
            refused(
                &partition(0, "\"2MiB\"", &[&format!("guarantee = {guarantee}")]),
                5,
                phrase,
            );
        };
        case(
            "\"1MiB\"",
            "guarantee of 1 MiB for `p0` is smaller than its memory quota of 2 MiB",
        );
        case(
            "\"6KiB\"",
            "guarantee of 6144 bytes is not a multiple of 4 KiB",
        );
        case("\"2MB\"", "bad memory size `2MB`");
        case("-4096", "negative");
        case("true", "byte count");
    }

    #[test]
    fn bad_borrow() {
        let case = |extra: &[&str], line: usize, phrase: &str| {
            refused(&partition(0, "\"2MiB\"", extra), line, phrase);
        };
        case(
            &["borrow = \"1023MiB\""],
            5,
            "guarantee of 2 MiB plus borrow of 1023 MiB for `p0` is more than the 1 GiB of RAM \
             board `qemu-virt` gives the kernel",
        );
        case(
            &["guarantee = \"4MiB\"", "borrow = \"1021MiB\""],
            6,
            "guarantee of 4 MiB plus borrow",
        );
        case(
            &["borrow = 100"],
            5,
            "borrow of 100 bytes is not a multiple of 4 KiB",
        );
        case(&["borrow = \"1TiB\""], 5, "bad memory size");
        // Exactly the RAM is fine.
        let (dir, workspace) = workspace();
        let text = partition(0, "\"2MiB\"", &["borrow = \"1022MiB\""]);
        parse(&workspace, &dir.path().join("a.toml"), &text, None).unwrap();
    }

    #[test]
    fn bad_revocation_deadline() {
        let case = |deadline: &str, phrase: &str| {
            refused(
                &partition(0, "4096", &[&format!("revocation_deadline = {deadline}")]),
                5,
                phrase,
            );
        };
        case(
            "\"0us\"",
            "revocation deadline of 0 us must be between 1 us and 10 s",
        );
        case(
            "\"10001ms\"",
            "revocation deadline of 10001 ms must be between",
        );
        case("\"11s\"", "between 1 us and 10 s");
        case("\"10\"", "bad duration `10`");
        case("\"10 ms\"", "bad duration");
        case("\"1min\"", "bad duration");
        case("10", "invalid type");
    }

    #[test]
    fn bad_max_aborts() {
        let case = |value: &str, phrase: &str| {
            refused(
                &partition(0, "4096", &[&format!("max_aborts = {value}")]),
                5,
                phrase,
            );
        };
        case("1001", "max_aborts of 1001 must be between 0 and 1000");
        case("-1", "max_aborts of -1 must be between 0 and 1000");
        case("\"3\"", "invalid type");
        case("1.5", "invalid type");
    }

    #[test]
    fn unknown_memory_key_lists_the_new_ones() {
        let e = refused(
            &partition(0, "4096", &["guaranteed = 4096"]),
            5,
            "unknown field",
        );
        assert!(
            e.message.contains("`guarantee`") && e.message.contains("`max_aborts`"),
            "{e}"
        );
    }

    #[test]
    fn talks_to_becomes_a_mask_of_partition_ids() {
        let (dir, workspace) = workspace();
        // p0 names a partition further down; p2 names two, in any order.
        let text = format!(
            "{}{}{}{}",
            partition(0, "4096", &["talks_to = [\"p3\"]"]),
            partition(1, "4096", &[]),
            partition(2, "4096", &["talks_to = [\"p3\", \"p0\", \"p3\"]"]),
            partition(3, "4096", &["talks_to = []"]),
        );
        let system = parse(&workspace, &dir.path().join("a.toml"), &text, None).unwrap();
        let masks: Vec<u64> = system.partitions.iter().map(|p| p.talks_to).collect();
        assert_eq!(masks, [0b1000, 0, 0b1001, 0]);
    }

    #[test]
    fn talks_to_an_unknown_partition() {
        let text = format!(
            "{}{}",
            partition(0, "4096", &[]),
            partition(
                1,
                "4096",
                &["talks_to = [", "  \"p0\",", "  \"pong\",", "]"]
            ),
        );
        let e = refused(
            &text,
            11,
            "`talks_to` of `p1` names `pong`, which is not a partition",
        );
        assert!(e.message.contains("partitions are `p0`, `p1`"), "{e}");
    }

    #[test]
    fn talks_to_itself() {
        refused(
            &partition(0, "4096", &["talks_to = [\"p0\"]"]),
            5,
            "partition `p0` names itself in `talks_to`",
        );
    }

    #[test]
    fn talks_to_must_be_a_list_of_names() {
        refused(
            &partition(0, "4096", &["talks_to = \"p0\""]),
            5,
            "invalid type",
        );
        refused(
            &partition(0, "4096", &["talks_to = [1]"]),
            5,
            "invalid type",
        );
    }

    #[test]
    fn missing_guest_program_lists_the_available_ones() {
        let text = "[[partition]]\nname = \"x\"\nprogram = \"nope\"\nmemory = \"2MiB\"\n";
        let e = refused(text, 3, "no guest program `nope`");
        assert!(e.message.contains("`counter`, `hello`"), "{e}");
    }

    #[test]
    fn missing_elf_file() {
        let text = "[[partition]]\nname = \"x\"\nprogram = \"out/x.elf\"\nmemory = \"2MiB\"\n";
        refused(text, 3, "program ELF file `out/x.elf` not found");
    }

    #[test]
    fn duplicate_name_points_at_the_second() {
        let text = format!("{HELLO}\n{HELLO}");
        refused(
            &text,
            7,
            "duplicate partition name `hello` (first used on line 2)",
        );
    }

    #[test]
    fn bad_names() {
        for name in ["", "has space", "dot.dot", "é", &"x".repeat(33)] {
            let text =
                format!("\n[[partition]]\nname = \"{name}\"\nprogram = \"hello\"\nmemory = 4096\n");
            refused(&text, 3, "bad partition name");
        }
    }

    #[test]
    fn bad_memory() {
        let case = |memory: &str, phrase: &str| {
            let text =
                format!("[[partition]]\nname = \"x\"\nprogram = \"hello\"\nmemory = {memory}\n");
            refused(&text, 4, phrase);
        };
        case("0", "must not be zero");
        case("\"0KiB\"", "must not be zero");
        case("5000", "not a multiple of 4 KiB");
        case("\"6KiB\"", "not a multiple of 4 KiB");
        case("-4096", "negative");
        case("\"2MB\"", "bad memory size `2MB`");
        case("1.5", "byte count");
    }

    #[test]
    fn zero_partitions() {
        refused("[system]\nboard = \"qemu-virt\"\n", 1, "no partitions");
        refused("", 1, "no partitions");
    }

    #[test]
    fn too_many_partitions() {
        let mut text = String::new();
        for i in 0..=MAX_PARTITIONS {
            text +=
                &format!("[[partition]]\nname = \"p{i}\"\nprogram = \"hello\"\nmemory = 4096\n");
        }
        refused(&text, 4 * MAX_PARTITIONS + 1, "too many partitions");
    }

    #[test]
    fn unknown_board() {
        let text = format!("[system]\nboard = \"pdp-11\"\n{HELLO}");
        refused(
            &text,
            2,
            "unknown board `pdp-11`: available boards are `fixed`, `qemu-virt`",
        );
    }

    #[test]
    fn unknown_board_override_has_no_line() {
        let (dir, workspace) = workspace();
        let e = parse(&workspace, &dir.path().join("a.toml"), HELLO, Some("vax")).unwrap_err();
        assert_eq!(e.line, None);
        assert!(e.message.contains("`vax` (given with --board)"), "{e}");
    }

    #[test]
    fn line_of_counts_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }

    /// Parses `text` (which must be accepted) as `configs/test.toml`.
    fn accepted(text: &str) -> System {
        let (dir, workspace) = workspace();
        match parse(
            &workspace,
            &dir.path().join("configs/test.toml"),
            text,
            None,
        ) {
            Ok(system) => system,
            Err(e) => panic!("refused: {e}"),
        }
    }

    /// `interrupts = [...]` holding INTIDs `first..=last`.
    fn intid_range(first: u32, last: u32) -> String {
        let intids: Vec<String> = (first..=last).map(|i| i.to_string()).collect();
        format!("interrupts = [{}]", intids.join(", "))
    }

    #[test]
    fn interrupts_devices_and_schedule_are_accepted() {
        let text = format!(
            "[system]\nschedule = [\"p0\", \"p1\", \"p0\"]\n{}{}",
            partition(
                0,
                "4096",
                &[
                    "devices = [\"uart1\", { base = 0x0A00_0000, size = \"8KiB\", \
                     ipa = 0x1000_0000 }]",
                    "interrupts = [48, 49]",
                ]
            ),
            partition(
                1,
                "4096",
                &[
                    "interrupts = [287, 50]",
                    "devices = [{ base = 0x0A00_2000, size = 4096 }]"
                ]
            ),
        );
        let system = accepted(&text);
        assert_eq!(system.schedules[0], [0, 1, 0]);
        let [p0, p1] = &system.partitions[..] else {
            panic!("two partitions expected")
        };
        assert_eq!(p0.interrupts, [40, 48, 49]);
        let uart1 = &p0.devices[0];
        assert_eq!(uart1.name.as_deref(), Some("uart1"));
        assert_eq!(uart1.qemu_serial, Some(1));
        assert_eq!(uart1.line, 7);
        assert_eq!(
            uart1.region,
            DeviceRegion {
                phys: PhysAddr::new(0x0904_0000),
                ipa: Ipa::new(0x0904_0000),
                size: 4096
            }
        );
        assert_eq!(
            (p0.devices[1].name.as_deref(), p0.devices[1].region),
            (
                None,
                DeviceRegion {
                    phys: PhysAddr::new(0x0A00_0000),
                    ipa: Ipa::new(0x1000_0000),
                    size: 8192
                }
            )
        );
        assert_eq!(p1.interrupts, [287, 50]);
        // No `ipa`: seen where it is.
        assert_eq!(p1.devices[0].region.ipa, Ipa::new(0x0A00_2000));
        assert_eq!(
            system.qemu_serials(),
            [SerialUse {
                port: 1,
                device: "uart1".into(),
                partition: "p0".into()
            }]
        );
    }

    #[test]
    fn a_device_brings_its_interrupts() {
        let system = accepted(&partition(0, "4096", &["devices = [\"rtc\", \"uart1\"]"]));
        let p0 = &system.partitions[0];
        assert_eq!(p0.interrupts, [34, 35, 36, 40]);
        assert_eq!(p0.devices.len(), 2);
        // Listed after the devices, its own interrupts follow theirs.
        let system = accepted(&partition(
            0,
            "4096",
            &["interrupts = [100]", "devices = [\"rtc\"]"],
        ));
        assert_eq!(system.partitions[0].interrupts, [34, 35, 36, 100]);
    }

    #[test]
    fn resources_default_to_none() {
        let system = accepted(HELLO);
        assert!(system.partitions[0].interrupts.is_empty());
        assert!(system.partitions[0].devices.is_empty());
        assert!(system.schedules[0].is_empty());
        assert!(system.qemu_serials().is_empty());
        let system = accepted(&partition(0, "4096", &["interrupts = []", "devices = []"]));
        assert!(system.partitions[0].interrupts.is_empty());
    }

    #[test]
    fn interrupts_must_be_a_list_of_integers() {
        let e = refused(
            &partition(0, "4096", &["interrupts = 48"]),
            5,
            "expected a list of interrupt numbers (integer INTIDs), such as [48, 49]",
        );
        assert!(e.message.contains("invalid type: integer `48`"), "{e}");
        refused(
            &partition(0, "4096", &["interrupts = [", "  48,", "  \"49\",", "]"]),
            7,
            "expected an interrupt number (an integer INTID, such as 48)",
        );
        refused(
            &partition(0, "4096", &["interrupts = [48.0]"]),
            5,
            "expected an interrupt number",
        );
    }

    #[test]
    fn sgis_and_ppis_are_never_a_partitions() {
        let e = refused(
            &partition(0, "4096", &["interrupts = [8]"]),
            5,
            "INTID 8 is an SGI (0-15",
        );
        assert!(
            e.message
                .contains("a partition may own only SPIs, INTIDs 32..=287 on board `qemu-virt`"),
            "{e}"
        );
        refused(
            &partition(0, "4096", &["interrupts = [48, 0]"]),
            5,
            "INTID 0 is an SGI",
        );
        let e = refused(
            &partition(0, "4096", &["interrupts = [27]"]),
            5,
            "INTID 27 is a PPI (16-31: private to each core",
        );
        assert!(e.message.contains("virtual timer"), "{e}");
        refused(
            &partition(0, "4096", &["interrupts = [31]"]),
            5,
            "INTID 31 is a PPI",
        );
    }

    #[test]
    fn interrupts_beyond_the_boards_last_spi() {
        for intid in ["288", "1019", "1020", "-1", "9223372036854775807"] {
            refused(
                &partition(0, "4096", &[&format!("interrupts = [{intid}]")]),
                5,
                &format!(
                    "INTID {intid} does not exist: a partition may own only SPIs, INTIDs 32..=287"
                ),
            );
        }
        let system = accepted(&partition(0, "4096", &["interrupts = [32, 287]"]));
        assert_eq!(system.partitions[0].interrupts, [32, 287]);
    }

    #[test]
    fn interrupt_listed_twice() {
        refused(
            &partition(
                0,
                "4096",
                &["interrupts = [", "  48,", "  49,", "  48,", "]"],
            ),
            8,
            "INTID 48 is listed twice in `interrupts` of `p0` (first on line 6)",
        );
        // Once through a device, once by hand.
        refused(
            &partition(0, "4096", &["devices = [\"uart1\"]", "interrupts = [40]"]),
            6,
            "INTID 40 is listed twice: partition `p0` already owns it (line 5, with device \
             `uart1`)",
        );
    }

    #[test]
    fn interrupt_owned_by_two_partitions() {
        let text = format!(
            "{}{}",
            partition(0, "4096", &["interrupts = [48]"]),
            partition(1, "4096", &["interrupts = [49, 48]"]),
        );
        refused(
            &text,
            10,
            "INTID 48 of `p1` is already owned by partition `p0` (line 5): an interrupt has \
             one owner",
        );
        // Owned through a device first.
        let text = format!(
            "{}{}",
            partition(0, "4096", &["devices = [\"uart1\"]"]),
            partition(1, "4096", &["interrupts = [40]"]),
        );
        refused(
            &text,
            10,
            "INTID 40 of `p1` is already owned by partition `p0` (line 5, with device `uart1`)",
        );
        // Owned by hand first, then brought by a device.
        let text = format!(
            "{}{}",
            partition(0, "4096", &["interrupts = [35]"]),
            partition(1, "4096", &["devices = [\"rtc\"]"]),
        );
        refused(
            &text,
            10,
            "device `rtc` brings INTID 35, which partition `p0` already owns (line 5)",
        );
    }

    #[test]
    fn the_kernels_interrupts() {
        refused(
            &partition(0, "4096", &["interrupts = [33]"]),
            5,
            "INTID 33 is the kernel's own: it is the interrupt of `uart0`, the kernel's \
             console (board `qemu-virt`)",
        );
    }

    #[test]
    fn at_most_64_interrupts() {
        accepted(&partition(0, "4096", &[&intid_range(100, 163)]));
        refused(
            &partition(0, "4096", &[&intid_range(100, 164)]),
            5,
            "partition `p0` owns more than 64 interrupts (its devices' included), the most a \
             partition may own",
        );
        // The device's three count.
        refused(
            &partition(0, "4096", &["devices = [\"rtc\"]", &intid_range(100, 161)]),
            6,
            "more than 64 interrupts",
        );
    }

    #[test]
    fn dma_devices_need_a_trusted_partition() {
        // By name: refused on the entry's line, saying why.
        let e = refused(
            &partition(0, "4096", &["devices = [\"uart1\", \"dma\"]"]),
            5,
            "device `dma` of partition `p0` can master DMA",
        );
        assert!(e.message.contains("bypass stage 2"), "{e}");
        assert!(e.message.contains("all RAM"), "{e}");
        assert!(e.message.contains("trusted_dma = true"), "{e}");
        // By a region overlapping its second page.
        let e = refused(
            &partition(
                0,
                "4096",
                &["devices = [{ base = 0x0A10_1000, size = \"4KiB\" }]"],
            ),
            5,
            "region 0xa101000..0xa102000, which overlaps device `dma`, of partition `p0` can \
             master DMA",
        );
        assert!(e.message.contains("0xa100000..0xa102000"), "{e}");
        // A region next to it is no DMA device.
        accepted(&partition(
            0,
            "4096",
            &["devices = [{ base = 0x0A10_2000, size = \"4KiB\" }]"],
        ));
        // Trusted, it may own it (with its interrupt), and `exo check` says so.
        let system = accepted(&partition(
            0,
            "4096",
            &["devices = [\"dma\"]", "trusted_dma = true"],
        ));
        let p0 = &system.partitions[0];
        assert!(p0.trusted_dma);
        assert_eq!(p0.interrupts, [70]);
        assert!(
            system
                .summary()
                .contains("trusted with DMA (can reach all RAM)"),
            "{}",
            system.summary()
        );
        // `trusted_dma = false` is the default, said out loud.
        refused(
            &partition(0, "4096", &["trusted_dma = false", "devices = [\"dma\"]"]),
            6,
            "can master DMA",
        );
        assert!(!accepted(HELLO).partitions[0].trusted_dma);
    }

    #[test]
    fn unknown_device_lists_the_boards() {
        let e = refused(
            &partition(0, "4096", &["devices = [\"uart1\", \"uart9\"]"]),
            5,
            "unknown device `uart9`: devices of board `qemu-virt` a partition may own are \
             `uart1`, `rtc`, `dma`",
        );
        assert!(e.message.contains("or give a region"), "{e}");
    }

    #[test]
    fn the_kernels_devices() {
        refused(
            &partition(0, "4096", &["devices = [\"uart0\"]"]),
            5,
            "device `uart0` is the kernel's own (the kernel's console): no partition may own it",
        );
        refused(
            &partition(0, "4096", &["devices = [\"gicd\"]"]),
            5,
            "the GIC distributor (GICD)",
        );
    }

    #[test]
    fn device_owned_twice() {
        let text = format!(
            "{}{}",
            partition(0, "4096", &["devices = [\"uart1\"]"]),
            partition(
                1,
                "4096",
                &["devices = [", "  \"rtc\",", "  \"uart1\",", "]"]
            ),
        );
        refused(
            &text,
            12,
            "device `uart1` of `p1` is already owned by partition `p0` (line 5): a device has \
             one owner",
        );
        refused(
            &partition(0, "4096", &["devices = [\"uart1\", \"uart1\"]"]),
            5,
            "device `uart1` is listed twice in `devices` of `p0` (first on line 5)",
        );
    }

    #[test]
    fn devices_must_be_names_or_regions() {
        refused(
            &partition(0, "4096", &["devices = \"uart1\""]),
            5,
            "expected a list of board device names or regions",
        );
        refused(
            &partition(0, "4096", &["devices = [1]"]),
            5,
            "expected a board device's name (such as \"uart1\") or a region",
        );
        refused(
            &partition(
                0,
                "4096",
                &["devices = [{ base = 0x0A00_0000, size = 4096, irq = 3 }]"],
            ),
            5,
            "unknown field `irq`, expected one of `base`, `size`, `ipa`",
        );
        refused(
            &partition(0, "4096", &["devices = [{ base = 0x0A00_0000 }]"]),
            5,
            "missing field `size`",
        );
        refused(
            &partition(
                0,
                "4096",
                &["devices = [{ base = \"0x0A00_0000\", size = 4096 }]"],
            ),
            5,
            "invalid type",
        );
    }

    /// `devices = [{ base = <base>, size = <size>[, ipa = <ipa>] }]`.
    fn region(base: &str, size: &str, ipa: Option<&str>) -> String {
        match ipa {
            Some(ipa) => format!("devices = [{{ base = {base}, size = {size}, ipa = {ipa} }}]"),
            None => format!("devices = [{{ base = {base}, size = {size} }}]"),
        }
    }

    #[test]
    fn regions_must_be_page_aligned_and_not_empty() {
        let case = |base: &str, size: &str, ipa: Option<&str>, phrase: &str| {
            refused(
                &partition(0, "4096", &[&region(base, size, ipa)]),
                5,
                phrase,
            );
        };
        case(
            "0x0A00_0800",
            "4096",
            None,
            "device region base 0xa000800 is not page aligned (4 KiB)",
        );
        case(
            "0x0A00_0000",
            "4096",
            Some("0x1000_0010"),
            "device region ipa 0x10000010 is not page aligned",
        );
        case(
            "0x0A00_0000",
            "0",
            None,
            "device region size must not be zero",
        );
        case("0x0A00_0000", "\"0KiB\"", None, "must not be zero");
        case(
            "0x0A00_0000",
            "6144",
            None,
            "device region size of 6144 bytes is not a multiple of 4 KiB",
        );
        case("0x0A00_0000", "\"4KB\"", None, "bad memory size `4KB`");
        case(
            "-4096",
            "4096",
            None,
            "device region base must not be negative",
        );
    }

    #[test]
    fn regions_stay_out_of_ram_and_the_kernels_devices() {
        refused(
            &partition(
                0,
                "4096",
                &[&region("0x3FFF_F000", "\"8KiB\"", Some("0x1000"))],
            ),
            5,
            "device region 0x3ffff000..0x40001000 overlaps the RAM of board `qemu-virt` \
             (0x40000000..0x80000000)",
        );
        refused(
            &partition(0, "4096", &[&region("0x0800_F000", "4096", None)]),
            5,
            "device region 0x800f000..0x8010000 overlaps `gicd` at 0x8000000..0x8010000, which \
             the kernel keeps: the GIC distributor (GICD) (board `qemu-virt`)",
        );
        refused(
            &partition(0, "4096", &[&region("0x0900_0000", "4096", Some("0x1000"))]),
            5,
            "overlaps `uart0` at 0x9000000..0x9001000, which the kernel keeps: the kernel's \
             console",
        );
    }

    #[test]
    fn regions_have_one_owner() {
        // An address range inside another partition's board device.
        let text = format!(
            "{}{}",
            partition(0, "4096", &["devices = [\"uart1\"]"]),
            partition(1, "4096", &[&region("0x0904_0000", "4096", Some("0x1000"))]),
        );
        refused(
            &text,
            10,
            "device region 0x9040000..0x9041000 of `p1` overlaps partition `p0`'s device \
             `uart1` at 0x9040000..0x9041000 (line 5): a device region has one owner",
        );
        // Two address ranges.
        let text = format!(
            "{}{}",
            partition(0, "4096", &[&region("0x0A00_0000", "\"16KiB\"", None)]),
            partition(1, "4096", &[&region("0x0A00_3000", "4096", None)]),
        );
        refused(
            &text,
            10,
            "overlaps partition `p0`'s region 0xa000000..0xa004000 (line 5)",
        );
        // A board device over an address range given earlier.
        let text = format!(
            "{}{}",
            partition(0, "4096", &[&region("0x0900_F000", "\"8KiB\"", None)]),
            partition(1, "4096", &["devices = [\"rtc\"]"]),
        );
        refused(
            &text,
            10,
            "device `rtc` at 0x9010000..0x9011000 of `p1` overlaps partition `p0`'s region",
        );
        // The same partition twice, at two IPAs.
        refused(
            &partition(
                0,
                "4096",
                &[
                    "devices = [",
                    "  \"uart1\",",
                    "  { base = 0x0904_0000, size = 4096, ipa = 0x1000 },",
                    "]",
                ],
            ),
            7,
            "overlaps its own device `uart1` at 0x9040000..0x9041000 (line 6)",
        );
    }

    #[test]
    fn region_ipas_stay_below_the_kernels_window() {
        accepted(&partition(
            0,
            "4096",
            &[&region("0x0A00_0000", "4096", Some("0x3FFE_F000"))],
        ));
        for (ipa, size) in [
            ("0x3FFE_F000", "\"8KiB\""),
            ("0x3FFF_0000", "4096"),
            ("0x4000_0000", "4096"),
            ("0x1_0000_0000", "4096"),
        ] {
            let e = refused(
                &partition(0, "4096", &[&region("0x0A00_0000", size, Some(ipa))]),
                5,
                "device IPAs must end by 0x3fff0000 (the kernel's IPA window \
                 0x3fff0000..0x40000000 and guest RAM from 0x40000000 up are off limits)",
            );
            assert!(e.message.starts_with("device region 0xa000000.."), "{e}");
        }
    }

    #[test]
    fn region_ipas_of_a_partition_do_not_overlap() {
        refused(
            &partition(
                0,
                "4096",
                &[
                    "devices = [",
                    "  { base = 0x0A00_0000, size = \"8KiB\", ipa = 0x1000_0000 },",
                    "  { base = 0x0B00_0000, size = 4096, ipa = 0x1000_1000 },",
                    "]",
                ],
            ),
            7,
            "device region 0xb000000..0xb001000 is seen at IPA 0x10001000..0x10002000, which \
             overlaps the IPA 0x10000000..0x10002000 of `p0`'s region on line 6",
        );
        // Different partitions have different IPA spaces.
        accepted(&format!(
            "{}{}",
            partition(0, "4096", &[&region("0x0A00_0000", "4096", Some("0x1000"))]),
            partition(1, "4096", &[&region("0x0B00_0000", "4096", Some("0x1000"))]),
        ));
    }

    #[test]
    fn region_ipas_avoid_the_gicv2_cpu_interface() {
        let gicv2 = |extra: &str| {
            format!(
                "[system]\nboard = \"qemu-virt-gicv2\"\n{}",
                partition(0, "4096", &[extra])
            )
        };
        refused(
            &gicv2(&region("0x0A00_0000", "4096", Some("0x0801_1000"))),
            7,
            "device region 0xa000000..0xa001000 is seen at IPA 0x8011000..0x8012000, which \
             overlaps IPA 0x8010000..0x8012000, where a partition sees its GIC CPU interface \
             on board `qemu-virt-gicv2` (GICv2)",
        );
        accepted(&gicv2(&region("0x0A00_0000", "4096", Some("0x0801_2000"))));
        // GICv3 has no memory-mapped CPU interface.
        accepted(&partition(
            0,
            "4096",
            &[&region("0x0A00_0000", "4096", Some("0x0801_1000"))],
        ));
    }

    #[test]
    fn at_most_16_device_regions() {
        let regions = |n: u64| {
            let entries: Vec<String> = (0..n)
                .map(|i| format!("{{ base = {:#x}, size = 4096 }}", 0x0A00_0000 + i * 0x1000))
                .collect();
            format!("devices = [{}]", entries.join(", "))
        };
        accepted(&partition(0, "4096", &[&regions(16)]));
        refused(
            &partition(0, "4096", &[&regions(17)]),
            5,
            "partition `p0` has more than 16 device regions, the most a partition may own",
        );
    }

    /// Partitions `p0`, `p1`, `p2` with `[system] schedule = <schedule>` on line 2.
    fn scheduled(schedule: &str) -> String {
        format!(
            "[system]\nschedule = {schedule}\n{}{}{}",
            partition(0, "4096", &[]),
            partition(1, "4096", &[]),
            partition(2, "4096", &[]),
        )
    }

    #[test]
    fn schedule_becomes_partition_indices() {
        let system = accepted(&scheduled("[\"p2\", \"p0\", \"p1\", \"p0\"]"));
        assert_eq!(system.schedules[0], [2, 0, 1, 0]);
        let slots: Vec<String> = (0..256).map(|i| format!("\"p{}\"", i % 3)).collect();
        let system = accepted(&scheduled(&format!("[{}]", slots.join(", "))));
        assert_eq!(system.schedules[0].len(), 256);
        assert_eq!(system.schedules[0][..4], [0, 1, 2, 0]);
    }

    #[test]
    fn schedule_naming_an_unknown_partition() {
        refused(
            &scheduled("[\n  \"p0\",\n  \"p1\",\n  \"pong\",\n  \"p2\",\n]"),
            5,
            "`schedule` names `pong`, which is not a partition of this system: partitions are \
             `p0`, `p1`, `p2`",
        );
    }

    #[test]
    fn schedule_must_not_be_empty_or_too_long() {
        refused(&scheduled("[]"), 2, "`schedule` is empty");
        let slots: Vec<String> = (0..257).map(|i| format!("\"p{}\"", i % 3)).collect();
        refused(
            &scheduled(&format!("[{}]", slots.join(",\n"))),
            258,
            "`schedule` has 257 slots, at most 256 are supported",
        );
    }

    #[test]
    fn schedule_leaving_a_partition_out() {
        refused(
            &scheduled("[\"p0\", \"p2\", \"p0\"]"),
            2,
            "partition `p1` has no slot in `schedule`: it would never run unless another \
             partition donated its time",
        );
    }

    /// A 4-core system with `schedule` (lines from 3 on) and partitions `p0`, `p1`, `p2`
    /// whose `cores` keys are `cores` (each partition 5 lines long).
    fn pinned(schedule: &str, cores: [&str; 3]) -> String {
        let mut text = format!("[system]\ncores = 4\n{schedule}");
        for (i, core) in cores.iter().enumerate() {
            text += &partition(i, "4096", &[&format!("cores = {core}")]);
        }
        text
    }

    #[test]
    fn partitions_are_pinned_to_cores_each_with_its_own_vector() {
        let system = accepted(&pinned("", ["[0]", "[3]", "[3]"]));
        let cores: Vec<u32> = system.partitions.iter().map(|p| p.core).collect();
        assert_eq!(cores, [0, 3, 3]);
        assert_eq!(system.schedules, vec![Vec::<u8>::new(); 4]);
        let system = accepted(&pinned(
            "[system.schedule]\n3 = [\"p2\", \"p1\", \"p2\"]\n0 = [\"p0\"]\n",
            ["[0]", "[3]", "[3]"],
        ));
        assert_eq!(system.schedules, [vec![0], vec![], vec![], vec![2, 1, 2]]);
        let summary = system.summary();
        assert!(
            summary.contains(
                "  2 p2: program hello, memory 4 KiB, guarantee 4 KiB, core 3, 2/3 slots\n"
            ),
            "{summary}"
        );
        assert!(summary.contains("  4 cores; time slices"), "{summary}");
        // Without `cores`, every partition is core 0's; the plain list is core 0's vector.
        let system = accepted(&scheduled("[\"p2\", \"p0\", \"p1\"]"));
        assert!(system.partitions.iter().all(|p| p.core == 0));
        assert_eq!(system.schedules, [vec![2, 0, 1]]);
    }

    #[test]
    fn a_partition_on_a_core_the_system_lacks_or_on_several() {
        refused(
            &pinned("", ["[0]", "[4]", "[1]"]),
            12,
            "partition `p1` is pinned to core 4, but the system has 4 cores (`[system] cores`)",
        );
        refused(&pinned("", ["[0]", "[-1]", "[1]"]), 12, "pinned to core -1");
        refused(
            &format!("{HELLO}cores = [1]\n"),
            5,
            "partition `hello` is pinned to core 1, but the system has 1 core",
        );
        refused(
            &pinned("", ["[0, 1]", "[1]", "[1]"]),
            7,
            "`cores` of `p0` names 2 cores: several vCPUs per partition are not supported yet",
        );
        refused(
            &pinned("", ["[]", "[1]", "[1]"]),
            7,
            "`cores` of `p0` is empty",
        );
    }

    #[test]
    fn a_schedule_naming_a_core_the_system_lacks() {
        refused(
            &pinned(
                "[system.schedule]\n0 = [\"p0\"]\n4 = [\"p1\"]\n",
                ["[0]", "[1]", "[1]"],
            ),
            5,
            "`schedule` names core 4, but the system has 4 cores (`[system] cores`)",
        );
        refused(
            &pinned("[system.schedule]\none = [\"p1\"]\n", ["[0]", "[1]", "[1]"]),
            4,
            "`schedule` key `one` is not a core number",
        );
    }

    #[test]
    fn a_schedule_naming_a_partition_pinned_elsewhere_or_leaving_one_out() {
        refused(
            &pinned(
                "[system.schedule]\n1 = [\"p1\",\n  \"p0\"]\n",
                ["[0]", "[1]", "[1]"],
            ),
            5,
            "`schedule` of core 1 names `p0`, which is pinned to core 0 (its `cores`), not core 1",
        );
        refused(
            &pinned(
                "[system.schedule]\n1 = [\"p1\", \"p1\"]\n",
                ["[0]", "[1]", "[1]"],
            ),
            4,
            "partition `p2` has no slot in `schedule` of core 1: it would never run",
        );
        // The plain list is core 0's: naming a partition of core 1 there is refused too.
        refused(
            &pinned("schedule = [\"p0\", \"p1\"]\n", ["[0]", "[1]", "[1]"]),
            3,
            "`schedule` names `p1`, which is pinned to core 1 (its `cores`), not core 0",
        );
    }

    #[test]
    fn schedule_must_be_a_list_of_names() {
        refused(&scheduled("\"p0\""), 2, "invalid type");
        refused(&scheduled("[0, 1, 2]"), 2, "invalid type");
    }
}
