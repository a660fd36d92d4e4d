//! Revocation policies: which frames to give back when the kernel asks.
//!
//! The kernel only says how many frames it wants (and sometimes which); the library OS
//! decides which of its frames go. A [`RevocationPolicy`] sees the request and every frame
//! the library OS holds and marks its choice in a [`Selection`]; the revocation handler then
//! unbinds and frees the chosen frames and acknowledges. Policies run inside an upcall: they
//! must not allocate, block or print much.

use exo_abi::PhysAddr;

use super::table::Frame;

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

/// A set of frames chosen for release, by slot number (position in the holdings slice).
pub struct Selection {
    bits: [u64; SELECTION_CAPACITY / 64],
    count: usize,
}

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
        self.bits.fill(0);
        self.count = 0;
    }

    /// The chosen slots, highest first (the order in which removing them from a
    /// [`super::table::FrameTable`] leaves the remaining slot numbers valid).
    pub fn iter_descending(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.bits.len()).rev().flat_map(move |word| {
            let bits = self.bits[word];
            (0..64)
                .rev()
                .filter(move |bit| bits & (1 << bit) != 0)
                .map(move |bit| word * 64 + bit)
        })
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
        holdings: &[Frame],
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
        holdings: &[Frame],
        choice: &mut Selection,
    ) {
        choose_default(holdings, request.named, request.owed as usize, choice);
    }
}

/// A policy that gives nothing back (the abort protocol will take what is owed).
#[derive(Clone, Copy, Debug, Default)]
pub struct RefusePolicy;

impl RevocationPolicy for RefusePolicy {
    fn choose(&mut self, _: &RevocationRequest<'_>, _: &[Frame], _: &mut Selection) {}
}

/// Adds up to `count` revocable frames to `choice` in the default order: frames in `named`,
/// then unbound frames, then bound frames from the least recently bound. Returns how many
/// it added. Custom policies can use it to release a different amount in the same order.
pub fn choose_default(
    holdings: &[Frame],
    named: &[PhysAddr],
    count: usize,
    choice: &mut Selection,
) -> usize {
    let mut added = 0;
    let take = |slot: usize, choice: &mut Selection, added: &mut usize| {
        if *added < count && holdings[slot].is_revocable() && choice.select(slot) {
            *added += 1;
        }
    };
    if !named.is_empty() {
        for (slot, frame) in holdings.iter().enumerate() {
            if named.contains(&frame.phys()) {
                take(slot, choice, &mut added);
            }
        }
    }
    for (slot, frame) in holdings.iter().enumerate() {
        if frame.ipa().is_none() {
            take(slot, choice, &mut added);
        }
    }
    if added < count {
        added += choose_least_recently_bound(holdings, count - added, choice);
    }
    added
}

/// Adds the `count` least recently bound revocable, bound, unchosen frames to `choice`.
///
/// Bind stamps are distinct, so the smallest stamp `t` with `count` candidates stamped at or
/// before it picks exactly them; `t` is found by binary search over the stamps, one pass over
/// the holdings per step (no sorting, no allocation).
fn choose_least_recently_bound(holdings: &[Frame], count: usize, choice: &mut Selection) -> usize {
    let candidate = |slot: usize| {
        let frame = &holdings[slot];
        frame.is_revocable() && frame.ipa().is_some() && !choice.contains(slot)
    };
    let stamped_by = |limit: u32| {
        (0..holdings.len())
            .filter(|&slot| candidate(slot) && holdings[slot].bound_at() <= limit)
            .count()
    };
    let (mut low, mut high) = (0u32, u32::MAX);
    while low < high {
        let middle = low + (high - low) / 2;
        if stamped_by(middle) >= count {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    let mut added = 0;
    for (slot, frame) in holdings.iter().enumerate() {
        if added == count {
            break;
        }
        // `select` refuses frames chosen before, which `candidate` excluded from the count.
        if frame.is_revocable()
            && frame.ipa().is_some()
            && frame.bound_at() <= low
            && choice.select(slot)
        {
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

    fn chosen(table: &FrameTable<64, 128>, choice: &Selection) -> Vec<PhysAddr> {
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
        DefaultPolicy.choose(&request(3, &[]), table.frames(), &mut choice);
        assert_eq!(chosen(&table, &choice).len(), 3);
        assert!(chosen(&table, &choice).iter().all(|f| *f < frame(4)));
    }

    #[test]
    fn then_the_least_recently_bound() {
        let table = table();
        let mut choice = Selection::new();
        DefaultPolicy.choose(&request(7, &[]), table.frames(), &mut choice);
        let mut expected: Vec<_> = (0..4).map(frame).collect();
        expected.extend([frame(7), frame(8), frame(9)]);
        expected.sort();
        assert_eq!(chosen(&table, &choice), expected);
    }

    #[test]
    fn named_frames_first_and_pinned_never() {
        let mut table = table();
        table.pin(frame(0)).unwrap();
        table.pin(frame(5)).unwrap();
        let mut choice = Selection::new();
        let named = [frame(5), frame(6)];
        DefaultPolicy.choose(&request(2, &named), table.frames(), &mut choice);
        assert_eq!(chosen(&table, &choice), vec![frame(1), frame(6)]);
        choice.clear();
        DefaultPolicy.choose(&request(100, &[]), table.frames(), &mut choice);
        assert_eq!(choice.len(), 8, "all but the two pinned frames");
    }

    #[test]
    fn refuse_policy_chooses_nothing() {
        let table = table();
        let mut choice = Selection::new();
        RefusePolicy.choose(&request(5, &[]), table.frames(), &mut choice);
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
            DefaultPolicy.choose(&request(count as u64, &[]), table.frames(), &mut choice);
            let mut expected: Vec<_> = order[..count].iter().map(|&n| frame(n)).collect();
            expected.sort();
            assert_eq!(chosen(&table, &choice), expected, "count {count}");
        }
    }
}
