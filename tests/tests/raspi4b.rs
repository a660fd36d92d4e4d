//! The Raspberry Pi 4 (BCM2711, GIC-400) under QEMU `raspi4b`: the kernel boots at EL2 from
//! the Pi's boot protocol, finds its console, RAM and GIC-400 through the device tree's
//! `/soc` ranges, runs the same partitions as on `virt` and powers off through the
//! power-management watchdog. It boots the Pi's own device tree as well as exo's.

use exo_system_tests::{Boot, Booted, boot_on, test_config, workspace_root};

const BOARD: &str = "raspi4b";

fn boot_pi(config: &str) -> Booted {
    let booted = boot_on(&test_config(config), BOARD);
    booted.assert_success();
    booted
}

#[test]
fn boots_the_default_system_and_powers_off() {
    let booted = boot_on(&workspace_root().join("guests/configs/default.toml"), BOARD);
    booted.assert_success();
    booted.assert_ok("hello");
    booted.assert_ok("counter");
    booted.assert_line_with(&["exo", "at EL2 on Raspberry Pi 4 Model B"]);
    booted.assert_line_with(&["V2 interrupt controller", "time slices"]);
    booted.check(booted.outcome.powered_off, "no power-off line");
}

/// The Raspberry Pi 4's own device tree (Linux's, from Debian), with the memory node the
/// firmware writes on a 2 GiB board (`kernel/tests/fixtures/README.md`). QEMU's edits of it
/// leave `FDT_NOP` tokens, and its `stdout-path` names the mini UART: the console moves
/// there (QEMU's serial 1, multiplexed onto the same output as serial 0 by the board's
/// QEMU arguments).
#[test]
fn boots_the_default_system_with_the_pis_own_device_tree() {
    let booted = Boot::new(&workspace_root().join("guests/configs/default.toml"))
        .board(BOARD)
        .dtb(workspace_root().join("kernel/tests/fixtures/rpi4b-2gib.dtb"))
        .run();
    booted.check(
        !matches!(booted.outcome.end, exo_system_tests::RunEnd::TimedOut(_)),
        "the kernel hung on the Pi's own device tree: QEMU was killed at the deadline",
    );
    booted.assert_success();
    booted.assert_ok("hello");
    booted.assert_ok("counter");
    // The model of Linux's tree, not of exo's QEMU tree ("... (QEMU raspi4b, exo)").
    booted.check(
        booted
            .outcome
            .lines
            .iter()
            .any(|line| line.ends_with("exo 0.1.0 at EL2 on Raspberry Pi 4 Model B")),
        "no boot line naming the Pi's own model",
    );
    booted.assert_line_with(&[
        "console: mini UART at 0xfe215040 (the device tree's stdout-path)",
        "from a 500000000 Hz clock (assumed: the device tree gives none)",
    ]);
    booted.assert_line_with(&["V2 interrupt controller", "time slices"]);
    // The smoke-test checklist's lines (docs/raspberry-pi.md): QEMU's GIC model reads no
    // GIC-400 product ID, so only the frame and the list registers are checked here.
    booted.assert_line_with(&[
        "GIC distributor at 0xff841000: GICD_IIDR",
        "4 list registers",
    ]);
    booted.assert_line_with(&["power-off: PM watchdog at 0xfe100000, a reset flagged as a halt"]);
}

/// The kernel manages both banks of the 2 GiB board, with the VideoCore's 64 MiB between
/// them a hole: a partition loaded after 1000 MiB of another gets frames of the second bank,
/// and the system runs to its end.
#[test]
fn both_ram_banks_of_a_2gib_pi_are_used() {
    let booted = boot_pi("ram-raspi4b-banks.toml");
    booted.assert_ok("ballast");
    booted.assert_ok("hello");
    booted.assert_line_with(&["RAM bank 0: 0x0..0x3c000000 (960 MiB)"]);
    booted.assert_line_with(&["RAM bank 1: 0x40000000..0x80000000 (1024 MiB)"]);
    booted.assert_line_with(&["RAM 0x0..0x80000000 (1984 MiB in 2 banks)"]);
    let frames = booted.normal_frames_of("hello");
    booted.check(
        !frames.is_empty()
            && frames
                .iter()
                .all(|pa| (0x4000_0000..0x8000_0000).contains(pa)),
        &format!("hello's frames are not all in the second bank: {frames:#x?}"),
    );
}

#[test]
fn a_stage2_fault_stops_only_the_faulter() {
    let booted = boot_on(&test_config("fault.toml"), BOARD);
    booted.assert_line_with(&["stage-2 fault", "faulter"]);
    booted.assert_partition_printed("victim", "data intact");
}

#[test]
fn a_flood_of_spis_through_the_gic400_loses_none() {
    let booted = boot_pi("flood.toml");
    booted.assert_partition_printed("flooder", "V2 CPU interface");
    booted.assert_partition_printed("flooder", "none lost, none duplicated");
}

#[test]
fn an_spi_reaches_its_owner_only() {
    let booted = boot_pi("irq-routing.toml");
    booted.assert_partition_printed("irqowner", "SPI 50 raised 41 times, received 41 times");
    booted.assert_partition_printed("intruder", "own SPI 51 received 30 times; SPI 50 never");
}

#[test]
fn virtual_timer_interrupts_reach_a_spinning_partition() {
    let booted = boot_pi("vtimer.toml");
    booted.assert_partition_printed("ticker", "20 timer interrupts in");
}

#[test]
fn ping_pong_and_register_isolation() {
    let booted = boot_pi("pct.toml");
    booted.assert_partition_printed("ping", "10000 round trips, every reply checked");
    let booted = boot_pi("registers.toml");
    booted.assert_ok("checker");
}
