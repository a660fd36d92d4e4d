//! `irqowner`: owns SPI 50 and shows it reaches its owner. Binds it, then raises it 40
//! times, each time waiting for it to arrive and yielding, so `intruder` runs its refused
//! calls on SPI 50 while this partition's interrupts are in flight. Then checks that a
//! disabled SPI is held back and arrives once enabled again, and that nothing else arrived.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_guests::{Failure, spi_watch};
use exo_libos::time::Duration;
use exo_libos::{ExitCode, Info, hypercall, irq, println, timer};

exo_libos::entry!(main);

/// The SPI this partition owns.
const SPI: u32 = 50;
/// How many times to raise it.
const RAISES: u64 = 40;
/// How long one raise may take to arrive.
const LIMIT: Duration = Duration::from_secs(1);

fn main(info: &Info) -> Result<ExitCode, Failure> {
    irq::init(info)?;
    if !info.owned_interrupts().any(|intid| intid == SPI) {
        println!("the configuration must give this partition SPI {SPI}");
        return Ok(ExitCode::FAILURE);
    }
    spi_watch::watch(SPI)?;
    hypercall::irq_set_priority(SPI, 0x40)?;
    hypercall::irq_set_target(SPI, 0)?;
    println!("SPI {SPI} bound; raising it {RAISES} times");

    for n in 1..=RAISES {
        hypercall::irq_raise(SPI)?;
        if !timer::wait_for(LIMIT, || spi_watch::received() >= n)? {
            println!("raise {n} of SPI {SPI} did not arrive within {LIMIT:?}");
            return Ok(ExitCode::FAILURE);
        }
        hypercall::yield_now()?;
    }

    // Disabled, a raised SPI stays pending in the distributor; enabled, it is delivered.
    hypercall::irq_disable(SPI)?;
    hypercall::irq_raise(SPI)?;
    if timer::wait_for(Duration::from_millis(30), || spi_watch::received() > RAISES)? {
        println!("SPI {SPI} arrived while disabled");
        return Ok(ExitCode::FAILURE);
    }
    hypercall::irq_enable(SPI)?;
    if !timer::wait_for(LIMIT, || spi_watch::received() > RAISES)? {
        println!("SPI {SPI}, raised while disabled, did not arrive once enabled");
        return Ok(ExitCode::FAILURE);
    }

    timer::sleep(Duration::from_millis(20))?;
    let (received, stray) = (spi_watch::received(), spi_watch::stray());
    if received != RAISES + 1 || stray != 0 {
        println!(
            "SPI {SPI} arrived {received} times for {} raises; {stray} other interrupts",
            RAISES + 1
        );
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "SPI {SPI} raised {} times, received {received} times; held back while disabled; \
         nothing else arrived",
        RAISES + 1
    );
    Ok(ExitCode::SUCCESS)
}
