//! The library OS heap: a [`GlobalAlloc`](core::alloc::GlobalAlloc) over frames it allocates
//! and binds itself in the heap window ([`HEAP_WINDOW_START`] up), so programs can use
//! `alloc` (`Vec`, `Box`, ...).
//!
//! Opt in with [`global_allocator!`](crate::global_allocator) in the program. Heap frames are
//! pinned in the frame table: no revocation policy gives them back (they hold live Rust
//! objects), so a heap counts against what a partition can release; keep it within the
//! guarantee. Upcall handlers must not allocate.
//!
//! The bookkeeping is a [`RangeAllocator`]: a sorted, coalescing list of free address ranges
//! kept outside the memory it manages, so it is safe code and testable on the host.

use exo_abi::{BindAttributes, Ipa, PAGE_SIZE, PhysAddr};
use spin::Mutex;

/// First IPA of the heap window.
pub const HEAP_WINDOW_START: Ipa = Ipa::new(0x1_0000_0000);
/// End (exclusive) of the heap window.
pub const HEAP_WINDOW_END: Ipa = Ipa::new(0x2_0000_0000);
/// Smallest growth step, in pages.
const GROWTH_PAGES: u64 = 16;
/// Granule of every block: sizes and alignments are rounded up to it.
const GRANULE: u64 = 16;

/// The allocator type [`global_allocator!`](crate::global_allocator) installs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Allocator;

/// Installs the library OS heap as the program's global allocator (then `extern crate
/// alloc;` gives `Vec`, `Box`, ...).
#[macro_export]
macro_rules! global_allocator {
    () => {
        #[global_allocator]
        static EXO_LIBOS_ALLOCATOR: $crate::mem::heap::Allocator = $crate::mem::heap::Allocator;
    };
}

/// Free address ranges, sorted and coalesced; at most `N` of them.
pub struct RangeAllocator<const N: usize> {
    /// `(start, length)` pairs, sorted by start, never adjacent or overlapping.
    ranges: [(u64, u64); N],
    len: usize,
    /// Bytes dropped because the list was full when they were freed.
    leaked: u64,
}

impl<const N: usize> Default for RangeAllocator<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> RangeAllocator<N> {
    /// No free memory.
    pub const fn new() -> Self {
        Self {
            ranges: [(0, 0); N],
            len: 0,
            leaked: 0,
        }
    }

    /// The size `allocate` and `deallocate` really use for a request of `size` bytes.
    fn rounded(size: usize) -> u64 {
        (size.max(1) as u64).div_ceil(GRANULE) * GRANULE
    }

    /// A block of `size` bytes aligned to `align` (a power of two): first fit.
    pub fn allocate(&mut self, size: usize, align: usize) -> Option<u64> {
        let size = Self::rounded(size);
        let align = (align as u64).max(GRANULE);
        for i in 0..self.len {
            let (start, length) = self.ranges[i];
            let aligned = start.checked_add(align - 1)? & !(align - 1);
            let padding = aligned - start;
            if padding.checked_add(size)? > length {
                continue;
            }
            let tail = length - padding - size;
            match (padding > 0, tail > 0) {
                (false, false) => self.remove(i),
                (false, true) => self.ranges[i] = (aligned + size, tail),
                (true, false) => self.ranges[i] = (start, padding),
                (true, true) => {
                    if self.len == N {
                        continue; // splitting needs a free entry
                    }
                    self.ranges[i] = (start, padding);
                    self.insert_at(i + 1, (aligned + size, tail));
                }
            }
            return Some(aligned);
        }
        None
    }

    /// Returns the block at `address` of `size` bytes (as passed to `allocate`).
    pub fn deallocate(&mut self, address: u64, size: usize) {
        self.add(address, Self::rounded(size));
    }

    /// Adds `[start, start + length)` to the free ranges, merging with neighbours.
    pub fn add(&mut self, start: u64, length: u64) {
        if length == 0 {
            return;
        }
        let i = self.ranges[..self.len].partition_point(|&(s, _)| s < start);
        let joins_previous = i > 0 && {
            let (s, l) = self.ranges[i - 1];
            s + l == start
        };
        let joins_next = i < self.len && start + length == self.ranges[i].0;
        match (joins_previous, joins_next) {
            (true, true) => {
                self.ranges[i - 1].1 += length + self.ranges[i].1;
                self.remove(i);
            }
            (true, false) => self.ranges[i - 1].1 += length,
            (false, true) => self.ranges[i] = (start, length + self.ranges[i].1),
            (false, false) if self.len < N => self.insert_at(i, (start, length)),
            (false, false) => self.leaked += length,
        }
    }

    /// Total free bytes.
    pub fn free_bytes(&self) -> u64 {
        self.ranges[..self.len].iter().map(|&(_, l)| l).sum()
    }

    /// Bytes lost because the range list was full.
    pub fn leaked_bytes(&self) -> u64 {
        self.leaked
    }

    /// Number of free ranges.
    pub fn fragments(&self) -> usize {
        self.len
    }

    fn remove(&mut self, i: usize) {
        self.ranges.copy_within(i + 1..self.len, i);
        self.len -= 1;
    }

    fn insert_at(&mut self, i: usize, range: (u64, u64)) {
        self.ranges.copy_within(i..self.len, i + 1);
        self.ranges[i] = range;
        self.len += 1;
    }
}

/// The global heap: free ranges plus the top of the bound part of the window.
struct Heap {
    free: RangeAllocator<256>,
    top: u64,
}

static HEAP: Mutex<Heap> = Mutex::new(Heap {
    free: RangeAllocator::new(),
    top: HEAP_WINDOW_START.raw(),
});

/// Allocates a heap block, growing the heap when needed. `None` when out of memory, or when
/// called from an upcall that interrupted the heap.
pub(crate) fn allocate(size: usize, align: usize) -> Option<Ipa> {
    let mut heap = if crate::upcall::in_upcall() {
        HEAP.try_lock()?
    } else {
        HEAP.lock()
    };
    loop {
        if let Some(address) = heap.free.allocate(size, align) {
            return Some(Ipa::new(address));
        }
        let pages = ((size as u64 + align as u64).div_ceil(PAGE_SIZE)).max(GROWTH_PAGES);
        if grow(&mut heap, pages) == 0 {
            return None;
        }
    }
}

/// Returns a heap block.
pub(crate) fn deallocate(ipa: Ipa, size: usize, _align: usize) {
    let mut heap = HEAP.lock();
    heap.free.deallocate(ipa.raw(), size);
}

// SAFETY: `allocate` hands out disjoint ranges of heap-window memory that `grow` bound
// read-write for the heap alone and pinned (the revocation policies skip pinned frames, and
// `crate::probe` refuses the heap window), aligned as asked; a block is reused only after
// `dealloc` returned it. `arch::pointer_at` turns an IPA into the pointer to it (stage 1 is
// an identity map), with the provenance `arch::ipa_at` exposed.
unsafe impl core::alloc::GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: core::alloc::Layout) -> *mut u8 {
        match allocate(layout.size(), layout.align()) {
            Some(ipa) => crate::arch::pointer_at(ipa),
            None => core::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: core::alloc::Layout) {
        deallocate(crate::arch::ipa_at(pointer), layout.size(), layout.align());
    }
}

/// Allocates, binds (read-write) and pins up to `pages` frames at the top of the heap;
/// returns how many pages were added.
fn grow(heap: &mut Heap, pages: u64) -> u64 {
    let mut added = 0;
    let mut batch = [PhysAddr::new(0); 64];
    while added < pages {
        let want = ((pages - added) as usize).min(batch.len());
        let Ok(count) = super::alloc(&mut batch[..want]) else {
            break;
        };
        for &phys in &batch[..count] {
            let ipa = Ipa::new(heap.top);
            if ipa
                .checked_add(PAGE_SIZE)
                .is_none_or(|end| end > HEAP_WINDOW_END)
                || super::bind(phys, ipa, BindAttributes::READ_WRITE).is_err()
            {
                let _ = super::free(phys);
                continue;
            }
            super::pin(phys);
            heap.free.add(heap.top, PAGE_SIZE);
            heap.top += PAGE_SIZE;
            added += 1;
        }
        if count < want {
            break;
        }
    }
    added
}

/// Whether `[start, end)` overlaps the heap window (Rust objects live there).
pub(crate) fn overlaps_window(start: Ipa, end: Ipa) -> bool {
    start < HEAP_WINDOW_END && HEAP_WINDOW_START < end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_fit_with_alignment_and_coalescing() {
        let mut heap = RangeAllocator::<8>::new();
        heap.add(0x1000, 0x1000);
        let a = heap.allocate(24, 8).unwrap();
        assert_eq!(a, 0x1000);
        let b = heap.allocate(100, 256).unwrap();
        assert_eq!(b, 0x1100);
        assert_eq!(
            heap.fragments(),
            2,
            "the gap before the aligned block stays free"
        );
        heap.deallocate(a, 24);
        heap.deallocate(b, 100);
        assert_eq!(heap.fragments(), 1);
        assert_eq!(heap.free_bytes(), 0x1000);
        assert!(heap.allocate(0x1001, 16).is_none());
        assert_eq!(heap.allocate(0x1000, 4096), Some(0x1000));
        assert_eq!(heap.free_bytes(), 0);
    }

    #[test]
    fn adjacent_growth_merges() {
        let mut heap = RangeAllocator::<4>::new();
        heap.add(0x2000, 0x1000);
        heap.add(0x3000, 0x1000);
        heap.add(0x1000, 0x1000);
        assert_eq!(heap.fragments(), 1);
        assert_eq!(heap.allocate(0x3000, 16), Some(0x1000));
    }

    /// Random allocations and frees never overlap, stay aligned, and give everything back.
    #[test]
    fn random_use_never_overlaps() {
        let mut heap = RangeAllocator::<64>::new();
        heap.add(0x10_0000, 0x10_0000);
        let mut live: Vec<(u64, usize)> = Vec::new();
        let mut state = 0x9E37_79B9u64;
        for _ in 0..5000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if !state.is_multiple_of(3) || live.is_empty() {
                let size = (state >> 8) as usize % 3000 + 1;
                let align = 1 << ((state >> 20) % 9);
                if let Some(address) = heap.allocate(size, align) {
                    assert_eq!(address % align as u64, 0);
                    for &(other, other_size) in &live {
                        assert!(
                            address + size as u64 <= other || other + other_size as u64 <= address
                        );
                    }
                    live.push((address, size));
                }
            } else {
                let (address, size) = live.swap_remove((state >> 4) as usize % live.len());
                heap.deallocate(address, size);
            }
        }
        for (address, size) in live.drain(..) {
            heap.deallocate(address, size);
        }
        assert_eq!(heap.free_bytes() + heap.leaked_bytes(), 0x10_0000);
    }
}
