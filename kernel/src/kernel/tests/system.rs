//! `[system]` settings the kernel obeys: the time-slice length, how a claim is shared
//! among borrowers (`revocation_share`) and which core a partition is pinned to.

use super::*;
use exo_abi::package::RevocationShare;

/// Claimant `c` (index 0, may claim 16 frames beyond its boot memory), then borrowers
/// `small` and `big`; `small` borrows 20 frames and `big` every other free frame. `c` then
/// claims 10 frames and blocks. Returns what each borrower was asked for.
fn claim_with(share: RevocationShare) -> [u64; 2] {
    let configs = [
        Config::new("c", BOOT_PAGES + 16, 0),
        Config::new("small", BOOT_PAGES, 400),
        Config::new("big", BOOT_PAGES, 400),
    ];
    let system = SystemSpec {
        share,
        ..SystemSpec::default()
    };
    let (mut k, bytes) = unloaded_with_system(512, &configs, &system);
    k.load(&Package::parse(&bytes).unwrap()).unwrap();
    alloc(&mut k, 1, 20);
    let rest = free(&k) as u64;
    assert!(rest > 40, "big borrows more than small");
    alloc(&mut k, 2, rest);
    let (_, step) = call(&mut k, 0, EXO_FRAME_ALLOC, &[10, BUFFER]);
    assert_ne!(step, Step::Resume, "the claimant blocks");
    k.self_check().unwrap();
    [1, 2].map(|p| revocation_page(&k, p).frames_requested)
}

#[test]
fn revocation_share_decides_which_borrowers_are_asked() {
    let [small, big] = claim_with(RevocationShare::Proportional);
    assert_eq!(small + big, 10);
    assert!(
        small >= 1 && big > small,
        "both asked, by size: {small} {big}"
    );
    assert_eq!(claim_with(RevocationShare::LargestFirst), [0, 10]);
    assert_eq!(claim_with(RevocationShare::PartitionOrder), [10, 0]);
}

#[test]
fn the_time_slice_is_the_packages() {
    let config = [Config::new("p", BOOT_PAGES, 0)];
    let (plain, _) = {
        let (mut k, bytes) = unloaded(256, &config);
        k.load(&Package::parse(&bytes).unwrap()).unwrap();
        (k.slice_ticks(), ())
    };
    assert_eq!(plain, ticks(10_000), "10 ms by default");
    let system = SystemSpec {
        slice_us: 250,
        ..SystemSpec::default()
    };
    let (mut k, bytes) = unloaded_with_system(256, &config, &system);
    k.load(&Package::parse(&bytes).unwrap()).unwrap();
    assert_eq!(k.slice_ticks(), ticks(250));
}

#[test]
fn a_partition_pinned_to_a_core_that_is_not_up_is_refused() {
    let configs = [
        Config::new("zero", BOOT_PAGES, 0),
        Config {
            core: 1,
            ..Config::new("one", BOOT_PAGES, 0)
        },
    ];
    let (_, bytes) = unloaded(256, &configs);
    let package = Package::parse(&bytes).unwrap();
    // A kernel whose only core up is the boot core (as a one-core machine's).
    let (storage, bindings) = (vec![0u16; 256].leak(), vec![0u64; 256].leak());
    let table = FrameTable::new(PhysAddr::new(RAM_BASE), storage);
    let mut k = Kernel::new(FakePlatform::new(256), table, bindings);
    let error = k.load(&package).unwrap_err();
    assert_eq!(
        error.named(&package).to_string(),
        "partition `one` (1) is pinned to core 1, which is not up (see the `cores:` line)"
    );
    k.set_core_up(CoreId::new(1).unwrap());
    k.load(&package).unwrap();
}
