//! Virtual timer interrupts: the kernel injects a partition's EL1 virtual timer interrupt
//! through the GICv3 list registers, with the HW bit, while another partition spins.

use exo_system_tests::{boot_on, test_config};

#[test]
fn gicv3_virtual_timer_interrupts_reach_a_spinning_partition() {
    let booted = boot_on(&test_config("vtimer.toml"), "qemu-virt");
    booted.assert_success();
    booted.assert_ok("ticker");
    booted.assert_ok("spinner");
    booted.assert_partition_printed("ticker", "20 timer interrupts in");
    booted.assert_partition_printed("ticker", "while 1 other partition(s) spun");
}
