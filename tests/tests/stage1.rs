//! Stage 1 belongs to the library OS: the kernel no longer forces it off (`HCR_EL2.DC`), the
//! library OS turns its MMU on at boot, and a page mapped twice through its own tables is one
//! page through both addresses. On both interrupt controllers and the Raspberry Pi.

use exo_system_tests::{boot_on, test_config};

fn a_library_os_remaps_through_its_own_stage1(board: &str) {
    let booted = boot_on(&test_config("remap.toml"), board);
    booted.assert_success();
    booted.assert_ok("remap");
    booted.assert_partition_printed("remap", "VA 0x7fc0000000 aliases IPA");
    booted.assert_partition_printed("remap", "each sees the other's writes");
}

#[test]
fn gicv3_a_library_os_remaps_through_its_own_stage1() {
    a_library_os_remaps_through_its_own_stage1("qemu-virt");
}

#[test]
fn gicv2_a_library_os_remaps_through_its_own_stage1() {
    a_library_os_remaps_through_its_own_stage1("qemu-virt-gicv2");
}

#[test]
fn raspi4b_a_library_os_remaps_through_its_own_stage1() {
    a_library_os_remaps_through_its_own_stage1("raspi4b");
}
