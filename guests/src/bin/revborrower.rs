//! `revborrower`: a borrower of the revocation benchmark (`exo bench`,
//! `guests/configs/bench-revoke*.toml`). It holds every frame it can get, bound in its frame
//! window, and grows back whenever frames are free, until `revdriver` says it is done.
//!
//! How it answers revocation requests depends on its name's suffix:
//! - `coop`: the library OS's default policy gives back what is owed;
//! - `partial`: gives back half of what is owed, and the abort protocol takes the rest at
//!   the deadline;
//! - `refuse`: gives back nothing, and the abort protocol takes it all;
//! - `grant`: cooperative, but it keeps [`SHARED`] of its bound frames granted to the
//!   partition named `grantee` (which binds them), and its policy gives those back first,
//!   so each request withdraws grants and breaks the grantee's bindings.
//!
//! The library OS stamps every request it answers ([`revocation::timeline`]); the borrower
//! copies the stamps between requests and prints them at the end, never while a claim is
//! being timed, as `sample answer seq=.. issued=.. deadline=.. entered=.. chosen=..
//! released=.. acknowledged=.. owed=.. frames=.. held=..` (docs/benchmarks.md).

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::abi::call::FRAME_ALLOC_MAX;
use exo_libos::abi::{BindAttributes, Rights};
use exo_libos::ipc;
use exo_libos::mem::call::{PartitionId, partition_lookup};
use exo_libos::mem::policy::choose_default;
use exo_libos::mem::revocation::{self, Timeline};
use exo_libos::mem::table::Holdings;
use exo_libos::mem::{
    self, HalfPolicy, RefusePolicy, RevocationPolicy, RevocationRequest, Selection,
};
use exo_libos::spin::Mutex;
use exo_libos::time::Deadline;
use exo_libos::{Error, ExitCode, Info, PhysAddr, println, upcall};

exo_libos::entry!(main);

static HALF: Mutex<HalfPolicy> = Mutex::new(HalfPolicy);

/// Frames kept granted to `grantee` in `grant` mode.
const SHARED: usize = 64;

/// The frames granted to `grantee` (the first `.1`).
static GRANTED: Mutex<([PhysAddr; SHARED], usize)> = Mutex::new(([PhysAddr::new(0); SHARED], 0));

/// Gives back the granted frames first, then in the default order.
struct GrantedFirst;

impl RevocationPolicy for GrantedFirst {
    fn choose(
        &mut self,
        request: &RevocationRequest<'_>,
        holdings: &Holdings<'_>,
        choice: &mut Selection,
    ) {
        let owed = request.owed as usize;
        match GRANTED.try_lock() {
            Some(granted) => choose_default(holdings, &granted.0[..granted.1], owed, choice),
            None => choose_default(holdings, request.named, owed, choice),
        };
    }
}

static GRANTED_FIRST: Mutex<GrantedFirst> = Mutex::new(GrantedFirst);

/// Keeps [`SHARED`] bound frames granted to `grantee`: forgets grants of frames no longer
/// held, and grants more.
fn share(grantee: PartitionId) -> Result<(), Error> {
    let mut granted = GRANTED.lock();
    let (frames, count) = &mut *granted;
    let mut kept = 0;
    for i in 0..*count {
        if mem::frame(frames[i]).is_some() {
            frames[kept] = frames[i];
            kept += 1;
        }
    }
    *count = kept;
    if *count == SHARED {
        return Ok(());
    }
    let mut candidates = [PhysAddr::new(0); SHARED];
    let mut found = 0;
    mem::for_each_frame(|frame| {
        if found < SHARED && frame.ipa().is_some() && !frames[..kept].contains(&frame.phys()) {
            candidates[found] = frame.phys();
            found += 1;
        }
    });
    for &phys in &candidates[..found] {
        if *count == SHARED {
            break;
        }
        if mem::call::grant(phys, grantee, Rights::READ).is_ok() {
            frames[*count] = phys;
            *count += 1;
        }
    }
    Ok(())
}
static REFUSE: Mutex<RefusePolicy> = Mutex::new(RefusePolicy);

/// Most requests whose stamps are kept.
const KEPT: usize = 1024;
/// The stamps copied so far.
static TIMELINES: Mutex<[Timeline; KEPT]> = Mutex::new([Timeline::EMPTY; KEPT]);

/// The word `revdriver` sends when it is done.
const DONE: u64 = 0xD0E;
/// Longest the benchmark may take.
const WAIT_MS: u64 = 600_000;

fn main(info: &Info) -> Result<ExitCode, Error> {
    let name = info.name();
    if name.ends_with("partial") {
        mem::set_revocation_policy(&HALF);
    } else if name.ends_with("refuse") {
        mem::set_revocation_policy(&REFUSE);
    } else if name.ends_with("grant") {
        mem::set_revocation_policy(&GRANTED_FIRST);
    }
    let grantee = if name.ends_with("grant") {
        Some(partition_lookup("grantee")?)
    } else {
        None
    };
    upcall::register()?;
    let deadline = Deadline::after_millis(WAIT_MS);
    let mut kept = 0;
    let mut next = 1;
    loop {
        grow()?;
        if let Some(grantee) = grantee {
            share(grantee)?;
        }
        mem::yield_now()?;
        let last = revocation::stats().last_sequence;
        while next <= last {
            if let Some(timeline) = revocation::timeline(next)
                && kept < KEPT
            {
                TIMELINES.lock()[kept] = timeline;
                kept += 1;
            }
            next += 1;
        }
        if matches!(ipc::take_message(), Some((_, DONE))) {
            break;
        }
        if deadline.passed() {
            println!("the driver never said it was done");
            return Ok(ExitCode::FAILURE);
        }
    }
    for t in &TIMELINES.lock()[..kept] {
        println!(
            "sample answer seq={} issued={} deadline={} entered={} chosen={} released={} \
             acknowledged={} owed={} frames={} held={}",
            t.sequence,
            t.issued_at,
            t.deadline,
            t.entered,
            t.chosen,
            t.released,
            t.acknowledged,
            t.owed,
            t.frames,
            t.held
        );
    }
    println!("answered {kept} requests");
    Ok(ExitCode::SUCCESS)
}

/// Takes and binds free frames, up to [`FRAME_ALLOC_MAX`] at a time, until none is free
/// or the kernel refuses.
fn grow() -> Result<(), Error> {
    let mut batch = [PhysAddr::new(0); FRAME_ALLOC_MAX as usize];
    loop {
        let free = mem::call::mem_info()?.free;
        if free == 0 {
            return Ok(());
        }
        let size = free.min(FRAME_ALLOC_MAX) as usize;
        let count = match mem::alloc(&mut batch[..size]) {
            Ok(count) => count,
            Err(Error::QuotaExhausted | Error::OutOfMemory) => return Ok(()),
            Err(other) => return Err(other),
        };
        for &phys in &batch[..count] {
            // A request may have taken the frame back already (the policy gives unbound
            // frames first), or the abort protocol inside the bind call (the frame is then
            // gone, or still marked busy in the library OS's table): it stays unbound.
            if mem::frame(phys).is_none() {
                continue;
            }
            match mem::map(phys, BindAttributes::READ_WRITE) {
                Ok(_) | Err(Error::OtherPartition | Error::NotOwner | Error::Busy) => {}
                // Binding at a new IPA can need a page-table frame the kernel cannot find
                // when this borrower holds them all: the frame stays held, unbound.
                Err(Error::OutOfMemory | Error::QuotaExhausted) => return Ok(()),
                Err(other) => return Err(other),
            }
        }
    }
}
