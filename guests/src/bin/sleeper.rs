//! `sleeper`: sleeps 20 times for 5 ms with `timer::sleep`, which arms the virtual timer and
//! blocks in `EXO_WAIT_EVENT`, giving the CPU to the other partitions (a `spinner` in the
//! test) until the kernel wakes it for the timer, even while it is not scheduled. Checks that
//! every sleep lasted at least 5 ms and not absurdly long, and that the wake-ups came from the
//! timer interrupt.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_guests::Failure;
use exo_libos::time::{Duration, Instant};
use exo_libos::{ExitCode, Info, irq, println, timer};

exo_libos::entry!(main);

/// How many sleeps.
const SLEEPS: u32 = 20;
/// How long each.
const SLEEP: Duration = Duration::from_millis(5);
/// Longer than this is not a 5 ms sleep any more, even behind a 10 ms time slice.
const LIMIT: Duration = Duration::from_millis(50);

fn main(info: &Info) -> Result<ExitCode, Failure> {
    let kind = irq::init(info)?;
    println!(
        "{kind:?} CPU interface; sleeping {SLEEPS} times {} ms",
        SLEEP.as_millis()
    );
    let (mut shortest, mut longest, mut total) = (Duration::MAX, Duration::ZERO, Duration::ZERO);
    let start = Instant::now();
    for n in 1..=SLEEPS {
        let before = Instant::now();
        timer::sleep(SLEEP)?;
        let slept = before.elapsed();
        if slept < SLEEP || slept > LIMIT {
            println!(
                "sleep {n} lasted {} us, not between {} and {} us",
                slept.as_micros(),
                SLEEP.as_micros(),
                LIMIT.as_micros()
            );
            return Ok(ExitCode::FAILURE);
        }
        shortest = shortest.min(slept);
        longest = longest.max(slept);
        total += slept;
    }
    let elapsed = start.elapsed();
    let wake_ups = timer::wake_ups();
    let (handled, unhandled) = irq::counts();
    println!(
        "{SLEEPS} sleeps of {} ms: shortest {} us, longest {} us, mean {} us ({} ms in all)",
        SLEEP.as_millis(),
        shortest.as_micros(),
        longest.as_micros(),
        (total / SLEEPS).as_micros(),
        elapsed.as_millis()
    );
    println!("{wake_ups} timer wake-ups, {handled} interrupts handled, {unhandled} unhandled");
    if wake_ups == 0 || unhandled != 0 {
        println!("the sleeps did not end by the timer interrupt");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
