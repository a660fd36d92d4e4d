//! `[system] poison_free_ram`: the kernel fills every free frame with the poison byte before
//! partitions load, and every frame a partition gets (boot memory, allocations, allocation
//! by name) is still scrubbed.

use super::*;
use exo_abi::package::{POISON_BYTE, SYSTEM_FLAG_POISON_FREE_RAM};

/// [`build`] with system `flags`: one partition `p` with a guarantee of 64 frames.
fn build_with_flags(frames: usize, flags: u32) -> K {
    let (mut kernel, bytes) = unloaded_with_flags(frames, &[Config::new("p", 64, 0)], flags);
    let package = Package::parse(&bytes).unwrap();
    kernel.load(&package).unwrap();
    kernel.self_check().unwrap();
    kernel
}

fn poisoned(k: &K, frame: PhysAddr) -> bool {
    k.platform.frame(frame).iter().all(|&b| b == POISON_BYTE)
}

#[test]
fn free_ram_is_poisoned_and_what_partitions_get_is_zero() {
    let mut k = build_with_flags(256, SYSTEM_FLAG_POISON_FREE_RAM);
    let free_frames: Vec<PhysAddr> = (0..256u64)
        .map(|i| PhysAddr::new(RAM_BASE + i * PAGE_SIZE))
        .filter(|&f| k.frames.owner(f) == Some(Owner::Free))
        .collect();
    assert!(!free_frames.is_empty());
    assert!(
        free_frames.iter().all(|&f| poisoned(&k, f)),
        "every free frame poisoned"
    );
    assert!(
        is_zero(&k, PhysAddr::new(RAM_BASE)),
        "the kernel's own frames untouched"
    );
    // Boot memory past the program is zero.
    let owner = owner_of(&k, 0);
    let boot: Vec<PhysAddr> = (0..256u64)
        .map(|i| PhysAddr::new(RAM_BASE + i * PAGE_SIZE))
        .filter(|&f| k.frames.owner(f) == Some(owner))
        .collect();
    assert!(boot.iter().all(|&f| !poisoned(&k, f)));
    // Allocated frames, and a frame allocated by name, are zero.
    for frame in alloc(&mut k, 0, 8) {
        assert!(is_zero(&k, frame), "{frame} allocated unscrubbed");
    }
    let named = some_free(&k);
    assert!(poisoned(&k, named));
    assert_eq!(
        result(&mut k, 0, EXO_FRAME_ALLOC_AT, &[named.raw()]),
        Ok(named.raw())
    );
    assert!(is_zero(&k, named), "{named} allocated by name unscrubbed");
}

#[test]
fn without_the_flag_free_ram_is_left_alone() {
    let k = build_with_flags(256, 0);
    assert!(is_zero(&k, some_free(&k)));
}
