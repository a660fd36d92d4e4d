//! `tally`: partitions counting at the same time, each on its own core. The first
//! partition of the system (id 0) grants a frame of its own, read-write, to every other;
//! each keeps its counter in that frame and counts, without yielding, until it has seen
//! every other partition's counter advance. On cores that no tick interrupts, a partition
//! sharing its core with another would wait forever: each one finishing proves the others
//! ran at the same time.
//!
//! The frame holds, for partition `i`, its counter at `64 * i` (one cache line each),
//! its "done" flag at `512 + 64 * i` (it saw every other advance) and, for the grantees,
//! a "left" flag at `1024 + 64 * i` (it no longer touches the frame). Everyone counts on
//! until every partition is done, so none stops advancing before the others have seen it;
//! the owner leaves last, when every grantee has left, since its exit ends the grants.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::abi::{BindAttributes, Rights};
use exo_libos::mem;
use exo_libos::mem::call::{self, PartitionId};
use exo_libos::time::Deadline;
use exo_libos::{Error, ExitCode, Info, Ipa, println, probe};

exo_libos::entry!(main);

/// Where a grantee binds the shared frame.
const SHARED_IPA: Ipa = Ipa::new(0x3_0000_0000);
/// Most partitions the frame's layout has room for.
const MAX: u32 = 8;
/// How far another partition's counter must move before it counts as advancing.
const ADVANCE: u64 = 10_000;
/// How long each step may take.
const WAIT_MS: u64 = 30_000;

/// The shared frame, as this partition sees it.
#[derive(Clone, Copy)]
struct Frame(Ipa);

impl Frame {
    fn word(self, offset: u64) -> Ipa {
        self.0.add(offset)
    }
    fn read(self, offset: u64) -> u64 {
        probe::read_u64(self.word(offset)).unwrap_or(0)
    }
    fn write(self, offset: u64, value: u64) {
        let _ = probe::write_u64(self.word(offset), value);
    }
    fn counter(i: u32) -> u64 {
        64 * u64::from(i)
    }
    fn done(i: u32) -> u64 {
        512 + 64 * u64::from(i)
    }
    fn left(i: u32) -> u64 {
        1024 + 64 * u64::from(i)
    }
}

fn main(info: &Info) -> Result<ExitCode, Error> {
    let (me, count) = (info.partition_id(), info.partition_count());
    if !(2..=MAX).contains(&count) {
        println!("tally needs 2 to {MAX} partitions, the system has {count}");
        return Ok(ExitCode::FAILURE);
    }
    let frame = match if me == 0 { share(count) } else { bind() } {
        Ok(frame) => frame,
        Err(why) => {
            println!("{why}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if !count_until_all_advance(frame, me, count) {
        return Ok(ExitCode::FAILURE);
    }
    println!("saw all {count} partitions advance at the same time");
    if !count_until_all_done(frame, me, count) {
        return Ok(ExitCode::FAILURE);
    }
    if me == 0 {
        // The grants end with this partition: wait until nobody uses the frame.
        let deadline = Deadline::after_millis(WAIT_MS);
        while (1..count).any(|i| frame.read(Frame::left(i)) == 0) {
            if deadline.passed() {
                println!("a grantee never left the shared frame");
                return Ok(ExitCode::FAILURE);
            }
        }
    } else {
        frame.write(Frame::left(me), 1);
    }
    Ok(ExitCode::SUCCESS)
}

/// The owner: a frame of its own, granted read-write to every other partition.
fn share(count: u32) -> Result<Frame, &'static str> {
    let (phys, ipa) =
        mem::alloc_mapped(BindAttributes::READ_WRITE).map_err(|_| "no frame to share")?;
    for i in 1..count {
        call::grant(phys, PartitionId(i), Rights::READ_WRITE).map_err(|_| "a grant was refused")?;
    }
    println!("granted {phys} to the {} others", count - 1);
    Ok(Frame(ipa))
}

/// A grantee: the owner's frame, once granted, bound read-write.
fn bind() -> Result<Frame, &'static str> {
    let deadline = Deadline::after_millis(WAIT_MS);
    let grant = loop {
        match call::grant_query(0) {
            Ok(grant) => break grant,
            Err(_) if deadline.passed() => return Err("no grant arrived"),
            Err(_) => {}
        }
    };
    call::bind(grant.phys, SHARED_IPA, BindAttributes::READ_WRITE)
        .map_err(|_| "the granted frame could not be bound")?;
    Ok(Frame(SHARED_IPA))
}

/// Counts until every other partition's counter has moved by [`ADVANCE`] since it was
/// first seen here; then says so in its "done" flag. False on a timeout.
fn count_until_all_advance(frame: Frame, me: u32, count: u32) -> bool {
    let mut first = [None::<u64>; MAX as usize];
    let mut own = 0u64;
    let deadline = Deadline::after_millis(WAIT_MS);
    loop {
        own += 1;
        frame.write(Frame::counter(me), own);
        let mut all = true;
        for i in (0..count).filter(|&i| i != me) {
            let now = frame.read(Frame::counter(i));
            let seen = *first[i as usize].get_or_insert(now);
            all &= now >= seen + ADVANCE;
        }
        if all {
            frame.write(Frame::done(me), 1);
            return true;
        }
        if own.is_multiple_of(1024) && deadline.passed() {
            let stuck = (0..count)
                .filter(|&i| i != me)
                .find(|&i| frame.read(Frame::counter(i)) < first[i as usize].unwrap_or(0) + ADVANCE)
                .unwrap_or(me);
            println!("partition {stuck}'s counter did not advance while this one counted");
            return false;
        }
    }
}

/// Counts on until every partition is done, so the others see this one advance. False on a
/// timeout.
fn count_until_all_done(frame: Frame, me: u32, count: u32) -> bool {
    let mut own = frame.read(Frame::counter(me));
    let deadline = Deadline::after_millis(WAIT_MS);
    while (0..count).any(|i| frame.read(Frame::done(i)) == 0) {
        own += 1;
        frame.write(Frame::counter(me), own);
        if own.is_multiple_of(1024) && deadline.passed() {
            println!("not every partition saw the others advance");
            return false;
        }
    }
    true
}
