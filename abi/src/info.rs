//! The info page: a read-only page the kernel gives each partition, whose IPA arrives in `x0`
//! when the library OS is first entered.
//!
//! Layout (little-endian):
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0 | 8 | magic `"EXOINFO\0"` |
//! | 8 | 4 | ABI version ([`crate::ABI_VERSION`]) |
//! | 12 | 4 | partition id |
//! | 16 | 32 | partition name, NUL-padded |
//! | 48 | 8 | counter-timer frequency in Hz (`CNTFRQ_EL0`) |
//! | 56 | 4 | number of memory bindings that follow |
//! | 60 | 4 | flags ([`InfoFlags`]) |
//! | 64 | 8 | IPA of the revocation page ([`crate::revocation`]) |
//! | 72 | 8 | IPA of the repossession vector ([`crate::revocation`]) |
//! | 80 | 8 | guaranteed frames (never revoked) |
//! | 88 | 8 | frames it may borrow beyond the guarantee |
//! | 96 | 4 | number of partitions in the system |
//! | 100 | 4 | GIC architecture version: 2 or 3 ([`GicInterface`]) |
//! | 104 | 8 | IPA of the GIC CPU interface on GICv2 (the hardware GICV frame), 0 on GICv3 |
//! | 112 | 2 × 4 | INTIDs of the signals revocation, repossession, message; the virtual timer |
//! | 120 | 4 | number of interrupts (SPIs) the partition owns |
//! | 124 | 4 | reserved, zero |
//! | 128 | 32 × n | memory bindings ([`MemoryBinding`]) at boot, device regions included |
//! | 3840 | 4 × m | the owned SPIs' INTIDs (at most [`MAX_INTERRUPTS`]) |

use crate::bytes::{Name, put_u32, put_u64, u32_at, u64_at};
use crate::{InfoFlags, Ipa, PhysAddr, Rights};

/// Magic number at offset 0.
pub const MAGIC: u64 = u64::from_le_bytes(*b"EXOINFO\0");
/// Size of the info page.
pub const SIZE: usize = 4096;
/// IPA at which the kernel binds the info page (just below [`crate::package::DEFAULT_RAM_BASE`]).
pub const INFO_PAGE_IPA: Ipa = Ipa::new(0x3FFF_F000);
/// IPA of the revocation page.
pub const REVOCATION_PAGE_IPA: Ipa = Ipa::new(0x3FFF_E000);
/// IPA of the repossession vector ([`crate::revocation::VECTOR_PAGES`] pages).
pub const REPOSSESSION_VECTOR_IPA: Ipa = Ipa::new(0x3FFF_A000);
/// Start of the IPA window the kernel keeps for its own pages; partitions cannot bind here.
pub const KERNEL_WINDOW_START: Ipa = Ipa::new(0x3FFF_0000);
/// End (exclusive) of the kernel's IPA window.
pub const KERNEL_WINDOW_END: Ipa = Ipa::new(0x4000_0000);
/// Offset of the first binding record.
const BINDINGS: usize = 128;
/// Size of one binding record.
const BINDING_SIZE: usize = 32;
/// Offset of the owned-interrupt list.
const INTERRUPTS: usize = SIZE - 4 * MAX_INTERRUPTS;
/// Most owned interrupts the page lists (as many as a partition may own).
pub const MAX_INTERRUPTS: usize = crate::package::MAX_INTERRUPTS;
/// Most bindings the page can list.
pub const MAX_BINDINGS: usize = (INTERRUPTS - BINDINGS) / BINDING_SIZE;

/// How a library OS reaches its GIC CPU interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicInterface {
    /// GICv3: the `ICC_*` system registers (backed by the virtual CPU interface).
    V3,
    /// GICv2: the memory-mapped `GICV` frame, bound at this IPA in place of `GICC`.
    V2 {
        /// IPA of the CPU interface frame (two pages).
        cpu_interface: Ipa,
    },
}

/// Interrupt facts of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterruptInfo {
    /// The CPU interface to use.
    pub gic: GicInterface,
    /// Signal INTID: revocation request.
    pub revocation: u16,
    /// Signal INTID: repossession.
    pub repossession: u16,
    /// Signal INTID: message.
    pub message: u16,
    /// The virtual timer's INTID.
    pub virtual_timer: u16,
}

/// Memory type of a binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum MemoryKind {
    /// Normal write-back cacheable RAM.
    Normal = 0,
    /// Device-nGnRE memory (MMIO).
    Device = 1,
}

/// One run of contiguous pages bound contiguously: `pages` frames starting at physical
/// address `phys`, visible to the partition at `ipa`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryBinding {
    /// Where the partition sees the first page.
    pub ipa: Ipa,
    /// The real name of the first frame.
    pub phys: PhysAddr,
    /// Number of 4 KiB pages.
    pub pages: u64,
    /// Access rights.
    pub rights: Rights,
    /// Memory type.
    pub kind: MemoryKind,
}

/// Header fields of an info page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InfoHeader {
    /// ABI version the kernel speaks.
    pub abi_version: u32,
    /// This partition's identifier (index in the system configuration).
    pub partition_id: u32,
    /// This partition's name.
    pub name: Name,
    /// Counter-timer frequency in Hz.
    pub timer_frequency: u64,
    /// Frames guaranteed to the partition.
    pub guaranteed_frames: u64,
    /// Frames it may hold beyond the guarantee.
    pub borrow_limit_frames: u64,
    /// Number of partitions in the system (ids are 0..count).
    pub partition_count: u32,
}

/// Writes an info page. Used by the kernel.
pub struct InfoWriter<'a> {
    page: &'a mut [u8; SIZE],
    count: usize,
}

impl<'a> InfoWriter<'a> {
    /// Starts a page: zeroes it and writes the header.
    pub fn new(page: &'a mut [u8; SIZE], header: &InfoHeader) -> Self {
        page.fill(0);
        put_u64(page, 0, MAGIC);
        put_u32(page, 8, header.abi_version);
        put_u32(page, 12, header.partition_id);
        header.name.write(page, 16);
        put_u64(page, 48, header.timer_frequency);
        put_u64(page, 64, REVOCATION_PAGE_IPA.raw());
        put_u64(page, 72, REPOSSESSION_VECTOR_IPA.raw());
        put_u64(page, 80, header.guaranteed_frames);
        put_u64(page, 88, header.borrow_limit_frames);
        put_u32(page, 96, header.partition_count);
        Self { page, count: 0 }
    }

    /// Writes the interrupt facts and the owned SPIs (at most [`MAX_INTERRUPTS`] are kept).
    pub fn set_interrupts(&mut self, info: &InterruptInfo, owned: impl Iterator<Item = u32>) {
        let (version, cpu_interface) = match info.gic {
            GicInterface::V3 => (3, 0),
            GicInterface::V2 { cpu_interface } => (2, cpu_interface.raw()),
        };
        put_u32(self.page, 100, version);
        put_u64(self.page, 104, cpu_interface);
        for (i, id) in [
            info.revocation,
            info.repossession,
            info.message,
            info.virtual_timer,
        ]
        .into_iter()
        .enumerate()
        {
            self.page[112 + 2 * i..114 + 2 * i].copy_from_slice(&id.to_le_bytes());
        }
        let mut count = 0;
        for intid in owned.take(MAX_INTERRUPTS) {
            put_u32(self.page, INTERRUPTS + 4 * count, intid);
            count += 1;
        }
        put_u32(self.page, 120, count as u32);
    }

    /// Appends a binding, or sets [`InfoFlags::BINDINGS_TRUNCATED`] if the page is full.
    pub fn push_binding(&mut self, binding: &MemoryBinding) {
        if self.count == MAX_BINDINGS {
            let flags = u32_at(self.page, 60).unwrap_or(0);
            put_u32(self.page, 60, flags | InfoFlags::BINDINGS_TRUNCATED.bits());
            return;
        }
        let at = BINDINGS + self.count * BINDING_SIZE;
        put_u64(self.page, at, binding.ipa.raw());
        put_u64(self.page, at + 8, binding.phys.raw());
        put_u64(self.page, at + 16, binding.pages);
        put_u32(self.page, at + 24, binding.rights.bits());
        put_u32(self.page, at + 28, binding.kind as u32);
        self.count += 1;
        put_u32(self.page, 56, self.count as u32);
    }
}

/// Reads an info page. Used by the library OS.
#[derive(Clone, Copy)]
pub struct InfoReader<'a> {
    page: &'a [u8],
}

impl<'a> InfoReader<'a> {
    /// Checks the magic number and wraps the page.
    pub fn new(page: &'a [u8]) -> Option<Self> {
        (page.len() >= SIZE && u64_at(page, 0) == Some(MAGIC)).then_some(Self { page })
    }

    /// The header fields.
    pub fn header(&self) -> InfoHeader {
        InfoHeader {
            abi_version: u32_at(self.page, 8).unwrap_or(0),
            partition_id: u32_at(self.page, 12).unwrap_or(0),
            name: Name::read(self.page, 16).unwrap_or(Name::new("?").expect("valid name")),
            timer_frequency: u64_at(self.page, 48).unwrap_or(0),
            guaranteed_frames: u64_at(self.page, 80).unwrap_or(0),
            borrow_limit_frames: u64_at(self.page, 88).unwrap_or(0),
            partition_count: u32_at(self.page, 96).unwrap_or(0),
        }
    }

    /// IPA of the revocation page.
    pub fn revocation_page(&self) -> Ipa {
        Ipa::new(u64_at(self.page, 64).unwrap_or(0))
    }

    /// IPA of the repossession vector.
    pub fn repossession_vector(&self) -> Ipa {
        Ipa::new(u64_at(self.page, 72).unwrap_or(0))
    }

    /// Interrupt facts; `None` if the kernel wrote none (no GIC).
    pub fn interrupts(&self) -> Option<InterruptInfo> {
        let u16_at = |at: usize| {
            self.page
                .get(at..at + 2)
                .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]))
        };
        let gic = match u32_at(self.page, 100)? {
            3 => GicInterface::V3,
            2 => GicInterface::V2 {
                cpu_interface: Ipa::new(u64_at(self.page, 104)?),
            },
            _ => return None,
        };
        Some(InterruptInfo {
            gic,
            revocation: u16_at(112),
            repossession: u16_at(114),
            message: u16_at(116),
            virtual_timer: u16_at(118),
        })
    }

    /// The SPIs the partition owns.
    pub fn owned_interrupts(&self) -> impl Iterator<Item = u32> + 'a {
        let page = self.page;
        let count = (u32_at(page, 120).unwrap_or(0) as usize).min(MAX_INTERRUPTS);
        (0..count).map(move |i| u32_at(page, INTERRUPTS + 4 * i).unwrap_or(0))
    }

    /// Flags word (bits this ABI does not define are dropped).
    pub fn flags(&self) -> InfoFlags {
        InfoFlags::from_bits_truncate(u32_at(self.page, 60).unwrap_or(0))
    }

    /// The listed memory bindings.
    pub fn bindings(&self) -> impl Iterator<Item = MemoryBinding> + 'a {
        let page = self.page;
        let count = (u32_at(page, 56).unwrap_or(0) as usize).min(MAX_BINDINGS);
        (0..count).map(move |i| {
            let at = BINDINGS + i * BINDING_SIZE;
            MemoryBinding {
                ipa: Ipa::new(u64_at(page, at).unwrap_or(0)),
                phys: PhysAddr::new(u64_at(page, at + 8).unwrap_or(0)),
                pages: u64_at(page, at + 16).unwrap_or(0),
                rights: Rights::from_bits_truncate(u32_at(page, at + 24).unwrap_or(0)),
                kind: if u32_at(page, at + 28) == Some(1) {
                    MemoryKind::Device
                } else {
                    MemoryKind::Normal
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> InfoHeader {
        InfoHeader {
            abi_version: crate::ABI_VERSION,
            partition_id: 3,
            name: Name::new("ticker").unwrap(),
            timer_frequency: 62_500_000,
            guaranteed_frames: 256,
            borrow_limit_frames: 1024,
            partition_count: 4,
        }
    }

    #[test]
    fn round_trips_header_and_bindings() {
        let mut page = [0xAA; SIZE];
        let binding = MemoryBinding {
            ipa: Ipa::new(0x4000_0000),
            phys: PhysAddr::new(0x4123_4000),
            pages: 16,
            rights: Rights::READ_WRITE,
            kind: MemoryKind::Normal,
        };
        let mut writer = InfoWriter::new(&mut page, &header());
        writer.push_binding(&binding);
        let reader = InfoReader::new(&page).unwrap();
        assert_eq!(reader.header(), header());
        assert_eq!(reader.bindings().collect::<Vec<_>>(), vec![binding]);
        assert_eq!(reader.flags(), InfoFlags::empty());
        assert_eq!(reader.revocation_page(), REVOCATION_PAGE_IPA);
        assert_eq!(reader.repossession_vector(), REPOSSESSION_VECTOR_IPA);
    }

    #[test]
    fn overflowing_bindings_are_flagged_not_written_past_the_page() {
        let mut page = [0; SIZE];
        let mut writer = InfoWriter::new(&mut page, &header());
        let binding = MemoryBinding {
            ipa: Ipa::new(0),
            phys: PhysAddr::new(0),
            pages: 1,
            rights: Rights::READ,
            kind: MemoryKind::Device,
        };
        for _ in 0..MAX_BINDINGS + 3 {
            writer.push_binding(&binding);
        }
        let reader = InfoReader::new(&page).unwrap();
        assert_eq!(reader.bindings().count(), MAX_BINDINGS);
        assert!(reader.flags().contains(InfoFlags::BINDINGS_TRUNCATED));
    }

    #[test]
    fn round_trips_interrupt_facts() {
        let mut page = [0; SIZE];
        let info = InterruptInfo {
            gic: GicInterface::V2 {
                cpu_interface: Ipa::new(0x0801_0000),
            },
            revocation: 8,
            repossession: 9,
            message: 10,
            virtual_timer: 27,
        };
        let mut writer = InfoWriter::new(&mut page, &header());
        writer.set_interrupts(&info, [40, 41, 99].into_iter());
        for _ in 0..MAX_BINDINGS + 1 {
            writer.push_binding(&MemoryBinding {
                ipa: Ipa::new(0),
                phys: PhysAddr::new(0),
                pages: 1,
                rights: Rights::READ,
                kind: MemoryKind::Normal,
            });
        }
        let reader = InfoReader::new(&page).unwrap();
        assert_eq!(reader.interrupts(), Some(info));
        assert_eq!(
            reader.owned_interrupts().collect::<Vec<_>>(),
            vec![40, 41, 99],
            "bindings must not overwrite the interrupt list"
        );
        let mut page = [0; SIZE];
        InfoWriter::new(&mut page, &header());
        assert_eq!(InfoReader::new(&page).unwrap().interrupts(), None);
    }

    #[test]
    fn rejects_a_page_without_magic() {
        assert!(InfoReader::new(&[0; SIZE]).is_none());
    }
}
