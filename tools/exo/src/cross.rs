//! Cross-building the kernel and the guest programs with the detected [`Toolchain`].
//!
//! - kernel: package `exo-kernel`, binary `exo-kernel`, for [`KERNEL_TARGET`], with
//!   `EXO_LINKER_SCRIPT` set to the board's linker script (the kernel's `build.rs` reads it);
//!   the ELF is then copied to `build/<board>/exo-kernel.elf`, because boards share
//!   `target/`;
//! - the chain loader (only for `exo image --chain-loader`): package `exo-loader`, for
//!   [`KERNEL_TARGET`], linked by its own `loader/loader.ld`;
//! - guests: every binary of package `exo-guests`, for [`GUEST_TARGET`], found at
//!   `target/aarch64-unknown-none/release/<name>`.

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::board::Board;
use crate::toolchain::{GUEST_TARGET, KERNEL_TARGET, Toolchain};
use crate::workspace::Workspace;

/// Package and binary name of the kernel.
pub const KERNEL_PACKAGE: &str = "exo-kernel";
/// Package and binary name of the serial chain loader.
pub const LOADER_PACKAGE: &str = "exo-loader";
/// Package holding the guest programs.
pub const GUEST_PACKAGE: &str = "exo-guests";

/// What a build produced.
#[derive(Clone, Debug)]
pub struct Artefacts {
    /// The board's copy of the kernel ELF.
    pub kernel: PathBuf,
    /// Directory of the guest program ELFs.
    pub guest_dir: PathBuf,
}

impl Artefacts {
    /// The ELF of guest program `name`.
    pub fn guest(&self, name: &str) -> PathBuf {
        self.guest_dir.join(name)
    }
}

/// Builds the kernel for `board` and, if `guests` is set, all guest programs.
pub fn build(
    workspace: &Workspace,
    toolchain: &Toolchain,
    board: &Board,
    guests: bool,
) -> anyhow::Result<Artefacts> {
    let script = board.linker_script.canonicalize().with_context(|| {
        format!(
            "board `{}`: linker script {} not found",
            board.name,
            board.linker_script.display()
        )
    })?;
    let mut kernel = toolchain.cargo_build(workspace, KERNEL_TARGET);
    kernel
        .args(["-p", KERNEL_PACKAGE, "--bin", KERNEL_PACKAGE])
        .env("EXO_LINKER_SCRIPT", &script);
    run(kernel, "the kernel")?;
    let built = workspace
        .target_dir()
        .join(KERNEL_TARGET)
        .join("release")
        .join(KERNEL_PACKAGE);
    let out_dir = workspace.build_dir(&board.name);
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let copy = out_dir.join("exo-kernel.elf");
    std::fs::copy(&built, &copy)
        .with_context(|| format!("copying {} to {}", built.display(), copy.display()))?;

    if guests {
        let mut command = toolchain.cargo_build(workspace, GUEST_TARGET);
        command.args(["-p", GUEST_PACKAGE, "--bins"]);
        run(command, "the guest programs")?;
    }
    Ok(Artefacts {
        kernel: copy,
        guest_dir: workspace.target_dir().join(GUEST_TARGET).join("release"),
    })
}

/// Builds the serial chain loader; returns its ELF.
pub fn build_loader(workspace: &Workspace, toolchain: &Toolchain) -> anyhow::Result<PathBuf> {
    let mut command = toolchain.cargo_build(workspace, KERNEL_TARGET);
    command.args(["-p", LOADER_PACKAGE, "--bin", LOADER_PACKAGE]);
    run(command, "the chain loader")?;
    Ok(workspace
        .target_dir()
        .join(KERNEL_TARGET)
        .join("release")
        .join(LOADER_PACKAGE))
}

fn run(mut command: std::process::Command, what: &str) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("starting {:?} to build {what}", command.get_program()))?;
    if !status.success() {
        bail!("building {what} failed ({status}): {command:?}");
    }
    Ok(())
}
