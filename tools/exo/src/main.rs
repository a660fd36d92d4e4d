//! `exo`: check, build and run exo system configurations.
//!
//! Exit status: 0 on success, 1 when a build or a run fails, 2 when the configuration is
//! refused (then nothing was built or booted).

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use exo_tool::{ConfigError, RunOptions, Workspace};

/// Host tool of the exo exokernel.
#[derive(Parser)]
#[command(name = "exo", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a system configuration (nothing is built).
    Check(Target),
    /// Cross-build the kernel and guests and write the boot image; prints its path.
    Build(Target),
    /// Build a Raspberry Pi 4 boot folder: kernel8.img, config.txt, the firmware and its
    /// device tree (from pinned Debian packages), and optionally an SD card image.
    Image {
        #[command(flatten)]
        target: Target,
        /// The boot folder to write (created if missing; its files are overwritten).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Also write a card image (MBR, one FAT32 partition) to `dd` onto an SD card.
        #[arg(long, value_name = "FILE")]
        sd_image: Option<PathBuf>,
        /// The console UART on GPIO 14/15: the stock device tree's mini UART, or the PL011
        /// (needs --disable-bt-overlay).
        #[arg(long, value_enum, default_value = "mini-uart")]
        console: ConsoleChoice,
        /// The Raspberry Pi firmware's disable-bt.dtbo, for the PL011 console.
        #[arg(long, value_name = "FILE")]
        disable_bt_overlay: Option<PathBuf>,
        /// Write the serial chain loader as kernel8.img instead of the system: the card
        /// then boots whatever `exo run --board raspi4b --serial DEV` sends it.
        #[arg(long)]
        chain_loader: bool,
        /// Put the Arm JTAG port on GPIO 22-27 for a debugger (`enable_jtag_gpio=1` in
        /// config.txt; see docs/raspberry-pi.md).
        #[arg(long)]
        jtag: bool,
    },
    /// Build, boot under QEMU and report each partition's result.
    Run {
        #[command(flatten)]
        target: Target,
        /// Kill QEMU and fail after this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 60)]
        timeout: u64,
        /// QEMU binary to use instead of the board's.
        #[arg(long, value_name = "PATH")]
        qemu: Option<PathBuf>,
        /// Extra argument for QEMU (repeatable), e.g. `--qemu-arg=-d --qemu-arg=int`.
        #[arg(long = "qemu-arg", value_name = "ARG", allow_hyphen_values = true)]
        qemu_args: Vec<String>,
        /// File QEMU serial port 1 reads its input from: the board device with
        /// `qemu_serial = 1` (`uart1` on qemu-virt), which some partition must own.
        #[arg(long, value_name = "FILE")]
        serial1_input: Option<PathBuf>,
        /// File QEMU serial port 1 writes to [default when a partition owns that device:
        /// build/<board>/<config stem>.serial1.log, printed at start].
        #[arg(long, value_name = "FILE")]
        serial1_output: Option<PathBuf>,
        /// Device tree for QEMU's `-dtb` instead of the board's: a blob, or a .dts source
        /// (compiled with dtc), e.g. the Raspberry Pi's own on raspi4b.
        #[arg(long, value_name = "FILE")]
        dtb: Option<PathBuf>,
        /// Run on a board instead of QEMU: send the image over this serial line to the
        /// chain loader on its card (`exo image --chain-loader`) and read its console.
        #[arg(
            long,
            value_name = "DEV",
            conflicts_with_all = ["qemu", "qemu_args", "serial1_input", "serial1_output", "dtb"]
        )]
        serial: Option<PathBuf>,
        /// The serial line's speed, with --serial.
        #[arg(long, value_name = "BAUD", default_value_t = exo_tool::deploy::serial::DEFAULT_BAUD)]
        baud: u32,
    },
    /// Fetch Debian's stock arm64 kernel and busybox at the versions pinned in
    /// guests/linux/debian.toml (apt-get download, checksums checked, never installed) and
    /// build the test initramfs; writes build/linux/vmlinuz and build/linux/initramfs.cpio.gz.
    FetchLinux,
    /// Write the device tree a Linux partition boots with (`dtc -I dtb FILE` shows it).
    LinuxDtb {
        #[command(flatten)]
        target: Target,
        /// The Linux partition.
        #[arg(long, value_name = "NAME")]
        partition: String,
        /// Where to write the blob.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Boot a configuration with every kernel instruction logged (QEMU `-icount`, one
    /// instruction per block) and report which kernel functions executed how many. Slow,
    /// and the temporary log can take hundreds of MB.
    Profile {
        #[command(flatten)]
        target: Target,
        /// Functions to list.
        #[arg(long, default_value_t = 25)]
        top: usize,
        /// Kill QEMU and fail after this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 600)]
        timeout: u64,
    },
    /// Boot benchmarks under QEMU `-icount` (virtual time counted in instructions, so
    /// results repeat exactly). With a configuration: report every revocation's latency and
    /// what partitions measured (`bench name=value` lines). Without one: the suite, every
    /// `guests/configs/bench-*.toml`, written to `--out` as results.json, results.md and SVG
    /// charts (docs/benchmarks.md).
    Bench {
        /// One configuration to run instead of the suite.
        config: Option<PathBuf>,
        /// Board (a directory under platform/), overriding the configurations'.
        #[arg(long, value_name = "NAME")]
        board: Option<String>,
        /// Boots to run; the results must be identical across them.
        #[arg(long, default_value_t = 2)]
        runs: u32,
        /// Kill QEMU and fail after this many seconds, per boot.
        #[arg(long, value_name = "SECS", default_value_t = 1800)]
        timeout: u64,
        /// Where the suite writes its results [default: build/bench in the workspace].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// The reduced sweep (fewer repeats per revocation point), as the tests run it.
        #[arg(long)]
        quick: bool,
        /// Also write the suite's tables into docs/benchmarks.md and its charts to docs/bench/.
        #[arg(long)]
        docs: bool,
    },
    /// Run every benchmark README's table of numbers needs, on every board, and write the
    /// table into README.md (between its markers).
    BenchTable {
        /// Do not write: fail if README.md's table differs from the measured one.
        #[arg(long)]
        check: bool,
        /// Boots per benchmark; the results must be identical across them.
        #[arg(long, default_value_t = 2)]
        runs: u32,
        /// Kill QEMU and fail after this many seconds, per boot.
        #[arg(long, value_name = "SECS", default_value_t = 300)]
        timeout: u64,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ConsoleChoice {
    MiniUart,
    Pl011,
}

#[derive(clap::Args)]
struct Target {
    /// System configuration [default: guests/configs/default.toml in the workspace].
    config: Option<PathBuf>,
    /// Board (a directory under platform/), overriding the configuration's.
    #[arg(long, value_name = "NAME")]
    board: Option<String>,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            if let Some(config) = e.downcast_ref::<ConfigError>() {
                eprintln!("error: {config}");
                ExitCode::from(2)
            } else {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}

/// The workspace `target` works in (found from its configuration file, else the current
/// directory) and its configuration file.
fn locate(target: &Target) -> anyhow::Result<(Workspace, PathBuf)> {
    let workspace = Workspace::locate_for(target.config.as_deref())?;
    let path = target.config.clone().unwrap_or_else(|| {
        let path = workspace.default_config();
        let relative = std::env::current_dir()
            .ok()
            .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf));
        relative.unwrap_or(path)
    });
    Ok((workspace, path))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check(target) => {
            let (workspace, path) = locate(&target)?;
            let system = exo_tool::check(&workspace, &path, target.board.as_deref())?;
            println!(
                "{}: ok: {} partition(s) on board `{}`",
                path.display(),
                system.partitions.len(),
                system.board.name
            );
            print!("{}", system.summary());
        }
        Command::FetchLinux => {
            let workspace = Workspace::locate_for(None)?;
            let stock = exo_tool::linux::fetch::fetch_stock(&workspace)?;
            println!("{}", stock.kernel.display());
            println!("{}", stock.initramfs.display());
        }
        Command::LinuxDtb {
            target,
            partition,
            out,
        } => {
            let (workspace, path) = locate(&target)?;
            let system = exo_tool::check(&workspace, &path, target.board.as_deref())?;
            let blob = exo_tool::linux::device_tree::of_system(&system, &partition)?;
            std::fs::write(&out, blob)?;
            println!("{}", out.display());
        }
        Command::Build(target) => {
            let (workspace, path) = locate(&target)?;
            announce_build(&workspace, &path, target.board.as_deref(), |_| Ok(()))?;
            let (_, image) = exo_tool::build(&workspace, &path, target.board.as_deref())?;
            println!("{}", image.display());
        }
        Command::Image {
            target,
            out,
            sd_image,
            console,
            disable_bt_overlay,
            chain_loader,
            jtag,
        } => {
            let (workspace, path) = locate(&target)?;
            let board = target.board.as_deref().or(Some(exo_tool::deploy::BOARD));
            announce_build(&workspace, &path, board, exo_tool::deploy::check_board)?;
            let options = exo_tool::deploy::ImageOptions {
                console: match console {
                    ConsoleChoice::MiniUart => exo_tool::deploy::Console::MiniUart,
                    ConsoleChoice::Pl011 => exo_tool::deploy::Console::Pl011,
                },
                disable_bt_overlay,
                sd_image: sd_image.clone(),
                chain_loader,
                jtag,
            };
            let folder = exo_tool::image(&workspace, &path, board, &out, &options)?;
            for file in &folder.files {
                println!("{}", folder.dir.join(file).display());
            }
            if let Some(card) = sd_image {
                println!("{}", card.display());
            }
        }
        Command::Bench {
            config: None,
            board,
            runs,
            timeout,
            out,
            quick,
            docs,
        } => {
            let workspace = Workspace::locate_for(None)?;
            let options = exo_tool::bench::suite::SuiteOptions {
                root: workspace.root().to_path_buf(),
                out: out.unwrap_or_else(|| workspace.root().join("build/bench")),
                quick,
                runs,
                timeout: Duration::from_secs(timeout),
                board,
            };
            let results = exo_tool::bench::suite::run(&options)?;
            if docs {
                exo_tool::bench::suite::update_docs(workspace.root(), &results)?;
                eprintln!("bench: updated docs/benchmarks.md and docs/bench/*.svg");
            }
            eprintln!(
                "bench: wrote results.json, results.md, latency.svg and phases.svg to {}",
                options.out.display()
            );
        }
        Command::Bench {
            config: Some(config),
            board,
            runs,
            timeout,
            quick,
            ..
        } => {
            let target = Target {
                config: Some(config),
                board,
            };
            let (workspace, path) = locate(&target)?;
            let path = exo_tool::bench::suite::config_to_boot(workspace.root(), &path, quick)?;
            let options = RunOptions {
                extra_qemu_args: exo_tool::bench::QEMU_ARGS
                    .iter()
                    .map(|a| a.to_string())
                    .collect(),
                ..quiet(target, timeout)
            };
            let report = exo_tool::bench::run(&path, &options, runs)?;
            print!("{report}");
            if !report.is_sound() {
                return Ok(ExitCode::from(1));
            }
        }
        Command::BenchTable {
            check,
            runs,
            timeout,
        } => {
            use exo_tool::bench_table;
            let workspace = Workspace::locate_for(None)?;
            let configs = workspace.root().join("guests/configs");
            let reports = bench_table::measure(&configs, runs, Duration::from_secs(timeout))?;
            let table = bench_table::render(&reports);
            print!("{table}");
            let path = workspace.root().join("README.md");
            let readme = std::fs::read_to_string(&path)?;
            let updated = bench_table::update(&readme, &table)?;
            if updated != readme {
                if check {
                    eprintln!("README.md's numbers differ from the measured ones above");
                    return Ok(ExitCode::from(1));
                }
                std::fs::write(&path, updated)?;
                eprintln!("README.md updated");
            }
        }
        Command::Profile {
            target,
            top,
            timeout,
        } => {
            let (_, path) = locate(&target)?;
            let profile = exo_tool::profile::run(&path, &quiet(target, timeout))?;
            print!("{}", profile.display(top));
            if !profile.outcome.success() {
                eprintln!("{}", profile.outcome);
                return Ok(ExitCode::from(1));
            }
        }
        Command::Run {
            target,
            timeout,
            qemu,
            qemu_args,
            serial1_input,
            serial1_output,
            dtb,
            serial,
            baud,
        } => {
            let (workspace, path) = locate(&target)?;
            let board = target.board.as_deref();
            if serial.is_some() {
                announce_build(
                    &workspace,
                    &path,
                    board,
                    exo_tool::deploy::serial::check_board,
                )?;
            } else {
                announce_build(&workspace, &path, board, |_| Ok(()))?;
            }
            if let Some(device) = serial {
                let options = exo_tool::deploy::serial::SerialOptions {
                    device,
                    baud,
                    timeout: Duration::from_secs(timeout),
                    echo: true,
                };
                let outcome = exo_tool::run_serial(&path, target.board.as_deref(), &options)?;
                eprintln!("{outcome}");
                return Ok(ExitCode::from(if outcome.success() { 0 } else { 1 }));
            }
            let options = RunOptions {
                timeout: Duration::from_secs(timeout),
                board: target.board,
                echo: true,
                qemu,
                extra_qemu_args: qemu_args,
                serial1_input,
                serial1_output,
                dtb,
            };
            let outcome = exo_tool::run_system(&path, &options)?;
            eprintln!("{outcome}");
            if !outcome.success() {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks the configuration and says on standard error what is about to be built (a first
/// cross build takes a minute or more, with only cargo's lines to show for it), after
/// `refuse` has had its say on the system (a command for another board stops here).
fn announce_build(
    workspace: &Workspace,
    path: &Path,
    board: Option<&str>,
    refuse: impl FnOnce(&exo_tool::config::System) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let system = exo_tool::check(workspace, path, board)?;
    refuse(&system)?;
    let guests = if system.guest_programs().is_empty() {
        ""
    } else {
        ", library OS and guests"
    };
    eprintln!(
        "exo: cross-building the kernel{guests} for board `{}` ({})",
        system.board.name,
        path.display()
    );
    Ok(())
}

/// Options of a boot whose console is parsed, not shown (`bench`, `profile`).
fn quiet(target: Target, timeout_secs: u64) -> RunOptions {
    RunOptions {
        timeout: Duration::from_secs(timeout_secs),
        board: target.board,
        echo: false,
        ..RunOptions::default()
    }
}
