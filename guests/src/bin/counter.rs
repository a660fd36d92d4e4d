//! `counter`: counts from 1 to 5, yielding between counts so its output interleaves with the
//! other partitions', checks that an unknown exo call is refused with `NOT_SUPPORTED`, and
//! ends with PSCI `SYSTEM_OFF`, which for a partition means "done, successfully".

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::abi::call::exo_call;
use exo_libos::{Error, ExitCode, Info, hypercall, println};

exo_libos::entry!(main);

/// An exo function number the kernel does not implement.
const UNKNOWN_FUNCTION: u16 = 0x7FF;

fn main(_info: &Info) -> Result<ExitCode, Error> {
    for count in 1..=5 {
        println!("count {count}");
        hypercall::yield_now()?;
    }
    match hypercall::call(exo_call(UNKNOWN_FUNCTION), &[]) {
        Err(Error::NotSupported) => println!("unknown call {UNKNOWN_FUNCTION:#x} refused"),
        other => {
            println!(
                "unknown call {UNKNOWN_FUNCTION:#x} returned {other:?}, expected NotSupported"
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    println!("done, powering off");
    let refused = hypercall::system_off();
    println!("SYSTEM_OFF returned: {refused}");
    Ok(ExitCode::FAILURE)
}
