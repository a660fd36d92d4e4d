//! What the kernel does when it finds a bug in itself: say where, then power off.

use core::fmt::Write;
use core::panic::PanicInfo;

/// Formats into the forced console path.
struct PanicWriter;

impl Write for PanicWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        crate::arch::aarch64::write_console_forced(s.as_bytes());
        Ok(())
    }
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let _ = match info.location() {
        Some(at) => writeln!(
            PanicWriter,
            "exo: KERNEL PANIC at {}:{}: {}",
            at.file(),
            at.line(),
            info.message()
        ),
        None => writeln!(PanicWriter, "exo: KERNEL PANIC: {}", info.message()),
    };
    crate::arch::aarch64::power_off()
}
