//! Memory secure bindings: frames are allocated by name, bound where the library OS chooses,
//! shared by grant. Authority is checked here, once per binding; afterwards the stage-2 MMU
//! enforces it. Every call either succeeds completely or changes nothing.

use super::{CallResult, Kernel, Platform, Tables};
use crate::mem::frame_table::{FrameError, Owner, PartitionId};
use crate::mem::grants::Grant;
use crate::mem::stage2::{Attributes, Stage2Error};
use crate::partition::State;
use exo_abi::call::FRAME_ALLOC_MAX;
use exo_abi::info::{KERNEL_WINDOW_END, KERNEL_WINDOW_START, MemoryKind};
use exo_abi::revocation::Reason;
use exo_abi::{BindAttributes, Error, Ipa, PhysAddr, Rights};

/// Why a frame name is refused, from the caller's point of view.
fn ownership_error(actual: Option<Owner>) -> Error {
    match actual {
        None => Error::NotRam,
        Some(owner) => FrameError::NotOwner { actual: owner }.to_abi(),
    }
}

impl<'a, P: Platform> Kernel<'a, P> {
    pub(super) fn owner_of(&self, id: PartitionId) -> Owner {
        self.partition(id)
            .map_or(Owner::Kernel, |p| Owner::Partition(p.id))
    }

    /// Frames `id` holds.
    pub(super) fn held(&self, id: PartitionId) -> u64 {
        self.frames.count(self.owner_of(id)) as u64
    }

    /// Free frames not promised to a partition blocked in `EXO_FRAME_ALLOC`.
    fn unreserved_free(&self) -> u64 {
        let reserved: u64 = self
            .loaded()
            .iter()
            .flatten()
            .filter_map(|p| p.pending_alloc.map(|a| a.count))
            .sum();
        (self.frames.count(Owner::Free) as u64).saturating_sub(reserved)
    }

    /// Checks that `frame` is a page-aligned frame held by `id`.
    fn check_held(&self, id: PartitionId, frame: PhysAddr) -> Result<(), Error> {
        if !frame.is_page_aligned() {
            return Err(Error::Unaligned);
        }
        match self.frames.owner(frame) {
            Some(owner) if owner == self.owner_of(id) => Ok(()),
            other => Err(ownership_error(other)),
        }
    }

    /// `EXO_FRAME_ALLOC`. `Ok(None)`: the caller is blocked until revoked frames arrive.
    pub(super) fn frame_alloc(
        &mut self,
        id: PartitionId,
        count: u64,
        buffer: Ipa,
    ) -> Result<Option<u64>, Error> {
        if count == 0 || count > FRAME_ALLOC_MAX {
            return Err(Error::InvalidParameter);
        }
        self.guest_access(id, buffer, count * 8, true)?;
        let terms = self.partition(id).ok_or(Error::UnknownPartition)?.terms;
        let held = self.held(id);
        if held + count > terms.guaranteed + terms.borrow_limit {
            return Err(Error::QuotaExhausted);
        }
        // Frames promised to partitions blocked in this call are theirs: first come, first
        // served.
        let unreserved = self.unreserved_free();
        if unreserved >= count {
            self.give_frames(id, count, buffer)?;
            return Ok(Some(count));
        }
        if held + count > terms.guaranteed {
            // Borrowing is only ever from what is free.
            return Err(Error::OutOfMemory);
        }
        if !self.request_revocations(id, count - unreserved) {
            return Err(Error::OutOfMemory);
        }
        if let Some(partition) = self.partition_mut(id) {
            partition.pending_alloc = Some(crate::partition::PendingAlloc { count, buffer });
            partition.state = State::Blocked;
        }
        Ok(None)
    }

    /// Allocates `count` free frames to `id`, scrubbed, and writes their names to `buffer`.
    /// The caller has checked quota, availability and the buffer.
    pub(super) fn give_frames(
        &mut self,
        id: PartitionId,
        count: u64,
        buffer: Ipa,
    ) -> Result<(), Error> {
        // Checked again here: a blocked claimant's buffer may have lost its binding since the
        // call was made, and nothing must be allocated unless every name can be delivered.
        // An aligned buffer is translated once; any other is checked, then written a name
        // at a time.
        let words = usize::try_from(count)
            .ok()
            .and_then(|count| self.guest_words(id, buffer, count, true).ok());
        if words.is_none() {
            self.guest_access(id, buffer, count * 8, true)?;
        }
        let owner = self.owner_of(id);
        for i in 0..count {
            let frame = match self.take_clean(owner) {
                Some(frame) => frame,
                None => {
                    let frame = self.frames.alloc(owner).map_err(|e| {
                        log::error!("frame allocation failed after the count check: {e:?}");
                        Error::OutOfMemory
                    })?;
                    self.platform.scrub_frame(frame);
                    frame
                }
            };
            match &words {
                Some(words) => self.platform.write_u64(words.at(i as usize), frame.raw()),
                None => self.write_guest(id, buffer.add(i * 8), &frame.raw().to_le_bytes())?,
            }
        }
        Ok(())
    }

    /// `EXO_FRAME_ALLOC_AT`.
    pub(super) fn frame_alloc_at(
        &mut self,
        id: PartitionId,
        frame: PhysAddr,
    ) -> Result<PhysAddr, Error> {
        if !frame.is_page_aligned() {
            return Err(Error::Unaligned);
        }
        let owner = self.owner_of(id);
        match self.frames.owner(frame) {
            Some(Owner::Free) => {}
            Some(o) if o == owner => return Err(Error::Busy),
            other => return Err(ownership_error(other)),
        }
        let terms = self.partition(id).ok_or(Error::UnknownPartition)?.terms;
        let held = self.held(id);
        if held + 1 > terms.guaranteed + terms.borrow_limit {
            return Err(Error::QuotaExhausted);
        }
        if self.unreserved_free() == 0 {
            // Every free frame is promised to a partition blocked in EXO_FRAME_ALLOC.
            return Err(Error::OutOfMemory);
        }
        self.frames
            .alloc_specific(frame, owner)
            .map_err(|e| e.to_abi())?;
        self.platform.scrub_frame(frame);
        Ok(frame)
    }

    /// `EXO_FRAME_FREE`.
    pub(super) fn frame_free(&mut self, id: PartitionId, frame: PhysAddr) -> Result<(), Error> {
        self.check_held(id, frame)?;
        if self.bound.get(frame).is_some() {
            return Err(Error::Busy);
        }
        self.withdraw_grants_of_frame(frame, Reason::OwnerLost);
        self.platform.scrub_frame(frame);
        self.frames
            .free(frame, self.owner_of(id))
            .map_err(|e| e.to_abi())?;
        self.frame_released(id, 1);
        Ok(())
    }

    /// `EXO_BIND`.
    pub(super) fn bind(
        &mut self,
        id: PartitionId,
        frame: PhysAddr,
        ipa: Ipa,
        attributes: u64,
    ) -> Result<(), Error> {
        let attributes = BindAttributes::from_bits(attributes)
            .filter(|a| !a.rights().is_empty())
            .ok_or(Error::InvalidParameter)?;
        if attributes.contains(BindAttributes::DEVICE) {
            // Device memory is bound from the configuration, never over RAM.
            return Err(Error::InvalidParameter);
        }
        if !frame.is_page_aligned() || !ipa.is_page_aligned() {
            return Err(Error::Unaligned);
        }
        check_ipa(ipa)?;
        let me = self.owner_of(id);
        let grant = match self.frames.owner(frame) {
            Some(owner) if owner == me => {
                if self.bound.get(frame).is_some() {
                    return Err(Error::Busy);
                }
                None
            }
            actual => {
                let Owner::Partition(me_id) = me else {
                    return Err(Error::UnknownPartition);
                };
                let Some(slot) = self.grants.find(frame, me_id) else {
                    return Err(ownership_error(actual));
                };
                let grant = self.grants.get(slot).copied().ok_or(Error::Denied)?;
                if !grant.rights.contains(attributes.rights()) {
                    return Err(Error::Denied);
                }
                if grant.bound_at.is_some() {
                    return Err(Error::Busy);
                }
                Some(slot)
            }
        };
        let attrs = Attributes::from_rights(attributes.rights(), MemoryKind::Normal);
        let mapped = self
            .with_stage2(id, |stage2, tables, _| {
                stage2.map_page(tables, ipa, frame, attrs)
            })
            .ok_or(Error::UnknownPartition)?;
        mapped.map_err(|e| e.to_abi())?;
        match grant {
            None => {
                self.bound.set(frame, ipa);
            }
            Some(slot) => {
                if let Some(g) = self.grants.get_mut(slot) {
                    g.bound_at = Some(ipa);
                }
            }
        }
        Ok(())
    }

    /// `EXO_UNBIND`.
    pub(super) fn unbind(&mut self, id: PartitionId, ipa: Ipa) -> Result<PhysAddr, Error> {
        if !ipa.is_page_aligned() {
            return Err(Error::Unaligned);
        }
        check_ipa(ipa)?;
        if self.partition(id).is_some_and(|p| p.devices.contains(ipa)) {
            // Device bindings come from the configuration and last as long as the partition.
            return Err(Error::Denied);
        }
        let (frame, _) = self.unmap(id, ipa).map_err(|e| e.to_abi())?;
        self.forget_binding(id, frame, ipa);
        Ok(frame)
    }

    /// Forgets partition `id`'s binding of `frame` at `ipa`, just unmapped: the record that
    /// authorised it is the caller's own, decided by the caller's authority and never by the
    /// IPA alone. A grantee that binds a frame at the IPA where its holder binds it, then
    /// unbinds, must not clear the holder's record: the holder could then free a frame
    /// still mapped in its own stage 2.
    fn forget_binding(&mut self, id: PartitionId, frame: PhysAddr, ipa: Ipa) {
        let me = self.owner_of(id);
        if self.frames.owner(frame) == Some(me) {
            if self.bound.get(frame) == Some(ipa) {
                self.bound.clear(frame);
                return;
            }
        } else if let Owner::Partition(me) = me
            && let Some(slot) = self.grants.find(frame, me)
            && let Some(g) = self.grants.get_mut(slot)
            && g.bound_at == Some(ipa)
        {
            g.bound_at = None;
            return;
        }
        log::error!("partition {id} had {frame} mapped at {ipa} with no record authorising it");
    }

    /// Unmaps `ipa` in partition `id` with break-before-make and TLB invalidation.
    pub(super) fn unmap(
        &mut self,
        id: PartitionId,
        ipa: Ipa,
    ) -> Result<(PhysAddr, Attributes), Stage2Error> {
        self.with_stage2(id, |stage2, tables: &mut Tables<'_, 'a, P>, tlb| {
            stage2.unmap_page(tables, tlb, ipa)
        })
        .unwrap_or(Err(Stage2Error::NotMapped))
    }

    /// `EXO_GRANT`.
    pub(super) fn grant(
        &mut self,
        id: PartitionId,
        frame: PhysAddr,
        grantee: u64,
        rights: u64,
    ) -> Result<(), Error> {
        self.check_held(id, frame)?;
        let grantee = self.live_partition(id, grantee)?;
        let rights = Rights::from_register(rights)
            .filter(|&r| r == Rights::READ || r == Rights::READ_WRITE)
            .ok_or(Error::InvalidParameter)?;
        let Owner::Partition(owner) = self.owner_of(id) else {
            return Err(Error::UnknownPartition);
        };
        if self.grants.find(frame, grantee).is_some() {
            return Err(Error::Busy);
        }
        let grant = Grant {
            frame,
            owner,
            grantee,
            rights,
            bound_at: None,
        };
        self.grants
            .insert(grant)
            .map(|_| ())
            .ok_or(Error::OutOfMemory)
    }

    /// `EXO_GRANT_REVOKE`.
    pub(super) fn grant_revoke(
        &mut self,
        id: PartitionId,
        frame: PhysAddr,
        grantee: u64,
    ) -> Result<(), Error> {
        self.check_held(id, frame)?;
        let grantee = self.live_partition(id, grantee)?;
        let slot = self.grants.find(frame, grantee).ok_or(Error::BadAddress)?;
        self.withdraw_grant(slot, Reason::GrantRevoked);
        Ok(())
    }

    /// `EXO_GRANT_QUERY`.
    pub(super) fn grant_query(&mut self, id: PartitionId, index: u64) -> CallResult {
        let Owner::Partition(me) = self.owner_of(id) else {
            return Err(Error::UnknownPartition);
        };
        self.grants
            .iter()
            .filter(|(_, g)| g.grantee == me)
            .nth(usize::try_from(index).map_err(|_| Error::BadAddress)?)
            .map(|(_, g)| {
                [
                    g.frame.raw(),
                    g.owner.to_register(),
                    g.rights.to_register(),
                    0,
                ]
            })
            .ok_or(Error::BadAddress)
    }

    /// `EXO_MEM_INFO`.
    pub(super) fn mem_info(&self, id: PartitionId) -> [u64; 4] {
        let terms = self.partition(id).map(|p| p.terms);
        [
            self.held(id),
            terms.map_or(0, |t| t.guaranteed),
            terms.map_or(0, |t| t.borrow_limit),
            self.frames.count(Owner::Free) as u64,
        ]
    }

    /// A partition id from a guest argument: exists, is not `caller`, has not finished.
    fn live_partition(&self, caller: PartitionId, raw: u64) -> Result<PartitionId, Error> {
        let id = PartitionId::from_register(raw).ok_or(Error::UnknownPartition)?;
        match self.partition(id) {
            Some(p) if id != caller && !matches!(p.state, State::Finished(_)) => Ok(p.id),
            _ => Err(Error::UnknownPartition),
        }
    }

    /// Withdraws the grant in `slot`: breaks the grantee's binding (TLB invalidated before
    /// return) and tells the grantee through its repossession vector.
    pub(super) fn withdraw_grant(&mut self, slot: usize, reason: Reason) {
        let Some(grant) = self.grants.remove(slot) else {
            return;
        };
        let grantee = grant.grantee;
        if let Some(ipa) = grant.bound_at
            && let Err(e) = self.unmap(grantee, ipa)
        {
            log::error!(
                "granted frame {} not mapped at {ipa} in its grantee: {e:?}",
                grant.frame
            );
        }
        self.report_repossession(grantee, grant.frame, grant.bound_at, reason, 0);
    }

    /// Withdraws every grant of `frame`.
    pub(super) fn withdraw_grants_of_frame(&mut self, frame: PhysAddr, reason: Reason) {
        // Every grant slot is looked at otherwise: a few hundred instructions per frame
        // repossessed when nobody granted anything.
        if self.grants.is_empty() {
            return;
        }
        while let Some(slot) = self.grants.first(|g| g.frame == frame) {
            self.withdraw_grant(slot, reason);
        }
    }

    /// Withdraws every grant partition `id` made.
    pub(super) fn withdraw_grants_of_owner(&mut self, id: PartitionId) {
        let Owner::Partition(owner) = self.owner_of(id) else {
            return;
        };
        while let Some(slot) = self.grants.first(|g| g.owner == owner) {
            self.withdraw_grant(slot, Reason::OwnerLost);
        }
    }
}

/// Checks that a partition may bind at `ipa`: inside its IPA space and outside the window
/// of kernel pages.
fn check_ipa(ipa: Ipa) -> Result<(), Error> {
    if !super::in_ipa_space(ipa) || (ipa >= KERNEL_WINDOW_START && ipa < KERNEL_WINDOW_END) {
        return Err(Error::IpaOutOfRange);
    }
    Ok(())
}
