//! Register state never leaks from one partition to the next, on either GIC version: the
//! world switch saves and restores general, FP/SIMD and EL0/EL1 thread registers.

use exo_system_tests::{boot_on, test_config};

fn no_register_leaks(board: &str) {
    let booted = boot_on(&test_config("registers.toml"), board);
    booted.assert_success();
    booted.assert_partition_printed("checker", "no register of another partition leaked");
    booted.assert_partition_printed("leaker", "done");
}

#[test]
fn no_register_leaks_between_partitions_on_gicv3() {
    no_register_leaks("qemu-virt");
}

#[test]
fn no_register_leaks_between_partitions_on_gicv2() {
    no_register_leaks("qemu-virt-gicv2");
}
