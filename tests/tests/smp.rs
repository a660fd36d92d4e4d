//! Every core comes up at EL2: PSCI `CPU_ON` on QEMU `virt` (GICv3 with 4 and 8 cores, GICv2
//! with 4 and 8), the spin table on QEMU `raspi4b` (exo's device tree and the Pi's own).
//! Each secondary core reports in from its own stack with its own GIC interface; with every
//! partition on core 0 the others idle. With partitions pinned to four cores
//! (`guests/configs/multicore.toml`), the four run at the same time, each alone and
//! unsliced on its core.

use std::path::PathBuf;

use exo_system_tests::{Boot, Booted, test_config, workspace_root};

/// Boots `config` on `board` (and `dtb`, if given) and checks every core came up.
fn boot_cores(config: &str, board: &str, dtb: Option<&str>) -> Booted {
    let mut boot = Boot::new(&test_config(config)).board(board);
    if let Some(dtb) = dtb {
        boot = boot.dtb(workspace_root().join(dtb));
    }
    let booted = boot.run();
    booted.assert_success();
    booted.assert_ok("hello");
    booted.assert_ok("counter");
    booted.check(booted.outcome.powered_off, "no power-off line");
    booted.check(
        !booted
            .outcome
            .lines
            .iter()
            .any(|line| line.starts_with("exo: warning: cores:")),
        "a core was left out or did not come up",
    );
    booted
}

const FOUR_UP: &str = "exo: cores: 4 of 4 up (MPIDR 0x0 0x1 0x2 0x3), 1-3 idle";

#[test]
fn four_cores_on_virt_gicv3() {
    boot_cores("smp.toml", "qemu-virt", None).assert_line_with(&[FOUR_UP]);
}

#[test]
fn eight_cores_on_virt_gicv3() {
    let booted = boot_cores("smp-8.toml", "qemu-virt", None);
    booted.assert_line_with(&[
        "exo: cores: 8 of 8 up (MPIDR 0x0 0x1 0x2 0x3 0x4 0x5 0x6 0x7), 1-7 idle",
    ]);
    booted.assert_line_with(&["V3 interrupt controller"]);
}

#[test]
fn four_cores_on_virt_gicv2() {
    let booted = boot_cores("smp.toml", "qemu-virt-gicv2", None);
    booted.assert_line_with(&[FOUR_UP]);
    booted.assert_line_with(&["V2 interrupt controller"]);
}

#[test]
fn eight_cores_on_virt_gicv2() {
    let booted = boot_cores("smp-8.toml", "qemu-virt-gicv2", None);
    booted.assert_line_with(&["exo: cores: 8 of 8 up", "1-7 idle"]);
}

/// QEMU raspi4b always has four cores: 1-3 wait in its boot stub's spin table, which exo's
/// device tree describes as the Pi firmware's does.
#[test]
fn four_cores_on_raspi4b_through_the_spin_table() {
    let booted = boot_cores("smp.toml", "raspi4b", None);
    booted.assert_line_with(&[FOUR_UP]);
}

/// The Pi's own device tree names the same spin table (`cpu-release-addr` 0xd8..0xf0).
#[test]
fn four_cores_on_raspi4b_with_the_pis_own_device_tree() {
    let booted = boot_cores(
        "smp.toml",
        "raspi4b",
        Some("kernel/tests/fixtures/rpi4b-2gib.dtb"),
    );
    booted.assert_line_with(&[FOUR_UP]);
}

/// The default system keeps one core on `virt`: QEMU starts no other.
#[test]
fn one_core_by_default_on_virt() {
    let booted = boot_cores("../../guests/configs/default.toml", "qemu-virt", None);
    booted.assert_line_with(&["exo: cores: 1 of 1 up (MPIDR 0x0)"]);
}

/// A core the device tree gives no way to start is left out with a warning naming it; the
/// others come up and the system runs. exo's raspi4b tree with core 3's `enable-method`
/// changed to the 32-bit Pi's `brcm,bcm2836-smp`, which exo does not drive: QEMU's stub
/// keeps that core in its spin table.
#[test]
fn a_core_with_an_unknown_enable_method_is_left_out() {
    let source = workspace_root().join("platform/raspi4b/qemu-raspi4b.dts");
    let tree = std::fs::read_to_string(&source).unwrap();
    let core3 = tree.find("cpu@3 {").expect("exo's raspi4b tree has cpu@3");
    let method = "enable-method = \"spin-table\";";
    let at = core3
        + tree[core3..]
            .find(method)
            .expect("cpu@3 has an enable-method");
    let edited = format!(
        "{}enable-method = \"brcm,bcm2836-smp\";{}",
        &tree[..at],
        &tree[at + method.len()..]
    );
    let dts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("raspi4b-core3-unknown.dts");
    std::fs::write(&dts, edited).unwrap();
    let booted = Boot::new(&test_config("smp.toml"))
        .board("raspi4b")
        .dtb(&dts)
        .run();
    booted.assert_success();
    booted.assert_ok("hello");
    booted.assert_ok("counter");
    booted.assert_line_with(&[
        "exo: warning: cores: the core with MPIDR 0x3 has no enable-method exo knows",
    ]);
    booted.assert_line_with(&["exo: cores: 3 of 3 up (MPIDR 0x0 0x1 0x2), 1-2 idle"]);
}

/// `guests/configs/multicore.toml` on `board`: four `tally` partitions, one alone on each
/// core, count in a frame `tally0` grants the others, each until it has seen the other three
/// counters advance. None yields and no tick interrupts an unsliced core, so each finishing
/// shows the other three ran on their own cores at the same time.
fn four_partitions_count_together(board: &str) {
    let config = workspace_root().join("guests/configs/multicore.toml");
    let booted = Boot::new(&config).board(board).run();
    booted.assert_success();
    booted.check(booted.outcome.powered_off, "no power-off line");
    booted.assert_line_with(&[
        "exo: cores: 4 of 4 up (MPIDR 0x0 0x1 0x2 0x3), partitions on 0 1 2 3",
    ]);
    for core in 0..4 {
        let name = format!("tally{core}");
        booted.assert_line_with(&[&format!("exo: core {core}: {name}, unsliced")]);
        booted.assert_partition_printed(&name, "saw all 4 partitions advance at the same time");
        booted.assert_ok(&name);
    }
}

#[test]
fn four_partitions_on_four_cores_on_virt_gicv3() {
    four_partitions_count_together("qemu-virt");
}

#[test]
fn four_partitions_on_four_cores_on_virt_gicv2() {
    four_partitions_count_together("qemu-virt-gicv2");
}

/// The Pi's cores 1-3 start through the spin table.
#[test]
fn four_partitions_on_four_cores_on_raspi4b() {
    four_partitions_count_together("raspi4b");
}
