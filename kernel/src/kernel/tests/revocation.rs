//! The revocation fast path: a claimant's slot lent to its borrowers and given back, batched
//! release (all or nothing), the cached earliest deadline, and the loss order a library OS
//! publishes for the abort protocol, hostile entries included.

use super::*;

/// Frames of fake RAM.
const FRAMES: usize = 320;

/// `a` and `c` borrow, `b` claims; `c` has the longer deadline.
fn three() -> K {
    let mut c = Config::new("c", 16, 400);
    c.deadline_us = 5000;
    build(
        FRAMES,
        &[Config::new("a", 16, 400), Config::new("b", 64, 0), c],
    )
}

/// Releases `frames` in one `EXO_FRAME_RELEASE` of partition `p`, through `BUFFER2`.
fn release(k: &mut K, p: usize, frames: &[PhysAddr]) -> ([u64; 4], Step) {
    let words: Vec<u64> = frames.iter().map(|f| f.raw()).collect();
    write_words(k, p, BUFFER2, &words);
    call(k, p, EXO_FRAME_RELEASE, &[BUFFER2, frames.len() as u64])
}

/// Allocates every free frame to `p`.
fn alloc_all(k: &mut K, p: usize) -> Vec<PhysAddr> {
    let count = free(k) as u64;
    alloc(k, p, count)
}

/// Every frame `p` holds beyond its boot memory, unbound.
fn surplus(k: &K, p: usize) -> Vec<PhysAddr> {
    k.frames
        .owned_by(owner_of(k, p))
        .filter(|&f| k.bound.get(f).is_none())
        .collect()
}

#[test]
fn a_blocked_claimant_lends_its_slot_to_the_borrower_and_gets_it_back() {
    let mut k = two();
    assert_eq!(result(&mut k, 0, EXO_SET_UPCALL, &[0x4000_0800, 0]), Ok(0));
    alloc_all(&mut k, 0);
    let (_, step) = call(&mut k, 1, EXO_FRAME_ALLOC, &[3, BUFFER]);
    assert_eq!(step, Step::Switch(pid(0)), "the borrower runs at once");
    assert_eq!(k.current(), pid(0));
    assert_eq!(k.here().lent_by, Some((pid(1), pid(0))));
    // Its revocation upcall is taken now.
    k.before_resume();
    assert_eq!(k.regs_mut(pid(0)).unwrap().x[0], upcall::REVOCATION);
    let given = surplus(&k, 0);
    // One frame: the claimant still waits, the borrower keeps the CPU.
    let ([x0, x1, ..], step) = release(&mut k, 0, &given[..1]);
    assert_eq!((x0, x1, step), (1, 2, Step::Resume));
    assert_eq!(state(&k, 1), State::Blocked);
    // The rest: the claimant completes and gets the CPU straight back.
    let ([x0, x1, ..], step) = release(&mut k, 0, &given[1..3]);
    assert_eq!((x0, x1), (2, 0));
    assert_eq!(step, Step::Switch(pid(1)));
    assert_eq!(k.current(), pid(1));
    assert_eq!(k.here().lent_by, None);
    assert_eq!(state(&k, 1), State::Runnable);
    assert_eq!(k.regs_mut(pid(1)).unwrap().x[0], 3);
    let got: BTreeSet<u64> = read_words(&mut k, 1, BUFFER, 3).into_iter().collect();
    let released: BTreeSet<u64> = given[..3].iter().map(|f| f.raw()).collect();
    assert_eq!(got, released, "the claimant got the released frames");
    k.self_check().unwrap();
}

#[test]
fn the_slot_goes_on_to_the_next_borrower_still_owing() {
    let mut k = three();
    let half = free(&k) as u64 / 2;
    alloc(&mut k, 0, half);
    alloc_all(&mut k, 2);
    let (_, step) = call(&mut k, 1, EXO_FRAME_ALLOC, &[20, BUFFER]);
    let owed = |k: &K, p: usize| {
        k.partition(pid(p))
            .unwrap()
            .revocation
            .map_or(0, |r| r.owed)
    };
    let (first, second) = if owed(&k, 0) >= owed(&k, 2) {
        (0, 2)
    } else {
        (2, 0)
    };
    assert!(
        owed(&k, first) > 0 && owed(&k, second) > 0,
        "both are asked"
    );
    assert_eq!(
        step,
        Step::Switch(pid(first)),
        "the borrower owing the most first"
    );
    let mine = surplus(&k, first);
    let owed_first = owed(&k, first) as usize;
    let (_, step) = release(&mut k, first, &mine[..owed_first]);
    assert_eq!(
        step,
        Step::Switch(pid(second)),
        "then the next one still owing"
    );
    assert_eq!(k.here().lent_by, Some((pid(1), pid(second))));
    let theirs = surplus(&k, second);
    let owed_second = owed(&k, second) as usize;
    let (_, step) = release(&mut k, second, &theirs[..owed_second]);
    assert_eq!(step, Step::Switch(pid(1)), "and back to the claimant");
    assert_eq!(k.regs_mut(pid(1)).unwrap().x[0], 20);
    k.self_check().unwrap();
}

#[test]
fn a_batch_with_one_bad_entry_changes_nothing_and_names_it() {
    let mut k = three();
    let mine = alloc(&mut k, 0, 4);
    let theirs = alloc(&mut k, 2, 1);
    assert_eq!(
        result(&mut k, 0, EXO_BIND, &[mine[1].raw(), HEAP, rw()]),
        Ok(0)
    );
    let before = snapshot(&mut k, 0);
    let ([x0, x1, ..], step) = release(&mut k, 0, &[mine[0], mine[1], theirs[0], mine[2]]);
    assert_eq!(Error::from_register(x0), Err(Error::OtherPartition));
    assert_eq!((x1, step), (2, Step::Resume));
    assert!(
        before == snapshot(&mut k, 0),
        "nothing released, nothing unbound"
    );
    // Named twice: refused at the second mention.
    let ([x0, x1, ..], _) = release(&mut k, 0, &[mine[2], mine[0], mine[2]]);
    assert_eq!(Error::from_register(x0), Err(Error::KernelMemory));
    assert_eq!(x1, 2);
    assert!(before == snapshot(&mut k, 0));
    // A good batch: the bound frame is unbound (TLB invalidated), all are scrubbed and free.
    for &f in &mine {
        junk(&mut k, f);
    }
    k.platform.tlb.borrow_mut().clear();
    let ([x0, x1, ..], _) = release(&mut k, 0, &mine);
    assert_eq!((x0, x1), (4, 0));
    let vmid = k.partition(pid(0)).unwrap().vmid;
    assert!(
        k.platform
            .tlb
            .borrow()
            .contains(&TlbEvent::Ipa(vmid, Ipa::new(HEAP)))
    );
    assert_eq!(k.translate(pid(0), Ipa::new(HEAP)), None);
    for &f in &mine {
        assert_eq!(k.frames.owner(f), Some(Owner::Free));
        assert!(is_zero(&k, f));
    }
    // Limits and the buffer itself.
    refused(
        &mut k,
        0,
        EXO_FRAME_RELEASE,
        &[BUFFER2, 0],
        Error::InvalidParameter,
    );
    refused(
        &mut k,
        0,
        EXO_FRAME_RELEASE,
        &[BUFFER2, 513],
        Error::InvalidParameter,
    );
    refused(
        &mut k,
        0,
        EXO_FRAME_RELEASE,
        &[BUFFER2 + 4, 1],
        Error::BadAddress,
    );
    refused(&mut k, 0, EXO_FRAME_RELEASE, &[HEAP, 1], Error::BadAddress);
    k.self_check().unwrap();
}

#[test]
fn one_earliest_deadline_is_kept_as_requests_start_and_end() {
    let mut k = three();
    assert_eq!(k.revocations.earliest, None);
    let half = free(&k) as u64 / 2;
    alloc(&mut k, 0, half);
    alloc_all(&mut k, 2);
    let issued = k.platform.now.get();
    call(&mut k, 1, EXO_FRAME_ALLOC, &[20, BUFFER]);
    assert_eq!(
        k.revocations.earliest,
        Some(issued + ticks(1000)),
        "a's deadline"
    );
    // a complies: the earliest is c's now.
    let owed = k.partition(pid(0)).unwrap().revocation.unwrap().owed as usize;
    let mine = surplus(&k, 0);
    release(&mut k, 0, &mine[..owed]);
    assert_eq!(k.revocations.earliest, Some(issued + ticks(5000)));
    // Past a's deadline nothing happens; at c's, c is aborted by the next trap.
    k.platform.now.set(issued + ticks(5000) - 1);
    assert!(result(&mut k, 0, EXO_MEM_INFO, &[]).is_ok());
    assert_eq!(k.partition(pid(2)).unwrap().aborts, 0);
    k.platform.now.set(issued + ticks(5000));
    assert!(result(&mut k, 0, EXO_MEM_INFO, &[]).is_ok());
    assert_eq!(k.partition(pid(2)).unwrap().aborts, 1);
    assert_eq!(k.revocations.earliest, None);
    assert_eq!(state(&k, 1), State::Runnable);
    k.self_check().unwrap();
}

/// `a` borrows everything, binds two frames, lists `order` (written at `BUFFER2`, its own
/// boot RAM) as its loss order; `b` claims `claim` frames and `a`'s deadline passes.
fn abort_with_loss_order(order: &[u64], claim: u64) -> (K, Vec<PhysAddr>, Vec<Repossession>) {
    let mut k = three();
    let theirs = alloc(&mut k, 2, 4);
    let mine = alloc_all(&mut k, 0);
    for (i, f) in mine[..2].iter().enumerate() {
        let ipa = HEAP + i as u64 * PAGE_SIZE;
        assert_eq!(result(&mut k, 0, EXO_BIND, &[f.raw(), ipa, rw()]), Ok(0));
    }
    let mut page = vec![order.len() as u64];
    page.extend_from_slice(order);
    let page: Vec<u64> = page
        .into_iter()
        .map(|w| match w {
            THEIRS => theirs[0].raw(),
            MINE_0 => mine[0].raw(),
            MINE_5 => mine[5].raw(),
            MINE_6 => mine[6].raw(),
            w => w,
        })
        .collect();
    write_words(&mut k, 0, BUFFER2, &page);
    assert_eq!(result(&mut k, 0, EXO_SET_LOSS_ORDER, &[BUFFER2]), Ok(0));
    call(&mut k, 1, EXO_FRAME_ALLOC, &[claim, BUFFER]);
    let now = k.platform.now.get();
    k.platform.now.set(now + ticks(1000));
    assert!(result(&mut k, 2, EXO_MEM_INFO, &[]).is_ok());
    assert_eq!(k.partition(pid(0)).unwrap().aborts, 1);
    for &f in &theirs {
        assert_eq!(
            k.frames.owner(f),
            Some(owner_of(&k, 2)),
            "c keeps its frames"
        );
    }
    k.self_check().unwrap();
    let taken = vector(&k, 0);
    (k, mine, taken)
}

/// Placeholders in a loss order for the frames [`abort_with_loss_order`] allocates.
const THEIRS: u64 = 1;
const MINE_0: u64 = 2;
const MINE_5: u64 = 3;
const MINE_6: u64 = 4;

#[test]
fn the_abort_takes_frames_in_the_published_loss_order_and_nothing_else() {
    let kernel_page = 0x4000_0000; // the kernel image's first frame
    let order = [
        THEIRS,
        kernel_page,
        MINE_6 + 0x10, // not a frame address: skipped
        MINE_0,
        MINE_6,
        MINE_0, // twice: taken once
        u64::MAX,
        MINE_5,
    ];
    let (_, mine, taken) = abort_with_loss_order(&order, 3);
    let phys: Vec<PhysAddr> = taken.iter().map(|e| e.phys).collect();
    assert_eq!(phys, [mine[0], mine[6], mine[5]], "listed frames, in order");
    assert_eq!(taken[0].ipa, Some(Ipa::new(HEAP)), "bound frames too");
}

#[test]
fn a_loss_order_that_runs_short_is_completed_by_the_fallback() {
    let (_, mine, taken) = abort_with_loss_order(&[MINE_6, THEIRS], 3);
    assert_eq!(taken.len(), 3);
    assert_eq!(taken[0].phys, mine[6]);
    // Then, in address order, frames that hold none of its boot memory: its lowest
    // allocated frames, two of them bound outside boot RAM (no class of its own: which go
    // first is the loss order's to say).
    let mut expected: Vec<PhysAddr> = mine.iter().copied().filter(|&f| f != mine[6]).collect();
    expected.sort();
    let rest: Vec<PhysAddr> = taken[1..].iter().map(|e| e.phys).collect();
    assert_eq!(rest, expected[..2]);
}

#[test]
fn a_garbage_count_is_capped_and_an_unbound_page_ignored() {
    let (_, mine, taken) = abort_with_loss_order(&[MINE_5], 1);
    assert_eq!(taken[0].phys, mine[5]);
    // A count far beyond the page reads the page only.
    let mut k = three();
    let mine = alloc_all(&mut k, 0);
    let mut page = vec![u64::MAX, mine[7].raw()];
    page.resize(512, mine[8].raw());
    write_words(&mut k, 0, BUFFER2, &page);
    assert_eq!(result(&mut k, 0, EXO_SET_LOSS_ORDER, &[BUFFER2]), Ok(0));
    // The page may not be a frame the partition does not hold, nor unaligned, nor unbound.
    refused(
        &mut k,
        0,
        EXO_SET_LOSS_ORDER,
        &[BUFFER2 + 8],
        Error::Unaligned,
    );
    refused(&mut k, 0, EXO_SET_LOSS_ORDER, &[HEAP], Error::BadAddress);
    refused(
        &mut k,
        0,
        EXO_SET_LOSS_ORDER,
        &[info::INFO_PAGE_IPA.raw()],
        Error::BadAddress,
    );
    call(&mut k, 1, EXO_FRAME_ALLOC, &[2, BUFFER]);
    let now = k.platform.now.get();
    k.platform.now.set(now + ticks(1000));
    assert!(result(&mut k, 2, EXO_MEM_INFO, &[]).is_ok());
    let phys: Vec<PhysAddr> = vector(&k, 0).iter().map(|e| e.phys).collect();
    assert_eq!(phys, [mine[7], mine[8]]);
    // Unbound before the abort: the kernel ignores it.
    let mut k = three();
    let mine = alloc_all(&mut k, 0);
    write_words(&mut k, 0, BUFFER2, &[1, mine[9].raw()]);
    assert_eq!(result(&mut k, 0, EXO_SET_LOSS_ORDER, &[BUFFER2]), Ok(0));
    let list = k.translate(pid(0), Ipa::new(BUFFER2)).unwrap().0;
    assert_eq!(result(&mut k, 0, EXO_UNBIND, &[BUFFER2]), Ok(list.raw()));
    call(&mut k, 1, EXO_FRAME_ALLOC, &[1, BUFFER]);
    let now = k.platform.now.get();
    k.platform.now.set(now + ticks(1000));
    assert!(result(&mut k, 2, EXO_MEM_INFO, &[]).is_ok());
    let taken = vector(&k, 0);
    assert_eq!(taken.len(), 1);
    assert_ne!(taken[0].phys, mine[9], "the list was not read");
    assert_eq!(
        taken[0].phys, list,
        "the fallback: the lowest unbound frame, the page itself"
    );
    k.self_check().unwrap();
}

#[test]
fn a_loan_passed_on_by_donation_ends() {
    let mut k = three();
    alloc_all(&mut k, 0);
    let (_, step) = call(&mut k, 1, EXO_FRAME_ALLOC, &[3, BUFFER]);
    assert_eq!(step, Step::Switch(pid(0)));
    assert!(
        k.partition(pid(2)).unwrap().revocation.is_none(),
        "only a is asked"
    );
    // a gives the rest of the slot to c: the slot is no longer lent to a borrower, and
    // c's next call does not send the CPU back to a.
    let (_, step) = call(&mut k, 0, EXO_DONATE, &[2]);
    assert_eq!(step, Step::Switch(pid(2)));
    let (_, step) = call(&mut k, 2, EXO_MEM_INFO, &[]);
    assert_eq!(step, Step::Resume);
    assert_eq!(k.here().lent_by, None);
    k.self_check().unwrap();
}
