//! The EL2 stage-1 translation regime: an identity map of every RAM bank (Normal
//! write-back, up to the 39-bit VA's 512 GiB: above 4 GiB on an 8 GiB Pi or QEMU `virt`
//! with `-m 8G`) and of the rest of the low 4 GiB as device space (Device-nGnRE, never
//! executable), then MMU and caches on. A GiB wholly in one bank is one level-1 block; a GiB
//! a bank only partly covers gets a level-2 table of 2 MiB blocks.
//!
//! W^X: only the kernel's code is executable, and it is read-only; its read-only data is
//! read-only; everything else (data, stacks, every frame partitions use) is writable and
//! never executable. The 2 MiB blocks holding the image are mapped page by page for that,
//! as is the block holding the stack guard page, which is left unmapped.
//!
//! Format: VMSAv8-64 stage-1 descriptors, 4 KiB granule, 39-bit VA starting at level 1
//! (Arm ARM D8.3, "Translation table descriptor formats"; D8.2.x for TCR_EL2).

use crate::mem::ram::{Cover, MAX_RAM_BANKS, Ram};
use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::*;
use core::cell::UnsafeCell;

const ENTRIES: usize = 512;
const GIB: u64 = 1 << 30;
const BLOCK_2M: u64 = 2 << 20;
const PAGE: u64 = 4096;
/// Number of level-2 tables: one for each GiB a bank only partly covers (at most two a bank)
/// and one for the GiB of the kernel image, whose code is mapped page by page.
const L2_TABLES: usize = 2 * MAX_RAM_BANKS + 1;
/// Number of 2 MiB blocks that can be mapped page by page.
const L3_TABLES: usize = 4;

/// MAIR_EL2 attribute indices.
const ATTR_NORMAL: u64 = 0;
const ATTR_DEVICE: u64 = 1;
/// MAIR_EL2 (D24.2.70): Attr0 = Normal inner/outer write-back RW-allocate, Attr1 = Device-nGnRE.
const MAIR: u64 = 0xFF | (0x04 << 8);

/// Lower/upper attributes of a block descriptor (D8.3.2): AttrIndx\[4:2\], AP\[7:6\] = 0b00
/// (EL2 read/write), SH\[9:8\], AF\[10\], XN\[54\].
const fn block(pa: u64, attr: u64, executable: bool) -> u64 {
    let shareability = if attr == ATTR_NORMAL { 0b11 << 8 } else { 0 };
    let xn = if executable { 0 } else { 1 << 54 };
    pa | 0b01 | (attr << 2) | shareability | (1 << 10) | xn
}

/// Table descriptor: next-level address | 0b11.
const fn table(pa: u64) -> u64 {
    pa | 0b11
}

#[repr(C, align(4096))]
struct Tables {
    l1: [u64; ENTRIES],
    l2: [[u64; ENTRIES]; L2_TABLES],
    /// Page tables of the 2 MiB blocks mapped page by page (code, read-only data, guard).
    l3: [[u64; ENTRIES]; L3_TABLES],
}

struct TableCell(UnsafeCell<Tables>);
// SAFETY: written only by `enable`, once, on the boot core before any other core or guest runs.
unsafe impl Sync for TableCell {}

static TABLES: TableCell = TableCell(UnsafeCell::new(Tables {
    l1: [0; ENTRIES],
    l2: [[0; ENTRIES]; L2_TABLES],
    l3: [[0; ENTRIES]; L3_TABLES],
}));

/// Level-3 page descriptor (D8.3.2): like a block, but bits\[1:0\] = 0b11; AP\[7\] = 1
/// makes it read-only at EL2.
const fn page(pa: u64, attr: u64, executable: bool, writable: bool) -> u64 {
    let read_only = if writable { 0 } else { 1 << 7 };
    block(pa, attr, executable) | 0b10 | read_only
}

/// What the kernel image looks like to the map.
#[derive(Clone, Copy, Debug)]
pub struct KernelImage {
    /// First byte of code.
    pub text_start: u64,
    /// End of code, start of read-only data (page aligned).
    pub text_end: u64,
    /// End of read-only data (page aligned).
    pub rodata_end: u64,
    /// The page left unmapped below the stack.
    pub guard: u64,
}

impl KernelImage {
    /// Whether the 2 MiB block at `base` needs page granularity.
    fn fine(&self, base: u64) -> bool {
        self.fine_within(base, BLOCK_2M)
    }

    /// Whether any page of `[base, base + size)` needs page granularity.
    fn fine_within(&self, base: u64, size: u64) -> bool {
        let end = base + size;
        (self.text_start < end && self.rodata_end > base)
            || (self.guard >= base && self.guard < end)
            || super::boot::stack_guards().any(|guard| (base..end).contains(&guard))
    }

    /// The descriptor of the RAM page at `pa`.
    fn page(&self, pa: u64) -> u64 {
        if pa == self.guard || super::boot::stack_guards().any(|guard| guard == pa) {
            0
        } else if pa >= self.text_start && pa < self.text_end {
            page(pa, ATTR_NORMAL, true, false)
        } else if pa >= self.text_end && pa < self.rodata_end {
            page(pa, ATTR_NORMAL, false, false)
        } else {
            page(pa, ATTR_NORMAL, false, true)
        }
    }
}

/// What another core loads to share the boot core's EL2 map (`TABLES`): the translation
/// controls [`enable`] set, read back on the boot core after it. The secondary entry
/// (`boot.rs`) writes them in this order, SCTLR_EL2 last, before its first access to
/// memory with the MMU on (Arm ARM, "Enabling and disabling the MMU").
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SharedMap {
    /// MAIR_EL2.
    pub mair: u64,
    /// TCR_EL2.
    pub tcr: u64,
    /// TTBR0_EL2: the boot core's level-1 table.
    pub ttbr0: u64,
    /// SCTLR_EL2 with the MMU and caches on.
    pub sctlr: u64,
}

/// The boot core's EL2 map, for the other cores; call after [`enable`].
pub fn shared_map() -> SharedMap {
    SharedMap {
        mair: MAIR_EL2.get(),
        tcr: TCR_EL2.get(),
        ttbr0: TTBR0_EL2.get(),
        sctlr: SCTLR_EL2.get(),
    }
}

/// Builds the identity map for the RAM banks of `ram` and turns the MMU on, with the kernel
/// `image` mapped W^X and its stack guard unmapped. Banks are 2 MiB aligned, disjoint and
/// below 512 GiB ([`Ram`] makes them so).
pub fn enable(ram: &Ram, image: KernelImage) {
    // SAFETY: single-threaded boot, MMU still off: nothing else references the tables.
    let tables = unsafe { &mut *TABLES.0.get() };
    let mut next_l2 = 0;
    let mut next_l3 = 0;
    for gib in 0..ENTRIES as u64 {
        let base = gib * GIB;
        let cover = ram.cover(base, GIB);
        // A level-1 block maps 1 GiB with the 4 KiB granule (D8.3.1, D8.2.x).
        if cover == Cover::Whole && !image.fine_within(base, GIB) {
            tables.l1[gib as usize] = block(base, ATTR_NORMAL, false);
        } else if cover != Cover::Nothing && next_l2 < L2_TABLES {
            let l2 = &mut tables.l2[next_l2];
            for (i, entry) in l2.iter_mut().enumerate() {
                let pa = base + i as u64 * BLOCK_2M;
                let in_ram = ram.cover(pa, BLOCK_2M) == Cover::Whole;
                *entry = if !in_ram {
                    block(pa, ATTR_DEVICE, false)
                } else if image.fine(pa) && next_l3 < L3_TABLES {
                    let l3 = &mut tables.l3[next_l3];
                    for (j, page) in l3.iter_mut().enumerate() {
                        *page = image.page(pa + j as u64 * PAGE);
                    }
                    next_l3 += 1;
                    table(l3.as_ptr() as u64)
                } else {
                    block(pa, ATTR_NORMAL, false)
                };
            }
            tables.l1[gib as usize] = table(l2.as_ptr() as u64);
            next_l2 += 1;
        } else if base < 4 * GIB {
            tables.l1[gib as usize] = block(base, ATTR_DEVICE, false);
        }
    }

    MAIR_EL2.set(MAIR);
    // TCR_EL2 (D24.2.181, non-VHE): T0SZ = 25 (39-bit VA), IRGN0/ORGN0 write-back,
    // SH0 inner shareable, TG0 4 KiB, PS from PARange, RES1 bits 31 and 23.
    let tcr = 25
        | (0b01 << 8)
        | (0b01 << 10)
        | (0b11 << 12)
        | (super::el2::pa_range_encoding() << 16)
        | (1 << 23)
        | (1 << 31);
    TCR_EL2.set(tcr);
    TTBR0_EL2.set(tables.l1.as_ptr() as u64);
    barrier::dsb(barrier::ISH);
    barrier::isb(barrier::SY);
    // SAFETY: invalidates stale EL2 TLB entries before the MMU is turned on; no memory effect.
    unsafe { core::arch::asm!("tlbi alle2", "dsb ish", "isb", options(nostack)) };
    // SCTLR_EL2 (D24.2.158): M (MMU), C (data cache), SA (SP alignment), I (instruction
    // cache), WXN (writable implies never executable, whatever a descriptor says).
    let sctlr = SCTLR_EL2.get() | (1 << 0) | (1 << 2) | (1 << 3) | (1 << 12) | (1 << 19);
    SCTLR_EL2.set(sctlr);
    barrier::isb(barrier::SY);
}
