//! Grants: a frame's holder lets another partition bind it. A fixed-size table, because
//! grant memory must be bounded no matter what a library OS asks for.

use crate::mem::frame_table::PartitionId;
use exo_abi::{Ipa, PhysAddr, Rights};

/// Most grants in the system at once.
pub const MAX_GRANTS: usize = 256;

/// One grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The frame.
    pub frame: PhysAddr,
    /// Who holds it.
    pub owner: PartitionId,
    /// Who may bind it.
    pub grantee: PartitionId,
    /// Rights the grantee may bind it with.
    pub rights: Rights,
    /// Where the grantee bound it, if it has.
    pub bound_at: Option<Ipa>,
}

/// The grant table.
pub struct Grants {
    slots: [Option<Grant>; MAX_GRANTS],
    /// Grants in `slots`.
    len: usize,
}

impl Default for Grants {
    fn default() -> Self {
        Self {
            slots: [None; MAX_GRANTS],
            len: 0,
        }
    }
}

impl Grants {
    /// The slot of the grant of `frame` to `grantee`.
    pub fn find(&self, frame: PhysAddr, grantee: PartitionId) -> Option<usize> {
        self.slots
            .iter()
            .position(|g| g.is_some_and(|g| g.frame == frame && g.grantee == grantee))
    }

    /// Whether there is no grant at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a grant; `None` if the table is full.
    pub fn insert(&mut self, grant: Grant) -> Option<usize> {
        let slot = self.slots.iter().position(Option::is_none)?;
        self.slots[slot] = Some(grant);
        self.len += 1;
        Some(slot)
    }

    /// The grant in `slot`.
    pub fn get(&self, slot: usize) -> Option<&Grant> {
        self.slots.get(slot)?.as_ref()
    }

    /// The grant in `slot`, mutably.
    pub fn get_mut(&mut self, slot: usize) -> Option<&mut Grant> {
        self.slots.get_mut(slot)?.as_mut()
    }

    /// Removes and returns the grant in `slot`.
    pub fn remove(&mut self, slot: usize) -> Option<Grant> {
        let grant = self.slots.get_mut(slot)?.take()?;
        self.len -= 1;
        Some(grant)
    }

    /// The first grant matching `predicate`, by slot.
    pub fn first(&self, predicate: impl Fn(&Grant) -> bool) -> Option<usize> {
        self.slots
            .iter()
            .position(|g| g.as_ref().is_some_and(&predicate))
    }

    /// Every grant, with its slot.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Grant)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, g)| Some((i, g.as_ref()?)))
    }
}
