//! Fuzz targets for everything exo parses from outside, as plain functions of a byte slice
//! that panic on a finding. The libFuzzer binaries in `fuzz/fuzz_targets/` call them for the
//! long runs; this crate's tests replay the seed corpus, the regression inputs and a few
//! thousand mutations of them for the short run in `scripts/test`.
//!
//! | target | what it reads | beyond "no panic" it checks |
//! | --- | --- | --- |
//! | [`package`] | the boot package (`Package::parse`), then the kernel loads it | accessors agree with the counts; `self_check` after loading |
//! | [`dtb`] | the device tree (`DeviceTree::new`, `BootInfo::from_fdt`) | RAM contains the kernel address |
//! | [`elf`] | ELF files (`exo_tool::elf::Elf::parse`, `image::flatten_kernel`) | segments lie in the file |
//! | [`config`] | system configurations (`exo_tool::config::parse`) | what the tool accepts, the kernel's package parser accepts |
//! | [`dispatcher`] | hypercalls and traps from several partitions | `self_check` after every event; the scheduler runs only runnable partitions |

pub mod dispatcher;
pub mod input;
pub mod machine;
pub mod seeds;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use exo_abi::package::build::{SystemSpec, encode_system};
use exo_abi::package::{DEFAULT_RAM_BASE, Package};
use exo_abi::{PAGE_SIZE, PhysAddr};
use exo_kernel::boot_info::BootInfo;
use exo_kernel::kernel::Kernel;
use exo_kernel::mem::frame_table::{FrameTable, Owner};
use exo_tool::Workspace;
use exo_tool::elf::{Elf, LoadSegment};

use machine::{FakeMachine, RAM_BASE};

/// A fuzz target: panics on a finding.
pub type Target = fn(&[u8]);

/// The targets by name, as the libFuzzer binaries and the corpus directories are named.
pub const TARGETS: &[(&str, Target)] = &[
    ("package", package),
    ("dtb", dtb),
    ("elf", elf),
    ("config", config),
    ("dispatcher", dispatcher),
];

/// The exo workspace root (the parent of `fuzz/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The boot package: parsed, read through every accessor, then loaded by the kernel on the
/// fake machine.
pub fn package(data: &[u8]) {
    let Ok(package) = Package::parse(data) else {
        return;
    };
    assert!(package.len() <= data.len());
    let mut partitions = 0;
    for partition in package.partitions() {
        partitions += 1;
        assert_eq!(
            partition.segments().count(),
            partition.segment_count(),
            "a validated segment failed to read"
        );
        for segment in partition.segments() {
            assert!(segment.data.len() as u64 <= segment.mem_size);
        }
        let _ = (partition.interrupts().count(), partition.devices().count());
        let _ = partition.ram_end();
    }
    assert_eq!(partitions, package.partition_count());
    for &slot in package.schedule() {
        assert!(usize::from(slot) < partitions);
    }
    // The kernel loads what the parser accepted: it may refuse (no memory), never panic.
    const FRAMES: usize = 512;
    let mut storage = vec![0u16; FRAMES];
    let mut bindings = vec![0u64; FRAMES];
    let mut frames = FrameTable::new(PhysAddr::new(RAM_BASE), &mut storage);
    frames
        .reserve(
            PhysAddr::new(RAM_BASE),
            PhysAddr::new(RAM_BASE + 4 * PAGE_SIZE),
            Owner::Kernel,
        )
        .expect("the kernel image fits");
    let mut kernel = Kernel::new(FakeMachine::new(FRAMES), frames, &mut bindings);
    // A failed load stops the boot (`start.rs`), so the state it leaves is not checked.
    if kernel.load(&package).is_ok() {
        if let Err(e) = kernel.self_check() {
            panic!("self_check after load: {e}");
        }
        kernel.schedule();
        kernel.before_resume();
        if let Err(e) = kernel.self_check() {
            panic!("self_check after the first schedule: {e}");
        }
    }
}

/// The device tree the firmware hands the kernel: the kernel's own reader
/// (`device_tree::DeviceTree::new`, which checks the whole blob once), then everything
/// `BootInfo::from_fdt` looks up in it.
pub fn dtb(data: &[u8]) {
    let Ok(tree) = exo_kernel::device_tree::DeviceTree::new(data) else {
        return;
    };
    let kernel = PhysAddr::new(0x4008_0000);
    if let Ok(info) = BootInfo::from_fdt(&tree, kernel) {
        assert!(info.ram_start <= kernel && kernel < info.ram_end);
    }
}

/// Largest kernel image `flatten_kernel` is asked to build (it allocates the whole image).
const MAX_FLAT_IMAGE: u64 = 16 << 20;

/// ELF files: guest programs and the kernel, as the image builder reads them.
pub fn elf(data: &[u8]) {
    let Ok(elf) = Elf::parse(data) else {
        return;
    };
    for segment in &elf.segments {
        assert!(segment.data.len() as u64 <= segment.mem_size);
        assert!(segment.data.len() <= data.len());
    }
    let _ = elf.symbol("__image_start");
    let size = elf
        .symbol("__image_end")
        .ok()
        .zip(elf.symbol("__image_start").ok())
        .map(|(end, start)| end.wrapping_sub(start));
    if size.is_some_and(|s| s <= MAX_FLAT_IMAGE) {
        let _ = exo_tool::image::flatten_kernel(&elf);
    }
}

/// The workspace the configuration target resolves boards and programs in.
fn workspace() -> &'static Workspace {
    static WORKSPACE: OnceLock<Workspace> = OnceLock::new();
    WORKSPACE.get_or_init(|| {
        Workspace::at(
            workspace_root()
                .canonicalize()
                .expect("the exo workspace exists"),
        )
    })
}

/// System configurations. What the tool accepts must make a package the kernel accepts.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let workspace = workspace();
    let path = workspace.root().join("guests/configs/fuzzed.toml");
    let Ok(system) = exo_tool::config::parse(workspace, &path, text, None) else {
        return;
    };
    let _ = (
        system.summary(),
        system.qemu_serials(),
        system.guest_programs(),
    );
    // Every partition runs a one-page program at the start of its RAM.
    let program = Elf {
        entry: DEFAULT_RAM_BASE.raw(),
        segments: vec![LoadSegment {
            vaddr: DEFAULT_RAM_BASE.raw(),
            paddr: DEFAULT_RAM_BASE.raw(),
            data: vec![0x1f, 0x20, 0x03, 0xd5],
            mem_size: PAGE_SIZE,
            rights: exo_abi::Rights::READ | exo_abi::Rights::EXECUTE,
        }],
        symbols: Default::default(),
        functions: Vec::new(),
    };
    let specs: Vec<_> = system
        .partitions
        .iter()
        .map(|p| exo_tool::image::partition_spec(&system, p, &program))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| {
            panic!("a checked configuration cannot describe its partitions: {e:#}")
        });
    let schedules: Vec<&[u8]> = system.schedules.iter().map(Vec::as_slice).collect();
    let settings = SystemSpec {
        schedules: &schedules,
        ..Default::default()
    };
    let bytes = encode_system(&specs, &settings);
    if let Err(e) = Package::parse(&bytes) {
        panic!("the tool accepted a configuration whose package the kernel refuses: {e}\n{text}");
    }
}

/// The hypercall dispatcher on the fake machine (see [`dispatcher`]).
pub fn dispatcher(data: &[u8]) {
    dispatcher::run(data);
}
