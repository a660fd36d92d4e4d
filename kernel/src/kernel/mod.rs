//! The portable heart of the kernel: it loads partitions from the boot package into frames
//! it hands out, binds them in stage 2, serves hypercalls and decides who runs next.
//!
//! Everything machine-specific reaches it through [`Platform`] (the union of the narrow
//! traits in [`crate::platform`]), so the whole of it runs in host tests against a fake
//! machine. The memory calls live in `memory`, revocation and
//! the abort protocol in `revocation`, upcalls in `upcall`, interrupts, signals, waiting and
//! donation in `interrupts`, protected control transfer in `ipc`, loading the boot package
//! in `load` and the invariant check in `check`.

mod check;
mod end;
mod interrupts;
mod ipc;
mod linux;
mod load;
mod load_error;
mod memory;
mod poison;
mod release;
mod revocation;
mod sched;
mod set_way;
mod share;
mod upcall;

#[cfg(test)]
mod tests;

pub use load_error::{LoadError, NamedLoadError};

use crate::console::Writer;
use crate::cpus::{CoreId, MAX_CORES};
use crate::irq::InterruptTable;
use crate::mem::binding_index::BindingIndex;
use crate::mem::frame_table::{FrameTable, Owner, PartitionId};
use crate::mem::grants::Grants;
use crate::mem::stage2::{Attributes, Geometry, Stage2, TableMemory};
use crate::partition::{Access, FaultKind, Outcome, Partition, State, TablePool};
use crate::platform::PhysicalMemory;
use crate::vcpu::VcpuRegs;
use exo_abi::call::*;
use exo_abi::info::MemoryKind;
use exo_abi::package::{DEFAULT_SLICE_US, MAX_PARTITIONS, PartitionRecord, RevocationShare};
use exo_abi::revocation::VECTOR_PAGES;
use exo_abi::{ABI_VERSION, Error, Ipa, PAGE_SIZE, PhysAddr};
use log::info;

/// The machine interface, re-exported where the kernel's users have always found it.
pub use crate::platform::{CpuInterface, GicFacts, Platform, SpiOp};
pub use check::CheckError;

/// Stage-2 table memory: frames from the partition's table pool.
struct Tables<'k, 'a, P> {
    platform: &'k mut P,
    frames: &'k mut FrameTable<'a>,
    pool: &'k mut TablePool,
}

impl<P: PhysicalMemory> Tables<'_, '_, P> {
    /// Adds a kernel-owned frame to the pool.
    fn donate(&mut self, frame: PhysAddr) {
        let next = self.pool.head.map_or(0, PhysAddr::raw);
        self.platform.zero_frame(frame);
        self.platform.write_u64(frame, next);
        self.pool.head = Some(frame);
        self.pool.spare += 1;
    }

    /// Takes a spare frame out of the pool, zeroed.
    fn take(&mut self) -> Option<PhysAddr> {
        let frame = self.pool.head?;
        let next = self.platform.read_u64(frame);
        self.pool.head = (next != 0).then_some(PhysAddr::new(next));
        self.pool.spare -= 1;
        self.platform.zero_frame(frame);
        Some(frame)
    }

    /// Returns every spare frame to the frame table.
    fn drain(&mut self) {
        while let Some(frame) = self.take() {
            if let Err(e) = self.frames.free(frame, Owner::Kernel) {
                log::error!("table pool frame {frame} could not be freed: {e:?}");
            }
        }
    }
}

impl<P: PhysicalMemory> TableMemory for Tables<'_, '_, P> {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        let frame = self.take()?;
        self.pool.in_use += 1;
        Some(frame)
    }

    fn free_table(&mut self, table: PhysAddr) {
        self.pool.in_use = self.pool.in_use.saturating_sub(1);
        self.donate(table);
    }

    fn read(&self, table: PhysAddr, index: usize) -> u64 {
        self.platform.read_u64(table.add(index as u64 * 8))
    }

    fn write(&mut self, table: PhysAddr, index: usize, value: u64) {
        self.platform.write_u64(table.add(index as u64 * 8), value);
    }
}

/// What the trap path should do after the kernel handled a trap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Return to the partition that trapped.
    Resume,
    /// Switch to another partition.
    Switch(PartitionId),
    /// Nobody can run now, but partitions wait for events: idle the CPU until an interrupt
    /// or, at the latest, the counter value given (a partition's virtual-timer deadline).
    Idle(Option<u64>),
    /// Every partition has finished: report and power off.
    PowerOff,
}

/// A stage-2 abort reported by the architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage2Abort {
    /// The faulting IPA.
    pub ipa: Ipa,
    /// Kind of access.
    pub access: Access,
    /// Why it failed, as far as the hardware says.
    pub kind: FaultKind,
}

/// Whether `ipa` lies in every partition's IPA space (the stage-2 geometry the kernel uses).
fn in_ipa_space(ipa: Ipa) -> bool {
    Geometry::default().contains(ipa)
}

/// Table frames every partition gets beyond those its memory needs: room for sparse
/// bindings (each new 2 MiB region of IPA space costs a table).
const BASE_TABLE_BUDGET: u64 = 32;

/// Kernel-owned pages of every partition: info page, revocation page, repossession vector.
const KERNEL_PAGES: u64 = 2 + VECTOR_PAGES as u64;

/// Stage-2 table frames set aside for a partition: tables for everything it may bind
/// contiguously (guarantee and borrow limit), twice over, plus [`BASE_TABLE_BUDGET`].
fn table_budget(record: &PartitionRecord<'_>) -> u64 {
    let reach = (record.guaranteed_bytes + record.borrow_bytes) / PAGE_SIZE;
    BASE_TABLE_BUDGET + 2 * reach.div_ceil(512)
}

/// Frames loading a partition takes from the free pool: its memory quota, its
/// [`KERNEL_PAGES`] and its [`table_budget`]. (`exo check` computes the same sum.)
fn frames_needed(record: &PartitionRecord<'_>) -> u64 {
    record.memory_bytes / PAGE_SIZE + KERNEL_PAGES + table_budget(record)
}

/// The kernel state.
pub struct Kernel<'a, P: Platform> {
    /// The machine.
    pub platform: P,
    frames: FrameTable<'a>,
    bound: BindingIndex<'a>,
    grants: Grants,
    partitions: [Option<Partition<P::Format>>; MAX_PARTITIONS],
    count: usize,
    irqs: InterruptTable,
    /// Each core's scheduler state: its running partition and time-slice vector.
    cores: [sched::CoreSchedule; MAX_CORES],
    /// The core the kernel acts for now ([`Kernel::enter`]).
    core: CoreId,
    /// That core's running partition: a copy of its `cores` entry's, kept in step, read
    /// directly on the trap path.
    current: PartitionId,
    /// Which cores are up, so that partitions may be pinned to them.
    cores_up: [bool; MAX_CORES],
    /// Length of a time slice in counter ticks (`[system] slice`).
    slice_ticks: u64,
    /// How a revocation request is shared among borrowers (`[system] revocation_share`).
    share: RevocationShare,
    /// Earliest revocation deadline, and a claimant's slot lent to a borrower.
    revocations: revocation::Revocations,
}

/// Microseconds, in ticks of a counter running at `frequency` Hz (at least one tick).
fn ticks_of_us(us: u64, frequency: u64) -> u64 {
    ((u128::from(us) * u128::from(frequency) / 1_000_000) as u64).max(1)
}

/// Result registers of a hypercall that returns.
type CallResult = Result<[u64; 4], Error>;

/// A single-value success.
fn value(x0: u64) -> CallResult {
    Ok([x0, 0, 0, 0])
}

impl<'a, P: Platform> Kernel<'a, P> {
    /// A kernel with no partitions yet. `bindings` has one slot per frame of `frames`.
    pub fn new(platform: P, frames: FrameTable<'a>, bindings: &'a mut [u64]) -> Self {
        let bound = BindingIndex::new(frames.base(), bindings);
        let frequency = platform.timer_frequency();
        Self {
            platform,
            frames,
            bound,
            grants: Grants::default(),
            partitions: core::array::from_fn(|_| None),
            count: 0,
            irqs: InterruptTable::new(),
            cores: [sched::CoreSchedule::EMPTY; MAX_CORES],
            core: CoreId::BOOT,
            current: PartitionId::FIRST,
            cores_up: core::array::from_fn(|i| i == CoreId::BOOT.index()),
            slice_ticks: ticks_of_us(DEFAULT_SLICE_US, frequency),
            share: RevocationShare::default(),
            revocations: revocation::Revocations::new(),
        }
    }

    /// Length of a time slice in counter ticks, as the package asked.
    pub fn slice_ticks(&self) -> u64 {
        self.slice_ticks
    }

    /// The frame table (read-only).
    pub fn frames(&self) -> &FrameTable<'a> {
        &self.frames
    }

    /// Number of partitions loaded.
    pub fn partition_count(&self) -> usize {
        self.count
    }

    /// Partition `id`, if it is loaded.
    pub fn partition(&self, id: PartitionId) -> Option<&Partition<P::Format>> {
        self.partitions.get(id.index())?.as_ref()
    }

    fn partition_mut(&mut self, id: PartitionId) -> Option<&mut Partition<P::Format>> {
        self.partitions.get_mut(id.index())?.as_mut()
    }

    /// The running partition of the core the kernel acts for.
    #[inline]
    pub fn current(&self) -> PartitionId {
        self.current
    }

    /// The saved registers of partition `id`.
    pub fn regs_mut(&mut self, id: PartitionId) -> Option<&mut VcpuRegs> {
        Some(&mut self.partition_mut(id)?.regs)
    }

    /// The partitions loaded, in index order.
    fn ids(&self) -> impl Iterator<Item = PartitionId> + use<P> {
        PartitionId::first(self.count)
    }

    /// The saved registers of the running partition. Inlined: every hypercall reads its
    /// arguments and writes its results through it.
    #[inline]
    pub fn current_regs_mut(&mut self) -> &mut VcpuRegs {
        let current = self.current();
        // `current` always names a loaded partition once `load` succeeded.
        match self
            .partitions
            .get_mut(current.index())
            .and_then(Option::as_mut)
        {
            Some(p) => &mut p.regs,
            None => no_partition(current),
        }
    }

    /// Runs `f` with partition `id`'s stage-2 tables and the table memory charged to it.
    fn with_stage2<R>(
        &mut self,
        id: PartitionId,
        f: impl FnOnce(&mut Stage2<P::Format>, &mut Tables<'_, 'a, P>, &mut P::Tlb) -> R,
    ) -> Option<R> {
        let Kernel {
            platform,
            frames,
            partitions,
            ..
        } = self;
        let partition = partitions.get_mut(id.index())?.as_mut()?;
        let Partition {
            stage2, table_pool, ..
        } = partition;
        let stage2 = stage2.as_mut()?;
        let mut tlb = platform.tlb();
        let mut tables = Tables {
            platform,
            frames,
            pool: table_pool,
        };
        Some(f(stage2, &mut tables, &mut tlb))
    }

    /// Translates an IPA of partition `id`, with the binding's attributes.
    fn translate(&mut self, id: PartitionId, ipa: Ipa) -> Option<(PhysAddr, Attributes)> {
        self.with_stage2(id, |stage2, tables, _| stage2.translate(tables, ipa))
            .flatten()
    }

    /// Serves a hypercall from the running partition. `function` is `w0`, `args` are
    /// `x1`..`x7`. Results are written into the partition's saved `x0`..`x3`.
    pub fn hypercall(&mut self, function: u32, args: [u64; 7]) -> Step {
        let current = self.current();
        if let Some(p) = self.partition_mut(current) {
            p.preempted = false;
        }
        if self.check_deadlines() {
            // The caller itself was terminated by the abort protocol.
            return self.schedule();
        }
        let caller = self.current();
        // Decoded once, through the ABI's description of every call; the match is exhaustive.
        let result: CallResult = match Call::try_from(function) {
            Ok(Call::SmcccVersion) => value(SMCCC_IMPLEMENTED_VERSION),
            Ok(Call::SmcccArchFeatures) => match args[0] as u32 {
                SMCCC_VERSION | SMCCC_ARCH_FEATURES => value(0),
                _ => Err(Error::NotSupported),
            },
            Ok(Call::PsciVersion) => value(PSCI_IMPLEMENTED_VERSION),
            Ok(Call::PsciFeatures) => match args[0] as u32 {
                // SMCCC_VERSION too: how a caller finds SMCCC 1.1 (SMCCC, "SMCCC_VERSION").
                PSCI_VERSION | PSCI_FEATURES | PSCI_CPU_OFF | PSCI_SYSTEM_OFF | SMCCC_VERSION => {
                    value(0)
                }
                _ => Err(Error::NotSupported),
            },
            Ok(Call::PsciSystemOff) => return self.finish_current(Outcome::SystemOff),
            Ok(Call::PsciCpuOff) => return self.finish_current(Outcome::CpuOff),
            Ok(Call::AbiVersion) => value(u64::from(ABI_VERSION)),
            Ok(Call::ConsoleWrite) => self
                .console_write(Ipa::new(args[0]), args[1])
                .map(|n| [n, 0, 0, 0]),
            Ok(Call::Yield) => {
                self.current_regs_mut().set_results([0; 4]);
                return self.schedule();
            }
            Ok(Call::Exit) => return self.finish_current(Outcome::Exited(args[0])),
            Ok(Call::FrameAlloc) => match self.frame_alloc(caller, args[0], Ipa::new(args[1])) {
                Ok(Some(count)) => value(count),
                Ok(None) => return self.lend_to_borrower(caller),
                Err(e) => Err(e),
            },
            Ok(Call::FrameAllocAt) => self
                .frame_alloc_at(caller, PhysAddr::new(args[0]))
                .map(|pa| [pa.raw(), 0, 0, 0]),
            Ok(Call::FrameFree) => self
                .frame_free(caller, PhysAddr::new(args[0]))
                .map(|()| [0; 4]),
            Ok(Call::Bind) => self
                .bind(caller, PhysAddr::new(args[0]), Ipa::new(args[1]), args[2])
                .map(|()| [0; 4]),
            Ok(Call::Unbind) => self
                .unbind(caller, Ipa::new(args[0]))
                .map(|pa| [pa.raw(), 0, 0, 0]),
            Ok(Call::Grant) => self
                .grant(caller, PhysAddr::new(args[0]), args[1], args[2])
                .map(|()| [0; 4]),
            Ok(Call::GrantRevoke) => self
                .grant_revoke(caller, PhysAddr::new(args[0]), args[1])
                .map(|()| [0; 4]),
            Ok(Call::GrantQuery) => self.grant_query(caller, args[0]),
            // A refused batch names its first bad entry in x1.
            Ok(Call::FrameRelease) => {
                match self.frame_release(caller, Ipa::new(args[0]), args[1]) {
                    Ok(registers) => Ok(registers),
                    Err((error, index)) => Ok([error.to_register(), index, 0, 0]),
                }
            }
            Ok(Call::SetLossOrder) => self
                .set_loss_order(caller, Ipa::new(args[0]))
                .map(|()| [0; 4]),
            Ok(Call::RevokeAck) => value(self.revoke_ack(caller)),
            Ok(Call::SetUpcall) => self
                .set_upcall(caller, Ipa::new(args[0]), args[1])
                .map(|()| [0; 4]),
            Ok(Call::UpcallReturn) => match self.upcall_return(caller, args[0] != 0) {
                Ok(()) => return Step::Resume,
                Err(e) => Err(e),
            },
            Ok(Call::MemInfo) => Ok(self.mem_info(caller)),
            Ok(Call::Call) => match self.call(caller, args[0]) {
                Ok(step) => return step,
                Err(e) => Err(e),
            },
            Ok(Call::Wait) => match self.wait(caller) {
                Ok(step) => return step,
                Err(e) => Err(e),
            },
            Ok(Call::ReplyWait) => match self.reply_wait(caller) {
                Ok(step) => return step,
                Err(e) => Err(e),
            },
            Ok(Call::Send) => self.send(caller, args[0], args[1]).map(|()| [0; 4]),
            Ok(Call::Receive) => self.receive(caller),
            Ok(Call::WaitEvent) => return self.wait_event(caller),
            Ok(Call::Donate) => match self.donate(caller, args[0]) {
                Ok(step) => return step,
                Err(e) => Err(e),
            },
            Ok(
                Call::IrqEnable
                | Call::IrqDisable
                | Call::IrqSetPriority
                | Call::IrqSetTarget
                | Call::IrqRaise,
            ) => self.irq_call(caller, function, args[0], args[1]),
            Ok(Call::PartitionLookup) => self.partition_lookup(caller, Ipa::new(args[0]), args[1]),
            Ok(Call::SelfCheck) if !self.may_self_check(caller) => Err(Error::Denied),
            Ok(Call::SelfCheck) => match self.self_check() {
                Ok(frames) => {
                    info!("self-check ok frames={frames}");
                    value(frames)
                }
                Err(e) => {
                    log::error!("self-check FAILED: {e}");
                    Err(Error::Denied)
                }
            },
            Err(unknown) => match self.linux_call(function, &args) {
                Some(step) => return step,
                None => Err(unknown),
            },
        };
        let registers = match result {
            Ok(registers) => registers,
            Err(error) => [error.to_register(), 0, 0, 0],
        };
        self.current_regs_mut().set_results(registers);
        // A call may have woken or finished partitions; the caller keeps the CPU, unless it
        // runs on a slot lent by a claimant its call just served.
        self.return_lent_slot().unwrap_or(Step::Resume)
    }

    /// Checks that `len` bytes at `ipa` are bound in partition `id` with `write` (or read)
    /// rights, as Normal memory over RAM. A device binding (an owned device's MMIO, the
    /// GICv2 `GICV` frame) is never a buffer: the kernel's byte-sized and unaligned copies
    /// would have side effects there (reading `GICV_IAR` acknowledges an interrupt) or raise
    /// an external abort at EL2.
    fn guest_access(
        &mut self,
        id: PartitionId,
        ipa: Ipa,
        len: u64,
        write: bool,
    ) -> Result<(), Error> {
        let end = ipa.checked_add(len).ok_or(Error::BadAddress)?;
        let mut page = ipa.page_base();
        while page < end {
            match self.translate(id, page) {
                Some((frame, a))
                    if ((write && a.write) || (!write && a.read))
                        && a.kind == MemoryKind::Normal
                        && self.frames.contains(frame) => {}
                _ => return Err(Error::BadAddress),
            }
            page = page.add(PAGE_SIZE);
        }
        Ok(())
    }

    /// Copies guest memory (already checked readable) into `buffer`.
    fn read_guest(&mut self, id: PartitionId, ipa: Ipa, buffer: &mut [u8]) -> Result<(), Error> {
        self.guest_access(id, ipa, buffer.len() as u64, false)?;
        let mut done = 0;
        while done < buffer.len() {
            let at = ipa.add(done as u64);
            let chunk = (buffer.len() - done).min((PAGE_SIZE - at.page_offset()) as usize);
            let (frame, _) = self.translate(id, at).ok_or(Error::BadAddress)?;
            self.platform
                .copy_from_phys(frame, &mut buffer[done..done + chunk]);
            done += chunk;
        }
        Ok(())
    }

    /// Copies `bytes` into guest memory (already checked writable).
    fn write_guest(&mut self, id: PartitionId, ipa: Ipa, bytes: &[u8]) -> Result<(), Error> {
        self.guest_access(id, ipa, bytes.len() as u64, true)?;
        let mut done = 0;
        while done < bytes.len() {
            let at = ipa.add(done as u64);
            let chunk = (bytes.len() - done).min((PAGE_SIZE - at.page_offset()) as usize);
            let (frame, _) = self.translate(id, at).ok_or(Error::BadAddress)?;
            self.platform
                .copy_to_phys(frame, &bytes[done..done + chunk]);
            done += chunk;
        }
        Ok(())
    }

    /// Writes `len` bytes of the running partition's memory at `ipa` to the console. The
    /// whole buffer is checked against stage 2 before a byte is written.
    fn console_write(&mut self, ipa: Ipa, len: u64) -> Result<u64, Error> {
        if len > CONSOLE_WRITE_MAX {
            return Err(Error::TooLarge);
        }
        let current = self.current();
        self.guest_access(current, ipa, len, false)?;
        let name = self.partitions[current.index()]
            .as_ref()
            .map(|p| p.name)
            .ok_or(Error::UnknownPartition)?;
        let mut buffer = [0u8; 256];
        let mut done = 0;
        while done < len {
            let chunk = (len - done).min(buffer.len() as u64) as usize;
            self.read_guest(current, ipa.add(done), &mut buffer[..chunk])?;
            self.platform
                .console_write(Writer::Partition(name.as_str()), &buffer[..chunk]);
            done += chunk as u64;
        }
        Ok(len)
    }

    /// `EXO_PARTITION_LOOKUP`.
    fn partition_lookup(&mut self, caller: PartitionId, ipa: Ipa, len: u64) -> CallResult {
        if len > exo_abi::Name::LEN as u64 {
            return Err(Error::TooLarge);
        }
        let mut name = [0u8; exo_abi::Name::LEN];
        let name = &mut name[..len as usize];
        self.read_guest(caller, ipa, name)?;
        self.partitions
            .iter()
            .flatten()
            .position(|p| p.name.as_str().as_bytes() == name)
            .map(|id| [id as u64, 0, 0, 0])
            .ok_or(Error::UnknownPartition)
    }

    /// A stage-2 abort in the running partition: reflected to its library OS when it asked
    /// for that and nothing is bound there; otherwise the partition is stopped.
    pub fn stage2_abort(&mut self, abort: Stage2Abort) -> Step {
        if self.check_deadlines() {
            return self.schedule();
        }
        let current = self.current();
        if abort.kind == FaultKind::Unbound && self.reflect_fault(current, abort) {
            return Step::Resume;
        }
        let outcome = Outcome::Stage2Fault {
            ipa: abort.ipa,
            access: abort.access,
            kind: abort.kind,
        };
        self.finish_current(outcome)
    }

    /// The running partition's time slice is over: deadlines are checked and the next
    /// runnable partition gets the CPU (the same one, if it is alone).
    pub fn preempt(&mut self) -> Step {
        let current = self.current();
        if let Some(p) = self.partition_mut(current)
            && p.state == State::Runnable
        {
            p.preempted = true;
        }
        self.check_deadlines();
        self.flush_revocation_log();
        self.schedule()
    }

    /// Whether partition `id`'s configuration lets it run the self-check, which keeps the
    /// kernel busy with interrupts masked for a scan of every frame and stage 2.
    fn may_self_check(&self, id: PartitionId) -> bool {
        self.partition(id).is_some_and(|p| {
            p.flags
                .contains(exo_abi::package::PartitionFlags::SELF_CHECK)
        })
    }

    /// Stops the running partition after a trap the kernel does not serve.
    pub fn unexpected_trap(&mut self, what: &'static str, syndrome: u64) -> Step {
        let pc = self.current_regs_mut().pc;
        self.finish_current(Outcome::UnexpectedTrap { what, syndrome, pc })
    }

    /// Ends the running partition, then picks who runs next.
    fn finish_current(&mut self, outcome: Outcome) -> Step {
        self.finish(self.current(), outcome);
        self.schedule()
    }

    /// Called by the trap path right before the current partition resumes: raises its
    /// signals, delivers a pending upcall if it can take one and moves queued interrupts
    /// into list registers. Inlined into the trap path, which mostly takes the first
    /// branch.
    #[inline]
    pub fn before_resume(&mut self) {
        // Most returns have nothing to tell and nothing queued: then raising signals and
        // delivering an upcall do nothing, and filling list registers only cancels the
        // maintenance interrupt.
        if self
            .partition(self.current())
            .is_some_and(|p| !p.any_news() && p.virq.queued.is_empty())
        {
            self.notify_on_underflow(false);
        } else {
            self.tell_and_fill();
        }
    }

    /// The return path with news held or interrupts queued (see `before_resume`).
    #[inline(never)]
    fn tell_and_fill(&mut self) {
        let current = self.current();
        self.raise_signals(current);
        self.deliver_upcall(current);
        self.fill_list_registers(current);
    }

    /// Logs one machine-readable result line per partition. Returns whether every
    /// partition succeeded.
    pub fn report(&self) -> bool {
        let mut all_ok = true;
        for partition in self.partitions.iter().flatten() {
            match partition.state {
                State::Finished(outcome) if outcome.is_success() => {
                    info!("result {} ok", partition.name)
                }
                State::Finished(outcome) => {
                    all_ok = false;
                    info!("result {} failed: {outcome}", partition.name);
                }
                State::Waiting => {
                    info!(
                        "partition {} idle: waiting for calls at power-off",
                        partition.name
                    );
                    info!("result {} ok", partition.name);
                }
                State::Runnable | State::Blocked | State::Calling { .. } | State::WaitingEvent => {
                    all_ok = false;
                    info!(
                        "result {} failed: still running at power-off",
                        partition.name
                    );
                }
            }
        }
        all_ok
    }
}

/// `current` named no loaded partition: a kernel bug (kept out of line, off the trap path).
#[cold]
#[inline(never)]
fn no_partition(current: PartitionId) -> ! {
    panic!("the current partition {current} does not exist")
}
