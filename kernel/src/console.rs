//! The system console's line discipline: kernel messages and partition output share one
//! UART, so every partition line is prefixed with `[name] ` and a line one writer left
//! unfinished is ended before another writer starts.

/// Who is writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer<'a> {
    /// The kernel's own log.
    Kernel,
    /// A partition, by name.
    Partition(&'a str),
}

/// Where bytes finally go (a UART driver, or a buffer in tests).
pub trait Sink {
    /// Writes bytes as they are.
    fn write_bytes(&mut self, bytes: &[u8]);
}

/// A console over a [`Sink`].
pub struct Console<S> {
    sink: S,
    /// Name of the partition owning the unfinished line, or empty for the kernel.
    owner: [u8; 32],
    owner_len: usize,
    owner_is_kernel: bool,
    at_line_start: bool,
}

impl<S: Sink> Console<S> {
    /// A console at the start of a line.
    pub const fn new(sink: S) -> Self {
        Self {
            sink,
            owner: [0; 32],
            owner_len: 0,
            owner_is_kernel: true,
            at_line_start: true,
        }
    }

    fn owned_by(&self, who: Writer<'_>) -> bool {
        match who {
            Writer::Kernel => self.owner_is_kernel,
            Writer::Partition(name) => {
                !self.owner_is_kernel && &self.owner[..self.owner_len] == name.as_bytes()
            }
        }
    }

    fn set_owner(&mut self, who: Writer<'_>) {
        match who {
            Writer::Kernel => self.owner_is_kernel = true,
            Writer::Partition(name) => {
                let len = name.len().min(self.owner.len());
                self.owner[..len].copy_from_slice(&name.as_bytes()[..len]);
                self.owner_len = len;
                self.owner_is_kernel = false;
            }
        }
    }

    /// Writes `bytes` on behalf of `who`.
    pub fn write(&mut self, who: Writer<'_>, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if !self.at_line_start && !self.owned_by(who) {
            self.sink.write_bytes(b"\n");
            self.at_line_start = true;
        }
        self.set_owner(who);
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            if let (true, Writer::Partition(name)) = (self.at_line_start, who) {
                self.sink.write_bytes(b"[");
                self.sink.write_bytes(name.as_bytes());
                self.sink.write_bytes(b"] ");
            }
            self.sink.write_bytes(line);
            self.at_line_start = line.ends_with(b"\n");
        }
    }

    /// The sink, for tests and for draining.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Sink for Vec<u8> {
        fn write_bytes(&mut self, bytes: &[u8]) {
            self.extend_from_slice(bytes);
        }
    }

    #[test]
    fn prefixes_each_partition_line_and_ends_interrupted_lines() {
        let mut console = Console::new(Vec::new());
        console.write(Writer::Partition("a"), b"one\ntw");
        console.write(Writer::Partition("a"), b"o\n");
        console.write(Writer::Partition("b"), b"half");
        console.write(Writer::Kernel, b"exo: hi\n");
        console.write(Writer::Partition("b"), b"rest\n");
        let text = String::from_utf8(console.sink_mut().clone()).unwrap();
        assert_eq!(text, "[a] one\n[a] two\n[b] half\nexo: hi\n[b] rest\n");
    }
}
