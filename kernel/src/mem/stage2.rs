//! Per-partition stage-2 translation tables: a portable builder and walker.
//!
//! [`Stage2`] maps a partition's intermediate physical addresses ([`Ipa`]) to frames, one
//! 4 KiB page at a time, and walks the tables in software ([`Stage2::translate`]) so the
//! kernel can find a guest buffer. It never pokes descriptor bits itself: the encoding comes
//! from a [`DescriptorFormat`] (`arch::aarch64::stage2_format::Aarch64Stage2` on the
//! machine, `arch::fake` in host tests), the memory holding the tables from a
//! [`TableMemory`], and TLB maintenance from a [`TlbMaintenance`].
//!
//! Rules the builder keeps:
//!
//! - A new table is initialised by writing [`DescriptorFormat::INVALID`] to all
//!   [`ENTRIES_PER_TABLE`] entries; its previous contents are never trusted.
//! - A mapping is built bottom-up: new tables are initialised and filled before the single
//!   write that links them into the live tree, so a concurrent hardware walk sees either
//!   nothing or the complete path. Going from invalid to valid needs no TLB maintenance,
//!   because a TLB never caches an entry that faults (Arm ARM DDI 0487, chapter D8,
//!   "Translation Lookaside Buffers").
//! - A valid leaf is never overwritten by another valid value (break-before-make, Arm ARM
//!   chapter D8, "Using break-before-make when updating translation table entries"): it is
//!   replaced by `INVALID`, the IPA is invalidated from the TLBs, and only then is the new
//!   value written.
//! - An operation that fails changes nothing.
//!
//! Intermediate tables emptied by unmapping are kept until [`Stage2::destroy`]; reclaiming
//! them would need more TLB maintenance and gains little for the fixed layouts partitions
//! use.

use core::marker::PhantomData;

use exo_abi::Rights;
use exo_abi::info::MemoryKind;
use exo_abi::{Error, Ipa, PAGE_SIZE, PhysAddr};

/// Descriptors in one 4 KiB translation table (8 bytes each).
pub const ENTRIES_PER_TABLE: usize = 512;

/// The last lookup level, which holds page descriptors.
pub const LAST_LEVEL: u8 = 3;

/// IPA bits resolved by one lookup level with a 4 KiB granule.
const BITS_PER_LEVEL: u32 = 9;

/// Bits of the offset within a page: 12.
const PAGE_SHIFT: u32 = PAGE_SIZE.trailing_zeros();

/// Lowest IPA bit resolved at `level`: 12 at level 3, 21 at level 2, 30 at 1, 39 at 0.
const fn level_shift(level: u8) -> u32 {
    PAGE_SHIFT + BITS_PER_LEVEL * (LAST_LEVEL - level) as u32
}

/// Index of the descriptor for `ipa` in the table at `level`.
const fn level_index(level: u8, ipa: Ipa) -> usize {
    ((ipa.raw() >> level_shift(level)) as usize) & (ENTRIES_PER_TABLE - 1)
}

/// A virtual machine identifier: tags a partition's TLB entries (`VTTBR_EL2.VMID`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vmid(pub u16);

/// Access rights and memory type of a mapping, as stage 2 enforces them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attributes {
    /// Data reads allowed.
    pub read: bool,
    /// Data writes allowed.
    pub write: bool,
    /// Instruction fetches allowed, at EL1 and EL0.
    pub execute: bool,
    /// Memory type.
    pub kind: MemoryKind,
}

impl Attributes {
    /// Attributes from access rights.
    pub const fn from_rights(rights: Rights, kind: MemoryKind) -> Self {
        Self {
            read: rights.contains(Rights::READ),
            write: rights.contains(Rights::WRITE),
            execute: rights.contains(Rights::EXECUTE),
            kind,
        }
    }

    /// The access rights these attributes allow.
    pub const fn rights(self) -> Rights {
        let mut rights = Rights::empty();
        if self.read {
            rights = rights.union(Rights::READ);
        }
        if self.write {
            rights = rights.union(Rights::WRITE);
        }
        if self.execute {
            rights = rights.union(Rights::EXECUTE);
        }
        rights
    }
}

/// A decoded descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Faults; maps nothing.
    Invalid,
    /// Points to the next-level table (levels below [`LAST_LEVEL`] only).
    Table(PhysAddr),
    /// Maps one 4 KiB page (at [`LAST_LEVEL`] only).
    Page(PhysAddr, Attributes),
    /// Maps a naturally aligned block larger than a page (levels 1 and 2). This builder
    /// never creates blocks, but the walker understands them.
    Block(PhysAddr, Attributes),
}

/// An architecture's stage-2 descriptor encoding. Pure functions of their arguments.
///
/// Contract relied on by [`Stage2`]: `decode(INVALID, l)`, `decode(table(t), l)` for
/// `l < 3` and `decode(page(p, a), 3)` give back `Invalid`, `Table(t)` and `Page(p, a)`;
/// `decode` never returns `Table` at level 3 nor `Page` below it.
pub trait DescriptorFormat {
    /// A descriptor that maps nothing.
    const INVALID: u64;

    /// A descriptor pointing at the next-level table at `next` (page-aligned).
    fn table(next: PhysAddr) -> u64;

    /// A level-3 descriptor mapping the page-aligned `frame` with `attrs`.
    fn page(frame: PhysAddr, attrs: Attributes) -> u64;

    /// Interprets `descriptor`, found in a table at lookup `level` (0 to 3).
    fn decode(descriptor: u64, level: u8) -> Entry;
}

/// The memory holding translation tables, addressed by the physical address of each table.
///
/// On the machine, `write` must be a single 64-bit store (so a hardware walk never sees a
/// torn descriptor), and the implementation (or the caller before entering the partition)
/// must make the stores visible to the table walker (`DSB ISHST`) before they are relied
/// on.
pub trait TableMemory {
    /// A frame for a new table, or `None` if none is available. Its contents are
    /// unspecified; [`Stage2`] initialises it.
    fn alloc_table(&mut self) -> Option<PhysAddr>;

    /// Gives back a table frame that is no longer reachable from any table. The frame
    /// still holds old descriptors: whoever reuses it must scrub it.
    fn free_table(&mut self, table: PhysAddr);

    /// Descriptor `index` (below [`ENTRIES_PER_TABLE`]) of the table at `table`.
    fn read(&self, table: PhysAddr, index: usize) -> u64;

    /// Sets descriptor `index` (below [`ENTRIES_PER_TABLE`]) of the table at `table`.
    fn write(&mut self, table: PhysAddr, index: usize, value: u64);
}

/// TLB maintenance for stage-2 translations.
///
/// On the machine each call must order the preceding table writes before the
/// invalidation (`DSB ISHST`), invalidate on every core (`TLBI IPAS2E1IS` and
/// `TLBI VMALLE1IS`, or `TLBI VMALLS12E1IS`, under the right `VTTBR_EL2.VMID`) and wait for
/// completion (`DSB ISH`) before returning (Arm ARM chapter D8, "TLB maintenance", and
/// the A64 TLBI instruction descriptions).
pub trait TlbMaintenance {
    /// Removes any cached translation of the page at `ipa` for `vmid`. Called after a
    /// valid leaf was replaced by an invalid descriptor and before anything new is written
    /// to that slot.
    fn invalidate_ipa(&mut self, vmid: Vmid, ipa: Ipa);

    /// Removes every cached stage-1 and stage-2 translation tagged with `vmid`.
    fn invalidate_vmid(&mut self, vmid: Vmid);
}

/// Shape of the IPA space: a 4 KiB granule, the level the walk starts at and the IPA width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// First lookup level (0 to 3).
    start_level: u8,
    /// Width of the IPA space in bits.
    ipa_bits: u8,
}

impl Geometry {
    /// A geometry with a single (unconcatenated) root table at `start_level`, resolving
    /// `ipa_bits` bits. `None` unless `start_level <= 3` and `ipa_bits` needs exactly that
    /// start level: 40..=48 bits start at level 0, 31..=39 at 1, 22..=30 at 2, 13..=21 at 3.
    pub const fn new(start_level: u8, ipa_bits: u8) -> Option<Self> {
        if start_level > LAST_LEVEL {
            return None;
        }
        let most = level_shift(start_level) + BITS_PER_LEVEL;
        let fewest = level_shift(start_level) + 1;
        if (ipa_bits as u32) < fewest || (ipa_bits as u32) > most {
            return None;
        }
        Some(Self {
            start_level,
            ipa_bits,
        })
    }

    /// First lookup level.
    pub const fn start_level(self) -> u8 {
        self.start_level
    }

    /// Width of the IPA space in bits (`VTCR_EL2.T0SZ` is `64 - ipa_bits`).
    pub const fn ipa_bits(self) -> u8 {
        self.ipa_bits
    }

    /// Size of the IPA space in bytes: valid IPAs are below this.
    pub const fn ipa_limit(self) -> u64 {
        1 << self.ipa_bits
    }

    /// Whether the byte at `ipa` is inside the IPA space.
    pub const fn contains(self, ipa: Ipa) -> bool {
        ipa.raw() < self.ipa_limit()
    }
}

impl Default for Geometry {
    /// 39-bit IPA space (512 GiB) starting at level 1 (`VTCR_EL2.T0SZ = 25`, `SL0 = 0b01`).
    ///
    /// One 4 KiB root table suffices: 40 bits at level 1 would need two concatenated root
    /// tables in a physically contiguous, 8 KiB-aligned pair, which [`TableMemory`] (one
    /// frame at a time) does not offer, and starting at level 0 adds a lookup to every
    /// walk for space no partition needs. 39 bits also stays within the physical address
    /// range of the smallest cores we target (Cortex-A53: 40 bits), as stage 2 requires
    /// (Arm ARM chapter D8, stage 2 input address size configuration).
    fn default() -> Self {
        Self {
            start_level: 1,
            ipa_bits: 39,
        }
    }
}

/// Why a stage-2 operation was refused. A refused operation changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage2Error {
    /// The IPA or physical address is not page-aligned.
    Unaligned,
    /// The IPA is outside the IPA space.
    IpaOutOfRange,
    /// Something is already mapped at the IPA; it was left as it was.
    AlreadyMapped,
    /// Nothing is mapped at the IPA.
    NotMapped,
    /// The IPA lies inside a block mapping, which page operations do not split.
    BlockMapping,
    /// No frame was available for a translation table.
    NoTableMemory,
}

impl Stage2Error {
    /// The hypercall error a partition sees for this failure.
    pub const fn to_abi(&self) -> Error {
        match self {
            Stage2Error::Unaligned => Error::Unaligned,
            Stage2Error::IpaOutOfRange => Error::IpaOutOfRange,
            Stage2Error::AlreadyMapped => Error::Overlap,
            Stage2Error::NotMapped => Error::BadAddress,
            Stage2Error::BlockMapping => Error::Overlap,
            Stage2Error::NoTableMemory => Error::OutOfMemory,
        }
    }
}

/// One mapping, as reported by [`Stage2::for_each_mapping`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// First IPA mapped.
    pub ipa: Ipa,
    /// First physical address it maps to.
    pub phys: PhysAddr,
    /// Bytes mapped: [`PAGE_SIZE`] for a page, more for a block.
    pub size: u64,
    /// Rights and memory type.
    pub attrs: Attributes,
}

/// Where a walk stopped: the first descriptor that is not a table pointer.
struct Slot {
    /// Table holding the descriptor.
    table: PhysAddr,
    /// Its lookup level.
    level: u8,
    /// Its index in the table.
    index: usize,
    /// What it holds.
    entry: Entry,
}

/// One partition's stage-2 translation tables.
///
/// The tables live in a [`TableMemory`] passed to every call (the same one each time).
/// Dropping a `Stage2` without [`Stage2::destroy`] leaks its tables.
pub struct Stage2<F: DescriptorFormat> {
    /// The root table (`VTTBR_EL2.BADDR`).
    root: PhysAddr,
    /// TLB tag.
    vmid: Vmid,
    /// Shape of the IPA space.
    geometry: Geometry,
    /// The encoding.
    format: PhantomData<fn() -> F>,
}

impl<F: DescriptorFormat> Stage2<F> {
    /// Empty tables: allocates and initialises the root table.
    pub fn new<M: TableMemory>(
        mem: &mut M,
        vmid: Vmid,
        geometry: Geometry,
    ) -> Result<Self, Stage2Error> {
        let root = mem.alloc_table().ok_or(Stage2Error::NoTableMemory)?;
        Self::clear(mem, root);
        Ok(Self {
            root,
            vmid,
            geometry,
            format: PhantomData,
        })
    }

    /// Physical address of the root table.
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// The VMID these tables' TLB entries are tagged with.
    pub fn vmid(&self) -> Vmid {
        self.vmid
    }

    /// Shape of the IPA space.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Maps the page at `ipa` to the frame at `pa` with `attrs`, allocating tables as
    /// needed. Never replaces an existing mapping. On failure nothing has changed and no
    /// table frame is held.
    ///
    /// The frame's ownership is the caller's business (check it in the frame table first).
    pub fn map_page<M: TableMemory>(
        &mut self,
        mem: &mut M,
        ipa: Ipa,
        pa: PhysAddr,
        attrs: Attributes,
    ) -> Result<(), Stage2Error> {
        self.check_page(ipa)?;
        if !pa.is_page_aligned() {
            return Err(Stage2Error::Unaligned);
        }
        let slot = self.walk(mem, ipa);
        match slot.entry {
            Entry::Invalid => {}
            Entry::Block(..) => return Err(Stage2Error::BlockMapping),
            Entry::Page(..) | Entry::Table(_) => return Err(Stage2Error::AlreadyMapped),
        }

        // Allocate every missing table first, so running out changes nothing.
        let missing = usize::from(LAST_LEVEL - slot.level);
        let mut fresh = [PhysAddr::new(0); LAST_LEVEL as usize];
        for allocated in 0..missing {
            match mem.alloc_table() {
                Some(table) => fresh[allocated] = table,
                None => {
                    for table in &fresh[..allocated] {
                        mem.free_table(*table);
                    }
                    return Err(Stage2Error::NoTableMemory);
                }
            }
        }
        let fresh = &fresh[..missing];

        // Build bottom-up: fresh[k] is the table at level slot.level + 1 + k. Each is
        // complete before it is linked, and the last write makes the path live.
        let mut descriptor = F::page(pa, attrs);
        for (k, table) in fresh.iter().enumerate().rev() {
            let level = slot.level + 1 + k as u8;
            Self::clear(mem, *table);
            mem.write(*table, level_index(level, ipa), descriptor);
            descriptor = F::table(*table);
        }
        mem.write(slot.table, slot.index, descriptor);
        Ok(())
    }

    /// Removes the page mapped at `ipa` (break-before-make: invalid descriptor, then TLB
    /// invalidation) and returns the frame and attributes it had. The frame may be reused
    /// once this returns.
    pub fn unmap_page<M: TableMemory, T: TlbMaintenance>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        ipa: Ipa,
    ) -> Result<(PhysAddr, Attributes), Stage2Error> {
        self.check_page(ipa)?;
        let slot = self.walk(mem, ipa);
        match slot.entry {
            Entry::Page(pa, attrs) => {
                mem.write(slot.table, slot.index, F::INVALID);
                tlb.invalidate_ipa(self.vmid, ipa);
                Ok((pa, attrs))
            }
            Entry::Block(..) => Err(Stage2Error::BlockMapping),
            Entry::Invalid | Entry::Table(_) => Err(Stage2Error::NotMapped),
        }
    }

    /// Changes the attributes of the page mapped at `ipa`, with break-before-make (invalid
    /// descriptor, TLB invalidation, then the new descriptor). Returns the previous
    /// attributes. Nothing is written if they are unchanged.
    pub fn protect_page<M: TableMemory, T: TlbMaintenance>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        ipa: Ipa,
        attrs: Attributes,
    ) -> Result<Attributes, Stage2Error> {
        self.check_page(ipa)?;
        let slot = self.walk(mem, ipa);
        match slot.entry {
            Entry::Page(pa, old) => {
                if old != attrs {
                    mem.write(slot.table, slot.index, F::INVALID);
                    tlb.invalidate_ipa(self.vmid, ipa);
                    mem.write(slot.table, slot.index, F::page(pa, attrs));
                }
                Ok(old)
            }
            Entry::Block(..) => Err(Stage2Error::BlockMapping),
            Entry::Invalid | Entry::Table(_) => Err(Stage2Error::NotMapped),
        }
    }

    /// Software walk: the physical address of the byte at `ipa` (any alignment) and the
    /// attributes of the mapping holding it, or `None` if it is unmapped or out of range.
    pub fn translate<M: TableMemory>(&self, mem: &M, ipa: Ipa) -> Option<(PhysAddr, Attributes)> {
        if !self.geometry.contains(ipa) {
            return None;
        }
        let slot = self.walk(mem, ipa);
        let offset_mask = (1u64 << level_shift(slot.level)) - 1;
        match slot.entry {
            Entry::Page(pa, attrs) | Entry::Block(pa, attrs) => {
                Some((pa.checked_add(ipa.raw() & offset_mask)?, attrs))
            }
            Entry::Invalid | Entry::Table(_) => None,
        }
    }

    /// Calls `visit` for every page and block mapping, in ascending IPA order.
    pub fn for_each_mapping<M: TableMemory>(&self, mem: &M, mut visit: impl FnMut(Mapping)) {
        self.visit_table(mem, self.root, self.geometry.start_level, 0, &mut visit);
    }

    /// Frees every table frame, after invalidating every TLB entry of the VMID.
    ///
    /// No vCPU may be running on, or later load, these tables (the caller has stopped the
    /// partition and cleared `VTTBR_EL2` wherever it was loaded). The TLBs are cleaned
    /// first so no cached walk can reach a table frame once it is reused. The mapped
    /// frames themselves are not touched: list them with [`Stage2::for_each_mapping`]
    /// beforehand and return them to the frame table.
    pub fn destroy<M: TableMemory, T: TlbMaintenance>(self, mem: &mut M, tlb: &mut T) {
        tlb.invalidate_vmid(self.vmid);
        Self::free_tree(mem, self.root, self.geometry.start_level);
    }

    /// Checks `ipa` names a page inside the IPA space.
    fn check_page(&self, ipa: Ipa) -> Result<(), Stage2Error> {
        if !ipa.is_page_aligned() {
            Err(Stage2Error::Unaligned)
        } else if !self.geometry.contains(ipa) {
            Err(Stage2Error::IpaOutOfRange)
        } else {
            Ok(())
        }
    }

    /// Follows table descriptors for `ipa` (inside the IPA space) from the root down to
    /// the first descriptor that is not a table pointer, or to level 3.
    fn walk<M: TableMemory>(&self, mem: &M, ipa: Ipa) -> Slot {
        let mut table = self.root;
        let mut level = self.geometry.start_level;
        loop {
            let index = level_index(level, ipa);
            let entry = F::decode(mem.read(table, index), level);
            match entry {
                Entry::Table(next) if level < LAST_LEVEL => {
                    table = next;
                    level += 1;
                }
                _ => {
                    return Slot {
                        table,
                        level,
                        index,
                        entry,
                    };
                }
            }
        }
    }

    /// Writes [`DescriptorFormat::INVALID`] to every entry of `table`.
    fn clear<M: TableMemory>(mem: &mut M, table: PhysAddr) {
        for index in 0..ENTRIES_PER_TABLE {
            mem.write(table, index, F::INVALID);
        }
    }

    /// Visits the mappings under `table` (at `level`, covering IPAs from `base`).
    fn visit_table<M: TableMemory>(
        &self,
        mem: &M,
        table: PhysAddr,
        level: u8,
        base: u64,
        visit: &mut impl FnMut(Mapping),
    ) {
        let span = 1u64 << level_shift(level);
        for index in 0..ENTRIES_PER_TABLE {
            let ipa = base + index as u64 * span;
            if ipa >= self.geometry.ipa_limit() {
                break;
            }
            match F::decode(mem.read(table, index), level) {
                Entry::Table(next) if level < LAST_LEVEL => {
                    self.visit_table(mem, next, level + 1, ipa, visit);
                }
                Entry::Page(phys, attrs) | Entry::Block(phys, attrs) => visit(Mapping {
                    ipa: Ipa::new(ipa),
                    phys,
                    size: span,
                    attrs,
                }),
                Entry::Table(_) | Entry::Invalid => {}
            }
        }
    }

    /// Frees `table` (at `level`) and every table below it, children first.
    fn free_tree<M: TableMemory>(mem: &mut M, table: PhysAddr, level: u8) {
        if level < LAST_LEVEL {
            for index in 0..ENTRIES_PER_TABLE {
                if let Entry::Table(next) = F::decode(mem.read(table, index), level) {
                    Self::free_tree(mem, next, level + 1);
                }
            }
        }
        mem.free_table(table);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::aarch64::stage2_format::Aarch64Stage2;
    use crate::arch::fake::FakeFormat;
    use proptest::prelude::*;
    use std::cell::RefCell;
    use std::collections::hash_map::Entry as MapEntry;
    use std::collections::{BTreeSet, HashMap};
    use std::rc::Rc;
    use std::vec::Vec;

    /// Something the table memory or TLB mock was asked to do, in order.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Event {
        Alloc(PhysAddr),
        Free(PhysAddr),
        Write(PhysAddr, usize, u64),
        InvalidateIpa(Vmid, Ipa),
        InvalidateVmid(Vmid),
    }

    type Log = Rc<RefCell<Vec<Event>>>;

    /// Descriptors left in a fresh table frame by its previous user: never valid to trust.
    const GARBAGE: u64 = u64::MAX;

    /// Table memory backed by a `HashMap`, with an optional allocation budget. Reading or
    /// writing a frame that is not a live table panics.
    struct MockMemory {
        tables: HashMap<PhysAddr, Vec<u64>>,
        next: u64,
        budget: Option<usize>,
        allocated: BTreeSet<PhysAddr>,
        freed: BTreeSet<PhysAddr>,
        log: Log,
    }

    impl MockMemory {
        fn new(log: &Log) -> Self {
            Self {
                tables: HashMap::new(),
                next: 0x8000_0000,
                budget: None,
                allocated: BTreeSet::new(),
                freed: BTreeSet::new(),
                log: log.clone(),
            }
        }

        fn live(&self) -> usize {
            self.tables.len()
        }
    }

    impl TableMemory for MockMemory {
        fn alloc_table(&mut self) -> Option<PhysAddr> {
            if let Some(budget) = &mut self.budget {
                if *budget == 0 {
                    return None;
                }
                *budget -= 1;
            }
            let table = PhysAddr::new(self.next);
            self.next += PAGE_SIZE;
            self.tables.insert(table, vec![GARBAGE; ENTRIES_PER_TABLE]);
            self.allocated.insert(table);
            self.log.borrow_mut().push(Event::Alloc(table));
            Some(table)
        }

        fn free_table(&mut self, table: PhysAddr) {
            assert!(
                self.tables.remove(&table).is_some(),
                "freeing {table:?} twice"
            );
            self.freed.insert(table);
            self.log.borrow_mut().push(Event::Free(table));
        }

        fn read(&self, table: PhysAddr, index: usize) -> u64 {
            self.tables.get(&table).expect("read of a live table")[index]
        }

        fn write(&mut self, table: PhysAddr, index: usize, value: u64) {
            self.tables.get_mut(&table).expect("write to a live table")[index] = value;
            self.log
                .borrow_mut()
                .push(Event::Write(table, index, value));
        }
    }

    /// TLB maintenance that records each call in the shared log.
    struct MockTlb {
        log: Log,
    }

    impl TlbMaintenance for MockTlb {
        fn invalidate_ipa(&mut self, vmid: Vmid, ipa: Ipa) {
            self.log.borrow_mut().push(Event::InvalidateIpa(vmid, ipa));
        }

        fn invalidate_vmid(&mut self, vmid: Vmid) {
            self.log.borrow_mut().push(Event::InvalidateVmid(vmid));
        }
    }

    /// The formats under test, plus a block encoder the portable code does not need.
    trait TestFormat: DescriptorFormat {
        fn block(output: PhysAddr, attrs: Attributes) -> u64;
    }

    impl TestFormat for Aarch64Stage2 {
        fn block(output: PhysAddr, attrs: Attributes) -> u64 {
            Aarch64Stage2::block(output, attrs)
        }
    }

    impl TestFormat for FakeFormat {
        fn block(output: PhysAddr, attrs: Attributes) -> u64 {
            FakeFormat::block(output, attrs)
        }
    }

    const VMID: Vmid = Vmid(7);

    fn rw() -> Attributes {
        Attributes::from_rights(Rights::READ_WRITE, MemoryKind::Normal)
    }

    fn rx() -> Attributes {
        Attributes::from_rights(Rights::READ | Rights::EXECUTE, MemoryKind::Normal)
    }

    struct Setup<F: DescriptorFormat> {
        log: Log,
        mem: MockMemory,
        tlb: MockTlb,
        s2: Stage2<F>,
    }

    fn setup<F: DescriptorFormat>(geometry: Geometry) -> Setup<F> {
        let log = Log::default();
        let mut mem = MockMemory::new(&log);
        let tlb = MockTlb { log: log.clone() };
        let s2 = Stage2::<F>::new(&mut mem, VMID, geometry).unwrap();
        Setup { log, mem, tlb, s2 }
    }

    /// Runs a generic test body against both formats.
    macro_rules! both_formats {
        ($($name:ident),* $(,)?) => {
            mod aarch64 {
                $( #[test] fn $name() { super::$name::<super::Aarch64Stage2>(); } )*
            }
            mod fake {
                $( #[test] fn $name() { super::$name::<super::FakeFormat>(); } )*
            }
        };
    }

    both_formats!(
        new_root_is_initialised_not_assumed_zero,
        map_then_translate,
        translate_keeps_the_byte_offset,
        unmap_returns_the_frame_and_unmaps,
        unmap_is_break_before_make,
        protect_is_break_before_make,
        protect_with_same_attributes_writes_nothing,
        already_mapped_leaves_the_mapping_alone,
        out_of_range_and_unaligned_are_refused,
        table_exhaustion_changes_nothing,
        destroy_frees_every_table_after_invalidating,
        walks_from_start_level_0,
        walks_from_start_levels_2_and_3,
        mappings_are_listed_in_ipa_order,
        blocks_are_understood_but_not_split,
    );

    fn new_root_is_initialised_not_assumed_zero<F: TestFormat>() {
        let t = setup::<F>(Geometry::default());
        for index in 0..ENTRIES_PER_TABLE {
            assert_eq!(t.mem.read(t.s2.root(), index), F::INVALID);
        }
        assert_eq!(t.s2.vmid(), VMID);
        assert_eq!(t.mem.live(), 1);
        assert_eq!(t.s2.translate(&t.mem, Ipa::new(0)), None);
    }

    fn map_then_translate<F: TestFormat>() {
        let mut t = setup::<F>(Geometry::default());
        let ipa = Ipa::new(0x4000_0000);
        let pa = PhysAddr::new(0x4123_4000);
        t.s2.map_page(&mut t.mem, ipa, pa, rw()).unwrap();
        assert_eq!(t.s2.translate(&t.mem, ipa), Some((pa, rw())));
        // Level 1 root, plus a level-2 and a level-3 table.
        assert_eq!(t.mem.live(), 3);
        // A neighbour in the same level-3 table needs no new table.
        let next = Ipa::new(0x4000_1000);
        t.s2.map_page(&mut t.mem, next, PhysAddr::new(0x5000_0000), rx())
            .unwrap();
        assert_eq!(t.mem.live(), 3);
        assert_eq!(
            t.s2.translate(&t.mem, next),
            Some((PhysAddr::new(0x5000_0000), rx()))
        );
        assert_eq!(t.s2.translate(&t.mem, ipa), Some((pa, rw())));
        assert_eq!(t.s2.translate(&t.mem, Ipa::new(0x4000_2000)), None);
        // No TLB maintenance is needed to add mappings.
        assert!(
            !t.log
                .borrow()
                .iter()
                .any(|e| matches!(e, Event::InvalidateIpa(..) | Event::InvalidateVmid(_)))
        );
    }

    fn translate_keeps_the_byte_offset<F: TestFormat>() {
        let mut t = setup::<F>(Geometry::default());
        t.s2.map_page(
            &mut t.mem,
            Ipa::new(0x1000),
            PhysAddr::new(0x9000_0000),
            rw(),
        )
        .unwrap();
        assert_eq!(
            t.s2.translate(&t.mem, Ipa::new(0x1ABC)),
            Some((PhysAddr::new(0x9000_0ABC), rw()))
        );
        assert_eq!(t.s2.translate(&t.mem, Ipa::new(1 << 39)), None);
    }

    fn unmap_returns_the_frame_and_unmaps<F: TestFormat>() {
        let mut t = setup::<F>(Geometry::default());
        let ipa = Ipa::new(0x7_0000_0000);
        let pa = PhysAddr::new(0x4000_0000);
        let device = Attributes::from_rights(Rights::READ, MemoryKind::Device);
        t.s2.map_page(&mut t.mem, ipa, pa, device).unwrap();
        assert_eq!(
            t.s2.unmap_page(&mut t.mem, &mut t.tlb, ipa),
            Ok((pa, device))
        );
        assert_eq!(t.s2.translate(&t.mem, ipa), None);
        assert_eq!(
            t.s2.unmap_page(&mut t.mem, &mut t.tlb, ipa),
            Err(Stage2Error::NotMapped)
        );
        // Never mapped, and no table on the path at all.
        assert_eq!(
            t.s2.unmap_page(&mut t.mem, &mut t.tlb, Ipa::new(0)),
            Err(Stage2Error::NotMapped)
        );
        // The page can be mapped again.
        t.s2.map_page(&mut t.mem, ipa, pa, rw()).unwrap();
        assert_eq!(t.s2.translate(&t.mem, ipa), Some((pa, rw())));
    }

    /// The events touching the leaf slot of `ipa`, plus TLB events, after `mark`.
    fn leaf_events<F: DescriptorFormat>(t: &Setup<F>, ipa: Ipa, mark: usize) -> Vec<Event> {
        let slot = t.s2.walk(&t.mem, ipa);
        t.log.borrow()[mark..]
            .iter()
            .copied()
            .filter(|e| match e {
                Event::Write(table, index, _) => *table == slot.table && *index == slot.index,
                _ => true,
            })
            .collect()
    }

    fn unmap_is_break_before_make<F: TestFormat>() {
        let mut t = setup::<F>(Geometry::default());
        let ipa = Ipa::new(0x4020_3000);
        t.s2.map_page(&mut t.mem, ipa, PhysAddr::new(0x4000_0000), rw())
            .unwrap();
        let mark = t.log.borrow().len();
        t.s2.unmap_page(&mut t.mem, &mut t.tlb, ipa).unwrap();
        let slot = t.s2.walk(&t.mem, ipa);
        assert_eq!(
            leaf_events(&t, ipa, mark),
            vec![
                Event::Write(slot.table, slot.index, F::INVALID),
                Event::InvalidateIpa(VMID, ipa),
            ]
        );
        assert_eq!(t.log.borrow().len(), mark + 2, "nothing else written");
    }

    fn protect_is_break_before_make<F: TestFormat>() {
        let mut t = setup::<F>(Geometry::default());
        let ipa = Ipa::new(0x4020_3000);
        let pa = PhysAddr::new(0x4000_0000);
        t.s2.map_page(&mut t.mem, ipa, pa, rw()).unwrap();
        let mark = t.log.borrow().len();
        assert_eq!(
            t.s2.protect_page(&mut t.mem, &mut t.tlb, ipa, rx()),
            Ok(rw())
        );
        let slot = t.s2.walk(&t.mem, ipa);
        assert_eq!(
            leaf_events(&t, ipa, mark),
            vec![
                Event::Write(slot.table, slot.index, F::INVALID),
                Event::InvalidateIpa(VMID, ipa),
                Event::Write(slot.table, slot.index, F::page(pa, rx())),
            ]
        );
        assert_eq!(t.log.borrow().len(), mark + 3, "nothing else written");
        assert_eq!(t.s2.translate(&t.mem, ipa), Some((pa, rx())));
        assert_eq!(
            t.s2.protect_page(&mut t.mem, &mut t.tlb, Ipa::new(0x4020_4000), rx()),
            Err(Stage2Error::NotMapped)
        );
    }

    fn protect_with_same_attributes_writes_nothing<F: TestFormat>() {
        let mut t = setup::<F>(Geometry::default());
        let ipa = Ipa::new(0x2000);
        t.s2.map_page(&mut t.mem, ipa, PhysAddr::new(0x4000_0000), rw())
            .unwrap();
        let mark = t.log.borrow().len();
        assert_eq!(
            t.s2.protect_page(&mut t.mem, &mut t.tlb, ipa, rw()),
            Ok(rw())
        );
        assert_eq!(t.log.borrow().len(), mark);
    }

    fn already_mapped_leaves_the_mapping_alone<F: TestFormat>() {
        let mut t = setup::<F>(Geometry::default());
        let ipa = Ipa::new(0x4000_0000);
        let pa = PhysAddr::new(0x4123_4000);
        t.s2.map_page(&mut t.mem, ipa, pa, rw()).unwrap();
        let mark = t.log.borrow().len();
        assert_eq!(
            t.s2.map_page(&mut t.mem, ipa, PhysAddr::new(0x5000_0000), rx()),
            Err(Stage2Error::AlreadyMapped)
        );
        assert_eq!(t.log.borrow().len(), mark, "nothing written or allocated");
        assert_eq!(t.s2.translate(&t.mem, ipa), Some((pa, rw())));
    }

    fn out_of_range_and_unaligned_are_refused<F: TestFormat>() {
        let mut t = setup::<F>(Geometry::default());
        let pa = PhysAddr::new(0x4000_0000);
        let limit = Ipa::new(1 << 39);
        assert_eq!(
            t.s2.map_page(&mut t.mem, limit, pa, rw()),
            Err(Stage2Error::IpaOutOfRange)
        );
        assert_eq!(
            t.s2.map_page(&mut t.mem, Ipa::new(!0xFFF), pa, rw()),
            Err(Stage2Error::IpaOutOfRange)
        );
        assert_eq!(
            t.s2.map_page(&mut t.mem, Ipa::new(0x1001), pa, rw()),
            Err(Stage2Error::Unaligned)
        );
        assert_eq!(
            t.s2.map_page(&mut t.mem, Ipa::new(0x1000), pa.add(8), rw()),
            Err(Stage2Error::Unaligned)
        );
        assert_eq!(
            t.s2.unmap_page(&mut t.mem, &mut t.tlb, limit),
            Err(Stage2Error::IpaOutOfRange)
        );
        assert_eq!(
            t.s2.protect_page(&mut t.mem, &mut t.tlb, Ipa::new(0x10), rw()),
            Err(Stage2Error::Unaligned)
        );
        // The last page of the space is fine.
        let last = Ipa::new((1 << 39) - PAGE_SIZE);
        t.s2.map_page(&mut t.mem, last, pa, rw()).unwrap();
        assert_eq!(t.s2.translate(&t.mem, last), Some((pa, rw())));
        assert_eq!(t.mem.live(), 3, "no table allocated by a refused call");
    }

    fn table_exhaustion_changes_nothing<F: TestFormat>() {
        let mut t = setup::<F>(Geometry::default());
        let first = Ipa::new(0x4000_0000);
        let pa = PhysAddr::new(0x4123_4000);
        t.s2.map_page(&mut t.mem, first, pa, rw()).unwrap();
        // A far IPA needs a level-2 and a level-3 table; only one is available.
        t.mem.budget = Some(1);
        let live = t.mem.live();
        let freed_before = t.mem.freed.clone();
        let far = Ipa::new(0x10_0000_0000);
        assert_eq!(
            t.s2.map_page(&mut t.mem, far, pa, rw()),
            Err(Stage2Error::NoTableMemory)
        );
        assert_eq!(t.mem.live(), live, "the partial allocation was returned");
        let newly_freed: Vec<_> = t.mem.freed.difference(&freed_before).copied().collect();
        assert_eq!(newly_freed.len(), 1);
        assert!(
            !newly_freed.contains(&t.s2.root()),
            "only the table just allocated was freed"
        );
        assert_eq!(t.s2.translate(&t.mem, first), Some((pa, rw())));
        assert_eq!(t.s2.translate(&t.mem, far), None);
        // With no budget at all, the root is untouched.
        t.mem.budget = Some(0);
        let mark = t.log.borrow().len();
        assert_eq!(
            t.s2.map_page(&mut t.mem, far, pa, rw()),
            Err(Stage2Error::NoTableMemory)
        );
        assert_eq!(t.log.borrow().len(), mark);
        // A page whose tables exist still maps without any table memory.
        t.s2.map_page(&mut t.mem, Ipa::new(0x4000_1000), pa, rx())
            .unwrap();
        // And the failed IPA maps once memory is back.
        t.mem.budget = None;
        t.s2.map_page(&mut t.mem, far, pa, rw()).unwrap();
        assert_eq!(t.s2.translate(&t.mem, far), Some((pa, rw())));
        let log = Log::default();
        let mut empty = MockMemory::new(&log);
        empty.budget = Some(0);
        assert!(matches!(
            Stage2::<F>::new(&mut empty, VMID, Geometry::default()),
            Err(Stage2Error::NoTableMemory)
        ));
    }

    fn destroy_frees_every_table_after_invalidating<F: TestFormat>() {
        let mut t = setup::<F>(Geometry::default());
        for (i, ipa) in [0x0, 0x4000_0000, 0x4020_0000, 0x7F_FFFF_F000]
            .into_iter()
            .enumerate()
        {
            t.s2.map_page(
                &mut t.mem,
                Ipa::new(ipa),
                PhysAddr::new(0x4000_0000 + i as u64 * PAGE_SIZE),
                rw(),
            )
            .unwrap();
        }
        let mark = t.log.borrow().len();
        let allocated = t.mem.allocated.clone();
        t.s2.destroy(&mut t.mem, &mut t.tlb);
        assert_eq!(t.mem.live(), 0);
        assert_eq!(t.mem.freed, allocated);
        let log = t.log.borrow();
        assert_eq!(log[mark], Event::InvalidateVmid(VMID));
        assert!(log[mark + 1..].iter().all(|e| matches!(e, Event::Free(_))));
    }

    fn walks_from_start_level_0<F: TestFormat>() {
        let geometry = Geometry::new(0, 48).unwrap();
        let mut t = setup::<F>(geometry);
        let high = Ipa::new(0xFFFF_FFFF_F000);
        let pa = PhysAddr::new(0x4000_0000);
        t.s2.map_page(&mut t.mem, high, pa, rw()).unwrap();
        assert_eq!(t.mem.live(), 4, "levels 0, 1, 2 and 3");
        assert_eq!(t.s2.translate(&t.mem, high), Some((pa, rw())));
        t.s2.map_page(&mut t.mem, Ipa::new(0x1000), pa, rx())
            .unwrap();
        assert_eq!(t.s2.translate(&t.mem, Ipa::new(0x1000)), Some((pa, rx())));
        assert_eq!(
            t.s2.map_page(&mut t.mem, Ipa::new(1 << 48), pa, rw()),
            Err(Stage2Error::IpaOutOfRange)
        );
        let mut seen = Vec::new();
        t.s2.for_each_mapping(&t.mem, |m| seen.push(m.ipa));
        assert_eq!(seen, vec![Ipa::new(0x1000), high]);
        assert_eq!(
            t.s2.unmap_page(&mut t.mem, &mut t.tlb, high),
            Ok((pa, rw()))
        );
        t.s2.destroy(&mut t.mem, &mut t.tlb);
        assert_eq!(t.mem.live(), 0);
    }

    fn walks_from_start_levels_2_and_3<F: TestFormat>() {
        for (level, bits, live) in [(2, 30, 2), (3, 21, 1)] {
            let geometry = Geometry::new(level, bits).unwrap();
            let mut t = setup::<F>(geometry);
            let ipa = Ipa::new((1 << bits) - PAGE_SIZE);
            let pa = PhysAddr::new(0x4000_0000);
            t.s2.map_page(&mut t.mem, ipa, pa, rw()).unwrap();
            assert_eq!(t.mem.live(), live);
            assert_eq!(t.s2.translate(&t.mem, ipa), Some((pa, rw())));
            assert_eq!(
                t.s2.map_page(&mut t.mem, Ipa::new(1 << bits), pa, rw()),
                Err(Stage2Error::IpaOutOfRange)
            );
            t.s2.destroy(&mut t.mem, &mut t.tlb);
            assert_eq!(t.mem.live(), 0);
        }
    }

    fn mappings_are_listed_in_ipa_order<F: TestFormat>() {
        let mut t = setup::<F>(Geometry::default());
        let ipas = [0x7F_FFFF_F000u64, 0x1000, 0x4000_0000, 0x4000_3000];
        for (i, ipa) in ipas.iter().enumerate() {
            t.s2.map_page(
                &mut t.mem,
                Ipa::new(*ipa),
                PhysAddr::new(0x4000_0000 + i as u64 * PAGE_SIZE),
                rw(),
            )
            .unwrap();
        }
        let mut seen = Vec::new();
        t.s2.for_each_mapping(&t.mem, |m| seen.push(m));
        let mut expected: Vec<Mapping> = ipas
            .iter()
            .enumerate()
            .map(|(i, ipa)| Mapping {
                ipa: Ipa::new(*ipa),
                phys: PhysAddr::new(0x4000_0000 + i as u64 * PAGE_SIZE),
                size: PAGE_SIZE,
                attrs: rw(),
            })
            .collect();
        expected.sort_by_key(|m| m.ipa);
        assert_eq!(seen, expected);
    }

    fn blocks_are_understood_but_not_split<F: TestFormat>() {
        let mut t = setup::<F>(Geometry::default());
        // Map a page to create the level-2 table for 1 GiB..2 GiB, then plant a 2 MiB
        // block beside it, as another tool might have.
        t.s2.map_page(
            &mut t.mem,
            Ipa::new(0x4000_0000),
            PhysAddr::new(0x1000),
            rw(),
        )
        .unwrap();
        let block_ipa = Ipa::new(0x4020_0000);
        let level2 = match F::decode(t.mem.read(t.s2.root(), 1), 1) {
            Entry::Table(table) => table,
            other => panic!("expected a table, got {other:?}"),
        };
        t.mem
            .write(level2, 1, F::block(PhysAddr::new(0x8000_0000), rx()));
        assert_eq!(
            t.s2.translate(&t.mem, Ipa::new(0x4023_4567)),
            Some((PhysAddr::new(0x8003_4567), rx()))
        );
        let inside = Ipa::new(0x4021_0000);
        assert_eq!(
            t.s2.map_page(&mut t.mem, inside, PhysAddr::new(0x2000), rw()),
            Err(Stage2Error::BlockMapping)
        );
        assert_eq!(
            t.s2.unmap_page(&mut t.mem, &mut t.tlb, inside),
            Err(Stage2Error::BlockMapping)
        );
        assert_eq!(
            t.s2.protect_page(&mut t.mem, &mut t.tlb, block_ipa, rw()),
            Err(Stage2Error::BlockMapping)
        );
        let mut seen = Vec::new();
        t.s2.for_each_mapping(&t.mem, |m| seen.push((m.ipa, m.size)));
        assert_eq!(
            seen,
            vec![(Ipa::new(0x4000_0000), PAGE_SIZE), (block_ipa, 1 << 21)]
        );
    }

    #[test]
    fn geometry_validates_start_level_and_width() {
        assert_eq!(Geometry::default(), Geometry::new(1, 39).unwrap());
        assert_eq!(Geometry::default().ipa_limit(), 1 << 39);
        assert!(Geometry::new(1, 40).is_none(), "would need concatenation");
        assert!(Geometry::new(1, 30).is_none(), "should start at level 2");
        assert!(Geometry::new(0, 48).is_some());
        assert!(Geometry::new(0, 49).is_none());
        assert!(Geometry::new(0, 40).is_some());
        assert!(Geometry::new(2, 22).is_some());
        assert!(Geometry::new(3, 21).is_some());
        assert!(Geometry::new(4, 12).is_none());
    }

    #[test]
    fn attributes_round_trip_through_rights() {
        for bits in 0..8 {
            let rights = Rights::from_bits(bits).unwrap();
            assert_eq!(
                Attributes::from_rights(rights, MemoryKind::Normal).rights(),
                rights
            );
        }
        assert_eq!(
            Attributes::from_rights(Rights::empty(), MemoryKind::Device).rights(),
            Rights::empty()
        );
    }

    #[test]
    fn errors_map_to_the_abi() {
        assert_eq!(Stage2Error::Unaligned.to_abi(), Error::Unaligned);
        assert_eq!(Stage2Error::IpaOutOfRange.to_abi(), Error::IpaOutOfRange);
        assert_eq!(Stage2Error::AlreadyMapped.to_abi(), Error::Overlap);
        assert_eq!(Stage2Error::NotMapped.to_abi(), Error::BadAddress);
        assert_eq!(Stage2Error::BlockMapping.to_abi(), Error::Overlap);
        assert_eq!(Stage2Error::NoTableMemory.to_abi(), Error::OutOfMemory);
    }

    /// One step of the model test.
    #[derive(Clone, Debug)]
    enum Op {
        Map(usize, u64, Attributes),
        Unmap(usize),
        Protect(usize, Attributes),
    }

    /// A small pool of IPAs sharing and not sharing tables, including the space's edges.
    const IPAS: [u64; 8] = [
        0x0,
        0x1000,
        0x1F_F000,
        0x20_0000,
        0x4000_0000,
        0x4000_1000,
        0x40_0000_0000,
        0x7F_FFFF_F000,
    ];

    fn attributes() -> impl Strategy<Value = Attributes> {
        (0u32..8, any::<bool>()).prop_map(|(bits, device)| {
            Attributes::from_rights(
                Rights::from_bits_truncate(bits),
                if device {
                    MemoryKind::Device
                } else {
                    MemoryKind::Normal
                },
            )
        })
    }

    fn op() -> impl Strategy<Value = Op> {
        let ipa = 0..IPAS.len();
        prop_oneof![
            (ipa.clone(), 0u64..1024, attributes()).prop_map(|(i, frame, a)| Op::Map(i, frame, a)),
            ipa.clone().prop_map(Op::Unmap),
            (ipa, attributes()).prop_map(|(i, a)| Op::Protect(i, a)),
        ]
    }

    fn run_model<F: TestFormat>(ops: &[Op], budget: Option<usize>) -> Result<(), TestCaseError> {
        let mut t = setup::<F>(Geometry::default());
        t.mem.budget = budget;
        let mut model: HashMap<Ipa, (PhysAddr, Attributes)> = HashMap::new();
        for op in ops {
            let mark = t.log.borrow().len();
            match *op {
                Op::Map(i, frame, attrs) => {
                    let ipa = Ipa::new(IPAS[i]);
                    let pa = PhysAddr::new(0x4000_0000 + frame * PAGE_SIZE);
                    let got = t.s2.map_page(&mut t.mem, ipa, pa, attrs);
                    match model.entry(ipa) {
                        MapEntry::Occupied(_) => {
                            prop_assert_eq!(got, Err(Stage2Error::AlreadyMapped));
                        }
                        MapEntry::Vacant(slot) => {
                            if got == Err(Stage2Error::NoTableMemory) {
                                prop_assert!(budget.is_some());
                            } else {
                                prop_assert_eq!(got, Ok(()));
                                slot.insert((pa, attrs));
                            }
                        }
                    }
                    if got.is_err() {
                        // A refused map writes nothing; any table it took went back.
                        let log = t.log.borrow();
                        prop_assert!(
                            log[mark..]
                                .iter()
                                .all(|e| matches!(e, Event::Alloc(_) | Event::Free(_)))
                        );
                    }
                }
                Op::Unmap(i) => {
                    let ipa = Ipa::new(IPAS[i]);
                    let expected = model.remove(&ipa).ok_or(Stage2Error::NotMapped);
                    prop_assert_eq!(t.s2.unmap_page(&mut t.mem, &mut t.tlb, ipa), expected);
                }
                Op::Protect(i, attrs) => {
                    let ipa = Ipa::new(IPAS[i]);
                    let expected = match model.get_mut(&ipa) {
                        Some((_, old)) => Ok(core::mem::replace(old, attrs)),
                        None => Err(Stage2Error::NotMapped),
                    };
                    prop_assert_eq!(
                        t.s2.protect_page(&mut t.mem, &mut t.tlb, ipa, attrs),
                        expected
                    );
                }
            }
            for raw in IPAS {
                let ipa = Ipa::new(raw);
                prop_assert_eq!(t.s2.translate(&t.mem, ipa), model.get(&ipa).copied());
            }
        }
        // The listing agrees with the model (checked once per case: a full walk is slow).
        let mut listed = HashMap::new();
        t.s2.for_each_mapping(&t.mem, |m| {
            assert_eq!(m.size, PAGE_SIZE);
            listed.insert(m.ipa, (m.phys, m.attrs));
        });
        prop_assert_eq!(&listed, &model);
        let allocated = t.mem.allocated.clone();
        t.s2.destroy(&mut t.mem, &mut t.tlb);
        prop_assert_eq!(t.mem.live(), 0);
        prop_assert_eq!(&t.mem.freed, &allocated);
        Ok(())
    }

    proptest! {
        #[test]
        fn aarch64_matches_a_simple_model(
            ops in proptest::collection::vec(op(), 1..60),
            budget in proptest::option::of(0usize..8),
        ) {
            run_model::<Aarch64Stage2>(&ops, budget)?;
        }

        #[test]
        fn fake_matches_a_simple_model(
            ops in proptest::collection::vec(op(), 1..60),
            budget in proptest::option::of(0usize..8),
        ) {
            run_model::<FakeFormat>(&ops, budget)?;
        }
    }
}
