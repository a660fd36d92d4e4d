//! The register file of a partition's virtual CPU as the trap path saves it.
//!
//! The layout is `#[repr(C)]` because the exception vectors store into it directly
//! (`arch::aarch64::exceptions` asserts the offsets at compile time).

/// General-purpose registers, program counter and processor state of a vCPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct VcpuRegs {
    /// `x0`..`x30`.
    pub x: [u64; 31],
    /// Where the vCPU resumes (`ELR_EL2` on AArch64).
    pub pc: u64,
    /// Saved processor state (`SPSR_EL2` on AArch64).
    pub pstate: u64,
}

impl VcpuRegs {
    /// Registers for a vCPU about to run its first instruction at `entry` with `arg` in the
    /// first argument register and the given initial processor state.
    pub fn at_entry(entry: u64, arg: u64, pstate: u64) -> Self {
        let mut regs = Self {
            pc: entry,
            pstate,
            ..Self::default()
        };
        regs.x[0] = arg;
        regs
    }

    /// Places an SMCCC result: `x0`..`x3`.
    pub fn set_results(&mut self, results: [u64; 4]) {
        self.x[..4].copy_from_slice(&results);
    }
}
