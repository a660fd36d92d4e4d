//! `neighbour`: the library-OS partition beside a hostile Linux (tests/configs/linux-hostile.toml).
//! It owns SPI 48, fills 256 KiB of its memory with a pattern, and for 12 s watches that
//! no interrupt arrives that it did not raise, while Linux pokes at SPI 48 through the GIC
//! distributor (enable, disable, pending, active, priority, trigger) and then at memory
//! outside its own. Then it raises SPI 48 itself (it must still arrive: enabled, routed),
//! checks its pattern and runs the kernel's self-check.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_guests::{Failure, spi_watch};
use exo_libos::mem::call as mem_call;
use exo_libos::time::Duration;
use exo_libos::{ExitCode, Info, hypercall, irq, memory, println, timer};

exo_libos::entry!(main);

/// The SPI this partition owns.
const SPI: u32 = 48;
/// How long to watch while Linux runs.
const WATCH: Duration = Duration::from_secs(12);
/// Bytes of memory to fill and check.
const SIZE: usize = 256 * 1024;

/// The byte expected at `index`.
fn pattern(index: usize) -> u8 {
    (index as u8) ^ ((index >> 8) as u8).wrapping_mul(37) ^ 0x5A
}

fn main(info: &Info) -> Result<ExitCode, Failure> {
    irq::init(info)?;
    spi_watch::watch(SPI)?;
    hypercall::irq_set_priority(SPI, 0x40)?;
    let Some(region) = memory::take_free_memory(info).and_then(|free| free.get_mut(..SIZE)) else {
        println!("not {SIZE} bytes of free memory");
        return Ok(ExitCode::FAILURE);
    };
    for (index, byte) in region.iter_mut().enumerate() {
        *byte = pattern(index);
    }
    println!("SPI {SPI} bound, pattern written; watching for {WATCH:?}");
    timer::sleep(WATCH)?;
    let arrived = spi_watch::received();
    if arrived != 0 {
        println!("SPI {SPI} arrived {arrived} times, never raised by this partition");
        return Ok(ExitCode::FAILURE);
    }
    hypercall::irq_raise(SPI)?;
    if !timer::wait_for(Duration::from_secs(1), || spi_watch::received() == 1)? {
        println!("SPI {SPI}, raised by this partition, did not arrive");
        return Ok(ExitCode::FAILURE);
    }
    let stray = spi_watch::stray();
    if stray != 0 {
        println!("{stray} interrupts arrived that are not ours");
        return Ok(ExitCode::FAILURE);
    }
    if let Some((index, byte)) = region.iter().enumerate().find(|&(i, &b)| b != pattern(i)) {
        println!("data CORRUPTED at offset {index:#x}: {byte:#04x}");
        return Ok(ExitCode::FAILURE);
    }
    let frames = mem_call::self_check()?;
    println!("SPI {SPI} untouched and still ours, data intact, self-check ok over {frames} frames");
    Ok(ExitCode::SUCCESS)
}
