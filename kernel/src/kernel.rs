//! The portable heart of the kernel: it loads partitions from the boot package into frames
//! it hands out, binds them in stage 2, serves hypercalls and decides who runs next.
//!
//! Everything machine-specific reaches it through [`Platform`], so the whole of it runs in
//! host tests against a fake machine.

use crate::console::Writer;
use crate::mem::frame_table::{FrameError, FrameTable, Owner, PartitionId};
use crate::mem::stage2::{
    Attributes, DescriptorFormat, Geometry, Stage2, Stage2Error, TableMemory, TlbMaintenance, Vmid,
};
use crate::partition::{Access, FaultKind, Outcome, Partition, State};
use crate::vcpu::VcpuRegs;
use exo_abi::call::*;
use exo_abi::info::{self, InfoHeader, InfoWriter, MemoryBinding, MemoryKind};
use exo_abi::package::{MAX_PARTITIONS, Package, PartitionRecord};
use exo_abi::{ABI_VERSION, Error, Ipa, PAGE_SIZE, PhysAddr};
use log::{info, warn};

/// What the kernel needs from the machine.
pub trait Platform {
    /// Stage-2 descriptor encoding.
    type Format: DescriptorFormat;
    /// Reads a 64-bit word of physical memory.
    fn read_u64(&self, pa: PhysAddr) -> u64;
    /// Writes a 64-bit word of physical memory.
    fn write_u64(&mut self, pa: PhysAddr, value: u64);
    /// Fills a frame with zeroes.
    fn zero_frame(&mut self, frame: PhysAddr);
    /// Copies bytes into physical memory (within one frame).
    fn copy_to_phys(&mut self, pa: PhysAddr, bytes: &[u8]);
    /// Copies bytes out of physical memory (within one frame).
    fn copy_from_phys(&self, pa: PhysAddr, buffer: &mut [u8]);
    /// Stage-2 TLB maintenance.
    type Tlb: TlbMaintenance;
    /// A handle for stage-2 TLB maintenance.
    fn tlb(&self) -> Self::Tlb;
    /// Writes to the system console.
    fn console_write(&mut self, who: Writer<'_>, bytes: &[u8]);
    /// Counter-timer frequency in Hz.
    fn timer_frequency(&self) -> u64;
    /// Processor state a vCPU starts in (EL1 with interrupts masked).
    fn initial_pstate(&self) -> u64;
}

/// Stage-2 table memory backed by kernel-owned frames from the frame table.
struct Tables<'k, 'a, P> {
    platform: &'k mut P,
    frames: &'k mut FrameTable<'a>,
}

impl<P: Platform> TableMemory for Tables<'_, '_, P> {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        let frame = self.frames.alloc(Owner::Kernel).ok()?;
        self.platform.zero_frame(frame);
        Some(frame)
    }

    fn free_table(&mut self, table: PhysAddr) {
        self.platform.zero_frame(table);
        // A table frame the kernel allocated is kernel-owned; anything else is a kernel bug
        // that must not hand the frame on.
        if let Err(e) = self.frames.free(table, Owner::Kernel) {
            log::error!("stage-2 table frame {table} could not be freed: {e:?}");
        }
    }

    fn read(&self, table: PhysAddr, index: usize) -> u64 {
        self.platform.read_u64(table.add(index as u64 * 8))
    }

    fn write(&mut self, table: PhysAddr, index: usize, value: u64) {
        self.platform.write_u64(table.add(index as u64 * 8), value);
    }
}

/// Why the boot package could not be turned into running partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// Not enough free frames for a partition's quota.
    OutOfMemory {
        /// Index of the partition.
        partition: usize,
    },
    /// Building stage 2 failed.
    Stage2(Stage2Error),
    /// The frame table refused a transition.
    Frame(FrameError),
    /// More partitions than the frame table can name.
    TooManyPartitions,
}

impl From<Stage2Error> for LoadError {
    fn from(e: Stage2Error) -> Self {
        LoadError::Stage2(e)
    }
}

impl From<FrameError> for LoadError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Exhausted => LoadError::OutOfMemory {
                partition: usize::MAX,
            },
            other => LoadError::Frame(other),
        }
    }
}

/// What the trap path should do after the kernel handled a trap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Return to the partition that trapped.
    Resume,
    /// Switch to another partition (index).
    Switch(usize),
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

/// The kernel state.
pub struct Kernel<'a, P: Platform> {
    /// The machine.
    pub platform: P,
    frames: FrameTable<'a>,
    partitions: [Option<Partition<P::Format>>; MAX_PARTITIONS],
    count: usize,
    current: usize,
}

impl<'a, P: Platform> Kernel<'a, P> {
    /// A kernel with no partitions yet.
    pub fn new(platform: P, frames: FrameTable<'a>) -> Self {
        Self {
            platform,
            frames,
            partitions: core::array::from_fn(|_| None),
            count: 0,
            current: 0,
        }
    }

    /// The frame table (read-only).
    pub fn frames(&self) -> &FrameTable<'a> {
        &self.frames
    }

    /// Number of partitions loaded.
    pub fn partition_count(&self) -> usize {
        self.count
    }

    /// A partition by index.
    pub fn partition(&self, index: usize) -> Option<&Partition<P::Format>> {
        self.partitions.get(index)?.as_ref()
    }

    /// Index of the running partition.
    pub fn current(&self) -> usize {
        self.current
    }

    /// The saved registers of a partition.
    pub fn regs_mut(&mut self, index: usize) -> Option<&mut VcpuRegs> {
        Some(&mut self.partitions.get_mut(index)?.as_mut()?.regs)
    }

    /// The saved registers of the running partition.
    pub fn current_regs_mut(&mut self) -> &mut VcpuRegs {
        let current = self.current;
        // `current` always names a loaded partition once `load` succeeded.
        &mut self.partitions[current]
            .as_mut()
            .expect("current partition exists")
            .regs
    }

    /// Loads every partition of the boot package: frames for its quota, scrubbed; program
    /// segments copied in; stage-2 bindings with the segments' rights; the info page.
    pub fn load(&mut self, package: &Package<'_>) -> Result<(), LoadError> {
        for (index, record) in package.partitions().enumerate() {
            let partition = self.load_partition(index, &record).map_err(|e| match e {
                LoadError::OutOfMemory { .. } => LoadError::OutOfMemory { partition: index },
                other => other,
            })?;
            info!(
                "partition {} loaded: {} KiB at IPA {}, entry {}, VMID {}",
                partition.name,
                partition.ram_bytes / 1024,
                partition.ram_base,
                Ipa::new(partition.regs.pc),
                partition.vmid.0,
            );
            self.partitions[index] = Some(partition);
            self.count = index + 1;
        }
        Ok(())
    }

    fn load_partition(
        &mut self,
        index: usize,
        record: &PartitionRecord<'_>,
    ) -> Result<Partition<P::Format>, LoadError> {
        let id = PartitionId::new(index as u16).ok_or(LoadError::TooManyPartitions)?;
        let owner = Owner::Partition(id);
        let pages = record.memory_bytes / PAGE_SIZE;
        if (self.frames.count(Owner::Free) as u64) < pages + 1 {
            return Err(LoadError::OutOfMemory { partition: index });
        }
        let vmid = Vmid(index as u16 + 1);
        let mut tables = Tables {
            platform: &mut self.platform,
            frames: &mut self.frames,
        };
        let mut stage2 = Stage2::<P::Format>::new(&mut tables, vmid, Geometry::default())?;

        let header = InfoHeader {
            abi_version: ABI_VERSION,
            partition_id: index as u32,
            name: record.name,
            timer_frequency: tables.platform.timer_frequency(),
        };
        let mut info_page = [0u8; info::SIZE];
        let mut info_writer = InfoWriter::new(&mut info_page, &header);
        let mut run: Option<MemoryBinding> = None;

        for page in 0..pages {
            let ipa = record.ram_base.add(page * PAGE_SIZE);
            let frame = tables.frames.alloc(owner)?;
            tables.platform.zero_frame(frame);
            let mut rights = 0;
            for segment in record.segments() {
                let seg_end = segment.ipa.raw() + segment.mem_size;
                if segment.ipa.raw() >= ipa.raw() + PAGE_SIZE || seg_end <= ipa.raw() {
                    continue;
                }
                rights |= segment.rights;
                // Bytes of the segment's file image that fall in this page.
                let data_end = segment.ipa.raw() + segment.data.len() as u64;
                let from = segment.ipa.raw().max(ipa.raw());
                let to = data_end.min(ipa.raw() + PAGE_SIZE);
                if from < to {
                    let src =
                        (from - segment.ipa.raw()) as usize..(to - segment.ipa.raw()) as usize;
                    tables
                        .platform
                        .copy_to_phys(frame.add(from - ipa.raw()), &segment.data[src]);
                }
            }
            if rights == 0 {
                rights = info::rights::READ | info::rights::WRITE;
            }
            let attributes = Attributes::from_rights(rights, MemoryKind::Normal);
            stage2.map_page(&mut tables, ipa, frame, attributes)?;

            let binding = MemoryBinding {
                ipa,
                phys: frame,
                pages: 1,
                rights,
                kind: MemoryKind::Normal,
            };
            run = match run {
                Some(mut r)
                    if r.rights == rights
                        && r.ipa.raw() + r.pages * PAGE_SIZE == ipa.raw()
                        && r.phys.raw() + r.pages * PAGE_SIZE == frame.raw() =>
                {
                    r.pages += 1;
                    Some(r)
                }
                Some(r) => {
                    info_writer.push_binding(&r);
                    Some(binding)
                }
                None => Some(binding),
            };
        }
        if let Some(r) = run {
            info_writer.push_binding(&r);
        }

        let info_frame = tables.frames.alloc(Owner::Kernel)?;
        tables.platform.copy_to_phys(info_frame, &info_page);
        let read_only = Attributes::from_rights(info::rights::READ, MemoryKind::Normal);
        stage2.map_page(&mut tables, info::INFO_PAGE_IPA, info_frame, read_only)?;

        let pstate = tables.platform.initial_pstate();
        Ok(Partition {
            id,
            name: record.name,
            vmid,
            regs: VcpuRegs::at_entry(record.entry.raw(), info::INFO_PAGE_IPA.raw(), pstate),
            stage2: Some(stage2),
            state: State::Runnable,
            ram_base: record.ram_base,
            ram_bytes: record.memory_bytes,
            info_frame,
        })
    }

    /// Serves a hypercall from the running partition. `function` is `w0`, `args` are
    /// `x1`..`x7`. Results are written into the partition's saved `x0`..`x3`.
    pub fn hypercall(&mut self, function: u32, args: [u64; 7]) -> Step {
        let result: Result<u64, Error> = match function {
            SMCCC_VERSION => Ok(SMCCC_IMPLEMENTED_VERSION),
            SMCCC_ARCH_FEATURES => match args[0] as u32 {
                SMCCC_VERSION | SMCCC_ARCH_FEATURES => Ok(0),
                _ => Err(Error::NotSupported),
            },
            PSCI_VERSION => Ok(PSCI_IMPLEMENTED_VERSION),
            PSCI_FEATURES => match args[0] as u32 {
                PSCI_VERSION | PSCI_FEATURES | PSCI_CPU_OFF | PSCI_SYSTEM_OFF => Ok(0),
                _ => Err(Error::NotSupported),
            },
            PSCI_SYSTEM_OFF => return self.finish_current(Outcome::SystemOff),
            PSCI_CPU_OFF => return self.finish_current(Outcome::CpuOff),
            EXO_ABI_VERSION => Ok(u64::from(ABI_VERSION)),
            EXO_CONSOLE_WRITE => self.console_write(Ipa::new(args[0]), args[1]),
            EXO_YIELD => {
                self.current_regs_mut().set_results([0; 4]);
                return self.schedule();
            }
            EXO_EXIT => return self.finish_current(Outcome::Exited(args[0])),
            _ => Err(Error::NotSupported),
        };
        let x0 = match result {
            Ok(value) => value,
            Err(error) => error.to_register(),
        };
        self.current_regs_mut().set_results([x0, 0, 0, 0]);
        Step::Resume
    }

    /// Writes `len` bytes of the running partition's memory at `ipa` to the console. The
    /// whole buffer is checked against stage 2 before a byte is written.
    fn console_write(&mut self, ipa: Ipa, len: u64) -> Result<u64, Error> {
        if len > CONSOLE_WRITE_MAX {
            return Err(Error::TooLarge);
        }
        let end = ipa.checked_add(len).ok_or(Error::BadAddress)?;
        let current = self.current;
        let Some(partition) = self.partitions[current].as_ref() else {
            return Err(Error::UnknownPartition);
        };
        let Some(stage2) = partition.stage2.as_ref() else {
            return Err(Error::BadAddress);
        };
        let name = partition.name;
        let tables = Tables {
            platform: &mut self.platform,
            frames: &mut self.frames,
        };
        // Pass 1: every page must be bound readable.
        let mut page = ipa.page_base();
        while page < end {
            match stage2.translate(&tables, page) {
                Some((_, attributes)) if attributes.read => {}
                _ => return Err(Error::BadAddress),
            }
            page = page.add(PAGE_SIZE);
        }
        // Pass 2: copy out page by page and write.
        let mut at = ipa;
        let mut buffer = [0u8; 256];
        while at < end {
            let chunk = (end.raw() - at.raw())
                .min(PAGE_SIZE - at.page_offset())
                .min(buffer.len() as u64) as usize;
            let Some((frame, _)) = stage2.translate(&tables, at.page_base()) else {
                return Err(Error::BadAddress);
            };
            tables
                .platform
                .copy_from_phys(frame.add(at.page_offset()), &mut buffer[..chunk]);
            tables
                .platform
                .console_write(Writer::Partition(name.as_str()), &buffer[..chunk]);
            at = at.add(chunk as u64);
        }
        Ok(len)
    }

    /// Stops the running partition after a stage-2 abort.
    pub fn stage2_abort(&mut self, abort: Stage2Abort) -> Step {
        let outcome = Outcome::Stage2Fault {
            ipa: abort.ipa,
            access: abort.access,
            kind: abort.kind,
        };
        self.finish_current(outcome)
    }

    /// Stops the running partition after a trap the kernel does not serve.
    pub fn unexpected_trap(&mut self, what: &'static str, syndrome: u64) -> Step {
        let pc = self.current_regs_mut().pc;
        self.finish_current(Outcome::UnexpectedTrap { what, syndrome, pc })
    }

    /// Ends the running partition: its bindings are broken, its frames scrubbed and freed.
    fn finish_current(&mut self, outcome: Outcome) -> Step {
        let current = self.current;
        let Some(partition) = self.partitions[current].as_mut() else {
            return self.schedule();
        };
        partition.state = State::Finished(outcome);
        let name = partition.name;
        let owner = Owner::Partition(partition.id);
        let info_frame = partition.info_frame;
        let stage2 = partition.stage2.take();
        if outcome.is_success() {
            info!("partition {name} finished: {outcome}");
        } else {
            warn!("partition {name} stopped: {outcome}");
        }
        if let Some(stage2) = stage2 {
            let mut tlb = self.platform.tlb();
            let mut tables = Tables {
                platform: &mut self.platform,
                frames: &mut self.frames,
            };
            stage2.destroy(&mut tables, &mut tlb);
            // The info page is the kernel's; with the bindings gone it can be reused.
            self.platform.zero_frame(info_frame);
            if let Err(e) = self.frames.free(info_frame, Owner::Kernel) {
                log::error!("info page {info_frame} of {name} could not be freed: {e:?}");
            }
        }
        self.reclaim(owner);
        self.schedule()
    }

    /// Scrubs and frees every frame `owner` holds.
    fn reclaim(&mut self, owner: Owner) {
        loop {
            let Some(frame) = self.frames.owned_by(owner).next() else {
                return;
            };
            self.platform.zero_frame(frame);
            if self.frames.free(frame, owner).is_err() {
                log::error!("frame {frame} of {owner:?} could not be reclaimed");
                return;
            }
        }
    }

    /// Round robin: the next runnable partition after the current one, possibly itself.
    pub fn schedule(&mut self) -> Step {
        for offset in 1..=self.count {
            let candidate = (self.current + offset) % self.count;
            let runnable = matches!(
                self.partitions[candidate].as_ref().map(|p| p.state),
                Some(State::Runnable)
            );
            if runnable {
                let step = if candidate == self.current {
                    Step::Resume
                } else {
                    Step::Switch(candidate)
                };
                self.current = candidate;
                return step;
            }
        }
        Step::PowerOff
    }

    /// Logs one machine-readable result line per partition and a summary. Returns whether
    /// every partition succeeded.
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
                State::Runnable => {
                    all_ok = false;
                    info!(
                        "result {} failed: still runnable at power-off",
                        partition.name
                    );
                }
            }
        }
        all_ok
    }
}
