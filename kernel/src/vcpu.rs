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
        let [r0, r1, r2, r3] = results;
        (self.x[0], self.x[1], self.x[2], self.x[3]) = (r0, r1, r2, r3);
    }

    /// Seven consecutive registers from `x<first>` (the arguments of a call, the words of
    /// a message); `first` must be at most 24.
    ///
    /// Copied word by word with constant indices: a slice copy of seven words becomes a
    /// call to the `memcpy` the kernel links (50 instructions here, more for other sizes).
    #[inline(always)]
    pub fn seven(&self, first: usize) -> [u64; 7] {
        let Some(&[a, b, c, d, e, f, g]) = self.x.get(first..first + 7) else {
            panic!("registers x{first}..x{} do not exist", first + 7);
        };
        [a, b, c, d, e, f, g]
    }

    /// Writes `words` into seven consecutive registers from `x<first>`, word by word (see
    /// [`VcpuRegs::seven`]).
    #[inline(always)]
    pub fn set_seven(&mut self, first: usize, words: [u64; 7]) {
        let Some([a, b, c, d, e, f, g]) = self.x.get_mut(first..first + 7) else {
            panic!("registers x{first}..x{} do not exist", first + 7);
        };
        let [wa, wb, wc, wd, we, wf, wg] = words;
        (*a, *b, *c, *d, *e, *f, *g) = (wa, wb, wc, wd, we, wf, wg);
    }
}
