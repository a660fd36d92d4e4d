//! The filter against a model of the distributor's registers: each partition configures
//! its own interrupts in the real registers, and no access by any partition, hostile or
//! not, changes or reveals anything of another's.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::irq::IntidSet;

/// Interrupts of the model: QEMU virt's 288.
const LINES: u32 = 288;

/// The per-interrupt state of the model distributor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Line {
    group: bool,
    enabled: bool,
    pending: bool,
    active: bool,
    priority: u8,
    targets: u8,
    config: u8,
}

/// A distributor with the architected register semantics: set/clear pairs share one bit,
/// fields are stored, and every other register written is recorded in `other` (so a
/// write the filter lets through to anything but a partition's own fields shows).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Model {
    lines: Vec<Line>,
    other: BTreeMap<u32, u32>,
    typer: u32,
}

impl Model {
    fn new() -> Self {
        Self {
            lines: vec![Line::default(); LINES as usize],
            other: BTreeMap::new(),
            // ITLinesNumber 8, CPUNumber 7, SecurityExtn, MBIS, LPIS, IDbits 15, ESPI.
            typer: 8 | 7 << 5 | 1 << 10 | 1 << 16 | 1 << 17 | 15 << 19 | 1 << 8,
        }
    }

    fn bit(&mut self, word: u32, base: u32) -> impl Iterator<Item = (u32, &mut Line)> {
        let first = (word - base) / 4 * 32;
        self.lines
            .iter_mut()
            .enumerate()
            .skip(first as usize)
            .take(32)
            .map(move |(i, line)| (i as u32 - first, line))
    }
}

impl DistributorRegisters for Model {
    fn read32(&mut self, offset: u32) -> u32 {
        let pick = |model: &mut Self, base: u32, get: fn(&Line) -> bool| {
            model
                .bit(offset, base)
                .fold(0, |v, (i, line)| v | u32::from(get(line)) << i)
        };
        let bytes = |model: &Self, base: u32, get: fn(&Line) -> u8| {
            let first = (offset - base) as usize;
            (0..4).fold(0, |v, i| {
                v | u32::from(model.lines.get(first + i).map_or(0, get)) << (8 * i)
            })
        };
        match offset {
            0x004 => self.typer,
            0x080..0x100 => pick(self, 0x080, |l| l.group),
            0x100..0x200 => pick(self, offset & !0x7f, |l| l.enabled),
            0x200..0x300 => pick(self, offset & !0x7f, |l| l.pending),
            0x300..0x400 => pick(self, offset & !0x7f, |l| l.active),
            0x400..0x800 => bytes(self, 0x400, |l| l.priority),
            0x800..0xC00 => bytes(self, 0x800, |l| l.targets),
            0xC00..0xD00 => {
                let first = ((offset - 0xC00) * 4) as usize;
                (0..16).fold(0, |v, i| {
                    v | u32::from(self.lines.get(first + i).map_or(0, |l| l.config)) << (2 * i)
                })
            }
            _ => self
                .other
                .get(&offset)
                .copied()
                .unwrap_or(0x4B00_0000 | offset),
        }
    }

    fn write32(&mut self, offset: u32, value: u32) {
        let set = |model: &mut Self, base: u32, on: bool, field: fn(&mut Line) -> &mut bool| {
            for (i, line) in model.bit(offset, base) {
                if value & (1 << i) != 0 {
                    *field(line) = on;
                }
            }
        };
        match offset {
            0x080..0x100 => {
                for (i, line) in self.bit(offset, 0x080) {
                    line.group = value & (1 << i) != 0;
                }
            }
            0x100..0x180 => set(self, 0x100, true, |l| &mut l.enabled),
            0x180..0x200 => set(self, 0x180, false, |l| &mut l.enabled),
            0x200..0x280 => set(self, 0x200, true, |l| &mut l.pending),
            0x280..0x300 => set(self, 0x280, false, |l| &mut l.pending),
            0x300..0x380 => set(self, 0x300, true, |l| &mut l.active),
            0x380..0x400 => set(self, 0x380, false, |l| &mut l.active),
            0x400..0xC00 => {
                let (base, first) = if offset < 0x800 {
                    (0x400, offset - 0x400)
                } else {
                    (0x800, offset - 0x800)
                };
                for i in 0..4 {
                    if let Some(line) = self.lines.get_mut((first + i) as usize) {
                        let byte = (value >> (8 * i)) as u8;
                        *if base == 0x400 {
                            &mut line.priority
                        } else {
                            &mut line.targets
                        } = byte;
                    }
                }
            }
            0xC00..0xD00 => {
                let first = ((offset - 0xC00) * 4) as usize;
                for i in 0..16 {
                    if let Some(line) = self.lines.get_mut(first + i) {
                        line.config = (value >> (2 * i)) as u8 & 0b11;
                    }
                }
            }
            _ => {
                self.other.insert(offset, value);
            }
        }
    }
}

/// A partition: its view and the SPIs it owns (the kernel's interrupt table's answer).
#[derive(Clone)]
struct Owner {
    view: DistributorView,
    owned: IntidSet,
}

impl Owner {
    fn access(&mut self, access: Access, gicd: &mut dyn DistributorRegisters) -> Outcome {
        let owned = self.owned;
        self.view
            .access(access, &|intid| owned.contains(intid), gicd)
    }

    fn owned(&self) -> &IntidSet {
        &self.owned
    }
}

fn owning(version: GicVersion, intids: &[u32]) -> Owner {
    let mut owned = IntidSet::EMPTY;
    for &intid in intids {
        owned.insert(intid);
    }
    Owner {
        view: DistributorView::new(version, 1),
        owned,
    }
}

fn read(offset: u32, width: Width) -> Access {
    Access {
        offset,
        width,
        write: None,
    }
}

fn write(offset: u32, width: Width, value: u64) -> Access {
    Access {
        offset,
        width,
        write: Some(value),
    }
}

#[test]
fn a_partition_configures_its_own_interrupts_in_the_real_distributor() {
    let mut gicd = Model::new();
    let mut view = owning(GicVersion::V3, &[40, 48]);
    let owned = 1 << 8 | 1 << 16; // INTIDs 40 and 48 in GICD_ISENABLER1
    let outcome = view.access(write(0x104, Width::Word, 0xffff_ffff), &mut gicd);
    assert_eq!(
        outcome,
        Outcome::Written {
            offset: 0x104,
            mask: owned
        }
    );
    let enabled: Vec<u32> = (0..LINES)
        .filter(|&i| gicd.lines[i as usize].enabled)
        .collect();
    assert_eq!(enabled, [40, 48]);
    gicd.lines[41].enabled = true; // another partition's, in the same register
    assert_eq!(
        view.access(read(0x104, Width::Word), &mut gicd),
        Outcome::Read(owned.into())
    );
    view.access(write(0x184, Width::Word, 0xffff_ffff), &mut gicd);
    assert!(!gicd.lines[40].enabled && !gicd.lines[48].enabled && gicd.lines[41].enabled);

    // Priorities: a byte, then a word over 40..=43 of which only 40 is its own.
    view.access(write(0x400 + 48, Width::Byte, 0x80), &mut gicd);
    gicd.lines[41].priority = 0x10;
    view.access(write(0x428, Width::Word, 0x4433_2211), &mut gicd);
    assert_eq!(
        [
            gicd.lines[40].priority,
            gicd.lines[41].priority,
            gicd.lines[48].priority
        ],
        [0x11, 0x10, 0x80]
    );
    assert_eq!(
        view.access(read(0x428, Width::Word), &mut gicd),
        Outcome::Read(0x11)
    );
    assert_eq!(
        view.access(read(0x429, Width::Byte), &mut gicd),
        Outcome::Read(0)
    );
    assert_eq!(
        view.access(read(0x430, Width::Byte), &mut gicd),
        Outcome::Read(0x80)
    );

    // Edge or level: GICD_ICFGR2 holds INTIDs 32..=47, two bits each.
    view.access(write(0xC08, Width::Word, 0xffff_ffff), &mut gicd);
    let configs: Vec<u32> = (32..64)
        .filter(|&i| gicd.lines[i as usize].config != 0)
        .collect();
    assert_eq!(configs, [40]);

    // Pending and active, set and cleared.
    view.access(write(0x204, Width::Word, 1 << 8), &mut gicd);
    view.access(write(0x304, Width::Word, 1 << 16), &mut gicd);
    assert!(gicd.lines[40].pending && gicd.lines[48].active);
    view.access(write(0x284, Width::Word, u64::MAX), &mut gicd);
    view.access(write(0x384, Width::Word, u64::MAX), &mut gicd);
    assert!(!gicd.lines[40].pending && !gicd.lines[48].active);
    assert!(gicd.other.is_empty(), "{:?}", gicd.other);
}

#[test]
fn groups_routing_and_banked_interrupts_stay_the_kernels() {
    let mut gicd = Model::new();
    let mut view = owning(GicVersion::V3, &[40]);
    gicd.lines[40].group = true;
    assert_eq!(
        view.access(read(0x084, Width::Word), &mut gicd),
        Outcome::Read(1 << 8)
    );
    assert_eq!(
        view.access(write(0x084, Width::Word, 0), &mut gicd),
        Outcome::Ignored
    );
    assert!(gicd.lines[40].group);
    // GICD_IROUTER<40>: its vCPU 0, whatever it writes.
    assert_eq!(
        view.access(write(0x6140, Width::Double, 0x100), &mut gicd),
        Outcome::Ignored
    );
    assert_eq!(
        view.access(read(0x6140, Width::Double), &mut gicd),
        Outcome::Read(0)
    );
    // The virtual timer's PPI and the SGIs: read as zero, writes ignored.
    assert_eq!(
        view.access(write(0x100, Width::Word, 1 << 27), &mut gicd),
        Outcome::Ignored
    );
    assert!(!gicd.lines[27].enabled);
    assert_eq!(
        view.access(write(0x41b, Width::Byte, 0), &mut gicd),
        Outcome::Ignored
    );
    assert!(gicd.other.is_empty());
}

#[test]
fn the_partitions_view_of_ctlr_typer_and_identification() {
    let mut gicd = Model::new();
    let mut view = owning(GicVersion::V3, &[40]);
    assert_eq!(
        view.access(read(0, Width::Word), &mut gicd),
        Outcome::Read(0x10)
    );
    assert_eq!(
        view.access(write(0, Width::Word, u64::MAX), &mut gicd),
        Outcome::ViewChanged
    );
    assert_eq!(
        view.access(read(0, Width::Word), &mut gicd),
        Outcome::Read(0x13)
    );
    // ITLinesNumber and IDbits kept; one CPU; no LPIs, MBIS, ESPI or security extension.
    assert_eq!(
        view.access(read(4, Width::Word), &mut gicd),
        Outcome::Read(8 | 15 << 19)
    );
    assert_eq!(
        view.access(read(0xFFE8, Width::Word), &mut gicd),
        Outcome::Read(0x4B00_FFE8),
        "GICD_PIDR2 is the hardware's"
    );
    let mut v2 = owning(GicVersion::V2, &[40]);
    assert_eq!(v2.access(read(0, Width::Word), &mut gicd), Outcome::Read(0));
    assert_eq!(v2.access(read(4, Width::Word), &mut gicd), Outcome::Read(8));
    assert_eq!(
        v2.access(read(0xFE8, Width::Word), &mut gicd),
        Outcome::Read(0x4B00_0FE8)
    );
    assert!(
        gicd.other.is_empty(),
        "the real GICD_CTLR was never written"
    );
}

#[test]
fn gicv2_targets_and_sgis_are_in_terms_of_its_vcpus() {
    let mut gicd = Model::new();
    let mut view = owning(GicVersion::V2, &[40]);
    // SGIs and PPIs: the reading vCPU's mask (Linux finds its CPU interface this way).
    assert_eq!(
        view.access(read(0x800, Width::Word), &mut gicd),
        Outcome::Read(0x0101_0101)
    );
    assert_eq!(
        view.access(read(0x828, Width::Word), &mut gicd),
        Outcome::Read(0x01)
    );
    assert_eq!(
        view.access(read(0x829, Width::Byte), &mut gicd),
        Outcome::Read(0)
    );
    assert_eq!(
        view.access(write(0x828, Width::Word, 0xff), &mut gicd),
        Outcome::Ignored
    );
    assert_eq!(gicd.lines[40].targets, 0);
    let sgi = |value| {
        view.clone()
            .access(write(0xF00, Width::Word, value), &mut Model::new())
    };
    assert_eq!(
        sgi(0x00ff_0003),
        Outcome::Sgi {
            id: 3,
            targets: SgiTargets::List(1)
        }
    );
    assert_eq!(
        sgi(0x0100_0005),
        Outcome::Sgi {
            id: 5,
            targets: SgiTargets::Others
        }
    );
    assert_eq!(
        sgi(0x0200_0001),
        Outcome::Sgi {
            id: 1,
            targets: SgiTargets::Sender
        }
    );
    assert_eq!(sgi(0x0300_0001), Outcome::Ignored);
    // GICv3 has no ITARGETSR (affinity routing) and no GICD_SGIR.
    let mut v3 = owning(GicVersion::V3, &[40]);
    assert_eq!(
        v3.access(read(0x828, Width::Word), &mut gicd),
        Outcome::Read(0)
    );
    assert_eq!(
        v3.access(write(0xF00, Width::Word, 1), &mut gicd),
        Outcome::Ignored
    );
}

#[test]
fn accesses_of_the_wrong_width_or_alignment_never_reach_the_hardware() {
    let mut gicd = Model::new();
    let mut view = owning(GicVersion::V3, &[40]);
    let refused = [
        write(0x104, Width::Half, 0xffff),
        write(0x105, Width::Byte, 0xff),
        write(0x106, Width::Word, u64::MAX),
        write(0x428, Width::Double, u64::MAX),
        write(0xC08, Width::Byte, 0xff),
        write(0x1_0000, Width::Word, 1),
        write(0x6144, Width::Double, 1),
    ];
    for access in refused {
        assert_eq!(
            view.access(access, &mut gicd),
            Outcome::Ignored,
            "{access:?}"
        );
        let read_back = Access {
            write: None,
            ..access
        };
        assert_eq!(
            view.access(read_back, &mut gicd),
            Outcome::Read(0),
            "{access:?}"
        );
    }
    assert_eq!(gicd, Model::new());
}

/// Three partitions with disjoint SPIs out of 32..LINES.
fn three_partitions() -> impl Strategy<Value = [Vec<u32>; 3]> {
    proptest::collection::vec(0usize..4, (LINES - 32) as usize).prop_map(|owners| {
        let mut sets = [Vec::new(), Vec::new(), Vec::new()];
        for (i, owner) in owners.into_iter().enumerate() {
            if owner < 3 {
                sets[owner].push(32 + i as u32);
            }
        }
        sets
    })
}

/// Accesses anywhere in the frame, mostly in the per-interrupt registers.
fn any_access(version: GicVersion) -> impl Strategy<Value = Access> {
    let offset = prop_oneof![
        0u32..0xD00,
        0x6000u32..0x8000,
        0xF00u32..0xF30,
        0u32..version.frame_size() + 0x100,
    ];
    let width = prop_oneof![
        Just(Width::Byte),
        Just(Width::Half),
        Just(Width::Word),
        Just(Width::Double)
    ];
    (offset, width, proptest::option::of(any::<u64>())).prop_map(|(offset, width, write)| Access {
        offset,
        width,
        write,
    })
}

/// `gicd` with every interrupt not owned by `keep` given other state.
fn scrambled(gicd: &Model, keep: &IntidSet, seed: u8) -> Model {
    let mut other = gicd.clone();
    for (intid, line) in other.lines.iter_mut().enumerate() {
        if !keep.contains(intid as u32) {
            let s = seed.wrapping_mul(31).wrapping_add(intid as u8);
            *line = Line {
                group: s & 1 != 0,
                enabled: s & 2 != 0,
                pending: s & 4 != 0,
                active: s & 8 != 0,
                priority: s,
                targets: s.rotate_left(3),
                config: s & 3,
            };
        }
    }
    other
}

fn check_isolation(version: GicVersion, sets: &[Vec<u32>; 3], steps: &[(usize, Access)]) {
    let mut views: Vec<Owner> = sets.iter().map(|s| owning(version, s)).collect();
    let mut gicd = Model::new();
    for (step, &(actor, access)) in steps.iter().enumerate() {
        let before = gicd.clone();
        // What the actor reads must not depend on anyone else's interrupts.
        let mut twin = scrambled(&gicd, views[actor].owned(), step as u8);
        let mut twin_view = views[actor].clone();
        let outcome = views[actor].access(access, &mut gicd);
        let twin_outcome = twin_view.access(access, &mut twin);
        assert_eq!(
            outcome, twin_outcome,
            "partition {actor} observed others: {access:?}"
        );
        // Nothing but the actor's own interrupts changed.
        for intid in 0..LINES {
            if !views[actor].owned().contains(intid) {
                assert_eq!(
                    gicd.lines[intid as usize], before.lines[intid as usize],
                    "partition {actor} changed INTID {intid} with {access:?}"
                );
            }
        }
        assert_eq!(
            gicd.other, before.other,
            "{access:?} reached another register"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn no_partition_changes_or_observes_anothers_interrupts(
        sets in three_partitions(),
        v3 in proptest::collection::vec((0usize..3, any_access(GicVersion::V3)), 1..200),
        v2 in proptest::collection::vec((0usize..3, any_access(GicVersion::V2)), 1..200),
    ) {
        check_isolation(GicVersion::V3, &sets, &v3);
        check_isolation(GicVersion::V2, &sets, &v2);
    }

    #[test]
    fn a_hostile_partition_sweeping_every_register_changes_nothing_of_others(
        sets in three_partitions(),
        value in any::<u64>(),
    ) {
        // Partition 2 writes `value` then reads, at every offset and width of the frame.
        for version in [GicVersion::V2, GicVersion::V3] {
            let steps: Vec<(usize, Access)> = (0..version.frame_size())
                .step_by(4)
                .flat_map(|offset| {
                    [Width::Byte, Width::Word, Width::Double].into_iter().flat_map(move |width| {
                        [(2, write(offset, width, value)), (2, read(offset, width))]
                    })
                })
                .collect();
            check_isolation(version, &sets, &steps);
        }
    }
}
