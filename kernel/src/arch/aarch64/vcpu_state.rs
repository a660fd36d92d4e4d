//! The parts of a vCPU that the trap path does not save: EL1 system registers, the EL1
//! virtual timer and FP/SIMD registers. They change only while the partition runs, so they
//! are switched when the CPU passes from one partition to another, not on every trap.
//!
//! FP/SIMD registers are switched lazily: they stay in the CPU, owned by the last partition
//! that used them, and every other partition runs with FP/SIMD trapped (`CPTR_EL2.TFP`,
//! Arm ARM D24.2.37). A partition's first FP/SIMD instruction after it was switched in
//! traps to [`take_fp`], which saves the owner's registers and loads its own before the
//! instruction runs again. No partition can read another's: until its own are loaded,
//! every access traps.

use crate::cpus::{CoreId, MAX_CORES};
use crate::mem::frame_table::PartitionId;
use aarch64_cpu::registers::*;
use exo_abi::package::MAX_PARTITIONS;

/// Saved FP/SIMD state of one vCPU: `Q0`..`Q31`, `FPCR`, `FPSR`.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct FpState {
    q: [u128; 32],
    fpcr: u64,
    fpsr: u64,
}

/// Saved EL1 state of one vCPU.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
pub struct El1State {
    fp: FpState,
    sctlr: u64,
    cpacr: u64,
    ttbr0: u64,
    ttbr1: u64,
    tcr: u64,
    mair: u64,
    amair: u64,
    vbar: u64,
    contextidr: u64,
    tpidr_el1: u64,
    tpidr_el0: u64,
    tpidrro_el0: u64,
    sp_el0: u64,
    sp_el1: u64,
    elr_el1: u64,
    spsr_el1: u64,
    esr_el1: u64,
    far_el1: u64,
    afsr0: u64,
    afsr1: u64,
    par: u64,
    cntkctl: u64,
    csselr: u64,
    mdscr: u64,
    /// `ACTLR_EL1`: implementation defined, writable at EL1 (`HCR_EL2.TACR` = 0). (EL1 is
    /// always AArch64 here, so the AArch32 EL1 registers, `DACR32_EL2` and the like, are
    /// neither observable nor changeable by a partition and are not switched.)
    actlr: u64,
    cntv_ctl: u64,
    cntv_cval: u64,
    gic: super::gic::VcpuGic,
}

impl El1State {
    /// The state of a vCPU out of reset as the kernel presents it: MMU off, FP/SIMD
    /// enabled (`CPACR_EL1.FPEN` = 0b11, D24.2.35), everything else zero.
    pub const fn reset() -> Self {
        Self {
            fp: FpState {
                q: [0; 32],
                fpcr: 0,
                fpsr: 0,
            },
            // SCTLR_EL1 RES1 bits (D24.2.157) with M, C, I clear.
            sctlr: 0x30D0_0800,
            cpacr: 0b11 << 20,
            ttbr0: 0,
            ttbr1: 0,
            tcr: 0,
            mair: 0,
            amair: 0,
            vbar: 0,
            contextidr: 0,
            tpidr_el1: 0,
            tpidr_el0: 0,
            tpidrro_el0: 0,
            sp_el0: 0,
            sp_el1: 0,
            elr_el1: 0,
            spsr_el1: 0,
            esr_el1: 0,
            far_el1: 0,
            afsr0: 0,
            afsr1: 0,
            par: 0,
            cntkctl: 0,
            csselr: 0,
            mdscr: 0,
            actlr: 0,
            cntv_ctl: 0,
            cntv_cval: 0,
            gic: super::gic::VcpuGic::EMPTY,
        }
    }

    /// Saves the live EL1 state of core `core` (this core) into `self`.
    pub fn save(&mut self, core: CoreId) {
        // The virtual timer first: stop it firing into the next partition.
        self.cntv_ctl = CNTV_CTL_EL0.get();
        self.cntv_cval = CNTV_CVAL_EL0.get();
        CNTV_CTL_EL0.set(0);
        self.gic.save(core);
        self.save_sysregs();
    }

    /// Loads `self` into the EL1 registers of core `core` (this core).
    pub fn restore(&self, core: CoreId) {
        self.restore_sysregs();
        self.gic.restore(core);
        CNTV_CVAL_EL0.set(self.cntv_cval);
        CNTV_CTL_EL0.set(self.cntv_ctl);
    }
}

impl FpState {
    /// Saves the live FP/SIMD registers into `self`. FP/SIMD must not be trapped.
    fn save(&mut self) {
        let q = self.q.as_mut_ptr();
        // SAFETY: `q` points at 32 16-byte-aligned u128 slots (512 bytes) followed by
        // `fpcr` and `fpsr` (repr(C)), all ours; the kernel is built without FP/SIMD, so
        // these registers hold only partition state; the caller lifted CPTR_EL2.TFP.
        unsafe {
            core::arch::asm!(
                ".arch_extension fp",
                ".arch_extension simd",
                "stp q0, q1, [{p}, #0]",     "stp q2, q3, [{p}, #32]",
                "stp q4, q5, [{p}, #64]",    "stp q6, q7, [{p}, #96]",
                "stp q8, q9, [{p}, #128]",   "stp q10, q11, [{p}, #160]",
                "stp q12, q13, [{p}, #192]", "stp q14, q15, [{p}, #224]",
                "stp q16, q17, [{p}, #256]", "stp q18, q19, [{p}, #288]",
                "stp q20, q21, [{p}, #320]", "stp q22, q23, [{p}, #352]",
                "stp q24, q25, [{p}, #384]", "stp q26, q27, [{p}, #416]",
                "stp q28, q29, [{p}, #448]", "stp q30, q31, [{p}, #480]",
                "mrs {t}, fpcr", "str {t}, [{p}, #512]",
                "mrs {t}, fpsr", "str {t}, [{p}, #520]",
                p = in(reg) q,
                t = out(reg) _,
                options(nostack),
            );
        }
    }

    /// Loads `self` into the FP/SIMD registers. FP/SIMD must not be trapped.
    fn restore(&self) {
        let q = self.q.as_ptr();
        // SAFETY: reads the 528 bytes of `q`, `fpcr`, `fpsr` (repr(C), contiguous); writes
        // only FP/SIMD registers, which the kernel never uses; CPTR_EL2.TFP is lifted.
        unsafe {
            core::arch::asm!(
                ".arch_extension fp",
                ".arch_extension simd",
                "ldp q0, q1, [{p}, #0]",     "ldp q2, q3, [{p}, #32]",
                "ldp q4, q5, [{p}, #64]",    "ldp q6, q7, [{p}, #96]",
                "ldp q8, q9, [{p}, #128]",   "ldp q10, q11, [{p}, #160]",
                "ldp q12, q13, [{p}, #192]", "ldp q14, q15, [{p}, #224]",
                "ldp q16, q17, [{p}, #256]", "ldp q18, q19, [{p}, #288]",
                "ldp q20, q21, [{p}, #320]", "ldp q22, q23, [{p}, #352]",
                "ldp q24, q25, [{p}, #384]", "ldp q26, q27, [{p}, #416]",
                "ldp q28, q29, [{p}, #448]", "ldp q30, q31, [{p}, #480]",
                "ldr {t}, [{p}, #512]", "msr fpcr, {t}",
                "ldr {t}, [{p}, #520]", "msr fpsr, {t}",
                p = in(reg) q,
                t = out(reg) _,
                options(nostack, readonly),
            );
        }
    }
}

impl El1State {
    /// Saves the 25 EL1 registers from `SCTLR_EL1` to `ACTLR_EL1` into the fields `sctlr`
    /// to `actlr` (in that order, contiguous: `repr(C)`, checked below), two per store.
    fn save_sysregs(&mut self) {
        let p = (self as *mut Self)
            .cast::<u8>()
            .wrapping_add(core::mem::offset_of!(El1State, sctlr));
        // SAFETY: `p` points at the 200 bytes of `sctlr`..`actlr` of `self`, ours to write;
        // reading EL1 system registers at EL2 has no other effect.
        unsafe {
            core::arch::asm!(
                "mrs {a}, sctlr_el1", "mrs {b}, cpacr_el1", "stp {a}, {b}, [{p}, #0]",
                "mrs {a}, ttbr0_el1", "mrs {b}, ttbr1_el1", "stp {a}, {b}, [{p}, #16]",
                "mrs {a}, tcr_el1", "mrs {b}, mair_el1", "stp {a}, {b}, [{p}, #32]",
                "mrs {a}, amair_el1", "mrs {b}, vbar_el1", "stp {a}, {b}, [{p}, #48]",
                "mrs {a}, contextidr_el1", "mrs {b}, tpidr_el1", "stp {a}, {b}, [{p}, #64]",
                "mrs {a}, tpidr_el0", "mrs {b}, tpidrro_el0", "stp {a}, {b}, [{p}, #80]",
                "mrs {a}, sp_el0", "mrs {b}, sp_el1", "stp {a}, {b}, [{p}, #96]",
                "mrs {a}, elr_el1", "mrs {b}, spsr_el1", "stp {a}, {b}, [{p}, #112]",
                "mrs {a}, esr_el1", "mrs {b}, far_el1", "stp {a}, {b}, [{p}, #128]",
                "mrs {a}, afsr0_el1", "mrs {b}, afsr1_el1", "stp {a}, {b}, [{p}, #144]",
                "mrs {a}, par_el1", "mrs {b}, cntkctl_el1", "stp {a}, {b}, [{p}, #160]",
                "mrs {a}, csselr_el1", "mrs {b}, mdscr_el1", "stp {a}, {b}, [{p}, #176]",
                "mrs {a}, actlr_el1", "str {a}, [{p}, #192]",
                p = in(reg) p,
                a = out(reg) _,
                b = out(reg) _,
                options(nostack),
            );
        }
    }

    /// Restores what [`El1State::save_sysregs`] saved.
    fn restore_sysregs(&self) {
        let p = (self as *const Self)
            .cast::<u8>()
            .wrapping_add(core::mem::offset_of!(El1State, sctlr));
        // SAFETY: reads the 200 bytes of `sctlr`..`actlr` of `self`; writes the EL1 registers
        // of the partition about to run with values it had (or its reset values).
        unsafe {
            core::arch::asm!(
                "ldp {a}, {b}, [{p}, #0]", "msr sctlr_el1, {a}", "msr cpacr_el1, {b}",
                "ldp {a}, {b}, [{p}, #16]", "msr ttbr0_el1, {a}", "msr ttbr1_el1, {b}",
                "ldp {a}, {b}, [{p}, #32]", "msr tcr_el1, {a}", "msr mair_el1, {b}",
                "ldp {a}, {b}, [{p}, #48]", "msr amair_el1, {a}", "msr vbar_el1, {b}",
                "ldp {a}, {b}, [{p}, #64]", "msr contextidr_el1, {a}", "msr tpidr_el1, {b}",
                "ldp {a}, {b}, [{p}, #80]", "msr tpidr_el0, {a}", "msr tpidrro_el0, {b}",
                "ldp {a}, {b}, [{p}, #96]", "msr sp_el0, {a}", "msr sp_el1, {b}",
                "ldp {a}, {b}, [{p}, #112]", "msr elr_el1, {a}", "msr spsr_el1, {b}",
                "ldp {a}, {b}, [{p}, #128]", "msr esr_el1, {a}", "msr far_el1, {b}",
                "ldp {a}, {b}, [{p}, #144]", "msr afsr0_el1, {a}", "msr afsr1_el1, {b}",
                "ldp {a}, {b}, [{p}, #160]", "msr par_el1, {a}", "msr cntkctl_el1, {b}",
                "ldp {a}, {b}, [{p}, #176]", "msr csselr_el1, {a}", "msr mdscr_el1, {b}",
                "ldr {a}, [{p}, #192]", "msr actlr_el1, {a}",
                p = in(reg) p,
                a = out(reg) _,
                b = out(reg) _,
                options(nostack, readonly),
            );
        }
    }
}

const _: () = {
    use core::mem::offset_of;
    // The order `save_sysregs` and `restore_sysregs` assume.
    let base = offset_of!(El1State, sctlr);
    assert!(offset_of!(El1State, cpacr) == base + 8);
    assert!(offset_of!(El1State, ttbr0) == base + 16);
    assert!(offset_of!(El1State, ttbr1) == base + 24);
    assert!(offset_of!(El1State, tcr) == base + 32);
    assert!(offset_of!(El1State, mair) == base + 40);
    assert!(offset_of!(El1State, amair) == base + 48);
    assert!(offset_of!(El1State, vbar) == base + 56);
    assert!(offset_of!(El1State, contextidr) == base + 64);
    assert!(offset_of!(El1State, tpidr_el1) == base + 72);
    assert!(offset_of!(El1State, tpidr_el0) == base + 80);
    assert!(offset_of!(El1State, tpidrro_el0) == base + 88);
    assert!(offset_of!(El1State, sp_el0) == base + 96);
    assert!(offset_of!(El1State, sp_el1) == base + 104);
    assert!(offset_of!(El1State, elr_el1) == base + 112);
    assert!(offset_of!(El1State, spsr_el1) == base + 120);
    assert!(offset_of!(El1State, esr_el1) == base + 128);
    assert!(offset_of!(El1State, far_el1) == base + 136);
    assert!(offset_of!(El1State, afsr0) == base + 144);
    assert!(offset_of!(El1State, afsr1) == base + 152);
    assert!(offset_of!(El1State, par) == base + 160);
    assert!(offset_of!(El1State, cntkctl) == base + 168);
    assert!(offset_of!(El1State, csselr) == base + 176);
    assert!(offset_of!(El1State, mdscr) == base + 184);
    assert!(offset_of!(El1State, actlr) == base + 192);
    assert!(core::mem::offset_of!(FpState, fpcr) == 512);
    assert!(core::mem::offset_of!(FpState, fpsr) == 520);
};

/// The saved vCPU state of every partition and what is live in each core, behind one lock
/// (the world switch takes it once; in the lock order it comes after `KERNEL`). A
/// partition runs on one core only, so its state is live in that core at most.
struct Vcpus {
    /// EL1 state of every partition, indexed by partition id.
    states: [El1State; MAX_PARTITIONS],
    /// Per core: the partition whose EL1 state is live in its registers.
    loaded: [Option<PartitionId>; MAX_CORES],
    /// Per core: the partition whose FP/SIMD registers are live in it (they stay there
    /// while other partitions run, with FP/SIMD trapped).
    fp_owner: [Option<PartitionId>; MAX_CORES],
}

static VCPUS: spin::Mutex<Vcpus> = spin::Mutex::new(Vcpus {
    states: [El1State::reset(); MAX_PARTITIONS],
    loaded: [None; MAX_CORES],
    fp_owner: [None; MAX_CORES],
});

/// This core, whose slot in [`Vcpus`]' per-core arrays is its index.
#[inline]
fn here() -> CoreId {
    super::cores::this_core()
}

/// Switches the live EL1 state from partition `from` (if it is still to be kept) to `to`.
/// A partition that has ended leaves nothing behind: its virtual interface is emptied and
/// its timer stopped before the next one's state is loaded.
/// `core` is this core.
#[inline]
pub fn switch(core: CoreId, from: Option<PartitionId>, to: PartitionId) {
    let mut vcpus = VCPUS.lock();
    match from {
        Some(from) => vcpus.states[from.index()].save(core),
        None => {
            CNTV_CTL_EL0.set(0);
            super::gic::VcpuGic::discard(core);
        }
    }
    vcpus.states[to.index()].restore(core);
    vcpus.loaded[core.index()] = Some(to);
    // FP/SIMD untrapped only for the partition whose registers are in the CPU.
    super::el2::trap_fp(vcpus.fp_owner[core.index()] != Some(to));
}

/// The loaded partition used FP/SIMD while trapped (ESR_EL2.EC = 0x07): its registers
/// replace the owner's (saved first), and it runs on untrapped. The trapped instruction
/// runs again when the partition resumes (ELR_EL2 points at it).
pub fn take_fp() {
    super::el2::trap_fp(false);
    // The CPTR_EL2 write must take effect before the save and restore below touch FP/SIMD.
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    let core = here();
    let mut vcpus = VCPUS.lock();
    let Some(current) = vcpus.loaded[core.index()] else {
        return;
    };
    if vcpus.fp_owner[core.index()] == Some(current) {
        return;
    }
    if let Some(previous) = vcpus.fp_owner[core.index()] {
        vcpus.states[previous.index()].fp.save();
    }
    vcpus.states[current.index()].fp.restore();
    vcpus.fp_owner[core.index()] = Some(current);
}

/// Partition `id` has ended. If its state is live, its timer stops and its virtual interface
/// is emptied at once: the CPU may idle before another partition is loaded, and a timer
/// left running would fire into nobody. Its saved state is reset either way.
pub fn ended(id: PartitionId) {
    let core = here();
    let mut vcpus = VCPUS.lock();
    if vcpus.loaded[core.index()] == Some(id) {
        CNTV_CTL_EL0.set(0);
        super::gic::VcpuGic::discard(core);
        vcpus.loaded[core.index()] = None;
    }
    if let Some(state) = vcpus.states.get_mut(id.index()) {
        *state = El1State::reset();
    }
    // Its FP/SIMD registers may stay in the CPU: the next partition to use FP/SIMD traps
    // and loads all of its own over them. (The kernel tears a partition down on a core
    // where it is not loaded: only its own core can have its registers.)
    for owner in vcpus
        .fp_owner
        .iter_mut()
        .filter(|owner| **owner == Some(id))
    {
        *owner = None;
    }
}

/// Partition `id`'s virtual-timer deadline if its timer is enabled and unmasked
/// (`CNTV_CTL_EL0` ENABLE = 1, IMASK = 0; D24.x), from the live registers if its state is
/// loaded, else from its saved state.
pub fn virtual_timer_deadline(id: PartitionId) -> Option<u64> {
    let core = here();
    let vcpus = VCPUS.lock();
    let (ctl, cval) = if vcpus.loaded[core.index()] == Some(id) {
        (CNTV_CTL_EL0.get(), CNTV_CVAL_EL0.get())
    } else {
        let state = vcpus.states.get(id.index())?;
        (state.cntv_ctl, state.cntv_cval)
    };
    (ctl & 0b11 == 0b01).then_some(cval)
}
