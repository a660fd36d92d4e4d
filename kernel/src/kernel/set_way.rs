//! Data-cache maintenance by set/way from a library OS, trapped (`HCR_EL2.TSW`) and done by
//! address instead.
//!
//! `DC ISW`, `DC CSW` and `DC CISW` name a cache line by its place in the cache, not by
//! address, so from EL1 they act on every partition's lines: one partition cleaning the
//! whole cache in a loop slows every other (and `HCR_EL2.SWIO` already upgrades the
//! invalidate to clean-and-invalidate, so none can lose another's data). They cannot be
//! virtualised exactly. As KVM does, the kernel takes the first such operation as "make my
//! memory coherent": it cleans and invalidates to the point of coherency, by address,
//! every frame bound in the caller's stage 2, and ignores the rest until the partition is
//! next scheduled (a set/way loop issues thousands of them). The work is bounded by the
//! partition's own memory and happens at most once per scheduling decision.

use super::{Kernel, Platform, Step};
use crate::mem::frame_table::Owner;
use exo_abi::PAGE_SIZE;

impl<P: Platform> Kernel<'_, P> {
    /// A trapped set/way data-cache operation from the running partition (the trap path
    /// steps over the instruction).
    pub fn set_way_maintenance(&mut self) -> Step {
        let id = self.current();
        let Some(p) = self.partition(id) else {
            return Step::Resume;
        };
        if p.set_way_cleaned {
            return Step::Resume;
        }
        let Owner::Partition(me) = self.owner_of(id) else {
            return Step::Resume;
        };
        let mut from = self.frames.base();
        while let Some(frame) = self.frames.next_owned(Owner::Partition(me), from) {
            from = frame.add(PAGE_SIZE);
            if self.bound.get(frame).is_some() {
                self.platform.clean_to_poc(frame);
            }
        }
        for slot in 0..crate::mem::grants::MAX_GRANTS {
            if let Some(grant) = self.grants.get(slot).copied()
                && grant.grantee == me
                && grant.bound_at.is_some()
            {
                self.platform.clean_to_poc(grant.frame);
            }
        }
        if let Some(p) = self.partition_mut(id) {
            p.set_way_cleaned = true;
        }
        Step::Resume
    }
}
