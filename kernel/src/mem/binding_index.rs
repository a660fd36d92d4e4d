//! Where each frame is bound by the partition that holds it: one IPA (or none) per frame.
//!
//! Stage-2 tables map IPA → frame; revocation needs the other direction (which IPA must be
//! unmapped to take this frame back). A partition binds a frame it holds at most once, so one
//! slot per frame suffices; bindings of granted frames live in the grant table instead.

use exo_abi::{Ipa, PAGE_SIZE, PhysAddr};

/// Per-frame binding slots over caller-provided storage (one `u64` per frame of RAM).
pub struct BindingIndex<'a> {
    base: PhysAddr,
    slots: &'a mut [u64],
}

/// Slot value meaning "not bound". IPAs are page aligned, so a bound slot stores
/// `ipa | BOUND` and can never be zero.
const BOUND: u64 = 1;

impl<'a> BindingIndex<'a> {
    /// An index with every frame unbound.
    pub fn new(base: PhysAddr, slots: &'a mut [u64]) -> Self {
        slots.fill(0);
        Self { base, slots }
    }

    fn slot(&self, frame: PhysAddr) -> Option<usize> {
        let offset = frame.raw().checked_sub(self.base.raw())?;
        let index = (offset / PAGE_SIZE) as usize;
        (frame.is_page_aligned() && index < self.slots.len()).then_some(index)
    }

    /// Where `frame` is bound by its holder, if anywhere.
    pub fn get(&self, frame: PhysAddr) -> Option<Ipa> {
        let value = self.slots[self.slot(frame)?];
        (value & BOUND != 0).then(|| Ipa::new(value & !BOUND))
    }

    /// Records that `frame` is bound at `ipa`. Returns false (and records nothing) for a
    /// frame outside RAM.
    pub fn set(&mut self, frame: PhysAddr, ipa: Ipa) -> bool {
        match self.slot(frame) {
            Some(slot) => {
                self.slots[slot] = ipa.page_base().raw() | BOUND;
                true
            }
            None => false,
        }
    }

    /// Forgets `frame`'s binding.
    pub fn clear(&mut self, frame: PhysAddr) {
        if let Some(slot) = self.slot(frame) {
            self.slots[slot] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_forgets_bindings() {
        let mut storage = [7u64; 4];
        let mut index = BindingIndex::new(PhysAddr::new(0x4000_0000), &mut storage);
        let frame = PhysAddr::new(0x4000_2000);
        assert_eq!(index.get(frame), None);
        assert!(index.set(frame, Ipa::new(0)));
        assert_eq!(
            index.get(frame),
            Some(Ipa::new(0)),
            "IPA 0 is a valid binding"
        );
        index.clear(frame);
        assert_eq!(index.get(frame), None);
        assert!(
            !index.set(PhysAddr::new(0x4000_4000), Ipa::new(0x1000)),
            "outside RAM"
        );
        assert_eq!(index.get(PhysAddr::new(0x4000_2001)), None, "unaligned");
    }
}
