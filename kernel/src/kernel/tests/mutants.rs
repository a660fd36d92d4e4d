//! Host tests written against mutants that survived the rest of the suite (`cargo mutants`,
//! see docs/testing.md): each pins a behaviour of the kernel's interrupt and event code that
//! no other test checked.

use super::*;

/// The virtual timer is always enabled in the GIC: enabling it succeeds, disabling it is
/// not supported, and it can be neither raised nor retargeted; a signal cannot be
/// retargeted either.
#[test]
fn the_virtual_timer_can_only_be_enabled() {
    let mut k = interrupt_kernel();
    let timer = u64::from(VIRTUAL_TIMER_INTID);
    assert_eq!(result(&mut k, 0, EXO_IRQ_ENABLE, &[timer]), Ok(0));
    assert_eq!(
        result(&mut k, 0, EXO_IRQ_DISABLE, &[timer]),
        err(Error::NotSupported)
    );
    assert_eq!(
        result(&mut k, 0, EXO_IRQ_RAISE, &[timer]),
        err(Error::InvalidParameter)
    );
    assert_eq!(
        result(&mut k, 0, EXO_IRQ_SET_TARGET, &[timer, 0]),
        err(Error::InvalidParameter)
    );
    assert_eq!(
        result(
            &mut k,
            0,
            EXO_IRQ_SET_TARGET,
            &[u64::from(signal::MESSAGE), 0]
        ),
        err(Error::InvalidParameter)
    );
}

/// An interrupt makes its owner runnable at once if it waits for an event, and leaves it
/// alone if it waits for something else (a call, in `EXO_WAIT`).
#[test]
fn an_interrupt_wakes_only_a_partition_waiting_for_an_event() {
    let mut k = interrupt_kernel();
    assert_eq!(result(&mut k, 0, EXO_IRQ_ENABLE, &[41]), Ok(0));
    assert_eq!(call(&mut k, 0, EXO_WAIT_EVENT, &[]).1, Step::Switch(pid(1)));
    k.interrupt(41);
    assert_eq!(
        state(&k, 0),
        State::Runnable,
        "woken by the interrupt itself"
    );
    k.platform.guest_handles_all();
    k.run_as(pid(0));
    k.before_resume();
    k.platform.guest_handles_all();
    assert_eq!(call(&mut k, 0, EXO_WAIT, &[]).1, Step::Switch(pid(1)));
    k.run_as(pid(1));
    k.interrupt(42);
    assert_eq!(
        state(&k, 0),
        State::Waiting,
        "an interrupt does not end EXO_WAIT"
    );
}

/// `EXO_WAIT_EVENT` returns at once when an event is already there: an interrupt queued
/// but not yet in a list register, or news due by upcall.
#[test]
fn waiting_for_an_event_that_is_already_there_returns_at_once() {
    let mut k = interrupt_kernel();
    assert_eq!(result(&mut k, 0, EXO_IRQ_ENABLE, &[41]), Ok(0));
    // Taken while the other partition runs: queued for its owner, not injected.
    k.run_as(pid(1));
    k.interrupt(41);
    assert!(!k.platform.live_virtual_pending(), "queued, not injected");
    assert_eq!(call(&mut k, 0, EXO_WAIT_EVENT, &[]).1, Step::Resume);
    k.before_resume();
    k.platform.guest_handles_all();
    // A message to a partition that takes news by upcall.
    assert_eq!(result(&mut k, 0, EXO_SET_UPCALL, &[0x4000_0800, 0]), Ok(0));
    assert_eq!(result(&mut k, 1, EXO_SEND, &[0, 7]), Ok(0));
    assert_eq!(call(&mut k, 0, EXO_WAIT_EVENT, &[]).1, Step::Resume);
}

/// `EXO_FRAME_ALLOC` takes up to `FRAME_ALLOC_MAX` frames in one call, and no more.
#[test]
fn frame_alloc_takes_exactly_up_to_its_maximum() {
    let mut k = build(2048, &[Config::new("big", 600, 0)]);
    assert_eq!(
        result(&mut k, 0, EXO_FRAME_ALLOC, &[FRAME_ALLOC_MAX + 1, BUFFER]),
        err(Error::InvalidParameter)
    );
    assert_eq!(
        result(&mut k, 0, EXO_FRAME_ALLOC, &[FRAME_ALLOC_MAX, BUFFER]),
        Ok(FRAME_ALLOC_MAX)
    );
    k.self_check().unwrap();
}

/// A claim that would block is refused at once if its buffer cannot hold every name: no
/// revocation request goes out and the caller does not block.
#[test]
fn a_claim_with_a_short_buffer_is_refused_before_it_blocks() {
    let mut k = two();
    let rest = free(&k) as u64;
    alloc(&mut k, 0, rest);
    assert_eq!(free(&k), 0);
    // The last 16 bytes of boot RAM: room for two names, not four.
    let tail = DEFAULT_RAM_BASE.raw() + BOOT_PAGES * PAGE_SIZE - 16;
    assert_eq!(
        result(&mut k, 1, EXO_FRAME_ALLOC, &[4, tail]),
        err(Error::BadAddress)
    );
    assert_eq!(state(&k, 1), State::Runnable);
    assert!(
        k.partition(pid(0)).unwrap().revocation.is_none(),
        "nothing asked of the borrower"
    );
    // Two names fit there.
    let (_, step) = call(&mut k, 1, EXO_FRAME_ALLOC, &[2, tail]);
    assert_ne!(step, Step::Resume, "the claimant blocks");
    assert!(k.partition(pid(0)).unwrap().revocation.is_some());
}

/// A partition may hold exactly its guarantee plus its borrow limit, not one frame more.
#[test]
fn frame_alloc_reaches_the_quota_exactly() {
    let mut k = build(2048, &[Config::new("q", 32, 8)]);
    let room = 32 + 8 - held(&k, 0) as u64;
    alloc(&mut k, 0, room - 1);
    // The last frame by name.
    let last = some_free(&k);
    assert_eq!(
        result(&mut k, 0, EXO_FRAME_ALLOC_AT, &[last.raw()]),
        Ok(last.raw())
    );
    assert_eq!(held(&k, 0), 40);
    assert_eq!(
        result(&mut k, 0, EXO_FRAME_ALLOC, &[1, BUFFER]),
        err(Error::QuotaExhausted)
    );
    let another = some_free(&k);
    assert_eq!(
        result(&mut k, 0, EXO_FRAME_ALLOC_AT, &[another.raw()]),
        err(Error::QuotaExhausted)
    );
}

/// The names of the frames fill exactly `8 * count` bytes of the buffer: a name in the
/// last word of boot RAM is delivered.
#[test]
fn one_name_fits_in_the_last_word_of_ram() {
    let mut k = two();
    let last_word = DEFAULT_RAM_BASE.raw() + BOOT_PAGES * PAGE_SIZE - 8;
    assert_eq!(result(&mut k, 1, EXO_FRAME_ALLOC, &[1, last_word]), Ok(1));
    let name = read_words(&mut k, 1, last_word, 1)[0];
    assert_eq!(k.frames.owner(PhysAddr::new(name)), Some(owner_of(&k, 1)));
}

/// A claim that takes the claimant exactly to its guarantee blocks (it is owed), and the
/// borrower is asked for what the free frames do not cover, no more.
#[test]
fn a_claim_up_to_the_guarantee_asks_only_for_what_is_missing() {
    let mut k = two();
    let spare = 3;
    let rest = free(&k) as u64 - spare;
    alloc(&mut k, 0, rest);
    let claim = 64 - held(&k, 1) as u64;
    assert!(claim > spare);
    let (_, step) = call(&mut k, 1, EXO_FRAME_ALLOC, &[claim, BUFFER]);
    assert_ne!(step, Step::Resume, "the claimant blocks");
    assert_eq!(state(&k, 1), State::Blocked);
    let request = revocation_page(&k, 0);
    assert_eq!(request.frames_requested, claim - spare);
    k.self_check().unwrap();
}

/// Any one right is enough to bind: read, write or execute alone.
#[test]
fn a_single_right_is_enough_to_bind() {
    let mut k = two();
    let frames = alloc(&mut k, 0, 3);
    for (i, (&frame, right)) in frames
        .iter()
        .zip([bind::READ, bind::WRITE, bind::EXECUTE])
        .enumerate()
    {
        let ipa = HEAP + i as u64 * PAGE_SIZE;
        assert_eq!(
            result(&mut k, 0, EXO_BIND, &[frame.raw(), ipa, right]),
            Ok(0),
            "bind with rights {right:#x}"
        );
        let (mapped, attrs) = k.translate(pid(0), Ipa::new(ipa)).unwrap();
        assert_eq!(mapped, frame);
        assert_eq!(
            (attrs.read, attrs.write, attrs.execute),
            (
                right == bind::READ,
                right == bind::WRITE,
                right == bind::EXECUTE
            )
        );
    }
    k.self_check().unwrap();
}

/// The first page past the kernel's window is an ordinary IPA: binding over it is refused
/// only because boot memory is there, not as out of range.
#[test]
fn the_kernel_window_ends_where_it_says() {
    let mut k = two();
    let frame = alloc(&mut k, 0, 1)[0];
    let end = KERNEL_WINDOW_END.raw();
    let last = end - PAGE_SIZE;
    refused(
        &mut k,
        0,
        EXO_BIND,
        &[frame.raw(), last, rw()],
        Error::IpaOutOfRange,
    );
    let at_end = result(&mut k, 0, EXO_BIND, &[frame.raw(), end, rw()]);
    assert_ne!(at_end, err(Error::IpaOutOfRange));
    assert!(at_end.is_err(), "boot memory is bound there");
}

/// Three partitions: two borrowers holding `a` and `b` frames beyond their guarantees, and
/// a claimant that has taken every other free frame.
fn borrowers(a: u64, b: u64) -> K {
    let mut k = build(
        256,
        &[
            Config::new("a", 16, 100),
            Config::new("b", 16, 100),
            Config::new("c", 400, 0),
        ],
    );
    alloc(&mut k, 0, a);
    alloc(&mut k, 1, b);
    let rest = free(&k) as u64;
    alloc(&mut k, 2, rest);
    assert_eq!(free(&k), 0);
    k
}

/// Each borrower is asked for a share proportional to what it can give back; the claimant
/// and nobody else gets a request.
#[test]
fn revocation_shares_are_proportional() {
    let mut k = borrowers(30, 10);
    let (_, step) = call(&mut k, 2, EXO_FRAME_ALLOC, &[8, BUFFER]);
    assert_ne!(step, Step::Resume, "the claimant blocks");
    assert_eq!(revocation_page(&k, 0).frames_requested, 6);
    assert_eq!(revocation_page(&k, 1).frames_requested, 2);
    assert!(
        k.partition(pid(2)).unwrap().revocation.is_none(),
        "no request to the claimant"
    );
}

/// A claim the borrowers can cover exactly blocks; one frame more is refused at once.
#[test]
fn a_claim_is_refused_only_if_the_borrowers_cannot_cover_it() {
    let mut k = borrowers(30, 10);
    assert_eq!(
        result(&mut k, 2, EXO_FRAME_ALLOC, &[41, BUFFER]),
        err(Error::OutOfMemory)
    );
    assert_eq!(state(&k, 2), State::Runnable);
    assert!(k.partition(pid(0)).unwrap().revocation.is_none());
    let (_, step) = call(&mut k, 2, EXO_FRAME_ALLOC, &[40, BUFFER]);
    assert_ne!(step, Step::Resume, "the claimant blocks");
    assert_eq!(revocation_page(&k, 0).frames_requested, 30);
    assert_eq!(revocation_page(&k, 1).frames_requested, 10);
}

/// A second claim while a request is outstanding adds to it: the revocation page shows the
/// total asked.
#[test]
fn a_second_claim_adds_to_the_outstanding_request() {
    let mut k = build(
        512,
        &[
            Config::new("a", 16, 400),
            Config::new("c", 64, 0),
            Config::new("d", 64, 0),
        ],
    );
    let rest = free(&k) as u64;
    alloc(&mut k, 0, rest);
    let (_, step) = call(&mut k, 1, EXO_FRAME_ALLOC, &[8, BUFFER]);
    assert_ne!(step, Step::Resume, "the first claimant blocks");
    assert_eq!(revocation_page(&k, 0).frames_requested, 8);
    let (_, step) = call(&mut k, 2, EXO_FRAME_ALLOC, &[4, BUFFER]);
    assert_ne!(step, Step::Resume, "the second claimant blocks");
    let request = revocation_page(&k, 0);
    assert_eq!(request.sequence, 1, "one request, grown");
    assert_eq!(request.frames_requested, 12);
    assert_eq!(request.frames_owed, 12);
}

/// Frames given back count toward the request, one call after another.
#[test]
fn released_frames_add_up() {
    let mut k = two();
    let (_, unbound) = exhaust_and_claim(&mut k, 4, 10);
    for (i, &frame) in unbound.iter().take(3).enumerate() {
        assert_eq!(result(&mut k, 0, EXO_FRAME_FREE, &[frame.raw()]), Ok(0));
        let r = k.partition(pid(0)).unwrap().revocation.unwrap();
        assert_eq!((r.released, r.owed), (i as u64 + 1, 10 - (i as u64 + 1)));
    }
}

/// When nobody can run while a borrower owes frames, the kernel does not wait for the
/// deadline: it takes them at once and the claimant runs.
#[test]
fn nobody_runnable_aborts_pending_requests_at_once() {
    let mut k = two();
    exhaust_and_claim(&mut k, 4, 10);
    let (_, step) = call(&mut k, 0, EXO_WAIT_EVENT, &[]);
    assert_eq!(step, Step::Switch(pid(1)));
    assert_eq!(state(&k, 1), State::Runnable);
    assert_eq!(k.regs_mut(pid(1)).unwrap().x[0], 10);
    assert_eq!(revocation_page(&k, 0).state, RequestState::Aborted);
}

/// A borrower that exits with a request outstanding has it resolved (reported aborted):
/// nothing is owed by a partition that is gone.
#[test]
fn an_exit_resolves_the_outstanding_request() {
    let mut k = two();
    exhaust_and_claim(&mut k, 4, 10);
    call(&mut k, 0, EXO_EXIT, &[0]);
    assert!(k.partition(pid(0)).unwrap().revocation.is_none());
}

/// Revocation and repossession news reach a partition that enabled their signals as one
/// virtual interrupt each, and then are no longer waiting as upcalls; neither counts as a
/// message. (Deleting either arm of `raise_signals` survived every other test.)
#[test]
fn revocation_and_repossession_news_become_signals_once() {
    let mut k = two();
    for s in [signal::REVOCATION, signal::REPOSSESSION] {
        assert_eq!(result(&mut k, 0, EXO_IRQ_ENABLE, &[u64::from(s)]), Ok(0));
    }
    // `a` borrows beyond its guarantee of 32, then `b` needs a frame back.
    alloc(&mut k, 0, 40);
    assert!(k.request_revocations(pid(1), 1));
    k.run_as(pid(0));
    let frame = k.frames.owned_by(owner_of(&k, 0)).next().unwrap();
    k.report_repossession(pid(0), frame, None, Reason::GrantRevoked, 0);
    k.before_resume();
    let mut delivered: Vec<u32> = k
        .platform
        .guest_handles_all()
        .iter()
        .map(|i| i.intid)
        .collect();
    delivered.sort_unstable();
    let mut expected = vec![signal::REVOCATION, signal::REPOSSESSION];
    expected.sort_unstable();
    assert_eq!(delivered, expected);
    let p = k.partition(pid(0)).unwrap();
    assert_eq!(p.upcalls.revocation, None, "told once, as a signal");
    assert_eq!(p.upcalls.repossession, None, "told once, as a signal");
    assert!(!p.virq.message_signalled, "no message arrived");
    k.before_resume();
    assert!(k.platform.guest_handles_all().is_empty());
}
