//! The arm64 Linux `Image` header (`Documentation/arch/arm64/booting.rst`, "Call the kernel
//! image"): 64 bytes at the start of the Image, little-endian.
//!
//! | Offset | Field | What exo checks |
//! |---:|---|---|
//! | 0x08 | `text_offset` | a multiple of 4 KiB, below 2 MiB: the Image goes at a 2 MiB-aligned address plus this |
//! | 0x10 | `image_size` | non-zero (kernels before 3.17 leave it 0 and are refused), at least the file's size: the memory the kernel occupies, BSS included |
//! | 0x18 | `flags` | bit 0 clear (little-endian kernel) |
//! | 0x38 | `magic` | `"ARM\x64"` |
//!
//! Users hand over what their distribution ships; a gzip-compressed Image (`vmlinuz` on
//! some distributions, `Image.gz` from a kernel build) is decompressed first.

use std::io::Read;

/// The header's magic at 0x38: `"ARM\x64"`.
pub const MAGIC: [u8; 4] = *b"ARM\x64";

/// Largest decompressed Image accepted (a distribution kernel is ~30-40 MiB).
pub const MAX_IMAGE: u64 = 256 << 20;

/// The 2 MiB alignment of the Image's base (arm64 boot protocol).
pub const IMAGE_ALIGN: u64 = 2 << 20;

/// The fields of a checked header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    /// Offset of the Image from a 2 MiB-aligned base.
    pub text_offset: u64,
    /// Bytes of memory the kernel occupies from where it is loaded (BSS included).
    pub image_size: u64,
    /// Header flags (bit 0: big-endian; bits 1-2: page size; bit 3: placement).
    pub flags: u64,
}

/// A kernel as read from its file: the Image (decompressed if it came gzip-compressed) and
/// its checked header.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// The Image's bytes.
    pub image: Vec<u8>,
    /// Its header.
    pub header: ImageHeader,
    /// The file was gzip-compressed.
    pub was_gzip: bool,
}

/// Reads a kernel file's bytes: decompresses gzip, then checks the Image header. The error
/// says what is wrong, for a message naming the file.
pub fn read_kernel(bytes: Vec<u8>) -> Result<Kernel, String> {
    let was_gzip = bytes.starts_with(&[0x1f, 0x8b]);
    let image = if was_gzip { gunzip(&bytes)? } else { bytes };
    let header = check_header(&image)?;
    Ok(Kernel {
        image,
        header,
        was_gzip,
    })
}

/// Decompresses a gzip stream, refusing more than [`MAX_IMAGE`] bytes.
fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut image = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(MAX_IMAGE + 1)
        .read_to_end(&mut image)
        .map_err(|e| format!("is gzip-compressed but does not decompress: {e}"))?;
    if image.len() as u64 > MAX_IMAGE {
        return Err(format!(
            "decompresses to more than {} MiB, more than any arm64 Image",
            MAX_IMAGE >> 20
        ));
    }
    Ok(image)
}

/// Checks an Image's 64-byte header.
pub fn check_header(image: &[u8]) -> Result<ImageHeader, String> {
    let word = |at: usize| {
        image
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    let (Some(text_offset), Some(image_size), Some(flags)) = (word(0x08), word(0x10), word(0x18))
    else {
        return Err(format!(
            "is {} bytes long, too short for an arm64 Image header (64 bytes)",
            image.len()
        ));
    };
    if image.get(0x38..0x3c) != Some(&MAGIC[..]) {
        return Err(
            "is not an arm64 Linux Image: no magic \"ARM\\x64\" at offset 0x38 (give the \
             kernel's `Image` or `vmlinuz`, not an ELF `vmlinux` or a 32-bit `zImage`)"
                .to_owned(),
        );
    }
    if flags & 1 != 0 {
        return Err("is a big-endian kernel (header flags bit 0): exo runs little-endian".into());
    }
    if image_size == 0 {
        return Err(
            "has image_size 0 in its header: kernels before Linux 3.17 do not say how much \
             memory they need, and are not supported"
                .to_owned(),
        );
    }
    if image_size < image.len() as u64 {
        return Err(format!(
            "has image_size {image_size:#x} in its header, smaller than the Image itself \
             ({:#x} bytes): the header is damaged",
            image.len()
        ));
    }
    if text_offset >= IMAGE_ALIGN || !text_offset.is_multiple_of(4096) {
        return Err(format!(
            "has text_offset {text_offset:#x}: it must be a multiple of 4 KiB below 2 MiB"
        ));
    }
    Ok(ImageHeader {
        text_offset,
        image_size,
        flags,
    })
}

#[cfg(test)]
mod tests;
