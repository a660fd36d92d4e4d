//! The exo kernel image. Boot code, vectors and the panic handler live in the library
//! (`arch::aarch64`); linking it is all this binary does.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
use exo_kernel as _;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("exo-kernel runs on bare-metal AArch64; build it with `scripts/run` or `exo build`");
    std::process::exit(1);
}
