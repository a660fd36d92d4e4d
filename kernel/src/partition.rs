//! A partition: one library OS, its vCPU, its stage-2 tables and how it ended.

use crate::mem::frame_table::PartitionId;
use crate::mem::stage2::{DescriptorFormat, Stage2, Vmid};
use crate::vcpu::VcpuRegs;
use core::fmt;
use exo_abi::{Ipa, Name, call::EXIT_STATUS_PANIC};

/// How a stage-2 fault's access was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A data read.
    Read,
    /// A data write.
    Write,
    /// An instruction fetch.
    Execute,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Execute => "execute",
        })
    }
}

/// Why stage 2 refused an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Nothing is bound at that IPA.
    Unbound,
    /// Bound, but without the right for this access.
    Permission,
    /// Any other stage-2 abort (address size, access flag, external).
    Other,
}

/// The end of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `EXO_EXIT(status)`.
    Exited(u64),
    /// PSCI `SYSTEM_OFF` from the partition: it is done.
    SystemOff,
    /// PSCI `CPU_OFF` of its only vCPU.
    CpuOff,
    /// Stopped by the kernel after a stage-2 fault.
    Stage2Fault {
        /// Faulting IPA.
        ipa: Ipa,
        /// What the access was.
        access: Access,
        /// Why it failed.
        kind: FaultKind,
    },
    /// Stopped by the kernel after a trap it does not serve.
    UnexpectedTrap {
        /// What trapped (exception class name).
        what: &'static str,
        /// Raw syndrome.
        syndrome: u64,
        /// Where.
        pc: u64,
    },
}

impl Outcome {
    /// Whether this counts as success.
    pub fn is_success(&self) -> bool {
        matches!(
            self,
            Outcome::Exited(0) | Outcome::SystemOff | Outcome::CpuOff
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Outcome::Exited(0) => f.write_str("exit status 0"),
            Outcome::Exited(EXIT_STATUS_PANIC) => {
                write!(f, "panicked (exit status {EXIT_STATUS_PANIC})")
            }
            Outcome::Exited(status) => write!(f, "exit status {status}"),
            Outcome::SystemOff => f.write_str("PSCI SYSTEM_OFF"),
            Outcome::CpuOff => f.write_str("PSCI CPU_OFF"),
            Outcome::Stage2Fault { ipa, access, kind } => write!(
                f,
                "stage-2 fault: {access} at IPA {ipa} ({})",
                match kind {
                    FaultKind::Unbound => "no binding",
                    FaultKind::Permission => "not permitted by the binding",
                    FaultKind::Other => "abort",
                }
            ),
            Outcome::UnexpectedTrap { what, syndrome, pc } => {
                write!(
                    f,
                    "unexpected trap: {what} (syndrome {syndrome:#x}) at {pc:#x}"
                )
            }
        }
    }
}

/// Whether a partition can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Ready to run (or running).
    Runnable,
    /// Finished; its frames have been scrubbed and returned.
    Finished(Outcome),
}

/// One partition.
pub struct Partition<F: DescriptorFormat> {
    /// Identifier: index in the configuration.
    pub id: PartitionId,
    /// Name from the configuration.
    pub name: Name,
    /// Its stage-2 VMID.
    pub vmid: Vmid,
    /// Saved registers of its single vCPU.
    pub regs: VcpuRegs,
    /// Its stage-2 tables; `None` once torn down.
    pub stage2: Option<Stage2<F>>,
    /// Run state.
    pub state: State,
    /// First IPA of its RAM.
    pub ram_base: Ipa,
    /// Quota in bytes.
    pub ram_bytes: u64,
    /// The kernel-owned frame holding its info page.
    pub info_frame: exo_abi::PhysAddr,
}
