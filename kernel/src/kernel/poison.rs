//! Poisoned free RAM for test systems (`[system] poison_free_ram`): every free frame is
//! filled with [`POISON_BYTE`] before partitions load, so a frame that reaches a partition
//! unscrubbed shows in QEMU, whose RAM starts zeroed, as it would on a board whose RAM does
//! not.

use super::{Kernel, Platform};
use crate::mem::frame_table::Owner;
use exo_abi::package::{POISON_BYTE, Package, SYSTEM_FLAG_POISON_FREE_RAM};
use exo_abi::{PAGE_SIZE, PhysAddr};
use log::info;

impl<P: Platform> Kernel<'_, P> {
    /// Poisons every free frame if `package` asks for it; returns how many were poisoned.
    pub(super) fn poison_free_ram(&mut self, package: &Package<'_>) -> usize {
        if package.flags() & SYSTEM_FLAG_POISON_FREE_RAM == 0 {
            return 0;
        }
        let poison = [POISON_BYTE; PAGE_SIZE as usize];
        let mut count = 0;
        let mut from: PhysAddr = self.frames.base();
        while let Some(frame) = self.frames.next_owned(Owner::Free, from) {
            self.platform.copy_to_phys(frame, &poison);
            from = frame.add(PAGE_SIZE);
            count += 1;
        }
        info!("free RAM poisoned: {count} frames filled with {POISON_BYTE:#04x}");
        count
    }
}
