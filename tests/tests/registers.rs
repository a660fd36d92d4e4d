//! Register state never leaks from one partition to the next, on either GIC version: the
//! world switch saves and restores general, FP/SIMD and EL0/EL1 thread registers; what the
//! core shares and the kernel does not switch (the performance monitors) is out of reach.
//! FP/SIMD registers are switched lazily (loaded on a partition's first use after a switch,
//! with `CPTR_EL2.TFP` trapping until then): the checker reads every `q` register right
//! after switches from the leaker, so a partition running untrapped on another's registers,
//! or a first-use trap that loaded the wrong ones, fails here.

use exo_system_tests::{boot_on, test_config};

fn no_register_leaks(board: &str) {
    let booted = boot_on(&test_config("registers.toml"), board);
    booted.assert_success();
    booted.assert_partition_printed("checker", "no register of another partition leaked");
    booted.assert_partition_printed("leaker", "until the checker finished");
    // The positive control: the switches the checker watched really followed time slices
    // of the leaker, spent with the pattern loaded.
    let after_leaker = booted.outcome.partition_lines("checker").find_map(|l| {
        l.split("switches; ")
            .nth(1)?
            .split(' ')
            .next()?
            .parse::<u32>()
            .ok()
    });
    booted.check(
        after_leaker.is_some_and(|n| n >= 180),
        &format!("only {after_leaker:?} of 200 switches followed a time slice of the leaker"),
    );
}

#[test]
fn no_register_leaks_between_partitions_on_gicv3() {
    no_register_leaks("qemu-virt");
}

#[test]
fn no_register_leaks_between_partitions_on_gicv2() {
    no_register_leaks("qemu-virt-gicv2");
}

/// The performance monitors are shared by the core, not switched: a partition reading the
/// cycle counter is stopped, the other runs on.
fn shared_counters_are_out_of_reach(board: &str) {
    let booted = boot_on(&test_config("pmu.toml"), board);
    booted.assert_failed_with("pmuprobe", "unexpected trap: system register access");
    booted.assert_ok("hello");
    booted.check(
        !booted
            .outcome
            .partition_lines("pmuprobe")
            .any(|line| line.contains("read the shared cycle counter")),
        "pmuprobe read the cycle counter: the kernel did not trap it",
    );
}

#[test]
fn the_cycle_counter_is_out_of_reach_on_gicv3() {
    shared_counters_are_out_of_reach("qemu-virt");
}

#[test]
fn the_cycle_counter_is_out_of_reach_on_gicv2() {
    shared_counters_are_out_of_reach("qemu-virt-gicv2");
}
