//! Upcalls: how the kernel tells a library OS, at a moment it chooses, that something needs
//! its attention (a revocation request, a repossession, a fault on an unbound IPA). Like a
//! signal: the interrupted context is saved whole and restored by `EXO_UPCALL_RETURN`.

use super::{Kernel, Platform, Stage2Abort};
use crate::mem::frame_table::PartitionId;
use crate::partition::{Access, State};
use exo_abi::call::{signal, upcall};
use exo_abi::{Error, Ipa, UpcallFlags};

impl<P: Platform> Kernel<'_, P> {
    /// `EXO_SET_UPCALL`.
    pub(super) fn set_upcall(
        &mut self,
        id: PartitionId,
        entry: Ipa,
        flags: u64,
    ) -> Result<(), Error> {
        let flags = UpcallFlags::from_bits(flags).ok_or(Error::InvalidParameter)?;
        if !super::in_ipa_space(entry) || !entry.raw().is_multiple_of(4) {
            return Err(Error::IpaOutOfRange);
        }
        let p = self.partition_mut(id).ok_or(Error::UnknownPartition)?;
        p.upcalls.entry = (entry.raw() != 0).then_some(entry);
        p.upcalls.reflect_faults = flags.contains(UpcallFlags::FAULTS) && entry.raw() != 0;
        Ok(())
    }

    /// `EXO_UPCALL_RETURN`: restores the interrupted context.
    pub(super) fn upcall_return(&mut self, id: PartitionId, skip: bool) -> Result<(), Error> {
        let p = self.partition_mut(id).ok_or(Error::UnknownPartition)?;
        let mut saved = p.upcalls.saved.take().ok_or(Error::Denied)?;
        if skip {
            saved.pc = saved.pc.wrapping_add(4);
        }
        p.regs = saved;
        Ok(())
    }

    /// Enters partition `id`'s upcall with `reason` and `values` in x0..x3, saving the
    /// interrupted context. The caller checked that it can take one.
    fn enter_upcall(&mut self, id: PartitionId, reason: u64, values: [u64; 3]) {
        let pstate = self.platform.initial_pstate();
        let Some(p) = self.partition_mut(id) else {
            return;
        };
        let Some(entry) = p.upcalls.entry else { return };
        p.upcalls.saved = Some(p.regs);
        p.regs.pc = entry.raw();
        p.regs.pstate = pstate;
        p.regs
            .set_results([reason, values[0], values[1], values[2]]);
    }

    /// Reflects a fault on an unbound IPA to partition `id`, if it registered for that and
    /// is not in an upcall already. Returns whether it did.
    pub(super) fn reflect_fault(&mut self, id: PartitionId, abort: Stage2Abort) -> bool {
        let Some(p) = self.partition(id) else {
            return false;
        };
        if !p.upcalls.reflect_faults || p.upcalls.saved.is_some() {
            return false;
        }
        let access = match abort.access {
            Access::Read => 0,
            Access::Write => 1,
            Access::Execute => 2,
        };
        self.enter_upcall(id, upcall::FAULT, [abort.ipa.raw(), access, 0]);
        true
    }

    /// Delivers one pending upcall to partition `id` if it has an entry point, is runnable
    /// and is not already in an upcall.
    pub(super) fn deliver_upcall(&mut self, id: PartitionId) {
        let Some(p) = self.partition_mut(id) else {
            return;
        };
        if !p.any_news()
            || p.upcalls.entry.is_none()
            || p.upcalls.saved.is_some()
            || p.state != State::Runnable
            || p.preempted
        {
            return;
        }
        // The first news (in the order of `signal::ALL`) the library OS takes by upcall.
        let Some(kind) = signal::ALL
            .into_iter()
            .find(|&s| p.news_waiting(s) && !p.news_by_signal(s))
        else {
            return;
        };
        let (reason, values) = match kind {
            signal::REVOCATION => (
                upcall::REVOCATION,
                p.upcalls.revocation.take().map(|s| [s, 0, 0]),
            ),
            signal::REPOSSESSION => (
                upcall::REPOSSESSION,
                p.upcalls.repossession.take().map(|t| [t, 0, 0]),
            ),
            _ => (
                upcall::MESSAGE,
                p.message
                    .take()
                    .map(|(from, word)| [from.to_register(), word, 0]),
            ),
        };
        if let Some(values) = values {
            self.enter_upcall(id, reason, values);
        }
    }
}
