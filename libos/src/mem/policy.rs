//! Revocation policies: which frames to give back when the kernel asks.
//!
//! The kernel only says how many frames it wants (and sometimes which); the library OS
//! decides which of its frames go. A [`RevocationPolicy`] sees the request and the frames
//! the library OS holds ([`Holdings`]: every frame, and the revocable ones in release order)
//! and marks its choice in a [`Selection`]; the revocation handler then releases the chosen
//! frames with `EXO_FRAME_RELEASE`, which also acknowledges. Policies run inside an upcall:
//! they must not allocate, block or print much, and should cost what they choose, not what
//! is held (walk [`Holdings::in_release_order`] rather than every frame).

use exo_abi::PhysAddr;

use super::table::Holdings;

/// Most frames a selection can name: the frame table's capacity.
pub const SELECTION_CAPACITY: usize = super::TABLE_CAPACITY;

/// A revocation request, as a policy sees it.
#[derive(Clone, Copy, Debug)]
pub struct RevocationRequest<'a> {
    /// The request's sequence number.
    pub sequence: u64,
    /// Frames asked for.
    pub requested: u64,
    /// Frames still owed (what is left to give).
    pub owed: u64,
    /// Deadline, in system counter ticks.
    pub deadline: u64,
    /// Frames the kernel named (empty: any will do).
    pub named: &'a [PhysAddr],
}

/// A set of frames chosen for release, by slot number (position in the holdings slice):
/// a bit per slot, so a slot is chosen once, and the list of chosen slots, so clearing and
/// walking the choice cost what was chosen, not the capacity.
pub struct Selection {
    bits: [u64; SELECTION_CAPACITY / 64],
    slots: [u16; SELECTION_CAPACITY],
    count: usize,
}

// Slot numbers fit the list's `u16`s.
const _: () = assert!(SELECTION_CAPACITY <= 1 << 16);

impl Default for Selection {
    fn default() -> Self {
        Self::new()
    }
}

impl Selection {
    /// An empty selection.
    pub const fn new() -> Self {
        Self {
            bits: [0; SELECTION_CAPACITY / 64],
            slots: [0; SELECTION_CAPACITY],
            count: 0,
        }
    }

    /// Chooses slot `slot`; returns whether it was newly chosen (false if already chosen or
    /// out of range).
    pub fn select(&mut self, slot: usize) -> bool {
        if slot >= SELECTION_CAPACITY || self.contains(slot) {
            return false;
        }
        self.bits[slot / 64] |= 1 << (slot % 64);
        self.slots[self.count] = slot as u16;
        self.count += 1;
        true
    }

    /// Whether slot `slot` is chosen.
    pub fn contains(&self, slot: usize) -> bool {
        slot < SELECTION_CAPACITY && self.bits[slot / 64] & (1 << (slot % 64)) != 0
    }

    /// How many slots are chosen.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Chooses nothing.
    pub fn clear(&mut self) {
        for &slot in &self.slots[..self.count] {
            self.bits[usize::from(slot) / 64] = 0;
        }
        self.count = 0;
    }

    /// The chosen slots, highest first (the order in which removing them from a
    /// [`super::table::FrameTable`] leaves the remaining slot numbers valid).
    pub fn iter_descending(&mut self) -> impl Iterator<Item = usize> + '_ {
        let chosen = &mut self.slots[..self.count];
        chosen.sort_unstable_by(|a, b| b.cmp(a));
        chosen.iter().map(|&slot| usize::from(slot))
    }
}

/// Decides which frames to release for a revocation request.
pub trait RevocationPolicy {
    /// Marks in `choice` (empty on entry) the slots of `holdings` to release for `request`.
    /// Choosing fewer than [`RevocationRequest::owed`] means the kernel will take the rest
    /// at the deadline (the abort protocol); pinned or busy frames are never released
    /// whatever is chosen.
    fn choose(
        &mut self,
        request: &RevocationRequest<'_>,
        holdings: &Holdings<'_>,
        choice: &mut Selection,
    );
}

/// The default policy: give exactly what is owed, taking frames the kernel named first,
/// then unbound frames (nothing is using them), then the least recently bound.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultPolicy;

impl RevocationPolicy for DefaultPolicy {
    fn choose(
        &mut self,
        request: &RevocationRequest<'_>,
        holdings: &Holdings<'_>,
        choice: &mut Selection,
    ) {
        choose_default(holdings, request.named, request.owed as usize, choice);
    }
}

/// A policy that gives nothing back (the abort protocol will take what is owed).
#[derive(Clone, Copy, Debug, Default)]
pub struct RefusePolicy;

impl RevocationPolicy for RefusePolicy {
    fn choose(&mut self, _: &RevocationRequest<'_>, _: &Holdings<'_>, _: &mut Selection) {}
}

/// A policy that gives back half of what is owed, in the default order, so the abort
/// protocol takes the rest at the deadline: partial compliance, for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default)]
pub struct HalfPolicy;

impl RevocationPolicy for HalfPolicy {
    fn choose(
        &mut self,
        request: &RevocationRequest<'_>,
        holdings: &Holdings<'_>,
        choice: &mut Selection,
    ) {
        choose_default(holdings, request.named, (request.owed / 2) as usize, choice);
    }
}

/// Adds up to `count` revocable frames to `choice` in the default order: frames in `named`,
/// then unbound frames, then bound frames from the least recently bound. Returns how many
/// it added. Custom policies can use it to release a different amount in the same order.
/// Costs a hash lookup per named frame, then one step per frame taken (and per busy frame
/// skipped): what is asked, never what is held.
pub fn choose_default(
    holdings: &Holdings<'_>,
    named: &[PhysAddr],
    count: usize,
    choice: &mut Selection,
) -> usize {
    let mut added = 0;
    for &phys in named {
        if added >= count {
            break;
        }
        if let Some(slot) = holdings.slot_of(phys)
            && holdings[slot].is_revocable()
            && choice.select(slot)
        {
            added += 1;
        }
    }
    for slot in holdings.in_release_order() {
        if added >= count {
            break;
        }
        if holdings[slot].is_revocable() && choice.select(slot) {
            added += 1;
        }
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::table::FrameTable;
    use exo_abi::{Ipa, PAGE_SIZE};

    fn frame(n: u64) -> PhysAddr {
        PhysAddr::new(0x4000_0000 + n * PAGE_SIZE)
    }

    fn request(owed: u64, named: &[PhysAddr]) -> RevocationRequest<'_> {
        RevocationRequest {
            sequence: 1,
            requested: owed,
            owed,
            deadline: 0,
            named,
        }
    }

    fn chosen(table: &FrameTable<64, 128>, choice: &mut Selection) -> Vec<PhysAddr> {
        let mut frames: Vec<_> = choice
            .iter_descending()
            .map(|slot| table.frames()[slot].phys())
            .collect();
        frames.sort();
        frames
    }

    /// Ten frames; 0..4 unbound, 4..10 bound in the order 9, 8, 7, 6, 5, 4.
    fn table() -> Box<FrameTable<64, 128>> {
        let mut table = Box::new(FrameTable::new());
        for n in 0..10 {
            table.insert(frame(n)).unwrap();
        }
        for n in (4..10).rev() {
            table
                .set_bound(
                    frame(n),
                    Ipa::new(n * PAGE_SIZE),
                    exo_abi::BindAttributes::READ_WRITE,
                )
                .unwrap();
        }
        table
    }

    #[test]
    fn unbound_frames_go_first() {
        let table = table();
        let mut choice = Selection::new();
        DefaultPolicy.choose(&request(3, &[]), &table.holdings(), &mut choice);
        assert_eq!(chosen(&table, &mut choice).len(), 3);
        assert!(chosen(&table, &mut choice).iter().all(|f| *f < frame(4)));
    }

    #[test]
    fn then_the_least_recently_bound() {
        let table = table();
        let mut choice = Selection::new();
        DefaultPolicy.choose(&request(7, &[]), &table.holdings(), &mut choice);
        let mut expected: Vec<_> = (0..4).map(frame).collect();
        expected.extend([frame(7), frame(8), frame(9)]);
        expected.sort();
        assert_eq!(chosen(&table, &mut choice), expected);
    }

    #[test]
    fn named_frames_first_and_pinned_never() {
        let mut table = table();
        table.pin(frame(0)).unwrap();
        table.pin(frame(5)).unwrap();
        let mut choice = Selection::new();
        let named = [frame(5), frame(6)];
        DefaultPolicy.choose(&request(2, &named), &table.holdings(), &mut choice);
        assert_eq!(chosen(&table, &mut choice), vec![frame(1), frame(6)]);
        choice.clear();
        DefaultPolicy.choose(&request(100, &[]), &table.holdings(), &mut choice);
        assert_eq!(choice.len(), 8, "all but the two pinned frames");
    }

    #[test]
    fn refuse_policy_chooses_nothing() {
        let table = table();
        let mut choice = Selection::new();
        RefusePolicy.choose(&request(5, &[]), &table.holdings(), &mut choice);
        assert!(choice.is_empty());
    }

    #[test]
    fn selection_iterates_highest_first() {
        let mut choice = Selection::new();
        for slot in [3, 200, 64, 0] {
            assert!(choice.select(slot));
        }
        assert!(!choice.select(3));
        assert!(!choice.select(SELECTION_CAPACITY));
        assert_eq!(
            choice.iter_descending().collect::<Vec<_>>(),
            vec![200, 64, 3, 0]
        );
    }

    /// The least-recently-bound choice agrees with sorting by bind order, for many sizes.
    #[test]
    fn lru_matches_sorting() {
        let mut table = Box::new(FrameTable::<64, 128>::new());
        let order = [13u64, 2, 40, 7, 31, 22, 5, 17, 36, 11, 28, 1, 44, 19];
        for &n in &order {
            table.insert(frame(n)).unwrap();
            table
                .set_bound(
                    frame(n),
                    Ipa::new(n * PAGE_SIZE),
                    exo_abi::BindAttributes::READ_WRITE,
                )
                .unwrap();
        }
        for count in 0..=order.len() {
            let mut choice = Selection::new();
            DefaultPolicy.choose(&request(count as u64, &[]), &table.holdings(), &mut choice);
            let mut expected: Vec<_> = order[..count].iter().map(|&n| frame(n)).collect();
            expected.sort();
            assert_eq!(chosen(&table, &mut choice), expected, "count {count}");
        }
    }
}
