//! Chooses the board's linker script when the kernel is built for bare metal.
//!
//! `exo build` sets `EXO_LINKER_SCRIPT` to `platform/<board>/kernel.ld`; a plain cargo build
//! gets QEMU `virt`. Board scripts include `platform/common/kernel-sections.ld`.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=EXO_LINKER_SCRIPT");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("..");
    let script = std::env::var("EXO_LINKER_SCRIPT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("platform/qemu-virt/kernel.ld"));
    let common = root.join("platform/common");
    println!("cargo:rerun-if-changed={}", script.display());
    println!(
        "cargo:rerun-if-changed={}",
        common.join("kernel-sections.ld").display()
    );
    println!("cargo:rustc-link-arg-bins=-L{}", common.display());
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
}
