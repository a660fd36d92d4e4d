//! The library OS's own stage-1 translation.
//!
//! The kernel leaves EL1's MMU to the library OS (`HCR_EL2.DC` = 0): the boot stub turns it on
//! with an identity map of the whole IPA space, so addresses are IPAs, and stage 2 decides
//! what is bound, with which rights and memory type. Above that, translation is policy; this
//! module offers one piece of it, an **alias**: a second virtual address for a page already
//! bound, in a window at the top of the address space. Paging, per-process address spaces or
//! copy-on-write would build on the same tables.

use core::sync::atomic::{AtomicU64, Ordering};

use exo_abi::{Error, Ipa};

use crate::arch;

/// Pages in the alias window.
pub const ALIAS_SLOTS: usize = 512;

/// Which alias slots are in use, 64 per word.
static USED: [AtomicU64; ALIAS_SLOTS / 64] = [const { AtomicU64::new(0) }; ALIAS_SLOTS / 64];

/// A second mapping of a bound page, at [`Alias::address`]; dropped, it is unmapped.
#[derive(Debug)]
pub struct Alias {
    slot: usize,
}

/// Maps the page holding `ipa` a second time, in the alias window. The page must be bound
/// (stage 2 still decides whether an access through the alias is allowed). Errors:
/// `OutOfMemory` when every slot is in use.
pub fn alias(ipa: Ipa) -> Result<Alias, Error> {
    let slot = take_slot().ok_or(Error::OutOfMemory)?;
    crate::irq::without_interrupts(|| arch::map_alias(slot, Some(ipa)));
    Ok(Alias { slot })
}

fn take_slot() -> Option<usize> {
    for (i, word) in USED.iter().enumerate() {
        let mut current = word.load(Ordering::Relaxed);
        while current != u64::MAX {
            let bit = (!current).trailing_zeros();
            match word.compare_exchange(
                current,
                current | (1 << bit),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(i * 64 + bit as usize),
                Err(now) => current = now,
            }
        }
    }
    None
}

impl Alias {
    /// The virtual address of the page's first byte through the alias.
    pub fn address(&self) -> u64 {
        arch::ALIAS_BASE + self.slot as u64 * 4096
    }

    /// Reads the word at byte `offset` (a multiple of 8 below 4096) through the alias.
    pub fn read_u64(&self, offset: u64) -> u64 {
        arch::read_u64(Ipa::new(self.word(offset)))
    }

    /// Writes the word at byte `offset` (a multiple of 8 below 4096) through the alias.
    pub fn write_u64(&self, offset: u64, value: u64) {
        arch::write_u64(Ipa::new(self.word(offset)), value);
    }

    fn word(&self, offset: u64) -> u64 {
        assert!(
            offset < 4096 && offset.is_multiple_of(8),
            "alias offset {offset:#x} is not a word of the page"
        );
        self.address() + offset
    }
}

impl Drop for Alias {
    fn drop(&mut self) {
        crate::irq::without_interrupts(|| arch::map_alias(self.slot, None));
        USED[self.slot / 64].fetch_and(!(1 << (self.slot % 64)), Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_handed_out_once_until_every_one_is_taken() {
        let mut taken = std::vec::Vec::new();
        while let Some(slot) = take_slot() {
            taken.push(slot);
        }
        taken.sort_unstable();
        taken.dedup();
        assert_eq!(taken.len(), ALIAS_SLOTS);
        for slot in taken {
            USED[slot / 64].fetch_and(!(1 << (slot % 64)), Ordering::AcqRel);
        }
    }
}
