//! Interrupt and CPU secure bindings as the kernel serves them: the `EXO_IRQ_*` calls (checked
//! against ownership once, then the distributor and the list registers do the work), physical
//! interrupts routed to their owner, kernel signals raised as virtual interrupts, the overflow
//! queue behind the list registers, waiting for events, and donation of a time slice.

use super::{CallResult, Kernel, Platform, SpiOp, Step};
use crate::irq::{INTID_LIMIT, Ownership, VirtualIrq};
use crate::mem::frame_table::PartitionId;
use crate::partition::State;
use exo_abi::Error;
use exo_abi::call::*;

impl<P: Platform> Kernel<'_, P> {
    /// The `EXO_IRQ_*` calls. Authority is checked here, once, against the configuration.
    pub(super) fn irq_call(
        &mut self,
        caller: PartitionId,
        function: u32,
        intid: u64,
        arg: u64,
    ) -> CallResult {
        if intid >= u64::from(INTID_LIMIT) {
            return Err(Error::InvalidParameter);
        }
        let intid = intid as u32;
        let ownership = self.irqs.ownership(caller, intid).ok_or(Error::NotOwner)?;
        match (function, ownership) {
            (EXO_IRQ_ENABLE | EXO_IRQ_DISABLE, Ownership::Spi) => {
                let enable = function == EXO_IRQ_ENABLE;
                self.irqs.set_enabled(intid, enable);
                self.platform.spi(
                    intid,
                    if enable {
                        SpiOp::Enable
                    } else {
                        SpiOp::Disable
                    },
                );
            }
            (EXO_IRQ_ENABLE | EXO_IRQ_DISABLE, Ownership::Signal) => {
                let p = self.partition_mut(caller).ok_or(Error::UnknownPartition)?;
                if function == EXO_IRQ_ENABLE {
                    p.virq.signals_enabled.insert(intid);
                } else {
                    p.virq.signals_enabled.remove(intid);
                }
            }
            // The virtual timer is always enabled in the GIC; a library OS masks it with
            // CNTV_CTL_EL0.IMASK, which it owns.
            (EXO_IRQ_ENABLE, Ownership::VirtualTimer) => {}
            (EXO_IRQ_DISABLE, Ownership::VirtualTimer) => return Err(Error::NotSupported),
            (EXO_IRQ_SET_PRIORITY, _) => {
                let priority = u8::try_from(arg).map_err(|_| Error::InvalidParameter)?;
                if ownership == Ownership::Spi {
                    self.irqs.set_priority(intid, priority);
                } else {
                    let p = self.partition_mut(caller).ok_or(Error::UnknownPartition)?;
                    p.virq.local_priority[intid as usize] = priority;
                }
            }
            (EXO_IRQ_SET_TARGET, Ownership::Spi) => {
                // A partition runs on one core: that is the only target there is.
                let core = self.core_of(caller).ok_or(Error::UnknownPartition)?;
                if arg != core.index() as u64 {
                    return Err(Error::InvalidParameter);
                }
                self.platform.spi(intid, SpiOp::Target(core));
            }
            (EXO_IRQ_SET_TARGET, _) => return Err(Error::InvalidParameter),
            (EXO_IRQ_RAISE, Ownership::Spi) => self.platform.spi(intid, SpiOp::Raise),
            (EXO_IRQ_RAISE, Ownership::Signal) => {
                let p = self.partition_mut(caller).ok_or(Error::UnknownPartition)?;
                p.virq.queue(intid, false);
            }
            (EXO_IRQ_RAISE, Ownership::VirtualTimer) => return Err(Error::InvalidParameter),
            _ => return Err(Error::NotSupported),
        }
        Ok([0; 4])
    }

    /// A physical interrupt the architecture acknowledged (priority dropped, not deactivated)
    /// that is not the kernel's own: queued for its owner, who is woken if it waits. The
    /// virtual timer's belongs to the partition whose timer is loaded, the running one.
    pub fn interrupt(&mut self, intid: u32) -> Step {
        let owner = if intid == VIRTUAL_TIMER_INTID {
            Some(self.current())
        } else {
            self.irqs.owner(intid)
        };
        let live = owner.filter(|&id| {
            self.partition(id)
                .is_some_and(|p| !matches!(p.state, State::Finished(_)))
        });
        match live {
            Some(id) => {
                if !self.inject_directly(id, intid)
                    && let Some(p) = self.partition_mut(id)
                {
                    p.virq.queue(intid, true);
                }
                self.wake_on_event(id);
            }
            None => {
                // Nobody to give it to (its owner ended): deactivate and silence it.
                log::warn!("interrupt {intid} has no owner; disabled");
                self.platform.spi(intid, SpiOp::Release);
            }
        }
        Step::Resume
    }

    /// A physical interrupt for the running partition (whose virtual interface is loaded)
    /// with nothing queued before it goes straight into a list register, as the return
    /// path's [`Kernel::fill_list_registers`] would put it there (it would be first in the
    /// queue), without the queue. Returns whether it did.
    fn inject_directly(&mut self, id: PartitionId, intid: u32) -> bool {
        if id != self.current() {
            return false;
        }
        let Kernel {
            platform,
            partitions,
            irqs,
            ..
        } = self;
        let Some(p) = partitions.get_mut(id.index()).and_then(Option::as_mut) else {
            return false;
        };
        if !p.virq.queued.is_empty() {
            return false;
        }
        let priority = match intid {
            0..32 => p.virq.local_priority[intid as usize],
            _ => irqs.priority(intid),
        };
        platform.inject(VirtualIrq {
            intid,
            priority,
            hardware: true,
        })
    }

    /// Makes partition `id` runnable if it waits for an event.
    pub(super) fn wake_on_event(&mut self, id: PartitionId) {
        if let Some(p) = self.partition_mut(id)
            && p.state == State::WaitingEvent
        {
            p.state = State::Runnable;
            #[cfg(test)]
            std::eprintln!("WAKE {id} {}", std::backtrace::Backtrace::force_capture());
        }
    }

    /// Whether partition `id` has something to wake up for: a queued virtual interrupt, a
    /// kernel signal or upcall to deliver, or a virtual timer past its deadline.
    pub(super) fn has_event(&self, id: PartitionId) -> bool {
        let Some(p) = self.partition(id) else {
            return false;
        };
        let v = &p.virq;
        let waiting = |by_signal: bool| {
            p.any_news()
                && signal::ALL
                    .iter()
                    .any(|&s| p.news_waiting(s) && p.news_by_signal(s) == by_signal)
        };
        // An upcall counts only if it can be delivered: not from inside another one.
        let upcall_due = p.upcalls.entry.is_some() && p.upcalls.saved.is_none() && waiting(false);
        let signal_due = waiting(true);
        !v.queued.is_empty()
            || upcall_due
            || signal_due
            || self
                .platform
                .virtual_timer_deadline(id)
                .is_some_and(|deadline| deadline <= self.platform.now())
    }

    /// `EXO_WAIT_EVENT`: returns at once if the caller has an event, else gives the CPU away
    /// until it has.
    pub(super) fn wait_event(&mut self, caller: PartitionId) -> Step {
        self.current_regs_mut().set_results([0; 4]);
        if self.has_event(caller) || self.platform.live_virtual_pending() {
            return Step::Resume;
        }
        if let Some(p) = self.partition_mut(caller) {
            p.state = State::WaitingEvent;
        }
        self.schedule()
    }

    /// `EXO_DONATE`: the rest of the caller's slice goes to `target`.
    pub(super) fn donate(&mut self, caller: PartitionId, target: u64) -> Result<Step, Error> {
        let target = PartitionId::from_register(target)
            .filter(|&t| t != caller && t.index() < self.count)
            .ok_or(Error::UnknownPartition)?;
        if !self.is_here(target) {
            // Its own core runs it: a time slice here is no use to it.
            return Err(Error::InvalidParameter);
        }
        let ready = match self.partition(target).map(|p| p.state) {
            Some(State::Runnable) => true,
            Some(State::WaitingEvent) => self.has_event(target),
            Some(State::Finished(_)) | None => return Err(Error::UnknownPartition),
            Some(_) => false,
        };
        if !ready {
            return Err(Error::Busy);
        }
        self.wake_on_event(target);
        self.current_regs_mut().set_results([0; 4]);
        self.set_current(target);
        Ok(Step::Switch(target))
    }

    /// `EXO_RECEIVE`.
    pub(super) fn receive(&mut self, caller: PartitionId) -> CallResult {
        let p = self.partition_mut(caller).ok_or(Error::UnknownPartition)?;
        let (sender, word) = p.message.take().ok_or(Error::NotRequired)?;
        p.virq.message_signalled = false;
        Ok([sender.to_register(), word, 0, 0])
    }

    /// Turns pending kernel news into virtual interrupts for the signals partition `id`
    /// enabled (the rest stay for the upcall path).
    pub(super) fn raise_signals(&mut self, id: PartitionId) {
        let Some(p) = self.partition_mut(id).filter(|p| p.any_news()) else {
            return;
        };
        for s in signal::ALL {
            if !p.news_waiting(s) || !p.news_by_signal(s) {
                continue;
            }
            match s {
                signal::REVOCATION => p.upcalls.revocation = None,
                signal::REPOSSESSION => p.upcalls.repossession = None,
                // The message itself waits for EXO_RECEIVE.
                _ => p.virq.message_signalled = true,
            }
            p.virq.queue(s, false);
        }
    }

    /// Moves partition `id`'s queued interrupts into free list registers (it must be the
    /// partition whose vCPU interface is loaded), and asks for a maintenance interrupt when
    /// some still wait.
    pub(super) fn fill_list_registers(&mut self, id: PartitionId) {
        let Kernel {
            platform,
            partitions,
            irqs,
            ..
        } = self;
        let Some(p) = partitions.get_mut(id.index()).and_then(Option::as_mut) else {
            return;
        };
        while let Some(irq) = p.virq.peek(irqs) {
            if !platform.inject(irq) {
                break;
            }
            p.virq.dequeue(irq.intid);
        }
        let more = !p.virq.queued.is_empty();
        self.notify_on_underflow(more);
    }

    /// Asks for the maintenance interrupt on the core the kernel acts for when its list
    /// registers run low (`on`), or stops asking; the interface is touched only when that
    /// changes (most returns to a partition change nothing).
    #[inline]
    pub(super) fn notify_on_underflow(&mut self, on: bool) {
        if self.here().underflow != on {
            self.here_mut().underflow = on;
            self.platform.notify_on_underflow(on);
        }
    }

    /// Partition `id` ended: its SPIs are disabled and deactivated and forgotten.
    pub(super) fn release_interrupts(&mut self, id: PartitionId) {
        let released = self.irqs.release_all(id);
        for intid in released.iter() {
            self.platform.spi(intid, SpiOp::Release);
        }
        if let Some(p) = self.partition_mut(id) {
            p.virq = crate::irq::VcpuInterrupts::new();
        }
    }

    /// The earliest virtual-timer deadline among the partitions of the core the kernel acts
    /// for that wait for events, and whether any of them can be woken at all (a timer armed,
    /// or an SPI enabled).
    pub(super) fn idle_wakeup(&self) -> (Option<u64>, bool) {
        let mut earliest: Option<u64> = None;
        let mut wakeable = false;
        for id in self.ids() {
            if self.partition(id).map(|p| (p.state, p.core))
                != Some((State::WaitingEvent, self.core))
            {
                continue;
            }
            if let Some(deadline) = self.platform.virtual_timer_deadline(id) {
                earliest = Some(earliest.map_or(deadline, |e| e.min(deadline)));
                wakeable = true;
            }
            wakeable |= self.irqs.has_enabled(id);
        }
        (earliest, wakeable)
    }
}
