//! Where a Linux partition's kernel, device tree and initramfs go in its RAM, by the arm64
//! boot protocol (`Documentation/arch/arm64/booting.rst`): the Image at a 2 MiB-aligned
//! address plus its `text_offset`, with `image_size` bytes free from there; the device
//! tree 8-byte aligned, at most 2 MiB, in a 2 MiB region of its own (Linux maps it with
//! 2 MiB blocks); the initramfs anywhere in RAM, page aligned here.
//!
//! ```text
//! RAM base (2 MiB aligned, IPA 0x4000_0000)
//! | text_offset | Image ... image_size | to 2 MiB | DTB (2 MiB) | initramfs | free ...
//! ```
//!
//! The same layout is used by `exo check` (does it fit in `memory`?), the device-tree
//! generator (`linux,initrd-start`/`-end`, the memory node) and the boot package.

use super::image_header::{IMAGE_ALIGN, ImageHeader};

/// The most a device tree may take (arm64 boot protocol), and the slot it gets.
pub const DTB_SLOT: u64 = 2 << 20;

/// The layout of one Linux partition's RAM, in IPAs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// First IPA of the partition's RAM (2 MiB aligned).
    pub ram_base: u64,
    /// Bytes of RAM.
    pub ram_size: u64,
    /// Where the Image is loaded and entered: `ram_base + text_offset`.
    pub kernel: u64,
    /// Where the device tree goes; the vCPU enters with `x0` = this.
    pub dtb: u64,
    /// The initramfs, `[start, end)`; empty (start = end) without one.
    pub initrd: (u64, u64),
}

impl Layout {
    /// Lays out `header`'s kernel, the device tree and an initramfs of `initrd_bytes` in
    /// `ram_size` bytes at `ram_base`; `Err` says how many bytes that needs when they do
    /// not fit.
    pub fn new(
        ram_base: u64,
        ram_size: u64,
        header: &ImageHeader,
        initrd_bytes: u64,
    ) -> Result<Self, u64> {
        debug_assert!(ram_base.is_multiple_of(IMAGE_ALIGN));
        let kernel = ram_base + header.text_offset;
        let kernel_end = (header.text_offset + header.image_size).next_multiple_of(IMAGE_ALIGN);
        let dtb = ram_base + kernel_end;
        let initrd_start = dtb + DTB_SLOT;
        let initrd_end = initrd_start + initrd_bytes;
        let needed = initrd_end.next_multiple_of(4096) - ram_base;
        if needed > ram_size {
            return Err(needed);
        }
        Ok(Self {
            ram_base,
            ram_size,
            kernel,
            dtb,
            initrd: (initrd_start, initrd_end),
        })
    }

    /// Bytes the loaded pieces take from the start of RAM (the rest is Linux's to use).
    pub fn loaded_bytes(&self) -> u64 {
        self.initrd.1.next_multiple_of(4096) - self.ram_base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text_offset: u64, image_size: u64) -> ImageHeader {
        ImageHeader {
            text_offset,
            image_size,
            flags: 0xa,
        }
    }

    #[test]
    fn the_pieces_follow_each_other_on_the_boundaries_the_protocol_asks() {
        let layout = Layout::new(0x4000_0000, 256 << 20, &header(0, 0x201_0000), 1 << 20);
        let layout = layout.unwrap();
        assert_eq!(layout.kernel, 0x4000_0000);
        // 32 MiB + 64 KiB of image rounds up to 34 MiB.
        assert_eq!(layout.dtb, 0x4220_0000);
        assert_eq!(layout.initrd, (0x4240_0000, 0x4250_0000));
        assert_eq!(layout.loaded_bytes(), 0x250_0000);
    }

    #[test]
    fn text_offset_is_added_to_the_aligned_base() {
        let layout = Layout::new(0x4000_0000, 64 << 20, &header(0x8_0000, 0x100_0000), 0);
        let layout = layout.unwrap();
        assert_eq!(layout.kernel, 0x4008_0000);
        assert_eq!(layout.dtb, 0x4120_0000);
        assert_eq!(layout.initrd.0, layout.initrd.1);
    }

    #[test]
    fn too_little_ram_says_how_much_is_needed() {
        let needed = Layout::new(0x4000_0000, 8 << 20, &header(0, 7 << 20), 4097);
        assert_eq!(needed, Err((8 << 20) + (2 << 20) + 8192));
    }
}
