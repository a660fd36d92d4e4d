//! Per-core scheduling. Each core runs its own time-slice vector (the package's
//! `schedule_of(core)`) over the partitions pinned to it, and only those: a partition runs on
//! no other core, so its vCPU state is live on one core at most. A core with one partition
//! pinned alone, in a system that runs partitions on several cores, is unsliced: no tick
//! interrupts it (static partitioning).
//!
//! Every call into the kernel acts for one core, the one the trap path names in
//! [`Kernel::enter`] after taking the kernel lock: "the running partition" is that core's.

use super::{Kernel, Platform, Step};
use crate::cpus::{CoreId, MAX_CORES};
use crate::mem::frame_table::PartitionId;
use crate::partition::State;
use exo_abi::package::{MAX_SLOTS, Package};

/// One core's share of the scheduler.
pub(super) struct CoreSchedule {
    /// The partition running on this core (or that ran last, while it idles).
    pub(super) current: PartitionId,
    /// The time-slice vector: the partition owning each slot, every one pinned here.
    pub(super) slots: [PartitionId; MAX_SLOTS],
    /// Number of slots (0: no partition is pinned here).
    pub(super) slot_count: usize,
    /// The slot whose time is being used now (by its owner or a partition it donated to).
    pub(super) slot: usize,
    /// The claimant blocked in `EXO_FRAME_ALLOC` whose time slot is lent, and the borrower
    /// it is lent to (both pinned here).
    pub(super) lent_by: Option<(PartitionId, PartitionId)>,
    /// One partition alone here in a system that uses several cores: no tick.
    pub(super) unsliced: bool,
    /// Whether this core's virtual interface asks for the maintenance interrupt when its
    /// list registers run low (`InterruptController::notify_on_underflow`), so that the
    /// return path changes it only when it must.
    pub(super) underflow: bool,
    /// This core's running partition was ended from another core while it ran: its
    /// stage 2 and frames are torn down here, at this core's next kernel entry.
    pub(super) teardown: Option<PartitionId>,
}

impl CoreSchedule {
    /// A core with no partition.
    pub(super) const EMPTY: Self = Self {
        current: PartitionId::FIRST,
        slots: [PartitionId::FIRST; MAX_SLOTS],
        slot_count: 0,
        slot: 0,
        lent_by: None,
        unsliced: false,
        underflow: false,
        teardown: None,
    };
}

impl<P: Platform> Kernel<'_, P> {
    /// The core the kernel acts for now.
    #[inline]
    pub(super) fn here(&self) -> &CoreSchedule {
        &self.cores[self.core.index()]
    }

    /// The core the kernel acts for now, to change.
    #[inline]
    pub(super) fn here_mut(&mut self) -> &mut CoreSchedule {
        &mut self.cores[self.core.index()]
    }

    /// Makes `id` the running partition of the core the kernel acts for.
    #[inline]
    pub(super) fn set_current(&mut self, id: PartitionId) {
        self.current = id;
        self.here_mut().current = id;
    }

    /// The core partition `id` is pinned to.
    pub(super) fn core_of(&self, id: PartitionId) -> Option<CoreId> {
        self.partition(id).map(|p| p.core)
    }

    /// Whether partition `id` is pinned to the core the kernel acts for.
    pub(super) fn is_here(&self, id: PartitionId) -> bool {
        self.core_of(id) == Some(self.core)
    }

    /// The partition running on `core` (or that ran last there, while it idles).
    #[inline]
    pub fn running_on(&self, core: CoreId) -> PartitionId {
        self.cores[core.index()].current
    }

    /// The trap path took the kernel lock on `core`: what follows acts for it. If the
    /// partition running there was ended from another core meanwhile, it is torn down now
    /// and the step this core takes instead of serving its trap is returned.
    #[inline]
    pub fn enter(&mut self, core: CoreId) -> Option<Step> {
        self.core = core;
        self.current = self.here().current;
        self.here().teardown?;
        Some(self.finish_teardown())
    }

    /// Tears down the partition ended from another core while it ran here (see
    /// [`Kernel::enter`]), then schedules.
    #[inline(never)]
    fn finish_teardown(&mut self) -> Step {
        if let Some(id) = self.here_mut().teardown.take() {
            self.tear_down(id);
        }
        self.schedule()
    }

    /// Marks `core` as up: partitions may be pinned to it. The boot core is up from the
    /// start; the others once they have reported in.
    pub fn set_core_up(&mut self, core: CoreId) {
        self.cores_up[core.index()] = true;
    }

    /// Whether `core` is up.
    pub(super) fn core_up(&self, core: CoreId) -> bool {
        self.cores_up[core.index()]
    }

    /// The partition core `core` runs first, if any is pinned there.
    pub fn first_on(&self, core: CoreId) -> Option<PartitionId> {
        let here = &self.cores[core.index()];
        (here.slot_count > 0).then_some(here.current)
    }

    /// Length of a time slice of the core the kernel acts for, in counter ticks; `None` for
    /// an unsliced core, whose partition no tick interrupts.
    #[inline]
    pub fn tick(&self) -> Option<u64> {
        (!self.here().unsliced).then_some(self.slice_ticks)
    }

    /// Each core's time-slice vector from the package (one slot per partition pinned there,
    /// in order, when the package gives none); which cores are unsliced.
    pub(super) fn load_schedules(&mut self, package: &Package<'_>) {
        let mut used = 0u32;
        for id in self.ids() {
            if let Some(core) = self.core_of(id) {
                used |= 1 << core.index();
            }
        }
        for index in 0..MAX_CORES {
            let Some(core) = CoreId::new(index) else {
                continue;
            };
            let mut here = CoreSchedule::EMPTY;
            let vector = package.schedule_of(index);
            if vector.is_empty() {
                for id in self.ids().filter(|&id| self.core_of(id) == Some(core)) {
                    here.slots[here.slot_count] = id;
                    here.slot_count += 1;
                }
            } else {
                for (slot, &partition) in here.slots.iter_mut().zip(vector) {
                    // `Package::parse` checked that every slot names a partition pinned here.
                    *slot = PartitionId::new(u16::from(partition)).unwrap_or(PartitionId::FIRST);
                }
                here.slot_count = vector.len();
            }
            here.current = here.slots[0];
            // Alone: one partition pinned here (counting one left out of the vector, which
            // runs on time donated to it).
            let pinned = self
                .ids()
                .filter(|&id| self.core_of(id) == Some(core))
                .count();
            here.unsliced = pinned == 1 && used.count_ones() > 1;
            self.cores[index] = here;
        }
        self.core = CoreId::BOOT;
        self.current = self.here().current;
        if used.count_ones() > 1 {
            self.announce_cores();
        }
    }

    /// Logs what each core with partitions runs: `core 1: tally1, unsliced`, or its time
    /// slices, `core 0: a b a (time slices)`.
    fn announce_cores(&self) {
        for (index, here) in self.cores.iter().enumerate() {
            if here.slot_count == 0 {
                continue;
            }
            let how = if here.unsliced {
                "unsliced"
            } else {
                "time slices"
            };
            log::info!(
                "core {index}: {}, {how}",
                VectorNames { kernel: self, here }
            );
        }
    }

    /// The time-slice vector of the core the kernel acts for: the owner of the next slot
    /// that can run gets the core (possibly the partition running now). A partition waiting
    /// for an event runs when it has one. When nobody here can run but someone here waits
    /// for revoked frames, pending revocations of partitions here are aborted at once:
    /// there is nobody left to comply. When nobody here can run but partitions wait for
    /// events that can still come, or partitions on other cores still run, the core idles.
    pub fn schedule(&mut self) -> Step {
        self.here_mut().lent_by = None;
        for attempt in 0..2 {
            // Round robin from the slot after the current one (stepped and wrapped without
            // a division: this runs on every world switch).
            let (mut slot, count) = (self.here().slot, self.here().slot_count);
            for _ in 0..count {
                slot = if slot + 1 >= count { 0 } else { slot + 1 };
                let candidate = self.here().slots[slot];
                if self.ready(candidate) {
                    if let Some(p) = self.partition_mut(candidate) {
                        p.set_way_cleaned = false;
                    }
                    let step = if candidate == self.current {
                        Step::Resume
                    } else {
                        Step::Switch(candidate)
                    };
                    self.here_mut().slot = slot;
                    self.set_current(candidate);
                    return step;
                }
            }
            if attempt == 0 && !self.abort_all_pending() {
                break;
            }
        }
        self.flush_revocation_log();
        match self.idle_wakeup() {
            (deadline, true) => Step::Idle(deadline),
            (_, false) if self.progress_elsewhere() => Step::Idle(None),
            (_, false) => Step::PowerOff,
        }
    }

    /// Whether a partition on another core than the one the kernel acts for can still run:
    /// runnable, or waiting for an event its own core may see come. Until none can, an
    /// idle core does not power the machine off.
    fn progress_elsewhere(&self) -> bool {
        self.loaded().iter().flatten().any(|p| {
            p.core != self.core && matches!(p.state, State::Runnable | State::WaitingEvent)
        })
    }

    /// Whether partition `id` can run now; one waiting for an event that has one is made
    /// runnable.
    #[inline]
    pub(super) fn ready(&mut self, id: PartitionId) -> bool {
        match self.partition(id).map(|p| p.state) {
            Some(State::Runnable) => true,
            Some(State::WaitingEvent) => self.ready_on_event(id),
            _ => false,
        }
    }

    /// [`Kernel::ready`] for a partition waiting for an event (out of line: the scheduler's
    /// common case is a runnable one).
    #[inline(never)]
    fn ready_on_event(&mut self, id: PartitionId) -> bool {
        if self.has_event(id) {
            self.wake_on_event(id);
            true
        } else {
            false
        }
    }
}

/// A core's time-slice vector as the partitions' names, for the log.
struct VectorNames<'k, 'a, P: Platform> {
    kernel: &'k Kernel<'a, P>,
    here: &'k CoreSchedule,
}

impl<P: Platform> core::fmt::Display for VectorNames<'_, '_, P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (n, &id) in self.here.slots[..self.here.slot_count].iter().enumerate() {
            let space = if n == 0 { "" } else { " " };
            match self.kernel.partition(id) {
                Some(p) => write!(f, "{space}{}", p.name)?,
                None => write!(f, "{space}{id}")?,
            }
        }
        Ok(())
    }
}
