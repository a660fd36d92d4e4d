//! Interrupt secure bindings, the portable half: who owns which interrupt, and each
//! partition's queue of virtual interrupts waiting for a list register.
//!
//! The GIC's list registers (4 on QEMU's and the GIC-400's virtual interface) hold the
//! interrupts a vCPU sees as pending or active. When more are pending than fit, the rest wait
//! here, in an [`IntidSet`] per partition, and the kernel refills the list registers when the
//! hardware says they ran low (the maintenance interrupt) or when the partition is next
//! resumed. Nothing is lost: a set bit stays set until it is in a list register.

use crate::mem::frame_table::PartitionId;
use exo_abi::call::{VIRTUAL_TIMER_INTID, signal};
use exo_abi::package::{FIRST_SPI, LAST_SPI};

/// INTIDs 0..1020 are interrupts; 1020..1023 are special (GICv3 2.2.1).
pub const INTID_LIMIT: u32 = 1020;

/// Default virtual priority of interrupts injected into partitions.
pub const DEFAULT_PRIORITY: u8 = 0xA0;

/// A set of INTIDs below [`INTID_LIMIT`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IntidSet {
    words: [u64; 16],
    /// Members, kept so the common question (is anything queued?) costs nothing.
    count: u16,
}

impl IntidSet {
    /// The empty set.
    pub const EMPTY: Self = Self {
        words: [0; 16],
        count: 0,
    };

    /// Adds `intid`; returns whether it was new. INTIDs out of range are ignored.
    pub fn insert(&mut self, intid: u32) -> bool {
        if intid >= INTID_LIMIT {
            return false;
        }
        let (word, bit) = (intid as usize / 64, 1u64 << (intid % 64));
        let new = self.words[word] & bit == 0;
        self.words[word] |= bit;
        self.count += u16::from(new);
        new
    }

    /// Removes `intid`.
    pub fn remove(&mut self, intid: u32) {
        if intid < INTID_LIMIT {
            let (word, bit) = (intid as usize / 64, 1u64 << (intid % 64));
            self.count -= u16::from(self.words[word] & bit != 0);
            self.words[word] &= !bit;
        }
    }

    /// Whether `intid` is in the set.
    pub fn contains(&self, intid: u32) -> bool {
        intid < INTID_LIMIT && self.words[intid as usize / 64] & (1u64 << (intid % 64)) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// The members in ascending order (visits set bits only).
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            let mut rest = word;
            core::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros();
                rest &= rest - 1;
                Some(i as u32 * 64 + bit)
            })
        })
    }

    /// The lowest member.
    pub fn first(&self) -> Option<u32> {
        if self.count == 0 {
            return None;
        }
        self.words
            .iter()
            .enumerate()
            .find(|(_, word)| **word != 0)
            .map(|(i, word)| i as u32 * 64 + word.trailing_zeros())
    }
}

/// A virtual interrupt for a list register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtualIrq {
    /// The INTID the partition sees.
    pub intid: u32,
    /// Its virtual priority.
    pub priority: u8,
    /// Backed by the physical interrupt of the same INTID (list register HW bit): the
    /// partition's EOI deactivates it.
    pub hardware: bool,
}

/// What a partition may do with an INTID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// An SPI the configuration gave it.
    Spi,
    /// A kernel signal (every partition's own).
    Signal,
    /// The virtual timer's PPI (every partition's own).
    VirtualTimer,
}

/// Who owns each SPI, and each interrupt's virtual priority.
pub struct InterruptTable {
    owner: [u8; INTID_LIMIT as usize],
    priority: [u8; INTID_LIMIT as usize],
    enabled: IntidSet,
}

/// No owner.
const NOBODY: u8 = u8::MAX;

/// Why an SPI could not be given to a partition at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimError {
    /// Not an SPI, or beyond what the GIC implements.
    NotAnSpi(u32),
    /// Another partition owns it already.
    Taken(u32),
}

impl Default for InterruptTable {
    fn default() -> Self {
        Self::new()
    }
}

impl InterruptTable {
    /// Nothing owned.
    pub const fn new() -> Self {
        Self {
            owner: [NOBODY; INTID_LIMIT as usize],
            priority: [DEFAULT_PRIORITY; INTID_LIMIT as usize],
            enabled: IntidSet::EMPTY,
        }
    }

    /// Gives SPI `intid` to partition `id`, if the GIC has it (`lines` INTIDs) and it is free.
    pub fn claim(&mut self, intid: u32, id: PartitionId, lines: u32) -> Result<(), ClaimError> {
        if !(FIRST_SPI..=LAST_SPI).contains(&intid) || intid >= lines {
            return Err(ClaimError::NotAnSpi(intid));
        }
        let slot = &mut self.owner[intid as usize];
        if *slot != NOBODY {
            return Err(ClaimError::Taken(intid));
        }
        *slot = id.index() as u8;
        Ok(())
    }

    /// The partition owning SPI `intid`.
    pub fn owner(&self, intid: u32) -> Option<PartitionId> {
        match self.owner.get(intid as usize) {
            Some(&NOBODY) | None => None,
            Some(&id) => PartitionId::new(u16::from(id)),
        }
    }

    /// What partition `id` may do with `intid`, or `None` if it is not its own.
    pub fn ownership(&self, id: PartitionId, intid: u32) -> Option<Ownership> {
        if signal::ALL.contains(&intid) {
            Some(Ownership::Signal)
        } else if intid == VIRTUAL_TIMER_INTID {
            Some(Ownership::VirtualTimer)
        } else if self.owner(intid) == Some(id) {
            Some(Ownership::Spi)
        } else {
            None
        }
    }

    /// The SPIs partition `id` owns.
    pub fn owned_by(&self, id: PartitionId) -> impl Iterator<Item = u32> + '_ {
        (FIRST_SPI..INTID_LIMIT).filter(move |&i| self.owner(i) == Some(id))
    }

    /// Virtual priority of SPI `intid`.
    pub fn priority(&self, intid: u32) -> u8 {
        self.priority
            .get(intid as usize)
            .copied()
            .unwrap_or(DEFAULT_PRIORITY)
    }

    /// Sets the virtual priority of SPI `intid`.
    pub fn set_priority(&mut self, intid: u32, priority: u8) {
        if let Some(p) = self.priority.get_mut(intid as usize) {
            *p = priority;
        }
    }

    /// Records whether SPI `intid` is enabled in the distributor.
    pub fn set_enabled(&mut self, intid: u32, enabled: bool) {
        if enabled {
            self.enabled.insert(intid);
        } else {
            self.enabled.remove(intid);
        }
    }

    /// Whether partition `id` has an enabled SPI (something that can wake it).
    pub fn has_enabled(&self, id: PartitionId) -> bool {
        self.enabled.iter().any(|i| self.owner(i) == Some(id))
    }

    /// Forgets partition `id`'s SPIs (it has ended); returns them.
    pub fn release_all(&mut self, id: PartitionId) -> IntidSet {
        let mut released = IntidSet::EMPTY;
        for intid in FIRST_SPI..INTID_LIMIT {
            if self.owner(intid) == Some(id) {
                self.owner[intid as usize] = NOBODY;
                self.enabled.remove(intid);
                released.insert(intid);
            }
        }
        released
    }
}

/// One partition's virtual interrupt state the kernel keeps (the list registers themselves
/// are hardware state, switched with the vCPU).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuInterrupts {
    /// Interrupts waiting for a list register (the overflow queue).
    pub queued: IntidSet,
    /// Which of `queued` are physical (injected with the HW bit).
    pub hardware: IntidSet,
    /// Signals the partition enabled: they arrive as virtual interrupts, not upcalls.
    pub signals_enabled: IntidSet,
    /// Priorities of its signals and its virtual timer (INTIDs below 32).
    pub local_priority: [u8; 32],
    /// The MESSAGE signal was raised for the message now waiting (until `EXO_RECEIVE`).
    pub message_signalled: bool,
    /// Most interrupts that ever waited in the queue at once (a high-water mark).
    pub queue_high_water: usize,
}

impl VcpuInterrupts {
    /// Nothing queued, signals as upcalls, default priorities.
    pub fn new() -> Self {
        Self {
            local_priority: [DEFAULT_PRIORITY; 32],
            ..Self::default()
        }
    }

    /// Queues `intid` (physical if `hardware`); returns whether it was not queued already.
    pub fn queue(&mut self, intid: u32, hardware: bool) -> bool {
        let new = self.queued.insert(intid);
        if hardware {
            self.hardware.insert(intid);
        }
        self.queue_high_water = self.queue_high_water.max(self.queued.len());
        new
    }

    /// The next queued interrupt (lowest INTID first), without removing it.
    pub fn peek(&self, table: &InterruptTable) -> Option<VirtualIrq> {
        let intid = self.queued.first()?;
        let priority = if intid < 32 {
            self.local_priority[intid as usize]
        } else {
            table.priority(intid)
        };
        Some(VirtualIrq {
            intid,
            priority,
            hardware: self.hardware.contains(intid),
        })
    }

    /// Removes `intid` from the queue (it is in a list register now, or was discarded).
    pub fn dequeue(&mut self, intid: u32) {
        self.queued.remove(intid);
        self.hardware.remove(intid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Partition `index`.
    fn pid(index: u16) -> PartitionId {
        PartitionId::new(index).expect("a partition index")
    }

    #[test]
    fn claims_are_exclusive_and_spi_only() {
        let mut table = InterruptTable::new();
        assert_eq!(table.claim(48, pid(0), 288), Ok(()));
        assert_eq!(table.claim(48, pid(1), 288), Err(ClaimError::Taken(48)));
        assert_eq!(table.claim(27, pid(1), 288), Err(ClaimError::NotAnSpi(27)));
        assert_eq!(
            table.claim(300, pid(1), 288),
            Err(ClaimError::NotAnSpi(300))
        );
        assert_eq!(
            table.claim(1020, pid(1), 2000),
            Err(ClaimError::NotAnSpi(1020))
        );
        assert_eq!(table.owner(48), Some(pid(0)));
        assert_eq!(table.ownership(pid(0), 48), Some(Ownership::Spi));
        assert_eq!(table.ownership(pid(1), 48), None);
        assert_eq!(
            table.ownership(pid(1), signal::MESSAGE),
            Some(Ownership::Signal)
        );
        assert_eq!(
            table.ownership(pid(1), VIRTUAL_TIMER_INTID),
            Some(Ownership::VirtualTimer)
        );
        assert_eq!(table.ownership(pid(1), 26), None, "the kernel's own timer");
        assert_eq!(table.owned_by(pid(0)).collect::<Vec<_>>(), vec![48]);
        let released = table.release_all(pid(0));
        assert!(released.contains(48));
        assert_eq!(table.owner(48), None);
    }

    #[test]
    fn the_queue_hands_out_each_interrupt_once_lowest_first() {
        let table = InterruptTable::new();
        let mut v = VcpuInterrupts::new();
        assert!(v.queue(50, true));
        assert!(v.queue(signal::MESSAGE, false));
        assert!(!v.queue(50, true), "a pending interrupt coalesces");
        let first = v.peek(&table).unwrap();
        assert_eq!(first.intid, signal::MESSAGE);
        assert!(!first.hardware);
        v.dequeue(first.intid);
        let second = v.peek(&table).unwrap();
        assert_eq!((second.intid, second.hardware), (50, true));
        v.dequeue(50);
        assert_eq!(v.peek(&table), None);
        assert_eq!(v.queue_high_water, 2);
    }

    proptest! {
        /// The set agrees with a simple model under any sequence of inserts and removes.
        #[test]
        fn intid_set_matches_a_model(ops in prop::collection::vec((any::<bool>(), 0u32..1100), 0..200)) {
            let mut set = IntidSet::EMPTY;
            let mut model = std::collections::BTreeSet::new();
            for (insert, intid) in ops {
                if insert {
                    let new = set.insert(intid);
                    prop_assert_eq!(new, intid < INTID_LIMIT && model.insert(intid));
                } else {
                    set.remove(intid);
                    model.remove(&intid);
                }
            }
            prop_assert_eq!(set.iter().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(set.len(), model.len());
            prop_assert_eq!(set.is_empty(), model.is_empty());
            prop_assert_eq!(set.first(), model.iter().next().copied());
        }
    }
}
