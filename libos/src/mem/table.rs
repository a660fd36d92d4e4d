//! The library OS's record of the frames it holds: by physical address, where each is bound
//! and when it was last bound (for least-recently-bound revocation policies).
//!
//! A fixed-capacity array of [`Frame`]s (no allocation: the revocation handler uses it from
//! an upcall) with an open-addressing index by physical address (linear probing, deletion
//! by backward shift), so lookups stay cheap with tens of thousands of frames.

use exo_abi::{BindAttributes, Error, Ipa, PAGE_SIZE, PhysAddr};

/// Flag: the frame backs library OS memory (the heap); no policy may release it.
const PINNED: u8 = 1;
/// Flag: an operation on the frame is in flight (a hypercall between two table updates).
const BUSY: u8 = 2;
/// Flag: the frame is bound (at `ipa`). A flag, not a sentinel IPA, so an empty table is all
/// zeroes and lives in `.bss`.
const BOUND: u8 = 4;

/// One held frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    phys: u64,
    ipa: u64,
    stamp: u32,
    rights: u8,
    flags: u8,
}

impl Frame {
    const EMPTY: Frame = Frame {
        phys: 0,
        ipa: 0,
        stamp: 0,
        rights: 0,
        flags: 0,
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
        }
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
        Ok(())
    }

    /// Forgets a frame (freed or repossessed); returns what was recorded.
    pub fn remove(&mut self, phys: PhysAddr) -> Option<Frame> {
        let position = self.position_of(phys.raw()).ok()?;
        let slot = self.index[position] as usize - 1;
        let removed = self.frames[slot];
        self.delete_position(position);
        let last = self.len - 1;
        if slot != last {
            self.frames[slot] = self.frames[last];
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
        let frame = &mut self.frames[slot];
        frame.ipa = ipa.raw();
        // Every defined attribute fits in the low byte.
        frame.rights = rights.bits() as u8;
        frame.stamp = self.clock;
        frame.flags = (frame.flags & !BUSY) | BOUND;
        Ok(())
    }

    /// Records that `phys` is no longer bound. Clears its busy flag.
    pub fn set_unbound(&mut self, phys: PhysAddr) -> Result<(), Error> {
        let frame = self.get_mut(phys)?;
        frame.ipa = 0;
        frame.rights = 0;
        frame.flags &= !(BUSY | BOUND);
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
        self.get_mut(phys)?.flags |= PINNED;
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
        let mut position = Self::home(phys);
        loop {
            match self.index[position] {
                0 => return Err(position),
                entry if self.frames[entry as usize - 1].phys == phys => return Ok(position),
                _ => position = (position + 1) & (H - 1),
            }
        }
    }

    /// Where `phys` would sit in the index without collisions (Fibonacci hashing of the
    /// frame number).
    fn home(phys: u64) -> usize {
        let hash = (phys / PAGE_SIZE).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (hash >> 32) as usize & (H - 1)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    type Small = FrameTable<300, 512>;

    fn frame(n: u64) -> PhysAddr {
        PhysAddr::new(0x4000_0000 + n * PAGE_SIZE)
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
