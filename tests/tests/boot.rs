//! Boot scenarios: each builds an image and boots it in a fresh QEMU with a timeout,
//! then checks the kernel's per-partition results. Boots are serialised by
//! [`exo_system_tests::boot`].

use exo_system_tests::{boot, test_config, workspace_root};

/// The default system: `hello` and `counter` both run to completion.
#[test]
fn default_system_runs_both_partitions() {
    let booted = boot(&workspace_root().join("guests/configs/default.toml"));
    booted.assert_success();
    booted.assert_ok("hello");
    booted.assert_ok("counter");
    booted.assert_printed("hello");
    booted.assert_printed("counter");
    // QEMU `virt` describes PSCI: the kernel says it powers off through it.
    booted.assert_line_with(&["power-off: PSCI SYSTEM_OFF through SMC"]);
}

/// A panicking partition fails with a reason; the other still finishes and the kernel
/// still powers off.
#[test]
fn a_panicking_partition_fails_alone() {
    let booted = boot(&test_config("panic.toml"));
    booted.assert_failed_with("panicker", "panicked");
    booted.assert_ok("hello");
    booted.check(booted.outcome.powered_off, "no power-off line");
    booted.check(booted.outcome.panic.is_none(), "the kernel panicked");
    booted.check(
        !booted.outcome.success(),
        "success() with a failed partition",
    );
}

/// A partition aiming at memory it does not own, by every route the ABI offers (allocate-at,
/// bind, grant and free on every RAM frame, stores and loads through the IPA it tried to
/// bind), is refused each time with the right error, and finally takes a stage-2 fault and
/// is stopped; the victim, whose frames were among those aimed at, finds its data intact.
#[test]
fn a_stage2_fault_stops_only_the_faulter() {
    let booted = boot(&test_config("fault.toml"));
    booted.assert_line_with(&["stage-2 fault", "faulter"]);
    let victim_frames: u64 = booted
        .outcome
        .partition_lines("victim")
        .filter_map(|l| {
            l.strip_prefix("frames ")?
                .split("..+")
                .nth(1)?
                .strip_suffix(" pages")?
                .parse::<u64>()
                .ok()
        })
        .sum();
    booted.check(
        victim_frames > 0,
        "the victim did not say where its frames are",
    );
    let refused = booted.outcome.partition_lines("faulter").find_map(|l| {
        l.strip_prefix("refused: ")?
            .split(' ')
            .next()?
            .parse::<u64>()
            .ok()
    });
    booted.check(
        refused.is_some_and(|n| n >= victim_frames),
        &format!(
            "the faulter was refused {refused:?} frames of other partitions, the victim holds \
             {victim_frames}"
        ),
    );
    booted.check(
        booted
            .outcome
            .partition_lines("victim")
            .any(|l| l == "data intact"),
        "no `[victim] data intact` line",
    );
    booted.assert_failed_with("faulter", "");
    booted.assert_ok("victim");
    booted.check(booted.outcome.powered_off, "no power-off line");
    booted.check(booted.outcome.panic.is_none(), "the kernel panicked");
}
