//! Console output: [`print!`](crate::print) and [`println!`](crate::println) over a line
//! buffer, so each line reaches the kernel in one `EXO_CONSOLE_WRITE` and lines of different
//! partitions do not interleave mid-line.

use core::fmt;

use crate::hypercall;

/// Size of the line buffer: longer lines go out in pieces of this size.
pub const LINE_MAX: usize = 256;

/// A [`fmt::Write`] sink that collects bytes and hands them to `flush` a line at a time (or
/// when the buffer fills, or when dropped).
pub struct LineWriter<F: FnMut(&[u8])> {
    buffer: [u8; LINE_MAX],
    len: usize,
    flush: F,
}

impl<F: FnMut(&[u8])> LineWriter<F> {
    /// A writer that passes each complete line (with its `\n`) to `flush`.
    pub const fn new(flush: F) -> Self {
        Self {
            buffer: [0; LINE_MAX],
            len: 0,
            flush,
        }
    }

    /// Sends whatever is buffered.
    pub fn flush(&mut self) {
        if self.len > 0 {
            (self.flush)(&self.buffer[..self.len]);
            self.len = 0;
        }
    }

    /// Buffers `bytes`, flushing after every newline and whenever the buffer is full.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.buffer[self.len] = byte;
            self.len += 1;
            if byte == b'\n' || self.len == LINE_MAX {
                self.flush();
            }
        }
    }
}

impl<F: FnMut(&[u8])> fmt::Write for LineWriter<F> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.write_bytes(text.as_bytes());
        Ok(())
    }
}

impl<F: FnMut(&[u8])> Drop for LineWriter<F> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// A line writer to the system console. Write errors are dropped: there is nowhere else
/// to report them.
pub fn console() -> LineWriter<impl FnMut(&[u8])> {
    LineWriter::new(|line: &[u8]| {
        let _ = hypercall::console_write(line);
    })
}

/// Writes formatted text to the console; the implementation of [`print!`](crate::print).
pub fn print_fmt(arguments: fmt::Arguments<'_>) {
    let _ = fmt::Write::write_fmt(&mut console(), arguments);
}

/// Writes formatted text and a newline to the console as one line; the implementation of
/// [`println!`](crate::println).
pub fn print_line(arguments: fmt::Arguments<'_>) {
    let mut console = console();
    let _ = fmt::Write::write_fmt(&mut console, arguments);
    console.write_bytes(b"\n");
}

/// Prints to the console, without a newline. Output goes out when the call ends.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::console::print_fmt(::core::format_args!($($arg)*))
    };
}

/// Prints a line to the console, in a single `EXO_CONSOLE_WRITE` if it fits in
/// [`LINE_MAX`](crate::console::LINE_MAX) bytes.
#[macro_export]
macro_rules! println {
    () => {
        $crate::console::print_line(::core::format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::console::print_line(::core::format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    fn collect(write: impl FnOnce(&mut dyn Write)) -> Vec<Vec<u8>> {
        let mut calls = Vec::new();
        {
            let mut writer = LineWriter::new(|line: &[u8]| calls.push(line.to_vec()));
            write(&mut writer);
        }
        calls
    }

    #[test]
    fn each_line_goes_out_in_one_piece() {
        let calls = collect(|w| {
            write!(w, "count {}", 1).unwrap();
            writeln!(w, " of {}", 5).unwrap();
            write!(w, "tail").unwrap();
        });
        assert_eq!(calls, vec![b"count 1 of 5\n".to_vec(), b"tail".to_vec()]);
    }

    #[test]
    fn long_lines_are_split_at_the_buffer_size() {
        let long = "x".repeat(LINE_MAX + 10);
        let calls = collect(|w| writeln!(w, "{long}").unwrap());
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].len(), LINE_MAX);
        assert_eq!(calls[1].len(), 11);
    }
}
