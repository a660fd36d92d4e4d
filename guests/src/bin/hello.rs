//! `hello`: greets by name, shows what the kernel told it (identity, memory bindings, SMCCC
//! and PSCI versions), yields once and exits successfully.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::info::Rights;
use exo_libos::{Error, Info, hypercall, println};

exo_libos::entry!(main);

fn main(info: &Info) -> Result<(), Error> {
    println!(
        "hello from partition {} (id {})",
        info.name(),
        info.partition_id()
    );
    println!(
        "ABI {}, timer {} Hz, {} memory bindings:",
        info.abi_version(),
        info.timer_frequency(),
        info.bindings().count()
    );
    for binding in info.bindings() {
        println!(
            "  IPA {:#012x} -> PA {:#012x}, {:4} pages, {}, {:?}",
            binding.ipa.raw(),
            binding.phys.raw(),
            binding.pages,
            Rights(binding.rights),
            binding.kind
        );
    }
    if info.bindings_truncated() {
        println!("  (more bindings than the info page lists)");
    }
    println!(
        "SMCCC {}, PSCI {}",
        hypercall::smccc_version()?,
        hypercall::psci_version()?
    );
    hypercall::yield_now()?;
    println!("hello again from {} after yielding", info.name());
    Ok(())
}
