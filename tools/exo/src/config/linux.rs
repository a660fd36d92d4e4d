//! The keys of a Linux partition and their checks (docs/linux.md):
//!
//! ```toml
//! [[partition]]
//! name = "linux"
//! kernel = "path/to/Image"             # instead of `program`: an arm64 Linux Image,
//!                                      # unmodified, plain or gzip-compressed
//! initrd = "path/to/initramfs.cpio.gz" # optional
//! bootargs = "console=ttyAMA0 earlycon" # optional: the kernel command line
//! memory = "256MiB"                    # its RAM, all of it bound at boot
//! devices = ["uart1"]                  # must include a console (a PL011)
//! ```
//!
//! Paths are relative to the configuration file's directory. A Linux partition cannot
//! answer exo's revocation protocol or make exo's hypercalls, so it borrows nothing, has
//! no guarantee beyond its `memory`, and neither `talks_to` nor `capabilities`.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_spanned::Spanned;

use super::RawPartition;
use super::resources::OwnedDevice;
use crate::board::Board;
use crate::linux::image_header::{self, ImageHeader};
use crate::linux::layout::{DTB_SLOT, Layout};
use crate::size::Bytes;

/// Linux's `COMMAND_LINE_SIZE` on arm64, the terminating NUL included.
pub const MAX_BOOTARGS: usize = 2048;

/// The `compatible` of the UARTs Linux can take as its console here.
pub const CONSOLE_COMPATIBLE: &str = "arm,pl011";

/// A checked Linux partition's program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinuxProgram {
    /// The kernel file, as found (absolute, or relative to the current directory).
    pub kernel: PathBuf,
    /// The Image's checked header (of the decompressed Image when the file is gzip).
    pub header: ImageHeader,
    /// The kernel file is gzip-compressed.
    pub kernel_gzip: bool,
    /// The initramfs file, if any.
    pub initrd: Option<PathBuf>,
    /// The kernel command line.
    pub bootargs: String,
    /// Where kernel, device tree and initramfs go in its RAM.
    pub layout: Layout,
    /// The board device that is its console (`stdout-path`).
    pub console: String,
}

impl LinuxProgram {
    /// What `exo check` adds to the partition's line: the Image, the initramfs, the console
    /// and where the device tree goes.
    pub fn summary(&self) -> String {
        let gzip = if self.kernel_gzip { ", gzip" } else { "" };
        let (start, end) = self.layout.initrd;
        let initrd = if start == end {
            String::new()
        } else {
            format!(", initramfs {}", Bytes(end - start))
        };
        format!(
            " (Image needs {}{gzip}{initrd}, device tree at IPA {:#x}, console {})",
            Bytes(self.header.image_size),
            self.layout.dtb,
            self.console
        )
    }
}

/// What [`check`] needs besides the raw keys.
pub(super) struct Context<'a> {
    /// The partition's name.
    pub name: &'a str,
    /// The configuration file's directory.
    pub config_dir: &'a Path,
    /// The board.
    pub board: &'a Board,
    /// Its checked memory quota.
    pub memory_bytes: u64,
    /// Byte offset of its `[[partition]]` table.
    pub at: usize,
    /// Its checked devices.
    pub devices: &'a [OwnedDevice],
}

/// An error: the byte offset at fault and the message.
type Refusal = (usize, String);

/// Refuses `initrd` and `bootargs` on a partition without `kernel`.
pub(super) fn refuse_linux_keys_without_kernel(raw: &RawPartition) -> Result<(), Refusal> {
    for (key, value) in [("initrd", &raw.initrd), ("bootargs", &raw.bootargs)] {
        if let Some(value) = value {
            return Err((
                value.span().start,
                format!(
                    "`{key}` is for Linux partitions, which name a `kernel` instead of a `program`"
                ),
            ));
        }
    }
    Ok(())
}

/// Checks a partition that names a `kernel`.
pub(super) fn check(
    raw: &RawPartition,
    kernel_key: &Spanned<String>,
    context: &Context<'_>,
) -> Result<LinuxProgram, Refusal> {
    refuse_library_os_keys(raw, context.name)?;
    let kernel_at = kernel_key.span().start;
    let kernel = context.config_dir.join(kernel_key.get_ref());
    let bytes = read_file(&kernel, kernel_key, "kernel", image_header::MAX_IMAGE)?;
    let read = image_header::read_kernel(bytes).map_err(|why| {
        (
            kernel_at,
            format!("kernel `{}` {why}", kernel_key.get_ref()),
        )
    })?;
    let (initrd, initrd_bytes) = match &raw.initrd {
        Some(key) => {
            let path = context.config_dir.join(key.get_ref());
            let bytes = read_file(&path, key, "initrd", context.memory_bytes)?;
            if bytes.is_empty() {
                return Err((
                    key.span().start,
                    format!("initrd `{}` is empty", key.get_ref()),
                ));
            }
            (Some(path), bytes.len() as u64)
        }
        None => (None, 0),
    };
    let bootargs = bootargs(raw.bootargs.as_ref())?;
    let layout = Layout::new(
        exo_abi::package::DEFAULT_RAM_BASE.raw(),
        context.memory_bytes,
        &read.header,
        initrd_bytes,
    )
    .map_err(|needed| {
        (
            raw.memory.span().start,
            format!(
                "memory of {} for Linux partition `{}` is too small: its kernel (image_size \
                 {}), device tree ({}) and initramfs ({}) take {} from the start of its RAM, \
                 and Linux needs room to run beyond them",
                Bytes(context.memory_bytes),
                context.name,
                Bytes(read.header.image_size),
                Bytes(DTB_SLOT),
                Bytes(initrd_bytes),
                Bytes(needed)
            ),
        )
    })?;
    Ok(LinuxProgram {
        kernel,
        header: read.header,
        kernel_gzip: read.was_gzip,
        initrd,
        bootargs,
        layout,
        console: console(raw, context)?,
    })
}

/// Refuses the keys only a library OS can make use of.
fn refuse_library_os_keys(raw: &RawPartition, name: &str) -> Result<(), Refusal> {
    if let Some(program) = &raw.program {
        return Err((
            program.span().start,
            format!(
                "partition `{name}` has both `program` and `kernel`: a partition runs a \
                 library-OS program or a Linux kernel, not both"
            ),
        ));
    }
    let cannot = "Linux does not know exo's revocation protocol and cannot give memory back";
    if let Some(borrow) = &raw.borrow
        && borrow.get_ref().bytes().is_ok_and(|b| b > 0)
    {
        return Err((
            borrow.span().start,
            format!("Linux partition `{name}` cannot borrow memory: {cannot}"),
        ));
    }
    if let Some(guarantee) = &raw.guarantee {
        let more = match (guarantee.get_ref().bytes(), raw.memory.get_ref().bytes()) {
            (Ok(g), Ok(m)) => g > m,
            _ => false,
        };
        if more {
            return Err((
                guarantee.span().start,
                format!(
                    "Linux partition `{name}` has a guarantee beyond its `memory`: all its RAM \
                     is bound at boot, and Linux asks exo for no more"
                ),
            ));
        }
    }
    let hypercalls = [
        ("talks_to", raw.talks_to.as_deref()),
        ("capabilities", raw.capabilities.as_deref()),
    ];
    for (key, values) in hypercalls {
        if let Some(first) = values.and_then(<[_]>::first) {
            return Err((
                first.span().start,
                format!(
                    "Linux partition `{name}` cannot use `{key}`: Linux makes no exo \
                     hypercalls (its HVCs are PSCI)"
                ),
            ));
        }
    }
    Ok(())
}

/// A file's bytes, or an error at `key` naming it: a regular file of at most `limit`
/// bytes (so a device such as `/dev/zero`, or a huge file, is refused, not read for ever).
fn read_file(
    path: &Path,
    key: &Spanned<String>,
    what: &str,
    limit: u64,
) -> Result<Vec<u8>, Refusal> {
    let at = key.span().start;
    let name = key.get_ref();
    let unreadable = |e: std::io::Error| {
        let hint = if name.contains("build/linux/") {
            " (run `exo fetch-linux` to fetch Debian's kernel and build the test initramfs)"
        } else {
            ""
        };
        (
            at,
            format!(
                "{what} `{name}` cannot be read (looked for {}: {e}){hint}",
                path.display()
            ),
        )
    };
    let metadata = std::fs::metadata(path).map_err(unreadable)?;
    if !metadata.is_file() {
        return Err((at, format!("{what} `{name}` is not a regular file")));
    }
    if metadata.len() > limit {
        return Err((
            at,
            format!(
                "{what} `{name}` is {}, more than the {} it may take",
                Bytes(metadata.len()),
                Bytes(limit)
            ),
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(limit).read_to_end(&mut bytes))
        .map_err(unreadable)?;
    Ok(bytes)
}

/// Checks the command line.
fn bootargs(key: Option<&Spanned<String>>) -> Result<String, Refusal> {
    let Some(key) = key else {
        return Ok(String::new());
    };
    let text = key.get_ref();
    if text.len() >= MAX_BOOTARGS {
        return Err((
            key.span().start,
            format!(
                "bootargs of {} bytes: Linux takes at most {} on arm64",
                text.len(),
                MAX_BOOTARGS - 1
            ),
        ));
    }
    if text.contains('\0') {
        return Err((key.span().start, "bootargs contain a NUL byte".to_owned()));
    }
    Ok(text.clone())
}

/// The first owned board device Linux can take as its console.
fn console(raw: &RawPartition, context: &Context<'_>) -> Result<String, Refusal> {
    let is_console = |device: &OwnedDevice| {
        let name = device.name.as_deref()?;
        let board_device = context.board.devices.iter().find(|d| d.name == name)?;
        (board_device.compatible.as_deref() == Some(CONSOLE_COMPATIBLE)).then(|| name.to_owned())
    };
    if let Some(name) = context.devices.iter().find_map(is_console) {
        return Ok(name);
    }
    let candidates: Vec<&str> = context
        .board
        .devices
        .iter()
        .filter(|d| d.reserved.is_none() && d.compatible.as_deref() == Some(CONSOLE_COMPATIBLE))
        .map(|d| d.name.as_str())
        .collect();
    let offer = match candidates.as_slice() {
        [] => format!(
            "board `{}` has none a partition may own",
            context.board.name
        ),
        names => format!(
            "board `{}` has {}",
            context.board.name,
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let at = raw
        .devices
        .as_ref()
        .and_then(|list| list.0.first())
        .map_or(context.at, |first| first.span().start);
    Err((
        at,
        format!(
            "Linux partition `{}` owns no console: give it a PL011 (`{CONSOLE_COMPATIBLE}`) in \
             `devices`; {offer}",
            context.name
        ),
    ))
}

#[cfg(test)]
mod tests;
