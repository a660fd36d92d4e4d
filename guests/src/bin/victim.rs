//! `victim`: fills 64 KiB of its own free memory with a pattern, then lets the others run
//! until the faulter says (`EXO_SEND`) it has tried every route to this partition's frames,
//! then checks that the pattern is intact. It also prints where its frames are, so a test
//! can check the faulter aimed at them.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicBool, Ordering};

use exo_libos::mem::PartitionId;
use exo_libos::time::Deadline;
use exo_libos::{ExitCode, Info, hypercall, ipc, memory, println};

exo_libos::entry!(main);

/// How much memory to fill.
const SIZE: usize = 64 * 1024;
/// How long to wait for the faulter.
const WAIT_MS: u64 = 60_000;

/// The faulter has finished its attempts.
static DONE: AtomicBool = AtomicBool::new(false);

fn on_message(_sender: PartitionId, _word: u64) {
    DONE.store(true, Ordering::Relaxed);
}

/// The byte expected at `index`: varies with the position so a shifted or repeated page
/// does not pass for the right one.
fn pattern(index: usize) -> u8 {
    (index as u8) ^ ((index >> 8) as u8).wrapping_mul(31) ^ 0xA5
}

fn main(info: &Info) -> ExitCode {
    for binding in info.bindings() {
        println!("frames {}..+{} pages", binding.phys, binding.pages);
    }
    let Some(free) = memory::take_free_memory(info) else {
        println!("no free memory");
        return ExitCode::FAILURE;
    };
    let Some(region) = free.get_mut(..SIZE) else {
        println!("only {} bytes of free memory, need {SIZE}", free.len());
        return ExitCode::FAILURE;
    };
    for (index, byte) in region.iter_mut().enumerate() {
        *byte = pattern(index);
    }
    if let Err(error) = ipc::set_message_handler(on_message) {
        println!("cannot take messages: {error}");
        return ExitCode::FAILURE;
    }
    println!("pattern written");
    let deadline = Deadline::after_millis(WAIT_MS);
    while !DONE.load(Ordering::Relaxed) {
        if deadline.passed() {
            println!("the faulter never said it was done");
            return ExitCode::FAILURE;
        }
        if let Err(error) = hypercall::yield_now() {
            println!("yield failed: {error}");
            return ExitCode::FAILURE;
        }
    }
    match region
        .iter()
        .enumerate()
        .find(|&(index, &byte)| byte != pattern(index))
    {
        None => {
            println!("data intact");
            ExitCode::SUCCESS
        }
        Some((index, &byte)) => {
            println!(
                "data CORRUPTED at offset {index:#x}: {byte:#04x}, expected {:#04x}",
                pattern(index)
            );
            ExitCode::FAILURE
        }
    }
}
