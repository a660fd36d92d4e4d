//! Links every guest program with the library OS's linker script when building for bare
//! metal (`libos/guest.ld`).

use std::path::PathBuf;

fn main() {
    let script = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("../libos/guest.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        // Segment alignment is the stage-2 granule, not lld's 64 KiB AArch64 default.
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
    }
}
