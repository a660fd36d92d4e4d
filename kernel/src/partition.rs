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
    /// PSCI `SYSTEM_RESET` from a Linux partition (`reboot`): it ends, as exo does not
    /// restart partitions.
    SystemReset,
    /// Stopped by the kernel after a stage-2 fault.
    Stage2Fault {
        /// Faulting IPA.
        ipa: Ipa,
        /// What the access was.
        access: Access,
        /// Why it failed.
        kind: FaultKind,
    },
    /// Terminated by the abort protocol: it missed more revocation deadlines than allowed.
    Terminated {
        /// Aborts suffered.
        aborts: u32,
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
            Outcome::Exited(0) | Outcome::SystemOff | Outcome::CpuOff | Outcome::SystemReset
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
            Outcome::SystemReset => f.write_str("PSCI SYSTEM_RESET (ended, not restarted)"),
            Outcome::Stage2Fault { ipa, access, kind } => write!(
                f,
                "stage-2 fault: {access} at IPA {ipa} ({})",
                match kind {
                    FaultKind::Unbound => "no binding",
                    FaultKind::Permission => "not permitted by the binding",
                    FaultKind::Other => "abort",
                }
            ),
            Outcome::Terminated { aborts } => write!(f, "terminated after {aborts} aborts"),
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
    /// Waiting in `EXO_FRAME_ALLOC` for revoked frames.
    Blocked,
    /// Waiting in `EXO_WAIT` / `EXO_REPLY_WAIT` for a call.
    Waiting,
    /// Waiting in `EXO_WAIT_EVENT` for a virtual interrupt (or its virtual timer).
    WaitingEvent,
    /// In `EXO_CALL` to `callee`: queued until the callee takes the call (`accepted`), then
    /// until it replies.
    Calling {
        /// The partition called.
        callee: PartitionId,
        /// Whether the callee has taken the call.
        accepted: bool,
    },
    /// Finished; its frames have been scrubbed and returned.
    Finished(Outcome),
}

/// What the configuration promised a partition about memory, in frames and ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryTerms {
    /// Frames it may hold that are never revoked.
    pub guaranteed: u64,
    /// Frames it may hold beyond the guarantee (borrowed, revocable).
    pub borrow_limit: u64,
    /// Time it has to answer a revocation request, in counter ticks.
    pub deadline_ticks: u64,
    /// Aborts it may suffer before it is terminated.
    pub max_aborts: u32,
}

/// A revocation request outstanding against a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// Sequence number (per partition, from 1).
    pub sequence: u64,
    /// Frames asked for.
    pub asked: u64,
    /// Frames still owed.
    pub owed: u64,
    /// Frames the library OS gave back for it.
    pub released: u64,
    /// When it was issued (ticks).
    pub issued_at: u64,
    /// When the kernel takes what is still owed (ticks).
    pub deadline: u64,
}

/// An `EXO_FRAME_ALLOC` waiting for revoked frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingAlloc {
    /// Frames asked for.
    pub count: u64,
    /// Where their addresses go.
    pub buffer: Ipa,
}

/// A partition's upcall registration and the upcalls waiting for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Upcalls {
    /// Entry point, if registered.
    pub entry: Option<Ipa>,
    /// Reflect stage-2 faults on unbound IPAs to the upcall.
    pub reflect_faults: bool,
    /// The interrupted context while an upcall runs.
    pub saved: Option<VcpuRegs>,
    /// A revocation request to announce (its sequence).
    pub revocation: Option<u64>,
    /// Repossessions to announce (the vector's total).
    pub repossession: Option<u64>,
}

/// Frames reserved at load for one partition's stage-2 tables, kept as a list threaded
/// through the spare frames' first word. Binding never takes a table frame from the free
/// pool, so it neither competes with claimants for free frames nor lets a partition spend
/// more kernel memory than its budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TablePool {
    /// First spare frame.
    pub head: Option<exo_abi::PhysAddr>,
    /// Spare frames.
    pub spare: u64,
    /// Frames holding tables now.
    pub in_use: u64,
}

impl TablePool {
    /// Frames reserved in all.
    pub fn reserved(&self) -> u64 {
        self.spare + self.in_use
    }
}

/// The frames holding a partition's kernel pages (kernel-owned, bound read-only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelPages {
    /// The info page.
    pub info: exo_abi::PhysAddr,
    /// The revocation page.
    pub revocation: exo_abi::PhysAddr,
    /// The repossession vector's pages.
    pub vector: [exo_abi::PhysAddr; exo_abi::revocation::VECTOR_PAGES],
}

impl KernelPages {
    /// Every frame with the IPA it is bound at.
    pub fn bindings(&self) -> impl Iterator<Item = (Ipa, exo_abi::PhysAddr)> + '_ {
        use exo_abi::info::{INFO_PAGE_IPA, REPOSSESSION_VECTOR_IPA, REVOCATION_PAGE_IPA};
        [
            (INFO_PAGE_IPA, self.info),
            (REVOCATION_PAGE_IPA, self.revocation),
        ]
        .into_iter()
        .chain(self.vector.iter().enumerate().map(|(i, &f)| {
            (
                REPOSSESSION_VECTOR_IPA.add(i as u64 * exo_abi::PAGE_SIZE),
                f,
            )
        }))
    }
}

/// One partition.
pub struct Partition<F: DescriptorFormat> {
    /// Identifier: index in the configuration.
    pub id: PartitionId,
    /// Name from the configuration.
    pub name: Name,
    /// Its stage-2 VMID.
    pub vmid: Vmid,
    /// The core it runs on, and no other.
    pub core: crate::cpus::CoreId,
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
    /// Its kernel pages.
    pub kernel_pages: KernelPages,
    /// Memory promises.
    pub terms: MemoryTerms,
    /// Aborts suffered so far.
    pub aborts: u32,
    /// The last revocation request's sequence number.
    pub last_sequence: u64,
    /// The outstanding revocation request, if any.
    pub revocation: Option<Revocation>,
    /// Where it publishes the order in which it would rather lose frames to the abort
    /// protocol (`EXO_SET_LOSS_ORDER`), an IPA translated again at each abort.
    pub loss_order: Option<Ipa>,
    /// The allocation it waits in, when blocked.
    pub pending_alloc: Option<PendingAlloc>,
    /// Upcall state.
    pub upcalls: Upcalls,
    /// Kernel frames set aside at load for its stage-2 tables.
    pub table_pool: TablePool,
    /// It lost the CPU to the end of its time slice, not in a hypercall: upcalls wait
    /// until its next hypercall, so they never land in the middle of library-OS code.
    pub preempted: bool,
    /// Its memory was cleaned to the point of coherency for a set/way operation since it
    /// was last scheduled: further ones until then do nothing.
    pub set_way_cleaned: bool,
    /// Partitions it may call or send to (bit `i`: partition `i`).
    pub talks_to: u64,
    /// What its configuration allows it beyond its own resources.
    pub flags: exo_abi::package::PartitionFlags,
    /// The caller whose call it is serving.
    pub serving: Option<PartitionId>,
    /// An undelivered `EXO_SEND` message: (sender, word).
    pub message: Option<(PartitionId, u64)>,
    /// Its virtual interrupts waiting for a list register, and signal settings.
    pub virq: crate::irq::VcpuInterrupts,
    /// Device MMIO it owns, bound for its lifetime (the configuration's regions and, on
    /// GICv2, the virtual CPU interface).
    pub devices: DeviceWindows,
    /// A Linux partition's view of the GIC distributor, whose accesses trap
    /// ([`crate::gicd_filter`]); `None` for a library OS.
    pub gicd: Option<crate::gicd_filter::DistributorView>,
}

/// The IPA ranges of a partition's device bindings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceWindows {
    windows: [(u64, u64); exo_abi::package::MAX_DEVICES + 1],
    count: usize,
}

impl DeviceWindows {
    /// Records `pages` pages of device memory bound at `ipa`, mapping `phys`.
    pub fn push(&mut self, ipa: Ipa, pages: u64) -> bool {
        let Some(slot) = self.windows.get_mut(self.count) else {
            return false;
        };
        *slot = (ipa.raw(), pages * exo_abi::PAGE_SIZE);
        self.count += 1;
        true
    }

    /// Whether `ipa` lies in a device binding.
    pub fn contains(&self, ipa: Ipa) -> bool {
        self.windows[..self.count]
            .iter()
            .any(|&(base, size)| ipa.raw() >= base && ipa.raw() - base < size)
    }
}

impl<F: DescriptorFormat> Partition<F> {
    /// Whether an IPA lies in the RAM bound at boot.
    pub fn in_boot_ram(&self, ipa: Ipa) -> bool {
        ipa >= self.ram_base && ipa.raw() < self.ram_base.raw() + self.ram_bytes
    }

    /// Whether kernel news of the kind `signal` names (`exo_abi::call::signal`: a revocation
    /// request, repossessions, a message) waits to be told to the library OS. A message
    /// already raised as its signal waits for `EXO_RECEIVE`, not to be told again.
    pub fn news_waiting(&self, signal: u32) -> bool {
        use exo_abi::call::signal::{MESSAGE, REPOSSESSION, REVOCATION};
        match signal {
            REVOCATION => self.upcalls.revocation.is_some(),
            REPOSSESSION => self.upcalls.repossession.is_some(),
            MESSAGE => self.message.is_some() && !self.virq.message_signalled,
            _ => false,
        }
    }

    /// Whether any kernel news is held for the library OS at all (told or not): the cheap
    /// test every return to a partition makes first.
    pub fn any_news(&self) -> bool {
        self.upcalls.revocation.is_some()
            || self.upcalls.repossession.is_some()
            || self.message.is_some()
    }

    /// How news of kind `signal` is told: as its virtual interrupt if the library OS enabled
    /// it, otherwise as an upcall. Every path that tells news, or asks whether there is
    /// news to tell, decides through this.
    pub fn news_by_signal(&self, signal: u32) -> bool {
        self.virq.signals_enabled.contains(signal)
    }
}
