//! The boot image: the kernel flattened to a binary, then the boot package.
//!
//! ```text
//! 0                         kernel load segments at (p_paddr - __image_start), with the
//!                           arm64 Image header in the first 64 bytes; bss as zeros
//! __image_end - __image_start
//!                           boot package (exo_abi::package), one record per partition
//! ```
//!
//! The header's `image_size` (offset 16) is patched to the whole file's length, so a loader
//! that honours it (QEMU `-kernel`, the Pi firmware) keeps the package in reserved memory.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use exo_abi::package::build::{PartitionSpec, SegmentSpec, SystemSpec, encode_system};
use exo_abi::package::{DEFAULT_RAM_BASE, SYSTEM_FLAG_POISON_FREE_RAM};
use exo_abi::{Ipa, Name, PAGE_SIZE};

use crate::config::{Partition, Program, System};
use crate::cross::Artefacts;
use crate::elf::Elf;
use crate::size::Bytes;
use crate::workspace::Workspace;

/// Size of the arm64 Linux Image header at the start of the kernel.
pub const HEADER_SIZE: usize = 64;
/// Offset of the header's little-endian `image_size` field.
pub const IMAGE_SIZE_OFFSET: usize = 16;
/// Offset of the header's magic number.
pub const MAGIC_OFFSET: usize = 56;
/// The header's magic number, `"ARM\x64"`.
pub const MAGIC: [u8; 4] = *b"ARM\x64";

/// Flattens the kernel: every load segment's file bytes at `p_paddr - __image_start` in a
/// zeroed buffer of `__image_end - __image_start` bytes.
pub fn flatten_kernel(kernel: &Elf) -> anyhow::Result<Vec<u8>> {
    let start = kernel.symbol("__image_start")?;
    let end = kernel.symbol("__image_end")?;
    if end <= start || !(end - start).is_multiple_of(PAGE_SIZE) {
        bail!(
            "kernel: __image_end ({end:#x}) is not a page-aligned end after __image_start ({start:#x})"
        );
    }
    let mut flat = vec![0; usize::try_from(end - start).context("kernel too large")?];
    for segment in &kernel.segments {
        let at = segment
            .paddr
            .checked_sub(start)
            .and_then(|at| usize::try_from(at).ok())
            .filter(|at| {
                at.checked_add(segment.data.len())
                    .is_some_and(|e| e <= flat.len())
            })
            .with_context(|| {
                format!(
                    "kernel: load segment at {:#x} (+{:#x}) is outside __image_start..__image_end",
                    segment.paddr,
                    segment.data.len()
                )
            })?;
        flat[at..at + segment.data.len()].copy_from_slice(&segment.data);
    }
    if flat.len() < HEADER_SIZE || flat[MAGIC_OFFSET..MAGIC_OFFSET + 4] != MAGIC {
        bail!("kernel: no arm64 Image header (magic \"ARM\\x64\" at offset {MAGIC_OFFSET})");
    }
    Ok(flat)
}

/// Describes `partition` running `program` for the package, checking that every segment and
/// the entry point lie inside its RAM (`[DEFAULT_RAM_BASE, + quota)`).
pub fn partition_spec(
    system: &System,
    partition: &Partition,
    program: &Elf,
) -> anyhow::Result<PartitionSpec> {
    let name = Name::new(&partition.name).context("partition name")?;
    let base = DEFAULT_RAM_BASE.raw();
    let quota = partition.memory_bytes;
    let ram_end = base + quota;
    let program_name = partition.program.display_name();
    let mut segments = Vec::new();
    for segment in &program.segments {
        let end = segment
            .vaddr
            .checked_add(segment.mem_size)
            .context("segment wraps")?;
        if segment.vaddr < base {
            return Err(system
                .error_at(
                    partition.memory_line,
                    format!(
                        "program `{program_name}` has a segment at {:#x}, below the partitions' \
                         RAM base {base:#x}",
                        segment.vaddr
                    ),
                )
                .into());
        }
        if end > ram_end {
            return Err(system
                .error_at(
                    partition.memory_line,
                    format!(
                        "program `{program_name}` needs {} at {base:#x} but its quota is {}",
                        Bytes((end - base).next_multiple_of(1024)),
                        Bytes(quota)
                    ),
                )
                .into());
        }
        segments.push(SegmentSpec {
            ipa: Ipa::new(segment.vaddr),
            data: segment.data.clone(),
            mem_size: segment.mem_size,
            rights: segment.rights,
        });
    }
    if !(base..ram_end).contains(&program.entry) {
        return Err(system
            .error_at(
                partition.memory_line,
                format!(
                    "program `{program_name}` starts at {:#x}, outside its RAM {base:#x}..{ram_end:#x}",
                    program.entry
                ),
            )
            .into());
    }
    Ok(configured_record(
        partition,
        name,
        Ipa::new(program.entry),
        segments,
    ))
}

/// The package record of `partition` with what its configuration says (RAM size, terms,
/// rights, interrupts, devices, core) and what its program decides (`entry`, `segments`);
/// no boot argument. A library OS's record as it is; a Linux partition's adds its own.
pub(crate) fn configured_record(
    partition: &Partition,
    name: Name,
    entry: Ipa,
    segments: Vec<SegmentSpec>,
) -> PartitionSpec {
    PartitionSpec {
        name,
        memory_bytes: partition.memory_bytes,
        entry,
        ram_base: DEFAULT_RAM_BASE,
        segments,
        guaranteed_bytes: partition.guarantee_bytes,
        borrow_bytes: partition.borrow_bytes,
        revocation_deadline_us: partition.revocation_deadline_us,
        max_aborts: partition.max_aborts,
        talks_to: partition.talks_to,
        flags: partition.flags,
        interrupts: partition.interrupts.clone(),
        devices: partition.devices.iter().map(|d| d.region).collect(),
        core: partition.core,
        boot_argument: 0,
    }
}

/// The whole image: the flattened kernel, then the package with the system settings
/// `system` (time-slice vector, flags, slice length, revocation share), with `image_size`
/// patched.
pub fn assemble(
    kernel: &Elf,
    partitions: &[PartitionSpec],
    system: &SystemSpec<'_>,
) -> anyhow::Result<Vec<u8>> {
    let mut image = flatten_kernel(kernel)?;
    image.extend_from_slice(&encode_system(partitions, system));
    let size = image.len() as u64;
    image[IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8].copy_from_slice(&size.to_le_bytes());
    Ok(image)
}

/// Builds the image of `system` from a build's `artefacts` and writes it to
/// `build/<board>/<config stem>.img`. Returns its path.
pub fn write_image(
    workspace: &Workspace,
    system: &System,
    artefacts: &Artefacts,
) -> anyhow::Result<PathBuf> {
    let kernel = Elf::read(&artefacts.kernel)?;
    let mut specs = Vec::new();
    for partition in &system.partitions {
        let path = match &partition.program {
            Program::Guest(name) => artefacts.guest(name),
            Program::Elf(path) => path.clone(),
            Program::Linux(linux) => {
                specs.push(crate::linux::package::partition_spec(
                    system, partition, linux,
                )?);
                continue;
            }
        };
        let program = Elf::read(&path)
            .with_context(|| format!("program of partition `{}`", partition.name))?;
        specs.push(partition_spec(system, partition, &program)?);
    }
    let flags = if system.poison_free_ram {
        SYSTEM_FLAG_POISON_FREE_RAM
    } else {
        0
    };
    let schedules: Vec<&[u8]> = system.schedules.iter().map(Vec::as_slice).collect();
    let settings = SystemSpec {
        schedules: &schedules,
        flags,
        slice_us: system.slice_us,
        share: system.revocation_share,
    };
    let image = assemble(&kernel, &specs, &settings)?;
    let out = workspace
        .build_dir(&system.board.name)
        .join(format!("{}.img", system.stem()));
    write(&out, &image)?;
    Ok(out)
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::workspace;
    use crate::elf::synthetic;
    use exo_abi::PhysAddr;
    use exo_abi::Rights;
    use exo_abi::package::{DeviceRegion, Package, PartitionFlags};

    const START: u64 = 0x4008_0000;

    fn kernel() -> Elf {
        let mut text = vec![0xAA; 0x100];
        text[MAGIC_OFFSET..MAGIC_OFFSET + 4].copy_from_slice(&MAGIC);
        let elf = synthetic::elf(
            START,
            &[
                (START, &text, 0x100, 5),
                (START + 0x1000, &[7; 16], 0x1800, 6),
            ],
            &[("__image_start", START), ("__image_end", START + 0x3000)],
        );
        Elf::parse(&elf).unwrap()
    }

    fn system(config: &str) -> (crate::config::testing::TempDir, System) {
        let (dir, workspace) = workspace();
        let path = dir.path().join("c.toml");
        let system = crate::config::parse(&workspace, &path, config, None).unwrap();
        (dir, system)
    }

    const CONFIG: &str =
        "[[partition]]\nname = \"hello\"\nprogram = \"hello\"\nmemory = \"8KiB\"\n";

    fn guest(end_of_bss: u64) -> Elf {
        let base = DEFAULT_RAM_BASE.raw();
        let elf = synthetic::elf(
            base,
            &[
                (base, &[1, 2, 3], 0x1000, 5),
                (base + 0x1000, &[4], end_of_bss - 0x1000, 6),
            ],
            &[],
        );
        Elf::parse(&elf).unwrap()
    }

    #[test]
    fn flattens_the_kernel_with_bss_as_zeros() {
        let flat = flatten_kernel(&kernel()).unwrap();
        assert_eq!(flat.len(), 0x3000);
        assert_eq!(flat[0], 0xAA);
        assert_eq!(&flat[0x100..0x1000], &[0; 0xF00][..]);
        assert_eq!(&flat[0x1000..0x1010], &[7; 16]);
        assert!(flat[0x1010..].iter().all(|&b| b == 0));
    }

    #[test]
    fn refuses_a_kernel_without_header_or_symbols() {
        let no_magic = synthetic::elf(
            START,
            &[(START, &[0; 64], 64, 5)],
            &[("__image_start", START), ("__image_end", START + 0x1000)],
        );
        let e = flatten_kernel(&Elf::parse(&no_magic).unwrap()).unwrap_err();
        assert!(e.to_string().contains("arm64 Image header"), "{e}");
        let no_symbols = synthetic::elf(START, &[(START, &[0; 64], 64, 5)], &[]);
        let e = flatten_kernel(&Elf::parse(&no_symbols).unwrap()).unwrap_err();
        assert!(e.to_string().contains("__image_start"), "{e}");
    }

    #[test]
    fn appends_the_package_and_patches_the_image_size() {
        let (_dir, system) = system(CONFIG);
        let spec = partition_spec(&system, &system.partitions[0], &guest(0x2000)).unwrap();
        let image = assemble(&kernel(), &[spec], &SystemSpec::default()).unwrap();
        let size = u64::from_le_bytes(image[16..24].try_into().unwrap());
        assert_eq!(size, image.len() as u64);
        let package = Package::parse(&image[0x3000..]).unwrap();
        let partition = package.partitions().next().unwrap();
        assert_eq!(partition.name.as_str(), "hello");
        assert_eq!(partition.memory_bytes, 0x2000);
        assert_eq!(partition.entry, DEFAULT_RAM_BASE);
        assert_eq!(partition.guaranteed_bytes, 0x2000);
        assert_eq!(partition.borrow_bytes, 0);
        assert_eq!(partition.revocation_deadline_us, 10_000);
        assert_eq!(partition.max_aborts, 3);
        let segments: Vec<_> = partition.segments().collect();
        assert_eq!(segments.len(), 2);
        assert_eq!(segments[0].data, &[1, 2, 3]);
        assert_eq!(segments[0].rights, Rights::READ | Rights::EXECUTE);
        assert_eq!(segments[1].ipa, DEFAULT_RAM_BASE.add(0x1000));
        assert_eq!(segments[1].mem_size, 0x1000);
    }

    #[test]
    fn the_package_carries_guarantee_borrow_deadline_and_aborts() {
        let (_dir, system) = system(&format!(
            "{CONFIG}guarantee = \"1MiB\"\nborrow = \"3MiB\"\n\
             revocation_deadline = \"250us\"\nmax_aborts = 0\n"
        ));
        let spec = partition_spec(&system, &system.partitions[0], &guest(0x2000)).unwrap();
        let image = assemble(&kernel(), &[spec], &SystemSpec::default()).unwrap();
        let package = Package::parse(&image[0x3000..]).unwrap();
        let partition = package.partitions().next().unwrap();
        assert_eq!(partition.memory_bytes, 0x2000);
        assert_eq!(partition.guaranteed_bytes, 1 << 20);
        assert_eq!(partition.borrow_bytes, 3 << 20);
        assert_eq!(partition.revocation_deadline_us, 250);
        assert_eq!(partition.max_aborts, 0);
    }

    /// The image of `system`, every partition running a small guest.
    fn image_of(system: &System) -> Vec<u8> {
        let specs: Vec<_> = system
            .partitions
            .iter()
            .map(|p| partition_spec(system, p, &guest(0x2000)).unwrap())
            .collect();
        let schedules: Vec<&[u8]> = system.schedules.iter().map(Vec::as_slice).collect();
        let settings = SystemSpec {
            schedules: &schedules,
            ..SystemSpec::default()
        };
        assemble(&kernel(), &specs, &settings).unwrap()
    }

    #[test]
    fn the_package_carries_talks_to() {
        let (_dir, system) = system(&format!(
            "{CONFIG}talks_to = [\"pong\"]\n\n[[partition]]\nname = \"pong\"\n\
             program = \"hello\"\nmemory = 8192\n"
        ));
        let image = image_of(&system);
        let package = Package::parse(&image[0x3000..]).unwrap();
        let masks: Vec<u64> = package.partitions().map(|p| p.talks_to).collect();
        assert_eq!(masks, [0b10, 0]);
    }

    #[test]
    fn the_package_carries_capabilities() {
        let (_dir, system) = system(&format!(
            "{CONFIG}capabilities = [\"self-check\"]\n\n[[partition]]\nname = \"pong\"\n\
             program = \"hello\"\nmemory = 8192\n"
        ));
        let image = image_of(&system);
        let package = Package::parse(&image[0x3000..]).unwrap();
        let flags: Vec<PartitionFlags> = package.partitions().map(|p| p.flags).collect();
        assert_eq!(flags, [PartitionFlags::SELF_CHECK, PartitionFlags::empty()]);
    }

    #[test]
    fn the_package_carries_cores_and_each_cores_schedule() {
        let (_dir, system) = system(&format!(
            "[system]\ncores = 3\n[system.schedule]\n2 = [\"c\", \"pong\", \"c\"]\n\n\
             {CONFIG}\n[[partition]]\nname = \"pong\"\nprogram = \"hello\"\n\
             memory = 8192\ncores = [2]\n\n[[partition]]\nname = \"c\"\n\
             program = \"hello\"\nmemory = 8192\ncores = [2]\n"
        ));
        let image = image_of(&system);
        let package = Package::parse(&image[0x3000..]).unwrap();
        let cores: Vec<u32> = package.partitions().map(|p| p.core).collect();
        assert_eq!(cores, [0, 2, 2]);
        assert_eq!(package.schedule(), [] as [u8; 0]);
        assert_eq!(package.schedule_of(2), [2, 1, 2]);
    }

    #[test]
    fn the_package_carries_interrupts_devices_and_the_schedule() {
        let (_dir, system) = system(&format!(
            "[system]\nschedule = [\"pong\", \"hello\", \"pong\"]\n\n{CONFIG}\
             devices = [\"uart1\", {{ base = 0x0A00_0000, size = \"8KiB\", ipa = 0x1000 }}]\n\
             interrupts = [48]\n\n[[partition]]\nname = \"pong\"\nprogram = \"hello\"\n\
             memory = 8192\n"
        ));
        let image = image_of(&system);
        let package = Package::parse(&image[0x3000..]).unwrap();
        assert_eq!(package.schedule(), [1, 0, 1]);
        let partitions: Vec<_> = package.partitions().collect();
        assert_eq!(partitions[0].interrupts().collect::<Vec<_>>(), [40, 48]);
        let devices: Vec<_> = partitions[0].devices().collect();
        assert_eq!(
            devices,
            [
                DeviceRegion {
                    phys: PhysAddr::new(0x0904_0000),
                    ipa: Ipa::new(0x0904_0000),
                    size: 0x1000,
                },
                DeviceRegion {
                    phys: PhysAddr::new(0x0A00_0000),
                    ipa: Ipa::new(0x1000),
                    size: 0x2000,
                },
            ]
        );
        assert_eq!(partitions[1].interrupts().count(), 0);
        assert_eq!(partitions[1].devices().count(), 0);
    }

    #[test]
    fn refuses_a_program_larger_than_its_quota() {
        let (_dir, system) = system(CONFIG);
        let e = partition_spec(&system, &system.partitions[0], &guest(0x3000)).unwrap_err();
        let e = e.downcast::<crate::ConfigError>().unwrap();
        assert_eq!(e.line, Some(4));
        assert_eq!(
            e.message,
            "program `hello` needs 12 KiB at 0x40000000 but its quota is 8 KiB"
        );
    }
}
