//! Seed inputs for every target: small valid examples the fuzzers mutate. The short run
//! replays and mutates them; `cargo run --bin exo-fuzz-seeds` writes them into
//! `fuzz/corpus/<target>/` for libFuzzer.

use exo_abi::Rights;
use exo_abi::package::build::{PartitionSpec, SegmentSpec, encode};
use exo_abi::package::{DEFAULT_RAM_BASE, DeviceRegion};
use exo_abi::{Ipa, Name, PAGE_SIZE, PhysAddr};

/// The seeds of target `name`.
pub fn of(name: &str) -> Vec<Vec<u8>> {
    match name {
        "package" => packages(),
        "dtb" => vec![
            include_bytes!("../../../kernel/tests/fixtures/qemu-virt-gicv3.dtb").to_vec(),
            include_bytes!("../../../kernel/tests/fixtures/qemu-virt-gicv2.dtb").to_vec(),
            include_bytes!("../../../kernel/tests/fixtures/qemu-raspi4b.dtb").to_vec(),
        ],
        "elf" => elves(),
        "config" => [
            include_str!("../../../guests/configs/default.toml"),
            include_str!("../../../guests/configs/revocation-demo.toml"),
            include_str!("../../../guests/configs/bench-interrupts.toml"),
            include_str!("../../../guests/configs/bench-ipc.toml"),
        ]
        .iter()
        .map(|text| text.as_bytes().to_vec())
        .collect(),
        "dispatcher" => dispatcher(),
        _ => Vec::new(),
    }
}

fn partition(name: &str, pages: u64) -> PartitionSpec {
    PartitionSpec {
        name: Name::new(name).expect("short name"),
        memory_bytes: pages * PAGE_SIZE,
        entry: DEFAULT_RAM_BASE,
        ram_base: DEFAULT_RAM_BASE,
        segments: vec![
            SegmentSpec {
                ipa: DEFAULT_RAM_BASE,
                data: vec![0x1f, 0x20, 0x03, 0xd5, 0x00, 0x00, 0x00, 0x14],
                mem_size: PAGE_SIZE,
                rights: Rights::READ | Rights::EXECUTE,
            },
            SegmentSpec {
                ipa: DEFAULT_RAM_BASE.add(PAGE_SIZE),
                data: vec![1, 2, 3, 4],
                mem_size: 2 * PAGE_SIZE,
                rights: Rights::READ | Rights::WRITE,
            },
        ],
        guaranteed_bytes: 2 * pages * PAGE_SIZE,
        borrow_bytes: 8 * PAGE_SIZE,
        revocation_deadline_us: 1000,
        max_aborts: 1,
        talks_to: 0b11,
        flags: exo_abi::package::PartitionFlags::empty(),
        interrupts: vec![],
        devices: vec![],
        core: 0,
        boot_argument: 0,
    }
}

fn packages() -> Vec<Vec<u8>> {
    let mut dev = partition("dev", 8);
    dev.interrupts = vec![33, 40];
    dev.devices = vec![DeviceRegion {
        phys: PhysAddr::new(0x0900_0000),
        ipa: Ipa::new(0x0900_0000),
        size: PAGE_SIZE,
    }];
    vec![
        encode(&[partition("hello", 4)], &[]),
        encode(&[partition("a", 8), dev, partition("b", 16)], &[0, 1, 0, 2]),
    ]
}

/// A minimal little-endian AArch64 ELF64 executable: one or two load segments, a symbol
/// table with `symbols`, section headers.
fn synthetic_elf(
    entry: u64,
    segments: &[(u64, &[u8], u64, u32)],
    symbols: &[(&str, u64)],
) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, value: u64, size: usize) {
        out.extend_from_slice(&value.to_le_bytes()[..size]);
    }
    let phoff = 64u64;
    let data_at = phoff + 56 * segments.len() as u64;
    let mut payload = Vec::new();
    let mut offsets = Vec::new();
    for (_, bytes, _, _) in segments {
        offsets.push(data_at + payload.len() as u64);
        payload.extend_from_slice(bytes);
    }
    while payload.len() % 8 != 0 {
        payload.push(0);
    }
    let strtab_at = data_at + payload.len() as u64;
    let mut strtab = vec![0u8];
    let mut symtab = vec![0u8; 24];
    for (name, value) in symbols {
        put(&mut symtab, strtab.len() as u64, 4);
        symtab.extend_from_slice(&[0x10, 0]);
        put(&mut symtab, 0xFFF1, 2);
        put(&mut symtab, *value, 8);
        put(&mut symtab, 0, 8);
        strtab.extend_from_slice(name.as_bytes());
        strtab.push(0);
    }
    payload.extend_from_slice(&strtab);
    while payload.len() % 8 != 0 {
        payload.push(0);
    }
    let symtab_at = data_at + payload.len() as u64;
    payload.extend_from_slice(&symtab);
    let shstrtab = b"\0.strtab\0.symtab\0.shstrtab\0";
    let shstrtab_at = data_at + payload.len() as u64;
    payload.extend_from_slice(shstrtab);
    while payload.len() % 8 != 0 {
        payload.push(0);
    }
    let shoff = data_at + payload.len() as u64;

    let mut out = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    put(&mut out, 2, 2); // ET_EXEC
    put(&mut out, 0xB7, 2); // EM_AARCH64
    put(&mut out, 1, 4);
    put(&mut out, entry, 8);
    put(&mut out, phoff, 8);
    put(&mut out, shoff, 8);
    put(&mut out, 0, 4);
    put(&mut out, 64, 2);
    put(&mut out, 56, 2);
    put(&mut out, segments.len() as u64, 2);
    put(&mut out, 64, 2);
    put(&mut out, 4, 2); // null, .strtab, .symtab, .shstrtab
    put(&mut out, 3, 2);
    for ((address, bytes, mem_size, flags), offset) in segments.iter().zip(&offsets) {
        put(&mut out, 1, 4); // PT_LOAD
        put(&mut out, u64::from(*flags), 4);
        put(&mut out, *offset, 8);
        put(&mut out, *address, 8);
        put(&mut out, *address, 8);
        put(&mut out, bytes.len() as u64, 8);
        put(&mut out, *mem_size, 8);
        put(&mut out, 0x1000, 8);
    }
    out.extend_from_slice(&payload);
    let section =
        |out: &mut Vec<u8>, name: u64, kind: u64, at: u64, size: u64, link: u64, entsize: u64| {
            put(out, name, 4);
            put(out, kind, 4);
            put(out, 0, 8);
            put(out, 0, 8);
            put(out, at, 8);
            put(out, size, 8);
            put(out, link, 4);
            put(out, 1, 4);
            put(out, 8, 8);
            put(out, entsize, 8);
        };
    out.extend_from_slice(&[0; 64]);
    section(&mut out, 1, 3, strtab_at, strtab.len() as u64, 0, 0);
    section(&mut out, 9, 2, symtab_at, symtab.len() as u64, 1, 24);
    section(&mut out, 17, 3, shstrtab_at, shstrtab.len() as u64, 0, 0);
    out
}

fn elves() -> Vec<Vec<u8>> {
    let code = [0x1f, 0x20, 0x03, 0xd5, 0x00, 0x00, 0x00, 0x14];
    // A kernel-like image: an arm64 Image header ("ARM\x64" at 56) in its first segment.
    let mut header = vec![0u8; 64];
    header[56..60].copy_from_slice(b"ARM\x64");
    vec![
        synthetic_elf(
            0x4000_0000,
            &[
                (0x4000_0000, &code, 0x1000, 5),
                (0x4000_1000, &[1, 2, 3], 0x3000, 6),
            ],
            &[("main", 0x4000_0000)],
        ),
        synthetic_elf(
            0x4008_0000,
            &[(0x4008_0000, &header, 0x2000, 7)],
            &[("__image_start", 0x4008_0000), ("__image_end", 0x4008_2000)],
        ),
    ]
}

/// Event streams for the dispatcher: a system header, then events (see `dispatcher`).
fn dispatcher() -> Vec<Vec<u8>> {
    // Three partitions (count byte 1), each: guarantee, borrow, SPIs, deadline (2), aborts,
    // talks_to; then no schedule.
    let header: Vec<u8> = [
        vec![1],
        vec![48, 32, 3, 0xe8, 0x03, 1, 0b111],
        vec![200, 0, 1, 0xf4, 0x01, 0, 0b111],
        vec![100, 100, 0, 0x88, 0x13, 2, 0b111],
        vec![0],
    ]
    .concat();
    // Pseudo-random event streams after it, and one that allocates, binds, grants, calls.
    let mut seeds = Vec::new();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for length in [256, 1024, 4096] {
        let mut bytes = header.clone();
        for _ in 0..length {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes.push(state as u8);
        }
        seeds.push(bytes);
    }
    // Events, encoded as `dispatcher` decodes them (hypercall: 0, function index, shape byte,
    // then per argument a "how" byte and its kind's bytes). Partition p allocates 8 frames,
    // grants the first read-only to its neighbour q, which binds it read-only (allowed) and
    // read-write (refused), then calls p, which waits; an SPI; time passes.
    let mut scripted = header;
    for p in 0..3u8 {
        let q = (p + 1) % 3;
        scripted.extend_from_slice(&[8, p]); // p runs
        scripted.extend_from_slice(&[0, 7, 0, 0, 1, 7, 0, 0, 0]); // FRAME_ALLOC(8, buffer)
        scripted.extend_from_slice(&[0, 12, 0, 0, 0, 1, 0, 0, q, 0, 1]); // GRANT(f0, q, READ)
        scripted.extend_from_slice(&[0, 10, 0, 0, 0, 1, 1, 0, 0, 9, 0, 0]); // BIND(f1, heap 9, rw)
        scripted.extend_from_slice(&[8, q]); // q runs
        scripted.extend_from_slice(&[0, 10, 0, 0, 0, 0, 0, 0, 0, 5, 0, 1]); // BIND(f0, heap 5, r)
        scripted.extend_from_slice(&[0, 10, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0]); // BIND(f0, heap 6, rw)
        scripted.extend_from_slice(&[0, 22, 0, 0, p]); // CALL(p)
        scripted.extend_from_slice(&[8, p, 0, 23, 0]); // p: WAIT
        scripted.extend_from_slice(&[10, 2, p, 9, 0x10, 0x27, 0, 0]); // an SPI; time passes
    }
    scripted.extend_from_slice(&[0, 7, 0, 0, 2, 0xff, 0x01, 0, 0, 0]); // FRAME_ALLOC(~500)
    scripted.extend_from_slice(&[9, 0x40, 0x42, 0x0f, 0, 7, 0x10, 0x27]); // time, a slice
    seeds.push(scripted);
    seeds
}
