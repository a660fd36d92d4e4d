//! RAM in two banks with a hole between them (as on a Raspberry Pi 4): partitions get frames
//! of both banks and never of the hole, the self-check counts RAM only, and a system that
//! would fit only if the hole were RAM is refused.

use super::*;
use crate::mem::frame_table::PartitionId;

/// Frames 128..384 of the fake RAM are a hole between two banks of 128 frames.
const HOLE: core::ops::Range<u64> = RAM_BASE + 128 * PAGE_SIZE..RAM_BASE + 384 * PAGE_SIZE;

/// [`unloaded`] over 512 frames, [`HOLE`] excluded before anything loads.
fn two_banks(configs: &[Config]) -> (K, Vec<u8>) {
    let (mut kernel, bytes) = unloaded(512, configs);
    kernel
        .frames
        .exclude(PhysAddr::new(HOLE.start), PhysAddr::new(HOLE.end))
        .unwrap();
    (kernel, bytes)
}

fn held(k: &K, partition: u16) -> Vec<u64> {
    let owner = Owner::Partition(PartitionId::new(partition).unwrap());
    k.frames.owned_by(owner).map(|f| f.raw()).collect()
}

#[test]
fn partitions_get_both_banks_never_the_hole_and_the_self_check_passes() {
    let big = |name| Config {
        memory: 80,
        ..Config::new(name, 80, 0)
    };
    let (mut k, bytes) = two_banks(&[big("a"), big("b")]);
    k.load(&Package::parse(&bytes).unwrap()).unwrap();
    // 256 frames of RAM: the self-check counts those, not the 512 the table spans.
    assert_eq!(k.self_check(), Ok(256));
    let all: Vec<u64> = held(&k, 0).into_iter().chain(held(&k, 1)).collect();
    assert!(all.iter().all(|f| !HOLE.contains(f)), "a frame in the hole");
    assert!(
        all.iter().any(|f| *f < HOLE.start),
        "none of the first bank"
    );
    assert!(
        all.iter().any(|f| *f >= HOLE.end),
        "none of the second bank"
    );
    // Allocating what is left never reaches the hole either.
    while let Ok(frame) = k.frames.alloc(Owner::Kernel) {
        assert!(!HOLE.contains(&frame.raw()), "{frame} is in the hole");
    }
    assert_eq!(k.frames.count(Owner::Free), 0);
}

#[test]
fn a_system_that_fits_only_if_the_hole_were_ram_is_refused() {
    let huge = Config {
        memory: 300,
        ..Config::new("huge", 300, 0)
    };
    let (mut k, bytes) = two_banks(&[huge]);
    let error = k.load(&Package::parse(&bytes).unwrap()).unwrap_err();
    assert!(matches!(error, LoadError::OutOfMemory { .. }), "{error:?}");
}
