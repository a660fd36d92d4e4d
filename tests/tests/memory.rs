//! Memory scenarios: exposed allocation, visible revocation, the abort protocol, grants,
//! demand paging and a hostile partition. Each boots a `tests/configs/mem-*.toml` system in
//! a fresh QEMU and checks both what the kernel reports (`exo: revocation ...`,
//! `exo: self-check ...`, partition results) and what the guests verified themselves.

use exo_system_tests::{Booted, RevocationOutcome, boot, test_config};

/// Boots `tests/configs/<name>` and checks the kernel shut down cleanly.
fn boot_memory(name: &str) -> Booted {
    let booted = boot(&test_config(name));
    booted.check(booted.outcome.panic.is_none(), "the kernel panicked");
    booted.check(booted.outcome.powered_off, "no power-off line");
    booted
}

/// A cooperative borrower gives back exactly what the claimant needs, before the deadline.
#[test]
fn a_cooperative_borrower_meets_the_revocation_request() {
    let booted = boot_memory("mem-cooperative.toml");
    booted.assert_success();
    booted.assert_ok("borrower");
    booted.assert_ok("claimant");
    let revocation = booted.assert_revocation("borrower", RevocationOutcome::Met);
    booted.check(
        revocation.released > 0 && revocation.repossessed == 0,
        &format!("met by releasing, nothing repossessed: {revocation:?}"),
    );
    booted.check(
        booted
            .revocations_of("borrower")
            .iter()
            .all(|r| r.outcome == RevocationOutcome::Met),
        "every request of the borrower was met",
    );
    booted.assert_partition_printed("borrower", "complied with");
    booted.assert_partition_printed("claimant", "all zero");
}

/// A borrower that gives back half is aborted; the kernel takes the rest and says which.
#[test]
fn a_partial_answer_is_completed_by_the_abort_protocol() {
    let booted = boot_memory("mem-partial.toml");
    booted.assert_ok("partial");
    booted.assert_ok("claimant");
    let revocation = booted.assert_revocation("partial", RevocationOutcome::Aborted);
    booted.check(
        revocation.released > 0 && revocation.repossessed > 0,
        &format!("released some and repossessed the rest: {revocation:?}"),
    );
    booted.check(
        revocation.released + revocation.repossessed >= revocation.asked,
        &format!("all that was asked came back: {revocation:?}"),
    );
    booted.assert_partition_printed("partial", "abort took the rest");
    booted.assert_partition_printed("claimant", "all zero");
}

/// A hoarder that gives nothing back loses exactly the frames asked for, is told which, and
/// finds their IPAs unbound.
#[test]
fn a_hoarder_is_aborted_and_told_exactly_what_it_lost() {
    let booted = boot_memory("mem-abort.toml");
    booted.assert_ok("hoarder");
    booted.assert_ok("claimant");
    let revocation = booted.assert_revocation("hoarder", RevocationOutcome::Aborted);
    booted.check(
        revocation.released == 0 && revocation.repossessed == revocation.asked,
        &format!("the kernel took all it asked for: {revocation:?}"),
    );
    booted.assert_partition_printed("hoarder", "repossession verified");
    booted.assert_partition_printed("claimant", "all zero");
}

/// Aborted more often than its `max_aborts`, a partition is terminated; the claimant still
/// gets its memory both times.
#[test]
fn repeated_aborts_terminate_the_partition() {
    let booted = boot_memory("mem-terminate.toml");
    booted.assert_failed_with("stubborn", "terminated");
    booted.assert_ok("claimant-twice");
    let aborted = booted
        .revocations_of("stubborn")
        .iter()
        .filter(|r| r.outcome == RevocationOutcome::Aborted)
        .count();
    booted.check(aborted >= 2, &format!("two aborts, got {aborted}"));
    booted.assert_partition_printed("claimant-twice", "claimed 511 frames again");
}

/// A read-only grant can be bound read-only only; withdrawing it breaks the binding and is
/// reported in the grantee's repossession vector.
#[test]
fn a_withdrawn_grant_faults_and_is_reported() {
    let booted = boot_memory("mem-share.toml");
    booted.assert_success();
    booted.assert_ok("sharer");
    booted.assert_ok("reader");
    booted.assert_partition_printed("reader", "message: hello from sharer");
    booted.assert_partition_printed("reader", "grant revoked and reported");
    booted.assert_partition_printed("sharer", "grant revoked");
}

/// A page lost to `EXO_UNBIND`, or to the abort protocol inside the partition's own call,
/// faults at the very next access, with no world switch in between to flush QEMU's TLB (a
/// stage-2 unmap without TLB invalidation fails here). Free RAM starts poisoned, so fresh
/// frames and claimed frames are zero only if the kernel scrubs on allocation.
#[test]
fn a_lost_page_faults_at_once_and_fresh_frames_are_scrubbed() {
    let booted = boot_memory("mem-stale.toml");
    booted.assert_success();
    booted.assert_ok("stale-hoarder");
    booted.assert_ok("claimant");
    booted.assert_line_with(&["free RAM poisoned", "0xa5"]);
    booted.assert_revocation("stale-hoarder", RevocationOutcome::Aborted);
    booted.assert_partition_printed(
        "stale-hoarder",
        "fresh frames zero; each faults right after",
    );
    booted.assert_partition_printed("stale-hoarder", "fault right after the call that took them");
    booted.assert_partition_printed("claimant", "all zero");
}

/// Faults on unbound IPAs are reflected to the library OS, which pages memory in.
#[test]
fn the_library_os_pages_on_demand() {
    let booted = boot_memory("mem-paging.toml");
    booted.assert_success();
    booted.assert_ok("pager");
    booted.assert_partition_printed("pager", "paged in 64 pages on demand");
}

/// 100 000 random hypercalls and accesses break no kernel invariant and no neighbour's data;
/// every random access faults, and no frame the neighbour holds, bound or not, can be bound.
#[test]
fn a_hostile_partition_breaks_nothing() {
    hostile_breaks_nothing(boot_memory("mem-hostile.toml"));
}

/// The same on GICv2, where its interrupt calls drive a GIC-400-like distributor and its
/// list registers are `GICH`'s.
#[test]
fn a_hostile_partition_breaks_nothing_on_gicv2() {
    let booted = exo_system_tests::boot_on(&test_config("mem-hostile.toml"), "qemu-virt-gicv2");
    booted.check(booted.outcome.panic.is_none(), "the kernel panicked");
    hostile_breaks_nothing(booted);
}

fn hostile_breaks_nothing(booted: Booted) {
    booted.assert_success();
    booted.assert_ok("hostile");
    booted.assert_ok("keeper");
    booted.assert_self_check_ok();
    booted.assert_partition_printed("hostile", "kernel self-check passed");
    booted.assert_partition_printed("keeper", "16 frames held unbound");
    booted.assert_partition_printed("keeper", "data intact");
    // Every random access faulted (the guest stops at the first that does not), and the
    // sweep met every frame the keeper holds: 4 MiB of boot memory, 64 + 1 bound frames,
    // 16 unbound.
    let refused = booted.outcome.partition_lines("hostile").find_map(|l| {
        l.strip_prefix("EXO_BIND refused for all ")?
            .split(' ')
            .next()?
            .parse::<u64>()
            .ok()
    });
    booted.check(
        refused.is_some_and(|n| n >= 1024 + 65 + 16),
        &format!("EXO_BIND refused for {refused:?} of the keeper's 1105 frames"),
    );
}

/// Two colluding partitions: `accomplice` binds a frame granted by `hostile` at the IPA
/// where `hostile` binds it, then unbinds it. `hostile` must not be able to free the frame
/// while it still maps it (else the next allocation would give another partition memory
/// `hostile` reads and writes); the self-check passes and `keeper` is untouched.
#[test]
fn colluding_partitions_cannot_free_a_frame_still_mapped() {
    let booted = boot_memory("mem-collude.toml");
    booted.assert_success();
    booted.assert_partition_printed("accomplice", "at the holder's IPA");
    booted.assert_partition_printed("hostile", "freeing the frame I still map: refused (Busy)");
    booted.assert_partition_printed("hostile", "kernel self-check passed");
    booted.assert_self_check_ok();
    booted.assert_partition_printed("keeper", "data intact");
}

/// The demo `scripts/run guests/configs/revocation-demo.toml`: one claim is shared between
/// a borrower that complies and a hoarder that does not, so one run shows both outcomes.
#[test]
fn the_revocation_demo_shows_cooperation_and_abort() {
    let booted =
        boot(&exo_system_tests::workspace_root().join("guests/configs/revocation-demo.toml"));
    booted.assert_success();
    let met = booted.assert_revocation("borrower", RevocationOutcome::Met);
    let aborted = booted.assert_revocation("hoarder", RevocationOutcome::Aborted);
    booted.check(
        met.released == met.asked && aborted.repossessed == aborted.asked,
        &format!("borrower gave all it was asked, the kernel took all the hoarder owed: {met:?} {aborted:?}"),
    );
    booted.assert_partition_printed("hoarder", "repossession verified");
    booted.assert_partition_printed("claimant", "all zero");
}

/// QEMU virt with 8 GiB: one bank from 1 GiB to 9 GiB. The kernel maps and manages all of it;
/// a partition loaded after 3 GiB of another gets frames above 4 GiB (physical addresses
/// wider than 32 bits in its stage 2), and the system runs to its end.
#[test]
fn frames_above_4gib_reach_a_partition() {
    let booted = boot_memory("ram-8gib.toml");
    booted.assert_success();
    booted.assert_ok("ballast");
    booted.assert_ok("hello");
    booted.assert_line_with(&["RAM 0x40000000..0x240000000 (8192 MiB)"]);
    booted.assert_line_with(&["frames: 2097152 total"]);
    let frames = booted.normal_frames_of("hello");
    booted.check(
        !frames.is_empty() && frames.iter().all(|pa| *pa >= 1 << 32),
        &format!("hello's frames are not all above 4 GiB: {frames:#x?}"),
    );
}
