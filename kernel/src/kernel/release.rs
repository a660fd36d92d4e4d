//! Batched release (`EXO_FRAME_RELEASE`) and the loss order a library OS publishes for the
//! abort protocol (`EXO_SET_LOSS_ORDER`), with the arrays of frame addresses both read from
//! guest memory.
//!
//! A batch is all or nothing: every entry is checked, and held for the kernel, before any
//! frame is unbound; a bad entry hands the held ones back and names its index. The
//! revocation page and blocked claimants are seen to once per call, not once per frame.

use super::{Kernel, Platform};
use crate::mem::frame_table::Owner;
use crate::mem::frame_table::PartitionId;
use exo_abi::call::FRAME_RELEASE_MAX;
use exo_abi::info::MemoryKind;
use exo_abi::revocation::{LOSS_ORDER_MAX, LossOrder};
use exo_abi::{Error, Ipa, PAGE_SIZE, PhysAddr};

/// Pages an array of [`GuestWords::MAX_WORDS`] `u64`s can touch when it does not start on a
/// page boundary.
const MAX_PAGES: usize = (GuestWords::MAX_WORDS * 8).div_ceil(PAGE_SIZE as usize) + 1;

/// An array of `u64`s in a partition's memory, translated once: each page it covers is
/// bound with the rights asked for, as Normal memory over RAM.
#[derive(Clone, Copy)]
pub(super) struct GuestWords {
    /// Offset of word 0 in the first page.
    offset: u64,
    /// The frames of the pages it covers, in order.
    pages: [PhysAddr; MAX_PAGES],
    count: usize,
}

impl GuestWords {
    /// Most words one array may hold (one `EXO_FRAME_ALLOC` of `FRAME_ALLOC_MAX` frames).
    pub(super) const MAX_WORDS: usize = 4096;

    /// The physical address of word `i` (which must be below the count).
    pub(super) fn at(&self, i: usize) -> PhysAddr {
        let byte = self.offset + i as u64 * 8;
        self.pages[(byte / PAGE_SIZE) as usize].add(byte % PAGE_SIZE)
    }

    /// Words in the array.
    pub(super) fn len(&self) -> usize {
        self.count
    }

    /// Whether `frame` holds part of the array.
    pub(super) fn holds(&self, frame: PhysAddr) -> bool {
        let last = ((self.offset + self.count as u64 * 8).saturating_sub(1) / PAGE_SIZE) as usize;
        self.pages[..=last.min(MAX_PAGES - 1)].contains(&frame)
    }
}

impl<P: Platform> Kernel<'_, P> {
    /// Translates `count` words at `ipa` in partition `id`, bound writable if `write`, else
    /// readable. `BadAddress` unless `ipa` is 8-byte aligned and every page is bound so.
    pub(super) fn guest_words(
        &mut self,
        id: PartitionId,
        ipa: Ipa,
        count: usize,
        write: bool,
    ) -> Result<GuestWords, Error> {
        if count > GuestWords::MAX_WORDS || !ipa.raw().is_multiple_of(8) {
            return Err(Error::BadAddress);
        }
        let end = ipa.checked_add(count as u64 * 8).ok_or(Error::BadAddress)?;
        let mut words = GuestWords {
            offset: ipa.page_offset(),
            pages: [PhysAddr::new(0); MAX_PAGES],
            count,
        };
        let mut page = ipa.page_base();
        let mut n = 0;
        while page < end {
            match self.translate(id, page) {
                Some((frame, a))
                    if ((write && a.write) || (!write && a.read))
                        && a.kind == MemoryKind::Normal
                        && self.frames.contains(frame) =>
                {
                    let slot = words.pages.get_mut(n).ok_or(Error::BadAddress)?;
                    *slot = frame;
                }
                _ => return Err(Error::BadAddress),
            }
            n += 1;
            page = page.add(PAGE_SIZE);
        }
        Ok(words)
    }

    /// `EXO_FRAME_RELEASE`: on success x0 = frames released, x1 = frames still owed. A bad
    /// entry is refused with its index, and nothing changes.
    pub(super) fn frame_release(
        &mut self,
        id: PartitionId,
        buffer: Ipa,
        count: u64,
    ) -> Result<[u64; 4], (Error, u64)> {
        if count == 0 || count > FRAME_RELEASE_MAX {
            return Err((Error::InvalidParameter, 0));
        }
        let words = self
            .guest_words(id, buffer, count as usize, false)
            .map_err(|e| (e, 0))?;
        let me = self.owner_of(id);
        // Grants are checked per entry only if the caller granted anything at all.
        let granted_any = !self.grants.is_empty()
            && self
                .grants
                .first(|g| Owner::Partition(g.owner) == me)
                .is_some();
        // First pass: each name is read from guest memory once, into the kernel's own copy,
        // and its frame moves to the kernel, so a frame named twice is refused the second
        // time and no other call can see a half-released batch. Nothing after this reads
        // the guest's array again: what it holds later (another vCPU, a device, a grantee
        // writing the page) changes nothing.
        for i in 0..words.len() {
            let frame = PhysAddr::new(self.platform.read_u64(words.at(i)));
            let busy = words.holds(frame)
                || (granted_any && self.grants.first(|g| g.frame == frame).is_some());
            let held = if busy {
                Err(Error::Busy)
            } else {
                self.frames
                    .transfer(frame, me, Owner::Kernel)
                    .map_err(|e| e.to_abi())
            };
            if let Err(e) = held {
                self.hand_back(i, me);
                return Err((e, i as u64));
            }
            self.revocations.batch[i] = frame;
        }
        let mut lowest = PhysAddr::new(u64::MAX);
        for i in 0..words.len() {
            let frame = self.revocations.batch[i];
            lowest = lowest.min(frame);
            if let Some(ipa) = self.bound.get(frame) {
                if let Err(e) = self.unmap(id, ipa) {
                    log::error!("frame {frame} recorded at {ipa} but not mapped: {e:?}");
                }
                self.bound.clear(frame);
            }
            self.platform.scrub_frame(frame);
            if let Err(e) = self.frames.free(frame, Owner::Kernel) {
                log::error!("released frame {frame} could not be freed: {e:?}");
            }
        }
        // Blocked claimants get these frames first, and they are scrubbed already: for the
        // rest of this call they are handed over without a second scrub (nothing else runs
        // meanwhile), then forgotten.
        self.frames.search_from(lowest);
        self.revocations.clean = Some((words.len(), 0));
        self.frame_released(id, count);
        self.revocations.clean = None;
        Ok([count, self.revoke_ack(id), 0, 0])
    }

    /// A frame released and scrubbed earlier in this call and still free, now `owner`'s.
    pub(super) fn take_clean(&mut self, owner: Owner) -> Option<PhysAddr> {
        let (len, next) = self.revocations.clean.as_mut()?;
        while *next < *len {
            let frame = self.revocations.batch[*next];
            *next += 1;
            if self.frames.alloc_specific(frame, owner).is_ok() {
                return Some(frame);
            }
        }
        None
    }

    /// Gives the first `held` frames of a refused batch (the kernel's copy) back to `me`.
    fn hand_back(&mut self, held: usize, me: Owner) {
        for i in 0..held {
            let frame = self.revocations.batch[i];
            if let Err(e) = self.frames.transfer(frame, Owner::Kernel, me) {
                log::error!("frame {frame} held for a refused release is lost: {e:?}");
            }
        }
    }

    /// `EXO_SET_LOSS_ORDER`.
    pub(super) fn set_loss_order(&mut self, id: PartitionId, page: Ipa) -> Result<(), Error> {
        if page.raw() == 0 {
            if let Some(p) = self.partition_mut(id) {
                p.loss_order = None;
            }
            return Ok(());
        }
        if !page.is_page_aligned() {
            return Err(Error::Unaligned);
        }
        self.loss_order_frame(id, page).ok_or(Error::BadAddress)?;
        if let Some(p) = self.partition_mut(id) {
            p.loss_order = Some(page);
        }
        Ok(())
    }

    /// The frame under partition `id`'s loss-order page at `page`, if it is bound there
    /// read-write, Normal, and held by `id` itself.
    fn loss_order_frame(&mut self, id: PartitionId, page: Ipa) -> Option<PhysAddr> {
        let (frame, a) = self.translate(id, page)?;
        let ok = a.read && a.write && a.kind == MemoryKind::Normal;
        (ok && self.frames.owner(frame) == Some(self.owner_of(id))).then_some(frame)
    }

    /// The abort protocol's first pass: takes up to `owed` frames partition `id` listed in
    /// its loss-order page, in order, skipping anything it does not hold (and the page
    /// itself). The page is translated now: if it is no longer bound, nothing is taken.
    /// Returns how many frames were taken.
    pub(super) fn take_listed(&mut self, id: PartitionId, owed: u64, sequence: u32) -> u64 {
        let Some(page) = self.partition(id).and_then(|p| p.loss_order) else {
            return 0;
        };
        let Some(list) = self.loss_order_frame(id, page) else {
            return 0;
        };
        let owner = self.owner_of(id);
        let count = LossOrder::count(self.platform.read_u64(list.add(LossOrder::COUNT as u64)));
        let mut taken = 0;
        for i in 0..count.min(LOSS_ORDER_MAX) {
            if taken == owed {
                break;
            }
            let raw = self.platform.read_u64(list.add(LossOrder::entry(i) as u64));
            let frame = PhysAddr::new(raw);
            if frame == list || self.frames.owner(frame) != Some(owner) {
                continue;
            }
            self.take_frame(id, frame, sequence);
            taken += 1;
        }
        taken
    }
}
