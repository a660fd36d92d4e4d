//! Sleeping on the virtual timer gives the CPU away: `sleeper` blocks in `EXO_WAIT_EVENT`
//! while `spinner` computes, and the kernel wakes it when its timer's deadline passes, on
//! both interrupt controllers QEMU `virt` offers. In virtual time (`-icount`), so how long
//! a sleep lasts depends on the kernel, not on how loaded the test machine is.

use exo_system_tests::{Boot, Booted, test_config};

/// Boots `sleep.toml` on `board` and checks all 20 sleeps lasted 5 ms or a little more.
fn sleeps_while_another_partition_spins(board: &str) -> Booted {
    let booted = Boot::new(&test_config("sleep.toml"))
        .board(board)
        .virtual_time()
        .run();
    booted.assert_success();
    booted.assert_ok("sleeper");
    booted.assert_ok("spinner");
    booted.assert_partition_printed("sleeper", "20 sleeps of 5 ms: shortest");
    booted.assert_partition_printed("sleeper", "timer wake-ups");
    booted
}

#[test]
fn gicv3_a_partition_sleeps_on_its_virtual_timer() {
    let booted = sleeps_while_another_partition_spins("qemu-virt");
    booted.assert_partition_printed("sleeper", "V3 CPU interface");
}

#[test]
fn gicv2_a_partition_sleeps_on_its_virtual_timer() {
    let booted = sleeps_while_another_partition_spins("qemu-virt-gicv2");
    booted.assert_partition_printed("sleeper", "V2 CPU interface");
}
