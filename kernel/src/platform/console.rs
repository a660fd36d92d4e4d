//! The system console.

use crate::console::Writer;

/// Where partitions' and the kernel's text goes.
pub trait ConsoleOutput {
    /// Writes to the system console.
    fn console_write(&mut self, who: Writer<'_>, bytes: &[u8]);
}
