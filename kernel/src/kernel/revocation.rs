//! Visible revocation and the abort protocol.
//!
//! A partition asking for frames within its guarantee is never refused for lack of free
//! frames: the kernel asks borrowers (partitions holding more than their guarantee) to give
//! frames back, through their revocation page and an upcall, and blocks the claimant. The
//! library OS chooses which frames to release. If the deadline passes first, the kernel takes
//! what is still owed by force: it unmaps (TLB invalidated before the frame changes hands),
//! scrubs, frees, and writes each frame's name and IPA to the partition's repossession vector.
//! A partition aborted more often than its configuration allows is terminated.

use super::Step;
use super::{Kernel, Platform};
use crate::mem::frame_table::Owner;
use crate::mem::frame_table::PartitionId;
use crate::partition::{Outcome, Partition, Revocation, State};
use exo_abi::call::FRAME_RELEASE_MAX;
use exo_abi::package::MAX_PARTITIONS;
use exo_abi::revocation::{
    CAPACITY, Reason, Repossession, RequestState, TOTAL_OFFSET, encode_entry, entry_offset, field,
};
use exo_abi::{Ipa, Name, PAGE_SIZE, PhysAddr};

/// A resolved request, for its log line (which `exo bench` reads).
#[derive(Clone, Copy)]
pub(super) struct Resolved {
    name: Name,
    sequence: u64,
    asked: u64,
    released: u64,
    repossessed: u64,
    ticks: u64,
    met: bool,
}

impl Resolved {
    fn log(&self) {
        if !self.met {
            log::warn!(
                "partition {} missed a revocation deadline: {} frames repossessed",
                self.name,
                self.repossessed
            );
        }
        log::info!(
            "revocation partition={} sequence={} asked={} released={} repossessed={} \
             ticks={} outcome={}",
            self.name,
            self.sequence,
            self.asked,
            self.released,
            self.repossessed,
            self.ticks,
            if self.met { "met" } else { "aborted" },
        );
    }
}

/// What the kernel keeps about revocation as a whole, so no hypercall scans every partition.
#[derive(Clone, Copy)]
pub(super) struct Revocations {
    /// The earliest deadline of any outstanding request (recomputed when a request starts
    /// or ends).
    pub(super) earliest: Option<u64>,
    /// Each partition's last resolved request not logged yet.
    unlogged: [Option<Resolved>; MAX_PARTITIONS],
    /// Whether any of `unlogged` is set.
    any_unlogged: bool,
    /// The frames of the `EXO_FRAME_RELEASE` being served, copied out of the caller's array
    /// as they were checked (the guest's array is read once).
    pub(super) batch: [PhysAddr; FRAME_RELEASE_MAX as usize],
}

impl Revocations {
    /// No request outstanding, nothing lent, nothing to log.
    pub(super) const fn new() -> Self {
        Self {
            earliest: None,
            unlogged: [None; MAX_PARTITIONS],
            any_unlogged: false,
            batch: [PhysAddr::new(0); FRAME_RELEASE_MAX as usize],
        }
    }
}

impl<P: Platform> Kernel<'_, P> {
    /// Asks borrowers to return `needed` frames for `claimant`. Returns false if the
    /// borrowers together hold fewer revocable frames than that.
    pub(super) fn request_revocations(&mut self, claimant: PartitionId, needed: u64) -> bool {
        let revocable = |k: &Self, id: PartitionId| -> u64 {
            let Some(p) = k.partition(id) else { return 0 };
            if id == claimant || matches!(p.state, State::Finished(_)) {
                return 0;
            }
            let owed = p.revocation.map_or(0, |r| r.owed);
            k.held(id)
                .saturating_sub(p.terms.guaranteed)
                .saturating_sub(owed)
        };
        let can: [u64; exo_abi::package::MAX_PARTITIONS] = core::array::from_fn(|i| {
            PartitionId::new(i as u16).map_or(0, |id| revocable(self, id))
        });
        if can.iter().sum::<u64>() < needed {
            return false;
        }
        let asks = super::share::share_out(self.share, needed, &can);
        for (id, &ask) in self.ids().zip(asks.iter()) {
            if ask > 0 {
                self.issue_request(id, ask);
            }
        }
        true
    }

    /// Adds `frames` to partition `id`'s outstanding request, or starts one.
    fn issue_request(&mut self, id: PartitionId, frames: u64) {
        let now = self.platform.now();
        let Some(p) = self.partition_mut(id) else {
            return;
        };
        let request = match p.revocation.as_mut() {
            Some(r) => {
                r.asked += frames;
                r.owed += frames;
                *r
            }
            None => {
                p.last_sequence += 1;
                let r = Revocation {
                    sequence: p.last_sequence,
                    asked: frames,
                    owed: frames,
                    released: 0,
                    issued_at: now,
                    deadline: now.saturating_add(p.terms.deadline_ticks),
                };
                p.revocation = Some(r);
                r
            }
        };
        p.upcalls.revocation = Some(request.sequence);
        log::debug!(
            "revocation request {} to {}: {} frames",
            request.sequence,
            p.name,
            frames
        );
        let earliest = &mut self.revocations.earliest;
        *earliest = Some(earliest.map_or(request.deadline, |e| e.min(request.deadline)));
        self.publish(id, &request, RequestState::Pending);
    }

    /// Writes partition `id`'s revocation page: every field of the request (the magic and
    /// the empty list of named frames were written at load and never change).
    fn publish(&mut self, id: PartitionId, r: &Revocation, state: RequestState) {
        let Some(page) = self.partition(id).map(|p| p.kernel_pages.revocation) else {
            return;
        };
        for (offset, value) in [
            (field::SEQUENCE, r.sequence),
            (field::STATE, state as u64),
            (field::REQUESTED, r.asked),
            (field::OWED, r.owed),
            (field::DEADLINE, r.deadline),
            (field::ISSUED_AT, r.issued_at),
        ] {
            self.platform.write_u64(page.add(offset as u64), value);
        }
    }

    /// Recomputes the earliest deadline of the outstanding requests.
    fn recompute_earliest(&mut self) {
        self.revocations.earliest = self
            .loaded()
            .iter()
            .flatten()
            .filter_map(|p| p.revocation.map(|r| r.deadline))
            .min();
    }

    /// Partition `id` gave back `frames` frames: they count toward its request.
    pub(super) fn frame_released(&mut self, id: PartitionId, frames: u64) {
        if let Some(p) = self.partition_mut(id)
            && let Some(r) = p.revocation.as_mut()
        {
            r.released += frames;
            r.owed = r.owed.saturating_sub(frames);
            let (owed, page) = (r.owed, p.kernel_pages.revocation);
            if owed == 0 {
                self.resolve(id, RequestState::Met, 0);
            } else {
                // Only the count changes.
                self.platform.write_u64(page.add(field::OWED as u64), owed);
            }
        }
        self.complete_blocked();
    }

    /// `EXO_REVOKE_ACK`: frames still owed.
    pub(super) fn revoke_ack(&mut self, id: PartitionId) -> u64 {
        self.partition(id)
            .and_then(|p| p.revocation)
            .map_or(0, |r| r.owed)
    }

    /// Ends partition `id`'s request; its log line waits for [`Self::flush_revocation_log`].
    fn resolve(&mut self, id: PartitionId, state: RequestState, repossessed: u64) {
        let now = self.platform.now();
        let Some(p) = self.partition_mut(id) else {
            return;
        };
        let Some(r) = p.revocation.take() else { return };
        let resolved = Resolved {
            name: p.name,
            sequence: r.sequence,
            asked: r.asked,
            released: r.released,
            repossessed,
            ticks: now.saturating_sub(r.issued_at),
            met: state == RequestState::Met,
        };
        self.publish(id, &r, state);
        self.recompute_earliest();
        if let Some(slot) = self.revocations.unlogged.get_mut(id.index())
            && let Some(earlier) = slot.replace(resolved)
        {
            earlier.log();
        }
        self.revocations.any_unlogged = true;
    }

    /// Logs the requests resolved since the last call. Formatting and writing a line to the
    /// console costs more than the whole cooperative revocation of a frame, so resolving
    /// leaves it to the timer tick and to idling or powering off, off the path from the
    /// claim to the claimant's resumption.
    pub(super) fn flush_revocation_log(&mut self) {
        if !core::mem::take(&mut self.revocations.any_unlogged) {
            return;
        }
        let count = self.count;
        for slot in self.revocations.unlogged.iter_mut().take(count) {
            if let Some(resolved) = slot.take() {
                resolved.log();
            }
        }
    }

    /// Aborts every request whose deadline has passed. Returns true if the running
    /// partition was terminated by it.
    pub(super) fn check_deadlines(&mut self) -> bool {
        let now = self.platform.now();
        if self
            .revocations
            .earliest
            .is_none_or(|earliest| now < earliest)
        {
            return false;
        }
        let mut current_terminated = false;
        for id in self.ids() {
            let due = self
                .partition(id)
                .and_then(|p| p.revocation)
                .is_some_and(|r| now >= r.deadline);
            if due && self.abort(id) && id == self.current() {
                current_terminated = true;
            }
        }
        current_terminated
    }

    /// Aborts every outstanding request to a partition of the core the kernel acts for now.
    /// Returns whether there was any.
    pub(super) fn abort_all_pending(&mut self) -> bool {
        let mut any = false;
        for id in self.ids() {
            if self
                .partition(id)
                .is_some_and(|p| p.revocation.is_some() && p.core == self.core)
            {
                self.abort(id);
                any = true;
            }
        }
        any
    }

    /// The abort protocol for partition `id`: takes what it still owes. Returns whether the
    /// partition was terminated.
    fn abort(&mut self, id: PartitionId) -> bool {
        let Some(p) = self.partition(id) else {
            return false;
        };
        let Some(r) = p.revocation else { return false };
        let owner = Owner::Partition(p.id);
        let sequence = r.sequence as u32;
        let mut taken = self.take_listed(id, r.owed, sequence);
        let mut owed = r.owed - taken;
        // Without a loss order (or when it ran short): frames that do not hold the memory
        // the partition booted with (unbound, or bound elsewhere), then, only if it
        // rearranged that memory, anything. Each pass is one walk of the frame table from a
        // cursor that stops as soon as nothing is owed: taking a frame frees it, and the
        // walk goes on after it. Which of its frames go first is the library OS's to say,
        // through its loss order, not the kernel's.
        for pass in 0..2 {
            let mut cursor = self.frames.base();
            while owed > 0 {
                let Some(frame) = self.frames.next_owned(owner, cursor) else {
                    break;
                };
                cursor = frame.add(PAGE_SIZE);
                let eligible = pass == 1
                    || self
                        .bound
                        .get(frame)
                        .is_none_or(|ipa| self.partition(id).is_some_and(|p| !p.in_boot_ram(ipa)));
                if eligible {
                    self.take_frame(id, frame, sequence);
                    owed -= 1;
                    taken += 1;
                }
            }
        }
        let Some(p) = self.partition_mut(id) else {
            return false;
        };
        if let Some(r) = p.revocation.as_mut() {
            r.owed = owed;
        }
        p.aborts += 1;
        let (aborts, max) = (p.aborts, p.terms.max_aborts);
        // The warning is logged with the request's line, off the path to the claimant.
        self.resolve(id, RequestState::Aborted, taken);
        let terminated = aborts > max;
        if terminated {
            self.finish(id, Outcome::Terminated { aborts });
        }
        self.complete_blocked();
        terminated
    }

    /// Takes one frame from partition `id` by force: unbind (TLB invalidated), withdraw
    /// grants, scrub, free, report.
    pub(super) fn take_frame(&mut self, id: PartitionId, frame: PhysAddr, sequence: u32) {
        let owner = self.owner_of(id);
        let ipa = self.bound.get(frame);
        if let Some(ipa) = ipa {
            if let Err(e) = self.unmap(id, ipa) {
                log::error!("frame {frame} recorded at {ipa} but not mapped: {e:?}");
            }
            self.bound.clear(frame);
        }
        self.withdraw_grants_of_frame(frame, Reason::OwnerLost);
        let platform = &mut self.platform;
        if let Err(e) = self
            .frames
            .free_scrubbed(frame, owner, |frame| platform.scrub_frame(frame))
        {
            log::error!("repossessed frame {frame} could not be freed: {e:?}");
            return;
        }
        self.report_repossession(id, frame, ipa, Reason::Aborted, sequence);
    }

    /// Appends to partition `id`'s repossession vector and queues the upcall.
    pub(super) fn report_repossession(
        &mut self,
        id: PartitionId,
        frame: PhysAddr,
        ipa: Option<Ipa>,
        reason: Reason,
        sequence: u32,
    ) {
        let Some(p) = self.partition(id) else { return };
        if matches!(p.state, State::Finished(_)) {
            return;
        }
        let vector = p.kernel_pages.vector;
        let total = self.platform.read_u64(vector[0].add(TOTAL_OFFSET as u64));
        let offset = entry_offset((total % CAPACITY as u64) as usize) as u64;
        let entry = encode_entry(&Repossession {
            phys: frame,
            ipa,
            reason,
            sequence,
        });
        let page = vector[(offset / PAGE_SIZE) as usize];
        self.platform
            .copy_to_phys(page.add(offset % PAGE_SIZE), &entry);
        self.platform
            .write_u64(vector[0].add(TOTAL_OFFSET as u64), total + 1);
        if let Some(p) = self.partition_mut(id) {
            p.upcalls.repossession = Some(total + 1);
        }
    }

    /// Partition `id` ended with a request outstanding: its frames were reclaimed.
    pub(super) fn resolve_on_exit(&mut self, id: PartitionId, reclaimed: u64) {
        if self.partition(id).is_some_and(|p| p.revocation.is_some()) {
            let owed = self
                .partition(id)
                .and_then(|p| p.revocation)
                .map_or(0, |r| r.owed);
            self.resolve(id, RequestState::Aborted, owed.min(reclaimed));
        }
    }

    /// Gives blocked claimants their frames once enough are free, in partition order; then
    /// makes sure what they still lack is being asked for. (Frames can be freed and then
    /// owed no more, e.g. when a request is met while someone else took frames by name.)
    pub(super) fn complete_blocked(&mut self) {
        for id in self.ids() {
            let Some(p) = self.partition(id) else {
                continue;
            };
            let (State::Blocked, Some(pending)) = (p.state, p.pending_alloc) else {
                continue;
            };
            if (self.frames.count(Owner::Free) as u64) < pending.count {
                continue;
            }
            let result = match self.give_frames(id, pending.count, pending.buffer) {
                Ok(()) => [pending.count, 0, 0, 0],
                Err(e) => [e.to_register(), 0, 0, 0],
            };
            self.wake(id, result);
        }
        let waiting: u64 = self.blocked().map(|(_, count)| count).sum();
        let coming = self.frames.count(Owner::Free) as u64
            + self
                .loaded()
                .iter()
                .flatten()
                .filter_map(|p| p.revocation)
                .map(|r| r.owed)
                .sum::<u64>();
        if waiting > coming {
            let Some((first, _)) = self.blocked().next() else {
                return;
            };
            if !self.request_revocations(first, waiting - coming) {
                // Nobody holds anything revocable: the frames will not come. Refuse the
                // claims that free memory cannot cover rather than block them forever.
                let free = self.frames.count(Owner::Free) as u64;
                let starved: [Option<PartitionId>; exo_abi::package::MAX_PARTITIONS] =
                    core::array::from_fn(|i| {
                        PartitionId::new(i as u16).filter(|&id| {
                            self.partition(id)
                                .and_then(|p| p.pending_alloc)
                                .is_some_and(|a| a.count > free)
                        })
                    });
                for id in starved.into_iter().flatten() {
                    self.wake(id, [exo_abi::Error::OutOfMemory.to_register(), 0, 0, 0]);
                }
            }
        }
    }

    /// The borrower on the core the kernel acts for owing the most that can run now, other
    /// than `except`.
    fn neediest_borrower(&mut self, except: PartitionId) -> Option<PartitionId> {
        let mut best: Option<(PartitionId, u64)> = None;
        for id in self.ids() {
            let Some(owed) = self
                .partition(id)
                .filter(|p| p.core == self.core)
                .and_then(|p| p.revocation)
                .map(|r| r.owed)
            else {
                continue;
            };
            if id != except && owed > 0 && best.is_none_or(|(_, most)| owed > most) {
                best = Some((id, owed));
            }
        }
        let (id, _) = best?;
        self.ready(id).then_some(id)
    }

    /// `claimant` just blocked in `EXO_FRAME_ALLOC`: the borrower asked for the most runs
    /// now on the claimant's time slot (as with `EXO_DONATE`), so its revocation upcall or
    /// signal is taken at once rather than at its next slot. Nobody to lend to: the next
    /// slot runs.
    pub(super) fn lend_to_borrower(&mut self, claimant: PartitionId) -> Step {
        match self.neediest_borrower(claimant) {
            Some(borrower) => {
                self.here_mut().lent_by = Some((claimant, borrower));
                self.set_current(borrower);
                Step::Switch(borrower)
            }
            None => self.schedule(),
        }
    }

    /// After a hypercall of a partition running on a claimant's lent slot: once the
    /// claimant has its frames it gets the CPU straight back; while it still waits and the
    /// running borrower owes nothing more, the next borrower still owing gets the slot.
    /// `None`: the caller keeps the CPU.
    pub(super) fn return_lent_slot(&mut self) -> Option<Step> {
        let (claimant, borrower) = self.here().lent_by?;
        let current = self.current();
        if current != borrower {
            // The slot went on by another way (a call, a donation): the loan is over.
            self.here_mut().lent_by = None;
            return None;
        }
        let next = match self.partition(claimant).map(|p| p.state) {
            Some(State::Runnable) => Some(claimant),
            Some(State::Blocked) => {
                if self
                    .partition(current)
                    .is_some_and(|p| p.revocation.is_some())
                {
                    return None;
                }
                if let Some(id) = self.neediest_borrower(current) {
                    self.here_mut().lent_by = Some((claimant, id));
                    self.set_current(id);
                    return Some(Step::Switch(id));
                }
                None
            }
            _ => None,
        };
        self.here_mut().lent_by = None;
        let next = next?;
        self.set_current(next);
        Some(Step::Switch(next))
    }

    /// The partitions loaded (indices `0..count`; the rest of the array is empty).
    pub(super) fn loaded(&self) -> &[Option<Partition<P::Format>>] {
        self.partitions
            .get(..self.count)
            .unwrap_or(&self.partitions)
    }

    /// Blocked claimants and how many frames each waits for.
    fn blocked(&self) -> impl Iterator<Item = (PartitionId, u64)> + '_ {
        self.loaded().iter().filter_map(|p| {
            let p = p.as_ref()?;
            (p.state == State::Blocked).then_some((p.id, p.pending_alloc?.count))
        })
    }

    /// Ends partition `id`'s wait in `EXO_FRAME_ALLOC` with `result` in x0..x3.
    fn wake(&mut self, id: PartitionId, result: [u64; 4]) {
        if let Some(p) = self.partition_mut(id) {
            p.pending_alloc = None;
            p.state = State::Runnable;
            p.regs.set_results(result);
        }
    }
}
