//! The library OS's record of the frames it holds: by physical address, where each is bound
//! and when it was last bound (for least-recently-bound revocation policies).
//!
//! A fixed-capacity array of [`Frame`]s (no allocation: the revocation handler uses it from
//! an upcall) with an open-addressing index by physical address (linear probing, deletion
//! by backward shift), so lookups stay cheap with tens of thousands of frames.
//!
//! Two lists run through the array, kept as frames change: unbound frames (in the order
//! they became unbound) and bound frames (least recently bound first). Pinned frames are on
//! neither. A policy walks them ([`Holdings::in_release_order`]) and so chooses in time
//! proportional to what it takes, not to what is held.

use exo_abi::{BindAttributes, Error, Ipa, PAGE_SIZE, PhysAddr};

/// Flag: the frame backs library OS memory (the heap); no policy may release it.
const PINNED: u8 = 1;
/// Flag: an operation on the frame is in flight (a hypercall between two table updates).
const BUSY: u8 = 2;
/// Flag: the frame is bound (at `ipa`). A flag, not a sentinel IPA, so an empty table is all
/// zeroes and lives in `.bss`.
const BOUND: u8 = 4;
/// Flag: the frame is on one of the two release-order lists.
const LINKED: u8 = 8;

/// The list of unbound frames.
const UNBOUND: usize = 0;
/// The list of bound frames, least recently bound first.
const BOUND_LIST: usize = 1;

/// One held frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    phys: u64,
    ipa: u64,
    stamp: u32,
    rights: u8,
    flags: u8,
    /// Neighbours on its release-order list: slot plus one, 0 for none.
    prev: u32,
    next: u32,
}

impl Frame {
    const EMPTY: Frame = Frame {
        phys: 0,
        ipa: 0,
        stamp: 0,
        rights: 0,
        flags: 0,
        prev: 0,
        next: 0,
    };

    /// The frame's physical address.
    pub fn phys(&self) -> PhysAddr {
        PhysAddr::new(self.phys)
    }

    /// Where it is bound, if it is.
    pub fn ipa(&self) -> Option<Ipa> {
        (self.flags & BOUND != 0).then_some(Ipa::new(self.ipa))
    }

    /// The attributes of its binding (empty if unbound).
    pub fn rights(&self) -> BindAttributes {
        BindAttributes::from_bits_truncate(u64::from(self.rights))
    }

    /// When it was last bound, on the table's clock (larger is more recent; 0: never).
    pub fn bound_at(&self) -> u32 {
        self.stamp
    }

    /// Whether it backs library OS memory and must never be given back.
    pub fn is_pinned(&self) -> bool {
        self.flags & PINNED != 0
    }

    /// Whether a bind or release of it is in flight.
    pub fn is_busy(&self) -> bool {
        self.flags & BUSY != 0
    }

    /// Whether a revocation policy may choose it.
    pub fn is_revocable(&self) -> bool {
        self.flags & (PINNED | BUSY) == 0
    }
}

/// Frames held, up to `N`, indexed by an open-addressing table of `H` slots (a power of two
/// larger than `N`).
pub struct FrameTable<const N: usize, const H: usize> {
    frames: [Frame; N],
    len: usize,
    /// 0: empty; otherwise the slot in `frames` plus one.
    index: [u32; H],
    clock: u32,
    /// First and last slot plus one of the unbound and bound lists (0: empty).
    heads: [u32; 2],
    tails: [u32; 2],
}

/// What a revocation policy sees of the frames held: every frame, and the two lists in
/// release order.
#[derive(Clone, Copy)]
pub struct Holdings<'a> {
    frames: &'a [Frame],
    heads: [u32; 2],
    /// The table's hash index (slot + 1 per position, 0 empty; its length a power of two).
    index: &'a [u32],
}

impl<'a> Holdings<'a> {
    /// Every held frame, by slot.
    pub fn frames(&self) -> &'a [Frame] {
        self.frames
    }

    /// The slot of the frame named `phys`, if it is held: a hash lookup, not a walk.
    pub fn slot_of(&self, phys: PhysAddr) -> Option<usize> {
        position_in(self.frames, self.index, phys.raw())
            .ok()
            .map(|position| self.index[position] as usize - 1)
    }

    /// Slots of the frames a policy may release, in the default order: unbound frames
    /// first, then bound frames from the least recently bound. Pinned frames are not
    /// listed; busy ones are (skip them). Costs one step per slot visited.
    pub fn in_release_order(&self) -> impl Iterator<Item = usize> + 'a {
        let frames = self.frames;
        let heads = self.heads;
        heads.into_iter().flat_map(move |head| {
            core::iter::successors((head != 0).then(|| head as usize - 1), move |&slot| {
                let next = frames.get(slot)?.next;
                (next != 0).then(|| next as usize - 1)
            })
        })
    }
}

impl core::ops::Deref for Holdings<'_> {
    type Target = [Frame];

    fn deref(&self) -> &[Frame] {
        self.frames
    }
}

impl<const N: usize, const H: usize> Default for FrameTable<N, H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const H: usize> FrameTable<N, H> {
    const CHECK: () = assert!(H.is_power_of_two() && H > N && N < u32::MAX as usize);

    /// An empty table.
    pub const fn new() -> Self {
        let () = Self::CHECK;
        Self {
            frames: [Frame::EMPTY; N],
            len: 0,
            index: [0; H],
            clock: 0,
            heads: [0; 2],
            tails: [0; 2],
        }
    }

    /// The frames held, with the release-order lists, for a policy.
    pub fn holdings(&self) -> Holdings<'_> {
        Holdings {
            frames: self.frames(),
            heads: self.heads,
            index: &self.index,
        }
    }

    /// Appends slot `slot` to the list its binding puts it on (unless it is pinned).
    fn link(&mut self, slot: usize) {
        let frame = self.frames[slot];
        if frame.flags & (PINNED | LINKED) != 0 {
            return;
        }
        let list = if frame.flags & BOUND != 0 {
            BOUND_LIST
        } else {
            UNBOUND
        };
        let me = slot as u32 + 1;
        let tail = self.tails[list];
        self.frames[slot].prev = tail;
        self.frames[slot].next = 0;
        self.frames[slot].flags |= LINKED;
        match tail {
            0 => self.heads[list] = me,
            tail => self.frames[tail as usize - 1].next = me,
        }
        self.tails[list] = me;
    }

    /// Takes slot `slot` off its list.
    fn unlink(&mut self, slot: usize) {
        let frame = self.frames[slot];
        if frame.flags & LINKED == 0 {
            return;
        }
        let list = if frame.flags & BOUND != 0 {
            BOUND_LIST
        } else {
            UNBOUND
        };
        match frame.prev {
            0 => self.heads[list] = frame.next,
            prev => self.frames[prev as usize - 1].next = frame.next,
        }
        match frame.next {
            0 => self.tails[list] = frame.prev,
            next => self.frames[next as usize - 1].prev = frame.prev,
        }
        let frame = &mut self.frames[slot];
        frame.prev = 0;
        frame.next = 0;
        frame.flags &= !LINKED;
    }

    /// How many frames it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many frames it can hold.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Every held frame, in no particular order. Slot numbers (positions in this slice) are
    /// what a [`super::policy::Selection`] names.
    pub fn frames(&self) -> &[Frame] {
        &self.frames[..self.len]
    }

    /// The held frame `phys`.
    pub fn get(&self, phys: PhysAddr) -> Option<&Frame> {
        self.slot_of(phys.raw()).map(|slot| &self.frames[slot])
    }

    /// The held frame bound at `ipa` (a linear search).
    pub fn bound_at(&self, ipa: Ipa) -> Option<&Frame> {
        let page = ipa.page_base().raw();
        self.frames()
            .iter()
            .find(|frame| frame.flags & BOUND != 0 && frame.ipa == page)
    }

    /// Records a newly held, unbound frame. `Busy` if it is already recorded, `Unaligned` if
    /// `phys` is not a frame address, `QuotaExhausted` if the table is full.
    pub fn insert(&mut self, phys: PhysAddr) -> Result<(), Error> {
        if !phys.is_page_aligned() {
            return Err(Error::Unaligned);
        }
        let position = match self.position_of(phys.raw()) {
            Ok(_) => return Err(Error::Busy),
            Err(empty) => empty,
        };
        if self.len == N {
            return Err(Error::QuotaExhausted);
        }
        self.frames[self.len] = Frame {
            phys: phys.raw(),
            ..Frame::EMPTY
        };
        self.index[position] = (self.len + 1) as u32;
        self.len += 1;
        self.link(self.len - 1);
        Ok(())
    }

    /// Forgets a frame (freed or repossessed); returns what was recorded.
    pub fn remove(&mut self, phys: PhysAddr) -> Option<Frame> {
        let position = self.position_of(phys.raw()).ok()?;
        let slot = self.index[position] as usize - 1;
        self.unlink(slot);
        let removed = self.frames[slot];
        self.delete_position(position);
        let last = self.len - 1;
        if slot != last {
            // The last frame moves into the hole: off its list and back in the same place.
            let moved = self.frames[last];
            self.frames[slot] = moved;
            let me = slot as u32 + 1;
            if moved.flags & LINKED != 0 {
                let list = if moved.flags & BOUND != 0 {
                    BOUND_LIST
                } else {
                    UNBOUND
                };
                match moved.prev {
                    0 => self.heads[list] = me,
                    prev => self.frames[prev as usize - 1].next = me,
                }
                match moved.next {
                    0 => self.tails[list] = me,
                    next => self.frames[next as usize - 1].prev = me,
                }
            }
            let moved = self
                .position_of(self.frames[slot].phys)
                .expect("every recorded frame is indexed");
            self.index[moved] = (slot + 1) as u32;
        }
        self.frames[last] = Frame::EMPTY;
        self.len -= 1;
        Some(removed)
    }

    /// Records that `phys` is now bound at `ipa` with `rights`, and stamps it as the most
    /// recently bound frame. Clears its busy flag.
    pub fn set_bound(
        &mut self,
        phys: PhysAddr,
        ipa: Ipa,
        rights: BindAttributes,
    ) -> Result<(), Error> {
        let slot = self.slot_of(phys.raw()).ok_or(Error::NotOwner)?;
        self.clock = self.clock.wrapping_add(1).max(1);
        self.unlink(slot);
        let frame = &mut self.frames[slot];
        frame.ipa = ipa.raw();
        // Every defined attribute fits in the low byte.
        frame.rights = rights.bits() as u8;
        frame.stamp = self.clock;
        frame.flags = (frame.flags & !BUSY) | BOUND;
        self.link(slot);
        Ok(())
    }

    /// Records that `phys` is no longer bound. Clears its busy flag.
    pub fn set_unbound(&mut self, phys: PhysAddr) -> Result<(), Error> {
        let slot = self.slot_of(phys.raw()).ok_or(Error::NotOwner)?;
        self.unlink(slot);
        let frame = &mut self.frames[slot];
        frame.ipa = 0;
        frame.rights = 0;
        frame.flags &= !(BUSY | BOUND);
        self.link(slot);
        Ok(())
    }

    /// Sets or clears the busy flag: policies skip busy frames.
    pub fn set_busy(&mut self, phys: PhysAddr, busy: bool) -> Result<(), Error> {
        let frame = self.get_mut(phys)?;
        if busy {
            frame.flags |= BUSY;
        } else {
            frame.flags &= !BUSY;
        }
        Ok(())
    }

    /// Pins a frame: no policy will release it.
    pub fn pin(&mut self, phys: PhysAddr) -> Result<(), Error> {
        let slot = self.slot_of(phys.raw()).ok_or(Error::NotOwner)?;
        self.unlink(slot);
        self.frames[slot].flags |= PINNED;
        Ok(())
    }

    fn get_mut(&mut self, phys: PhysAddr) -> Result<&mut Frame, Error> {
        let slot = self.slot_of(phys.raw()).ok_or(Error::NotOwner)?;
        Ok(&mut self.frames[slot])
    }

    fn slot_of(&self, phys: u64) -> Option<usize> {
        self.position_of(phys)
            .ok()
            .map(|position| self.index[position] as usize - 1)
    }

    /// The index position holding `phys`, or the empty position where it would go.
    fn position_of(&self, phys: u64) -> Result<usize, usize> {
        position_in(&self.frames, &self.index, phys)
    }

    /// Where `phys` would sit in the index without collisions.
    fn home(phys: u64) -> usize {
        home_in(phys, H)
    }

    /// Empties index `position`, shifting later entries of the same probe run back so every
    /// entry stays reachable from its home (Knuth 6.4, Algorithm R).
    fn delete_position(&mut self, position: usize) {
        let mut hole = position;
        let mut next = position;
        loop {
            next = (next + 1) & (H - 1);
            let entry = self.index[next];
            if entry == 0 {
                break;
            }
            let home = Self::home(self.frames[entry as usize - 1].phys);
            // Move the entry into the hole unless its home lies cyclically in (hole, next].
            let stays = if hole <= next {
                hole < home && home <= next
            } else {
                hole < home || home <= next
            };
            if !stays {
                self.index[hole] = entry;
                hole = next;
            }
        }
        self.index[hole] = 0;
    }
}

/// Where `phys` would sit in an index of `len` positions (a power of two) without
/// collisions: Fibonacci hashing of the frame number.
fn home_in(phys: u64, len: usize) -> usize {
    let hash = (phys / PAGE_SIZE).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (hash >> 32) as usize & (len - 1)
}

/// The position of `index` (a hash index of `frames`, its length a power of two) holding
/// `phys`, or the empty position where it would go: linear probing from the frame number's
/// Fibonacci hash.
fn position_in(frames: &[Frame], index: &[u32], phys: u64) -> Result<usize, usize> {
    let mask = index.len() - 1;
    let mut position = home_in(phys, index.len());
    loop {
        match index[position] {
            0 => return Err(position),
            entry if frames[entry as usize - 1].phys == phys => return Ok(position),
            _ => position = (position + 1) & mask,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    type Small = FrameTable<300, 512>;

    fn frame(n: u64) -> PhysAddr {
        PhysAddr::new(0x4000_0000 + n * PAGE_SIZE)
    }

    /// A policy finds a named frame by hash, in holdings of any size, after removals shift
    /// the probe runs.
    #[test]
    fn holdings_find_each_held_frame_by_name() {
        let mut table = Box::new(Small::new());
        for n in 0..300 {
            table.insert(frame(n)).unwrap();
        }
        for n in (0..300).step_by(3) {
            table.remove(frame(n));
        }
        let holdings = table.holdings();
        for n in 0..300 {
            let found = holdings.slot_of(frame(n)).map(|slot| holdings[slot].phys());
            let expected = (n % 3 != 0).then(|| frame(n));
            assert_eq!(found, expected, "frame {n}");
        }
        assert_eq!(holdings.slot_of(frame(1000)), None);
    }

    #[test]
    fn insert_bind_unbind_remove() {
        let mut table = Box::new(Small::new());
        table.insert(frame(1)).unwrap();
        assert_eq!(table.insert(frame(1)), Err(Error::Busy));
        assert_eq!(table.insert(PhysAddr::new(3)), Err(Error::Unaligned));
        table
            .set_bound(
                frame(1),
                Ipa::new(0x1_0000_0000),
                BindAttributes::READ_WRITE,
            )
            .unwrap();
        let recorded = table.get(frame(1)).unwrap();
        assert_eq!(recorded.ipa(), Some(Ipa::new(0x1_0000_0000)));
        assert_eq!(recorded.bound_at(), 1);
        assert_eq!(
            table.bound_at(Ipa::new(0x1_0000_0008)).map(Frame::phys),
            Some(frame(1))
        );
        table.set_unbound(frame(1)).unwrap();
        assert_eq!(table.get(frame(1)).unwrap().ipa(), None);
        assert!(table.remove(frame(1)).is_some());
        assert!(table.remove(frame(1)).is_none());
        assert!(table.is_empty());
        assert_eq!(
            table.set_bound(frame(1), Ipa::new(0), BindAttributes::READ_WRITE),
            Err(Error::NotOwner)
        );
    }

    #[test]
    fn full_table_refuses() {
        let mut table = Box::new(FrameTable::<4, 8>::new());
        for n in 0..4 {
            table.insert(frame(n)).unwrap();
        }
        assert_eq!(table.insert(frame(9)), Err(Error::QuotaExhausted));
    }

    #[test]
    fn pinned_and_busy_frames_are_not_revocable() {
        let mut table = Box::new(Small::new());
        table.insert(frame(1)).unwrap();
        table.insert(frame(2)).unwrap();
        table.pin(frame(1)).unwrap();
        table.set_busy(frame(2), true).unwrap();
        assert!(!table.get(frame(1)).unwrap().is_revocable());
        assert!(!table.get(frame(2)).unwrap().is_revocable());
        table
            .set_bound(frame(2), Ipa::new(0x5000), BindAttributes::READ)
            .unwrap();
        assert!(
            table.get(frame(2)).unwrap().is_revocable(),
            "binding ends busy"
        );
    }

    /// The release order after random inserts, binds, unbinds, pins and removes: unbound
    /// frames in the order they became unbound, then bound ones by bind time; never a pinned
    /// one.
    #[test]
    fn release_order_follows_the_model() {
        let mut table = Box::new(Small::new());
        let mut unbound: Vec<u64> = Vec::new();
        let mut bound: Vec<u64> = Vec::new();
        let mut pinned: Vec<u64> = Vec::new();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for step in 0..5000u64 {
            let phys = frame(next() % 200).raw();
            let held = table.get(PhysAddr::new(phys)).is_some();
            let forget = |list: &mut Vec<u64>| list.retain(|&f| f != phys);
            match next() % 5 {
                0 | 1 if !held && table.insert(PhysAddr::new(phys)).is_ok() => {
                    unbound.push(phys);
                }
                0 if held && !pinned.contains(&phys) => {
                    let ipa = Ipa::new(step * PAGE_SIZE);
                    table
                        .set_bound(PhysAddr::new(phys), ipa, BindAttributes::READ)
                        .unwrap();
                    forget(&mut unbound);
                    forget(&mut bound);
                    bound.push(phys);
                }
                1 if held && !pinned.contains(&phys) => {
                    table.set_unbound(PhysAddr::new(phys)).unwrap();
                    forget(&mut unbound);
                    forget(&mut bound);
                    unbound.push(phys);
                }
                2 if held => {
                    table.remove(PhysAddr::new(phys)).unwrap();
                    forget(&mut unbound);
                    forget(&mut bound);
                    forget(&mut pinned);
                }
                3 if held && next() % 8 == 0 => {
                    table.pin(PhysAddr::new(phys)).unwrap();
                    forget(&mut unbound);
                    forget(&mut bound);
                    if !pinned.contains(&phys) {
                        pinned.push(phys);
                    }
                }
                _ => {}
            }
            let holdings = table.holdings();
            let order: Vec<u64> = holdings
                .in_release_order()
                .map(|slot| holdings[slot].phys().raw())
                .collect();
            let expected: Vec<u64> = unbound.iter().chain(&bound).copied().collect();
            assert_eq!(order, expected, "step {step}");
        }
    }

    /// Random inserts and removes against a `HashMap` model, with addresses chosen to collide
    /// in the index.
    #[test]
    fn matches_a_model_under_random_operations() {
        let mut table = Box::new(Small::new());
        let mut model: HashMap<u64, u64> = HashMap::new();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for step in 0..20_000u64 {
            let n = next() % 700;
            let phys = frame(n * 512); // multiples of 512 frames: many index collisions
            if next() % 2 == 0 {
                let expected = if model.contains_key(&phys.raw()) {
                    Err(Error::Busy)
                } else if model.len() == 300 {
                    Err(Error::QuotaExhausted)
                } else {
                    Ok(())
                };
                assert_eq!(table.insert(phys), expected, "step {step}");
                if expected.is_ok() {
                    table
                        .set_bound(phys, Ipa::new(step * PAGE_SIZE), BindAttributes::READ)
                        .unwrap();
                    model.insert(phys.raw(), step * PAGE_SIZE);
                }
            } else {
                let removed = table.remove(phys).map(|f| f.ipa().unwrap().raw());
                assert_eq!(removed, model.remove(&phys.raw()), "step {step}");
            }
            assert_eq!(table.len(), model.len());
        }
        for (&phys, &ipa) in &model {
            let recorded = table.get(PhysAddr::new(phys)).unwrap();
            assert_eq!(recorded.ipa(), Some(Ipa::new(ipa)));
        }
        assert_eq!(table.frames().len(), model.len());
    }
}
