//! The null-call fast exit: the trap path answers `EXO_ABI_VERSION` without the kernel only
//! while [`Kernel::null_call_horizon`] says nothing is pending for the running partition.
//! Each test makes one thing pending and checks the fast exit is refused, then that the
//! full path clears it and the fast exit is allowed again.

use super::*;

/// Makes `p` the running partition as the trap path would on its way back to it (return
/// path included) and reads the horizon the trap path would publish.
fn resume(k: &mut K, p: usize) -> u64 {
    k.current = p;
    k.before_resume();
    k.null_call_horizon()
}

#[test]
fn a_quiet_partition_may_take_the_fast_exit_with_no_deadline_outstanding() {
    let mut k = two();
    assert_eq!(resume(&mut k, 0), u64::MAX);
    // What the fast exit answers is what the full call answers.
    assert_eq!(
        result(&mut k, 0, EXO_ABI_VERSION, &[]),
        Ok(u64::from(exo_abi::ABI_VERSION))
    );
}

#[test]
fn no_fast_exit_for_a_preempted_partition_until_it_calls_the_kernel() {
    let mut k = two();
    k.current = 0;
    assert_eq!(k.preempt(), Step::Switch(1));
    assert_eq!(k.preempt(), Step::Switch(0));
    // Preempted: its next call must clear the flag, or news arriving later would never be
    // told by upcall.
    assert_eq!(resume(&mut k, 0), 0);
    assert_eq!(call(&mut k, 0, EXO_ABI_VERSION, &[]).1, Step::Resume);
    assert_eq!(resume(&mut k, 0), u64::MAX);
}

#[test]
fn no_fast_exit_while_news_is_held() {
    let mut k = interrupt_kernel();
    assert_eq!(result(&mut k, 1, EXO_SEND, &[0, 0xFEED]), Ok(0));
    // Neither an upcall entry nor the signal: the message waits, and so does the fast exit.
    assert_eq!(resume(&mut k, 0), 0);
    assert_eq!(call(&mut k, 0, EXO_RECEIVE, &[]).0[..2], [1, 0xFEED]);
    assert_eq!(resume(&mut k, 0), u64::MAX);
}

#[test]
fn no_fast_exit_while_interrupts_wait_for_a_list_register() {
    let mut k = interrupt_kernel();
    k.current = 0;
    for intid in 40..48 {
        k.interrupt(intid);
    }
    // Four in list registers, four queued: the return path still has work.
    assert_eq!(resume(&mut k, 0), 0);
    assert!(!k.partition(0).unwrap().virq.queued.is_empty());
    k.platform.guest_handles_all();
    assert_eq!(resume(&mut k, 0), u64::MAX);
}

#[test]
fn the_fast_exit_ends_at_the_earliest_revocation_deadline() {
    let mut k = build(
        256,
        &[
            Config::new("borrower", 32, 400),
            Config::new("claimant", 64, 0),
            Config::new("bystander", 16, 0),
        ],
    );
    exhaust_and_claim(&mut k, 4, 10);
    let deadline = revocation_page(&k, 0).deadline;
    // The bystander has nothing pending, but past the borrower's deadline its next call
    // must run the abort protocol.
    assert_eq!(resume(&mut k, 2), deadline);
    k.platform.now.set(deadline);
    assert_eq!(call(&mut k, 2, EXO_ABI_VERSION, &[]).1, Step::Resume);
    assert_ne!(revocation_page(&k, 0).state, RequestState::Pending);
    assert_eq!(resume(&mut k, 2), u64::MAX);
}

#[test]
fn an_interrupt_for_the_running_partition_goes_straight_to_a_list_register() {
    let mut k = interrupt_kernel();
    k.current = 0;
    k.interrupt(40);
    // In a list register at once, with the hardware bit; nothing left for the return path.
    let injected = k.platform.guest_handles_all();
    assert_eq!(injected.iter().map(|i| i.intid).collect::<Vec<_>>(), [40]);
    assert!(injected[0].hardware);
    assert!(k.partition(0).unwrap().virq.queued.is_empty());
    // For a partition that does not run, it waits in the queue.
    k.current = 1;
    k.interrupt(41);
    assert!(k.partition(0).unwrap().virq.queued.contains(41));
    assert!(k.platform.guest_handles_all().is_empty());
    // And while something waits, the next one queues behind it (lowest INTID first).
    k.current = 0;
    k.interrupt(40);
    assert!(k.partition(0).unwrap().virq.queued.contains(40));
    k.before_resume();
    let order: Vec<u32> = k
        .platform
        .guest_handles_all()
        .iter()
        .map(|i| i.intid)
        .collect();
    assert_eq!(order, [40, 41]);
}
