use std::io::Read;

use super::*;

/// Reads a newc archive back: (name, mode, data, device) per member, trailer excluded.
fn read_newc(mut bytes: &[u8]) -> Vec<Entry> {
    let field = |header: &[u8], i: usize| {
        let text = std::str::from_utf8(&header[6 + 8 * i..14 + 8 * i]).unwrap();
        u32::from_str_radix(text, 16).unwrap()
    };
    let total = bytes.len();
    let mut entries = Vec::new();
    loop {
        assert_eq!(
            &bytes[..6],
            b"070701",
            "magic at offset {}",
            total - bytes.len()
        );
        let header = &bytes[..110];
        let (mode, size, name_size) = (field(header, 1), field(header, 6), field(header, 11));
        let device = (field(header, 9), field(header, 10));
        let name_end = 110 + name_size as usize;
        assert_eq!(bytes[name_end - 1], 0, "name is NUL-terminated");
        let name = std::str::from_utf8(&bytes[110..name_end - 1])
            .unwrap()
            .to_owned();
        let data_start = name_end.next_multiple_of(4);
        let data = bytes[data_start..data_start + size as usize].to_vec();
        bytes = &bytes[(data_start + size as usize).next_multiple_of(4)..];
        if name == "TRAILER!!!" {
            assert!(bytes.is_empty(), "nothing after the trailer");
            return entries;
        }
        entries.push(Entry {
            name,
            mode,
            data,
            device,
        });
    }
}

#[test]
fn the_archive_reads_back_member_by_member() {
    let entries = test_entries(b"\x7fELF busybox".to_vec());
    let archive = newc(&entries);
    assert_eq!(archive.len() % 4, 0);
    assert_eq!(read_newc(&archive), entries);
}

#[test]
fn odd_name_and_data_lengths_are_padded_to_four_bytes() {
    for length in 0..9 {
        let entries = vec![Entry::file(&"n".repeat(length + 1), 0o644, vec![7; length])];
        assert_eq!(read_newc(&newc(&entries)), entries, "length {length}");
    }
}

#[test]
fn the_test_initramfs_has_an_executable_init_that_powers_off() {
    let gz = test_initramfs(b"busybox".to_vec()).unwrap();
    assert_eq!(&gz[..2], b"\x1f\x8b", "gzip magic");
    let mut archive = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut archive)
        .unwrap();
    let entries = read_newc(&archive);
    let init = entries.iter().find(|e| e.name == "init").unwrap();
    assert!(init.is_file());
    assert_eq!(init.mode & 0o111, 0o111, "init is executable");
    let script = std::str::from_utf8(&init.data).unwrap();
    assert!(script.starts_with("#!/bin/busybox sh\n"));
    for wanted in [MARKER, "/proc/cpuinfo", "/proc/interrupts", "poweroff -f"] {
        assert!(script.contains(wanted), "/init lacks {wanted}");
    }
    let hostile = entries.iter().find(|e| e.name == "hostile").unwrap();
    assert_eq!(hostile.mode & 0o111, 0o111, "hostile is executable");
    assert!(
        std::str::from_utf8(&hostile.data)
            .unwrap()
            .contains("devmem 0x50000000")
    );
    let console = entries.iter().find(|e| e.name == "dev/console").unwrap();
    assert_eq!(
        (console.mode & 0o170_000, console.device),
        (0o020_000, (5, 1))
    );
    assert!(
        entries
            .iter()
            .any(|e| e.name == "bin/busybox" && e.data == b"busybox")
    );
    // Every member's parent directory comes before it.
    for (i, entry) in entries.iter().enumerate() {
        if let Some((parent, _)) = entry.name.rsplit_once('/') {
            assert!(
                entries[..i].iter().any(|e| e.name == parent),
                "{}",
                entry.name
            );
        }
    }
}

#[test]
fn the_same_busybox_gives_the_same_bytes() {
    let a = test_initramfs(b"same".to_vec()).unwrap();
    let b = test_initramfs(b"same".to_vec()).unwrap();
    assert_eq!(a, b);
}
