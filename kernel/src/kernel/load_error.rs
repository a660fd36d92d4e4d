//! Why the boot package could not be turned into running partitions, said in words.
//!
//! The kernel prints a [`LoadError`] once, as `exo: error: boot failed: <why>`, naming the
//! partition ([`LoadError::named`]) and, when memory ran out, how many frames it needed and
//! how many were free.

use core::fmt;

use crate::mem::frame_table::FrameError;
use crate::mem::stage2::Stage2Error;
use exo_abi::package::Package;
use exo_abi::{Name, PAGE_SIZE};

/// Why the boot package could not be turned into running partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// Not enough free frames for a partition.
    OutOfMemory {
        /// Index of the partition.
        partition: usize,
        /// Frames it needs: its memory quota, its kernel pages and its stage-2 table budget.
        needed: u64,
        /// Frames free when its loading began.
        free: u64,
    },
    /// Building stage 2 failed.
    Stage2(Stage2Error),
    /// An interrupt cannot be given to a partition (not an SPI the GIC has, or taken).
    Interrupt {
        /// Index of the partition.
        partition: usize,
        /// The INTID.
        intid: u32,
    },
    /// A device region lies in RAM.
    DeviceInRam {
        /// Index of the partition.
        partition: usize,
    },
    /// The frame table refused a transition.
    Frame(FrameError),
    /// More partitions than the frame table can name.
    TooManyPartitions,
    /// A partition is pinned to a core that is not up (the device tree lacks it, or it did
    /// not start).
    CoreDown {
        /// Index of the partition.
        partition: usize,
        /// The core it is pinned to.
        core: u32,
    },
}

impl From<Stage2Error> for LoadError {
    fn from(e: Stage2Error) -> Self {
        LoadError::Stage2(e)
    }
}

impl From<FrameError> for LoadError {
    /// An exhausted frame table is [`LoadError::OutOfMemory`] with unknown partition and
    /// figures; [`crate::kernel::Kernel::load`] fills them in.
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Exhausted => LoadError::OutOfMemory {
                partition: usize::MAX,
                needed: 0,
                free: 0,
            },
            other => LoadError::Frame(other),
        }
    }
}

impl LoadError {
    /// The partition the error is about, if any.
    pub fn partition(&self) -> Option<usize> {
        match *self {
            LoadError::OutOfMemory { partition, .. }
            | LoadError::Interrupt { partition, .. }
            | LoadError::DeviceInRam { partition }
            | LoadError::CoreDown { partition, .. } => Some(partition),
            _ => None,
        }
    }

    /// The error with its partition named as in `package`: it displays as
    /// ``partition `hello` (0) needs ...``.
    pub fn named(self, package: &Package<'_>) -> NamedLoadError {
        let name = self
            .partition()
            .and_then(|index| package.partitions().nth(index))
            .map(|record| record.name);
        NamedLoadError { error: self, name }
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, name: Option<Name>) -> fmt::Result {
        let who = |partition: usize| Who { partition, name };
        match *self {
            LoadError::OutOfMemory {
                partition,
                needed,
                free,
            } => write!(
                f,
                "{} needs {needed} frames ({} for its memory, kernel pages and stage-2 tables), \
                 {free} free ({})",
                who(partition),
                Mib(needed, true),
                Mib(free, false)
            ),
            LoadError::Stage2(e) => write!(f, "building stage-2 tables failed: {e:?}"),
            LoadError::Interrupt { partition, intid } => write!(
                f,
                "{} cannot have interrupt {intid}: not an SPI of this GIC, or already given",
                who(partition)
            ),
            LoadError::DeviceInRam { partition } => {
                write!(f, "{} has a device region that lies in RAM", who(partition))
            }
            LoadError::Frame(e) => write!(f, "the frame table refused a transition: {e:?}"),
            LoadError::TooManyPartitions => {
                f.write_str("more partitions than the frame table can name")
            }
            LoadError::CoreDown { partition, core } => write!(
                f,
                "{} is pinned to core {core}, which is not up (see the `cores:` line)",
                who(partition)
            ),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, None)
    }
}

/// A [`LoadError`] with its partition's name ([`LoadError::named`]).
#[derive(Clone, Copy, Debug)]
pub struct NamedLoadError {
    error: LoadError,
    name: Option<Name>,
}

impl fmt::Display for NamedLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.write(f, self.name)
    }
}

/// A partition by index, and name when known.
struct Who {
    partition: usize,
    name: Option<Name>,
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name {
            Some(name) => write!(f, "partition `{name}` ({})", self.partition),
            None => write!(f, "partition {}", self.partition),
        }
    }
}

/// Frames shown as KiB below 10 MiB, else as MiB rounded up (`up`) or down.
struct Mib(u64, bool);

impl fmt::Display for Mib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0 * PAGE_SIZE;
        if bytes < 10 << 20 {
            write!(f, "{} KiB", bytes / 1024)
        } else if self.1 {
            write!(f, "{} MiB", bytes.div_ceil(1 << 20))
        } else {
            write!(f, "{} MiB", bytes >> 20)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_memory_says_what_was_needed_and_free() {
        let e = LoadError::OutOfMemory {
            partition: 0,
            needed: 307_206,
            free: 245_000,
        };
        assert_eq!(
            e.to_string(),
            "partition 0 needs 307206 frames (1201 MiB for its memory, kernel pages and stage-2 \
             tables), 245000 free (957 MiB)"
        );
        let named = NamedLoadError {
            error: e,
            name: Name::new("hello"),
        };
        assert!(
            named
                .to_string()
                .starts_with("partition `hello` (0) needs 307206 frames (1201 MiB"),
            "{named}"
        );
    }

    #[test]
    fn other_errors_are_sentences() {
        let e = LoadError::Interrupt {
            partition: 2,
            intid: 40,
        };
        assert_eq!(
            e.to_string(),
            "partition 2 cannot have interrupt 40: not an SPI of this GIC, or already given"
        );
        assert_eq!(
            LoadError::DeviceInRam { partition: 1 }.to_string(),
            "partition 1 has a device region that lies in RAM"
        );
        assert_eq!(
            LoadError::Stage2(Stage2Error::NoTableMemory).to_string(),
            "building stage-2 tables failed: NoTableMemory"
        );
        assert_eq!(LoadError::TooManyPartitions.partition(), None);
        assert_eq!(Mib(100, true).to_string(), "400 KiB");
        assert_eq!(Mib(2561, true).to_string(), "11 MiB");
        assert_eq!(Mib(2561, false).to_string(), "10 MiB");
    }
}
