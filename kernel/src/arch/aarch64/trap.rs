//! From a guest trap to a kernel decision and back: decodes the syndrome, asks the portable
//! kernel what to do, and performs the world switch it chooses; and each core's first entry
//! into its partitions.
//!
//! Every core takes the one kernel lock, [`KERNEL`], for the whole of a trap, and tells the
//! kernel which core it acts for ([`Kernel::enter`]). A core with nothing to run releases
//! the lock while it waits for an interrupt. Locks are taken in one order: `KERNEL`, then
//! `vcpu_state`'s `VCPUS`, then the GIC driver's, then the console's.

use super::esr::{Esr, FaultStatus, class};
use super::exceptions::ExceptionKind;
use super::platform::Aarch64Platform;
use crate::cpus::CoreId;
use crate::kernel::{Kernel, Stage2Abort, Step};
use crate::mem::frame_table::PartitionId;
use crate::partition::{Access, FaultKind};
use crate::vcpu::VcpuRegs;
use aarch64_cpu::registers::{FAR_EL2, HPFAR_EL2, Readable};
use exo_abi::Ipa;

/// The running kernel, set up once by `start`.
pub static KERNEL: spin::Mutex<Option<Kernel<'static, Aarch64Platform>>> = spin::Mutex::new(None);

/// Whether the GIC works, so that the EL2 timer can slice time (set once by `start`).
static PREEMPTIVE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Records that the GIC works and time slices can be ticked.
pub fn set_preemptive() {
    PREEMPTIVE.store(true, core::sync::atomic::Ordering::Relaxed);
}

/// The kernel, which `start` set up before any partition runs.
fn kernel_of<'g>(
    guard: &'g mut spin::MutexGuard<'_, Option<Kernel<'static, Aarch64Platform>>>,
) -> &'g mut Kernel<'static, Aarch64Platform> {
    match guard.as_mut() {
        Some(kernel) => kernel,
        None => panic!("a core entered the kernel before it was initialised"),
    }
}

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
    let core = super::cores::this_core();
    let mut guard = KERNEL.lock();
    let kernel = kernel_of(&mut guard);
    let before = kernel.running_on(core);
    if let Some(step) = kernel.enter(core) {
        // The trapping partition was ended from another core: its trap is moot.
        return finish(guard, core, Some(before), step);
    }
    let step = if trap.is_hvc() {
        hypercall(kernel)
    } else {
        decide(kernel, &trap)
    };
    if step == Step::Resume && kernel.current() == before {
        kernel.before_resume();
        return saved;
    }
    finish(guard, core, Some(before), step)
}

/// Core `core`'s first entry into its partitions, once the boot core has loaded them all:
/// loads the first one and enters it on the EL2 stack topped at `stack_top` (the frames
/// below are dropped). A core no partition is pinned to idles for good, outside the lock.
pub fn enter_first(core: CoreId, stack_top: u64) -> ! {
    let mut guard = KERNEL.lock();
    let kernel = kernel_of(&mut guard);
    let Some(first) = kernel.first_on(core) else {
        drop(guard);
        loop {
            super::el2::wait_for_interrupt();
        }
    };
    let step = kernel.enter(core).unwrap_or(Step::Switch(first));
    arm_tick(kernel);
    let regs = finish(guard, core, None, step);
    // SAFETY: `regs` points into the kernel static, which lives forever and is never moved;
    // the partition's EL1 state and stage 2 were just loaded by `finish`. This core's stack
    // is reset: nothing on it is used again.
    unsafe { super::exceptions::enter_first_vcpu(regs, stack_top) }
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

/// Carries out `step` on core `core` until a partition can resume; returns its registers.
/// `loaded` is the partition whose vCPU state is live on the core (`None` before its first
/// entry).
#[inline(never)]
fn finish(
    mut guard: spin::MutexGuard<'_, Option<Kernel<'static, Aarch64Platform>>>,
    core: CoreId,
    loaded: Option<PartitionId>,
    mut step: Step,
) -> *const VcpuRegs {
    loop {
        let kernel = kernel_of(&mut guard);
        match step {
            Step::Resume if loaded == Some(kernel.current()) => {
                kernel.before_resume();
                return kernel.current_regs_mut() as *const VcpuRegs;
            }
            Step::Resume => step = Step::Switch(kernel.current()),
            Step::Switch(next) => {
                let keep =
                    loaded.filter(|&id| kernel.partition(id).is_some_and(|p| p.stage2.is_some()));
                let regs = switch_to(kernel, core, keep, next);
                kernel.before_resume();
                return regs;
            }
            Step::Idle(deadline) => {
                let ticks = idle_ticks(kernel, deadline);
                // Nothing to run here: wait outside the lock, so the other cores go on.
                drop(guard);
                super::el2::arm_hyp_timer(ticks);
                super::el2::wait_for_interrupt();
                guard = KERNEL.lock();
                let kernel = kernel_of(&mut guard);
                step = match kernel.enter(core) {
                    Some(step) => step,
                    None => after_idle(kernel),
                };
            }
            Step::PowerOff => {
                kernel.report();
                log::info!("all partitions finished, powering off");
                drop(guard);
                super::el2::system_off()
            }
        }
    }
}

/// How long an idle core sleeps at most: until the earliest virtual-timer deadline of a
/// waiting partition, and no longer than a time slice (it then looks again: partitions of
/// other cores may have given it work). Out of line: its constants stay off the switch
/// path.
#[inline(never)]
fn idle_ticks(kernel: &Kernel<'static, Aarch64Platform>, deadline: Option<u64>) -> u64 {
    let slice = kernel.slice_ticks();
    let now = super::el2::counter();
    deadline.map_or(slice, |d| d.saturating_sub(now).clamp(1, slice))
}

/// An idle core woke up: it takes the interrupt (a partition's SPI, the loaded vCPU's
/// timer, its wake-up timer) and decides again. The next slice starts afresh.
#[inline(never)]
fn after_idle(kernel: &mut Kernel<'static, Aarch64Platform>) -> Step {
    let step = match interrupt(kernel) {
        Step::Resume => kernel.schedule(),
        other => other,
    };
    if !matches!(step, Step::Idle(_)) {
        arm_tick(kernel);
    }
    step
}

/// Arms the EL2 timer for the next time slice of the core the kernel acts for, or stops it
/// on an unsliced core (and on a machine whose GIC does not work: nothing would take it).
fn arm_tick(kernel: &Kernel<'static, Aarch64Platform>) {
    match kernel.tick() {
        Some(ticks) if PREEMPTIVE.load(core::sync::atomic::Ordering::Relaxed) => {
            super::el2::arm_hyp_timer(ticks)
        }
        _ => super::el2::stop_hyp_timer(),
    }
}

/// Takes a physical interrupt: the time-slice timer and the maintenance interrupt are the
/// kernel's; everything else is passed to its owner with only the priority dropped.
fn interrupt(kernel: &mut Kernel<'static, Aarch64Platform>) -> Step {
    use super::gic;
    match gic::acknowledge() {
        Some(intid) if intid == gic::HYP_TIMER => {
            // The running partition's time slice is over.
            arm_tick(kernel);
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

/// Loads partition `next`'s EL1 state and stage 2 on core `core` (this core); returns its
/// registers.
fn switch_to(
    kernel: &mut Kernel<'static, Aarch64Platform>,
    core: CoreId,
    previous: Option<PartitionId>,
    next: PartitionId,
) -> *const VcpuRegs {
    super::vcpu_state::switch(core, previous, next);
    let Some(stage2) = kernel.partition(next).and_then(|p| p.stage2.as_ref()) else {
        panic!("scheduler chose partition {next}, which has no stage-2 tables");
    };
    super::el2::load_stage2(stage2.root().raw(), stage2.vmid().0);
    match kernel.regs_mut(next) {
        Some(regs) => regs as *const VcpuRegs,
        None => panic!("scheduler chose partition {next}, which does not exist"),
    }
}
