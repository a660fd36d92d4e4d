//! The machine layer: the only place the library OS touches assembly, system registers or
//! raw pointers.
//!
//! On the real target this is [`aarch64`]: the `_start` stub, the EL1 vector table and the
//! handful of raw memory accesses the safe modules need. Built for the host (for `cargo test`),
//! a fake stands in that has no memory of its own and refuses every hypercall.

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod aarch64;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub(crate) use aarch64::*;

#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
mod host;
#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
pub(crate) use host::*;

/// Where an exception was taken from, as the vector table slot says (Arm ARM D1.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct VectorSlot(pub(crate) u64);

impl VectorSlot {
    /// The exception type: synchronous, IRQ, FIQ or SError.
    pub(crate) fn kind(self) -> &'static str {
        match self.0 % 4 {
            0 => "synchronous exception",
            1 => "IRQ",
            2 => "FIQ",
            _ => "SError",
        }
    }

    /// Where the exception came from.
    pub(crate) fn origin(self) -> &'static str {
        match self.0 / 4 {
            0 => "current EL with SP_EL0",
            1 => "current EL with SP_EL1",
            2 => "lower EL in AArch64",
            _ => "lower EL in AArch32",
        }
    }
}

/// The syndrome registers of an exception taken to EL1.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Syndrome {
    /// Which vector was taken.
    pub(crate) slot: VectorSlot,
    /// `ESR_EL1`.
    pub(crate) esr: u64,
    /// `FAR_EL1` (meaningful for aborts only).
    pub(crate) far: u64,
    /// `ELR_EL1`: the faulting or interrupted instruction.
    pub(crate) elr: u64,
    /// `SPSR_EL1`.
    pub(crate) spsr: u64,
}
