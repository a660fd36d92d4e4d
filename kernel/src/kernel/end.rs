//! Ending a partition: its bindings broken, its frames scrubbed and freed, grants of its
//! frames withdrawn, its interrupts released and calls to it failed.
//!
//! A partition ended from another core than its own while it runs there (the abort
//! protocol's termination, decided on the claimant's core) keeps its stage 2 and frames
//! until its own core next enters the kernel: until then that core may still be executing
//! it, and a stage-2 table freed under a running vCPU could be reused as anything. What can
//! be undone safely with it still running is undone at once: grants it holds are unmapped
//! (with broadcast TLB invalidation), its interrupts released, calls to it failed.

use super::{Kernel, Platform, Tables};
use crate::mem::frame_table::{Owner, PartitionId};
use crate::partition::{Outcome, State};
use exo_abi::PAGE_SIZE;
use exo_abi::revocation::Reason;
use log::{info, warn};

impl<P: Platform> Kernel<'_, P> {
    /// Ends partition `id` with `outcome`: at once, or (see the module) at its own core's
    /// next kernel entry when it runs on another core now.
    pub(super) fn finish(&mut self, id: PartitionId, outcome: Outcome) {
        let Some(partition) = self.partition_mut(id) else {
            return;
        };
        if matches!(partition.state, State::Finished(_)) {
            return;
        }
        partition.state = State::Finished(outcome);
        partition.pending_alloc = None;
        let (name, core) = (partition.name, partition.core);
        if outcome.is_success() {
            info!("partition {name} finished: {outcome}");
        } else {
            warn!("partition {name} stopped: {outcome}");
        }
        // Grants it made die with its frames.
        self.withdraw_grants_of_owner(id);
        if core != self.core && self.cores[core.index()].current == id {
            // Grants to it are unmapped now rather than forgotten: it may still use them.
            while let Some(slot) = self.grants.first(|g| g.grantee == id) {
                self.withdraw_grant(slot, Reason::GrantRevoked);
            }
            self.release_interrupts(id);
            self.end_calls_of(id);
            let held = self.frames.count(Owner::Partition(id)) as u64;
            self.resolve_on_exit(id, held);
            self.cores[core.index()].teardown = Some(id);
            return;
        }
        // Grants to it simply end: its stage 2 goes now.
        while let Some(slot) = self.grants.first(|g| g.grantee == id) {
            self.grants.remove(slot);
        }
        self.tear_down(id);
    }

    /// The rest of ending partition `id`, on a core where it does not run: its stage 2 and
    /// kernel pages go, its frames are scrubbed and freed, and blocked claimants may get
    /// them.
    pub(super) fn tear_down(&mut self, id: PartitionId) {
        let Some(partition) = self.partition(id) else {
            return;
        };
        let (name, pages) = (partition.name, partition.kernel_pages);
        let mut tlb = self.platform.tlb();
        if let Some(stage2) = self.partition_mut(id).and_then(|p| p.stage2.take()) {
            let Kernel {
                platform,
                frames,
                partitions,
                ..
            } = self;
            if let Some(p) = partitions[id.index()].as_mut() {
                let mut tables = Tables {
                    platform,
                    frames,
                    pool: &mut p.table_pool,
                };
                stage2.destroy(&mut tables, &mut tlb);
                tables.drain();
            }
        }
        self.release_interrupts(id);
        self.platform.vcpu_ended(id);
        let reclaimed = self.reclaim(Owner::Partition(id));
        self.resolve_on_exit(id, reclaimed);
        self.end_calls_of(id);
        // Last: resolving its revocation request above still wrote its revocation page.
        self.free_kernel_pages(&pages, name);
        self.complete_blocked();
    }

    /// Scrubs and frees an ended partition's kernel pages (its info page, revocation page
    /// and repossession vector), once nothing writes them any more.
    fn free_kernel_pages(&mut self, pages: &crate::partition::KernelPages, name: exo_abi::Name) {
        for (_, frame) in pages.bindings() {
            let platform = &mut self.platform;
            let scrub = |frame| platform.scrub_frame(frame);
            if let Err(e) = self.frames.free_scrubbed(frame, Owner::Kernel, scrub) {
                log::error!("kernel page {frame} of {name} could not be freed: {e:?}");
            }
        }
    }

    /// Whether partition `id` has ended but still waits for its core to tear it down.
    pub(super) fn awaiting_teardown(&self, id: PartitionId) -> bool {
        self.cores.iter().any(|core| core.teardown == Some(id))
    }

    /// Scrubs and frees every frame `owner` holds; returns how many.
    fn reclaim(&mut self, owner: Owner) -> u64 {
        let mut count = 0;
        let held = self.frames.count(owner) as u64;
        // One pass over the table (frames are only ever freed behind the cursor), stopping
        // at the last frame held rather than at the end of RAM.
        let mut from = self.frames.base();
        while count < held {
            let Some(frame) = self.frames.next_owned(owner, from) else {
                return count;
            };
            from = frame.add(PAGE_SIZE);
            self.bound.clear(frame);
            let platform = &mut self.platform;
            let scrub = |frame| platform.scrub_frame(frame);
            if self.frames.free_scrubbed(frame, owner, scrub).is_err() {
                log::error!("frame {frame} of {owner:?} could not be reclaimed");
                return count;
            }
            count += 1;
        }
        count
    }
}
