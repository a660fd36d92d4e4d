//! CPU time slices: the EL2 physical timer preempts a partition that never makes a
//! hypercall, on both interrupt controllers QEMU `virt` offers.

use exo_system_tests::{Booted, boot_on, test_config};

/// Boots `tests/configs/preempt.toml` on `board` and checks the counter finished while the
/// spinner was still spinning.
fn preempts_a_spinning_partition(board: &str) -> Booted {
    let booted = boot_on(&test_config("preempt.toml"), board);
    booted.assert_success();
    let position = |needle: &str| {
        booted
            .outcome
            .lines
            .iter()
            .position(|line| line.contains(needle))
            .unwrap_or_else(|| booted.fail(&format!("no line containing `{needle}`")))
    };
    let counted = position("[counter] done");
    let spun = position("[spinner] done spinning");
    booted.check(
        counted < spun,
        "counter finished only after the spinner: the spinner was not preempted",
    );
    booted
}

#[test]
fn gicv3_time_slices_preempt_a_spinning_partition() {
    let booted = preempts_a_spinning_partition("qemu-virt");
    booted.assert_line_with(&["V3 interrupt controller", "time slices"]);
}

#[test]
fn gicv2_time_slices_preempt_a_spinning_partition() {
    let booted = preempts_a_spinning_partition("qemu-virt-gicv2");
    booted.assert_line_with(&["V2 interrupt controller", "time slices"]);
}
