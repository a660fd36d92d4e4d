//! `donor`: gives every time slice it gets to the partition named `light`
//! (`EXO_DONATE`), until `light` has ended; prints how many slices it gave away.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::hypercall;
use exo_libos::mem::call::partition_lookup;
use exo_libos::{Error, ExitCode, Info, println};

exo_libos::entry!(main);

fn main(_info: &Info) -> Result<ExitCode, Error> {
    let light = partition_lookup("light")?;
    let mut donated: u64 = 0;
    loop {
        match hypercall::donate(light) {
            Ok(()) => donated += 1,
            // `light` ended: nothing left to give to.
            Err(Error::UnknownPartition) => break,
            // Not runnable at this instant: try again next slot.
            Err(Error::Busy) => hypercall::yield_now().map(drop)?,
            Err(other) => return Err(other),
        }
    }
    println!("donated {donated} slices to light");
    Ok(ExitCode::SUCCESS)
}
