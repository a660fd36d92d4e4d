//! The return path's shortcut (`Kernel::before_resume`: nothing to tell and nothing
//! queued, nothing to do) must never skip news, queued interrupts or the hold a
//! preemption puts on upcalls: each test makes one of them pending after quiet returns
//! and checks the next return acts on it.

use super::*;

/// Partition `p` resumes, as the trap path resumes it.
fn resume(k: &mut K, p: usize) {
    k.run_as(pid(p));
    k.before_resume();
}

#[test]
fn news_arriving_after_quiet_returns_is_told_on_the_next_one() {
    let mut k = talkers();
    assert_eq!(result(&mut k, 1, EXO_SET_UPCALL, &[0x4000_0100, 0]), Ok(0));
    resume(&mut k, 1);
    assert_eq!(
        result(&mut k, 1, EXO_ABI_VERSION, &[]),
        Ok(u64::from(exo_abi::ABI_VERSION))
    );
    resume(&mut k, 1);
    assert_ne!(
        k.regs_mut(pid(1)).unwrap().pc,
        0x4000_0100,
        "nothing to tell yet"
    );
    assert_eq!(result(&mut k, 0, EXO_SEND, &[1, 77]), Ok(0));
    resume(&mut k, 1);
    let b = k.regs_mut(pid(1)).unwrap();
    assert_eq!((b.pc, b.x[0], b.x[2]), (0x4000_0100, upcall::MESSAGE, 77));
}

#[test]
fn a_preempted_partition_is_told_its_news_after_its_next_call() {
    let mut k = talkers();
    assert_eq!(result(&mut k, 1, EXO_SET_UPCALL, &[0x4000_0100, 0]), Ok(0));
    k.run_as(pid(1));
    k.preempt();
    assert!(k.partition(pid(1)).unwrap().preempted);
    assert_eq!(result(&mut k, 0, EXO_SEND, &[1, 77]), Ok(0));
    // Preempted at an arbitrary instruction: no upcall yet, the news stays held.
    resume(&mut k, 1);
    assert_ne!(k.regs_mut(pid(1)).unwrap().pc, 0x4000_0100);
    assert!(k.partition(pid(1)).unwrap().any_news());
    // Its next call (any call, the null one too) ends the hold; its return tells.
    assert_eq!(
        result(&mut k, 1, EXO_ABI_VERSION, &[]),
        Ok(u64::from(exo_abi::ABI_VERSION))
    );
    resume(&mut k, 1);
    let b = k.regs_mut(pid(1)).unwrap();
    assert_eq!((b.pc, b.x[0], b.x[2]), (0x4000_0100, upcall::MESSAGE, 77));
}

#[test]
fn interrupts_queued_after_quiet_returns_reach_list_registers_on_the_next_one() {
    let mut k = interrupt_kernel();
    resume(&mut k, 0);
    assert!(!k.platform.underflow);
    for intid in 40..48 {
        k.interrupt(intid);
    }
    // Four went straight into list registers; the next return moves none (all full) but
    // asks for the maintenance interrupt, and after the guest handled them moves the rest.
    resume(&mut k, 0);
    assert!(k.platform.underflow);
    assert_eq!(k.platform.guest_handles_all().len(), FAKE_LIST_REGISTERS);
    resume(&mut k, 0);
    assert_eq!(
        k.platform.guest_handles_all().len(),
        8 - FAKE_LIST_REGISTERS
    );
    // Nothing left: a quiet return, which stops asking.
    resume(&mut k, 0);
    assert!(!k.platform.underflow);
    assert!(k.platform.guest_handles_all().is_empty());
}
