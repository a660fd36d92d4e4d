//! `hoarder`: borrows all the memory it can and never gives any back: its revocation policy
//! releases nothing, so the kernel's abort protocol takes what it asked for.
//!
//! It keeps its own list of every frame it bound, in static memory: not on the heap, whose
//! frames the abort protocol may take too (the kernel chooses which borrowed frames go).
//! After the abort it checks that the repossession vector names exactly the frames the
//! request asked for, each one it held and at the IPA it bound it at, and that every such
//! IPA now faults (its fault handler skips the access and records it).
//!
//! A partition whose name starts with `stubborn` does not stop there: it keeps growing back
//! whenever memory is free, and expects to be terminated by the kernel for repeated aborts.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use exo_guests::{grow_until_refused, verify_patterns};
use exo_libos::abi::revocation::{CAPACITY, Reason, RequestState};
use exo_libos::mem::{self, RefusePolicy, RepossessionReader, TABLE_CAPACITY, revocation};
use exo_libos::spin::Mutex;
use exo_libos::time::Deadline;
use exo_libos::upcall::{self, Access, FaultResolution};
use exo_libos::{Error, ExitCode, Info, Ipa, PhysAddr, println, probe};

exo_libos::entry!(main);

/// Every frame it bound: `(phys, ipa)`, sorted by `phys` once grown.
static BOUND: Mutex<[(PhysAddr, Ipa); TABLE_CAPACITY]> =
    Mutex::new([(PhysAddr::new(0), Ipa::new(0)); TABLE_CAPACITY]);
/// One repossession-vector entry: the frame, where it was bound, and why it was taken.
type Taken = (PhysAddr, Option<Ipa>, Option<Reason>);
/// What the repossession vector reported.
static TAKEN: Mutex<[Taken; CAPACITY]> = Mutex::new([(PhysAddr::new(0), None, None); CAPACITY]);

static REFUSE: Mutex<RefusePolicy> = Mutex::new(RefusePolicy);
/// IPA of the last fault the handler skipped.
static LAST_FAULT: AtomicU64 = AtomicU64::new(0);

fn skip_and_record(ipa: Ipa, _access: Access) -> FaultResolution {
    LAST_FAULT.store(ipa.raw(), Ordering::Relaxed);
    FaultResolution::Skip
}

/// How long to wait for an abort.
const WAIT_MS: u64 = 40_000;

fn main(info: &Info) -> Result<ExitCode, Error> {
    let stubborn = info.name().starts_with("stubborn");
    mem::set_revocation_policy(&REFUSE);
    upcall::set_fault_handler(skip_and_record)?;
    let mut bound_guard = BOUND.lock();
    let mut taken_guard = TAKEN.lock();
    let mut count = 0;
    let (grown, refusal) = grow_until_refused(|phys, ipa| {
        if let Some(slot) = bound_guard.get_mut(count) {
            *slot = (phys, ipa);
            count += 1;
        }
    })?;
    println!("grew by {grown} frames until refused ({refusal}); giving nothing back");
    let bound = &mut bound_guard[..count];
    bound.sort_unstable();
    let mut taken_count = 0;
    let mut reader = RepossessionReader::from_start();
    let deadline = Deadline::after_millis(WAIT_MS);
    while taken_count == 0 {
        mem::yield_now()?;
        reader.poll(|entry| {
            if let Some(slot) = taken_guard.get_mut(taken_count) {
                *slot = (entry.phys, entry.ipa, Some(entry.reason));
                taken_count += 1;
            }
        });
        if deadline.passed() {
            println!("no abort happened");
            return Ok(ExitCode::FAILURE);
        }
    }
    let taken = &taken_guard[..taken_count];
    let Some(request) = revocation::latest_request() else {
        println!("no request on the revocation page");
        return Ok(ExitCode::FAILURE);
    };
    println!(
        "request {} for {} frames was {:?}; the kernel took {}",
        request.sequence,
        request.frames_requested,
        request.state,
        taken.len()
    );
    if request.state != RequestState::Aborted || taken.len() as u64 != request.frames_requested {
        println!("expected the kernel to take exactly what it asked for");
        return Ok(ExitCode::FAILURE);
    }
    for &(phys, ipa, reason) in taken {
        let held = bound
            .binary_search_by(|&(p, _)| p.cmp(&phys))
            .ok()
            .map(|i| bound[i].1);
        // A frame taken between its allocation and its binding was never bound: the
        // vector names it without an IPA.
        let lost_unbound = held.is_none() && ipa.is_none();
        if reason != Some(Reason::Aborted) || (held.is_none() && !lost_unbound) || held != ipa {
            println!(
                "repossession of {phys} at {ipa:?} ({reason:?}) does not match: mine at {held:?}"
            );
            return Ok(ExitCode::FAILURE);
        }
        if mem::frame(phys).is_some() {
            println!("the library OS still records {phys}");
            return Ok(ExitCode::FAILURE);
        }
    }
    let mut faulted = 0;
    for &(_, ipa, _) in taken {
        let Some(ipa) = ipa else { continue };
        LAST_FAULT.store(0, Ordering::Relaxed);
        let _ = probe::read_u64(ipa);
        if LAST_FAULT.load(Ordering::Relaxed) != ipa.raw() {
            println!("reading repossessed IPA {ipa} did not fault");
            return Ok(ExitCode::FAILURE);
        }
        faulted += 1;
    }
    if let Err(corrupt) = verify_patterns() {
        println!("frame CORRUPTED: {corrupt:?}");
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "repossession verified: {} frames ({faulted} IPAs fault)",
        taken.len()
    );
    if !stubborn {
        return Ok(ExitCode::SUCCESS);
    }
    // Stubborn: grow back whenever something is free, never give anything back.
    let deadline = Deadline::after_millis(WAIT_MS);
    let mut aborts_seen = 1;
    while !deadline.passed() {
        let (regrown, _) = grow_until_refused(|_, _| {})?;
        if regrown > 0 {
            println!("grew back by {regrown} frames");
        }
        mem::yield_now()?;
        let mut new = 0;
        reader.poll(|_| new += 1);
        if new > 0 {
            aborts_seen += 1;
            println!("abort {aborts_seen}: the kernel took {new} more frames");
        }
    }
    println!("still running after {aborts_seen} aborts: expected to be terminated");
    Ok(ExitCode::FAILURE)
}
