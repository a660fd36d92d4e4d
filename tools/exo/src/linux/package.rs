//! A Linux partition in the boot package: segments in its RAM, by its
//! [`Layout`](super::layout::Layout): all of it (no data; read, write, execute), the Image
//! (`image_size` bytes, BSS zero), the device tree and the initramfs; entry at the Image
//! with `x0` = the device tree's IPA (the record's boot argument) and the `LINUX` flag.

use anyhow::{Context, bail};
use exo_abi::package::PartitionFlags;
use exo_abi::package::build::{PartitionSpec, SegmentSpec};
use exo_abi::{Ipa, Name, PAGE_SIZE, Rights};

use super::device_tree::Description;
use super::image_header;
use crate::config::{LinuxProgram, Partition, System};
use crate::image::configured_record;

/// The package record of Linux partition `partition`.
pub fn partition_spec(
    system: &System,
    partition: &Partition,
    linux: &LinuxProgram,
) -> anyhow::Result<PartitionSpec> {
    let name = Name::new(&partition.name).context("partition name")?;
    let bytes = std::fs::read(&linux.kernel)
        .with_context(|| format!("reading {}", linux.kernel.display()))?;
    let kernel = image_header::read_kernel(bytes)
        .map_err(|why| anyhow::anyhow!("kernel {} {why}", linux.kernel.display()))?;
    if kernel.header != linux.header {
        bail!(
            "kernel {} changed since it was checked",
            linux.kernel.display()
        );
    }
    let initrd = match &linux.initrd {
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        None => Vec::new(),
    };
    let layout = linux.layout;
    if (initrd.len() as u64) != layout.initrd.1 - layout.initrd.0 {
        bail!(
            "initrd of `{}` changed since it was checked",
            partition.name
        );
    }
    let dtb = Description::of_partition(&system.board, partition, linux)?
        .to_dtb()
        .map_err(|e| anyhow::anyhow!("device tree of `{}`: {e}", partition.name))?;
    let rw = Rights::READ | Rights::WRITE;
    let rwx = rw | Rights::EXECUTE;
    let mut segments = vec![
        // All of its RAM executable: Linux runs code where it likes (its user programs,
        // anywhere in its memory) and keeps W^X in its own stage 1; a page outside every
        // segment would be read-write only.
        segment(layout.ram_base, Vec::new(), layout.ram_size, rwx),
        segment(layout.kernel, kernel.image, kernel.header.image_size, rwx),
        segment(layout.dtb, dtb, 0, rw),
    ];
    if !initrd.is_empty() {
        segments.push(segment(layout.initrd.0, initrd, 0, rw));
    }
    let mut record = configured_record(partition, name, Ipa::new(layout.kernel), segments);
    record.flags |= PartitionFlags::LINUX;
    record.boot_argument = layout.dtb;
    Ok(record)
}

/// A segment of `data` at `ipa`, at least `size` bytes in memory, whole pages.
fn segment(ipa: u64, data: Vec<u8>, size: u64, rights: Rights) -> SegmentSpec {
    let mem_size = size.max(data.len() as u64).next_multiple_of(PAGE_SIZE);
    SegmentSpec {
        ipa: Ipa::new(ipa),
        data,
        mem_size,
        rights,
    }
}
