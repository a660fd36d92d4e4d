//! Stage-1 translation tables (Arm ARM D8): the identity map `_start` turns the MMU on with,
//! and the alias window's tables, changed with break-before-make.
//!
//! The tables are shared by every vCPU of the partition (one address space); a change is
//! broadcast to the Inner Shareable domain (`TLBI ...IS`), so it holds for other vCPUs too.

use exo_abi::Ipa;

/// A 4 KiB translation table.
#[repr(C, align(4096))]
pub(crate) struct Table(pub(crate) core::cell::UnsafeCell<[u64; 512]>);

// SAFETY: the tables are written only by `map_alias`, whose caller serialises the writes
// (one vCPU today, with IRQs masked); the hardware walker only reads them.
unsafe impl Sync for Table {}

/// Stage-1 level-1 block descriptor (Arm ARM D8.3.2): 1 GiB at `index << 30`, AttrIndx 0
/// (Normal write-back), EL1 read-write (AP 0b00), inner shareable, access flag set,
/// executable at EL1 (stage 2 decides), never at EL0 (UXN).
const fn identity_block(index: u64) -> u64 {
    (index << 30) | 0b01 | (0b11 << 8) | (1 << 10) | (1 << 54)
}

/// The level-1 table `_start` turns the MMU on with: every GiB of the IPA space mapped to
/// itself. In `.data`, so the kernel loads it with the image.
pub(crate) static STAGE1: Table = Table(core::cell::UnsafeCell::new({
    let mut entries = [0u64; 512];
    let mut i = 0;
    while i < 512 {
        entries[i] = identity_block(i as u64);
        i += 1;
    }
    entries
}));

/// Tables for the alias window: the last GiB of the VA space, mapped page by page.
static ALIAS_L2: Table = Table(core::cell::UnsafeCell::new([0; 512]));
static ALIAS_L3: Table = Table(core::cell::UnsafeCell::new([0; 512]));

/// Where the alias window starts: the last GiB of the 39-bit VA space.
pub(crate) const ALIAS_BASE: u64 = 511 << 30;

/// Maps alias slot `slot` (a page of the window) to the page at `ipa`, or unmaps it (`None`).
/// Stage-1 descriptors change with break-before-make and TLB invalidation (Arm ARM D8.14).
pub(crate) fn map_alias(slot: usize, ipa: Option<Ipa>) {
    let table = |t: &Table| t.0.get() as u64 | 0b11;
    let barrier_and_flush = |va: u64| {
        // SAFETY: TLB maintenance of this vCPU's own stage 1; no memory effect beyond it.
        unsafe {
            core::arch::asm!(
                "dsb ishst",
                "tlbi vae1is, {}",
                "dsb ish",
                "isb",
                in(reg) va >> 12,
                options(nostack)
            )
        };
    };
    // SAFETY: single vCPU, IRQs masked by the caller (the library OS's `mmu`), so nothing
    // else writes the tables meanwhile, and the hardware walker only reads them. Multi-vCPU:
    // the caller will need a lock shared by the vCPUs, not just masked IRQs.
    let (l1, l2, l3) = unsafe {
        (
            &mut *STAGE1.0.get(),
            &mut *ALIAS_L2.0.get(),
            &mut *ALIAS_L3.0.get(),
        )
    };
    if l1[511] != table(&ALIAS_L2) {
        l1[511] = 0;
        barrier_and_flush(ALIAS_BASE);
        // SAFETY: as above; the whole GiB's translations go, not just one page.
        unsafe {
            core::arch::asm!(
                "dsb ishst",
                "tlbi vmalle1is",
                "dsb ish",
                "isb",
                options(nostack)
            )
        };
        l2[0] = table(&ALIAS_L3);
        l1[511] = table(&ALIAS_L2);
    }
    let va = ALIAS_BASE + slot as u64 * 4096;
    l3[slot] = 0;
    barrier_and_flush(va);
    if let Some(ipa) = ipa {
        // Level-3 page descriptor: like the identity blocks, bits [1:0] = 0b11.
        l3[slot] = (ipa.page_base().raw()) | 0b11 | (0b11 << 8) | (1 << 10) | (1 << 54);
        barrier_and_flush(va);
    }
}
