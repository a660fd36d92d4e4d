//! From a guest trap to a kernel decision and back: decodes the syndrome, asks the portable
//! kernel what to do, and performs the world switch it chooses.

use super::esr::{Esr, FaultStatus, class};
use super::exceptions::ExceptionKind;
use super::platform::Aarch64Platform;
use crate::kernel::{Kernel, Stage2Abort, Step};
use crate::mem::frame_table::PartitionId;
use crate::partition::{Access, FaultKind};
use crate::vcpu::VcpuRegs;
use aarch64_cpu::registers::{FAR_EL2, HPFAR_EL2, Readable};
use exo_abi::Ipa;

/// The running kernel, set up once by `start`.
pub static KERNEL: spin::Mutex<Option<Kernel<'static, Aarch64Platform>>> = spin::Mutex::new(None);

/// A trap as the hardware reported it. The fault address registers are read only when a
/// stage-2 abort needs them (nothing between the vector and the kernel can overwrite them).
pub struct Trap {
    kind: ExceptionKind,
    esr: Esr,
}

impl Trap {
    /// The trap with syndrome `esr`, taken through vector `kind`.
    pub fn capture(kind: ExceptionKind, esr: Esr) -> Self {
        Self { kind, esr }
    }

    /// For a stage-2 abort: the faulting IPA. HPFAR_EL2.FIPA (bits [43:4], D24.2.53) holds
    /// IPA[51:12]; the page offset comes from FAR_EL2.
    pub(super) fn faulting_ipa(&self) -> Ipa {
        Ipa::new(((HPFAR_EL2.get() >> 4) << 12) | (FAR_EL2.get() & 0xFFF))
    }

    fn stage2_abort(&self) -> Stage2Abort {
        let access = match self.esr.class() {
            class::IABT_LOWER => Access::Execute,
            _ if self.esr.is_write() => Access::Write,
            _ => Access::Read,
        };
        let kind = match self.esr.fault_status() {
            FaultStatus::Translation(_) => FaultKind::Unbound,
            FaultStatus::Permission(_) => FaultKind::Permission,
            _ => FaultKind::Other,
        };
        Stage2Abort {
            ipa: self.faulting_ipa(),
            access,
            kind,
        }
    }

    /// The syndrome.
    pub(super) fn esr(&self) -> Esr {
        self.esr
    }

    /// Whether this is an `HVC` from the partition: the trap most worth deciding first.
    fn is_hvc(&self) -> bool {
        self.kind == ExceptionKind::Synchronous && self.esr.class() == class::HVC64
    }
}

/// Handles a trap from the running partition; returns the registers to resume.
///
/// The common case, a hypercall or interrupt after which the same partition resumes, stays
/// short: `HVC` is decided first, and the registers to resume are `saved` itself (the
/// running partition's `VcpuRegs` in the kernel, which `TPIDR_EL2` points to), not looked
/// up again. Switching, idling and powering off are in [`finish`].
pub fn handle(saved: *mut VcpuRegs, trap: Trap) -> *const VcpuRegs {
    let mut guard = KERNEL.lock();
    let Some(kernel) = guard.as_mut() else {
        panic!(
            "guest trap before the kernel was initialised: {:?}",
            trap.esr
        );
    };
    let before = kernel.current();
    let step = if trap.is_hvc() {
        hypercall(kernel)
    } else {
        decide(kernel, &trap)
    };
    if step == Step::Resume && kernel.current() == before {
        kernel.before_resume();
        return saved;
    }
    finish(guard, before, step)
}

/// Every trap but `HVC`: what the kernel decides for it.
fn decide(kernel: &mut Kernel<'static, Aarch64Platform>, trap: &Trap) -> Step {
    if trap.kind == ExceptionKind::Synchronous
        && let Some(step) = super::linux_trap::serve(kernel, trap)
    {
        return step;
    }
    match (trap.kind, trap.esr.class()) {
        (ExceptionKind::Synchronous, class::HVC64) => hypercall(kernel),
        (ExceptionKind::Synchronous, class::SMC64) => {
            // A trapped SMC reports the SMC itself in ELR_EL2 (D1.11.x): step over it.
            kernel.current_regs_mut().pc += 4;
            hypercall(kernel)
        }
        (ExceptionKind::Synchronous, class::SYSREG) if trap.esr.is_set_way_cache_op() => {
            // A trapped system instruction reports itself in ELR_EL2: step over it.
            kernel.current_regs_mut().pc += 4;
            kernel.set_way_maintenance()
        }
        (ExceptionKind::Synchronous, class::DABT_LOWER | class::IABT_LOWER) => {
            kernel.stage2_abort(trap.stage2_abort())
        }
        (ExceptionKind::Irq, _) => interrupt(kernel),
        (ExceptionKind::Fiq, _) => Step::Resume,
        (ExceptionKind::SError, _) => {
            kernel.unexpected_trap("SError or AArch32 exception", trap.esr.raw())
        }
        _ => kernel.unexpected_trap(trap.esr.class_name(), trap.esr.raw()),
    }
}

/// Carries out `step` (decided while partition `before` ran) until a partition can resume;
/// returns its registers.
#[inline(never)]
fn finish(
    mut guard: spin::MutexGuard<'_, Option<Kernel<'static, Aarch64Platform>>>,
    before: PartitionId,
    mut step: Step,
) -> *const VcpuRegs {
    let Some(kernel) = guard.as_mut() else {
        unreachable!("the kernel was initialised before the trap");
    };
    loop {
        match step {
            Step::Resume => {
                kernel.before_resume();
                return kernel.current_regs_mut() as *const VcpuRegs;
            }
            Step::Switch(next) => {
                let keep_previous = kernel.partition(before).is_some_and(|p| p.stage2.is_some());
                let regs = switch_to(kernel, keep_previous.then_some(before), next);
                kernel.before_resume();
                return regs;
            }
            Step::Idle(deadline) => step = idle(kernel, deadline),
            Step::PowerOff => {
                kernel.report();
                log::info!("all partitions finished, powering off");
                drop(guard);
                super::el2::system_off()
            }
        }
    }
}

/// Nobody can run: sleeps until an interrupt (a partition's SPI, the loaded vCPU's timer)
/// or the earliest virtual-timer deadline of a waiting partition, then decides again. The
/// next slice starts afresh. Out of line: its constants stay off the switch path.
#[inline(never)]
fn idle(kernel: &mut Kernel<'static, Aarch64Platform>, deadline: Option<u64>) -> Step {
    let slice = kernel.slice_ticks();
    let now = super::el2::counter();
    let ticks = deadline.map_or(slice, |d| d.saturating_sub(now).clamp(1, slice));
    super::el2::arm_hyp_timer(ticks);
    super::el2::wait_for_interrupt();
    let step = match interrupt(kernel) {
        Step::Resume => kernel.schedule(),
        other => other,
    };
    if !matches!(step, Step::Idle(_)) {
        super::el2::arm_hyp_timer(slice);
    }
    step
}

/// Takes a physical interrupt: the time-slice timer and the maintenance interrupt are the
/// kernel's; everything else is passed to its owner with only the priority dropped.
fn interrupt(kernel: &mut Kernel<'static, Aarch64Platform>) -> Step {
    use super::gic;
    match gic::acknowledge() {
        Some(intid) if intid == gic::HYP_TIMER => {
            // The running partition's time slice is over.
            super::el2::arm_hyp_timer(kernel.slice_ticks());
            gic::end(intid);
            kernel.preempt()
        }
        Some(intid) if intid == gic::MAINTENANCE => {
            // List registers ran low: they are refilled on the way back to the partition.
            gic::end(intid);
            Step::Resume
        }
        Some(intid) => {
            gic::drop_priority(intid);
            kernel.interrupt(intid.raw_value())
        }
        None => Step::Resume,
    }
}

/// Decodes SMCCC arguments from the saved registers and serves the call.
fn hypercall(kernel: &mut Kernel<'static, Aarch64Platform>) -> Step {
    let regs = kernel.current_regs_mut();
    let function = regs.x[0] as u32;
    let args = regs.seven(1);
    kernel.hypercall(function, args)
}

/// Loads partition `next`'s EL1 state and stage 2; returns its registers.
pub fn switch_to(
    kernel: &mut Kernel<'static, Aarch64Platform>,
    previous: Option<PartitionId>,
    next: PartitionId,
) -> *const VcpuRegs {
    super::vcpu_state::switch(previous, next);
    let Some(stage2) = kernel.partition(next).and_then(|p| p.stage2.as_ref()) else {
        panic!("scheduler chose partition {next}, which has no stage-2 tables");
    };
    super::el2::load_stage2(stage2.root().raw(), stage2.vmid().0);
    match kernel.regs_mut(next) {
        Some(regs) => regs as *const VcpuRegs,
        None => panic!("scheduler chose partition {next}, which does not exist"),
    }
}
