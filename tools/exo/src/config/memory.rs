//! Whether a system's partitions fit in the RAM the kernel manages, counted the way the
//! kernel counts it when it loads them (`Kernel::load` in `kernel/src/kernel/mod.rs`), so
//! that a configuration the check accepts does not fail at boot with `OutOfMemory`.
//!
//! Of the RAM the board gives the kernel ([`Board::kernel_ram`]) the kernel first keeps its
//! own: the frame table and the binding index ([`METADATA_BYTES_PER_FRAME`] per frame of
//! the address span its RAM banks cover, holes included: [`Board::span_bytes`]), and its image, the boot package and the device tree, which are not known before
//! the build ([`KERNEL_IMAGE_ESTIMATE`] plus [`PROGRAM_ESTIMATE`] per partition). Each
//! partition then takes, besides its memory, [`KERNEL_PAGES`] kernel pages and its stage-2
//! table budget (`docs/architecture.md`, "Table-frame budget"). Its guarantee, not only its
//! quota, is counted: the kernel must be able to hand every partition its whole guarantee.

use exo_abi::PAGE_SIZE;
use exo_abi::revocation::VECTOR_PAGES;

use crate::board::Board;
use crate::size::MIB;

/// Kernel-owned pages of each partition: its info page, revocation page and repossession
/// vector.
pub const KERNEL_PAGES: u64 = 2 + VECTOR_PAGES as u64;
/// Stage-2 table frames every partition gets beyond those its reach needs.
pub const BASE_TABLE_BUDGET: u64 = 32;
/// Bytes of kernel metadata per frame of RAM: a binding-index entry (8) and a frame-table
/// entry (2).
pub const METADATA_BYTES_PER_FRAME: u64 = 10;
/// The kernel image with its stack and EL2 tables, and the device tree: an estimate (the
/// kernel reports 0.9 MiB with one small partition on raspi4b, 1.8 MiB with two on
/// qemu-virt, metadata excluded).
pub const KERNEL_IMAGE_ESTIMATE: u64 = 4 * MIB;
/// A partition's program in the boot package: an estimate (the guests are 10 to 300 KiB).
pub const PROGRAM_ESTIMATE: u64 = 512 * 1024;

/// Frames loading one partition takes: its guarantee (at least its memory quota), its
/// [`KERNEL_PAGES`] and its table budget of [`BASE_TABLE_BUDGET`] plus two tables per 512
/// pages it may hold (guarantee and borrow limit).
pub fn partition_frames(guarantee_bytes: u64, borrow_bytes: u64) -> u64 {
    let guaranteed = guarantee_bytes.div_ceil(PAGE_SIZE);
    let reach = guaranteed + borrow_bytes.div_ceil(PAGE_SIZE);
    guaranteed + KERNEL_PAGES + BASE_TABLE_BUDGET + 2 * reach.div_ceil(512)
}

/// Frames the kernel keeps for itself on `board` with `partitions` partitions.
pub fn kernel_frames(board: &Board, partitions: usize) -> u64 {
    let frames = board.span_bytes.max(board.kernel_ram()) / PAGE_SIZE;
    let bytes = frames * METADATA_BYTES_PER_FRAME
        + KERNEL_IMAGE_ESTIMATE
        + PROGRAM_ESTIMATE * partitions as u64;
    bytes.div_ceil(PAGE_SIZE)
}

/// The running sum of what partitions need, in configuration order.
#[derive(Debug, Default)]
pub struct Fit {
    partitions: usize,
    guarantees: u64,
    overhead: u64,
}

impl Fit {
    /// Adds a partition; `Err` with a message if the partitions so far no longer fit in
    /// `board`'s RAM. `giver` says who gives the kernel its RAM (``board `x` `` or
    /// `` `[system] memory` ``).
    pub fn add(
        &mut self,
        board: &Board,
        giver: &str,
        name: &str,
        guarantee_bytes: u64,
        borrow_bytes: u64,
    ) -> Result<(), String> {
        let frames = partition_frames(guarantee_bytes, borrow_bytes);
        let guaranteed = guarantee_bytes.div_ceil(PAGE_SIZE);
        self.partitions += 1;
        self.guarantees += guaranteed;
        self.overhead += frames - guaranteed;
        let kept = kernel_frames(board, self.partitions);
        let total = board.kernel_ram() / PAGE_SIZE;
        let needed = self.guarantees + self.overhead;
        if needed + kept <= total {
            return Ok(());
        }
        Err(format!(
            "partitions need {} but {giver} gives the kernel {}, of which it keeps about {} \
             for itself (its image, the boot package and frame metadata): with `{name}` the \
             guarantees come to {}, and their kernel pages and stage-2 tables to {} ({needed} \
             frames in all, {} free)",
            mib_up(needed),
            mib_down(total),
            mib_up(kept),
            mib_up(self.guarantees),
            mib_up(self.overhead),
            total.saturating_sub(kept),
        ))
    }
}

/// `frames` in MiB, rounded up, with one decimal below 10 MiB.
fn mib_up(frames: u64) -> String {
    let tenths = (frames * PAGE_SIZE * 10).div_ceil(MIB);
    if tenths < 100 {
        mib_tenths(tenths)
    } else {
        format!("{} MiB", tenths.div_ceil(10))
    }
}

/// `frames` in MiB, rounded down, with one decimal below 10 MiB.
fn mib_down(frames: u64) -> String {
    let tenths = frames * PAGE_SIZE * 10 / MIB;
    if tenths < 100 {
        mib_tenths(tenths)
    } else {
        format!("{} MiB", tenths / 10)
    }
}

fn mib_tenths(tenths: u64) -> String {
    if tenths.is_multiple_of(10) {
        format!("{} MiB", tenths / 10)
    } else {
        format!("{}.{} MiB", tenths / 10, tenths % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_costs_what_the_kernel_takes_when_loading_it() {
        // 1 MiB = 256 pages: 6 kernel pages, 32 + 2 × ⌈256 / 512⌉ = 34 tables.
        assert_eq!(partition_frames(MIB, 0), 256 + 6 + 34);
        // A borrow limit costs tables, not frames.
        assert_eq!(partition_frames(MIB, 1023 * MIB), 256 + 6 + 32 + 2 * 512);
    }

    #[test]
    fn sizes_read_as_mib() {
        assert_eq!(mib_up(256), "1 MiB");
        assert_eq!(mib_up(257), "1.1 MiB");
        assert_eq!(mib_up(245_760), "960 MiB");
        assert_eq!(mib_down(244_927), "956 MiB");
        assert_eq!(mib_up(244_927), "957 MiB");
    }
}
