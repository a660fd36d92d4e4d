//! Kernel signals as virtual interrupts, on both interrupt controllers QEMU `virt` offers: a
//! partition that enables the `MESSAGE` signal gets messages as interrupt 10 (taken with
//! `EXO_RECEIVE`), which wake it from `EXO_WAIT_EVENT`; one that enables the `REVOCATION`
//! and `REPOSSESSION` signals gets revocation news as interrupts 8 and 9, which its library
//! OS acts on at the next safe point.

use exo_system_tests::{RevocationOutcome, boot_on, test_config};

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

/// Boots `mem-signals.toml` on `board`: the borrower that polls from its main loop meets its
/// request by interrupt; the one that lets the deadline pass is aborted and catches up on
/// the repossessions at its first poll. Neither takes an upcall.
fn revocation_arrives_as_signals(board: &str) {
    let booted = boot_on(&test_config("mem-signals.toml"), board);
    booted.check(booted.outcome.panic.is_none(), "the kernel panicked");
    booted.assert_success();
    booted.assert_ok("irqborrower");
    booted.assert_ok("irqborrower-late");
    booted.assert_ok("claimant");
    let met = booted.assert_revocation("irqborrower", RevocationOutcome::Met);
    booted.check(
        met.released > 0 && met.repossessed == 0,
        &format!("met by releasing, nothing repossessed: {met:?}"),
    );
    booted.check(
        booted
            .revocations_of("irqborrower")
            .iter()
            .all(|r| r.outcome == RevocationOutcome::Met),
        "every request of the polling borrower was met",
    );
    let aborted = booted.assert_revocation("irqborrower-late", RevocationOutcome::Aborted);
    booted.check(
        aborted.released == 0 && aborted.repossessed == aborted.asked,
        &format!("the kernel took all the late borrower owed: {aborted:?}"),
    );
    booted.assert_partition_printed("irqborrower", "revocation requests by interrupt");
    booted.assert_partition_printed("irqborrower-late", "repossessions by interrupt");
    booted.assert_partition_printed("claimant", "all zero");
}

#[test]
fn gicv3_revocation_arrives_as_signals_and_is_answered_at_a_safe_point() {
    revocation_arrives_as_signals("qemu-virt");
}

#[test]
fn gicv2_revocation_arrives_as_signals_and_is_answered_at_a_safe_point() {
    revocation_arrives_as_signals("qemu-virt-gicv2");
}
