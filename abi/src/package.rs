//! The boot package: partition descriptions and guest program segments, appended by the
//! image builder (`exo build`) to the kernel image and read by the kernel at boot.
//!
//! The builder has already checked the configuration; the kernel still bounds-checks every
//! field it reads ([`Package::parse`] never panics) and refuses to boot a package that does
//! not hold together.
//!
//! Layout (little-endian, offsets from the start of the package):
//!
//! ```text
//! header    0  magic "EXOPKG\0\0"        8
//!           8  version                   4
//!          12  partition count           4
//!          16  total size in bytes       8
//!          24  partition table offset    8
//!          32  schedule table offset     8   (time-slice vectors, one per core)
//!          40  schedule core count       4   (vectors in the table, <= MAX_CORES)
//!          44  system flags              4   (SYSTEM_FLAG_*)
//!          48  time-slice length, µs     8   (0: DEFAULT_SLICE_US)
//!          56  revocation share          4   (RevocationShare)
//!          60  reserved                  4
//! partition (PARTITION_SIZE bytes each)
//!           0  name, NUL-padded         32
//!          32  memory quota in bytes     8
//!          40  entry point IPA           8
//!          48  RAM base IPA              8
//!          56  segment table offset      8
//!          64  segment count             4
//!          68  flags (PartitionFlags)    4
//!          72  guaranteed bytes          8   (never revoked; >= memory quota)
//!          80  borrow limit in bytes     8   (may be held beyond the guarantee)
//!          88  revocation deadline, µs   8
//!          96  aborts before termination 4
//!         100  core it is pinned to      4   (< MAX_CORES)
//!         104  talks to (bit i: may call or send to partition i) 8
//!         112  resource table offset     8
//!         120  interrupt count           4
//!         124  device region count       4
//!         128  boot argument             8   (x0 at entry of a LINUX partition: its
//!                                            device tree's IPA; 0 otherwise)
//! resource table (per partition)
//!           0  interrupts (INTIDs)       4 each, padded to 8
//!           …  device regions            24 each: physical base 8, IPA 8, size 8
//! schedule table
//!           0  slots of core 0..N        4 each (0: one slot per partition pinned there)
//!         4*N  partition index           1 per slot, core 0's slots first, then core 1's…
//! segment (SEGMENT_SIZE bytes each)
//!           0  IPA                       8
//!           8  data offset               8
//!          16  bytes in the package      8
//!          24  bytes in memory           8
//!          32  rights (`Rights`)         4
//! ```

use crate::bytes::{Name, u32_at, u64_at};
use crate::{Ipa, PAGE_SIZE, Rights};

bitflags::bitflags! {
    /// What a partition's configuration allows it beyond its own resources (partition
    /// record offset 68). Unknown bits make the package malformed.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct PartitionFlags: u32 {
        /// May call `EXO_SELF_CHECK`, which scans the whole frame table and every stage 2
        /// with interrupts masked: a test and diagnosis tool, not for every partition.
        const SELF_CHECK = 1 << 0;
        /// Runs an unmodified Linux kernel, not a library OS: it enters with `x0` = its
        /// device tree's IPA (the boot argument, offset 128), and the kernel serves its GIC
        /// distributor accesses through `gicd_filter` and reads its debug and
        /// performance-monitor registers as zero.
        const LINUX = 1 << 1;
    }
}

/// How the kernel shares a claim it cannot cover from free frames among the borrowers
/// (header offset 56). Which frames each borrower gives back stays the library OS's choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u32)]
pub enum RevocationShare {
    /// Each borrower is asked for a share proportional to what it could give back, so no
    /// single borrower pays for everyone's borrowing.
    #[default]
    Proportional = 0,
    /// The borrower holding the most revocable frames is asked first, for as much as it can
    /// give; then the next. Fewer partitions are disturbed.
    LargestFirst = 1,
    /// Borrowers are asked in partition order (the configuration's), each for as much as it
    /// can give: a fixed, predictable victim order.
    PartitionOrder = 2,
}

impl RevocationShare {
    /// Every policy, with the name configurations use.
    pub const ALL: [(RevocationShare, &'static str); 3] = [
        (RevocationShare::Proportional, "proportional"),
        (RevocationShare::LargestFirst, "largest-first"),
        (RevocationShare::PartitionOrder, "partition-order"),
    ];

    /// The policy encoded as `raw`, if there is one.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Self::ALL.iter().map(|(s, _)| *s).find(|s| *s as u32 == raw)
    }

    /// The name configurations use.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("proportional", |(_, n)| n)
    }
}

/// Time-slice length when the package gives none (10 ms).
pub const DEFAULT_SLICE_US: u64 = 10_000;
/// Shortest time slice a package may ask for (100 µs): below that, world switches and the
/// tick itself take a noticeable share of the slice.
pub const MIN_SLICE_US: u64 = 100;
/// Longest time slice a package may ask for (1 s).
pub const MAX_SLICE_US: u64 = 1_000_000;

/// Most cores the kernel brings up (`exo_kernel::cpus`), and so the most a board may have
/// QEMU start (`[system] cores`).
pub const MAX_CORES: usize = 8;

/// Magic number at offset 0.
pub const MAGIC: [u8; 8] = *b"EXOPKG\0\0";
/// Format version this crate reads and writes.
pub const VERSION: u32 = 6;
/// System flag: fill every free frame with [`POISON_BYTE`] at boot, before partitions load,
/// so a frame handed out unscrubbed shows (test configurations only: RAM on a real board
/// does not start zeroed, QEMU's does).
pub const SYSTEM_FLAG_POISON_FREE_RAM: u32 = 1 << 0;
/// What [`SYSTEM_FLAG_POISON_FREE_RAM`] fills free frames with.
pub const POISON_BYTE: u8 = 0xA5;
/// Size of the header.
pub const HEADER_SIZE: usize = 64;
/// Size of one partition record.
pub const PARTITION_SIZE: usize = 136;
/// Size of one segment record.
pub const SEGMENT_SIZE: usize = 40;
/// Where guest RAM starts in every partition's IPA space unless the configuration says
/// otherwise; the library OS linker script links guests here.
pub const DEFAULT_RAM_BASE: Ipa = Ipa::new(0x4000_0000);
/// Most partitions a package may describe.
pub const MAX_PARTITIONS: usize = 64;
/// Size of one device-region record.
pub const DEVICE_SIZE: usize = 24;
/// Most interrupts one partition may own.
pub const MAX_INTERRUPTS: usize = 64;
/// Most device regions one partition may own.
pub const MAX_DEVICES: usize = 16;
/// Most slots in a core's time-slice vector.
pub const MAX_SLOTS: usize = 256;
/// Lowest INTID a partition may own: the first shared peripheral interrupt (SPI).
pub const FIRST_SPI: u32 = 32;
/// Highest INTID a partition may own (GICv2/GICv3 SPIs end at 1019).
pub const LAST_SPI: u32 = 1019;
/// Device regions end at or below this physical address: 48 bits, the largest output
/// address of AArch64 stage 2 without FEAT_LPA. A higher address would lose its top bits in
/// a stage-2 descriptor and map some other frame (RAM, even) than the one described.
pub const PHYS_ADDRESS_LIMIT: u64 = 1 << 48;

/// Why a package was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackageError {
    /// No magic number: nothing was appended to the kernel.
    Missing,
    /// The version is not [`VERSION`].
    Version(u32),
    /// A field points outside the package or is inconsistent.
    Malformed(&'static str),
}

impl core::fmt::Display for PackageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PackageError::Missing => f.write_str("no boot package after the kernel image"),
            PackageError::Version(v) => write!(f, "boot package version {v}, expected {VERSION}"),
            PackageError::Malformed(why) => write!(f, "malformed boot package: {why}"),
        }
    }
}

/// A validated view of a package.
#[derive(Clone, Copy, Debug)]
pub struct Package<'a> {
    bytes: &'a [u8],
    count: usize,
    table: usize,
    schedules: [&'a [u8]; MAX_CORES],
    flags: u32,
    slice_us: u64,
    share: RevocationShare,
}

/// One partition's description.
#[derive(Clone, Copy, Debug)]
pub struct PartitionRecord<'a> {
    /// Partition name.
    pub name: Name,
    /// Memory quota in bytes (a multiple of [`PAGE_SIZE`]).
    pub memory_bytes: u64,
    /// IPA of the first instruction.
    pub entry: Ipa,
    /// IPA at which its RAM starts.
    pub ram_base: Ipa,
    /// What its configuration allows it beyond its own resources.
    pub flags: PartitionFlags,
    /// Bytes of memory guaranteed (never revoked), at least `memory_bytes`.
    pub guaranteed_bytes: u64,
    /// Bytes it may hold beyond the guarantee (borrowed, revocable).
    pub borrow_bytes: u64,
    /// How long it has to answer a revocation request, in microseconds.
    pub revocation_deadline_us: u64,
    /// Aborts it may suffer before it is terminated.
    pub max_aborts: u32,
    /// Partitions it may call or send to: bit `i` for partition id `i`.
    pub talks_to: u64,
    /// The core it runs on (below [`MAX_CORES`]).
    pub core: u32,
    /// `x0` at entry for a [`PartitionFlags::LINUX`] partition: its device tree's IPA.
    pub boot_argument: u64,
    bytes: &'a [u8],
    segments: usize,
    segment_count: usize,
    resources: usize,
    interrupt_count: usize,
    device_count: usize,
}

/// A device MMIO region a partition owns: mapped in its stage 2 as Device memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceRegion {
    /// Physical base address (page aligned).
    pub phys: crate::PhysAddr,
    /// Where the partition sees it (page aligned).
    pub ipa: Ipa,
    /// Size in bytes (a whole number of pages).
    pub size: u64,
}

/// One loadable segment of a guest program.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// Where the segment starts in the partition's IPA space.
    pub ipa: Ipa,
    /// Initialised contents; the rest up to `mem_size` is zero.
    pub data: &'a [u8],
    /// Size in memory.
    pub mem_size: u64,
    /// Access rights, from the ELF segment's `p_flags`.
    pub rights: Rights,
}

impl<'a> Package<'a> {
    /// Validates the header and every record, so later accessors cannot fail.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, PackageError> {
        use PackageError::Malformed;
        if bytes.get(..8) != Some(&MAGIC[..]) {
            return Err(PackageError::Missing);
        }
        let version = u32_at(bytes, 8).ok_or(Malformed("truncated header"))?;
        if version != VERSION {
            return Err(PackageError::Version(version));
        }
        let count = u32_at(bytes, 12).ok_or(Malformed("truncated header"))? as usize;
        let total = u64_at(bytes, 16).ok_or(Malformed("truncated header"))?;
        let table = u64_at(bytes, 24).ok_or(Malformed("truncated header"))?;
        let total = usize::try_from(total).map_err(|_| Malformed("size"))?;
        if total > bytes.len() || total < HEADER_SIZE {
            return Err(Malformed("total size exceeds the image"));
        }
        if count == 0 || count > MAX_PARTITIONS {
            return Err(Malformed("partition count"));
        }
        let schedule_at = u64_at(bytes, 32).ok_or(Malformed("truncated header"))?;
        let cores = u32_at(bytes, 40).ok_or(Malformed("truncated header"))? as usize;
        let flags = u32_at(bytes, 44).ok_or(Malformed("truncated header"))?;
        if flags & !SYSTEM_FLAG_POISON_FREE_RAM != 0 {
            return Err(Malformed("unknown system flags"));
        }
        let slice_us = match u64_at(bytes, 48).ok_or(Malformed("truncated header"))? {
            0 => DEFAULT_SLICE_US,
            us if (MIN_SLICE_US..=MAX_SLICE_US).contains(&us) => us,
            _ => return Err(Malformed("time-slice length out of range")),
        };
        let share = u32_at(bytes, 56)
            .and_then(RevocationShare::from_raw)
            .ok_or(Malformed("unknown revocation share"))?;
        let bytes = &bytes[..total];
        let schedule_at = usize::try_from(schedule_at).map_err(|_| Malformed("schedule table"))?;
        let schedules = schedules(bytes, schedule_at, cores, count)?;
        let package = Package {
            bytes,
            count,
            table: usize::try_from(table).map_err(|_| Malformed("table offset"))?,
            schedules,
            flags,
            slice_us,
            share,
        };
        for i in 0..count {
            let partition = package.read_partition(i)?;
            if !partition.memory_bytes.is_multiple_of(PAGE_SIZE) || partition.memory_bytes == 0 {
                return Err(Malformed("memory quota is not a whole number of pages"));
            }
            if !partition.guaranteed_bytes.is_multiple_of(PAGE_SIZE)
                || !partition.borrow_bytes.is_multiple_of(PAGE_SIZE)
                || partition.guaranteed_bytes < partition.memory_bytes
            {
                return Err(Malformed("guarantee or borrow limit"));
            }
            if !partition.ram_base.is_page_aligned() {
                return Err(Malformed("RAM base is not page aligned"));
            }
            Package::check_pinning(partition.core)?;
            for s in 0..partition.segment_count {
                partition.read_segment(s)?;
            }
            if partition.interrupt_count > MAX_INTERRUPTS || partition.device_count > MAX_DEVICES {
                return Err(Malformed("too many interrupts or device regions"));
            }
            for i in 0..partition.interrupt_count {
                let intid = partition.read_interrupt(i)?;
                if !(FIRST_SPI..=LAST_SPI).contains(&intid) {
                    return Err(Malformed("interrupt is not an SPI"));
                }
            }
            for d in 0..partition.device_count {
                let region = partition.read_device(d)?;
                if !region.phys.is_page_aligned()
                    || !region.ipa.is_page_aligned()
                    || region.size == 0
                    || !region.size.is_multiple_of(PAGE_SIZE)
                    || region.ipa.checked_add(region.size).is_none()
                    || region
                        .phys
                        .raw()
                        .checked_add(region.size)
                        .is_none_or(|end| end > PHYS_ADDRESS_LIMIT)
                {
                    return Err(Malformed("device region"));
                }
            }
        }
        Ok(package)
    }

    /// The total size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the package is empty (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Number of partitions.
    pub fn partition_count(&self) -> usize {
        self.count
    }

    /// Core 0's time-slice vector: one partition index per slot. Empty means one slot per
    /// partition pinned to core 0, in configuration order.
    pub fn schedule(&self) -> &'a [u8] {
        self.schedules[0]
    }

    /// Core `core`'s time-slice vector: one partition index per slot, every one pinned to
    /// `core`. Empty (also for a core past [`MAX_CORES`]) means one slot per partition
    /// pinned there, in configuration order.
    pub fn schedule_of(&self, core: usize) -> &'a [u8] {
        self.schedules.get(core).copied().unwrap_or_default()
    }

    /// Refuses a partition pinned to a core past [`MAX_CORES`]. (A partition left out of
    /// its core's vector is consistent: it runs on time other partitions donate it. The
    /// host tool refuses that configuration; the kernel need not.)
    fn check_pinning(core: u32) -> Result<(), PackageError> {
        if usize::try_from(core).is_ok_and(|c| c < MAX_CORES) {
            Ok(())
        } else {
            Err(PackageError::Malformed(
                "partition pinned to a core past MAX_CORES",
            ))
        }
    }

    /// The core partition `index` is pinned to, if it exists and the record reads.
    fn core_of(bytes: &[u8], table: usize, index: usize) -> Option<u32> {
        let at = index.checked_mul(PARTITION_SIZE)?.checked_add(table)?;
        u32_at(bytes, at.checked_add(100)?)
    }

    /// System flags (`SYSTEM_FLAG_*`); unknown bits were refused by [`Package::parse`].
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Length of a time slice in microseconds (within [`MIN_SLICE_US`]..=[`MAX_SLICE_US`]).
    pub fn slice_us(&self) -> u64 {
        self.slice_us
    }

    /// How a revocation request is shared among borrowers.
    pub fn revocation_share(&self) -> RevocationShare {
        self.share
    }

    /// The partitions in configuration order.
    pub fn partitions(&self) -> impl Iterator<Item = PartitionRecord<'a>> + '_ {
        (0..self.count).filter_map(|i| self.read_partition(i).ok())
    }

    fn read_partition(&self, index: usize) -> Result<PartitionRecord<'a>, PackageError> {
        use PackageError::Malformed;
        let at = index
            .checked_mul(PARTITION_SIZE)
            .and_then(|o| o.checked_add(self.table))
            .ok_or(Malformed("partition table"))?;
        let b = self.bytes;
        let bad = Malformed("partition record out of bounds");
        if at
            .checked_add(PARTITION_SIZE)
            .is_none_or(|end| end > b.len())
        {
            return Err(bad);
        }
        let name = Name::read(b, at).ok_or(bad)?;
        if name.as_str().is_empty() || name.as_str() == "?" {
            return Err(Malformed("partition name"));
        }
        Ok(PartitionRecord {
            name,
            memory_bytes: u64_at(b, at + 32).ok_or(bad)?,
            entry: Ipa::new(u64_at(b, at + 40).ok_or(bad)?),
            ram_base: Ipa::new(u64_at(b, at + 48).ok_or(bad)?),
            segments: usize::try_from(u64_at(b, at + 56).ok_or(bad)?).map_err(|_| bad)?,
            segment_count: u32_at(b, at + 64).ok_or(bad)? as usize,
            flags: PartitionFlags::from_bits(u32_at(b, at + 68).ok_or(bad)?)
                .ok_or(Malformed("partition flags"))?,
            guaranteed_bytes: u64_at(b, at + 72).ok_or(bad)?,
            borrow_bytes: u64_at(b, at + 80).ok_or(bad)?,
            revocation_deadline_us: u64_at(b, at + 88).ok_or(bad)?,
            max_aborts: u32_at(b, at + 96).ok_or(bad)?,
            core: u32_at(b, at + 100).ok_or(bad)?,
            talks_to: u64_at(b, at + 104).ok_or(bad)?,
            boot_argument: u64_at(b, at + 128).ok_or(bad)?,
            resources: usize::try_from(u64_at(b, at + 112).ok_or(bad)?).map_err(|_| bad)?,
            interrupt_count: u32_at(b, at + 120).ok_or(bad)? as usize,
            device_count: u32_at(b, at + 124).ok_or(bad)? as usize,
            bytes: b,
        })
    }
}

/// Reads the schedule table at `at`: `cores` slot counts, then the slots, core after core.
/// Every slot must name one of the `count` partitions pinned to that vector's core
/// (partition records are read from `bytes`' header table offset).
fn schedules(
    bytes: &[u8],
    at: usize,
    cores: usize,
    count: usize,
) -> Result<[&[u8]; MAX_CORES], PackageError> {
    use PackageError::Malformed;
    if cores > MAX_CORES {
        return Err(Malformed(
            "time-slice vectors for more than MAX_CORES cores",
        ));
    }
    let table = u64_at(bytes, 24)
        .and_then(|t| usize::try_from(t).ok())
        .ok_or(Malformed("table offset"))?;
    let mut vectors: [&[u8]; MAX_CORES] = [&[]; MAX_CORES];
    let mut next = at
        .checked_add(cores * 4)
        .ok_or(Malformed("time-slice vector out of bounds"))?;
    for (core, vector) in vectors.iter_mut().enumerate().take(cores) {
        let slots = u32_at(bytes, at + core * 4)
            .ok_or(Malformed("time-slice vector out of bounds"))? as usize;
        if slots > MAX_SLOTS {
            return Err(Malformed("time-slice vector too long"));
        }
        *vector = next
            .checked_add(slots)
            .and_then(|end| bytes.get(next..end))
            .ok_or(Malformed("time-slice vector out of bounds"))?;
        next += slots;
        for &slot in vector.iter() {
            if usize::from(slot) >= count {
                return Err(Malformed(
                    "time-slice vector names a partition that does not exist",
                ));
            }
            if Package::core_of(bytes, table, usize::from(slot)) != Some(core as u32) {
                return Err(Malformed(
                    "time-slice vector names a partition pinned to another core",
                ));
            }
        }
    }
    Ok(vectors)
}

impl<'a> PartitionRecord<'a> {
    /// The program's segments.
    pub fn segments(&self) -> impl Iterator<Item = Segment<'a>> + '_ {
        (0..self.segment_count).filter_map(|i| self.read_segment(i).ok())
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segment_count
    }

    /// The SPIs (INTIDs) the partition owns.
    pub fn interrupts(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.interrupt_count).filter_map(|i| self.read_interrupt(i).ok())
    }

    /// The device MMIO regions the partition owns.
    pub fn devices(&self) -> impl Iterator<Item = DeviceRegion> + '_ {
        (0..self.device_count).filter_map(|i| self.read_device(i).ok())
    }

    /// Offset of the first device record: after the interrupts, padded to 8 bytes.
    fn devices_at(&self) -> Option<usize> {
        self.resources
            .checked_add(self.interrupt_count.checked_mul(4)?)?
            .checked_next_multiple_of(8)
    }

    fn read_interrupt(&self, index: usize) -> Result<u32, PackageError> {
        let bad = PackageError::Malformed("interrupt record out of bounds");
        let at = index
            .checked_mul(4)
            .and_then(|o| o.checked_add(self.resources))
            .ok_or(bad)?;
        u32_at(self.bytes, at).ok_or(bad)
    }

    fn read_device(&self, index: usize) -> Result<DeviceRegion, PackageError> {
        let bad = PackageError::Malformed("device record out of bounds");
        let at = index
            .checked_mul(DEVICE_SIZE)
            .and_then(|o| o.checked_add(self.devices_at()?))
            .ok_or(bad)?;
        Ok(DeviceRegion {
            phys: crate::PhysAddr::new(u64_at(self.bytes, at).ok_or(bad)?),
            ipa: Ipa::new(u64_at(self.bytes, at + 8).ok_or(bad)?),
            size: u64_at(self.bytes, at + 16).ok_or(bad)?,
        })
    }

    /// The RAM range end (exclusive).
    pub fn ram_end(&self) -> Option<Ipa> {
        self.ram_base.checked_add(self.memory_bytes)
    }

    fn read_segment(&self, index: usize) -> Result<Segment<'a>, PackageError> {
        use PackageError::Malformed;
        let bad = Malformed("segment record out of bounds");
        let at = index
            .checked_mul(SEGMENT_SIZE)
            .and_then(|o| o.checked_add(self.segments))
            .ok_or(bad)?;
        let b = self.bytes;
        if at.checked_add(SEGMENT_SIZE).is_none_or(|end| end > b.len()) {
            return Err(bad);
        }
        let ipa = Ipa::new(u64_at(b, at).ok_or(bad)?);
        let offset = usize::try_from(u64_at(b, at + 8).ok_or(bad)?).map_err(|_| bad)?;
        let file_size = usize::try_from(u64_at(b, at + 16).ok_or(bad)?).map_err(|_| bad)?;
        let mem_size = u64_at(b, at + 24).ok_or(bad)?;
        let rights = Rights::from_bits(u32_at(b, at + 32).ok_or(bad)?)
            .ok_or(Malformed("undefined segment rights"))?;
        let data = offset
            .checked_add(file_size)
            .and_then(|end| b.get(offset..end))
            .ok_or(Malformed("segment data out of bounds"))?;
        if (file_size as u64) > mem_size {
            return Err(Malformed("segment file size exceeds memory size"));
        }
        let end = ipa
            .checked_add(mem_size)
            .ok_or(Malformed("segment wraps"))?;
        let ram_end = self.ram_end().ok_or(Malformed("RAM range wraps"))?;
        if ipa < self.ram_base || end > ram_end {
            return Err(Malformed("segment outside the partition's RAM"));
        }
        Ok(Segment {
            ipa,
            data,
            mem_size,
            rights,
        })
    }
}

/// Builders for the host tools.
#[cfg(feature = "alloc")]
pub mod build {
    use super::*;
    use crate::bytes::{put_u32, put_u64};
    use alloc::vec::Vec;

    /// A segment to write.
    #[derive(Clone, Debug)]
    pub struct SegmentSpec {
        /// Start IPA.
        pub ipa: Ipa,
        /// Initialised bytes.
        pub data: Vec<u8>,
        /// Size in memory.
        pub mem_size: u64,
        /// Access rights.
        pub rights: Rights,
    }

    /// A partition to write.
    #[derive(Clone, Debug)]
    pub struct PartitionSpec {
        /// Name.
        pub name: Name,
        /// Quota in bytes.
        pub memory_bytes: u64,
        /// Entry IPA.
        pub entry: Ipa,
        /// RAM base IPA.
        pub ram_base: Ipa,
        /// Segments.
        pub segments: Vec<SegmentSpec>,
        /// Guaranteed bytes (>= `memory_bytes`).
        pub guaranteed_bytes: u64,
        /// Borrow limit in bytes.
        pub borrow_bytes: u64,
        /// Revocation deadline in microseconds.
        pub revocation_deadline_us: u64,
        /// Aborts before termination.
        pub max_aborts: u32,
        /// Bit `i`: may call or send to partition `i`.
        pub talks_to: u64,
        /// What it may do beyond its own resources.
        pub flags: super::PartitionFlags,
        /// SPIs it owns.
        pub interrupts: Vec<u32>,
        /// Device MMIO regions it owns.
        pub devices: Vec<DeviceRegion>,
        /// The core it is pinned to.
        pub core: u32,
        /// `x0` at entry of a Linux partition (its device tree's IPA), else 0.
        pub boot_argument: u64,
    }

    /// System-wide settings of a package.
    #[derive(Clone, Debug, Default)]
    pub struct SystemSpec<'s> {
        /// Each core's time-slice vector, core 0's first (partition indices, each pinned to
        /// that core; empty, or a core past the end, for one slot per partition pinned there).
        pub schedules: &'s [&'s [u8]],
        /// System flags (`SYSTEM_FLAG_*`).
        pub flags: u32,
        /// Time-slice length in microseconds (0: [`DEFAULT_SLICE_US`]).
        pub slice_us: u64,
        /// How revocation requests are shared among borrowers.
        pub share: RevocationShare,
    }

    /// Encodes a package with core 0's time-slice vector `schedule` (partition indices; empty
    /// for one slot per partition) and default system settings. Data is placed 16-byte
    /// aligned after the tables.
    pub fn encode(partitions: &[PartitionSpec], schedule: &[u8]) -> Vec<u8> {
        encode_with_flags(partitions, schedule, 0)
    }

    /// [`encode`] with system flags (`SYSTEM_FLAG_*`).
    pub fn encode_with_flags(partitions: &[PartitionSpec], schedule: &[u8], flags: u32) -> Vec<u8> {
        encode_system(
            partitions,
            &SystemSpec {
                schedules: &[schedule],
                flags,
                ..SystemSpec::default()
            },
        )
    }

    /// Encodes a package with every system setting of `system`.
    pub fn encode_system(partitions: &[PartitionSpec], system: &SystemSpec<'_>) -> Vec<u8> {
        let SystemSpec {
            schedules, flags, ..
        } = *system;
        let segment_total: usize = partitions.iter().map(|p| p.segments.len()).sum();
        let table = HEADER_SIZE;
        let segments = table + partitions.len() * PARTITION_SIZE;
        let mut data_at = segments + segment_total * SEGMENT_SIZE;
        let mut out = alloc::vec![0; data_at];
        out[..8].copy_from_slice(&MAGIC);
        put_u32(&mut out, 8, VERSION);
        put_u32(&mut out, 12, partitions.len() as u32);
        put_u64(&mut out, 24, table as u64);
        put_u32(&mut out, 44, flags);
        put_u64(&mut out, 48, system.slice_us);
        put_u32(&mut out, 56, system.share as u32);
        let mut segment_index = 0;
        for (i, p) in partitions.iter().enumerate() {
            let at = table + i * PARTITION_SIZE;
            p.name.write(&mut out, at);
            put_u64(&mut out, at + 32, p.memory_bytes);
            put_u64(&mut out, at + 40, p.entry.raw());
            put_u64(&mut out, at + 48, p.ram_base.raw());
            put_u64(
                &mut out,
                at + 56,
                (segments + segment_index * SEGMENT_SIZE) as u64,
            );
            put_u32(&mut out, at + 64, p.segments.len() as u32);
            put_u32(&mut out, at + 68, p.flags.bits());
            put_u64(&mut out, at + 72, p.guaranteed_bytes);
            put_u64(&mut out, at + 80, p.borrow_bytes);
            put_u64(&mut out, at + 88, p.revocation_deadline_us);
            put_u32(&mut out, at + 96, p.max_aborts);
            put_u32(&mut out, at + 100, p.core);
            put_u64(&mut out, at + 104, p.talks_to);
            put_u64(&mut out, at + 128, p.boot_argument);
            for s in &p.segments {
                let at = segments + segment_index * SEGMENT_SIZE;
                data_at = data_at.next_multiple_of(16);
                put_u64(&mut out, at, s.ipa.raw());
                put_u64(&mut out, at + 8, data_at as u64);
                put_u64(&mut out, at + 16, s.data.len() as u64);
                put_u64(&mut out, at + 24, s.mem_size);
                put_u32(&mut out, at + 32, s.rights.bits());
                out.resize(data_at, 0);
                out.extend_from_slice(&s.data);
                data_at = out.len();
                segment_index += 1;
            }
        }
        for (i, p) in partitions.iter().enumerate() {
            let at = table + i * PARTITION_SIZE;
            let resources = out.len().next_multiple_of(8);
            out.resize(resources, 0);
            put_u64(&mut out, at + 112, resources as u64);
            put_u32(&mut out, at + 120, p.interrupts.len() as u32);
            put_u32(&mut out, at + 124, p.devices.len() as u32);
            for intid in &p.interrupts {
                out.extend_from_slice(&intid.to_le_bytes());
            }
            out.resize(out.len().next_multiple_of(8), 0);
            for d in &p.devices {
                out.extend_from_slice(&d.phys.raw().to_le_bytes());
                out.extend_from_slice(&d.ipa.raw().to_le_bytes());
                out.extend_from_slice(&d.size.to_le_bytes());
            }
        }
        let schedule_at = out.len() as u64;
        put_u64(&mut out, 32, schedule_at);
        put_u32(&mut out, 40, schedules.len() as u32);
        for vector in schedules {
            out.extend_from_slice(&(vector.len() as u32).to_le_bytes());
        }
        for vector in schedules {
            out.extend_from_slice(vector);
        }
        let total = out.len() as u64;
        put_u64(&mut out, 16, total);
        out
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::build::*;
    use super::*;

    fn spec() -> Vec<PartitionSpec> {
        vec![
            PartitionSpec {
                name: Name::new("hello").unwrap(),
                memory_bytes: 0x10_0000,
                entry: DEFAULT_RAM_BASE,
                ram_base: DEFAULT_RAM_BASE,
                segments: vec![SegmentSpec {
                    ipa: DEFAULT_RAM_BASE,
                    data: vec![1, 2, 3],
                    mem_size: 0x2000,
                    rights: Rights::READ | Rights::EXECUTE,
                }],
                guaranteed_bytes: 0x20_0000,
                borrow_bytes: 0x40_0000,
                revocation_deadline_us: 5000,
                max_aborts: 2,
                talks_to: 0b10,
                flags: PartitionFlags::SELF_CHECK,
                interrupts: vec![40, 41],
                devices: vec![DeviceRegion {
                    phys: crate::PhysAddr::new(0x0904_0000),
                    ipa: Ipa::new(0x0904_0000),
                    size: 0x1000,
                }],
                core: 0,
                boot_argument: 0,
            },
            PartitionSpec {
                name: Name::new("other").unwrap(),
                memory_bytes: 0x2000,
                entry: DEFAULT_RAM_BASE.add(4),
                ram_base: DEFAULT_RAM_BASE,
                segments: vec![],
                guaranteed_bytes: 0x2000,
                borrow_bytes: 0,
                revocation_deadline_us: 1000,
                max_aborts: 0,
                talks_to: 0,
                flags: PartitionFlags::LINUX,
                interrupts: vec![],
                devices: vec![],
                core: 0,
                boot_argument: 0x4220_0000,
            },
        ]
    }

    #[test]
    fn round_trips() {
        let bytes = encode(&spec(), &[0, 1, 0]);
        let package = Package::parse(&bytes).unwrap();
        let parts: Vec<_> = package.partitions().collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name.as_str(), "hello");
        assert_eq!(parts[1].entry, DEFAULT_RAM_BASE.add(4));
        assert_eq!(parts[0].guaranteed_bytes, 0x20_0000);
        assert_eq!(parts[0].borrow_bytes, 0x40_0000);
        assert_eq!(parts[0].revocation_deadline_us, 5000);
        assert_eq!(parts[0].max_aborts, 2);
        assert_eq!(parts[0].talks_to, 0b10);
        assert_eq!(parts[0].flags, PartitionFlags::SELF_CHECK);
        assert_eq!(parts[1].flags, PartitionFlags::LINUX);
        assert_eq!(
            (parts[0].boot_argument, parts[1].boot_argument),
            (0, 0x4220_0000)
        );
        let segs: Vec<_> = parts[0].segments().collect();
        assert_eq!(segs[0].data, &[1, 2, 3]);
        assert_eq!(parts[0].interrupts().collect::<Vec<_>>(), vec![40, 41]);
        assert_eq!(parts[0].devices().count(), 1);
        assert_eq!(parts[0].devices().next().unwrap().size, 0x1000);
        assert_eq!(parts[1].interrupts().count(), 0);
        assert_eq!(package.schedule(), &[0, 1, 0]);
        assert_eq!(segs[0].mem_size, 0x2000);
    }

    #[test]
    fn refuses_what_does_not_hold_together() {
        assert_eq!(
            Package::parse(b"nothing here").unwrap_err(),
            PackageError::Missing
        );
        let mut bad = spec();
        bad[0].segments[0].mem_size = 0x20_0000; // past the quota
        assert!(matches!(
            Package::parse(&encode(&bad, &[])),
            Err(PackageError::Malformed(_))
        ));
        let good = encode(&spec(), &[0, 1, 0]);
        for cut in [HEADER_SIZE, good.len() - 1] {
            let mut truncated = good[..cut].to_vec();
            truncated[16..24].copy_from_slice(&(good.len() as u64).to_le_bytes());
            assert!(Package::parse(&truncated).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn refuses_bad_resources() {
        let mut bad = spec();
        bad[0].interrupts = vec![27]; // a PPI: never a partition's
        assert!(Package::parse(&encode(&bad, &[])).is_err());
        let mut bad = spec();
        bad[0].devices[0].size = 0x800;
        assert!(Package::parse(&encode(&bad, &[])).is_err());
        // Found by the `package` fuzz target: a device address past 48 bits, which the
        // kernel's RAM check let through and the stage-2 descriptor truncated.
        let mut bad = spec();
        bad[0].devices[0].phys = crate::PhysAddr::new(0x2802_0000_0900_0000);
        assert!(Package::parse(&encode(&bad, &[])).is_err());
        bad[0].devices[0].phys = crate::PhysAddr::new(PHYS_ADDRESS_LIMIT - 0x1000);
        assert!(Package::parse(&encode(&bad, &[])).is_ok());
        assert!(Package::parse(&encode(&spec(), &[2])).is_err());
        // A flag this version does not know.
        let mut bytes = encode(&spec(), &[]);
        bytes[HEADER_SIZE + 68] |= 0x80;
        assert_eq!(
            Package::parse(&bytes).unwrap_err(),
            PackageError::Malformed("partition flags")
        );
    }

    #[test]
    fn system_flags_round_trip_and_unknown_ones_are_refused() {
        let plain = encode(&spec(), &[]);
        assert_eq!(Package::parse(&plain).unwrap().flags(), 0);
        let poisoned = encode_with_flags(&spec(), &[], SYSTEM_FLAG_POISON_FREE_RAM);
        assert_eq!(
            Package::parse(&poisoned).unwrap().flags(),
            SYSTEM_FLAG_POISON_FREE_RAM
        );
        assert!(Package::parse(&encode_with_flags(&spec(), &[], 1 << 7)).is_err());
    }

    #[test]
    fn slice_length_and_revocation_share_round_trip_and_bad_ones_are_refused() {
        let plain = Package::parse(&encode(&spec(), &[])).unwrap().slice_us();
        assert_eq!(plain, DEFAULT_SLICE_US);
        for (share, _) in RevocationShare::ALL {
            let system = SystemSpec {
                slice_us: 500,
                share,
                ..SystemSpec::default()
            };
            let bytes = encode_system(&spec(), &system);
            let package = Package::parse(&bytes).unwrap();
            assert_eq!(
                (package.slice_us(), package.revocation_share()),
                (500, share)
            );
        }
        for slice_us in [MIN_SLICE_US - 1, MAX_SLICE_US + 1] {
            let system = SystemSpec {
                slice_us,
                ..SystemSpec::default()
            };
            assert_eq!(
                Package::parse(&encode_system(&spec(), &system)).unwrap_err(),
                PackageError::Malformed("time-slice length out of range")
            );
        }
        let mut bytes = encode(&spec(), &[]);
        bytes[56] = 3;
        assert_eq!(
            Package::parse(&bytes).unwrap_err(),
            PackageError::Malformed("unknown revocation share")
        );
    }

    /// Three partitions: `hello` on core 0, `other` and `third` on core 2.
    fn pinned() -> Vec<PartitionSpec> {
        let mut specs = spec();
        specs[1].core = 2;
        let mut third = specs[1].clone();
        third.name = Name::new("third").unwrap();
        specs.push(third);
        specs
    }

    fn with_schedules(specs: &[PartitionSpec], schedules: &[&[u8]]) -> Vec<u8> {
        let system = SystemSpec {
            schedules,
            ..SystemSpec::default()
        };
        encode_system(specs, &system)
    }

    #[test]
    fn partitions_carry_their_core_and_each_core_its_vector() {
        let bytes = with_schedules(&pinned(), &[&[0], &[], &[2, 1, 2]]);
        let package = Package::parse(&bytes).unwrap();
        let cores: Vec<u32> = package.partitions().map(|p| p.core).collect();
        assert_eq!(cores, [0, 2, 2]);
        assert_eq!(package.schedule(), [0]);
        assert_eq!(package.schedule_of(1), [] as [u8; 0]);
        assert_eq!(package.schedule_of(2), [2, 1, 2]);
        assert_eq!(package.schedule_of(3), [] as [u8; 0]);
        assert_eq!(package.schedule_of(MAX_CORES), [] as [u8; 0]);
        // No vectors at all: every core's default.
        assert!(Package::parse(&with_schedules(&pinned(), &[])).is_ok());
    }

    #[test]
    fn refuses_vectors_that_do_not_match_the_pinning() {
        let refused = |specs: &[PartitionSpec], schedules: &[&[u8]]| {
            Package::parse(&with_schedules(specs, schedules)).unwrap_err()
        };
        assert_eq!(
            refused(&pinned(), &[&[0, 1]]),
            PackageError::Malformed("time-slice vector names a partition pinned to another core")
        );
        // Left out of its core's vector: it runs only on donated time, as on core 0.
        assert!(Package::parse(&with_schedules(&pinned(), &[&[0], &[], &[2]])).is_ok());
        assert_eq!(
            refused(&pinned(), &[&[0], &[], &[2, 3]]),
            PackageError::Malformed("time-slice vector names a partition that does not exist")
        );
        let mut far = pinned();
        far[0].core = MAX_CORES as u32;
        assert_eq!(
            refused(&far, &[]),
            PackageError::Malformed("partition pinned to a core past MAX_CORES")
        );
        let nine: Vec<&[u8]> = vec![&[]; MAX_CORES + 1];
        assert_eq!(
            refused(&pinned(), &nine),
            PackageError::Malformed("time-slice vectors for more than MAX_CORES cores")
        );
    }

    /// Found by the `package` fuzz target: a resource table offset just below `usize::MAX`
    /// overflowed rounding up to the device records (a panic with overflow checks, else
    /// device records read from offset 0).
    #[test]
    fn resource_offsets_near_the_end_of_the_address_space_are_refused() {
        let mut bytes = encode(&spec(), &[]);
        let table = u64::from_le_bytes(bytes[24..32].try_into().unwrap()) as usize;
        bytes[table + 112..table + 120].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
        bytes[table + 120..table + 124].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            Package::parse(&bytes).unwrap_err(),
            PackageError::Malformed("device record out of bounds")
        );
    }

    #[test]
    fn parsing_garbage_never_panics() {
        let good = encode(&spec(), &[0, 1, 0]);
        for i in 0..good.len() {
            for value in [0u8, 0xFF, 0x80] {
                let mut bytes = good.clone();
                bytes[i] = value;
                if let Ok(p) = Package::parse(&bytes) {
                    for part in p.partitions() {
                        let _ = part.segments().count();
                        assert!(
                            part.interrupts()
                                .all(|i| (FIRST_SPI..=LAST_SPI).contains(&i))
                        );
                        let _ = part.devices().count();
                    }
                    for core in 0..MAX_CORES {
                        assert!(
                            p.schedule_of(core)
                                .iter()
                                .all(|&s| usize::from(s) < p.partition_count())
                        );
                    }
                }
            }
        }
    }
}
