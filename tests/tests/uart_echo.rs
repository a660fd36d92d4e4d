//! A device driven by a partition: `echo` owns `uart1` (QEMU's serial port 1), takes its
//! receive interrupts and echoes every byte back out of it, on both interrupt controllers
//! QEMU `virt` offers. The test feeds the port from a file and reads back what it wrote.

use std::path::PathBuf;

use exo_system_tests::{Boot, Booted, test_config};

/// What the test types into the UART.
const INPUT: &str = "hello\nquit\n";

/// A scratch file of this test run, removed again when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("exo-uart-echo-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        Self(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Boots `uart-echo.toml` on `board` with [`INPUT`] on the UART; checks the lines on the
/// console and the echo on the UART's output.
fn echoes_what_it_receives(board: &str) -> Booted {
    let input = Scratch::new(&format!("{board}.in"));
    let output = Scratch::new(&format!("{board}.out"));
    std::fs::write(&input.0, INPUT).expect("writing the UART input file");
    let booted = Boot::new(&test_config("uart-echo.toml"))
        .board(board)
        .serial1_input(&input.0)
        .serial1_output(&output.0)
        .run();
    booted.assert_success();
    booted.assert_ok("echo");
    booted.assert_partition_printed("echo", "SPI 40: echoing");
    booted.assert_partition_printed("echo", "got: hello");
    booted.assert_partition_printed("echo", "got: quit");
    booted.assert_partition_printed("echo", "11 bytes echoed, 2 lines");
    let echoed = booted.serial_output(1);
    booted.check(
        echoed == INPUT,
        &format!("the UART echoed {echoed:?}, expected {INPUT:?}"),
    );
    booted
}

#[test]
fn gicv3_a_partition_echoes_its_uart_by_interrupts() {
    echoes_what_it_receives("qemu-virt");
}

#[test]
fn gicv2_a_partition_echoes_its_uart_by_interrupts() {
    echoes_what_it_receives("qemu-virt-gicv2");
}
