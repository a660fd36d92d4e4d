//! `stale`: touches a page right after losing it, with no world switch in between, so a
//! stale TLB entry (a stage-2 unmap without TLB invalidation) would let the access through.
//! QEMU flushes its TLB whenever `VTTBR_EL2` changes, so only an access by the same
//! partition, straight after the hypercall returns, can see a stale entry.
//!
//! Every partition first allocates fresh frames and checks they are zero (on a system booted
//! with `poison_free_ram`, a missing scrub-on-allocate shows here), then binds, reads,
//! unbinds and reads (and writes) again each of them: every access after `EXO_UNBIND` must
//! fault.
//!
//! A partition whose name ends in `hoarder` then grows until refused, refuses every
//! revocation request, and loops: it reads the lowest pages it bound (filling the TLB), calls
//! `EXO_MEM_INFO` (the kernel checks deadlines on every hypercall, so the abort happens
//! inside that call), and reads each page the repossession vector names at once: each must
//! fault.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use exo_guests::grow_until_refused;
use exo_libos::abi::BindAttributes;
use exo_libos::mem::{self, RefusePolicy, RepossessionReader, TABLE_CAPACITY, call, revocation};
use exo_libos::spin::Mutex;
use exo_libos::time::Deadline;
use exo_libos::upcall::{self, Access, FaultResolution};
use exo_libos::{Error, ExitCode, Info, Ipa, PhysAddr, println, probe};

exo_libos::entry!(main);

/// Fresh frames taken for the zero check and the unbind scenario.
const FRESH: usize = 64;
/// `u64` words in a page.
const PAGE_WORDS: u64 = 512;
/// Lowest frames read before each call (the abort takes the lowest frames first), highest
/// first so the lowest are the freshest: QEMU's TLB is direct-mapped and, with no flush to
/// resize it, has 256 entries.
const TOUCHED: usize = 128;
/// How long to wait for the abort.
const WAIT_MS: u64 = 40_000;

/// IPA of the last fault the handler skipped.
static LAST_FAULT: AtomicU64 = AtomicU64::new(0);
/// Faults the handler skipped.
static FAULTS: AtomicU64 = AtomicU64::new(0);
/// Every page the hoarder bound: `(phys, ipa)`.
static BOUND: Mutex<[(PhysAddr, Ipa); TABLE_CAPACITY]> =
    Mutex::new([(PhysAddr::new(0), Ipa::new(0)); TABLE_CAPACITY]);
static REFUSE: Mutex<RefusePolicy> = Mutex::new(RefusePolicy);

fn skip_and_record(ipa: Ipa, _access: Access) -> FaultResolution {
    LAST_FAULT.store(ipa.raw(), Ordering::Relaxed);
    FAULTS.fetch_add(1, Ordering::Relaxed);
    FaultResolution::Skip
}

/// Whether a read and a write at `ipa` both fault now.
fn faults(ipa: Ipa) -> bool {
    LAST_FAULT.store(0, Ordering::Relaxed);
    let read = probe::read_u64(ipa);
    let read_faulted = LAST_FAULT.swap(0, Ordering::Relaxed) == ipa.raw();
    let _ = probe::write_u64(ipa, 0x05EE_0000_05EE);
    let write_faulted = LAST_FAULT.load(Ordering::Relaxed) == ipa.raw();
    if !read_faulted || !write_faulted {
        println!(
            "access to lost page {ipa} went through (read {read:x?}, write faulted {write_faulted})"
        );
    }
    read_faulted && write_faulted
}

/// Allocates fresh frames, checks every word is zero, then for each: bind, write and read
/// (so the translation is in the TLB), unbind, and touch again at once.
fn unbind_then_touch() -> Result<bool, Error> {
    let mut frames = [PhysAddr::new(0); FRESH];
    let count = mem::alloc(&mut frames)?;
    let frames = &frames[..count];
    let mut nonzero = 0;
    for &phys in frames {
        let ipa = mem::map(phys, BindAttributes::READ_WRITE)?;
        nonzero += (0..PAGE_WORDS)
            .filter(|&w| probe::read_u64(ipa.add(w * 8)) != Ok(0))
            .count();
        let _ = probe::write_u64(ipa, phys.raw());
        if probe::read_u64(ipa) != Ok(phys.raw()) {
            println!("cannot read back {ipa}");
            return Ok(false);
        }
        if mem::unbind(ipa)? != phys || !faults(ipa) {
            return Ok(false);
        }
        mem::free(phys)?;
    }
    if nonzero != 0 {
        println!("{nonzero} non-zero words in {count} fresh frames: not scrubbed");
        return Ok(false);
    }
    println!("{count} fresh frames zero; each faults right after EXO_UNBIND");
    Ok(true)
}

/// Grows, refuses, and checks each page the abort takes faults right after the call in
/// which it was taken.
fn abort_then_touch() -> Result<bool, Error> {
    mem::set_revocation_policy(&REFUSE);
    let mut bound = BOUND.lock();
    let mut count = 0;
    let (grown, _) = grow_until_refused(|phys, ipa| {
        if let Some(slot) = bound.get_mut(count) {
            *slot = (phys, ipa);
            count += 1;
        }
    })?;
    let bound = &mut bound[..count];
    // The abort takes the lowest frames first: keep those in the TLB, and keep the loop
    // short, so that the deadline passes between two calls of this partition rather than
    // at a timer tick (which would switch to the claimant and flush QEMU's TLB).
    bound.sort_unstable();
    let touched = &bound[..bound.len().min(TOUCHED)];
    println!("grew by {grown} frames; giving nothing back");
    let mut reader = RepossessionReader::from_start();
    let deadline = Deadline::after_millis(WAIT_MS);
    let mut checked = 0u64;
    let mut calls = 0u64;
    while !deadline.passed() {
        for &(_, ipa) in touched.iter().rev() {
            let _ = probe::read_u64(ipa);
        }
        call::mem_info()?;
        calls += 1;
        let mut lost = [Ipa::new(0); 64];
        let mut lost_count = 0;
        reader.poll(|entry| {
            if let (Some(ipa), Some(slot)) = (entry.ipa, lost.get_mut(lost_count)) {
                *slot = ipa;
                lost_count += 1;
            }
        });
        for &ipa in &lost[..lost_count] {
            if !faults(ipa) {
                return Ok(false);
            }
            checked += 1;
        }
        if checked > 0 {
            println!(
                "{checked} repossessed pages fault right after the call that took them \
                 (call {calls})"
            );
            return Ok(true);
        }
        if revocation::latest_request().is_none() {
            mem::yield_now()?;
        }
    }
    println!("no abort after {calls} calls");
    Ok(false)
}

fn main(info: &Info) -> Result<ExitCode, Error> {
    upcall::set_fault_handler(skip_and_record)?;
    if !unbind_then_touch()? {
        return Ok(ExitCode::FAILURE);
    }
    if info.name().ends_with("hoarder") && !abort_then_touch()? {
        return Ok(ExitCode::FAILURE);
    }
    println!("{} faults taken", FAULTS.load(Ordering::Relaxed));
    Ok(ExitCode::SUCCESS)
}
