//! Protected control transfer: a synchronous call passes the CPU, seven argument registers
//! and the rest of the caller's time slice straight to the callee, and the reply comes back
//! the same way, with no scheduler decision in between. An asynchronous send leaves one word
//! for the target's next upcall. Who may talk to whom is fixed by the configuration.

use super::{Kernel, Platform, Step};
use crate::mem::frame_table::PartitionId;
use crate::partition::State;
use exo_abi::Error;

/// Argument and reply registers of a call: x1..x7 at the callee and the caller, x2..x8 at
/// the caller when calling.
const WORDS: usize = 7;
const _: () = assert!(WORDS == 7, "the copies below move seven registers");

impl<P: Platform> Kernel<'_, P> {
    /// Checks that `caller` may talk to partition `raw` and returns it.
    fn peer(&self, caller: PartitionId, raw: u64) -> Result<PartitionId, Error> {
        let target = PartitionId::from_register(raw).ok_or(Error::UnknownPartition)?;
        let Some(p) = self.partition(target) else {
            return Err(Error::UnknownPartition);
        };
        if target == caller || matches!(p.state, State::Finished(_)) {
            return Err(Error::UnknownPartition);
        }
        let allowed = self
            .partition(caller)
            .is_some_and(|c| target.index() < 64 && c.talks_to & (1 << target.index()) != 0);
        if !allowed {
            return Err(Error::Denied);
        }
        Ok(target)
    }

    /// `EXO_CALL`.
    pub(super) fn call(&mut self, caller: PartitionId, callee: u64) -> Result<Step, Error> {
        let callee = self.peer(caller, callee)?;
        if let Some(p) = self.partition_mut(caller) {
            p.state = State::Calling {
                callee,
                accepted: false,
            };
        }
        if self
            .partition(callee)
            .is_some_and(|p| matches!(p.state, State::Waiting))
            && self.accept(callee)
            && self.is_here(callee)
        {
            // Direct transfer: the callee runs now, on the caller's time slice. (A callee on
            // another core runs there, at its core's next decision.)
            self.set_current(callee);
            return Ok(Step::Switch(callee));
        }
        Ok(self.schedule())
    }

    /// Gives `callee` the first queued call, if any: its registers receive the caller's id
    /// and arguments. Returns whether there was one.
    fn accept(&mut self, callee: PartitionId) -> bool {
        // A loop rather than `find`: at opt-level "s" the latter's `try_fold` over the mapped
        // range stays out of line, a call per partition on every protected control transfer.
        let mut queued = None;
        for id in self.ids() {
            if self.partition(id).is_some_and(
                |p| matches!(p.state, State::Calling { callee: c, accepted: false } if c == callee),
            ) {
                queued = Some(id);
                break;
            }
        }
        let Some(caller) = queued else {
            return false;
        };
        let mut words = [0; WORDS];
        if let Some(c) = self.partition_mut(caller) {
            words = c.regs.seven(2);
            c.state = State::Calling {
                callee,
                accepted: true,
            };
        }
        if let Some(p) = self.partition_mut(callee) {
            p.regs.x[0] = caller.to_register();
            p.regs.set_seven(1, words);
            p.serving = Some(caller);
            p.state = State::Runnable;
        }
        true
    }

    /// `EXO_WAIT`.
    pub(super) fn wait(&mut self, callee: PartitionId) -> Result<Step, Error> {
        if self.partition(callee).is_some_and(|p| p.serving.is_some()) {
            return Err(Error::Denied);
        }
        if self.accept(callee) {
            return Ok(Step::Resume);
        }
        if let Some(p) = self.partition_mut(callee) {
            p.state = State::Waiting;
        }
        Ok(self.schedule())
    }

    /// `EXO_REPLY_WAIT`.
    pub(super) fn reply_wait(&mut self, callee: PartitionId) -> Result<Step, Error> {
        let Some(p) = self.partition_mut(callee) else {
            return Err(Error::UnknownPartition);
        };
        let caller = p.serving.take().ok_or(Error::Denied)?;
        let reply = p.regs.seven(1);
        let caller_waits = self.partition(caller).is_some_and(
            |c| matches!(c.state, State::Calling { callee: to, accepted: true } if to == callee),
        );
        if caller_waits && let Some(c) = self.partition_mut(caller) {
            c.regs.x[0] = 0;
            c.regs.set_seven(1, reply);
            c.state = State::Runnable;
        }
        // The callee waits again: it takes the next queued call now (and runs at its turn),
        // or sleeps until one arrives.
        if !self.accept(callee)
            && let Some(p) = self.partition_mut(callee)
        {
            p.state = State::Waiting;
        }
        if caller_waits && self.is_here(caller) {
            // Direct transfer back to the caller (one on another core runs there).
            self.set_current(caller);
            return Ok(Step::Switch(caller));
        }
        Ok(self.schedule())
    }

    /// `EXO_SEND`.
    pub(super) fn send(
        &mut self,
        sender: PartitionId,
        target: u64,
        word: u64,
    ) -> Result<(), Error> {
        let target = self.peer(sender, target)?;
        let p = self.partition_mut(target).ok_or(Error::UnknownPartition)?;
        if p.message.is_some() {
            return Err(Error::Busy);
        }
        p.message = Some((sender, word));
        Ok(())
    }

    /// Partition `id` has ended: calls to it fail, and a call it was serving ends with an
    /// error for its caller.
    pub(super) fn end_calls_of(&mut self, id: PartitionId) {
        for other in self.ids() {
            let Some(p) = self.partition_mut(other) else {
                continue;
            };
            if let State::Calling { callee, .. } = p.state
                && callee == id
            {
                p.regs
                    .set_results([Error::UnknownPartition.to_register(), 0, 0, 0]);
                p.state = State::Runnable;
            }
        }
    }
}
