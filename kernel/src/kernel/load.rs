//! Loading the boot package: each partition's memory and program segments, its devices and
//! GIC interface, its info page and its kernel pages, bound in a fresh stage 2; then the
//! time-slice vector.

use super::{Kernel, LoadError, Tables, frames_needed, table_budget, ticks_of_us};
use crate::cpus::CoreId;
use crate::irq::InterruptTable;
use crate::mem::binding_index::BindingIndex;
use crate::mem::frame_table::{Owner, PartitionId};
use crate::mem::stage2::{Attributes, Geometry, Stage2, Vmid};
use crate::partition::{
    DeviceWindows, KernelPages, MemoryTerms, Partition, State, TablePool, Upcalls,
};
use crate::platform::{CpuInterface, PhysicalMemory, Platform};
use crate::vcpu::VcpuRegs;
use exo_abi::call::{VIRTUAL_TIMER_INTID, signal};
use exo_abi::info::{self, InfoHeader, InfoWriter, MemoryBinding, MemoryKind};
use exo_abi::package::{Package, PartitionFlags, PartitionRecord};
use exo_abi::{ABI_VERSION, Ipa, PAGE_SIZE, PhysAddr, Rights};
use log::info;

impl<P: Platform> Kernel<'_, P> {
    /// Loads every partition of the boot package: frames for its memory, scrubbed; program
    /// segments copied in; stage-2 bindings with the segments' rights; kernel pages.
    pub fn load(&mut self, package: &Package<'_>) -> Result<(), LoadError> {
        if let Some((partition, record)) = package
            .partitions()
            .enumerate()
            .find(|(_, r)| CoreId::new(r.core as usize).is_none_or(|core| !self.core_up(core)))
        {
            return Err(LoadError::CoreDown {
                partition,
                core: record.core,
            });
        }
        self.poison_free_ram(package);
        let count = package.partition_count() as u32;
        for (index, record) in package.partitions().enumerate() {
            let free = self.frames.count(Owner::Free) as u64;
            let partition = self
                .load_partition(index, count, &record)
                .map_err(|e| match e {
                    LoadError::OutOfMemory { .. } => LoadError::OutOfMemory {
                        partition: index,
                        needed: frames_needed(&record),
                        free,
                    },
                    other => other,
                })?;
            info!(
                "partition {} loaded: {} KiB at IPA {}, entry {}, VMID {}, guarantee {} KiB, \
                 borrow up to {} KiB",
                partition.name,
                partition.ram_bytes / 1024,
                partition.ram_base,
                Ipa::new(partition.regs.pc),
                partition.vmid.0,
                partition.terms.guaranteed * PAGE_SIZE / 1024,
                partition.terms.borrow_limit * PAGE_SIZE / 1024,
            );
            self.partitions[index] = Some(partition);
            self.count = index + 1;
        }
        self.load_schedule(package);
        self.platform.publish_done();
        Ok(())
    }

    /// Each core's time-slice vector, the slice length and the revocation share the
    /// package asks for.
    fn load_schedule(&mut self, package: &Package<'_>) {
        self.load_schedules(package);
        self.slice_ticks = ticks_of_us(package.slice_us(), self.platform.timer_frequency());
        self.share = package.revocation_share();
    }

    /// Loads partition `index` of `partition_count`: checks that the free pool holds all it
    /// needs, then builds its stage 2 with its memory, devices and kernel pages.
    fn load_partition(
        &mut self,
        index: usize,
        partition_count: u32,
        record: &PartitionRecord<'_>,
    ) -> Result<Partition<P::Format>, LoadError> {
        let id = PartitionId::new(index as u16).ok_or(LoadError::TooManyPartitions)?;
        let terms = memory_terms(record, self.platform.timer_frequency());
        if (self.frames.count(Owner::Free) as u64) < frames_needed(record) {
            return Err(LoadError::OutOfMemory {
                partition: index,
                needed: frames_needed(record),
                free: self.frames.count(Owner::Free) as u64,
            });
        }
        let vmid = Vmid(index as u16 + 1);
        let mut table_pool = TablePool::default();
        let mut loader = Loader::new(self, &mut table_pool, id, vmid, table_budget(record))?;
        let header = InfoHeader {
            abi_version: ABI_VERSION,
            partition_id: index as u32,
            name: record.name,
            timer_frequency: loader.tables.platform.timer_frequency(),
            guaranteed_frames: terms.guaranteed,
            borrow_limit_frames: terms.borrow_limit,
            partition_count,
        };
        let mut info_page = [0u8; info::SIZE];
        let mut info_writer = InfoWriter::new(&mut info_page, &header);
        loader.load_memory(record, Owner::Partition(id), &mut info_writer)?;
        let devices = loader.bind_devices(record, &mut info_writer)?;
        let kernel_pages = loader.kernel_pages(&info_page)?;
        let pstate = loader.tables.platform.initial_pstate();
        let gicd = super::linux::distributor_view(record, loader.tables.platform.gic().interface);
        // A library OS enters with its info page in x0; Linux with its device tree.
        let x0 = if record.flags.contains(PartitionFlags::LINUX) {
            record.boot_argument
        } else {
            info::INFO_PAGE_IPA.raw()
        };
        let stage2 = loader.stage2;
        Ok(Partition {
            id,
            name: record.name,
            vmid,
            // Checked by `load` against the cores that are up.
            core: CoreId::new(record.core as usize).unwrap_or(CoreId::BOOT),
            regs: VcpuRegs::at_entry(record.entry.raw(), x0, pstate),
            stage2: Some(stage2),
            state: State::Runnable,
            ram_base: record.ram_base,
            ram_bytes: record.memory_bytes,
            kernel_pages,
            terms,
            aborts: 0,
            last_sequence: 0,
            revocation: None,
            loss_order: None,
            pending_alloc: None,
            upcalls: Upcalls::default(),
            table_pool,
            preempted: false,
            set_way_cleaned: false,
            talks_to: record.talks_to,
            flags: record.flags,
            serving: None,
            message: None,
            virq: crate::irq::VcpuInterrupts::new(),
            devices,
            gicd,
        })
    }
}

/// A partition's memory terms from its record, its revocation deadline in ticks of a counter
/// running at `frequency` Hz.
fn memory_terms(record: &PartitionRecord<'_>, frequency: u64) -> MemoryTerms {
    MemoryTerms {
        guaranteed: record.guaranteed_bytes / PAGE_SIZE,
        borrow_limit: record.borrow_bytes / PAGE_SIZE,
        deadline_ticks: (u128::from(record.revocation_deadline_us) * u128::from(frequency)
            / 1_000_000) as u64,
        max_aborts: record.max_aborts,
    }
}

/// One partition being loaded: its stage 2 and the parts of the kernel loading it touches,
/// borrowed apart so that the stage-2 table memory is usable alongside the others.
struct Loader<'k, 'a, P: Platform> {
    /// The partition.
    id: PartitionId,
    /// The machine and frame table, with the partition's table pool.
    tables: Tables<'k, 'a, P>,
    /// The kernel's frame-to-IPA index.
    bound: &'k mut BindingIndex<'a>,
    /// Interrupt ownership.
    irqs: &'k mut InterruptTable,
    /// The stage 2 being built.
    stage2: Stage2<P::Format>,
}

impl<'k, 'a, P: Platform> Loader<'k, 'a, P> {
    /// Sets `budget` kernel frames aside as partition `id`'s table pool and makes its empty
    /// stage 2, tagged `vmid`, from them.
    fn new(
        kernel: &'k mut Kernel<'a, P>,
        pool: &'k mut TablePool,
        id: PartitionId,
        vmid: Vmid,
        budget: u64,
    ) -> Result<Self, LoadError> {
        let mut tables = Tables {
            platform: &mut kernel.platform,
            frames: &mut kernel.frames,
            pool,
        };
        for _ in 0..budget {
            let frame = tables.frames.alloc(Owner::Kernel)?;
            tables.donate(frame);
        }
        let stage2 = Stage2::<P::Format>::new(&mut tables, vmid, Geometry::default())?;
        Ok(Self {
            id,
            tables,
            bound: &mut kernel.bound,
            irqs: &mut kernel.irqs,
            stage2,
        })
    }

    /// The partition's RAM: a frame for each page from its RAM base, zeroed, the program
    /// segments that fall in it copied in, cleaned to the point of coherency and bound with
    /// the rights of those segments (read-write where there are none). The info page lists
    /// the bindings as runs of contiguous pages with the same rights.
    fn load_memory(
        &mut self,
        record: &PartitionRecord<'_>,
        owner: Owner,
        info_writer: &mut InfoWriter<'_>,
    ) -> Result<(), LoadError> {
        let mut run: Option<MemoryBinding> = None;
        for page in 0..record.memory_bytes / PAGE_SIZE {
            let ipa = record.ram_base.add(page * PAGE_SIZE);
            let frame = self.tables.frames.alloc(owner)?;
            self.tables.platform.zero_frame(frame);
            let mut rights = copy_segments(self.tables.platform, record, ipa, frame);
            if rights.is_empty() {
                rights = Rights::READ_WRITE;
            }
            let attributes = Attributes::from_rights(rights, MemoryKind::Normal);
            self.tables.platform.clean_to_poc(frame);
            self.stage2
                .map_page(&mut self.tables, ipa, frame, attributes)?;
            self.bound.set(frame, ipa);
            let binding = MemoryBinding {
                ipa,
                phys: frame,
                pages: 1,
                rights,
                kind: MemoryKind::Normal,
            };
            run = Some(extend_run(run, binding, info_writer));
        }
        if let Some(r) = run {
            info_writer.push_binding(&r);
        }
        Ok(())
    }

    /// Interrupts and device MMIO the configuration gives the partition, and on GICv2 the
    /// virtual CPU interface in place of the CPU interface: claimed, bound read-write as
    /// Device memory and told in the info page.
    fn bind_devices(
        &mut self,
        record: &PartitionRecord<'_>,
        info_writer: &mut InfoWriter<'_>,
    ) -> Result<DeviceWindows, LoadError> {
        let gic = self.tables.platform.gic();
        for intid in record.interrupts() {
            self.irqs
                .claim(intid, self.id, gic.lines)
                .map_err(|_| LoadError::Interrupt {
                    partition: self.id.index(),
                    intid,
                })?;
        }
        let mut devices = DeviceWindows::default();
        let device_rights = Rights::READ_WRITE;
        let cpu_interface = match gic.interface {
            CpuInterface::Mapped { ipa, phys, pages } => Some((ipa, phys, pages)),
            _ => None,
        };
        let regions = record
            .devices()
            .map(|d| (d.ipa, d.phys, d.size / PAGE_SIZE))
            .chain(cpu_interface);
        for (ipa, phys, pages) in regions {
            for page in 0..pages {
                let frame = phys.add(page * PAGE_SIZE);
                if self.tables.frames.owner(frame).is_some() {
                    return Err(LoadError::DeviceInRam {
                        partition: self.id.index(),
                    });
                }
                let attributes = Attributes::from_rights(device_rights, MemoryKind::Device);
                let at = ipa.add(page * PAGE_SIZE);
                self.stage2
                    .map_page(&mut self.tables, at, frame, attributes)?;
            }
            devices.push(ipa, pages);
            info_writer.push_binding(&MemoryBinding {
                ipa,
                phys,
                pages,
                rights: device_rights,
                kind: MemoryKind::Device,
            });
        }
        if let Some(facts) = interrupt_info(gic.interface) {
            info_writer.set_interrupts(&facts, self.irqs.owned_by(self.id));
        }
        Ok(devices)
    }

    /// Kernel pages: the info page (`info_page`'s contents), an idle revocation page and the
    /// repossession vector's header. Kernel-owned, cleaned to the point of coherency and
    /// bound read-only.
    fn kernel_pages(&mut self, info_page: &[u8]) -> Result<KernelPages, LoadError> {
        let tables = &mut self.tables;
        let mut kernel_frame = || -> Result<PhysAddr, LoadError> {
            let frame = tables.frames.alloc(Owner::Kernel)?;
            tables.platform.zero_frame(frame);
            Ok(frame)
        };
        let pages = KernelPages {
            info: kernel_frame()?,
            revocation: kernel_frame()?,
            vector: [
                kernel_frame()?,
                kernel_frame()?,
                kernel_frame()?,
                kernel_frame()?,
            ],
        };
        let platform = &mut *self.tables.platform;
        platform.copy_to_phys(pages.info, info_page);
        let mut revocation_page = [0u8; exo_abi::revocation::SIZE];
        exo_abi::revocation::write_request(
            &mut revocation_page,
            &exo_abi::revocation::Request {
                sequence: 0,
                state: exo_abi::revocation::RequestState::Idle,
                frames_requested: 0,
                frames_owed: 0,
                deadline: 0,
                issued_at: 0,
            },
            &[],
        );
        platform.copy_to_phys(pages.revocation, &revocation_page);
        platform.copy_to_phys(pages.vector[0], &exo_abi::revocation::vector_header());
        let read_only = Attributes::from_rights(Rights::READ, MemoryKind::Normal);
        for (ipa, frame) in pages.bindings() {
            self.tables.platform.clean_to_poc(frame);
            self.stage2
                .map_page(&mut self.tables, ipa, frame, read_only)?;
        }
        Ok(pages)
    }
}

/// Copies into `frame`, the page at `ipa`, the bytes of `record`'s segments' file images
/// that fall in it. Returns the union of the rights of the segments overlapping the page.
fn copy_segments(
    memory: &mut impl PhysicalMemory,
    record: &PartitionRecord<'_>,
    ipa: Ipa,
    frame: PhysAddr,
) -> Rights {
    let mut rights = Rights::empty();
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
            let src = (from - segment.ipa.raw()) as usize..(to - segment.ipa.raw()) as usize;
            memory.copy_to_phys(frame.add(from - ipa.raw()), &segment.data[src]);
        }
    }
    rights
}

/// `binding` (one page) appended to `run` if it continues it (same rights, next IPA, next
/// frame); otherwise `run` is written to the info page and `binding` starts the next run.
fn extend_run(
    run: Option<MemoryBinding>,
    binding: MemoryBinding,
    info_writer: &mut InfoWriter<'_>,
) -> MemoryBinding {
    match run {
        Some(mut r)
            if r.rights == binding.rights
                && r.ipa.raw() + r.pages * PAGE_SIZE == binding.ipa.raw()
                && r.phys.raw() + r.pages * PAGE_SIZE == binding.phys.raw() =>
        {
            r.pages += 1;
            r
        }
        Some(r) => {
            info_writer.push_binding(&r);
            binding
        }
        None => binding,
    }
}

/// What the info page tells about the GIC partitions reach through `interface`, if any.
fn interrupt_info(interface: CpuInterface) -> Option<info::InterruptInfo> {
    let gic = match interface {
        CpuInterface::None => return None,
        CpuInterface::SystemRegisters => info::GicInterface::V3,
        CpuInterface::Mapped { ipa, .. } => info::GicInterface::V2 { cpu_interface: ipa },
    };
    Some(info::InterruptInfo {
        gic,
        revocation: signal::REVOCATION as u16,
        repossession: signal::REPOSSESSION as u16,
        message: signal::MESSAGE as u16,
        virtual_timer: VIRTUAL_TIMER_INTID as u16,
    })
}
