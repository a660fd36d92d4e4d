//! Cache maintenance of frames that change hands or hold loaded code.

use super::PhysicalMemory;
use exo_abi::PhysAddr;

/// Data and instruction cache maintenance by frame.
pub trait CacheMaintenance: PhysicalMemory {
    /// Cleans and invalidates `frame` in every data cache to the point of coherency (Arm ARM
    /// D7.5.9, `DC CIVAC`): what the kernel wrote there (zeroes, loaded code) is in memory,
    /// and no cache line of older contents survives, for a reader with its MMU or caches off
    /// or one that maps the frame non-cacheable. A Cortex-A72 has no FEAT_S2FWB, so stage 2
    /// cannot force a partition's accesses to be cacheable. Instruction caches are
    /// invalidated by [`CacheMaintenance::publish_done`].
    fn clean_to_poc(&mut self, frame: PhysAddr);
    /// Ends a series of [`CacheMaintenance::clean_to_poc`] of code: instruction caches
    /// forget it.
    fn publish_done(&mut self);

    /// Scrubs a frame that changes hands: zeroes it, then cleans the zeroes to the point of
    /// coherency, so no owner, past or next, can read another's data from memory behind the
    /// caches. Called before the frame can be mapped by anyone else.
    fn scrub_frame(&mut self, frame: PhysAddr) {
        self.zero_frame(frame);
        self.clean_to_poc(frame);
    }
}
