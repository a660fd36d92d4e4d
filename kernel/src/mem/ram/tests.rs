//! The frame table over the banks the Raspberry Pi 4 firmware writes on 2, 4 and 8 GiB
//! boards (kernel/tests/fixtures/README.md), with its reservations.

use super::*;
use crate::device_tree::DeviceTree;
use std::vec;
use std::vec::Vec;

const PI_2GIB: &[u8] = include_bytes!("../../../tests/fixtures/rpi4b-2gib.dtb");
const PI_4GIB: &[u8] = include_bytes!("../../../tests/fixtures/rpi4b-4gib.dtb");
const PI_8GIB: &[u8] = include_bytes!("../../../tests/fixtures/rpi4b-8gib.dtb");
const PI_8GIB_RESERVED: &[u8] = include_bytes!("../../../tests/fixtures/rpi4b-8gib-reserved.dtb");
const MIB: u64 = 1 << 20;

fn bank(start: u64, end: u64) -> Bank {
    Bank { start, end }
}

fn ram_of(dtb: &[u8]) -> Ram {
    Ram::new(DeviceTree::new(dtb).unwrap().memory_banks().as_slice())
}

/// What the kernel reserves at boot on a Pi: an image at 0x80000 (4 MiB with its package and
/// table), the tree's `/memreserve/` entries (the armstub's spin tables at 0) and its
/// `reserved-memory` regions.
fn reservations(dtb: &[u8]) -> Vec<(u64, u64)> {
    let tree = DeviceTree::new(dtb).unwrap();
    let mut all = vec![(0x8_0000, 0x48_0000)];
    let regions = tree
        .memory_reservations()
        .chain(tree.reserved_memory().as_slice().to_vec());
    all.extend(regions.map(|r| (r.start, r.start + r.size)));
    all
}

/// The table the kernel builds at boot from `dtb` (its storage leaked: a test's lifetime).
fn table_of(ram: &Ram, dtb: &[u8]) -> FrameTable<'static> {
    let storage = vec![0; ram.span_frames()].leak();
    ram.frame_table(storage, reservations(dtb).into_iter())
}

fn owner(table: &FrameTable<'_>, address: u64) -> Option<Owner> {
    table.owner(PhysAddr::new(address))
}

#[test]
fn reads_every_bank_the_pi_firmware_writes() {
    let below_1gib = bank(0, 0x3B40_0000);
    assert_eq!(
        ram_of(PI_2GIB).banks(),
        [below_1gib, bank(0x4000_0000, 0x8000_0000)]
    );
    assert_eq!(
        ram_of(PI_4GIB).banks(),
        [below_1gib, bank(0x4000_0000, 0xFC00_0000)]
    );
    // The two 2 GiB banks above 4 GiB touch: one bank.
    assert_eq!(
        ram_of(PI_8GIB).banks(),
        [
            below_1gib,
            bank(0x4000_0000, 0xFC00_0000),
            bank(0x1_0000_0000, 0x2_0000_0000)
        ]
    );
    for (dtb, mib) in [
        (PI_2GIB, 948 + 1024),
        (PI_4GIB, 948 + 3008),
        (PI_8GIB, 8052),
    ] {
        assert_eq!(ram_of(dtb).bytes(), mib * MIB);
        assert_eq!(ram_of(dtb).ignored(), 0);
    }
}

#[test]
fn banks_are_trimmed_sorted_merged_and_bounded() {
    let region = |start, size| Region { start, size };
    let ram = Ram::new(&[
        region(0x8000_0000, 0x4000_0000),
        // Overlaps the next one once trimmed to 2 MiB.
        region(0x1000, 0x3FFF_F000),
        region(0x3F00_0000, 0x0200_0000),
        // Less than a 2 MiB block once trimmed.
        region(0x5010_0000, 0x10_0000),
        // Beyond the EL2 map.
        region(MAX_RAM_END - BANK_ALIGN, 2 * BANK_ALIGN),
        region(u64::MAX - 0xFFF, 0x1000),
    ]);
    assert_eq!(
        ram.banks(),
        [
            bank(0x20_0000, 0x4100_0000),
            bank(0x8000_0000, 0xC000_0000),
            bank(MAX_RAM_END - BANK_ALIGN, MAX_RAM_END)
        ]
    );
    assert_eq!(ram.bank_holding(0x4000_0000), Some(ram.banks()[0]));
    assert_eq!(ram.bank_holding(0x4100_0000), None);
    // Of more than MAX_RAM_BANKS banks, the lowest are kept; the rest is counted ignored.
    let many: Vec<Region> = (0..MAX_RAM_BANKS as u64 + 2)
        .rev()
        .map(|i| region(i * 0x4000_0000, BANK_ALIGN))
        .collect();
    let ram = Ram::new(&many);
    assert_eq!(ram.banks().len(), MAX_RAM_BANKS);
    assert_eq!(
        ram.end(),
        (MAX_RAM_BANKS as u64 - 1) * 0x4000_0000 + BANK_ALIGN
    );
    assert_eq!(ram.ignored(), 2 * BANK_ALIGN);
}

/// For each board: the holes are no RAM, the reservations are the kernel's, the counts
/// add up to the banks' frames, and handing out every free frame never reaches a hole.
#[test]
fn the_frame_table_over_the_pi_banks_has_holes_and_reservations() {
    for (dtb, holes) in [
        (PI_2GIB, &[0x3B40_0000u64, 0x3FFF_F000][..]),
        (PI_4GIB, &[0x3B40_0000, 0x3FFF_F000][..]),
        (
            PI_8GIB,
            &[0x3B40_0000, 0xFC00_0000, 0xFE20_1000, 0xFFFF_F000][..],
        ),
    ] {
        let ram = ram_of(dtb);
        let mut table = table_of(&ram, dtb);
        let frames = (ram.bytes() / PAGE_SIZE) as usize;
        assert_eq!(table.frame_count(), frames);
        assert_eq!(table.hole_count(), ram.span_frames() - frames);
        for &hole in holes {
            assert_eq!(owner(&table, hole), None, "{hole:#x} is a hole");
            assert!(!table.contains(PhysAddr::new(hole)));
        }
        // /memreserve/ 0..0x1000 and the image; the frame after the spin tables is free.
        assert_eq!(owner(&table, 0), Some(Owner::Kernel));
        assert_eq!(owner(&table, 0x1000), Some(Owner::Free));
        assert_eq!(owner(&table, 0x47_F000), Some(Owner::Kernel));
        let kernel = 1 + 0x400;
        assert_eq!(table.count(Owner::Kernel), kernel);
        assert_eq!(table.count(Owner::Free), frames - kernel);

        let partition = Owner::Partition(super::super::frame_table::PartitionId::new(0).unwrap());
        let mut given = 0;
        while let Ok(frame) = table.alloc(partition) {
            assert!(
                ram.bank_holding(frame.raw()).is_some(),
                "{frame} is in a hole"
            );
            given += 1;
        }
        assert_eq!(given, frames - kernel);
        assert_eq!(table.count(Owner::Free), 0);
    }
}

#[test]
fn reserved_memory_regions_are_the_kernels_even_across_holes_and_banks() {
    let ram = ram_of(PI_8GIB_RESERVED);
    let table = table_of(&ram, PI_8GIB_RESERVED);
    // firmware@3b000000 (no-map): 4 MiB up to the end of the first bank; its last MiB is in
    // the VideoCore's hole and stays no RAM.
    assert_eq!(owner(&table, 0x3AFF_F000), Some(Owner::Free));
    assert_eq!(owner(&table, 0x3B00_0000), Some(Owner::Kernel));
    assert_eq!(owner(&table, 0x3B3F_F000), Some(Owner::Kernel));
    assert_eq!(owner(&table, 0x3B40_0000), None);
    // pstore@17ff00000: 2 MiB across the boundary of the two firmware banks above 4 GiB.
    assert_eq!(owner(&table, 0x1_7FEF_F000), Some(Owner::Free));
    assert_eq!(owner(&table, 0x1_7FF0_0000), Some(Owner::Kernel));
    assert_eq!(owner(&table, 0x1_800F_F000), Some(Owner::Kernel));
    assert_eq!(owner(&table, 0x1_8010_0000), Some(Owner::Free));
    let kernel = 1 + 0x400 + 0x400 + 0x200;
    assert_eq!(table.count(Owner::Kernel), kernel);
    assert_eq!(
        table.count(Owner::Free),
        (ram.bytes() / PAGE_SIZE) as usize - kernel
    );
}

#[test]
fn overlapping_reservations_are_each_honoured() {
    let ram = Ram::new(&[Region {
        start: 0,
        size: 4 * BANK_ALIGN,
    }]);
    let mut storage = vec![0; ram.span_frames()];
    // The second overlaps the first: all of it is still reserved.
    let table = ram.frame_table(&mut storage, [(0, 0x3000), (0x2000, 0x6000)].into_iter());
    assert_eq!(table.count(Owner::Kernel), 6);
    assert_eq!(table.owner(PhysAddr::new(0x5000)), Some(Owner::Kernel));
    assert_eq!(table.owner(PhysAddr::new(0x6000)), Some(Owner::Free));
}

/// What the EL2 map makes of each GiB of an 8 GiB Pi: at most two partly covered GiBs a bank
/// (so `mmu.rs`'s `2 * MAX_RAM_BANKS + 1` level-2 tables always suffice), the rest blocks.
#[test]
fn each_gib_of_the_pi_is_whole_part_or_no_ram() {
    const GIB: u64 = 1 << 30;
    let ram = ram_of(PI_8GIB);
    let covers: Vec<Cover> = (0..9).map(|gib| ram.cover(gib * GIB, GIB)).collect();
    use Cover::*;
    assert_eq!(
        covers,
        [
            Part, Whole, Whole, Part, Whole, Whole, Whole, Whole, Nothing
        ]
    );
    // 2 MiB blocks at the edges of the first two banks.
    assert_eq!(ram.cover(0x3B20_0000, BANK_ALIGN), Whole);
    assert_eq!(ram.cover(0x3B40_0000, BANK_ALIGN), Nothing);
    assert_eq!(ram.cover(0xFBE0_0000, BANK_ALIGN), Whole);
    assert_eq!(ram.cover(0xFC00_0000, BANK_ALIGN), Nothing);
    for dtb in [PI_2GIB, PI_4GIB, PI_8GIB] {
        let ram = ram_of(dtb);
        let parts = (0..512)
            .filter(|gib| ram.cover(gib * GIB, GIB) == Part)
            .count();
        assert!(
            parts <= 2 * ram.banks().len(),
            "{parts} partly covered GiBs"
        );
    }
}
