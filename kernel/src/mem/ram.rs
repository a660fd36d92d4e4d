//! The RAM the kernel manages: every memory bank the device tree describes, sorted, merged
//! and trimmed to 2 MiB blocks, and the frame table over them, with the holes between banks
//! and the firmware's reservations marked.
//!
//! One frame table covers `[lowest bank start, highest bank end)`, so a frame's entry is one
//! subtraction away; the frames between banks are holes ([`FrameTable::exclude`]), which no
//! method treats as RAM. On a Raspberry Pi 4 the holes are the VideoCore's memory below
//! 1 GiB and, on an 8 GiB board, the peripherals below 4 GiB; they cost 10 bytes of table
//! and binding index per 4 KiB frame (1.4 MiB on an 8 GiB Pi).

use super::frame_table::{FrameTable, Owner};
use crate::device_tree::Region;
use exo_abi::{PAGE_SIZE, PhysAddr};

/// Most banks the kernel manages, after merging; more are ignored, highest first. The Pi 4
/// firmware writes two banks on 2 and 4 GiB boards and four on 8 GiB boards (three once the
/// two adjacent ones above 4 GiB are merged).
pub const MAX_RAM_BANKS: usize = 8;

/// Banks are trimmed inward to this: the EL2 map gives RAM 2 MiB blocks.
pub const BANK_ALIGN: u64 = 2 << 20;

/// Banks must end below this: the EL2 identity map's 39-bit virtual address space. RAM
/// beyond it is ignored.
pub const MAX_RAM_END: u64 = 1 << 39;

/// One bank of RAM: `[start, end)`, both multiples of [`BANK_ALIGN`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bank {
    /// First byte.
    pub start: u64,
    /// End (exclusive).
    pub end: u64,
}

impl Bank {
    /// Length in bytes.
    pub fn size(&self) -> u64 {
        self.end - self.start
    }

    /// Whether `address` lies inside.
    pub fn contains(&self, address: u64) -> bool {
        self.start <= address && address < self.end
    }
}

/// How much of an address range the banks cover: what the EL2 map makes of it (a GiB
/// wholly in a bank is one block; a GiB partly in RAM gets a table of 2 MiB blocks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cover {
    /// All of it lies in one bank.
    Whole,
    /// Some of it is RAM, some not.
    Part,
    /// None of it is RAM.
    Nothing,
}

/// The banks the kernel manages, ascending and disjoint (at most [`MAX_RAM_BANKS`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Ram {
    banks: [Bank; MAX_RAM_BANKS],
    len: usize,
    /// Bytes of the tree's banks the kernel does not manage: over [`MAX_RAM_BANKS`], past
    /// [`MAX_RAM_END`], or less than a 2 MiB block.
    ignored: u64,
}

impl Ram {
    /// The device tree's `regions`, in any order: each trimmed inward to [`BANK_ALIGN`] and
    /// cut at [`MAX_RAM_END`], overlapping or touching banks merged, empty ones dropped; of
    /// more than [`MAX_RAM_BANKS`], the lowest are kept.
    pub fn new(regions: &[Region]) -> Self {
        let mut ram = Self::default();
        let mut given = 0u64;
        for region in regions {
            given = given.saturating_add(region.size);
            let start = region.start.checked_next_multiple_of(BANK_ALIGN);
            let end = region.end().unwrap_or(u64::MAX).min(MAX_RAM_END) & !(BANK_ALIGN - 1);
            if let Some(start) = start.filter(|start| *start < end) {
                ram.insert(Bank { start, end });
            }
        }
        ram.ignored = given.saturating_sub(ram.bytes());
        ram
    }

    /// Adds `bank` in order, merging it with any bank it overlaps or touches.
    fn insert(&mut self, mut bank: Bank) {
        let mut kept = [Bank::default(); MAX_RAM_BANKS + 1];
        let mut len = 0;
        for old in self.banks() {
            if old.end < bank.start || bank.end < old.start {
                kept[len] = *old;
                len += 1;
            } else {
                bank = Bank {
                    start: bank.start.min(old.start),
                    end: bank.end.max(old.end),
                };
            }
        }
        kept[len] = bank;
        len += 1;
        kept[..len].sort_unstable_by_key(|bank| bank.start);
        let len = len.min(MAX_RAM_BANKS);
        self.banks.copy_from_slice(&kept[..MAX_RAM_BANKS]);
        self.len = len;
    }

    /// The banks, ascending.
    pub fn banks(&self) -> &[Bank] {
        &self.banks[..self.len]
    }

    /// Start of the lowest bank (0 without RAM).
    pub fn start(&self) -> u64 {
        self.banks().first().map_or(0, |bank| bank.start)
    }

    /// End of the highest bank (0 without RAM).
    pub fn end(&self) -> u64 {
        self.banks().last().map_or(0, |bank| bank.end)
    }

    /// Bytes of RAM in the banks.
    pub fn bytes(&self) -> u64 {
        self.banks().iter().map(Bank::size).sum()
    }

    /// Bytes the tree describes that the kernel does not manage (see [`Ram::new`]).
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// The bank holding `address`.
    pub fn bank_holding(&self, address: u64) -> Option<Bank> {
        self.banks()
            .iter()
            .find(|bank| bank.contains(address))
            .copied()
    }

    /// How much of `[start, start + size)` the banks cover.
    pub fn cover(&self, start: u64, size: u64) -> Cover {
        let end = start.saturating_add(size);
        if self
            .banks()
            .iter()
            .any(|bank| bank.start <= start && end <= bank.end)
        {
            Cover::Whole
        } else if self
            .banks()
            .iter()
            .any(|bank| start < bank.end && bank.start < end)
        {
            Cover::Part
        } else {
            Cover::Nothing
        }
    }

    /// Entries a frame table needs to cover every bank: the span, holes included.
    pub fn span_frames(&self) -> usize {
        ((self.end() - self.start()) / PAGE_SIZE) as usize
    }

    /// A frame table over every bank, in `storage` ([`Ram::span_frames`] entries): the holes
    /// between banks excluded, then each of `reservations` (byte ranges `[start, end)`: the
    /// kernel image, the device tree, `/memreserve/` entries and `reserved-memory` regions)
    /// given to the kernel as far as it lies in RAM ([`reserve`]).
    ///
    /// # Panics
    ///
    /// If `storage` has not [`Ram::span_frames`] entries (a kernel bug).
    pub fn frame_table<'a>(
        &self,
        storage: &'a mut [u16],
        reservations: impl Iterator<Item = (u64, u64)>,
    ) -> FrameTable<'a> {
        assert_eq!(storage.len(), self.span_frames(), "frame table storage");
        let mut table = FrameTable::new(PhysAddr::new(self.start()), storage);
        for pair in self.banks().windows(2) {
            // Between two disjoint banks of the table, all free: cannot fail.
            let _ = table.exclude(PhysAddr::new(pair[0].end), PhysAddr::new(pair[1].start));
        }
        for (start, end) in reservations {
            reserve(&mut table, start, end);
        }
        table
    }
}

/// Gives the frames of `[start, end)` (rounded outward) that are RAM to the kernel, frame by
/// frame: parts in holes or outside the table are skipped, frames the kernel already holds
/// (reservations overlap) stay its. Boot-time only, before any partition holds a frame.
/// Returns the number of frames newly reserved.
pub fn reserve(table: &mut FrameTable<'_>, start: u64, end: u64) -> usize {
    let from = (start & !(PAGE_SIZE - 1)).max(table.base().raw());
    let to = end.min(table.end().raw());
    let mut reserved = 0;
    let mut frame = from;
    while frame < to {
        if table
            .alloc_specific(PhysAddr::new(frame), Owner::Kernel)
            .is_ok()
        {
            reserved += 1;
        }
        frame += PAGE_SIZE;
    }
    reserved
}

#[cfg(test)]
mod tests;
