//! From a guest trap to a kernel decision and back: decodes the syndrome, asks the portable
//! kernel what to do, and performs the world switch it chooses.

use super::esr::{Esr, FaultStatus, class};
use super::exceptions::ExceptionKind;
use super::platform::Aarch64Platform;
use crate::kernel::{Kernel, Stage2Abort, Step};
use crate::partition::{Access, FaultKind};
use crate::vcpu::VcpuRegs;
use aarch64_cpu::registers::{FAR_EL2, HPFAR_EL2, Readable};
use exo_abi::Ipa;

/// The running kernel, set up once by `start`.
pub static KERNEL: spin::Mutex<Option<Kernel<'static, Aarch64Platform>>> = spin::Mutex::new(None);

/// A trap as the hardware reported it.
pub struct Trap {
    kind: ExceptionKind,
    esr: Esr,
    far: u64,
    hpfar: u64,
}

impl Trap {
    /// Reads the fault address registers that go with `esr`.
    pub fn capture(kind: ExceptionKind, esr: Esr) -> Self {
        Self {
            kind,
            esr,
            far: FAR_EL2.get(),
            hpfar: HPFAR_EL2.get(),
        }
    }

    /// For a stage-2 abort: the faulting IPA. HPFAR_EL2.FIPA (bits [43:4], D24.2.53) holds
    /// IPA[51:12]; the page offset comes from FAR_EL2.
    fn faulting_ipa(&self) -> Ipa {
        Ipa::new(((self.hpfar >> 4) << 12) | (self.far & 0xFFF))
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
}

/// Handles a trap from the running partition; returns the registers to resume.
pub fn handle(_saved: *mut VcpuRegs, trap: Trap) -> *const VcpuRegs {
    let mut guard = KERNEL.lock();
    let Some(kernel) = guard.as_mut() else {
        panic!(
            "guest trap before the kernel was initialised: {:?}",
            trap.esr
        );
    };
    let before = kernel.current();
    let step = match (trap.kind, trap.esr.class()) {
        (ExceptionKind::Synchronous, class::HVC64) => hypercall(kernel),
        (ExceptionKind::Synchronous, class::SMC64) => {
            // A trapped SMC reports the SMC itself in ELR_EL2 (D1.11.x): step over it.
            kernel.current_regs_mut().pc += 4;
            hypercall(kernel)
        }
        (ExceptionKind::Synchronous, class::DABT_LOWER | class::IABT_LOWER) => {
            kernel.stage2_abort(trap.stage2_abort())
        }
        (ExceptionKind::Irq, _) => match super::gic::acknowledge() {
            Some(intid) if intid == super::gic::HYP_TIMER => {
                // The running partition's time slice is over.
                super::el2::arm_hyp_timer(super::start::slice_ticks());
                super::gic::end(intid);
                kernel.preempt()
            }
            Some(intid) if intid == super::gic::VTIMER => {
                // The running partition's own virtual timer: pass it through, no kernel
                // work. With every list register busy it is ended here and the timer,
                // level-sensitive, fires again once the partition makes room.
                if !super::gic::pass_through(intid) {
                    super::gic::end(intid);
                }
                Step::Resume
            }
            Some(intid) => {
                // Nothing else is enabled; end it so it cannot wedge the CPU interface.
                super::gic::end(intid);
                Step::Resume
            }
            None => Step::Resume,
        },
        (ExceptionKind::Fiq, _) => Step::Resume,
        (ExceptionKind::SError, _) => {
            kernel.unexpected_trap("SError or AArch32 exception", trap.esr.raw())
        }
        _ => kernel.unexpected_trap(trap.esr.class_name(), trap.esr.raw()),
    };
    match step {
        Step::Resume => {
            kernel.before_resume();
            kernel.current_regs_mut() as *const VcpuRegs
        }
        Step::Switch(next) => {
            let keep_previous = kernel.partition(before).is_some_and(|p| p.stage2.is_some());
            kernel.before_resume();
            switch_to(kernel, keep_previous.then_some(before), next)
        }
        Step::PowerOff => {
            kernel.report();
            log::info!("all partitions finished, powering off");
            drop(guard);
            super::el2::system_off()
        }
    }
}

/// Decodes SMCCC arguments from the saved registers and serves the call.
fn hypercall(kernel: &mut Kernel<'static, Aarch64Platform>) -> Step {
    let regs = kernel.current_regs_mut();
    let function = regs.x[0] as u32;
    let mut args = [0; 7];
    args.copy_from_slice(&regs.x[1..8]);
    kernel.hypercall(function, args)
}

/// Loads partition `next`'s EL1 state and stage 2; returns its registers.
pub fn switch_to(
    kernel: &mut Kernel<'static, Aarch64Platform>,
    previous: Option<usize>,
    next: usize,
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
