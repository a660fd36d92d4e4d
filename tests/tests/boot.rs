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

/// A partition touching memory it does not own takes a stage-2 fault and is stopped; the
/// partition whose memory it aimed at is untouched.
#[test]
fn a_stage2_fault_stops_only_the_faulter() {
    let booted = boot(&test_config("fault.toml"));
    booted.assert_line_with(&["stage-2 fault", "faulter"]);
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
