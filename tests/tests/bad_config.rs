//! Bad configurations are refused by `exo check` with an error naming the file, the line
//! and the problem, and nothing is built or booted.

use std::path::Path;

use exo_system_tests::{ConfigError, RunOptions, Workspace, test_config};

/// Checks `file` (in `tests/configs/`) and expects an error on `line` containing `phrase`.
fn refused(file: &str, line: usize, phrase: &str) {
    let path = test_config(file);
    let workspace = Workspace::locate().expect("workspace");
    let error = match exo_tool::check(&workspace, &path, None) {
        Ok(_) => panic!("{file} was accepted"),
        Err(e) => e,
    };
    assert_eq!(error.path, path, "{error}");
    assert_eq!(error.line, Some(line), "wrong line: {error}");
    assert!(error.message.contains(phrase), "`{phrase}` not in: {error}");
    assert_eq!(
        error.to_string(),
        format!("{}:{line}: {}", path.display(), error.message)
    );

    // The run path refuses it before building or starting anything: this QEMU does not
    // exist, so reaching it would give a different error.
    let options = RunOptions {
        qemu: Some(Path::new("/nonexistent/qemu-must-not-start").into()),
        ..RunOptions::default()
    };
    let error = exo_tool::run_system(&path, &options).expect_err("bad configuration ran");
    let config_error = error.downcast_ref::<ConfigError>();
    assert!(
        config_error.is_some_and(|e| e.line == Some(line)),
        "not refused as a configuration: {error:#}"
    );
}

#[test]
fn unknown_key() {
    refused("bad-unknown-key.toml", 9, "unknown field `cpus`");
}

#[test]
fn quota_larger_than_ram() {
    refused("bad-quota.toml", 13, "larger than the 1 GiB of RAM");
}

#[test]
fn missing_guest_program() {
    refused(
        "bad-missing-guest.toml",
        6,
        "no guest program `no-such-guest`",
    );
}

#[test]
fn duplicate_partition_name() {
    refused(
        "bad-duplicate.toml",
        14,
        "duplicate partition name `hello` (first used on line 9)",
    );
}

#[test]
fn interrupt_owned_twice() {
    refused(
        "bad-interrupt-owned-twice.toml",
        14,
        "INTID 40 of `snoop` is already owned by partition `driver` (line 8, with device \
         `uart1`)",
    );
}

#[test]
fn sgi_or_ppi_interrupt() {
    refused(
        "bad-interrupt-ppi.toml",
        10,
        "INTID 27 is a PPI (16-31: private to each core",
    );
}

#[test]
fn unknown_device() {
    refused(
        "bad-unknown-device.toml",
        9,
        "unknown device `uart2`: devices of board `qemu-virt` a partition may own are `uart1`",
    );
}

#[test]
fn dma_device_without_trust() {
    refused(
        "bad-dma-device.toml",
        11,
        "device `emmc2` of partition `storage` can master DMA (board `raspi4b` marks `emmc2` \
         at 0xfe340000..0xfe341000 `dma = true`): its own memory accesses bypass stage 2 and no \
         IOMMU confines them, so the partition could read and write all RAM, the kernel's \
         included; give the partition `trusted_dma = true` if you trust it that far",
    );
}

#[test]
fn region_over_a_dma_device_without_trust() {
    refused(
        "bad-dma-region.toml",
        12,
        "region 0xfe007000..0xfe008000, which overlaps device `dma`, of partition `mover` can \
         master DMA",
    );
}

#[test]
fn unknown_capability() {
    refused(
        "bad-capability.toml",
        9,
        "unknown capability `all-memory`; known: self-check",
    );
}

#[test]
fn schedule_naming_an_unknown_partition() {
    refused(
        "bad-schedule.toml",
        5,
        "`schedule` names `pong`, which is not a partition of this system: partitions are \
         `ping`, `bystander`",
    );
}

#[test]
fn partitions_larger_than_the_ram_the_kernel_manages() {
    refused(
        "bad-memory-raspi4b.toml",
        15,
        "partitions need 2000 MiB but board `raspi4b` gives the kernel 1972 MiB, of which \
         1956 MiB are for partitions",
    );
}

#[test]
fn a_pi_ram_size_the_board_does_not_come_in() {
    refused(
        "bad-memory-raspi4b-size.toml",
        4,
        "board `raspi4b` comes with 1 GiB, 2 GiB, 4 GiB, 8 GiB of RAM, not 3 GiB",
    );
}

#[test]
fn kernel_pages_and_tables_that_do_not_fit() {
    refused(
        "bad-memory-tables.toml",
        22,
        "partitions need 1021 MiB but board `qemu-virt` gives the kernel 1024 MiB, of which it \
         keeps about 8 MiB for itself (its image, the boot package and frame metadata): with \
         `borrower` the guarantees come to 1008 MiB",
    );
}

#[test]
fn more_cores_than_the_board_has() {
    refused(
        "bad-cores.toml",
        4,
        "16 cores: board `qemu-virt` has 1 to 8",
    );
}

#[test]
fn time_slice_out_of_range() {
    refused(
        "bad-slice.toml",
        3,
        "time slice of 20 us must be between 100 us and 1 s",
    );
}

#[test]
fn unknown_revocation_share() {
    refused(
        "bad-share.toml",
        3,
        "unknown revocation share `fair`; known: proportional, largest-first, partition-order",
    );
}

#[test]
fn a_partition_pinned_to_a_core_the_system_lacks() {
    refused(
        "bad-partition-core.toml",
        14,
        "partition `worker` is pinned to core 4, but the system has 4 cores (`[system] cores`)",
    );
}

#[test]
fn a_partition_on_several_cores() {
    refused(
        "bad-partition-vcpus.toml",
        9,
        "`cores` of `wide` names 2 cores: several vCPUs per partition are not supported yet",
    );
}

#[test]
fn a_schedule_for_a_core_the_system_lacks() {
    refused(
        "bad-schedule-core.toml",
        7,
        "`schedule` names core 4, but the system has 4 cores (`[system] cores`)",
    );
}

#[test]
fn a_schedule_naming_a_partition_pinned_to_another_core() {
    refused(
        "bad-schedule-pinned.toml",
        8,
        "`schedule` of core 1 names `hello`, which is pinned to core 0 (its `cores`), not core 1",
    );
}

#[test]
fn a_pinned_partition_without_a_slot_on_its_core() {
    refused(
        "bad-schedule-missing.toml",
        6,
        "partition `idle` has no slot in `schedule` of core 1: it would never run",
    );
}

#[test]
fn linux_kernel_not_an_image() {
    refused(
        "bad-linux-not-image.toml",
        7,
        "kernel `bad-linux-not-image.toml` is not an arm64 Linux Image: no magic \"ARM\\x64\" at \
         offset 0x38",
    );
}

#[test]
fn linux_partition_borrowing() {
    refused(
        "bad-linux-borrow.toml",
        9,
        "Linux partition `linux` cannot borrow memory: Linux does not know exo's revocation \
         protocol and cannot give memory back",
    );
}
