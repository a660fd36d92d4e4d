//! The device-tree reader against real and synthetic blobs: `FDT_NOP` tokens, multi-bank
//! memory, nested buses, and malformed blobs, which must be errors and never panics.

use super::*;
use proptest::prelude::*;

/// `synthetic.dts` compiled with dtc.
const SYNTHETIC: &[u8] = include_bytes!("../../tests/fixtures/synthetic.dtb");
/// The Pi 4's own tree with the firmware's memory node for each board size.
const PI_2GIB: &[u8] = include_bytes!("../../tests/fixtures/rpi4b-2gib.dtb");
const PI_4GIB: &[u8] = include_bytes!("../../tests/fixtures/rpi4b-4gib.dtb");
const PI_8GIB: &[u8] = include_bytes!("../../tests/fixtures/rpi4b-8gib.dtb");
/// The Pi 4's tree as QEMU raspi4b edits it, with 329 `FDT_NOP` tokens.
const PI_UNDER_QEMU: &[u8] = include_bytes!("../../tests/fixtures/qemu-raspi4b-real.dtb");

const FDT_BEGIN_NODE: u32 = 1;
const FDT_NOP: u32 = 4;

fn tree(blob: &[u8]) -> DeviceTree<'_> {
    DeviceTree::new(blob).unwrap()
}

fn region(start: u64, size: u64) -> Region {
    Region { start, size }
}

/// Offset of the first occurrence of `needle` in `blob`.
fn offset_of(blob: &[u8], needle: &[u8]) -> usize {
    blob.windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not in the blob", String::from_utf8_lossy(needle)))
}

/// `begin` followed by `name\0`: where that node's `FDT_BEGIN_NODE` token is.
fn node_offset(blob: &[u8], name: &str) -> usize {
    let mut needle = FDT_BEGIN_NODE.to_be_bytes().to_vec();
    needle.extend_from_slice(name.as_bytes());
    needle.push(0);
    offset_of(blob, &needle)
}

/// Overwrites `blob[from..to]` with `FDT_NOP` tokens.
fn nop(blob: &mut [u8], from: usize, to: usize) {
    assert!(from.is_multiple_of(4) && to.is_multiple_of(4));
    for word in blob[from..to].chunks_exact_mut(4) {
        word.copy_from_slice(&FDT_NOP.to_be_bytes());
    }
}

/// `synthetic.dtb` with /removed and /uart@9000000's removed-property deleted the way
/// libfdt's `fdt_nop_node` and `fdt_nop_property` (used by QEMU and firmware) do it.
fn synthetic_with_nops() -> Vec<u8> {
    let mut blob = SYNTHETIC.to_vec();
    let removed = node_offset(&blob, "removed");
    let memory = node_offset(&blob, "memory@40000000");
    nop(&mut blob, removed, memory);
    let value = offset_of(&blob, b"a long value");
    let length = b"a long value, so that the NOPs span several words\0".len();
    // The property's token, length and name offset come just before its value.
    nop(&mut blob, value - 12, value + length.next_multiple_of(4));
    blob
}

#[test]
fn nop_tokens_read_as_if_the_deleted_parts_were_never_there() {
    // Without the NOPs, /removed is the first PL011.
    let plain = tree(SYNTHETIC);
    assert_eq!(
        plain.find_compatible(&["arm,pl011"]).unwrap().name(),
        "removed"
    );

    let blob = synthetic_with_nops();
    assert!(
        blob.chunks_exact(4)
            .filter(|w| *w == FDT_NOP.to_be_bytes())
            .count()
            > 20
    );
    let tree = tree(&blob);
    let uart = tree.find_compatible(&["arm,pl011"]).unwrap();
    assert_eq!(uart.name(), "uart@9000000");
    assert_eq!(uart.first_region(), Some(region(0x900_0000, 0x1000)));
    assert!(uart.node().property("removed-property").is_none());
    assert!(uart.is_compatible("arm,primecell"));
    assert!(tree.find_path("/removed").is_none());
    assert_eq!(tree.stdout().unwrap().name(), "uart@9000000");
    assert_eq!(
        tree.memory_banks().as_slice(),
        [
            region(0x4000_0000, 0x2000_0000),
            region(0x1_0000_0000, 0x4000_0000)
        ]
    );
    assert_eq!(tree.model(), Some("exo parser test"));
}

#[test]
fn disabled_nodes_are_not_found_by_compatible() {
    let tree = tree(SYNTHETIC);
    let disabled = tree.find_path("/disabled-uart@9100000").unwrap();
    assert!(disabled.is_compatible("exo,disabled"));
    assert!(tree.find_compatible(&["exo,disabled"]).is_none());
}

#[test]
fn translates_through_nested_buses() {
    let tree = tree(SYNTHETIC);
    let nested = tree.find_compatible(&["exo,nested"]).unwrap();
    // 0x100 on inner@8000 -> 0x8100 on bus@10000000 -> 0x1000_8100 for the CPU; the
    // second entry lies outside inner@8000's one range.
    let regions: Vec<_> = nested.regions().collect();
    assert_eq!(regions, [Some(region(0x1000_8100, 0x10)), None]);
    // An empty `ranges` is the identity.
    let identity = tree.find_compatible(&["exo,identity"]).unwrap();
    assert_eq!(identity.first_region(), Some(region(0x1002_0000, 0x10)));
    // A bus without `ranges` is not reachable from the CPU.
    let hidden = tree.find_compatible(&["exo,hidden"]).unwrap();
    assert_eq!(hidden.first_region(), None);
    let by_path = tree.find_path("/bus/inner@8000/device").unwrap();
    assert_eq!(by_path.first_region(), Some(region(0x1000_8100, 0x10)));
}

#[test]
fn reads_the_banks_the_pi_firmware_writes() {
    let low = region(0, 0x3B40_0000);
    assert_eq!(
        tree(PI_2GIB).memory_banks().as_slice(),
        [low, region(0x4000_0000, 0x4000_0000)]
    );
    assert_eq!(
        tree(PI_4GIB).memory_banks().as_slice(),
        [low, region(0x4000_0000, 0xBC00_0000)]
    );
    assert_eq!(
        tree(PI_8GIB).memory_banks().as_slice(),
        [
            low,
            region(0x4000_0000, 0xBC00_0000),
            region(0x1_0000_0000, 0x8000_0000),
            region(0x1_8000_0000, 0x8000_0000)
        ]
    );
    let total: u64 = tree(PI_8GIB)
        .memory_banks()
        .as_slice()
        .iter()
        .map(|b| b.size)
        .sum();
    assert_eq!(total, (8 << 30) - (76 << 20) - (64 << 20));
}

#[test]
fn resolves_the_pi_stdout_alias_to_the_mini_uart() {
    for blob in [PI_2GIB, PI_UNDER_QEMU] {
        let tree = tree(blob);
        let stdout = tree.stdout().unwrap();
        assert_eq!(stdout.name(), "serial@7e215040");
        assert!(stdout.is_compatible("brcm,bcm2835-aux-uart"));
        assert_eq!(stdout.first_region(), Some(region(0xFE21_5040, 0x40)));
        assert_eq!(tree.model(), Some("Raspberry Pi 4 Model B"));
    }
}

#[test]
fn the_blob_size_comes_from_a_checked_header() {
    assert_eq!(blob_size(SYNTHETIC), Ok(SYNTHETIC.len()));
    assert_eq!(blob_size(&SYNTHETIC[..7]), Err(DtbError::Truncated));
    assert_eq!(blob_size(&[0; 40]), Err(DtbError::BadMagic(0)));
    let mut header = SYNTHETIC[..40].to_vec();
    header[4..8].copy_from_slice(&39u32.to_be_bytes());
    assert_eq!(blob_size(&header), Err(DtbError::BadSize(39)));
    header[4..8].copy_from_slice(&(MAX_SIZE as u32 + 1).to_be_bytes());
    assert_eq!(
        blob_size(&header),
        Err(DtbError::BadSize(MAX_SIZE as u32 + 1))
    );
}

#[test]
fn every_truncation_is_an_error() {
    for length in 0..SYNTHETIC.len() {
        assert!(
            DeviceTree::new(&SYNTHETIC[..length]).is_err(),
            "{length} bytes"
        );
    }
    // A blob whose header says it is shorter than its structure needs.
    let mut short = SYNTHETIC.to_vec();
    let cut = (short.len() as u32 - 64).to_be_bytes();
    short[4..8].copy_from_slice(&cut);
    assert!(matches!(
        DeviceTree::new(&short),
        Err(DtbError::Malformed(_))
    ));
    // Bytes past `totalsize` are not part of the blob.
    let mut padded = SYNTHETIC.to_vec();
    padded.extend_from_slice(&[0xFF; 100]);
    assert_eq!(DeviceTree::new(&padded).unwrap().size(), SYNTHETIC.len());
}

#[test]
fn a_bad_token_is_an_error() {
    let mut blob = SYNTHETIC.to_vec();
    let memory = node_offset(&blob, "memory@40000000");
    blob[memory..memory + 4].copy_from_slice(&0xDEAD_BEEFu32.to_be_bytes());
    let error = DeviceTree::new(&blob).err().unwrap();
    assert_eq!(
        error,
        DtbError::Malformed("bad token in the structure block")
    );
    assert_eq!(
        error.to_string(),
        "malformed device tree: bad token in the structure block"
    );
}

/// `SYNTHETIC` with the big-endian word at `at` replaced by `value`.
fn patched(at: usize, value: u32) -> Vec<u8> {
    let mut blob = SYNTHETIC.to_vec();
    blob[at..at + 4].copy_from_slice(&value.to_be_bytes());
    blob
}

#[test]
fn each_structural_fault_is_named() {
    let header = |field: usize| field * 4;
    let malformed = |blob: Vec<u8>| match DeviceTree::new(&blob) {
        Err(DtbError::Malformed(why)) => why,
        other => panic!(
            "expected a malformed blob, got {:?}",
            other.map(|t| t.size())
        ),
    };
    assert_eq!(malformed(patched(header(5), 15)), "unsupported version");
    assert_eq!(
        malformed(patched(header(2), 1 << 20)),
        "structure block out of bounds"
    );
    assert_eq!(
        malformed(patched(header(3), SYNTHETIC.len() as u32)),
        "strings block out of bounds"
    );
    // The first property of /memory@40000000 names an offset past the strings block.
    let memory = node_offset(SYNTHETIC, "memory@40000000");
    let property = memory + 4 + "memory@40000000\0".len().next_multiple_of(4);
    assert_eq!(word(SYNTHETIC, property), 3, "FDT_PROP");
    assert_eq!(
        malformed(patched(property + 8, 0x7FFF_0000)),
        "property name out of bounds"
    );
    assert_eq!(
        malformed(patched(property + 4, 0x7FFF_0000)),
        "property value out of bounds"
    );
    // The root's own end: what follows is outside any node.
    let structure = word(SYNTHETIC, header(2)) as usize;
    let size = word(SYNTHETIC, header(9)) as usize;
    let end = structure + size - 4;
    assert_eq!(word(SYNTHETIC, end), 9, "FDT_END");
    assert_eq!(malformed(patched(end - 4, FDT_NOP)), "end inside a node");
    assert_eq!(malformed(patched(end, 2)), "unbalanced end of node");
    assert_eq!(
        malformed(patched(end, FDT_NOP)),
        "structure block truncated"
    );
}

fn word(blob: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(blob[at..at + 4].try_into().unwrap())
}

#[test]
fn reads_the_memory_reservations() {
    let dtb: &[u8] = include_bytes!("../../tests/fixtures/qemu-raspi4b.dtb");
    let reserved: Vec<_> = tree(dtb).memory_reservations().collect();
    // The spin-table page of qemu-raspi4b.dts's /memreserve/.
    assert_eq!(reserved, [region(0, 0x1000)]);
    assert_eq!(tree(SYNTHETIC).memory_reservations().count(), 0);
}

/// Everything the kernel asks of a tree, for the no-panic property.
fn read_everything(tree: &DeviceTree<'_>) {
    let _ = tree.memory_banks();
    let _ = tree.memory_reservations().count();
    let _ = tree.model();
    for compatible in [
        "arm,pl011",
        "arm,gic-400",
        "brcm,bcm2835-pm-wdt",
        "exo,nested",
    ] {
        if let Some(node) = tree.find_compatible(&[compatible]) {
            let _ = node.regions().count();
        }
    }
    if let Some(stdout) = tree.stdout() {
        let _ = stdout.regions().count();
    }
    let _ = tree.find(&mut |node| node.name().starts_with("psci"));
    let _ = crate::boot_info::BootInfo::from_fdt(tree, exo_abi::PhysAddr::new(0x8_0000));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Corrupting a real blob anywhere (header, tokens, lengths, cells, strings) gives an
    /// error or a tree that reads without panicking.
    #[test]
    fn corrupt_blobs_never_panic(
        which in 0..3usize,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u32>(), 0..3u8), 1..6),
    ) {
        let nops = synthetic_with_nops();
        let mut blob = [SYNTHETIC, PI_UNDER_QEMU, &nops[..]][which].to_vec();
        for (at, value, kind) in edits {
            let at = at.index(blob.len()) & !3;
            let word = match kind {
                // A small number: a token, a cell count, a length or a name offset.
                0 => value % 16,
                1 => value,
                _ => u32::from_be_bytes([blob[at], blob[at + 1], blob[at + 2], blob[at + 3]]) ^ (1 << (value % 32)),
            };
            blob[at..at + 4].copy_from_slice(&word.to_be_bytes());
        }
        if let Ok(tree) = DeviceTree::new(&blob) {
            read_everything(&tree);
        }
    }
}

#[test]
fn the_real_blobs_read_whole() {
    for blob in [SYNTHETIC, PI_2GIB, PI_4GIB, PI_8GIB, PI_UNDER_QEMU] {
        read_everything(&tree(blob));
    }
}

/// Every `.dtb` under `$EXO_DTB_CORPUS` reads whole, e.g. a Linux arm64 package's
/// `usr/lib/linux-image-*/` (unpack it as `scripts/fetch-pi-dtb` does). Not run by
/// default: the corpus is not in the repository.
#[test]
#[ignore = "needs EXO_DTB_CORPUS, a directory of device tree blobs"]
fn a_corpus_of_real_blobs_reads_whole() {
    fn blobs(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                blobs(&path, found);
            } else if path.extension().is_some_and(|e| e == "dtb") {
                found.push(path);
            }
        }
    }
    let corpus = std::env::var("EXO_DTB_CORPUS").expect("set EXO_DTB_CORPUS");
    let mut found = Vec::new();
    blobs(std::path::Path::new(&corpus), &mut found);
    assert!(!found.is_empty(), "no .dtb under {corpus}");
    let refused: Vec<_> = found
        .iter()
        .filter_map(|path| {
            let bytes = std::fs::read(path).unwrap();
            match DeviceTree::new(&bytes) {
                Ok(tree) => {
                    read_everything(&tree);
                    None
                }
                Err(e) => Some(format!("{}: {e}", path.display())),
            }
        })
        .collect();
    eprintln!("{} blobs, {} refused", found.len(), refused.len());
    assert!(refused.is_empty(), "{refused:#?}");
}
