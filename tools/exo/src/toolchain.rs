//! Finding a Rust toolchain that can build for bare-metal AArch64.
//!
//! The kernel is built for `aarch64-unknown-none-softfloat` (it never touches FP/SIMD
//! registers, so it need not save them on every trap) and the guests for
//! `aarch64-unknown-none`. Detection, in this order:
//!
//! 1. **rustup**: `rustup target list --installed` lists both targets. Builds run
//!    `cargo build --release --target T` with the rustup toolchain's cargo and rustc
//!    (`rustup which`).
//! 2. **Debian's `rustc-web` / `cargo-web`**: `/usr/bin/cargo` and `/usr/bin/rustc` of version
//!    [`MIN_DEBIAN_RUST`] or newer, with the standard library's sources at [`DEBIAN_RUST_SRC`].
//!    Builds add `-Zbuild-std=core,alloc -Zbuild-std-features=compiler-builtins-mem` and run
//!    with `RUSTC=/usr/bin/rustc`, `RUSTDOC=/usr/bin/rustdoc`, `RUSTC_BOOTSTRAP=1` and
//!    `CARGO_TARGET_<T>_LINKER` set to an LLD: rustup's `rust-lld` (in the rustup rustc's
//!    sysroot), else `ld.lld` or `rust-lld` on `PATH`.
//! 3. Otherwise an error telling to run `scripts/setup`.
//!
//! Either way the child cargo gets a clean environment: variables an outer `cargo run` or
//! `cargo test` set (`RUSTUP_TOOLCHAIN`, `RUSTFLAGS`, `CARGO_TARGET_DIR`, `CARGO_PKG_*`, ...)
//! are removed, so the cross build always uses the workspace's own `target/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::workspace::Workspace;

/// Target of the kernel.
pub const KERNEL_TARGET: &str = "aarch64-unknown-none-softfloat";
/// Target of the guests (library OS and programs).
pub const GUEST_TARGET: &str = "aarch64-unknown-none";
/// Oldest Debian rustc accepted: the workspace's `rust-version` (let chains; proptest 1.12 and
/// arm-gic's register crates need 1.88).
pub const MIN_DEBIAN_RUST: (u32, u32) = (1, 88);
/// Where Debian's `rust-web-src` puts the standard library's sources.
pub const DEBIAN_RUST_SRC: &str = "/usr/lib/rustlib/src/rust/library";

/// Environment variables removed from every child cargo.
const CLEARED_VARS: &[&str] = &[
    "RUSTUP_TOOLCHAIN",
    "RUSTC",
    "RUSTDOC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "RUSTC_BOOTSTRAP",
    "CARGO",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_TARGET_DIR",
    "CARGO_MAKEFLAGS",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_CRATE_NAME",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
    "OUT_DIR",
];
/// Prefixes of environment variables removed from every child cargo.
const CLEARED_PREFIXES: &[&str] = &[
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "CARGO_BIN_",
    "CARGO_CFG_",
    "CARGO_FEATURE_",
];

/// A toolchain able to build both targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Toolchain {
    /// rustup with both targets installed: its toolchain's own binaries (`rustup which`),
    /// so a Debian cargo earlier on `PATH` cannot be picked up by mistake.
    Rustup {
        /// The toolchain's cargo.
        cargo: PathBuf,
        /// The toolchain's rustc, passed to cargo as `RUSTC`.
        rustc: PathBuf,
    },
    /// Debian's cargo and rustc with `-Zbuild-std`.
    DebianBuildStd {
        /// The LLD to link with.
        linker: PathBuf,
    },
}

/// Detects the toolchain, as the [module documentation](self) describes.
pub fn detect(workspace: &Workspace) -> anyhow::Result<Toolchain> {
    let rustup = clean(Command::new("rustup"))
        .args(["target", "list", "--installed"])
        .current_dir(workspace.root())
        .output();
    let mut notes = Vec::new();
    match rustup {
        Ok(output) if output.status.success() => {
            let installed = String::from_utf8_lossy(&output.stdout);
            let has = |t: &str| installed.lines().any(|l| l.trim() == t);
            if has(KERNEL_TARGET) && has(GUEST_TARGET) {
                return Ok(Toolchain::Rustup {
                    cargo: rustup_which(workspace, "cargo").unwrap_or_else(|| "cargo".into()),
                    rustc: rustup_which(workspace, "rustc").unwrap_or_else(|| "rustc".into()),
                });
            }
            notes.push(format!(
                "rustup lacks target(s): {}",
                [KERNEL_TARGET, GUEST_TARGET]
                    .iter()
                    .filter(|t| !has(t))
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(_) => notes.push("`rustup target list --installed` failed".into()),
        Err(_) => notes.push("no rustup".into()),
    }
    match debian(workspace) {
        Ok(toolchain) => Ok(toolchain),
        Err(e) => {
            notes.push(format!("Debian toolchain: {e}"));
            bail!(
                "no Rust toolchain for {KERNEL_TARGET} and {GUEST_TARGET} ({}); run scripts/setup",
                notes.join("; ")
            )
        }
    }
}

fn debian(workspace: &Workspace) -> anyhow::Result<Toolchain> {
    for tool in ["/usr/bin/cargo", "/usr/bin/rustc"] {
        if !Path::new(tool).is_file() {
            bail!("no {tool}");
        }
    }
    let output = clean(Command::new("/usr/bin/rustc"))
        .arg("--version")
        .output()
        .context("running /usr/bin/rustc --version")?;
    let version = String::from_utf8_lossy(&output.stdout).into_owned();
    match parse_version(&version) {
        Some(v) if v >= MIN_DEBIAN_RUST => {}
        _ => bail!(
            "/usr/bin/rustc is `{}`, need {}.{} or newer",
            version.trim(),
            MIN_DEBIAN_RUST.0,
            MIN_DEBIAN_RUST.1
        ),
    }
    if !Path::new(DEBIAN_RUST_SRC).is_dir() {
        bail!("no library sources at {DEBIAN_RUST_SRC} (install rust-web-src)");
    }
    let linker = find_lld(workspace).context("no rust-lld or ld.lld")?;
    Ok(Toolchain::DebianBuildStd { linker })
}

/// The path of `tool` in rustup's active toolchain for the workspace, if rustup is there.
fn rustup_which(workspace: &Workspace, tool: &str) -> Option<PathBuf> {
    clean(Command::new("rustup"))
        .args(["which", tool])
        .current_dir(workspace.root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
}

/// Parses `rustc 1.85.0 (...)` into `(1, 85)`.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// rustup's `rust-lld`, else `ld.lld` or `rust-lld` on `PATH`.
fn find_lld(workspace: &Workspace) -> Option<PathBuf> {
    // The rustup rustc, else whatever `rustc` is on PATH.
    let rustc_path = rustup_which(workspace, "rustc").unwrap_or_else(|| PathBuf::from("rustc"));
    let rustc = |args: &[&str]| -> Option<String> {
        let output = clean(Command::new(&rustc_path)).args(args).output().ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    };
    if let (Some(sysroot), Some(verbose)) = (rustc(&["--print", "sysroot"]), rustc(&["-vV"])) {
        let host = verbose.lines().find_map(|l| l.strip_prefix("host: "));
        if let Some(host) = host {
            let lld = Path::new(sysroot.trim())
                .join("lib/rustlib")
                .join(host)
                .join("bin/rust-lld");
            if lld.is_file() {
                return Some(lld);
            }
        }
    }
    let path = std::env::var_os("PATH")?;
    ["ld.lld", "rust-lld"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Removes the variables an outer cargo may have set (see the module documentation).
pub fn clean(mut command: Command) -> Command {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if CLEARED_VARS.contains(&name) || CLEARED_PREFIXES.iter().any(|p| name.starts_with(p)) {
            command.env_remove(name);
        }
    }
    command
}

impl Toolchain {
    /// A `cargo build --release --target <target>` command run from the workspace root,
    /// to which the caller adds packages and environment.
    pub fn cargo_build(&self, workspace: &Workspace, target: &str) -> Command {
        let mut command = match self {
            Toolchain::Rustup { cargo, rustc } => {
                let mut command = clean(Command::new(cargo));
                command.env("RUSTC", rustc);
                command
            }
            Toolchain::DebianBuildStd { linker } => {
                let mut command = clean(Command::new("/usr/bin/cargo"));
                let upper = target.to_uppercase().replace('-', "_");
                command
                    .env("RUSTC", "/usr/bin/rustc")
                    .env("RUSTDOC", "/usr/bin/rustdoc")
                    .env("RUSTC_BOOTSTRAP", "1")
                    .env(format!("CARGO_TARGET_{upper}_LINKER"), linker);
                command
            }
        };
        command
            .current_dir(workspace.root())
            .args(["build", "--release", "--target", target]);
        if let Toolchain::DebianBuildStd { .. } = self {
            command.args([
                "-Zbuild-std=core,alloc",
                "-Zbuild-std-features=compiler-builtins-mem",
            ]);
        }
        command
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rustc_versions() {
        assert_eq!(
            parse_version("rustc 1.85.0 (4d91de4e4 2025-02-17)"),
            Some((1, 85))
        );
        assert_eq!(
            parse_version("rustc 1.96.0 (built from a source tarball)"),
            Some((1, 96))
        );
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn debian_commands_use_build_std_and_the_linker() {
        let workspace = Workspace::at("/w");
        let toolchain = Toolchain::DebianBuildStd {
            linker: "/l/rust-lld".into(),
        };
        let command = toolchain.cargo_build(&workspace, KERNEL_TARGET);
        assert_eq!(command.get_program(), "/usr/bin/cargo");
        let args: Vec<_> = command.get_args().map(|a| a.to_str().unwrap()).collect();
        assert!(args.contains(&"-Zbuild-std=core,alloc"), "{args:?}");
        let linker = command
            .get_envs()
            .find(|(k, _)| *k == "CARGO_TARGET_AARCH64_UNKNOWN_NONE_SOFTFLOAT_LINKER")
            .and_then(|(_, v)| v);
        assert_eq!(linker, Some(std::ffi::OsStr::new("/l/rust-lld")));
    }

    #[test]
    fn clean_removes_what_an_outer_cargo_sets() {
        // Cargo sets CARGO_PKG_NAME and CARGO_MANIFEST_DIR for the test binary itself.
        let command = clean(Command::new("true"));
        let removed: Vec<_> = command
            .get_envs()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k)
            .collect();
        assert!(
            removed.iter().any(|k| *k == "CARGO_PKG_NAME"),
            "{removed:?}"
        );
        assert!(
            removed.iter().any(|k| *k == "CARGO_MANIFEST_DIR"),
            "{removed:?}"
        );
    }
}
