//! What the kernel tells a partition about itself: the info page, read once at entry.

use core::fmt;

use exo_abi::info::{InfoHeader, InfoReader, InterruptInfo, MemoryBinding, MemoryKind};
use exo_abi::{InfoFlags, Ipa, PAGE_SIZE};

use crate::hypercall::Version;

/// The partition's view of itself: identity, timer frequency and memory bindings, from the
/// read-only info page the kernel passes in `x0` at entry.
#[derive(Clone, Copy)]
pub struct Info {
    reader: InfoReader<'static>,
    header: InfoHeader,
}

impl Info {
    /// Reads an info page; `None` if it does not carry the info page magic number.
    pub fn from_page(page: &'static [u8]) -> Option<Self> {
        let reader = InfoReader::new(page)?;
        Some(Self {
            reader,
            header: reader.header(),
        })
    }

    /// This partition's identifier (its index in the system configuration).
    pub fn partition_id(&self) -> u32 {
        self.header.partition_id
    }

    /// This partition's name, as the system configuration spells it.
    pub fn name(&self) -> &str {
        self.header.name.as_str()
    }

    /// The counter-timer frequency in Hz (`CNTFRQ_EL0`).
    pub fn timer_frequency(&self) -> u64 {
        self.header.timer_frequency
    }

    /// Frames guaranteed to this partition (boot memory included); never revoked.
    pub fn guaranteed_frames(&self) -> u64 {
        self.header.guaranteed_frames
    }

    /// Frames it may hold beyond the guarantee (borrowed, revocable).
    pub fn borrow_limit_frames(&self) -> u64 {
        self.header.borrow_limit_frames
    }

    /// Number of partitions in the system.
    pub fn partition_count(&self) -> u32 {
        self.header.partition_count
    }

    /// The ABI version the kernel wrote the page for.
    pub fn abi_version(&self) -> Version {
        Version::from_register(u64::from(self.header.abi_version))
    }

    /// The memory bound into this partition's stage-2 tables, as the kernel lists it.
    pub fn bindings(&self) -> impl Iterator<Item = MemoryBinding> + 'static {
        self.reader.bindings()
    }

    /// The interrupt facts: which GIC CPU interface to drive, the signals' and the virtual
    /// timer's INTIDs. `None` from a kernel that wrote none (before ABI 1.3).
    pub fn interrupts(&self) -> Option<InterruptInfo> {
        self.reader.interrupts()
    }

    /// The SPIs this partition owns (its configuration's `interrupts = [...]`).
    pub fn owned_interrupts(&self) -> impl Iterator<Item = u32> + 'static {
        self.reader.owned_interrupts()
    }

    /// Whether the partition has more bindings than the page could list.
    pub fn bindings_truncated(&self) -> bool {
        self.reader.flags().contains(InfoFlags::BINDINGS_TRUNCATED)
    }

    /// The listed binding that contains `ipa`, if any.
    pub fn binding_at(&self, ipa: Ipa) -> Option<MemoryBinding> {
        self.bindings().find(|binding| contains(binding, ipa))
    }

    /// The end of the partition's RAM: the first IPA at or above
    /// [`DEFAULT_RAM_BASE`](exo_abi::package::DEFAULT_RAM_BASE), where the program is linked,
    /// that no Normal-memory binding covers.
    pub fn ram_end(&self) -> Ipa {
        self.covered_until(exo_abi::package::DEFAULT_RAM_BASE, |binding| {
            binding.kind == MemoryKind::Normal
        })
    }

    /// Walks up from `start` through bindings that satisfy `accept` and are contiguous in IPA
    /// space (in any order in the list) and returns where the run ends; `start` itself if no
    /// accepted binding contains it.
    pub(crate) fn covered_until(&self, start: Ipa, accept: impl Fn(&MemoryBinding) -> bool) -> Ipa {
        let mut cursor = start;
        // Each step moves past one binding, so at most `count` steps.
        for _ in 0..self.bindings().count() {
            match self.bindings().find(|b| accept(b) && contains(b, cursor)) {
                Some(binding) => cursor = binding_end(&binding),
                None => break,
            }
        }
        cursor
    }
}

impl fmt::Debug for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Info")
            .field("header", &self.header)
            .field("bindings", &self.bindings().count())
            .finish()
    }
}

/// The first byte past `binding`.
pub(crate) fn binding_end(binding: &MemoryBinding) -> Ipa {
    let bytes = binding.pages.saturating_mul(PAGE_SIZE);
    binding.ipa.checked_add(bytes).unwrap_or(Ipa::new(u64::MAX))
}

fn contains(binding: &MemoryBinding, ipa: Ipa) -> bool {
    binding.ipa <= ipa && ipa < binding_end(binding)
}

/// Stage-2 rights shown as `rwx` letters, `-` for a missing right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rights(pub exo_abi::Rights);

impl fmt::Display for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (right, letter) in [
            (exo_abi::Rights::READ, 'r'),
            (exo_abi::Rights::WRITE, 'w'),
            (exo_abi::Rights::EXECUTE, 'x'),
        ] {
            let shown = if self.0.contains(right) { letter } else { '-' };
            fmt::Write::write_char(f, shown)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exo_abi::info::{InfoWriter, SIZE};
    use exo_abi::{Name, PhysAddr};

    fn binding(ipa: u64, pages: u64, rights: exo_abi::Rights) -> MemoryBinding {
        MemoryBinding {
            ipa: Ipa::new(ipa),
            phys: PhysAddr::new(0x8000_0000 + ipa),
            pages,
            rights,
            kind: MemoryKind::Normal,
        }
    }

    fn info(bindings: &[MemoryBinding]) -> Info {
        let page: &'static mut [u8; SIZE] = Box::leak(Box::new([0; SIZE]));
        let header = InfoHeader {
            abi_version: exo_abi::ABI_VERSION,
            partition_id: 2,
            name: Name::new("hello").unwrap(),
            timer_frequency: 62_500_000,
            guaranteed_frames: 512,
            borrow_limit_frames: 1024,
            partition_count: 3,
        };
        let mut writer = InfoWriter::new(page, &header);
        for b in bindings {
            writer.push_binding(b);
        }
        Info::from_page(page).unwrap()
    }

    #[test]
    fn header_fields_come_through() {
        let info = info(&[]);
        assert_eq!((info.partition_id(), info.name()), (2, "hello"));
        assert_eq!(info.timer_frequency(), 62_500_000);
        assert_eq!(
            info.abi_version(),
            Version::from_register(u64::from(exo_abi::ABI_VERSION))
        );
        assert_eq!(info.guaranteed_frames(), 512);
        assert_eq!(info.borrow_limit_frames(), 1024);
        assert_eq!(info.partition_count(), 3);
        assert!(!info.bindings_truncated());
    }

    #[test]
    fn ram_end_follows_contiguous_bindings_in_any_order() {
        let rw = exo_abi::Rights::READ_WRITE;
        let info = info(&[
            binding(0x4000_2000, 0xFE, rw),
            binding(
                0x4000_0000,
                1,
                exo_abi::Rights::READ | exo_abi::Rights::EXECUTE,
            ),
            binding(0x4000_1000, 1, exo_abi::Rights::READ),
            binding(0x5000_0000, 1, rw), // not contiguous
        ]);
        assert_eq!(info.ram_end(), Ipa::new(0x4010_0000));
        assert!(info.binding_at(Ipa::new(0x4010_0000)).is_none());
        let rw_end = info.covered_until(Ipa::new(0x4000_3000), |b| b.rights == rw);
        assert_eq!(rw_end, Ipa::new(0x4010_0000));
        let none = info.covered_until(Ipa::new(0x4000_0000), |b| b.rights == rw);
        assert_eq!(none, Ipa::new(0x4000_0000));
    }

    #[test]
    fn rights_print_as_letters() {
        let rx = exo_abi::Rights::READ | exo_abi::Rights::EXECUTE;
        assert_eq!(format!("{}", Rights(rx)), "r-x");
        assert_eq!(format!("{}", Rights(exo_abi::Rights::READ_WRITE)), "rw-");
    }
}
