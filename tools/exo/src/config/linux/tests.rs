use super::super::testing::{TempDir, workspace};
use super::super::{ConfigError, Program, System, parse};
use crate::linux::image_header::MAGIC;
use crate::linux::initramfs::gzip;

/// A made-up arm64 Image of `length` bytes that needs `image_size` bytes.
fn image(image_size: u64, length: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; length];
    bytes[0x10..0x18].copy_from_slice(&image_size.to_le_bytes());
    bytes[0x18..0x20].copy_from_slice(&0xa_u64.to_le_bytes());
    bytes[0x38..0x3c].copy_from_slice(&MAGIC);
    bytes
}

/// A Linux partition (`linux`, line 2) with `keys` after its name, then a library-OS one.
fn config(keys: &str) -> String {
    format!(
        "[[partition]]\nname = \"linux\"\n{keys}\n\n[[partition]]\nname = \"hello\"\n\
         program = \"hello\"\nmemory = \"1MiB\"\n"
    )
}

const GOOD: &str = "kernel = \"Image\"\ninitrd = \"initrd.gz\"\n\
                    bootargs = \"console=ttyAMA0 earlycon\"\nmemory = \"64MiB\"\n\
                    devices = [\"uart1\"]";

/// Parses `text` as `configs/test.toml` beside `configs/Image` (16 MiB needed) and
/// `configs/initrd.gz`.
fn check(text: &str, kernel: &[u8]) -> (TempDir, Result<System, ConfigError>) {
    let (dir, workspace) = workspace();
    dir.write("configs/Image", kernel);
    dir.write("configs/initrd.gz", gzip(b"070701").unwrap());
    let path = dir.path().join("configs/test.toml");
    let result = parse(&workspace, &path, text, None);
    (dir, result)
}

fn refused(keys: &str, line: usize, phrase: &str) {
    let (_dir, result) = check(&config(keys), &image(16 << 20, 4096));
    let error = result.expect_err("accepted");
    assert_eq!(error.line, Some(line), "wrong line in: {error}");
    assert!(error.message.contains(phrase), "`{phrase}` not in: {error}");
}

#[test]
fn a_linux_partition_is_checked_and_laid_out() {
    let (dir, result) = check(&config(GOOD), &image(16 << 20, 4096));
    let system = result.unwrap();
    let Program::Linux(linux) = &system.partitions[0].program else {
        panic!("not a Linux partition");
    };
    assert_eq!(linux.kernel, dir.path().join("configs/Image"));
    assert!(!linux.kernel_gzip);
    assert_eq!(linux.bootargs, "console=ttyAMA0 earlycon");
    assert_eq!(linux.console, "uart1");
    assert_eq!(linux.layout.kernel, 0x4000_0000);
    assert_eq!(linux.layout.dtb, 0x4100_0000);
    assert_eq!(linux.layout.initrd.0, 0x4120_0000);
    assert_eq!(system.partitions[0].interrupts, [40]);
    assert!(system.guest_programs() == ["hello"]);
}

#[test]
fn a_gzip_compressed_kernel_is_accepted() {
    let (_dir, result) = check(&config(GOOD), &gzip(&image(16 << 20, 4096)).unwrap());
    let system = result.unwrap();
    let Program::Linux(linux) = &system.partitions[0].program else {
        panic!("not a Linux partition");
    };
    assert!(linux.kernel_gzip);
    assert_eq!(linux.header.image_size, 16 << 20);
}

#[test]
fn a_kernel_that_is_not_an_image_is_refused_at_its_line() {
    let (_dir, result) = check(
        &config(GOOD),
        b"\x7fELF not an Image, long enough for a header.....",
    );
    let error = result.unwrap_err();
    assert_eq!(error.line, Some(3));
    assert!(
        error
            .message
            .contains("kernel `Image` is not an arm64 Linux Image"),
        "{error}"
    );
}

#[test]
fn missing_files_name_where_they_were_looked_for() {
    refused(
        &GOOD.replace("\"Image\"", "\"nope\""),
        3,
        "kernel `nope` cannot be read",
    );
    refused(
        &GOOD.replace("\"initrd.gz\"", "\"gone\""),
        4,
        "initrd `gone` cannot be read",
    );
}

#[test]
fn the_kernel_devicetree_and_initramfs_must_fit_in_memory() {
    refused(
        &GOOD.replace("64MiB", "16MiB"),
        6,
        "memory of 16 MiB for Linux partition `linux` is too small",
    );
}

#[test]
fn a_linux_partition_needs_a_console() {
    refused(
        &GOOD.replace("[\"uart1\"]", "[\"rtc\"]"),
        7,
        "Linux partition `linux` owns no console: give it a PL011 (`arm,pl011`) in `devices`; \
         board `qemu-virt` has `uart1`",
    );
    refused(
        &GOOD.replace("devices = [\"uart1\"]", ""),
        1,
        "owns no console",
    );
}

#[test]
fn library_os_keys_are_refused() {
    refused(
        &format!("{GOOD}\nborrow = \"4MiB\""),
        8,
        "cannot borrow memory",
    );
    refused(
        &format!("{GOOD}\nguarantee = \"128MiB\""),
        8,
        "guarantee beyond its `memory`",
    );
    refused(
        &format!("{GOOD}\ntalks_to = [\"hello\"]"),
        8,
        "cannot use `talks_to`",
    );
    refused(
        &format!("{GOOD}\ncapabilities = [\"self-check\"]"),
        8,
        "cannot use `capabilities`",
    );
    refused(
        &format!("{GOOD}\nprogram = \"hello\""),
        8,
        "both `program` and `kernel`",
    );
}

#[test]
fn linux_keys_need_a_kernel_and_a_partition_needs_something_to_run() {
    refused(
        "program = \"hello\"\nmemory = \"1MiB\"\ninitrd = \"initrd.gz\"",
        5,
        "`initrd` is for Linux partitions",
    );
    refused(
        "program = \"hello\"\nmemory = \"1MiB\"\nbootargs = \"quiet\"",
        5,
        "`bootargs` is for Linux partitions",
    );
    refused("memory = \"1MiB\"", 1, "partition `linux` runs nothing");
}

#[test]
fn bootargs_are_bounded() {
    let long = format!("bootargs = \"{}\"", "x".repeat(2048));
    refused(
        &GOOD.replace("bootargs = \"console=ttyAMA0 earlycon\"", &long),
        5,
        "at most 2047",
    );
}

#[test]
fn devices_and_oversized_files_are_refused_unread() {
    refused(
        &GOOD.replace("\"Image\"", "\"/dev/zero\""),
        3,
        "is not a regular file",
    );
    let (dir, workspace) = workspace();
    dir.write("configs/Image", image(16 << 20, 4096));
    dir.write("configs/initrd.gz", vec![0u8; (64 << 20) + 1]);
    let path = dir.path().join("configs/test.toml");
    let error = parse(&workspace, &path, &config(GOOD), None).unwrap_err();
    assert_eq!(error.line, Some(4), "{error}");
    assert!(
        error.message.contains("more than the 64 MiB it may take"),
        "{error}"
    );
}
