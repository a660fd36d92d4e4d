//! The kernel's side of a Linux partition (`PartitionFlags::LINUX`): its distributor view
//! at load, its trapped distributor accesses through [`crate::gicd_filter`], its trapped
//! system registers through [`crate::linux`], and the SGIs it sends itself.

use super::{Kernel, Platform, SpiOp, Step};
use crate::gicd_filter::{
    Access, DistributorRegisters, DistributorView, GicVersion, Outcome, SgiTargets,
};
use crate::linux::{Encoding, SystemRegisterAction};
use crate::partition::Outcome as End;
use crate::platform::CpuInterface;
use exo_abi::call::PSCI_SYSTEM_RESET;
use exo_abi::package::{PartitionFlags, PartitionRecord};
use smccc::psci::error::{ALREADY_ON, INVALID_PARAMETERS};
use smccc::psci::{PSCI_AFFINITY_INFO_32, PSCI_AFFINITY_INFO_64, PSCI_CPU_ON_32, PSCI_CPU_ON_64};

/// First `GICD_ISENABLER` and `GICD_ICENABLER`, and the end of the latter (one bank each).
const ISENABLER: u32 = 0x100;
const ICENABLER: u32 = 0x180;
const ICENABLER_END: u32 = 0x200;

/// The distributor view of a Linux partition loaded from `record`, or `None` for a library
/// OS (or a machine without a GIC interface for partitions).
pub(super) fn distributor_view(
    record: &PartitionRecord<'_>,
    interface: CpuInterface,
) -> Option<DistributorView> {
    if !record.flags.contains(PartitionFlags::LINUX) {
        return None;
    }
    let version = match interface {
        CpuInterface::SystemRegisters => GicVersion::V3,
        CpuInterface::Mapped { .. } => GicVersion::V2,
        CpuInterface::None => return None,
    };
    Some(DistributorView::new(version, 1))
}

impl<P: Platform> Kernel<'_, P> {
    /// Whether the running partition runs Linux.
    pub fn current_is_linux(&self) -> bool {
        self.partition(self.current)
            .is_some_and(|p| p.flags.contains(PartitionFlags::LINUX))
    }

    /// A call no library OS may make that a Linux partition may (`args` from `x1`): PSCI
    /// `SYSTEM_RESET` (its `reboot`), which ends it, as exo restarts no partition; and
    /// `CPU_ON` and `AFFINITY_INFO` over its vCPUs. `None` otherwise (the caller answers
    /// `NOT_SUPPORTED`). Out of line and cold, off the hypercall path.
    #[cold]
    #[inline(never)]
    pub(super) fn linux_call(&mut self, function: u32, args: &[u64]) -> Option<Step> {
        if !self.current_is_linux() {
            return None;
        }
        let result = match function {
            PSCI_SYSTEM_RESET => return Some(self.finish_current(End::SystemReset)),
            PSCI_CPU_ON_32 | PSCI_CPU_ON_64 => psci_cpu_on(args.first().copied()?),
            PSCI_AFFINITY_INFO_32 | PSCI_AFFINITY_INFO_64 => {
                psci_affinity_info(args.first().copied()?, args.get(1).copied()?)
            }
            _ => return None,
        };
        self.current_regs_mut()
            .set_results([result as u64, 0, 0, 0]);
        Some(self.return_lent_slot().unwrap_or(Step::Resume))
    }

    /// Serves a trapped access of the running Linux partition to the distributor (`gicd`
    /// the real registers); returns the value a read gives. `None` if the running partition
    /// has no distributor view (not Linux): the caller stops it as for any stage-2 fault.
    pub fn linux_distributor(
        &mut self,
        access: Access,
        gicd: &mut dyn DistributorRegisters,
    ) -> Option<u64> {
        let Kernel {
            partitions,
            irqs,
            current,
            ..
        } = self;
        let current = *current;
        let view = partitions
            .get_mut(current.index())?
            .as_mut()?
            .gicd
            .as_mut()?;
        let owns = |intid| irqs.owner(intid) == Some(current);
        let outcome = view.access(access, &owns, gicd);
        log::trace!("gicd {access:?}: {outcome:?}");
        match outcome {
            Outcome::Read(value) => return Some(value),
            Outcome::Written { offset, mask } if (ISENABLER..ICENABLER_END).contains(&offset) => {
                self.follow_enables(offset, mask);
            }
            Outcome::Sgi {
                id,
                targets: SgiTargets::List(vcpus),
            } if vcpus & 1 != 0 => self.linux_self_sgi(id),
            Outcome::Sgi {
                id,
                targets: SgiTargets::Sender,
            } => self.linux_self_sgi(id),
            _ => {}
        }
        Some(0)
    }

    /// Its own SPIs the partition enabled or disabled through the distributor: the kernel
    /// sets them up as for `EXO_IRQ_ENABLE` (its priority, group and route to this core,
    /// which the filter never lets a partition write) and records the state.
    fn follow_enables(&mut self, offset: u32, mask: u32) {
        let enable = offset < ICENABLER;
        let first = (offset & 0x7f) / 4 * 32;
        for bit in (0..32).filter(|bit| mask & (1 << bit) != 0) {
            let intid = first + bit;
            self.irqs.set_enabled(intid, enable);
            if enable {
                self.platform.spi(intid, SpiOp::Enable);
            }
        }
    }

    /// Serves a trapped system-register access of the running Linux partition: `Some` with
    /// the value an `MRS` reads (0 for an `MSR`), `None` when the kernel does not serve it.
    pub fn linux_system_register(
        &mut self,
        encoding: Encoding,
        read: bool,
        value: u64,
    ) -> Option<u64> {
        if !self.current_is_linux() {
            return None;
        }
        match crate::linux::system_register(encoding, read, value) {
            SystemRegisterAction::ReadAsZero => Some(0),
            SystemRegisterAction::Sgi { intid, to_self } => {
                if to_self {
                    self.linux_self_sgi(intid);
                }
                Some(0)
            }
            SystemRegisterAction::Unhandled => None,
        }
    }

    /// SGI `intid` to the running partition's own vCPU: a virtual interrupt.
    fn linux_self_sgi(&mut self, intid: u8) {
        let current = self.current;
        if let Some(p) = self.partition_mut(current) {
            p.virq.queue(u32::from(intid), false);
        }
    }
}

/// The affinity fields of an MPIDR value (Aff3 in bits 39:32, Aff2-Aff0 in 23:0; Arm ARM
/// D23.2 `MPIDR_EL1`), the only bits PSCI compares.
const AFFINITY: u64 = 0xFF_00FF_FFFF;

/// PSCI `AFFINITY_INFO` state `ON` (PSCI, Arm DEN0022, "AFFINITY_INFO").
const AFFINITY_ON: i32 = 0;

/// PSCI `CPU_ON` for a Linux partition, whose one vCPU reads affinity 0 in `MPIDR_EL1`
/// (`VMPIDR_EL2`) and is the one calling: `ALREADY_ON` for it, `INVALID_PARAMETERS` for any
/// other (it has no other vCPU to start).
fn psci_cpu_on(target: u64) -> i32 {
    if target & AFFINITY == 0 {
        ALREADY_ON
    } else {
        INVALID_PARAMETERS
    }
}

/// PSCI `AFFINITY_INFO` for a Linux partition's one vCPU: `ON` for affinity 0 at level 0,
/// `INVALID_PARAMETERS` for any other affinity or level (PSCI 1.1 allows only level 0 for
/// a caller that does not use OS-initiated mode).
fn psci_affinity_info(target: u64, level: u64) -> i32 {
    if target & AFFINITY == 0 && level == 0 {
        AFFINITY_ON
    } else {
        INVALID_PARAMETERS
    }
}
