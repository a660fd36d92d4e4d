//! `panicker`: prints a line, then panics; the library OS reports the panic and exits with
//! status 101.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::{Info, println};

exo_libos::entry!(main);

fn main(info: &Info) {
    println!("{} is about to panic", info.name());
    panic!("deliberate panic in partition {}", info.partition_id());
}
