//! Interrupt secure bindings (ABI 1.3) on both interrupt controllers QEMU `virt` offers: a
//! flood of a partition's own SPIs, more at once than there are list registers, loses and
//! duplicates none; an SPI reaches its owner only, and another partition's every call on it
//! is refused.

use exo_system_tests::{Booted, boot_on, test_config};

/// Boots `flood.toml` on `board` and checks every round delivered each SPI exactly once.
fn floods_without_loss(board: &str) -> Booted {
    let booted = boot_on(&test_config("flood.toml"), board);
    booted.assert_success();
    booted.assert_ok("flooder");
    booted.assert_partition_printed("flooder", "3200 interrupts in 200 rounds of 16");
    booted.assert_partition_printed("flooder", "none lost, none duplicated");
    booted
}

/// Boots `irq-routing.toml` on `board` and checks the owner got its SPI, and the intruder
/// was refused and never took it.
fn routes_to_the_owner_only(board: &str) -> Booted {
    let booted = boot_on(&test_config("irq-routing.toml"), board);
    booted.assert_success();
    booted.assert_ok("irqowner");
    booted.assert_ok("intruder");
    booted.assert_partition_printed("irqowner", "SPI 50 raised 41 times, received 41 times");
    booted.assert_partition_printed("irqowner", "held back while disabled");
    booted.assert_partition_printed(
        "intruder",
        "enable, disable, priority, target and raise of SPI 50 and SPI 33 all NotOwner",
    );
    booted.assert_partition_printed("intruder", "INTIDs 1020 and 1023 InvalidParameter");
    booted.assert_partition_printed("intruder", "own SPI 51 received 30 times; SPI 50 never");
    booted
}

#[test]
fn gicv3_a_flood_of_spis_loses_and_duplicates_none() {
    let booted = floods_without_loss("qemu-virt");
    booted.assert_partition_printed("flooder", "V3 CPU interface");
}

#[test]
fn gicv2_a_flood_of_spis_loses_and_duplicates_none() {
    let booted = floods_without_loss("qemu-virt-gicv2");
    booted.assert_partition_printed("flooder", "V2 CPU interface");
}

#[test]
fn gicv3_an_spi_reaches_its_owner_only() {
    routes_to_the_owner_only("qemu-virt");
}

#[test]
fn gicv2_an_spi_reaches_its_owner_only() {
    routes_to_the_owner_only("qemu-virt-gicv2");
}
