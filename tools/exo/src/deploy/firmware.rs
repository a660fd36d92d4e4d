//! Firmware files from Debian packages at pinned versions (`platform/<board>/firmware.toml`):
//! fetched with `apt-get download` through a private apt configuration in the cache (the
//! suite's package lists for the pinned architecture; nothing on the host changes and no
//! root is needed), unpacked with `dpkg-deb`, never installed, and every file checked
//! against its pinned SHA-256. Unpacked files are kept in
//! `<cache>/<package>_<version>/` and reused while their checksums hold. `exo fetch-linux`
//! fetches Debian's stock kernel and busybox for Linux partitions the same way
//! ([`crate::linux::fetch`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde::Deserialize;

/// The pins file of a board.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pins {
    /// Where the packages come from.
    pub apt: AptSource,
    /// The packages, in order.
    #[serde(rename = "package")]
    pub packages: Vec<Package>,
}

/// A Debian archive suite.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AptSource {
    /// Mirror URL, e.g. `http://deb.debian.org/debian`.
    pub mirror: String,
    /// Suite, e.g. `bookworm`.
    pub suite: String,
    /// Components, e.g. `main`, `non-free-firmware`.
    pub components: Vec<String>,
    /// Package architecture (the board's, `arm64`).
    pub architecture: String,
}

/// One pinned package and the files taken from it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// Package name.
    pub name: String,
    /// Pinned version.
    pub version: String,
    /// Tried when the pinned version is gone: a package name (its current version), or
    /// `depends:<metapackage>` (the package the metapackage currently depends on).
    pub fallback: Option<String>,
    /// Files taken from the package.
    #[serde(rename = "file")]
    pub files: Vec<PinnedFile>,
}

/// A file of a package.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedFile {
    /// Path in the package's data archive (`./usr/...`; `*` matches within a name).
    pub member: String,
    /// Name in the boot folder.
    pub out: String,
    /// Expected SHA-256, lower-case hex.
    pub sha256: String,
}

impl Pins {
    /// Reads a pins file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// A firmware file ready to copy: its name in the boot folder and where it is cached.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Name in the boot folder.
    pub out: String,
    /// The checked file in the cache.
    pub path: PathBuf,
}

/// SHA-256 of a file, lower-case hex (coreutils `sha256sum`).
pub fn sha256(path: &Path) -> anyhow::Result<String> {
    let output = Command::new("sha256sum")
        .arg(path)
        .output()
        .context("running sha256sum (coreutils)")?;
    if !output.status.success() {
        bail!("sha256sum {} failed", path.display());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .next()
        .map(str::to_owned)
        .context("sha256sum printed nothing")
}

/// Refuses `path` unless its SHA-256 is `file.sha256`; the message names the pin.
pub fn check(package: &Package, file: &PinnedFile, path: &Path) -> anyhow::Result<()> {
    let sum = sha256(path)?;
    if sum != file.sha256 {
        bail!(
            "{} from {} has SHA-256 {sum}, but the pin says {} (pin {} {}): the file is not \
             the pinned one",
            file.out,
            package.name,
            file.sha256,
            package.name,
            package.version
        );
    }
    Ok(())
}

/// Every pinned file, from the cache when its checksum holds, else downloaded.
pub fn fetch_all(pins: &Pins, pins_path: &Path, cache: &Path) -> anyhow::Result<Vec<Fetched>> {
    let apt = PrivateApt::new(&pins.apt, &cache.join("apt"));
    let mut fetched = Vec::new();
    for package in &pins.packages {
        fetched.extend(fetch(&apt, package, pins_path, cache)?);
    }
    Ok(fetched)
}

/// The package's files in `<cache>/<name>_<version>/`, downloading them if missing or
/// damaged.
fn fetch(
    apt: &PrivateApt,
    package: &Package,
    pins_path: &Path,
    cache: &Path,
) -> anyhow::Result<Vec<Fetched>> {
    let dir = cache.join(format!("{}_{}", package.name, package.version));
    let cached = |file: &PinnedFile| dir.join(&file.out);
    let intact = package
        .files
        .iter()
        .all(|file| check(package, file, &cached(file)).is_ok());
    if !intact {
        download(apt, package, pins_path, &dir)?;
    }
    Ok(package
        .files
        .iter()
        .map(|file| Fetched {
            out: file.out.clone(),
            path: cached(file),
        })
        .collect())
}

/// Downloads the pinned version (or the fallback) and puts its checked files in `dir`.
fn download(
    apt: &PrivateApt,
    package: &Package,
    pins_path: &Path,
    dir: &Path,
) -> anyhow::Result<()> {
    let work = dir.with_extension("download");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let pinned = format!("{}={}", package.name, package.version);
    eprintln!("exo: downloading {pinned} (apt-get download, not installed)");
    let deb = match apt.download(&pinned, &work) {
        Ok(deb) => deb,
        Err(error) => {
            let Some(fallback) = &package.fallback else {
                return Err(gone(package, pins_path, error));
            };
            let candidate = apt
                .resolve(fallback)
                .map_err(|e| gone(package, pins_path, e))?;
            eprintln!(
                "exo: {pinned} is not in the archive; trying {candidate}, accepted only if its \
                 files have the pinned checksums"
            );
            apt.download(&candidate, &work)
                .map_err(|e| gone(package, pins_path, e))?
        }
    };
    for file in &package.files {
        let extracted = extract(&deb, &file.member, &work)?;
        check(package, file, &extracted).map_err(|e| {
            e.context(format!(
                "update the pin of {} in {}",
                package.name,
                pins_path.display()
            ))
        })?;
        std::fs::create_dir_all(dir)?;
        std::fs::rename(&extracted, dir.join(&file.out))
            .with_context(|| format!("moving {} into {}", extracted.display(), dir.display()))?;
    }
    std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))
}

fn gone(package: &Package, pins_path: &Path, error: anyhow::Error) -> anyhow::Error {
    error.context(format!(
        "{} {} cannot be downloaded: if the archive no longer has it, update its pin (version \
         and SHA-256 sums) in {}",
        package.name,
        package.version,
        pins_path.display()
    ))
}

/// Takes `member` out of the `.deb`'s data archive into `work` (`dpkg-deb --fsys-tarfile`
/// piped into `tar`, so only the wanted files are written).
fn extract(deb: &Path, member: &str, work: &Path) -> anyhow::Result<PathBuf> {
    let unpacked = work.join("unpacked");
    std::fs::create_dir_all(&unpacked)?;
    let script = "dpkg-deb --fsys-tarfile \"$1\" | tar -x -C \"$2\" --wildcards \"$3\"";
    let status = Command::new("sh")
        .args(["-c", script, "extract"])
        .arg(deb)
        .arg(&unpacked)
        .arg(member)
        .status()
        .context("running dpkg-deb and tar")?;
    if !status.success() {
        bail!("{} has no file {member}", deb.display());
    }
    let name = member.rsplit('/').next().unwrap_or(member);
    find_file(&unpacked, name)?
        .with_context(|| format!("{member} not found after unpacking {}", deb.display()))
}

/// The first file called `name` under `dir`.
fn find_file(dir: &Path, name: &str) -> anyhow::Result<Option<PathBuf>> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name)? {
                return Ok(Some(found));
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// `apt-get` and `apt-cache` with their own sources, lists and cache under `dir`.
struct PrivateApt {
    dir: PathBuf,
    source: String,
    architecture: String,
}

impl PrivateApt {
    fn new(source: &AptSource, dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            source: format!(
                "deb [arch={} signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {} {} {}\n",
                source.architecture,
                source.mirror,
                source.suite,
                source.components.join(" ")
            ),
            architecture: source.architecture.clone(),
        }
    }

    fn command(&self, program: &str) -> Command {
        let d = |p: &str| self.dir.join(p).display().to_string();
        let mut command = Command::new(program);
        for option in [
            format!("Dir::State::Lists={}", d("lists")),
            "Dir::State::Status=/dev/null".to_owned(),
            format!("Dir::Cache={}", d("cache")),
            format!("Dir::Etc::SourceList={}", d("sources.list")),
            "Dir::Etc::SourceParts=/dev/null".to_owned(),
            format!("APT::Architecture={}", self.architecture),
            format!("APT::Architectures::={}", self.architecture),
            "Debug::NoLocking=1".to_owned(),
            "APT::Sandbox::User=root".to_owned(),
        ] {
            command.args(["-o", &option]);
        }
        command
    }

    /// `apt-get update` of the private lists, once per run.
    fn update(&self) -> anyhow::Result<()> {
        for sub in ["lists/partial", "cache/archives/partial"] {
            std::fs::create_dir_all(self.dir.join(sub))?;
        }
        std::fs::write(self.dir.join("sources.list"), &self.source)?;
        let output = self
            .command("apt-get")
            .args(["-q", "update"])
            .output()
            .context("running apt-get (is this a Debian host?)")?;
        if !output.status.success() {
            bail!(
                "apt-get update of {} failed:\n{}",
                self.source.trim(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    fn has_lists(&self) -> bool {
        std::fs::read_dir(self.dir.join("lists")).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().contains("_Packages"))
        })
    }

    /// Downloads `spec` (`name=version` or `name`) into `work`; updates the lists first
    /// if there are none, and once more if the download fails (they may be stale).
    fn download(&self, spec: &str, work: &Path) -> anyhow::Result<PathBuf> {
        if !self.has_lists() {
            self.update()?;
        }
        let attempt = || {
            self.command("apt-get")
                .args(["-q", "download", spec])
                .current_dir(work)
                .output()
                .context("running apt-get download")
        };
        let mut output = attempt()?;
        if !output.status.success() {
            self.update()?;
            output = attempt()?;
        }
        if !output.status.success() {
            bail!(
                "apt-get download {spec} failed:\n{}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        for entry in std::fs::read_dir(work)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "deb") {
                return Ok(path);
            }
        }
        bail!("apt-get download {spec} left no .deb in {}", work.display())
    }

    /// The package a fallback names: `name` itself, or what `depends:<meta>` depends on.
    fn resolve(&self, fallback: &str) -> anyhow::Result<String> {
        let Some(meta) = fallback.strip_prefix("depends:") else {
            return Ok(fallback.to_owned());
        };
        let output = self
            .command("apt-cache")
            .args(["depends", meta])
            .output()
            .context("running apt-cache depends")?;
        let text = String::from_utf8_lossy(&output.stdout);
        text.lines()
            .filter_map(|line| line.trim().strip_prefix("Depends: "))
            .find(|name| !name.starts_with('<'))
            .map(str::to_owned)
            .with_context(|| format!("apt-cache depends {meta} names no package"))
    }
}

#[cfg(test)]
mod tests;
