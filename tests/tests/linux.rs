//! An unmodified Linux partition beside library-OS partitions (docs/linux.md): Debian's
//! stock arm64 kernel (fetched pinned and checked by `exo fetch-linux`, never installed)
//! boots to its initramfs's `/init` on QEMU `virt` with either GIC while `hello` runs; and
//! a hostile Linux changes nothing of its neighbour's interrupt or memory.

use std::path::PathBuf;
use std::sync::Once;

use exo_system_tests::{Boot, Booted, Workspace, test_config, workspace_root};

/// Fetches Debian's kernel and busybox (cached in build/cache/linux) and builds the
/// initramfs, once per test run.
fn fetch() {
    static FETCH: Once = Once::new();
    FETCH.call_once(|| {
        let workspace = Workspace::locate().expect("workspace");
        if let Err(e) = exo_tool::linux::fetch::fetch_stock(&workspace) {
            panic!("exo fetch-linux failed (Debian's arm64 packages unreachable?): {e:#}");
        }
    });
}

fn linux_config() -> PathBuf {
    workspace_root().join("guests/configs/linux.toml")
}

/// Boots `guests/configs/linux.toml` on `board` and checks both partitions and what Linux
/// printed on its UART; `gic` is how /proc/interrupts names the controller.
fn boots_to_init(board: &str, gic: &str) {
    fetch();
    let booted = Boot::new(&linux_config()).board(board).run();
    booted.assert_success();
    booted.assert_ok("linux");
    booted.assert_ok("hello");
    booted.assert_line_with(&["partition linux finished: PSCI SYSTEM_OFF"]);
    let uart = booted.serial_output(1);
    for wanted in [
        "Machine model: exo Linux partition linux",
        "psci: Using standard PSCI v0.2 function IDs",
        "exo-linux: init started",
        "CPU part\t: 0xd08",
        "exo-linux: init done, powering off",
        "reboot: Power down",
    ] {
        booted.check(
            uart.contains(wanted),
            &format!("Linux did not print `{wanted}`:\n{uart}"),
        );
    }
    // Its interrupts: the virtual timer (PPI 27) and its UART's SPI 40, and nothing else.
    let interrupts: Vec<&str> = uart
        .lines()
        .filter(|line| line.contains(gic) && line.contains("Level"))
        .collect();
    booted.check(
        interrupts.len() == 2
            && interrupts[0].contains(" 27 Level     arch_timer")
            && interrupts[1].contains(" 40 Level     uart-pl011"),
        &format!("/proc/interrupts shows {interrupts:?}:\n{uart}"),
    );
}

#[test]
fn debian_boots_to_init_beside_a_library_os_on_gicv3() {
    boots_to_init("qemu-virt", "GICv3");
}

#[test]
fn debian_boots_to_init_beside_a_library_os_on_gicv2() {
    boots_to_init("qemu-virt-gicv2", "GIC-0");
}

/// The index of the first console line containing `text`.
fn line_of(booted: &Booted, text: &str) -> usize {
    match booted.outcome.lines.iter().position(|l| l.contains(text)) {
        Some(index) => index,
        None => booted.fail(&format!("no console line contains `{text}`")),
    }
}

#[test]
fn a_hostile_linux_changes_nothing_of_its_neighbour() {
    fetch();
    let booted = Boot::new(&test_config("linux-hostile.toml")).run();
    booted.assert_failed_with("linux", "stage-2 fault: read at IPA 0x50000000");
    booted.assert_ok("neighbour");
    booted.assert_self_check_ok();
    // The neighbour's checks came after Linux had done its worst.
    let stopped = line_of(&booted, "partition linux stopped");
    let checked = line_of(&booted, "[neighbour] SPI 48 untouched and still ours");
    booted.check(
        stopped < checked,
        "the neighbour checked before Linux was stopped",
    );
    let uart = booted.serial_output(1);
    for wanted in [
        "exo-linux: hostile started",
        // Only its own console's enable bit, none of SPI 48's state, reads back.
        "exo-linux: GICD_ISENABLER1 reads 0x00000100",
        "exo-linux: GICD_ISPENDR1 reads 0x00000000",
        "exo-linux: GICD_IPRIORITYR12 reads 0x00000000",
        "exo-linux: reading 0x50000000, outside its memory",
    ] {
        booted.check(
            uart.contains(wanted),
            &format!("Linux did not print `{wanted}`:\n{uart}"),
        );
    }
    booted.check(!uart.contains("FAILED"), &format!("Linux went on:\n{uart}"));
}
