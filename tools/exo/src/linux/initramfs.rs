//! The Linux partition's test initramfs: a cpio archive in the "newc" format (the one
//! Linux unpacks, `Documentation/driver-api/early-userspace/buffer-format.rst`), gzip
//! compressed. It holds `/init` (`guests/linux/init`, a busybox shell script), `/hostile`
//! (`guests/linux/hostile`, the same for the isolation test) and
//! `/bin/busybox` (Debian's `busybox-static`), the directories they need and `/dev/console`,
//! which Linux opens for `/init`'s standard streams before any file system is mounted.
//! Every entry has time 0, owner root and a fixed inode number, so the same busybox gives
//! the same bytes.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

/// The test `/init` script.
pub const INIT: &str = include_str!("../../../../guests/linux/init");

/// `/hostile`, run instead with `rdinit=/hostile`: it tries to reach what it does not own.
pub const HOSTILE: &str = include_str!("../../../../guests/linux/hostile");

/// What `/init` prints when it starts, on the partition's console.
pub const MARKER: &str = "exo-linux: init started";

/// File type bits of a cpio mode (`st_mode`).
const DIRECTORY: u32 = 0o040_000;
const REGULAR: u32 = 0o100_000;
const CHARACTER_DEVICE: u32 = 0o020_000;

/// One archive member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path without a leading `/`.
    pub name: String,
    /// `st_mode`: file type and permissions.
    pub mode: u32,
    /// Contents (regular files only).
    pub data: Vec<u8>,
    /// Device number (major, minor) of a device node.
    pub device: (u32, u32),
}

impl Entry {
    /// A directory.
    pub fn directory(name: &str) -> Self {
        Self::new(name, DIRECTORY | 0o755, Vec::new())
    }

    /// A regular file with `permissions` (e.g. `0o755`).
    pub fn file(name: &str, permissions: u32, data: Vec<u8>) -> Self {
        Self::new(name, REGULAR | permissions, data)
    }

    /// A character device node.
    pub fn character_device(name: &str, major: u32, minor: u32) -> Self {
        Self {
            device: (major, minor),
            ..Self::new(name, CHARACTER_DEVICE | 0o600, Vec::new())
        }
    }

    fn new(name: &str, mode: u32, data: Vec<u8>) -> Self {
        Self {
            name: name.to_owned(),
            mode,
            data,
            device: (0, 0),
        }
    }

    /// Whether this is a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & 0o170_000 == REGULAR
    }
}

/// The test initramfs's members, around `busybox` (the static binary's bytes).
pub fn test_entries(busybox: Vec<u8>) -> Vec<Entry> {
    vec![
        Entry::directory("bin"),
        Entry::directory("dev"),
        Entry::directory("proc"),
        Entry::directory("sys"),
        Entry::character_device("dev/console", 5, 1),
        Entry::file("bin/busybox", 0o755, busybox),
        Entry::file("init", 0o755, INIT.as_bytes().to_vec()),
        Entry::file("hostile", 0o755, HOSTILE.as_bytes().to_vec()),
    ]
}

/// The gzip-compressed test initramfs around `busybox`.
pub fn test_initramfs(busybox: Vec<u8>) -> std::io::Result<Vec<u8>> {
    gzip(&newc(&test_entries(busybox)))
}

/// A newc cpio archive of `entries`, ending with the `TRAILER!!!` member.
pub fn newc(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for (inode, entry) in (1u32..).zip(entries) {
        let links = if entry.mode & 0o170_000 == DIRECTORY {
            2
        } else {
            1
        };
        member(&mut out, inode, entry, links);
    }
    member(&mut out, 0, &Entry::new("TRAILER!!!", 0, Vec::new()), 1);
    out
}

/// Appends one member: the 110-byte header (magic `070701`, thirteen 8-digit hex fields),
/// the NUL-terminated name padded to 4 bytes, the data padded to 4 bytes.
fn member(out: &mut Vec<u8>, inode: u32, entry: &Entry, links: u32) {
    let size = u32::try_from(entry.data.len()).expect("initramfs member under 4 GiB");
    let name_size = u32::try_from(entry.name.len() + 1).expect("short member name");
    let fields = [
        inode,
        entry.mode,
        0, // uid
        0, // gid
        links,
        0, // mtime
        size,
        0, // devmajor
        0, // devminor
        entry.device.0,
        entry.device.1,
        name_size,
        0, // check (newc: unused)
    ];
    out.extend_from_slice(b"070701");
    for field in fields {
        out.extend_from_slice(format!("{field:08X}").as_bytes());
    }
    out.extend_from_slice(entry.name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(&entry.data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// `bytes` gzip-compressed (header time 0, so the output depends on `bytes` alone).
pub fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes)?;
    encoder.finish()
}

#[cfg(test)]
mod tests;
