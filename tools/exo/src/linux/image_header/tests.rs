use super::*;
use crate::linux::initramfs::gzip;

/// A minimal Image: a header with these fields, padded to `length` bytes.
fn image(text_offset: u64, image_size: u64, flags: u64, length: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; length.max(64)];
    bytes[0x08..0x10].copy_from_slice(&text_offset.to_le_bytes());
    bytes[0x10..0x18].copy_from_slice(&image_size.to_le_bytes());
    bytes[0x18..0x20].copy_from_slice(&flags.to_le_bytes());
    bytes[0x38..0x3c].copy_from_slice(&MAGIC);
    bytes.truncate(length);
    bytes
}

#[test]
fn a_modern_image_is_accepted_with_its_fields() {
    let kernel = read_kernel(image(0, 0x200_0000, 0xa, 4096)).unwrap();
    assert!(!kernel.was_gzip);
    assert_eq!(
        kernel.header,
        ImageHeader {
            text_offset: 0,
            image_size: 0x200_0000,
            flags: 0xa
        }
    );
}

#[test]
fn a_gzip_compressed_image_is_decompressed_first() {
    let plain = image(0x8_0000, 0x10_0000, 2, 8192);
    let kernel = read_kernel(gzip(&plain).unwrap()).unwrap();
    assert!(kernel.was_gzip);
    assert_eq!(kernel.image, plain);
    assert_eq!(kernel.header.text_offset, 0x8_0000);
}

#[test]
fn what_is_not_an_arm64_image_is_refused_saying_why() {
    let refused = |bytes: Vec<u8>, phrase: &str| {
        let error = read_kernel(bytes).unwrap_err();
        assert!(error.contains(phrase), "`{phrase}` not in: {error}");
    };
    refused(vec![0; 10], "too short");
    refused(b"\x7fELF".repeat(32), "no magic");
    let mut no_magic = image(0, 0x10_0000, 2, 4096);
    no_magic[0x38] = b'X';
    refused(no_magic, "no magic");
    refused(image(0, 0x10_0000, 3, 4096), "big-endian");
    refused(image(0x8_0000, 0, 2, 4096), "before Linux 3.17");
    refused(image(0, 0x1000, 2, 8192), "smaller than the Image");
    refused(image(0x20_0000, 0x10_0000, 2, 4096), "text_offset 0x200000");
    refused(image(0x800, 0x10_0000, 2, 4096), "text_offset 0x800");
    refused(vec![0x1f, 0x8b, 8, 0, 1, 2, 3], "does not decompress");
    let mut truncated = gzip(&image(0, 0x10_0000, 2, 4096)).unwrap();
    truncated.truncate(20);
    refused(truncated, "does not decompress");
}

#[test]
fn debians_pinned_kernel_passes_when_fetched() {
    // Only when `exo fetch-linux` has run: the pinned file, checked against its SHA-256.
    let path = crate::Workspace::locate()
        .unwrap()
        .root()
        .join(crate::linux::fetch::OUT)
        .join("vmlinuz");
    let Ok(bytes) = std::fs::read(&path) else {
        eprintln!("skipped: {} not fetched", path.display());
        return;
    };
    let kernel = read_kernel(bytes).unwrap();
    assert_eq!(kernel.header.text_offset, 0);
    assert!(kernel.header.image_size >= kernel.image.len() as u64);
}
