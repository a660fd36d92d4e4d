//! `exo fetch-linux`: Debian's stock arm64 kernel and `busybox-static` at the versions
//! pinned in `guests/linux/debian.toml`, fetched by the Pi firmware's machinery
//! ([`crate::deploy::firmware`]: `apt-get download` through a private apt configuration,
//! `dpkg-deb`, SHA-256 checked, never installed) into `build/cache/linux/`, and the test
//! initramfs built around that busybox. The results land in `build/linux/`, where
//! `guests/configs/linux.toml` finds them.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::initramfs;
use crate::Workspace;
use crate::deploy::firmware::{self, Pins};

/// The pins file, relative to the workspace root.
pub const PINS: &str = "guests/linux/debian.toml";

/// Where the fetched packages' files are cached, relative to the workspace root.
pub const CACHE: &str = "build/cache/linux";

/// Where the kernel and initramfs are written, relative to the workspace root.
pub const OUT: &str = "build/linux";

/// The files `exo fetch-linux` wrote.
#[derive(Clone, Debug)]
pub struct Stock {
    /// Debian's kernel as shipped (`vmlinuz`).
    pub kernel: PathBuf,
    /// The test initramfs (`initramfs.cpio.gz`).
    pub initramfs: PathBuf,
}

/// Fetches the pinned kernel and busybox (from the cache while their checksums hold) and
/// writes `build/linux/vmlinuz` and `build/linux/initramfs.cpio.gz`.
pub fn fetch_stock(workspace: &Workspace) -> anyhow::Result<Stock> {
    let pins_path = workspace.root().join(PINS);
    let pins = Pins::load(&pins_path)?;
    let fetched = firmware::fetch_all(&pins, &pins_path, &workspace.root().join(CACHE))?;
    let file = |out: &str| -> anyhow::Result<&Path> {
        match fetched.iter().find(|f| f.out == out) {
            Some(f) => Ok(&f.path),
            None => bail!("{} pins no file `{out}`", pins_path.display()),
        }
    };
    let dir = workspace.root().join(OUT);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let kernel = dir.join("vmlinuz");
    std::fs::copy(file("vmlinuz")?, &kernel)
        .with_context(|| format!("writing {}", kernel.display()))?;
    let busybox = std::fs::read(file("busybox")?)?;
    let initramfs = dir.join("initramfs.cpio.gz");
    std::fs::write(&initramfs, initramfs::test_initramfs(busybox)?)
        .with_context(|| format!("writing {}", initramfs.display()))?;
    Ok(Stock { kernel, initramfs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pins_name_the_kernel_and_busybox_for_arm64_with_sha256s() {
        let path = Workspace::locate().unwrap().root().join(PINS);
        let pins = Pins::load(&path).unwrap();
        assert_eq!(pins.apt.architecture, "arm64");
        assert_eq!(pins.apt.suite, "bookworm");
        let outs: Vec<&str> = pins
            .packages
            .iter()
            .flat_map(|p| p.files.iter().map(|f| f.out.as_str()))
            .collect();
        assert_eq!(outs, ["vmlinuz", "busybox"]);
        for package in &pins.packages {
            // The member is named exactly: the fetcher finds the unpacked file by name.
            for file in &package.files {
                assert!(!file.member.contains('*'), "{}", file.member);
                assert_eq!(file.sha256.len(), 64);
            }
        }
        assert!(pins.packages[0].name.starts_with("linux-image-"));
        assert_eq!(pins.packages[1].name, "busybox-static");
    }
}
