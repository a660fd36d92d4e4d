//! `victim`: fills 64 KiB of its own free memory with a pattern, yields a few times (so a
//! faulting neighbour gets to run), then checks that the pattern is intact.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::{ExitCode, Info, hypercall, memory, println};

exo_libos::entry!(main);

/// How much memory to fill.
const SIZE: usize = 64 * 1024;
/// How many times to let the others run.
const YIELDS: usize = 4;

/// The byte expected at `index`: varies with the position so a shifted or repeated page
/// does not pass for the right one.
fn pattern(index: usize) -> u8 {
    (index as u8) ^ ((index >> 8) as u8).wrapping_mul(31) ^ 0xA5
}

fn main(info: &Info) -> ExitCode {
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
    println!("pattern written");
    for _ in 0..YIELDS {
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
