//! `claimant`: claims its whole guarantee after the borrowers have taken every free frame,
//! so the kernel must get frames back from them (politely, or by the abort protocol).
//!
//! It waits (yielding) until free memory cannot cover its claim, claims with
//! `EXO_FRAME_ALLOC` (which blocks until the frames are there), maps the frames and checks
//! they are all zero. A partition whose name ends in `twice` then gives them all back, waits
//! for the borrowers to take them again and claims a second time.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::abi::BindAttributes;
use exo_libos::abi::PAGE_SIZE;
use exo_libos::mem::{self, call};
use exo_libos::time::Deadline;
use exo_libos::{Error, ExitCode, Info, Ipa, PhysAddr, println, probe};

/// `u64` words in a page.
const PAGE_SIZE_WORDS: u64 = 512;

exo_libos::entry!(main);

/// The 2 MiB block where claimed frames are bound: page 0 holds the warm-up frame.
const CLAIM_WINDOW: Ipa = Ipa::new(0x40_0000_0000);

/// How long to wait for the borrowers to grow.
const WAIT_MS: u64 = 40_000;

fn main(info: &Info) -> Result<ExitCode, Error> {
    let rounds = if info.name().ends_with("twice") { 2 } else { 1 };
    let warm_up = mem::alloc_one()?;
    mem::bind(warm_up, CLAIM_WINDOW, BindAttributes::READ_WRITE)?;
    for round in 1..=rounds {
        let usage = call::mem_info()?;
        let want = usage.guaranteed.saturating_sub(usage.held) as usize;
        if want == 0 || want > 511 {
            println!(
                "cannot claim {want} frames (held {}, guaranteed {})",
                usage.held, usage.guaranteed
            );
            return Ok(ExitCode::FAILURE);
        }
        let deadline = Deadline::after_millis(WAIT_MS);
        let mut yields = 0;
        while call::mem_info()?.free >= want as u64 && !deadline.passed() {
            mem::yield_now()?;
            yields += 1;
        }
        let free = call::mem_info()?.free;
        println!("claiming {want} frames with {free} free, after {yields} yields");
        let mut frames = [PhysAddr::new(0); 512];
        let frames = &mut frames[..want];
        mem::alloc(frames)?;
        let mut nonzero = 0;
        for (page, &phys) in frames.iter().enumerate() {
            let ipa = CLAIM_WINDOW.add((page as u64 + 1) * PAGE_SIZE);
            mem::bind(phys, ipa, BindAttributes::READ_WRITE)?;
            nonzero += (0..PAGE_SIZE_WORDS)
                .filter(|&w| probe::read_u64(ipa.add(w * 8)) != Ok(0))
                .count();
        }
        if nonzero != 0 {
            println!("{nonzero} words of the claimed frames are not zero");
            return Ok(ExitCode::FAILURE);
        }
        println!(
            "claimed {want} frames{}, all zero",
            if round > 1 { " again" } else { "" }
        );
        if round < rounds {
            for &phys in frames.iter() {
                mem::release(phys)?;
            }
            println!("gave {want} frames back");
        }
    }
    Ok(ExitCode::SUCCESS)
}
