//! Deploying to real hardware: `exo image` writes a Raspberry Pi 4 boot folder (the image
//! as `kernel8.img`, the firmware, its device tree and a generated `config.txt`) and,
//! optionally, an SD card image holding it. With `--chain-loader`, `kernel8.img` is the
//! serial chain loader ([`chain_loader`]) and `exo run --serial` ([`serial`]) sends the
//! system over the console line.

pub mod chain_loader;
pub mod config_txt;
pub mod firmware;
pub mod sd_image;
pub mod serial;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

pub use config_txt::Console;

use crate::Workspace;
use crate::config::System;

/// The only board `exo image` knows how to deploy to.
pub const BOARD: &str = "raspi4b";

/// What `exo image` writes besides the folder.
#[derive(Clone, Debug)]
pub struct ImageOptions {
    /// The console UART.
    pub console: Console,
    /// `disable-bt.dtbo` to copy into `overlays/` (the PL011 console needs it; Debian
    /// packages no Raspberry Pi overlays).
    pub disable_bt_overlay: Option<PathBuf>,
    /// Also write an SD card image here.
    pub sd_image: Option<PathBuf>,
    /// Write the serial chain loader as `kernel8.img` instead of the system's image
    /// (`exo run --serial` then sends the system).
    pub chain_loader: bool,
    /// Put the Arm JTAG port on GPIO 22-27 (`enable_jtag_gpio=1` in `config.txt`).
    pub jtag: bool,
}

impl Default for ImageOptions {
    fn default() -> Self {
        Self {
            console: Console::MiniUart,
            disable_bt_overlay: None,
            sd_image: None,
            chain_loader: false,
            jtag: false,
        }
    }
}

/// The boot folder as written.
#[derive(Clone, Debug)]
pub struct BootFolder {
    /// The folder.
    pub dir: PathBuf,
    /// The files written, relative to it.
    pub files: Vec<String>,
}

/// The firmware cache: `build/cache/firmware/`.
pub fn firmware_cache(workspace: &Workspace) -> PathBuf {
    workspace.root().join("build/cache/firmware")
}

/// Refuses a system for another board than the Pi 4 (before anything is built).
pub fn check_board(system: &System) -> anyhow::Result<()> {
    if system.board.name != BOARD {
        bail!(
            "exo image writes Raspberry Pi 4 boot folders only (--board {BOARD}), not for \
             board `{}`",
            system.board.name
        );
    }
    Ok(())
}

/// Writes the boot folder `out` for `system` (already built into `image`).
pub fn write_boot_folder(
    workspace: &Workspace,
    system: &System,
    image: &Path,
    out: &Path,
    options: &ImageOptions,
) -> anyhow::Result<BootFolder> {
    check_board(system)?;
    let overlay = match (options.console, &options.disable_bt_overlay) {
        (Console::Pl011, None) => bail!(
            "the PL011 console needs overlays/disable-bt.dtbo, which Debian does not package: \
             give it with --disable-bt-overlay FILE (from the Raspberry Pi firmware \
             repository), or use the mini UART console"
        ),
        (Console::Pl011, Some(path)) => Some(path),
        (Console::MiniUart, _) => None,
    };
    let pins_path = workspace.platform_dir().join(BOARD).join("firmware.toml");
    let pins = firmware::Pins::load(&pins_path)?;
    let fetched = firmware::fetch_all(&pins, &pins_path, &firmware_cache(workspace))?;

    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut files = Vec::new();
    let mut copy = |from: &Path, name: &str| -> anyhow::Result<()> {
        let to = out.join(name);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        files.push(name.to_owned());
        Ok(())
    };
    copy(image, config_txt::KERNEL)?;
    for file in &fetched {
        copy(&file.path, &file.out)?;
    }
    if let Some(overlay) = overlay {
        copy(overlay, config_txt::DISABLE_BT_OVERLAY)?;
    } else {
        // A folder reused from a PL011 build must not keep its overlay.
        let _ = std::fs::remove_file(out.join(config_txt::DISABLE_BT_OVERLAY));
    }
    std::fs::write(
        out.join("config.txt"),
        config_txt::config_txt(options.console, options.jtag),
    )?;
    files.push("config.txt".to_owned());
    if let Some(card) = &options.sd_image {
        sd_image::write(out, card)?;
    }
    Ok(BootFolder {
        dir: out.to_path_buf(),
        files,
    })
}
