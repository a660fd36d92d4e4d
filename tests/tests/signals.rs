//! Kernel signals as virtual interrupts: a partition that enables the `MESSAGE` signal gets
//! messages as interrupt 10 (taken with `EXO_RECEIVE`), which wake it from
//! `EXO_WAIT_EVENT`, on both interrupt controllers QEMU `virt` offers.

use exo_system_tests::{boot_on, test_config};

/// Boots `signals.toml` on `board` and checks every message came as the signal, in order.
fn messages_arrive_as_the_message_signal(board: &str) {
    let booted = boot_on(&test_config("signals.toml"), board);
    booted.assert_success();
    booted.assert_ok("listener");
    booted.assert_ok("messenger");
    booted.assert_partition_printed(
        "listener",
        "20 messages received in order as the MESSAGE signal",
    );
    booted.assert_partition_printed("listener", "none as an upcall");
}

#[test]
fn gicv3_messages_arrive_as_the_message_signal() {
    messages_arrive_as_the_message_signal("qemu-virt");
}

#[test]
fn gicv2_messages_arrive_as_the_message_signal() {
    messages_arrive_as_the_message_signal("qemu-virt-gicv2");
}
