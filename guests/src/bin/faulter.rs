//! `faulter`: reads an IPA outside its bindings. The kernel must stop it with a stage-2
//! fault; if the read returns, isolation is broken.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::{ExitCode, Info, println, probe};

exo_libos::entry!(main);

/// How far past the end of its RAM to read.
const DISTANCE: u64 = 1024 * 1024;

fn main(info: &Info) -> ExitCode {
    let target = info.ram_end().add(DISTANCE);
    if let Some(binding) = info.binding_at(target) {
        println!("IPA {target} is bound ({binding:?}); cannot test isolation there");
        return ExitCode::FAILURE;
    }
    println!("reading memory that is not mine");
    match probe::read_u64(target) {
        Ok(value) => println!("read returned {value:#x}: isolation is broken"),
        Err(refused) => println!("probe of {target} refused: {refused:?}"),
    }
    ExitCode::FAILURE
}
