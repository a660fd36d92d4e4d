//! Where things are: the workspace root and the paths derived from it.

use std::path::{Path, PathBuf};

use anyhow::Context;

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

    /// Finds the workspace from the current directory: [`Workspace::locate_for`] with no
    /// configuration.
    pub fn locate() -> anyhow::Result<Self> {
        Self::locate_for(None)
    }

    /// Finds the workspace a command on `config` works in: the nearest directory above the
    /// configuration file, else above the current directory, whose `Cargo.toml` has a
    /// `[workspace]` table and which has a `platform/` directory; only if neither has one,
    /// the tree this tool was compiled from (if it still exists). So a copied or moved
    /// checkout builds in its own place, whichever `exo` binary runs.
    pub fn locate_for(config: Option<&Path>) -> anyhow::Result<Self> {
        let here = std::env::current_dir().context("reading the current directory")?;
        let compiled_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        Self::search(config, &here, &compiled_in).ok_or_else(|| {
            let from = match config {
                Some(config) => format!("{} or {}", config.display(), here.display()),
                None => here.display().to_string(),
            };
            anyhow::anyhow!(
                "cannot find the exo workspace (a Cargo.toml with [workspace] beside \
                 platform/) above {from}"
            )
        })
    }

    /// [`Workspace::locate_for`] with the current directory `here` and the compiled-in tree
    /// `compiled_in` given.
    fn search(config: Option<&Path>, here: &Path, compiled_in: &Path) -> Option<Self> {
        let config_dir = config.map(|config| {
            let absolute = here.join(config);
            let absolute = absolute.canonicalize().unwrap_or(absolute);
            absolute.parent().map(Path::to_path_buf).unwrap_or_default()
        });
        let above = |start: &Path| {
            start
                .ancestors()
                .find(|d| is_workspace_root(d))
                .map(Path::to_path_buf)
        };
        let root = config_dir
            .as_deref()
            .and_then(above)
            .or_else(|| above(here))
            .or_else(|| is_workspace_root(compiled_in).then(|| compiled_in.to_path_buf()))?;
        let root = root.canonicalize().unwrap_or(root);
        Some(Self { root })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::TempDir;

    /// A made-up minimal exo tree under `dir`/`name`.
    fn tree(dir: &TempDir, name: &str) -> PathBuf {
        dir.write(&format!("{name}/Cargo.toml"), "[workspace]\nmembers = []\n");
        dir.write(&format!("{name}/platform/b/board.toml"), "");
        dir.write(&format!("{name}/guests/configs/default.toml"), "");
        dir.path().join(name).canonicalize().unwrap()
    }

    #[test]
    fn a_copied_tree_is_found_from_its_configuration() {
        let dir = TempDir::new();
        let original = tree(&dir, "original");
        let copy = tree(&dir, "copy");
        let outside = dir.path().join("elsewhere");
        std::fs::create_dir_all(&outside).unwrap();
        let config = copy.join("guests/configs/default.toml");
        // From anywhere, with the tool compiled in the original tree: the copy's own tree.
        let found = Workspace::search(Some(&config), &outside, &original).unwrap();
        assert_eq!(found.root(), copy);
        assert_eq!(found.target_dir(), copy.join("target"));
        // Even from inside the original tree: the configuration decides.
        let found = Workspace::search(Some(&config), &original, &original).unwrap();
        assert_eq!(found.root(), copy);
        // A relative configuration path is taken from the current directory.
        let found = Workspace::search(
            Some(Path::new("guests/configs/default.toml")),
            &copy,
            &original,
        )
        .unwrap();
        assert_eq!(found.root(), copy);
    }

    #[test]
    fn without_a_configuration_the_current_directory_decides() {
        let dir = TempDir::new();
        let original = tree(&dir, "original");
        let copy = tree(&dir, "copy");
        let found = Workspace::search(None, &copy.join("guests"), &original).unwrap();
        assert_eq!(found.root(), copy);
    }

    #[test]
    fn the_compiled_in_tree_is_the_last_resort() {
        let dir = TempDir::new();
        let original = tree(&dir, "original");
        let outside = dir.path().join("elsewhere");
        std::fs::create_dir_all(&outside).unwrap();
        let loose = dir.write("elsewhere/system.toml", "");
        let found = Workspace::search(Some(&loose), &outside, &original).unwrap();
        assert_eq!(found.root(), original);
        assert!(Workspace::search(Some(&loose), &outside, &outside.join("gone")).is_none());
    }
}
