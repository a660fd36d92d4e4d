//! The frame table: the single source of truth for who owns each 4 KiB frame of RAM.
//!
//! Every frame in the covered RAM range has exactly one [`Owner`] at every moment: it is
//! free, it belongs to the kernel, or it belongs to one partition. Every change of owner goes
//! through a method that first checks the current owner, so a partition can never give away,
//! map or free a frame it does not hold. Per-owner counters are maintained on every
//! transition, so [`FrameTable::count`] is O(1) and the counts always sum to
//! [`FrameTable::frame_count`].
//!
//! The table records ownership only; it never reads or writes the frames themselves.
//! **The caller must zero (scrub) a frame before it reaches a new owner**, so no data leaks
//! from one partition (or the kernel) to another.
//!
//! Storage is supplied by the caller (one `u16` per frame), so the kernel can carve it out of
//! RAM at boot without an allocator and then [`FrameTable::reserve`] that storage for itself.
//!
//! **Holes.** The table covers one address range, from the lowest RAM bank's start to the
//! highest's end, so that finding a frame's entry stays one subtraction. The frames between
//! banks (the Raspberry Pi's VideoCore memory and its peripherals below 4 GiB) are marked as
//! holes at boot ([`FrameTable::exclude`]): a hole is no RAM to every method (as an address
//! past the end is), it has no owner, is never allocated, and is in no count.

use exo_abi::package::MAX_PARTITIONS;
use exo_abi::{Error, PAGE_SIZE, PhysAddr};

/// Identifies a partition: its index in the system configuration, below
/// [`MAX_PARTITIONS`]. The kernel names partitions by it everywhere (frame owners, grants,
/// the scheduler, the platform's vCPUs); conversions from and to numbers are the named
/// functions below.
///
/// Held as a `usize`, the width it indexes with: a narrower one costs a zero-extension
/// wherever an id passed in a register indexes a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionId(usize);

impl PartitionId {
    /// The first partition of the configuration (index 0).
    pub const FIRST: Self = Self(0);

    /// The partition with index `index`, or `None` if `index >= MAX_PARTITIONS`.
    pub const fn new(index: u16) -> Option<Self> {
        if (index as usize) < MAX_PARTITIONS {
            Some(Self(index as usize))
        } else {
            None
        }
    }

    /// The partition a hypercall argument names by index, or `None` if no partition can
    /// have that index.
    pub const fn from_register(raw: u64) -> Option<Self> {
        if raw < MAX_PARTITIONS as u64 {
            Some(Self(raw as usize))
        } else {
            None
        }
    }

    /// The first `count` partitions (at most [`MAX_PARTITIONS`]), in index order.
    pub fn first(count: usize) -> impl Iterator<Item = Self> + Clone {
        (0..count.min(MAX_PARTITIONS)).map(Self)
    }

    /// The partition's index, below [`MAX_PARTITIONS`]: its position in per-partition
    /// tables.
    pub const fn index(self) -> usize {
        self.0
    }

    /// The partition's index as a hypercall result register.
    pub const fn to_register(self) -> u64 {
        self.0 as u64
    }
}

impl core::fmt::Display for PartitionId {
    /// The index, as logs and errors have always printed it.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The owner of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    /// Nobody: available to [`FrameTable::alloc`].
    Free,
    /// The kernel (its image, the boot package, this table, stage-2 tables, info pages...).
    Kernel,
    /// A partition.
    Partition(PartitionId),
}

/// Number of distinct owners: free, kernel and every partition.
const OWNER_SLOTS: usize = 2 + MAX_PARTITIONS;

/// The entry of a frame that is no RAM (a hole between banks): no [`Owner::encode`] value.
const HOLE: u16 = u16::MAX;

impl Owner {
    /// The private per-frame encoding; also the index of the owner's counter.
    const fn encode(self) -> u16 {
        match self {
            Owner::Free => 0,
            Owner::Kernel => 1,
            Owner::Partition(id) => 2 + id.0 as u16,
        }
    }

    /// Inverse of [`Owner::encode`]. Entries are only ever written by `encode`, so every
    /// stored value decodes.
    const fn decode(entry: u16) -> Owner {
        match entry {
            0 => Owner::Free,
            1 => Owner::Kernel,
            n => Owner::Partition(PartitionId(n as usize - 2)),
        }
    }
}

/// Why a frame-table operation was refused. A refused operation changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The address (or part of the range) is outside the RAM the table covers.
    NotRam,
    /// The address is not aligned to a frame.
    Unaligned,
    /// The frame is not owned by the expected owner; `actual` is who owns it.
    NotOwner {
        /// The frame's current owner.
        actual: Owner,
    },
    /// No frame is free.
    Exhausted,
}

impl FrameError {
    /// The hypercall error a partition sees for this failure.
    pub const fn to_abi(&self) -> Error {
        match self {
            FrameError::NotRam => Error::NotRam,
            FrameError::Unaligned => Error::Unaligned,
            FrameError::NotOwner {
                actual: Owner::Kernel,
            } => Error::KernelMemory,
            FrameError::NotOwner {
                actual: Owner::Partition(_),
            } => Error::OtherPartition,
            FrameError::NotOwner {
                actual: Owner::Free,
            } => Error::NotOwner,
            FrameError::Exhausted => Error::OutOfMemory,
        }
    }
}

/// Number of `u16` storage entries needed to cover `ram_bytes` of RAM (rounded up to whole
/// frames).
pub const fn entries_for(ram_bytes: u64) -> usize {
    ram_bytes.div_ceil(PAGE_SIZE) as usize
}

/// Ownership of every frame in `[base, base + frame_count * PAGE_SIZE)`.
pub struct FrameTable<'a> {
    /// Physical address of frame 0.
    base: PhysAddr,
    /// One encoded [`Owner`] per frame.
    entries: &'a mut [u16],
    /// Number of frames held by each owner, indexed by [`Owner::encode`].
    counts: [usize; OWNER_SLOTS],
    /// Where the next-fit search for a free frame starts.
    cursor: usize,
    /// Number of entries that are [`HOLE`]s.
    holes: usize,
}

impl<'a> FrameTable<'a> {
    /// A table covering `storage.len()` frames starting at `base`, all [`Owner::Free`].
    /// Whatever `storage` held before is overwritten.
    ///
    /// # Panics
    ///
    /// If `base` is not frame-aligned or the range overflows the address space. Both come
    /// from the boot memory map, never from a partition.
    pub fn new(base: PhysAddr, storage: &'a mut [u16]) -> Self {
        assert!(
            base.is_page_aligned(),
            "frame table base must be page-aligned"
        );
        assert!(
            (storage.len() as u64)
                .checked_mul(PAGE_SIZE)
                .and_then(|bytes| base.checked_add(bytes))
                .is_some(),
            "frame table range overflows"
        );
        storage.fill(Owner::Free.encode());
        let mut counts = [0; OWNER_SLOTS];
        counts[Owner::Free.encode() as usize] = storage.len();
        Self {
            base,
            entries: storage,
            counts,
            cursor: 0,
            holes: 0,
        }
    }

    /// Boot-time removal of the byte range `[start, end)`, rounded outward to whole frames,
    /// from the RAM the table manages: a hole between memory banks. Its frames become no RAM
    /// ([`FrameTable::contains`] is false for them) and leave every count.
    ///
    /// All or nothing: every frame in the range must be inside the table and free (or
    /// already a hole). An empty range succeeds.
    pub fn exclude(&mut self, start: PhysAddr, end: PhysAddr) -> Result<(), FrameError> {
        let Some(range) = self.frames_of(start, end)? else {
            return Ok(());
        };
        if let Some(busy) = self.entries[range.clone()]
            .iter()
            .find(|entry| **entry != Owner::Free.encode() && **entry != HOLE)
        {
            return Err(FrameError::NotOwner {
                actual: Owner::decode(*busy),
            });
        }
        for i in range {
            if self.entries[i] != HOLE {
                self.counts[Owner::Free.encode() as usize] -= 1;
                self.entries[i] = HOLE;
                self.holes += 1;
            }
        }
        Ok(())
    }

    /// Number of entries in the table, RAM or hole: the span from [`FrameTable::base`] to
    /// [`FrameTable::end`] in frames.
    pub fn span_frames(&self) -> usize {
        self.entries.len()
    }

    /// Number of frames in holes between banks ([`FrameTable::exclude`]).
    pub fn hole_count(&self) -> usize {
        self.holes
    }

    /// Physical address of the first frame.
    pub fn base(&self) -> PhysAddr {
        self.base
    }

    /// Physical address just past the last frame.
    pub fn end(&self) -> PhysAddr {
        self.base.add(self.entries.len() as u64 * PAGE_SIZE)
    }

    /// Number of frames of RAM covered (holes are not RAM): what the counts add up to.
    pub fn frame_count(&self) -> usize {
        self.entries.len() - self.holes
    }

    /// Whether `pa` (any byte address) lies in the covered RAM, not in a hole.
    pub fn contains(&self, pa: PhysAddr) -> bool {
        self.base <= pa && pa < self.end() && self.entries[self.frame_index(pa)] != HOLE
    }

    /// The owner of the frame at `pa`, or `None` if `pa` is not a frame-aligned RAM address.
    pub fn owner(&self, pa: PhysAddr) -> Option<Owner> {
        self.index(pa).ok().map(|i| Owner::decode(self.entries[i]))
    }

    /// Number of frames `owner` holds. O(1).
    pub fn count(&self, owner: Owner) -> usize {
        self.counts[owner.encode() as usize]
    }

    /// Every frame `owner` holds, in ascending address order.
    pub fn owned_by(&self, owner: Owner) -> impl Iterator<Item = PhysAddr> + '_ {
        let wanted = owner.encode();
        let base = self.base;
        self.entries
            .iter()
            .enumerate()
            .filter(move |(_, entry)| **entry == wanted)
            .map(move |(i, _)| base.add(i as u64 * PAGE_SIZE))
    }

    /// The first frame at or after `from` that `owner` holds: lets a caller walk an owner's
    /// frames once while changing the table between steps.
    pub fn next_owned(&self, owner: Owner, from: PhysAddr) -> Option<PhysAddr> {
        let wanted = owner.encode();
        let start = usize::try_from(from.raw().checked_sub(self.base.raw())? / PAGE_SIZE).ok()?;
        self.entries
            .get(start..)?
            .iter()
            .position(|entry| *entry == wanted)
            .map(|i| self.base.add((start + i) as u64 * PAGE_SIZE))
    }

    /// Boot-time claim of the byte range `[start, end)`, rounded outward to whole frames,
    /// for `owner` (the kernel image, the device tree, this table's own storage...).
    ///
    /// All or nothing: every frame in the range must be RAM and free, otherwise nothing
    /// changes. An empty range succeeds and claims nothing.
    pub fn reserve(
        &mut self,
        start: PhysAddr,
        end: PhysAddr,
        owner: Owner,
    ) -> Result<(), FrameError> {
        let Some(range) = self.frames_of(start, end)? else {
            return Ok(());
        };
        if self.entries[range.clone()].contains(&HOLE) {
            return Err(FrameError::NotRam);
        }
        if let Some(busy) = self.entries[range.clone()]
            .iter()
            .find(|entry| **entry != Owner::Free.encode())
        {
            return Err(FrameError::NotOwner {
                actual: Owner::decode(*busy),
            });
        }
        for i in range {
            self.set(i, owner);
        }
        Ok(())
    }

    /// Gives any free frame to `to`, searching next-fit from just after the last frame
    /// handed out. The frame's contents are whatever its previous owner left: scrub it.
    pub fn alloc(&mut self, to: Owner) -> Result<PhysAddr, FrameError> {
        if self.count(Owner::Free) == 0 {
            return Err(FrameError::Exhausted);
        }
        let frames = self.entries.len();
        let free = Owner::Free.encode();
        let start = self.cursor;
        let found = (start..frames)
            .chain(0..start)
            .find(|&i| self.entries[i] == free)
            .ok_or(FrameError::Exhausted)?;
        self.set(found, to);
        self.cursor = if found + 1 == frames { 0 } else { found + 1 };
        Ok(self.frame_address(found))
    }

    /// Gives the free frame at `pa` to `to`.
    pub fn alloc_specific(&mut self, pa: PhysAddr, to: Owner) -> Result<(), FrameError> {
        self.transfer(pa, Owner::Free, to)
    }

    /// Moves the frame at `pa` from `from` to `to`; refused unless `from` owns it now.
    pub fn transfer(&mut self, pa: PhysAddr, from: Owner, to: Owner) -> Result<(), FrameError> {
        let i = self.index(pa)?;
        let actual = Owner::decode(self.entries[i]);
        if actual != from {
            return Err(FrameError::NotOwner { actual });
        }
        self.set(i, to);
        Ok(())
    }

    /// Returns the frame at `pa`, held by `from`, to the free pool. The caller must have
    /// removed every mapping of it first (and scrub it before it is handed out again).
    pub fn free(&mut self, pa: PhysAddr, from: Owner) -> Result<(), FrameError> {
        self.transfer(pa, from, Owner::Free)
    }

    /// Makes the next allocation search from `pa` (ignored unless it is RAM): a caller that
    /// just freed frames it knows will be handed over (a revocation's) points here at the
    /// lowest of them, so they are found without a search of the whole table.
    pub fn search_from(&mut self, pa: PhysAddr) {
        if let Ok(i) = self.index(pa.page_base()) {
            self.cursor = i;
        }
    }

    /// Indices of the frames holding the bytes `[start, end)`, `None` if it is empty; refused
    /// unless both ends are inside the table (holes included).
    fn frames_of(
        &self,
        start: PhysAddr,
        end: PhysAddr,
    ) -> Result<Option<core::ops::RangeInclusive<usize>>, FrameError> {
        if end <= start {
            return Ok(None);
        }
        let first = start.page_base();
        let last = PhysAddr::new(end.raw() - 1).page_base();
        let inside = |pa: PhysAddr| self.base <= pa && pa < self.end();
        if !inside(first) || !inside(last) {
            return Err(FrameError::NotRam);
        }
        Ok(Some(self.frame_index(first)..=self.frame_index(last)))
    }

    /// Index of the frame at `pa`, checking it is aligned RAM.
    fn index(&self, pa: PhysAddr) -> Result<usize, FrameError> {
        if !self.contains(pa) {
            return Err(FrameError::NotRam);
        }
        if !pa.is_page_aligned() {
            return Err(FrameError::Unaligned);
        }
        Ok(self.frame_index(pa))
    }

    /// Index of the frame holding `pa`, which must be in range.
    fn frame_index(&self, pa: PhysAddr) -> usize {
        ((pa.raw() - self.base.raw()) / PAGE_SIZE) as usize
    }

    /// Address of frame `i`.
    fn frame_address(&self, i: usize) -> PhysAddr {
        self.base.add(i as u64 * PAGE_SIZE)
    }

    /// The one place an entry changes: keeps the counters in step.
    fn set(&mut self, i: usize, to: Owner) {
        let old = self.entries[i] as usize;
        let new = to.encode();
        self.counts[old] -= 1;
        self.counts[new as usize] += 1;
        self.entries[i] = new;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::vec::Vec;

    const BASE: u64 = 0x4000_0000;
    const FRAMES: usize = 16;

    fn pa(frame: usize) -> PhysAddr {
        PhysAddr::new(BASE + frame as u64 * PAGE_SIZE)
    }

    fn part(i: u16) -> Owner {
        Owner::Partition(PartitionId::new(i).unwrap())
    }

    #[test]
    fn partition_ids_are_bounded() {
        assert_eq!(PartitionId::new(63).map(PartitionId::index), Some(63));
        assert_eq!(PartitionId::new(64), None);
    }

    #[test]
    fn new_table_is_all_free_even_over_dirty_storage() {
        let mut storage = [0xFFFF; FRAMES];
        let table = FrameTable::new(PhysAddr::new(BASE), &mut storage);
        assert_eq!(table.frame_count(), FRAMES);
        assert_eq!(table.count(Owner::Free), FRAMES);
        assert_eq!(table.owner(pa(0)), Some(Owner::Free));
        assert_eq!(table.owner(pa(FRAMES - 1)), Some(Owner::Free));
        assert_eq!(table.owned_by(Owner::Free).count(), FRAMES);
        assert_eq!(table.end(), pa(FRAMES));
    }

    #[test]
    fn owner_is_none_outside_ram_or_unaligned() {
        let mut storage = [0; FRAMES];
        let table = FrameTable::new(PhysAddr::new(BASE), &mut storage);
        assert_eq!(table.owner(pa(FRAMES)), None);
        assert_eq!(table.owner(PhysAddr::new(BASE - PAGE_SIZE)), None);
        assert_eq!(table.owner(PhysAddr::new(BASE + 8)), None);
    }

    #[test]
    #[should_panic]
    fn unaligned_base_is_refused() {
        let mut storage = [0; 1];
        let _ = FrameTable::new(PhysAddr::new(BASE + 1), &mut storage);
    }

    #[test]
    fn entries_for_rounds_up() {
        assert_eq!(entries_for(0), 0);
        assert_eq!(entries_for(1), 1);
        assert_eq!(entries_for(PAGE_SIZE), 1);
        assert_eq!(entries_for(1 << 30), 1 << 18);
    }

    #[test]
    fn reserve_rounds_outward_and_is_all_or_nothing() {
        let mut storage = [0; FRAMES];
        let mut table = FrameTable::new(PhysAddr::new(BASE), &mut storage);
        // Bytes [frame 1 + 8, frame 3 + 1) cover frames 1, 2 and 3.
        table
            .reserve(pa(1).add(8), pa(3).add(1), Owner::Kernel)
            .unwrap();
        assert_eq!(
            table.owned_by(Owner::Kernel).collect::<Vec<_>>(),
            vec![pa(1), pa(2), pa(3)]
        );
        // Overlapping frame 3: refused, and frame 4 stays free.
        assert_eq!(
            table.reserve(pa(3), pa(5), part(0)),
            Err(FrameError::NotOwner {
                actual: Owner::Kernel
            })
        );
        assert_eq!(table.owner(pa(4)), Some(Owner::Free));
        // Running off the end of RAM: refused, nothing claimed.
        assert_eq!(
            table.reserve(pa(FRAMES - 1), pa(FRAMES + 1), part(0)),
            Err(FrameError::NotRam)
        );
        assert_eq!(table.owner(pa(FRAMES - 1)), Some(Owner::Free));
        // Empty range: nothing to do.
        table.reserve(pa(5), pa(5), part(0)).unwrap();
        assert_eq!(table.count(part(0)), 0);
        assert_eq!(table.count(Owner::Kernel), 3);
        assert_eq!(table.count(Owner::Free), FRAMES - 3);
    }

    #[test]
    fn alloc_is_next_fit_and_exhausts() {
        let mut storage = [0; 4];
        let mut table = FrameTable::new(PhysAddr::new(BASE), &mut storage);
        assert_eq!(table.alloc(part(1)), Ok(pa(0)));
        assert_eq!(table.alloc(part(1)), Ok(pa(1)));
        table.free(pa(0), part(1)).unwrap();
        // Next fit: continues after frame 1 rather than reusing frame 0 at once.
        assert_eq!(table.alloc(part(2)), Ok(pa(2)));
        assert_eq!(table.alloc(part(2)), Ok(pa(3)));
        assert_eq!(table.alloc(part(2)), Ok(pa(0)));
        assert_eq!(table.alloc(part(2)), Err(FrameError::Exhausted));
        assert_eq!(table.count(Owner::Free), 0);
        assert_eq!(table.count(part(1)), 1);
        assert_eq!(table.count(part(2)), 3);
    }

    #[test]
    fn alloc_specific_needs_a_free_frame() {
        let mut storage = [0; FRAMES];
        let mut table = FrameTable::new(PhysAddr::new(BASE), &mut storage);
        table.alloc_specific(pa(5), part(3)).unwrap();
        assert_eq!(table.owner(pa(5)), Some(part(3)));
        assert_eq!(
            table.alloc_specific(pa(5), part(4)),
            Err(FrameError::NotOwner { actual: part(3) })
        );
        assert_eq!(
            table.alloc_specific(pa(5).add(4), part(4)),
            Err(FrameError::Unaligned)
        );
        assert_eq!(
            table.alloc_specific(pa(FRAMES), part(4)),
            Err(FrameError::NotRam)
        );
        assert_eq!(table.owner(pa(5)), Some(part(3)));
    }

    #[test]
    fn transfer_checks_the_current_owner() {
        let mut storage = [0; FRAMES];
        let mut table = FrameTable::new(PhysAddr::new(BASE), &mut storage);
        let frame = table.alloc(part(0)).unwrap();
        assert_eq!(
            table.transfer(frame, part(1), part(2)),
            Err(FrameError::NotOwner { actual: part(0) })
        );
        table.transfer(frame, part(0), part(1)).unwrap();
        assert_eq!(table.owner(frame), Some(part(1)));
        assert_eq!(table.count(part(0)), 0);
        assert_eq!(table.count(part(1)), 1);
        assert_eq!(
            table.free(frame, part(0)),
            Err(FrameError::NotOwner { actual: part(1) })
        );
        table.free(frame, part(1)).unwrap();
        assert_eq!(
            table.free(frame, part(1)),
            Err(FrameError::NotOwner {
                actual: Owner::Free
            })
        );
        assert_eq!(table.count(Owner::Free), FRAMES);
    }

    #[test]
    fn errors_map_to_the_abi() {
        assert_eq!(FrameError::NotRam.to_abi(), Error::NotRam);
        assert_eq!(FrameError::Unaligned.to_abi(), Error::Unaligned);
        assert_eq!(
            FrameError::NotOwner {
                actual: Owner::Kernel
            }
            .to_abi(),
            Error::KernelMemory
        );
        assert_eq!(
            FrameError::NotOwner { actual: part(9) }.to_abi(),
            Error::OtherPartition
        );
        assert_eq!(
            FrameError::NotOwner {
                actual: Owner::Free
            }
            .to_abi(),
            Error::NotOwner
        );
        assert_eq!(FrameError::Exhausted.to_abi(), Error::OutOfMemory);
    }

    #[test]
    fn last_partition_id_encodes() {
        let mut storage = [0; 2];
        let mut table = FrameTable::new(PhysAddr::new(0), &mut storage);
        let last = part((MAX_PARTITIONS - 1) as u16);
        let frame = table.alloc(last).unwrap();
        assert_eq!(table.owner(frame), Some(last));
        assert_eq!(table.count(last), 1);
    }

    #[test]
    fn holes_are_no_ram_and_never_handed_out() {
        let mut storage = [0; FRAMES];
        let mut table = FrameTable::new(PhysAddr::new(BASE), &mut storage);
        // A hole of frames 6 and 7, given with unaligned ends.
        table.exclude(pa(6).add(8), pa(7).add(1)).unwrap();
        assert_eq!(table.frame_count(), FRAMES - 2);
        assert_eq!((table.span_frames(), table.hole_count()), (FRAMES, 2));
        assert_eq!(table.count(Owner::Free), FRAMES - 2);
        assert_eq!((table.owner(pa(6)), table.contains(pa(7))), (None, false));
        assert!(table.contains(pa(5)) && table.contains(pa(8)));
        assert_eq!(
            table.alloc_specific(pa(6), part(0)),
            Err(FrameError::NotRam)
        );
        assert_eq!(
            table.reserve(pa(5), pa(9), Owner::Kernel),
            Err(FrameError::NotRam)
        );
        assert_eq!(table.owner(pa(5)), Some(Owner::Free), "all or nothing");
        // Every frame handed out is RAM; then the table is exhausted.
        let given: Vec<PhysAddr> = (0..FRAMES - 2)
            .map(|_| table.alloc(part(1)).unwrap())
            .collect();
        assert!(
            !given.contains(&pa(6)) && !given.contains(&pa(7)),
            "{given:?}"
        );
        assert_eq!(table.alloc(part(1)), Err(FrameError::Exhausted));
        assert_eq!(table.owned_by(part(1)).count(), FRAMES - 2);
        // A held frame cannot become a hole; excluding a hole again changes nothing.
        assert_eq!(
            table.exclude(pa(5), pa(6)),
            Err(FrameError::NotOwner { actual: part(1) })
        );
        table.exclude(pa(6), pa(8)).unwrap();
        assert_eq!(table.hole_count(), 2);
        assert_eq!(
            table.exclude(pa(FRAMES), pa(FRAMES + 1)),
            Err(FrameError::NotRam)
        );
    }

    /// One step of the model test.
    #[derive(Clone, Debug)]
    enum Op {
        Alloc(Owner),
        AllocSpecific(usize, Owner),
        Transfer(usize, Owner, Owner),
        Free(usize, Owner),
        Reserve(usize, usize, Owner),
    }

    /// A few owners, so collisions between them are frequent.
    fn owner() -> impl Strategy<Value = Owner> {
        prop_oneof![
            Just(Owner::Free),
            Just(Owner::Kernel),
            (0u16..3).prop_map(part),
            Just(part((MAX_PARTITIONS - 1) as u16)),
        ]
    }

    /// Frame indices including a couple past the end (not RAM).
    fn frame() -> impl Strategy<Value = usize> {
        0..FRAMES + 2
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            owner().prop_map(Op::Alloc),
            (frame(), owner()).prop_map(|(f, o)| Op::AllocSpecific(f, o)),
            (frame(), owner(), owner()).prop_map(|(f, a, b)| Op::Transfer(f, a, b)),
            (frame(), owner()).prop_map(|(f, o)| Op::Free(f, o)),
            (frame(), 0usize..4, owner()).prop_map(|(f, n, o)| Op::Reserve(f, n, o)),
        ]
    }

    /// The model's idea of a transfer.
    fn model_transfer(
        model: &mut HashMap<usize, Owner>,
        f: usize,
        from: Owner,
        to: Owner,
    ) -> Result<(), FrameError> {
        let actual = *model.get(&f).ok_or(FrameError::NotRam)?;
        if actual != from {
            return Err(FrameError::NotOwner { actual });
        }
        model.insert(f, to);
        Ok(())
    }

    proptest! {
        #[test]
        fn matches_a_simple_model(ops in proptest::collection::vec(op(), 1..200)) {
            let mut storage = [0u16; FRAMES];
            let mut table = FrameTable::new(PhysAddr::new(BASE), &mut storage);
            // Frames 6 and 7 are a hole between two banks: no RAM to the model.
            table.exclude(pa(6), pa(8)).unwrap();
            let mut model: HashMap<usize, Owner> =
                (0..FRAMES).filter(|f| !(6..8).contains(f)).map(|f| (f, Owner::Free)).collect();
            for op in ops {
                match op {
                    Op::Alloc(to) => {
                        let got = table.alloc(to);
                        let any_free = model.values().any(|o| *o == Owner::Free);
                        match got {
                            Ok(frame) => {
                                prop_assert!(any_free);
                                let f = ((frame.raw() - BASE) / PAGE_SIZE) as usize;
                                prop_assert_eq!(model.get(&f), Some(&Owner::Free));
                                model.insert(f, to);
                            }
                            Err(e) => {
                                prop_assert_eq!(e, FrameError::Exhausted);
                                prop_assert!(!any_free);
                            }
                        }
                    }
                    Op::AllocSpecific(f, to) => {
                        let expected = model_transfer(&mut model, f, Owner::Free, to);
                        prop_assert_eq!(table.alloc_specific(pa(f), to), expected);
                    }
                    Op::Transfer(f, from, to) => {
                        let expected = model_transfer(&mut model, f, from, to);
                        prop_assert_eq!(table.transfer(pa(f), from, to), expected);
                    }
                    Op::Free(f, from) => {
                        let expected = model_transfer(&mut model, f, from, Owner::Free);
                        prop_assert_eq!(table.free(pa(f), from), expected);
                    }
                    Op::Reserve(f, n, to) => {
                        let frames: Vec<usize> = (f..f + n).collect();
                        let expected = if n == 0 {
                            Ok(())
                        } else if frames.iter().any(|f| !model.contains_key(f)) {
                            Err(FrameError::NotRam)
                        } else if let Some(busy) =
                            frames.iter().map(|f| model[f]).find(|o| *o != Owner::Free)
                        {
                            Err(FrameError::NotOwner { actual: busy })
                        } else {
                            for f in &frames {
                                model.insert(*f, to);
                            }
                            Ok(())
                        };
                        // Unaligned ends inside the same frames round outward to them.
                        let start = pa(f).add(PAGE_SIZE / 2 * u64::from(n > 0));
                        let end = if n == 0 {
                            start
                        } else {
                            pa(f + n - 1).add(PAGE_SIZE / 2 + 1)
                        };
                        prop_assert_eq!(table.reserve(start, end, to), expected);
                    }
                }

                // Single ownership: the table agrees with the model frame by frame.
                for f in 0..FRAMES {
                    prop_assert_eq!(table.owner(pa(f)), model.get(&f).copied());
                }
                // Conservation and counters agree with iteration.
                let mut owners = vec![Owner::Free, Owner::Kernel, part((MAX_PARTITIONS - 1) as u16)];
                owners.extend((0..3).map(part));
                let mut total = 0;
                for o in owners {
                    let listed: Vec<PhysAddr> = table.owned_by(o).collect();
                    prop_assert_eq!(table.count(o), listed.len());
                    prop_assert_eq!(listed.len(), model.values().filter(|m| **m == o).count());
                    total += table.count(o);
                }
                prop_assert_eq!(total, table.frame_count());
            }
        }
    }
}
