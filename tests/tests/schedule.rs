//! CPU time as a secure binding: core 0's time-slice vector gives partitions shares of the
//! CPU by slot, and `EXO_DONATE` hands the rest of a slot to another partition. Booted under
//! QEMU `-icount` (one nanosecond per instruction), so the shares are the same on every run;
//! on both interrupt controllers.

use exo_system_tests::{Boot, Booted, test_config};

/// Boots `config` on `board` in deterministic virtual time.
fn boot_icount(config: &str, board: &str) -> Booted {
    let booted = Boot::new(&test_config(config))
        .board(board)
        .virtual_time()
        .run();
    booted.assert_success();
    booted
}

/// How often partition `name` spun (its `spun <n> times` line).
fn spins(booted: &Booted, name: &str) -> f64 {
    booted
        .outcome
        .partition_lines(name)
        .find_map(|line| {
            line.strip_prefix("spun ")?
                .strip_suffix(" times")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| booted.fail(&format!("{name} printed no `spun <n> times` line")))
}

/// How often partition `name` lost the CPU (its `lost the CPU <n> times` line).
fn losses(booted: &Booted, name: &str) -> u64 {
    booted
        .outcome
        .partition_lines(name)
        .find_map(|line| {
            line.strip_prefix("lost the CPU ")?
                .strip_suffix(" times")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| booted.fail(&format!("{name} printed no `lost the CPU` line")))
}

/// `heavy` (two slots) against `light` (one slot): about 2:1.
fn vector_shares_the_cpu_by_slot(board: &str) {
    let booted = boot_icount("schedule.toml", board);
    let ratio = spins(&booted, "heavy") / spins(&booted, "light");
    booted.check(
        (1.7..2.4).contains(&ratio),
        &format!("heavy/light = {ratio:.2}, expected about 2 (two slots to one)"),
    );
}

/// One slot each, but `donor` donates its slots to `light`: light/heavy about 2:1.
fn donation_gives_the_slot_away(board: &str) {
    let booted = boot_icount("donate.toml", board);
    let ratio = spins(&booted, "light") / spins(&booted, "heavy");
    booted.check(
        (1.7..2.4).contains(&ratio),
        &format!("light/heavy = {ratio:.2}, expected about 2 (its own slot and the donor's)"),
    );
    booted.assert_partition_printed("donor", "donated");
}

#[test]
fn gicv3_time_slice_vector_shares_the_cpu_by_slot() {
    vector_shares_the_cpu_by_slot("qemu-virt");
}

#[test]
fn gicv2_time_slice_vector_shares_the_cpu_by_slot() {
    vector_shares_the_cpu_by_slot("qemu-virt-gicv2");
}

#[test]
fn gicv3_donation_gives_the_rest_of_a_slot_away() {
    donation_gives_the_slot_away("qemu-virt");
}

#[test]
fn gicv2_donation_gives_the_rest_of_a_slot_away() {
    donation_gives_the_slot_away("qemu-virt-gicv2");
}

/// `[system] slice = "2ms"`: a round of the three-slot vector takes 6 ms, so over half a
/// second each slicer loses the CPU about 83 times (about 17 with the default 10 ms); the
/// default configuration is the control.
#[test]
fn the_time_slice_length_is_the_configurations() {
    let booted = boot_icount("schedule-slice.toml", "qemu-virt");
    booted.assert_line_with(&["time slices of 2 ms"]);
    for name in ["heavy", "light"] {
        let lost = losses(&booted, name);
        booted.check(
            (70..=95).contains(&lost),
            &format!("{name} lost the CPU {lost} times, expected about 83 with 2 ms slices"),
        );
    }
    let control = boot_icount("schedule.toml", "qemu-virt");
    let lost = losses(&control, "light");
    control.check(
        (12..=22).contains(&lost),
        &format!("light lost the CPU {lost} times, expected about 17 with 10 ms slices"),
    );
}
