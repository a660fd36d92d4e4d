//! `faulter`: tries every route the ABI offers to the other partitions' memory, and is
//! refused each time with the right error; then reads an IPA outside its bindings, and the
//! kernel must stop it with a stage-2 fault.
//!
//! It names every frame of RAM (frames are named by physical address; it walks down and up
//! from its own until the kernel says `NotRam`) and asks for each with
//! `EXO_FRAME_ALLOC_AT`. A frame another partition holds (`OtherPartition`) is then
//! aimed at with `EXO_BIND` (refused `OtherPartition`), `EXO_GRANT` to the victim and
//! `EXO_FRAME_FREE` (both refused `OtherPartition`), and a store and a load through the
//! IPA it tried to bind (both must fault: its fault handler skips them and counts). Kernel
//! frames (`KernelMemory`) are aimed at with `EXO_BIND` too. Free frames are refused for
//! quota. When done it tells the victim (`EXO_SEND`), so the victim checks its data after
//! every attempt.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use exo_libos::abi::PAGE_SIZE;
use exo_libos::abi::{BindAttributes, Rights};
use exo_libos::mem::call::{self, PartitionId};
use exo_libos::upcall::{self, Access, FaultResolution};
use exo_libos::{Error, ExitCode, Info, Ipa, PhysAddr, ipc, println, probe};

exo_libos::entry!(main);

/// How far past the end of its RAM to read at the end.
const DISTANCE: u64 = 1024 * 1024;
/// Where it tries to bind the frames it does not own.
const PROBE_IPA: Ipa = Ipa::new(0x40_0000_0000);
/// The word it sends the victim when every attempt is over.
const DONE: u64 = 0xD0_4E;

/// Faults the handler skipped.
static FAULTS: AtomicU64 = AtomicU64::new(0);

fn skip_and_count(_ipa: Ipa, _access: Access) -> FaultResolution {
    FAULTS.fetch_add(1, Ordering::Relaxed);
    FaultResolution::Skip
}

/// What the scan found.
#[derive(Default)]
struct Scan {
    /// Frames another partition holds, each refused by every route.
    others: u64,
    /// Kernel frames, each refused.
    kernel: u64,
    /// Free frames (refused for quota, or allocated and given back).
    free: u64,
    /// Its own frames.
    own: u64,
}

/// `true` if `result` is `Err(expected)`; otherwise says what `what` of `frame` gave.
fn refused<T: core::fmt::Debug>(
    what: &str,
    frame: PhysAddr,
    result: Result<T, Error>,
    expected: Error,
) -> bool {
    match result {
        Err(error) if error == expected => true,
        other => {
            println!(
                "{what} of {frame}: expected {expected:?}, got {other:?}: isolation is broken"
            );
            false
        }
    }
}

/// Aims every route at `frame`, which another partition holds.
fn attack(frame: PhysAddr, victim: PartitionId) -> bool {
    let rights = BindAttributes::READ_WRITE;
    let grant_rights = Rights::READ_WRITE;
    if !refused(
        "EXO_BIND",
        frame,
        call::bind(frame, PROBE_IPA, rights),
        Error::OtherPartition,
    ) || !refused(
        "EXO_GRANT",
        frame,
        call::grant(frame, victim, grant_rights),
        Error::OtherPartition,
    ) || !refused(
        "EXO_FRAME_FREE",
        frame,
        call::frame_free(frame),
        Error::OtherPartition,
    ) {
        return false;
    }
    let before = FAULTS.load(Ordering::Relaxed);
    let _ = probe::write_u64(PROBE_IPA, 0xBAD);
    let read = probe::read_u64(PROBE_IPA);
    if FAULTS.load(Ordering::Relaxed) != before + 2 {
        println!(
            "a store or load at {PROBE_IPA} after binding {frame} failed did not fault ({read:x?})"
        );
        return false;
    }
    true
}

/// Classifies and attacks `frame`; `None` past the end of RAM, `Some(false)` on a breach.
fn visit(frame: PhysAddr, victim: PartitionId, scan: &mut Scan) -> Option<bool> {
    match call::frame_alloc_at(frame) {
        Err(Error::NotRam) => None,
        Err(Error::OtherPartition) => {
            scan.others += 1;
            Some(attack(frame, victim))
        }
        Err(Error::KernelMemory) => {
            scan.kernel += 1;
            let result = call::bind(frame, PROBE_IPA, BindAttributes::READ);
            Some(refused("EXO_BIND", frame, result, Error::KernelMemory))
        }
        Err(Error::QuotaExhausted | Error::OutOfMemory) => {
            scan.free += 1;
            Some(true)
        }
        Ok(_) => {
            scan.free += 1;
            Some(call::frame_free(frame).is_ok())
        }
        Err(Error::Busy) => {
            scan.own += 1;
            Some(true)
        }
        Err(other) => {
            println!("EXO_FRAME_ALLOC_AT of {frame}: unexpected {other:?}");
            Some(false)
        }
    }
}

/// Walks every frame of the RAM bank holding `start`, down then up.
fn scan_ram(start: PhysAddr, victim: PartitionId) -> Option<Scan> {
    let mut scan = Scan::default();
    let mut frame = start;
    while frame.raw() >= PAGE_SIZE {
        frame = PhysAddr::new(frame.raw() - PAGE_SIZE);
        match visit(frame, victim, &mut scan) {
            None => break,
            Some(false) => return None,
            Some(true) => {}
        }
    }
    let mut frame = start;
    loop {
        match visit(frame, victim, &mut scan) {
            None => break,
            Some(false) => return None,
            Some(true) => {}
        }
        frame = frame.add(PAGE_SIZE);
    }
    Some(scan)
}

fn main(info: &Info) -> Result<ExitCode, Error> {
    let victim = call::partition_lookup("victim")?;
    let Some(mine) = info.bindings().next() else {
        println!("no bindings");
        return Ok(ExitCode::FAILURE);
    };
    upcall::set_fault_handler(skip_and_count)?;
    let Some(scan) = scan_ram(mine.phys, victim) else {
        return Ok(ExitCode::FAILURE);
    };
    println!(
        "refused: {} frames of other partitions (alloc-at, bind, grant, free; every store and \
         load faulted), {} kernel frames; {} free, {} mine",
        scan.others, scan.kernel, scan.free, scan.own
    );
    ipc::send(victim, DONE)?;
    // No more reflected faults: the next one stops this partition.
    call::set_upcall(Ipa::new(0), exo_libos::abi::UpcallFlags::empty())?;
    let target = info.ram_end().add(DISTANCE);
    if let Some(binding) = info.binding_at(target) {
        println!("IPA {target} is bound ({binding:?}); cannot test isolation there");
        return Ok(ExitCode::FAILURE);
    }
    println!("reading memory that is not mine");
    match probe::read_u64(target) {
        Ok(value) => println!("read returned {value:#x}: isolation is broken"),
        Err(refused) => println!("probe of {target} refused: {refused:?}"),
    }
    Ok(ExitCode::FAILURE)
}
