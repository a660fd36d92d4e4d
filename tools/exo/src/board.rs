//! Board descriptions: `platform/<board>/board.toml`.
//!
//! A board file says how to start QEMU for the board, how much RAM it has and which kernel
//! linker script to link with. For example:
//!
//! ```toml
//! description = "QEMU virt, GICv3, one Cortex-A72"
//! ram = "1GiB"                 # passed to QEMU as `-m`; bounds the partitions' quotas
//! linker_script = "kernel.ld"  # relative to the board's directory
//!
//! [qemu]
//! binary = "qemu-system-aarch64"
//! args = ["-M", "virt,virtualization=on,gic-version=3", "-nographic"]
//! ```
//!
//! The runner appends `-m <ram>` and `-kernel <image>` to `args`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_spanned::Spanned;

use crate::config::{ConfigError, SizeValue};
use crate::size::{Bytes, MIB};
use crate::workspace::Workspace;

/// RAM the kernel keeps for itself (its image, the boot package, page tables and frame
/// metadata): partitions' quotas together may use the board's RAM less this much.
pub const KERNEL_RESERVATION: u64 = 16 * MIB;

/// A board, read from its `board.toml`.
#[derive(Clone, Debug)]
pub struct Board {
    /// The board's directory name under `platform/`.
    pub name: String,
    /// The board's directory.
    pub dir: PathBuf,
    /// One line saying what the board is.
    pub description: String,
    /// RAM size in bytes (a whole number of MiB).
    pub ram_bytes: u64,
    /// The kernel linker script (absolute path; may not exist until the kernel is built).
    pub linker_script: PathBuf,
    /// The QEMU binary (looked up on `PATH`).
    pub qemu_binary: String,
    /// QEMU arguments before `-m` and `-kernel`.
    pub qemu_args: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoard {
    description: String,
    ram: Spanned<SizeValue>,
    linker_script: String,
    qemu: RawQemu,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQemu {
    binary: String,
    #[serde(default)]
    args: Vec<String>,
}

/// Why a board could not be loaded.
#[derive(Debug)]
pub enum BoardError {
    /// There is no `platform/<name>/board.toml`.
    Unknown,
    /// The board file is wrong.
    Invalid(ConfigError),
}

impl Board {
    /// Reads and checks `platform/<name>/board.toml`.
    pub fn load(workspace: &Workspace, name: &str) -> Result<Self, BoardError> {
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let dir = workspace.platform_dir().join(name);
        let path = dir.join("board.toml");
        if !valid_name || !path.is_file() {
            return Err(BoardError::Unknown);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| {
            BoardError::Invalid(ConfigError::new(&path, None, format!("cannot read: {e}")))
        })?;
        Self::parse(name, &dir, &path, &text).map_err(BoardError::Invalid)
    }

    fn parse(name: &str, dir: &Path, path: &Path, text: &str) -> Result<Self, ConfigError> {
        let raw: RawBoard =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(path, text, &e))?;
        let ram_line = crate::config::line_of(text, raw.ram.span().start);
        let ram_bytes = raw
            .ram
            .get_ref()
            .bytes()
            .map_err(|m| ConfigError::new(path, Some(ram_line), m))?;
        if !ram_bytes.is_multiple_of(MIB) || ram_bytes <= KERNEL_RESERVATION {
            return Err(ConfigError::new(
                path,
                Some(ram_line),
                format!(
                    "board RAM must be a whole number of MiB larger than the kernel's {}",
                    Bytes(KERNEL_RESERVATION)
                ),
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            dir: dir.to_path_buf(),
            description: raw.description,
            ram_bytes,
            linker_script: dir.join(raw.linker_script),
            qemu_binary: raw.qemu.binary,
            qemu_args: raw.qemu.args,
        })
    }

    /// RAM the partitions' quotas may add up to: [`Board::ram_bytes`] less
    /// [`KERNEL_RESERVATION`].
    pub fn partition_ram(&self) -> u64 {
        self.ram_bytes - KERNEL_RESERVATION
    }

    /// The QEMU command that boots `image` on this board, with `binary` replacing the
    /// board's QEMU binary if given.
    pub fn qemu_command(&self, image: &Path, binary: Option<&Path>) -> Command {
        let mut command = match binary {
            Some(binary) => Command::new(binary),
            None => Command::new(&self.qemu_binary),
        };
        command
            .args(&self.qemu_args)
            .arg("-m")
            .arg(format!("{}M", self.ram_bytes / MIB))
            .arg("-kernel")
            .arg(image);
        command
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_boards_parse() {
        let workspace = Workspace::at(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
        let boards = workspace.boards();
        for name in ["qemu-virt", "qemu-virt-gicv2", "raspi4b"] {
            assert!(
                boards.iter().any(|b| b == name),
                "{name} missing from {boards:?}"
            );
            let board = match Board::load(&workspace, name) {
                Ok(board) => board,
                Err(BoardError::Invalid(e)) => panic!("{e}"),
                Err(BoardError::Unknown) => panic!("{name} unknown"),
            };
            assert!(board.ram_bytes >= 1 << 30);
            assert!(board.linker_script.ends_with("kernel.ld"));
            let command = board.qemu_command(Path::new("x.img"), None);
            let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy()).collect();
            assert_eq!(args[args.len() - 2..], ["-kernel", "x.img"]);
        }
    }

    #[test]
    fn board_errors_name_the_line() {
        let path = Path::new("platform/x/board.toml");
        let text = "description = \"x\"\nram = \"1GiB\"\nlinker_script = \"k.ld\"\nspeed = 3\n\
                    [qemu]\nbinary = \"q\"\n";
        let e = Board::parse("x", Path::new("platform/x"), path, text).unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.message.contains("speed"), "{e}");
        let text = "description = \"x\"\nram = \"8MiB\"\nlinker_script = \"k.ld\"\n\
                    [qemu]\nbinary = \"q\"\n";
        let e = Board::parse("x", Path::new("platform/x"), path, text).unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }
}
