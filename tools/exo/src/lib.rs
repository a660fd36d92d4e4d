//! `exo-tool`: the host side of exo, as a library the `exo` binary and the system tests share.
//!
//! The pipeline is
//!
//! 1. [`config`]: read a system configuration (TOML) and the [`board`] it names, and check
//!    everything the host can check, with errors that name file and line;
//! 2. [`cross`]: cross-build the kernel and the guest programs with the AArch64 Rust
//!    toolchain found by [`toolchain`];
//! 3. [`image`]: flatten the kernel ELF and append the boot package describing each
//!    partition and its program's segments ([`elf`] reads both kinds of ELF);
//! 4. [`qemu`]: boot the image and decide the outcome from the kernel's [`console`] lines.
//!
//! [`check`], [`build`] and [`run_system`] run the pipeline up to each stage.

#![forbid(unsafe_code)]

pub mod bench;
pub mod bench_table;
pub mod board;
pub mod config;
pub mod console;
pub mod cross;
pub mod deploy;
pub mod duration;
pub mod elf;
pub mod image;
pub mod linux;
pub mod profile;
pub mod qemu;
pub mod size;
pub mod toolchain;
pub mod workspace;

use std::path::{Path, PathBuf};

pub use config::{ConfigError, System};
pub use console::{PartitionResult, Revocation, RevocationOutcome, RunEnd, RunOutcome};
pub use qemu::RunOptions;
pub use workspace::Workspace;

/// Checks a configuration file without building anything: the `exo check` command.
///
/// `board` overrides the configuration's `[system] board`.
pub fn check(
    workspace: &Workspace,
    config: &Path,
    board: Option<&str>,
) -> Result<System, ConfigError> {
    config::load(workspace, config, board)
}

/// Checks a configuration, cross-builds the kernel and guests and writes the boot image:
/// the `exo build` command. Returns the checked system and the image's path.
///
/// A [`ConfigError`] (inside the [`anyhow::Error`]) means the configuration was refused.
pub fn build(
    workspace: &Workspace,
    config: &Path,
    board: Option<&str>,
) -> anyhow::Result<(System, PathBuf)> {
    let system = config::load(workspace, config, board)?;
    let toolchain = toolchain::detect(workspace)?;
    let guests = !system.guest_programs().is_empty();
    let artefacts = cross::build(workspace, &toolchain, &system.board, guests)?;
    let image = image::write_image(workspace, &system, &artefacts)?;
    Ok((system, image))
}

/// Checks and builds a configuration and writes a Raspberry Pi 4 boot folder `out` (and,
/// if asked, an SD card image): the `exo image` command.
pub fn image(
    workspace: &Workspace,
    config: &Path,
    board: Option<&str>,
    out: &Path,
    options: &deploy::ImageOptions,
) -> anyhow::Result<deploy::BootFolder> {
    if options.chain_loader {
        let system = config::load(workspace, config, board)?;
        if system.board.name != deploy::BOARD {
            anyhow::bail!(
                "the chain loader is for the Raspberry Pi 4 (--board {}), not board `{}`",
                deploy::BOARD,
                system.board.name
            );
        }
        let loader = deploy::chain_loader::build(workspace, options.console)?;
        let dir = workspace.build_dir(&system.board.name);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("exo-loader.img");
        std::fs::write(&path, loader)?;
        return deploy::write_boot_folder(workspace, &system, &path, out, options);
    }
    let (system, image) = build(workspace, config, board)?;
    deploy::write_boot_folder(workspace, &system, &image, out, options)
}

/// Checks, builds and boots a configuration under QEMU, waiting at most
/// [`RunOptions::timeout`]: the `exo run` command, and what the system tests call.
///
/// `Err` means nothing was booted (bad configuration, build failure, QEMU missing);
/// otherwise the [`RunOutcome`] says what happened, and [`RunOutcome::success`] whether
/// it passed.
pub fn run_system(config: &Path, options: &RunOptions) -> anyhow::Result<RunOutcome> {
    let workspace = Workspace::locate_for(Some(config))?;
    let (system, image) = build(&workspace, config, options.board.as_deref())?;
    qemu::run(&system, &image, options)
}

/// Checks and builds a configuration for `board` and sends it over a serial line to the
/// chain loader on a board's card, then reads its console: `exo run --serial`.
pub fn run_serial(
    config: &Path,
    board: Option<&str>,
    options: &deploy::serial::SerialOptions,
) -> anyhow::Result<RunOutcome> {
    let workspace = Workspace::locate_for(Some(config))?;
    let system = config::load(&workspace, config, board)?;
    deploy::serial::check_board(&system)?;
    let (system, image) = build(&workspace, config, board)?;
    deploy::serial::run(&system, &image, options)
}
