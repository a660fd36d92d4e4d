//! Core numbers: which processing element something runs on or is routed to.

/// A physical core, by the number the kernel gives it (0 is the core that booted). Only
/// core 0 runs partitions so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CoreId(u32);

impl CoreId {
    /// The core that booted the kernel.
    pub const BOOT: Self = Self(0);

    /// Core number `number`.
    pub const fn new(number: u32) -> Self {
        Self(number)
    }

    /// The core's number.
    pub const fn number(self) -> u32 {
        self.0
    }
}
