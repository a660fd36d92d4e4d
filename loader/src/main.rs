//! The chain loader for the Raspberry Pi 4 (see `lib.rs` for the protocol and `loader.ld`
//! for where it lives). `exo image --chain-loader` writes it as `kernel8.img`; the firmware
//! (or QEMU `-kernel`) loads it at `0x80000` and enters it like a kernel, at EL2 (or EL3)
//! with the MMU off and `x0` = the device tree. It moves itself to `LOADER_BASE`, copies the
//! device tree out of the way, turns on an identity map (so that Rust's unaligned accesses
//! are to Normal memory), and receives the image over the console UART into `0x80000`.
//! Then it cleans the caches, turns the MMU off and enters the image as the firmware would.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod bare;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("exo-loader runs on the Raspberry Pi 4; `exo image --chain-loader` builds it");
    std::process::exit(1);
}
