//! Where things are: the workspace root and the paths derived from it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The exo source tree the tool works on.
#[derive(Clone, Debug)]
pub struct Workspace {
    root: PathBuf,
}

/// The configuration `exo` uses when none is given, relative to the workspace root.
pub const DEFAULT_CONFIG: &str = "guests/configs/default.toml";

impl Workspace {
    /// Wraps a workspace root without checking it (tests use made-up trees).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Finds the workspace: the tree this tool was compiled from if it still exists,
    /// else the nearest directory above the current one whose `Cargo.toml` has a
    /// `[workspace]` table and a `platform/` directory.
    pub fn locate() -> anyhow::Result<Self> {
        let compiled_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        if is_workspace_root(&compiled_in) {
            let root = compiled_in
                .canonicalize()
                .context("resolving the workspace root")?;
            return Ok(Self { root });
        }
        let here = std::env::current_dir().context("reading the current directory")?;
        for dir in here.ancestors() {
            if is_workspace_root(dir) {
                return Ok(Self {
                    root: dir.to_path_buf(),
                });
            }
        }
        bail!(
            "cannot find the exo workspace (a Cargo.toml with [workspace] beside platform/) \
             above {}",
            here.display()
        )
    }

    /// The workspace root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory holding `platform/<board>/board.toml` files.
    pub fn platform_dir(&self) -> PathBuf {
        self.root.join("platform")
    }

    /// The directory whose `*.rs` files (or `*/main.rs`) are the guest programs.
    pub fn guest_bin_dir(&self) -> PathBuf {
        self.root.join("guests/src/bin")
    }

    /// The default configuration file.
    pub fn default_config(&self) -> PathBuf {
        self.root.join(DEFAULT_CONFIG)
    }

    /// Cargo's target directory (the workspace's own, never `CARGO_TARGET_DIR`).
    pub fn target_dir(&self) -> PathBuf {
        self.root.join("target")
    }

    /// Where images and per-board copies of the kernel go: `build/<board>/`.
    pub fn build_dir(&self, board: &str) -> PathBuf {
        self.root.join("build").join(board)
    }

    /// Names of the guest programs (`guests/src/bin/<name>.rs` or `<name>/main.rs`), sorted.
    pub fn guest_programs(&self) -> Vec<String> {
        let mut names = Vec::new();
        if let Ok(entries) = std::fs::read_dir(self.guest_bin_dir()) {
            for entry in entries.flatten() {
                let path = entry.path();
                let name = if path.is_dir() {
                    path.join("main.rs").is_file().then(|| path.file_name())
                } else {
                    (path.extension().is_some_and(|e| e == "rs")).then(|| path.file_stem())
                };
                if let Some(Some(name)) = name {
                    names.push(name.to_string_lossy().into_owned());
                }
            }
        }
        names.sort();
        names
    }

    /// Names of the boards (`platform/<name>/board.toml`), sorted.
    pub fn boards(&self) -> Vec<String> {
        let mut names = Vec::new();
        if let Ok(entries) = std::fs::read_dir(self.platform_dir()) {
            for entry in entries.flatten() {
                if entry.path().join("board.toml").is_file() {
                    names.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
        names.sort();
        names
    }
}

fn is_workspace_root(dir: &Path) -> bool {
    dir.join("platform").is_dir()
        && std::fs::read_to_string(dir.join("Cargo.toml"))
            .is_ok_and(|text| text.lines().any(|line| line.trim() == "[workspace]"))
}
