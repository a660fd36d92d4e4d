//! `pager`: demand paging. A fault handler allocates a frame and binds it at the faulting
//! page; the program then touches 64 pages of a sparse array it never mapped, writing and
//! reading back each one. Its bookkeeping uses the library OS heap (`Vec`).

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use exo_libos::abi::BindAttributes;
use exo_libos::mem;
use exo_libos::upcall::{self, Access, FaultResolution};
use exo_libos::{Error, ExitCode, Info, Ipa, println, probe};

exo_libos::entry!(main);
exo_libos::global_allocator!();

/// Start of the sparse array.
const ARRAY: Ipa = Ipa::new(0x2_0000_0000);
/// Distance between the pages touched.
const STRIDE: u64 = 64 * 1024;
/// Pages touched.
const PAGES: u64 = 64;

static PAGED_IN: AtomicU64 = AtomicU64::new(0);

/// Binds a fresh frame at a faulting page of the array; anything else is a bug.
fn page_in(ipa: Ipa, _access: Access) -> FaultResolution {
    if ipa < ARRAY || ipa >= ARRAY.add(PAGES * STRIDE) {
        return FaultResolution::Fail;
    }
    let bound = mem::alloc_one()
        .and_then(|phys| mem::bind(phys, ipa.page_base(), BindAttributes::READ_WRITE));
    match bound {
        Ok(()) => {
            PAGED_IN.fetch_add(1, Ordering::Relaxed);
            FaultResolution::Retry
        }
        Err(error) => {
            println!("cannot page in {ipa}: {error}");
            FaultResolution::Fail
        }
    }
}

fn main(_info: &Info) -> Result<ExitCode, Error> {
    upcall::set_fault_handler(page_in)?;
    let mut touched: Vec<Ipa> = Vec::new();
    for page in 0..PAGES {
        let ipa = ARRAY.add(page * STRIDE + (page % 8) * 8);
        let value = 0x5EED_0000_0000 | page;
        let _ = probe::write_u64(ipa, value);
        if probe::read_u64(ipa) != Ok(value) {
            println!("page {page} at {ipa} did not keep its value");
            return Ok(ExitCode::FAILURE);
        }
        touched.push(ipa);
    }
    // Every page again: no new faults now.
    for (page, &ipa) in touched.iter().enumerate() {
        if probe::read_u64(ipa) != Ok(0x5EED_0000_0000 | page as u64) {
            println!("page {page} lost its value");
            return Ok(ExitCode::FAILURE);
        }
    }
    let paged = PAGED_IN.load(Ordering::Relaxed);
    let faults = upcall::counts().fault;
    if paged != PAGES || faults != PAGES {
        println!("expected {PAGES} faults and pages, got {faults} faults and {paged} pages");
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "paged in {paged} pages on demand ({} frames held)",
        mem::held()
    );
    Ok(ExitCode::SUCCESS)
}
