//! `pmuprobe`: reads the performance monitors' cycle counter, which every partition on a core
//! shares. The kernel traps the access (`MDCR_EL2.TPM`) and stops this partition; the line
//! after the read must never be printed.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::{Error, ExitCode, Info, println, registers};

exo_libos::entry!(main);

fn main(_info: &Info) -> Result<ExitCode, Error> {
    println!("reading PMCCNTR_EL0");
    let cycles = registers::read_cycle_counter();
    println!("read the shared cycle counter: {cycles}");
    Ok(ExitCode::SUCCESS)
}
