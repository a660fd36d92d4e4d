//! Virtual timer interrupts: the kernel injects a partition's EL1 virtual timer interrupt
//! through the list registers, with the HW bit, while another partition spins; the library
//! OS takes it through the GICv3 system registers or the GICv2 `GICV` frame.

use exo_system_tests::{boot_on, test_config};

/// Boots `vtimer.toml` on `board` and checks the ticker got its 20 interrupts while it saw
/// the spinner make progress.
fn virtual_timer_interrupts_reach_a_spinning_partition(board: &str) {
    let booted = boot_on(&test_config("vtimer.toml"), board);
    booted.assert_success();
    booted.assert_ok("ticker");
    booted.assert_ok("spinner");
    booted.assert_partition_printed("ticker", "20 timer interrupts in");
    booted.assert_partition_printed("ticker", "while 1 other partition(s) spun");
    // Watched, not assumed: the spinner's loop count (shared through a grant) moved between
    // the ticker's interrupts, in its time slices between the ticker's.
    let periods = booted.outcome.partition_lines("ticker").find_map(|l| {
        l.strip_prefix("the spinner's count advanced in ")?
            .split(' ')
            .next()?
            .parse::<u32>()
            .ok()
    });
    booted.check(
        periods.is_some_and(|n| n >= 3),
        &format!("the spinner's count advanced in {periods:?} of the 20 timer periods"),
    );
}

#[test]
fn gicv3_virtual_timer_interrupts_reach_a_spinning_partition() {
    virtual_timer_interrupts_reach_a_spinning_partition("qemu-virt");
}

#[test]
fn gicv2_virtual_timer_interrupts_reach_a_spinning_partition() {
    virtual_timer_interrupts_reach_a_spinning_partition("qemu-virt-gicv2");
}
