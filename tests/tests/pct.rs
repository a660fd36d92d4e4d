//! Protected control transfer: synchronous calls that pass the CPU straight from caller to
//! callee and back, one-word asynchronous messages, and the `talks_to` rules, on both
//! interrupt controllers QEMU `virt` offers.

use exo_system_tests::{Booted, boot, boot_on, test_config};

/// Checks a boot of `tests/configs/pct.toml`: every call answered and checked, the message
/// delivered, the refusals right, and the server, left waiting, counted as idle (`ok`).
fn check_ping_pong(booted: &Booted) {
    booted.check(booted.outcome.panic.is_none(), "the kernel panicked");
    booted.assert_success();
    booted.assert_ok("ping");
    booted.assert_ok("pong");
    booted.assert_ok("bystander");
    booted.assert_partition_printed("ping", "10000 round trips, every reply checked");
    booted.assert_partition_printed(
        "ping",
        "calling bystander: Denied; calling myself: UnknownPartition",
    );
    // `ping` is partition 0; the word is `exo_guests::ping_pong::MESSAGE`.
    booted.assert_partition_printed("pong", "message 0x5eed0fbeef from 0");
}

#[test]
fn ping_pong_round_trips_are_all_answered() {
    check_ping_pong(&boot(&test_config("pct.toml")));
}

#[test]
fn ping_pong_on_gicv2() {
    check_ping_pong(&boot_on(&test_config("pct.toml"), "qemu-virt-gicv2"));
}
