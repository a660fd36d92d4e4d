//! Host tests of the portable kernel core against a fake machine: scenario tests of the
//! memory calls, revocation, the abort protocol, grants and upcalls, and a property test
//! that drives three partitions with random (often hostile) hypercalls and checks the
//! kernel's invariants after every step.

use super::*;
use crate::arch::fake::{FakeFormat, TIMER_HZ, ticks};
use crate::cpus::CoreId;
use crate::irq::VirtualIrq;
use crate::mem::grants::Grant;
use crate::mem::stage2::{Mapping, TlbMaintenance, Vmid};
use crate::partition::Upcalls;
use crate::platform::{
    CacheMaintenance, Clock, ConsoleOutput, InterruptController, Stage2Hardware, VcpuControl,
};
use exo_abi::call::{VIRTUAL_TIMER_INTID, signal, upcall};
use exo_abi::info;
use exo_abi::info::{KERNEL_WINDOW_END, KERNEL_WINDOW_START};
use exo_abi::package::build::{PartitionSpec, SegmentSpec, SystemSpec, encode_system};
use exo_abi::package::{DEFAULT_RAM_BASE, Package};
use exo_abi::revocation::{
    Reason, Repossession, RequestReader, RequestState, VECTOR_SIZE, VectorReader,
};
use exo_abi::{BindAttributes, UpcallFlags};
use exo_abi::{Name, PAGE_SIZE};
use std::boxed::Box;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::vec;
use std::vec::Vec;

mod banks;
mod conformance;
mod cores;
mod isolation;
mod linux;
mod return_path;
mod revocation;

/// Register images of [`BindAttributes`] (and of the rights of `EXO_GRANT`) for raw calls.
mod bind {
    use super::BindAttributes;
    pub const READ: u64 = BindAttributes::READ.bits();
    pub const WRITE: u64 = BindAttributes::WRITE.bits();
    pub const EXECUTE: u64 = BindAttributes::EXECUTE.bits();
    pub const DEVICE: u64 = BindAttributes::DEVICE.bits();
    pub const ALL: u64 = BindAttributes::all().bits();
}

/// Register image of [`UpcallFlags::FAULTS`].
const UPCALL_FLAG_FAULTS: u64 = UpcallFlags::FAULTS.bits();

// ---------------------------------------------------------------------------------------
// The fake machine.

/// Partition `index` of a test's package.
fn pid(index: usize) -> PartitionId {
    PartitionId::new(index as u16).expect("a partition index")
}

/// Physical address of the fake RAM.
const RAM_BASE: u64 = 0x4000_0000;
/// Frames the kernel reserves for "its image" at the start of RAM.
const KERNEL_IMAGE_FRAMES: usize = 4;
/// Where a partition finds a writable page for `EXO_FRAME_ALLOC` (boot RAM).
const BUFFER: u64 = 0x4000_8000;
/// A second writable page.
const BUFFER2: u64 = 0x4000_9000;
/// Partition boot RAM: 16 pages at `DEFAULT_RAM_BASE`.
const BOOT_PAGES: u64 = 16;
/// Where tests bind frames they allocate.
const HEAP: u64 = 0x8000_0000;

/// One recorded TLB maintenance operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TlbEvent {
    Ipa(Vmid, Ipa),
    Vmid(Vmid),
}

/// A TLB that records what it was asked to invalidate.
struct RecordingTlb {
    log: Rc<RefCell<Vec<TlbEvent>>>,
}

impl TlbMaintenance for RecordingTlb {
    fn invalidate_ipa(&mut self, vmid: Vmid, ipa: Ipa) {
        self.log.borrow_mut().push(TlbEvent::Ipa(vmid, ipa));
    }

    fn invalidate_vmid(&mut self, vmid: Vmid) {
        self.log.borrow_mut().push(TlbEvent::Vmid(vmid));
    }
}

/// What the fake machine saw done to a frame, in order: the cache-maintenance contract is
/// that a frame changing hands is zeroed, then cleaned to the point of coherency, and only
/// then mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FrameEvent {
    /// `zero_frame`.
    Zero(PhysAddr),
    /// `clean_to_poc`.
    Clean(PhysAddr),
    /// A stage-2 leaf descriptor naming the frame was written.
    Map(PhysAddr),
}

/// List registers of the fake virtual CPU interface (as many as QEMU's GICs have).
const FAKE_LIST_REGISTERS: usize = 4;

/// A fake machine: a small RAM, a recording TLB, a console buffer, a settable clock, and a
/// GIC with four list registers, a log of distributor operations and per-partition
/// virtual-timer deadlines.
struct FakePlatform {
    ram: Vec<u8>,
    tlb: Rc<RefCell<Vec<TlbEvent>>>,
    console: Vec<u8>,
    now: Rc<Cell<u64>>,
    lrs: [Option<VirtualIrq>; FAKE_LIST_REGISTERS],
    underflow: bool,
    spi_log: Vec<(u32, SpiOp)>,
    timers: BTreeMap<PartitionId, u64>,
    frame_log: Vec<FrameEvent>,
}

impl FakePlatform {
    fn new(frames: usize) -> Self {
        Self {
            ram: vec![0; frames * PAGE_SIZE as usize],
            tlb: Rc::default(),
            console: Vec::new(),
            now: Rc::default(),
            lrs: [None; FAKE_LIST_REGISTERS],
            underflow: false,
            spi_log: Vec::new(),
            timers: BTreeMap::new(),
            frame_log: Vec::new(),
        }
    }

    /// Byte offset of `pa` in the fake RAM; the kernel touching anything else is a bug.
    fn offset(&self, pa: PhysAddr, len: usize) -> usize {
        let offset = pa
            .raw()
            .checked_sub(RAM_BASE)
            .unwrap_or_else(|| panic!("kernel touched non-RAM {pa}")) as usize;
        assert!(
            offset + len <= self.ram.len(),
            "kernel touched non-RAM {pa}+{len}"
        );
        offset
    }

    fn frame(&self, frame: PhysAddr) -> &[u8] {
        let at = self.offset(frame, PAGE_SIZE as usize);
        &self.ram[at..at + PAGE_SIZE as usize]
    }

    fn frame_mut(&mut self, frame: PhysAddr) -> &mut [u8] {
        let at = self.offset(frame, PAGE_SIZE as usize);
        &mut self.ram[at..at + PAGE_SIZE as usize]
    }
}

impl PhysicalMemory for FakePlatform {
    fn read_u64(&self, pa: PhysAddr) -> u64 {
        let at = self.offset(pa, 8);
        u64::from_le_bytes(self.ram[at..at + 8].try_into().unwrap())
    }

    fn write_u64(&mut self, pa: PhysAddr, value: u64) {
        let at = self.offset(pa, 8);
        self.ram[at..at + 8].copy_from_slice(&value.to_le_bytes());
        if let Some(frame) = FakeFormat::leaf_target(value) {
            self.frame_log.push(FrameEvent::Map(frame));
        }
    }

    fn zero_frame(&mut self, frame: PhysAddr) {
        assert!(frame.is_page_aligned(), "zero_frame({frame}) unaligned");
        self.frame_mut(frame).fill(0);
        self.frame_log.push(FrameEvent::Zero(frame));
    }

    fn copy_to_phys(&mut self, pa: PhysAddr, bytes: &[u8]) {
        assert!(
            pa.page_offset() + bytes.len() as u64 <= PAGE_SIZE,
            "copy_to_phys crosses a frame"
        );
        let at = self.offset(pa, bytes.len());
        self.ram[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn copy_from_phys(&self, pa: PhysAddr, buffer: &mut [u8]) {
        assert!(
            pa.page_offset() + buffer.len() as u64 <= PAGE_SIZE,
            "copy_from_phys crosses a frame"
        );
        let at = self.offset(pa, buffer.len());
        buffer.copy_from_slice(&self.ram[at..at + buffer.len()]);
    }
}

impl Stage2Hardware for FakePlatform {
    type Format = FakeFormat;
    type Tlb = RecordingTlb;

    fn tlb(&self) -> RecordingTlb {
        RecordingTlb {
            log: self.tlb.clone(),
        }
    }
}

impl CacheMaintenance for FakePlatform {
    fn clean_to_poc(&mut self, frame: PhysAddr) {
        self.offset(frame, PAGE_SIZE as usize);
        self.frame_log.push(FrameEvent::Clean(frame));
    }

    fn publish_done(&mut self) {}
}

impl ConsoleOutput for FakePlatform {
    fn console_write(&mut self, _who: Writer<'_>, bytes: &[u8]) {
        self.console.extend_from_slice(bytes);
    }
}

impl Clock for FakePlatform {
    fn timer_frequency(&self) -> u64 {
        TIMER_HZ
    }

    fn now(&self) -> u64 {
        self.now.get()
    }
}

impl InterruptController for FakePlatform {
    fn gic(&self) -> GicFacts {
        GicFacts {
            interface: CpuInterface::SystemRegisters,
            lines: 288,
        }
    }

    fn spi(&mut self, intid: u32, op: SpiOp) {
        self.spi_log.push((intid, op));
    }

    fn inject(&mut self, irq: VirtualIrq) -> bool {
        if self.lrs.iter().flatten().any(|l| l.intid == irq.intid) {
            return true;
        }
        match self.lrs.iter_mut().find(|l| l.is_none()) {
            Some(free) => {
                *free = Some(irq);
                true
            }
            None => false,
        }
    }

    fn notify_on_underflow(&mut self, on: bool) {
        self.underflow = on;
    }

    fn live_virtual_pending(&self) -> bool {
        self.lrs.iter().any(Option::is_some)
    }
}

impl VcpuControl for FakePlatform {
    fn initial_pstate(&self) -> u64 {
        0x3c5
    }

    fn virtual_timer_deadline(&self, id: PartitionId) -> Option<u64> {
        self.timers.get(&id).copied()
    }

    fn vcpu_ended(&mut self, id: PartitionId) {
        self.timers.remove(&id);
    }
}

impl FakePlatform {
    /// Checks the frame log since the last call, then forgets it: every zeroed frame was
    /// cleaned to the point of coherency before anything mapped it. Returns the frames
    /// zeroed and cleaned, in order.
    fn take_frame_log(&mut self) -> Result<Vec<PhysAddr>, String> {
        let mut dirty = BTreeSet::new();
        let mut scrubbed = Vec::new();
        for event in self.frame_log.drain(..) {
            match event {
                FrameEvent::Zero(f) => {
                    dirty.insert(f);
                }
                FrameEvent::Clean(f) => {
                    if dirty.remove(&f) {
                        scrubbed.push(f);
                    }
                }
                FrameEvent::Map(f) if dirty.contains(&f) => {
                    return Err(std::format!("{f} mapped after zeroing, before its clean"));
                }
                FrameEvent::Map(_) => {}
            }
        }
        Ok(scrubbed)
    }

    /// The library OS takes and ends every interrupt in its list registers; returns them.
    fn guest_handles_all(&mut self) -> Vec<VirtualIrq> {
        self.lrs.iter_mut().filter_map(Option::take).collect()
    }
}

type K = Kernel<'static, FakePlatform>;

impl K {
    /// Makes partition `id` the running one of its core, and the kernel act for that core,
    /// as the trap path does when `id` traps.
    fn run_as(&mut self, id: PartitionId) {
        let core = self.core_of(id).expect("a loaded partition");
        assert_eq!(self.enter(core), None, "a teardown was pending on {core}");
        self.set_current(id);
    }
}

// ---------------------------------------------------------------------------------------
// Building kernels and making calls.

/// A partition of a test system.
#[derive(Clone, Copy, Debug)]
struct Config {
    name: &'static str,
    /// Boot RAM in pages.
    memory: u64,
    /// Guarantee in frames.
    guarantee: u64,
    /// Borrow limit in frames.
    borrow: u64,
    deadline_us: u64,
    max_aborts: u32,
    /// Bit `i`: may call or send to partition `i`.
    talks_to: u64,
    /// SPIs it owns.
    interrupts: &'static [u32],
    /// Device regions it owns: (physical address, IPA, pages).
    devices: &'static [(u64, u64, u64)],
    /// May call `EXO_SELF_CHECK`.
    self_check: bool,
    /// The core it is pinned to.
    core: u32,
}

impl Config {
    fn new(name: &'static str, guarantee: u64, borrow: u64) -> Self {
        Self {
            name,
            memory: BOOT_PAGES,
            guarantee,
            borrow,
            deadline_us: 1000,
            max_aborts: 1,
            talks_to: 0,
            interrupts: &[],
            devices: &[],
            self_check: false,
            core: 0,
        }
    }
}

/// A kernel over `frames` frames of fake RAM with the given partitions loaded.
fn build(frames: usize, configs: &[Config]) -> K {
    let (mut kernel, bytes) = unloaded(frames, configs);
    let package = Package::parse(&bytes).unwrap();
    kernel.load(&package).unwrap();
    assert_eq!(kernel.partition_count(), configs.len());
    kernel.self_check().unwrap();
    kernel
}

/// A kernel over `frames` frames of fake RAM, the first [`KERNEL_IMAGE_FRAMES`] the
/// kernel's, and a boot package of the given partitions, not yet loaded.
fn unloaded(frames: usize, configs: &[Config]) -> (K, Vec<u8>) {
    unloaded_with_flags(frames, configs, 0)
}

/// [`unloaded`], with the boot package's system `flags`.
fn unloaded_with_flags(frames: usize, configs: &[Config], flags: u32) -> (K, Vec<u8>) {
    let system = SystemSpec {
        flags,
        ..SystemSpec::default()
    };
    unloaded_with_system(frames, configs, &system)
}

/// [`unloaded`], with the boot package's system settings.
fn unloaded_with_system(
    frames: usize,
    configs: &[Config],
    system: &SystemSpec<'_>,
) -> (K, Vec<u8>) {
    let specs: Vec<PartitionSpec> = configs
        .iter()
        .map(|c| PartitionSpec {
            name: Name::new(c.name).unwrap(),
            memory_bytes: c.memory * PAGE_SIZE,
            entry: DEFAULT_RAM_BASE,
            ram_base: DEFAULT_RAM_BASE,
            segments: vec![SegmentSpec {
                ipa: DEFAULT_RAM_BASE,
                // nop; b .
                data: vec![0x1f, 0x20, 0x03, 0xd5, 0x00, 0x00, 0x00, 0x14],
                mem_size: PAGE_SIZE,
                rights: exo_abi::Rights::READ | exo_abi::Rights::EXECUTE,
            }],
            guaranteed_bytes: c.guarantee * PAGE_SIZE,
            borrow_bytes: c.borrow * PAGE_SIZE,
            revocation_deadline_us: c.deadline_us,
            max_aborts: c.max_aborts,
            talks_to: c.talks_to,
            flags: if c.self_check {
                exo_abi::package::PartitionFlags::SELF_CHECK
            } else {
                exo_abi::package::PartitionFlags::empty()
            },
            interrupts: c.interrupts.to_vec(),
            devices: c
                .devices
                .iter()
                .map(|&(phys, ipa, pages)| exo_abi::package::DeviceRegion {
                    phys: PhysAddr::new(phys),
                    ipa: Ipa::new(ipa),
                    size: pages * PAGE_SIZE,
                })
                .collect(),
            core: c.core,
            boot_argument: 0,
        })
        .collect();
    let bytes = encode_system(&specs, system);
    let storage: &'static mut [u16] = Box::leak(vec![0u16; frames].into_boxed_slice());
    let bindings: &'static mut [u64] = Box::leak(vec![0u64; frames].into_boxed_slice());
    let mut table = FrameTable::new(PhysAddr::new(RAM_BASE), storage);
    table
        .reserve(
            PhysAddr::new(RAM_BASE),
            PhysAddr::new(RAM_BASE + KERNEL_IMAGE_FRAMES as u64 * PAGE_SIZE),
            Owner::Kernel,
        )
        .unwrap();
    let mut kernel = Kernel::new(FakePlatform::new(frames), table, bindings);
    for index in 0..crate::cpus::MAX_CORES {
        kernel.set_core_up(CoreId::new(index).unwrap());
    }
    (kernel, bytes)
}

#[test]
fn a_partition_that_does_not_fit_is_refused_in_words() {
    // 512 frames, 4 the kernel's. `small` takes 16 pages + 6 kernel pages + 34 tables = 56
    // frames, leaving 452; `big` needs 420 + 6 + 32 + 2 = 460.
    let big = Config {
        memory: 420,
        ..Config::new("big", 420, 0)
    };
    let (mut kernel, bytes) = unloaded(512, &[Config::new("small", BOOT_PAGES, 0), big]);
    let package = Package::parse(&bytes).unwrap();
    let error = kernel.load(&package).unwrap_err();
    assert_eq!(
        error,
        LoadError::OutOfMemory {
            partition: 1,
            needed: 460,
            free: 452
        }
    );
    assert_eq!(
        error.named(&package).to_string(),
        "partition `big` (1) needs 460 frames (1840 KiB for its memory, kernel pages and \
         stage-2 tables), 452 free (1808 KiB)"
    );
}

/// Makes partition `p` the running one and issues a hypercall as the trap path would:
/// the registers hold the call, the results are read back from the saved `x0..x3`.
fn call(k: &mut K, p: usize, function: u32, args: &[u64]) -> ([u64; 4], Step) {
    let mut full = [0u64; 7];
    full[..args.len()].copy_from_slice(args);
    k.run_as(pid(p));
    {
        let regs = k.regs_mut(pid(p)).unwrap();
        regs.x[0] = u64::from(function);
        regs.x[1..=args.len()].copy_from_slice(args);
    }
    let step = k.hypercall(function, full);
    let regs = k.regs_mut(pid(p)).unwrap();
    ([regs.x[0], regs.x[1], regs.x[2], regs.x[3]], step)
}

/// `x0` of a call, decoded.
fn result(k: &mut K, p: usize, function: u32, args: &[u64]) -> Result<u64, Error> {
    Error::from_register(call(k, p, function, args).0[0])
}

fn err(e: Error) -> Result<u64, Error> {
    Err(e)
}

fn held(k: &K, p: usize) -> usize {
    k.frames
        .count(Owner::Partition(k.partition(pid(p)).unwrap().id))
}

fn owner_of(k: &K, p: usize) -> Owner {
    Owner::Partition(k.partition(pid(p)).unwrap().id)
}

fn free(k: &K) -> usize {
    k.frames.count(Owner::Free)
}

fn state(k: &K, p: usize) -> State {
    k.partition(pid(p)).unwrap().state
}

/// Reads `n` little-endian words of partition `p`'s memory at `ipa` through its stage 2.
fn read_words(k: &mut K, p: usize, ipa: u64, n: usize) -> Vec<u64> {
    (0..n)
        .map(|i| {
            let at = Ipa::new(ipa + i as u64 * 8);
            let (pa, _) = k.translate(pid(p), at).expect("buffer bound");
            k.platform.read_u64(pa)
        })
        .collect()
}

/// Writes little-endian words into partition `p`'s memory at `ipa` through its stage 2.
fn write_words(k: &mut K, p: usize, ipa: u64, words: &[u64]) {
    assert!(try_write_words(k, p, ipa, words), "buffer bound");
}

/// [`write_words`], as far as `ipa` is bound; false where it stopped.
fn try_write_words(k: &mut K, p: usize, ipa: u64, words: &[u64]) -> bool {
    for (i, &word) in words.iter().enumerate() {
        let at = Ipa::new(ipa + i as u64 * 8);
        let Some((pa, _)) = k.translate(pid(p), at) else {
            return false;
        };
        k.platform.write_u64(pa, word);
    }
    true
}

/// Allocates `count` frames for `p` through the buffer page; returns their addresses.
fn alloc(k: &mut K, p: usize, count: u64) -> Vec<PhysAddr> {
    assert_eq!(
        result(k, p, EXO_FRAME_ALLOC, &[count, BUFFER]),
        Ok(count),
        "alloc {count} for {p}"
    );
    read_words(k, p, BUFFER, count as usize)
        .into_iter()
        .map(PhysAddr::new)
        .collect()
}

fn rw() -> u64 {
    bind::READ | bind::WRITE
}

/// A free frame (not the kernel's).
fn some_free(k: &K) -> PhysAddr {
    k.frames.owned_by(Owner::Free).next().unwrap()
}

fn is_zero(k: &K, frame: PhysAddr) -> bool {
    k.platform.frame(frame).iter().all(|&b| b == 0)
}

fn junk(k: &mut K, frame: PhysAddr) {
    k.platform.frame_mut(frame).fill(0xA5);
}

/// Partition `p`'s revocation page.
fn revocation_page(k: &K, p: usize) -> exo_abi::revocation::Request {
    let frame = k.partition(pid(p)).unwrap().kernel_pages.revocation;
    RequestReader::new(k.platform.frame(frame))
        .expect("revocation page magic")
        .request()
}

/// Every entry ever appended to partition `p`'s repossession vector (still in the ring).
fn vector(k: &K, p: usize) -> Vec<Repossession> {
    let pages = k.partition(pid(p)).unwrap().kernel_pages.vector;
    let mut bytes = vec![0u8; VECTOR_SIZE];
    for (i, frame) in pages.iter().enumerate() {
        let at = i * PAGE_SIZE as usize;
        bytes[at..at + PAGE_SIZE as usize].copy_from_slice(k.platform.frame(*frame));
    }
    let reader = VectorReader::new(&bytes).expect("vector magic");
    reader.since(0).collect()
}

/// Every stage-2 mapping of partition `p` (empty once it is torn down).
fn mappings(k: &mut K, p: usize) -> Vec<Mapping> {
    let mut out = Vec::new();
    k.with_stage2(pid(p), |stage2, tables, _| {
        stage2.for_each_mapping(tables, |m| out.push(m))
    });
    out
}

/// Everything an erroring call must leave untouched.
#[derive(Debug, PartialEq)]
struct Snapshot {
    owners: Vec<Option<Owner>>,
    bound: Vec<Option<Ipa>>,
    grants: Vec<(usize, Grant)>,
    partitions: Vec<PartitionSnapshot>,
}

#[derive(Debug, PartialEq)]
struct PartitionSnapshot {
    state: State,
    regs: crate::vcpu::VcpuRegs,
    revocation: Option<crate::partition::Revocation>,
    pending: Option<crate::partition::PendingAlloc>,
    upcalls: Upcalls,
    aborts: u32,
    last_sequence: u64,
    table_frames: u64,
    mappings: Vec<Mapping>,
    kernel_pages: Vec<Vec<u8>>,
}

/// The state of the kernel, with the result registers of `caller` blanked.
fn snapshot(k: &mut K, caller: usize) -> Snapshot {
    let frames: Vec<PhysAddr> = (0..k.frames.frame_count())
        .map(|i| PhysAddr::new(RAM_BASE + i as u64 * PAGE_SIZE))
        .collect();
    let owners = frames.iter().map(|&f| k.frames.owner(f)).collect();
    let bound = frames.iter().map(|&f| k.bound.get(f)).collect();
    let grants = k.grants.iter().map(|(s, g)| (s, *g)).collect();
    let mut partitions = Vec::new();
    for id in 0..k.count {
        let maps = mappings(k, id);
        let p = k.partition(pid(id)).unwrap();
        let mut regs = p.regs;
        if id == caller {
            regs.x[..4].fill(0);
        }
        let kernel_pages = p
            .kernel_pages
            .bindings()
            .skip(1)
            .map(|(_, f)| k.platform.frame(f).to_vec())
            .collect();
        // A partition waiting for an event it already has is runnable: the scheduler wakes
        // it whenever it looks (a borrower's call can pass a lent slot on), which is no
        // change of state an erroring call made.
        let state = match p.state {
            State::WaitingEvent if k.has_event(pid(id)) => State::Runnable,
            other => other,
        };
        partitions.push(PartitionSnapshot {
            state,
            regs,
            revocation: p.revocation,
            pending: p.pending_alloc,
            upcalls: p.upcalls,
            aborts: p.aborts,
            last_sequence: p.last_sequence,
            table_frames: p.table_pool.in_use,
            mappings: maps,
            kernel_pages,
        });
    }
    Snapshot {
        owners,
        bound,
        grants,
        partitions,
    }
}

/// Asserts that a call fails with `expected` and changes nothing.
fn refused(k: &mut K, p: usize, function: u32, args: &[u64], expected: Error) {
    let before = snapshot(k, p);
    let got = result(k, p, function, args);
    assert_eq!(got, Err(expected), "call {function:#x} {args:#x?}");
    let after = snapshot(k, p);
    assert!(
        before == after,
        "refused call {function:#x} {args:#x?} changed the state"
    );
    k.self_check().unwrap();
}

fn two() -> K {
    build(256, &[Config::new("a", 32, 400), Config::new("b", 64, 0)])
}

// ---------------------------------------------------------------------------------------
// Scenario tests.

// ---------------------------------------------------------------------------------------
// Interrupt and CPU secure bindings.

/// Two partitions: "dev" owns SPIs 40..48, "other" owns 50; "other" may talk to "dev".
fn interrupt_kernel() -> K {
    let mut dev = Config::new("dev", 32, 0);
    dev.interrupts = &[40, 41, 42, 43, 44, 45, 46, 47];
    let mut other = Config::new("other", 32, 0);
    other.interrupts = &[50];
    other.talks_to = 0b01;
    build(2048, &[dev, other])
}

#[test]
fn only_the_owner_may_drive_an_interrupt() {
    let mut k = interrupt_kernel();
    for function in [EXO_IRQ_ENABLE, EXO_IRQ_DISABLE, EXO_IRQ_RAISE] {
        assert_eq!(result(&mut k, 1, function, &[40]), err(Error::NotOwner));
    }
    assert_eq!(
        result(&mut k, 1, EXO_IRQ_SET_PRIORITY, &[40, 0x10]),
        err(Error::NotOwner)
    );
    assert_eq!(
        result(&mut k, 1, EXO_IRQ_SET_TARGET, &[40, 0]),
        err(Error::NotOwner)
    );
    assert_eq!(
        result(&mut k, 1, EXO_IRQ_ENABLE, &[26]),
        err(Error::NotOwner)
    );
    assert_eq!(
        result(&mut k, 1, EXO_IRQ_ENABLE, &[1020]),
        err(Error::InvalidParameter)
    );
    assert_eq!(
        result(&mut k, 1, EXO_IRQ_ENABLE, &[u64::MAX]),
        err(Error::InvalidParameter)
    );
    assert!(
        k.platform.spi_log.is_empty(),
        "refused calls touched the GIC"
    );

    assert_eq!(result(&mut k, 0, EXO_IRQ_ENABLE, &[40]), Ok(0));
    assert_eq!(result(&mut k, 0, EXO_IRQ_SET_TARGET, &[40, 0]), Ok(0));
    assert_eq!(
        result(&mut k, 0, EXO_IRQ_SET_TARGET, &[40, 3]),
        err(Error::InvalidParameter)
    );
    assert_eq!(
        result(&mut k, 0, EXO_IRQ_SET_PRIORITY, &[40, 256]),
        err(Error::InvalidParameter)
    );
    assert_eq!(result(&mut k, 0, EXO_IRQ_RAISE, &[40]), Ok(0));
    assert_eq!(
        k.platform.spi_log,
        vec![
            (40, SpiOp::Enable),
            (40, SpiOp::Target(CoreId::BOOT)),
            (40, SpiOp::Raise)
        ]
    );
    // The physical interrupt reaches its owner, whoever runs.
    k.run_as(pid(1));
    assert_eq!(k.interrupt(40), Step::Resume);
    assert!(k.partition(pid(0)).unwrap().virq.queued.contains(40));
    assert!(k.partition(pid(1)).unwrap().virq.queued.is_empty());
}

#[test]
fn more_pending_than_list_registers_loses_none() {
    let mut k = interrupt_kernel();
    k.run_as(pid(0));
    for intid in 40..48 {
        k.interrupt(intid);
    }
    assert_eq!(
        result(&mut k, 0, EXO_IRQ_RAISE, &[u64::from(signal::MESSAGE)]),
        Ok(0)
    );
    let mut seen = Vec::new();
    for _ in 0..4 {
        k.before_resume();
        let handled = k.platform.guest_handles_all();
        assert!(handled.len() <= FAKE_LIST_REGISTERS);
        let queued = !k.partition(pid(0)).unwrap().virq.queued.is_empty();
        assert_eq!(
            k.platform.underflow, queued,
            "maintenance interrupt iff more wait"
        );
        seen.extend(handled);
    }
    let mut intids: Vec<u32> = seen.iter().map(|i| i.intid).collect();
    intids.sort();
    let mut expected: Vec<u32> = (40..48).collect();
    expected.insert(0, signal::MESSAGE);
    assert_eq!(intids, expected, "each interrupt exactly once");
    assert!(seen.iter().all(|i| i.hardware == (i.intid >= 32)));
    // The first four went straight into the list registers of the running partition;
    // four SPIs and the signal waited.
    assert_eq!(k.partition(pid(0)).unwrap().virq.queue_high_water, 5);
}

#[test]
fn waiting_for_an_event_sleeps_until_an_interrupt_or_the_timer() {
    let mut k = interrupt_kernel();
    // Nothing pending: p0 sleeps, p1 gets the CPU.
    let (_, step) = call(&mut k, 0, EXO_WAIT_EVENT, &[]);
    assert_eq!(step, Step::Switch(pid(1)));
    assert_eq!(k.partition(pid(0)).unwrap().state, State::WaitingEvent);
    // p1 yields: p0 still has nothing, p1 keeps running.
    assert_eq!(call(&mut k, 1, EXO_YIELD, &[]).1, Step::Resume);
    // p0's SPI fires while p1 runs: p0 runs at the next decision.
    k.interrupt(41);
    assert_eq!(call(&mut k, 1, EXO_YIELD, &[]).1, Step::Switch(pid(0)));
    assert_eq!(k.regs_mut(pid(0)).unwrap().x[0], 0);
    // Its virtual timer wakes it too, even while it is not loaded.
    k.platform.guest_handles_all();
    k.before_resume();
    k.platform.guest_handles_all();
    k.platform.timers.insert(pid(0), 500);
    assert_eq!(call(&mut k, 0, EXO_WAIT_EVENT, &[]).1, Step::Switch(pid(1)));
    assert_eq!(call(&mut k, 1, EXO_YIELD, &[]).1, Step::Resume);
    k.platform.now.set(500);
    assert_eq!(call(&mut k, 1, EXO_YIELD, &[]).1, Step::Switch(pid(0)));
    // Everyone waits; the CPU idles until p0's timer.
    k.platform.timers.insert(pid(0), 900);
    assert_eq!(call(&mut k, 0, EXO_WAIT_EVENT, &[]).1, Step::Switch(pid(1)));
    assert_eq!(
        call(&mut k, 1, EXO_WAIT_EVENT, &[]).1,
        Step::Idle(Some(900))
    );
    k.platform.now.set(900);
    assert_eq!(k.schedule(), Step::Switch(pid(0)));
    // Nobody can ever wake: power off and report it.
    k.platform.timers.clear();
    assert_eq!(call(&mut k, 0, EXO_WAIT_EVENT, &[]).1, Step::PowerOff);
}

#[test]
fn an_ended_partition_gives_its_interrupts_back() {
    let mut k = interrupt_kernel();
    assert_eq!(result(&mut k, 0, EXO_IRQ_ENABLE, &[42]), Ok(0));
    k.interrupt(42);
    call(&mut k, 0, EXO_EXIT, &[0]);
    let released: Vec<u32> = k
        .platform
        .spi_log
        .iter()
        .filter(|(_, op)| *op == SpiOp::Release)
        .map(|&(i, _)| i)
        .collect();
    assert_eq!(released, (40..48).collect::<Vec<_>>());
    assert!(k.partition(pid(0)).unwrap().virq.queued.is_empty());
    // A late interrupt has nobody to go to: silenced, not delivered, no panic.
    k.platform.spi_log.clear();
    k.interrupt(42);
    assert_eq!(k.platform.spi_log, vec![(42, SpiOp::Release)]);
    assert_eq!(
        result(&mut k, 1, EXO_IRQ_ENABLE, &[42]),
        err(Error::NotOwner)
    );
}

#[test]
fn an_ended_partitions_timer_wakes_nobody() {
    let mut k = interrupt_kernel();
    k.platform.timers.insert(pid(0), 100);
    k.platform.timers.insert(pid(1), 900);
    assert_eq!(call(&mut k, 1, EXO_WAIT_EVENT, &[]).1, Step::Switch(pid(0)));
    call(&mut k, 0, EXO_EXIT, &[0]);
    assert!(
        !k.platform.timers.contains_key(&pid(0)),
        "the platform was not told the vCPU ended"
    );
    assert_eq!(k.schedule(), Step::Idle(Some(900)));
}

#[test]
fn signals_become_virtual_interrupts_when_enabled() {
    let mut k = interrupt_kernel();
    let msg = u64::from(signal::MESSAGE);
    assert_eq!(result(&mut k, 0, EXO_IRQ_ENABLE, &[msg]), Ok(0));
    assert_eq!(result(&mut k, 0, EXO_RECEIVE, &[]), err(Error::NotRequired));
    assert_eq!(call(&mut k, 0, EXO_WAIT_EVENT, &[]).1, Step::Switch(pid(1)));
    assert_eq!(result(&mut k, 1, EXO_SEND, &[0, 0xFEED]), Ok(0));
    assert_eq!(call(&mut k, 1, EXO_YIELD, &[]).1, Step::Switch(pid(0)));
    k.before_resume();
    let delivered = k.platform.guest_handles_all();
    assert_eq!(
        delivered.iter().map(|i| i.intid).collect::<Vec<_>>(),
        vec![signal::MESSAGE]
    );
    assert!(!delivered[0].hardware);
    // Raised once per message, not on every resume.
    k.before_resume();
    assert!(k.platform.guest_handles_all().is_empty());
    // A library OS with an upcall entry that has not taken the message yet still sleeps:
    // the signal was its news.
    assert_eq!(result(&mut k, 0, EXO_SET_UPCALL, &[0x4000_0100, 0]), Ok(0));
    assert_eq!(call(&mut k, 0, EXO_WAIT_EVENT, &[]).1, Step::Switch(pid(1)));
    assert_eq!(call(&mut k, 1, EXO_YIELD, &[]).1, Step::Resume);
    k.run_as(pid(0));
    assert_eq!(call(&mut k, 0, EXO_RECEIVE, &[]).0[..2], [1, 0xFEED]);
    assert_eq!(result(&mut k, 0, EXO_RECEIVE, &[]), err(Error::NotRequired));
}

#[test]
fn donation_runs_the_target_now_and_the_vector_decides_after() {
    let mut k = build(
        2048,
        &[
            Config::new("a", 32, 0),
            Config::new("b", 32, 0),
            Config::new("c", 32, 0),
        ],
    );
    assert_eq!(
        result(&mut k, 0, EXO_DONATE, &[0]),
        err(Error::UnknownPartition)
    );
    assert_eq!(
        result(&mut k, 0, EXO_DONATE, &[9]),
        err(Error::UnknownPartition)
    );
    k.run_as(pid(0));
    assert_eq!(call(&mut k, 0, EXO_DONATE, &[2]).1, Step::Switch(pid(2)));
    assert_eq!(k.current(), pid(2));
    // The slice still belongs to slot 0: the next slot is b's.
    assert_eq!(k.preempt(), Step::Switch(pid(1)));
    // A target that cannot run is refused.
    call(&mut k, 2, EXO_WAIT_EVENT, &[]);
    assert_eq!(result(&mut k, 1, EXO_DONATE, &[2]), err(Error::Busy));
}

#[test]
fn loads_partitions_with_kernel_pages() {
    let mut k = two();
    for p in 0..2 {
        assert_eq!(held(&k, p), BOOT_PAGES as usize);
        assert_eq!(state(&k, p), State::Runnable);
        let (pa, attrs) = k.translate(pid(p), Ipa::new(0x4000_0000)).unwrap();
        assert_eq!(&k.platform.frame(pa)[..4], &[0x1f, 0x20, 0x03, 0xd5]);
        assert!(attrs.execute && !attrs.write);
        let (_, attrs) = k.translate(pid(p), Ipa::new(BUFFER)).unwrap();
        assert!(attrs.write);
        let (_, attrs) = k.translate(pid(p), info::REVOCATION_PAGE_IPA).unwrap();
        assert!(attrs.read && !attrs.write);
        assert_eq!(revocation_page(&k, p).state, RequestState::Idle);
        assert!(vector(&k, p).is_empty());
        assert_eq!(k.regs_mut(pid(p)).unwrap().pc, 0x4000_0000);
    }
    assert_eq!(
        result(&mut k, 0, EXO_MEM_INFO, &[]),
        Ok(BOOT_PAGES),
        "MEM_INFO x0 = held"
    );
    assert_eq!(result(&mut k, 1, EXO_SELF_CHECK, &[]), Err(Error::Denied));
}

#[test]
fn alloc_bind_unbind_free_round_trip() {
    let mut k = two();
    let free_before = free(&k);
    let frames = alloc(&mut k, 0, 3);
    assert_eq!(held(&k, 0), BOOT_PAGES as usize + 3);
    assert_eq!(free(&k), free_before - 3);
    let distinct: BTreeSet<_> = frames.iter().collect();
    assert_eq!(distinct.len(), 3);
    for (i, &f) in frames.iter().enumerate() {
        assert_eq!(k.frames.owner(f), Some(owner_of(&k, 0)));
        assert!(is_zero(&k, f));
        let ipa = HEAP + i as u64 * PAGE_SIZE;
        assert_eq!(result(&mut k, 0, EXO_BIND, &[f.raw(), ipa, rw()]), Ok(0));
        let (pa, attrs) = k.translate(pid(0), Ipa::new(ipa + 8)).unwrap();
        assert_eq!(pa, f.add(8));
        assert!(attrs.read && attrs.write && !attrs.execute);
        assert_eq!(k.bound.get(f), Some(Ipa::new(ipa)));
    }
    k.self_check().unwrap();
    let vmid = k.partition(pid(0)).unwrap().vmid;
    for (i, &f) in frames.iter().enumerate() {
        let ipa = HEAP + i as u64 * PAGE_SIZE;
        junk(&mut k, f);
        k.platform.tlb.borrow_mut().clear();
        assert_eq!(result(&mut k, 0, EXO_UNBIND, &[ipa]), Ok(f.raw()));
        assert_eq!(
            *k.platform.tlb.borrow(),
            vec![TlbEvent::Ipa(vmid, Ipa::new(ipa))],
            "unbind invalidates exactly that IPA"
        );
        assert_eq!(k.translate(pid(0), Ipa::new(ipa)), None);
        assert_eq!(result(&mut k, 0, EXO_FRAME_FREE, &[f.raw()]), Ok(0));
        assert_eq!(k.frames.owner(f), Some(Owner::Free));
        assert!(is_zero(&k, f), "freed frames are scrubbed");
    }
    assert_eq!(held(&k, 0), BOOT_PAGES as usize);
    // Tables come from the partition's own pool: free memory is untouched by binding.
    assert_eq!(free(&k), free_before);
    // A frame by name.
    let f = some_free(&k);
    assert_eq!(
        result(&mut k, 1, EXO_FRAME_ALLOC_AT, &[f.raw()]),
        Ok(f.raw())
    );
    assert_eq!(k.frames.owner(f), Some(owner_of(&k, 1)));
    refused(&mut k, 1, EXO_FRAME_ALLOC_AT, &[f.raw()], Error::Busy);
    refused(
        &mut k,
        0,
        EXO_FRAME_ALLOC_AT,
        &[f.raw()],
        Error::OtherPartition,
    );
    refused(
        &mut k,
        0,
        EXO_FRAME_ALLOC_AT,
        &[f.raw() + 1],
        Error::Unaligned,
    );
    refused(
        &mut k,
        0,
        EXO_FRAME_ALLOC_AT,
        &[RAM_BASE],
        Error::KernelMemory,
    );
    refused(&mut k, 0, EXO_FRAME_ALLOC_AT, &[0x1000], Error::NotRam);
    k.self_check().unwrap();
}

#[test]
fn bind_errors_change_nothing() {
    let mut k = build(
        256,
        &[
            Config::new("a", 32, 400),
            Config::new("b", 64, 0),
            Config::new("c", BOOT_PAGES, 0),
        ],
    );
    let f = alloc(&mut k, 0, 1)[0];
    let b_frame = k.translate(pid(1), Ipa::new(BUFFER)).unwrap().0;
    let table_frame = k.frames.owned_by(Owner::Kernel).last().unwrap();
    let a_frees = some_free(&k);
    let end = k.frames.end().raw();
    let bind_at = |pa: PhysAddr, ipa: u64, attrs: u64| [pa.raw(), ipa, attrs];
    let cases: Vec<([u64; 3], Error)> = vec![
        (bind_at(f.add(8), HEAP, rw()), Error::Unaligned),
        (bind_at(f, HEAP + 8, rw()), Error::Unaligned),
        (bind_at(f, 0x3FFF_0000, rw()), Error::IpaOutOfRange),
        (bind_at(f, 0x3FFF_F000, bind::READ), Error::IpaOutOfRange),
        (bind_at(f, 1 << 39, rw()), Error::IpaOutOfRange),
        (bind_at(f, !0xFFF, rw()), Error::IpaOutOfRange),
        (bind_at(f, 0x4000_1000, rw()), Error::Overlap),
        (bind_at(b_frame, HEAP, rw()), Error::OtherPartition),
        (
            bind_at(PhysAddr::new(RAM_BASE), HEAP, rw()),
            Error::KernelMemory,
        ),
        (bind_at(table_frame, HEAP, bind::READ), Error::KernelMemory),
        (bind_at(a_frees, HEAP, rw()), Error::NotOwner),
        (
            bind_at(PhysAddr::new(0x1000_0000), HEAP, rw()),
            Error::NotRam,
        ),
        (bind_at(PhysAddr::new(end), HEAP, rw()), Error::NotRam),
        (bind_at(f, HEAP, 0), Error::InvalidParameter),
        (bind_at(f, HEAP, 16 | bind::READ), Error::InvalidParameter),
        (
            bind_at(f, HEAP, bind::DEVICE | bind::READ),
            Error::InvalidParameter,
        ),
    ];
    for (args, expected) in cases {
        refused(&mut k, 0, EXO_BIND, &args, expected);
    }
    assert_eq!(result(&mut k, 0, EXO_BIND, &[f.raw(), HEAP, rw()]), Ok(0));
    refused(
        &mut k,
        0,
        EXO_BIND,
        &[f.raw(), HEAP + PAGE_SIZE, rw()],
        Error::Busy,
    );
    refused(&mut k, 0, EXO_FRAME_FREE, &[f.raw()], Error::Busy);
    // The bind took free frames for tables.
    let a_frees = some_free(&k);
    refused(
        &mut k,
        0,
        EXO_FRAME_FREE,
        &[b_frame.raw()],
        Error::OtherPartition,
    );
    refused(&mut k, 0, EXO_FRAME_FREE, &[a_frees.raw()], Error::NotOwner);
    refused(&mut k, 0, EXO_FRAME_FREE, &[RAM_BASE], Error::KernelMemory);
    refused(&mut k, 0, EXO_FRAME_FREE, &[f.raw() + 8], Error::Unaligned);
    refused(&mut k, 0, EXO_FRAME_FREE, &[0], Error::NotRam);
    refused(
        &mut k,
        0,
        EXO_UNBIND,
        &[HEAP + PAGE_SIZE],
        Error::BadAddress,
    );
    refused(&mut k, 0, EXO_UNBIND, &[HEAP + 1], Error::Unaligned);
    refused(
        &mut k,
        0,
        EXO_UNBIND,
        &[info::INFO_PAGE_IPA.raw()],
        Error::IpaOutOfRange,
    );
    refused(&mut k, 0, EXO_UNBIND, &[1 << 39], Error::IpaOutOfRange);
    // Quota: c holds exactly its guarantee and may not borrow.
    refused(
        &mut k,
        2,
        EXO_FRAME_ALLOC,
        &[1, BUFFER],
        Error::QuotaExhausted,
    );
    refused(
        &mut k,
        2,
        EXO_FRAME_ALLOC_AT,
        &[a_frees.raw()],
        Error::QuotaExhausted,
    );
    refused(
        &mut k,
        0,
        EXO_FRAME_ALLOC,
        &[0, BUFFER],
        Error::InvalidParameter,
    );
    refused(
        &mut k,
        0,
        EXO_FRAME_ALLOC,
        &[513, BUFFER],
        Error::InvalidParameter,
    );
    refused(
        &mut k,
        0,
        EXO_FRAME_ALLOC,
        &[420, BUFFER],
        Error::QuotaExhausted,
    );
    refused(
        &mut k,
        0,
        EXO_FRAME_ALLOC,
        &[1, 0x4000_0000],
        Error::BadAddress,
    );
    refused(
        &mut k,
        0,
        EXO_FRAME_ALLOC,
        &[2, 0x4000_FFF8],
        Error::BadAddress,
    );
    refused(
        &mut k,
        0,
        EXO_FRAME_ALLOC,
        &[1, u64::MAX - 3],
        Error::BadAddress,
    );
    refused(
        &mut k,
        0,
        EXO_FRAME_ALLOC,
        &[1, info::INFO_PAGE_IPA.raw()],
        Error::BadAddress,
    );
    refused(&mut k, 0, 0xC600_00FF, &[], Error::NotSupported);
    refused(&mut k, 0, 0x1234, &[], Error::NotSupported);
    k.self_check().unwrap();
}

/// A borrows every free frame (binding `bound` of them first); B then claims `claim`.
fn exhaust_and_claim(k: &mut K, bound: u64, claim: u64) -> (Vec<PhysAddr>, Vec<PhysAddr>) {
    let first = alloc(k, 0, bound);
    for (i, f) in first.iter().enumerate() {
        let ipa = HEAP + i as u64 * PAGE_SIZE;
        assert_eq!(result(k, 0, EXO_BIND, &[f.raw(), ipa, rw()]), Ok(0));
    }
    let rest = free(k) as u64;
    let unbound = alloc(k, 0, rest);
    assert_eq!(free(k), 0);
    assert_eq!(
        result(k, 0, EXO_FRAME_ALLOC, &[1, BUFFER]),
        err(Error::OutOfMemory),
        "borrowing from nothing"
    );
    let (_, step) = call(k, 1, EXO_FRAME_ALLOC, &[claim, BUFFER]);
    assert_ne!(step, Step::Resume, "the claimant blocks");
    assert_eq!(state(k, 1), State::Blocked);
    k.self_check().unwrap();
    (first, unbound)
}

#[test]
fn cooperative_revocation() {
    let mut k = two();
    assert_eq!(result(&mut k, 0, EXO_SET_UPCALL, &[0x4000_0800, 0]), Ok(0));
    let (bound, unbound) = exhaust_and_claim(&mut k, 4, 10);
    let request = revocation_page(&k, 0);
    assert_eq!(request.state, RequestState::Pending);
    assert_eq!(request.frames_owed, 10);
    assert_eq!(request.frames_requested, 10);
    assert_eq!(request.sequence, 1);
    assert_eq!(request.deadline, request.issued_at + ticks(1000));
    assert_eq!(result(&mut k, 0, EXO_REVOKE_ACK, &[]), Ok(10));
    // The upcall is delivered when A next runs.
    k.run_as(pid(0));
    k.before_resume();
    let regs = *k.regs_mut(pid(0)).unwrap();
    assert_eq!(regs.pc, 0x4000_0800);
    assert_eq!(regs.x[0], upcall::REVOCATION);
    assert_eq!(regs.x[1], 1);
    // A gives back its four bound frames and six unbound ones, dirty.
    let mut given = Vec::new();
    for (i, &f) in bound.iter().enumerate() {
        junk(&mut k, f);
        assert_eq!(
            result(&mut k, 0, EXO_UNBIND, &[HEAP + i as u64 * PAGE_SIZE]),
            Ok(f.raw())
        );
    }
    for &f in bound.iter().chain(&unbound[..6]) {
        junk(&mut k, f);
        assert_eq!(state(&k, 1), State::Blocked);
        assert_eq!(result(&mut k, 0, EXO_FRAME_FREE, &[f.raw()]), Ok(0));
        given.push(f);
        k.self_check().unwrap();
    }
    assert_eq!(state(&k, 1), State::Runnable);
    assert_eq!(
        k.regs_mut(pid(1)).unwrap().x[0],
        10,
        "B's call returns the count"
    );
    let got: BTreeSet<PhysAddr> = read_words(&mut k, 1, BUFFER, 10)
        .into_iter()
        .map(PhysAddr::new)
        .collect();
    assert_eq!(got, given.iter().copied().collect());
    for &f in &given {
        assert_eq!(k.frames.owner(f), Some(owner_of(&k, 1)));
        assert!(is_zero(&k, f), "revoked frames reach B scrubbed");
    }
    let request = revocation_page(&k, 0);
    assert_eq!(request.state, RequestState::Met);
    assert_eq!(request.frames_owed, 0);
    assert_eq!(result(&mut k, 0, EXO_REVOKE_ACK, &[]), Ok(0));
    assert!(vector(&k, 0).is_empty(), "nothing was taken by force");
    assert_eq!(k.partition(pid(0)).unwrap().aborts, 0);
    k.self_check().unwrap();
}

fn abort_scenario(max_aborts: u32) -> (K, Vec<PhysAddr>) {
    let mut a = Config::new("a", 32, 400);
    a.max_aborts = max_aborts;
    let mut k = build(256, &[a, Config::new("b", 64, 0)]);
    // A binds (nearly) everything it borrows, so the abort has to break bindings.
    let spare = free(&k) as u64; // tables come from A's own pool
    let bound = alloc(&mut k, 0, spare);
    for (i, f) in bound.iter().enumerate() {
        let ipa = HEAP + i as u64 * PAGE_SIZE;
        assert_eq!(result(&mut k, 0, EXO_BIND, &[f.raw(), ipa, rw()]), Ok(0));
    }
    assert_eq!(free(&k), 0);
    let (_, step) = call(&mut k, 1, EXO_FRAME_ALLOC, &[10, BUFFER]);
    assert_ne!(step, Step::Resume);
    assert_eq!(state(&k, 1), State::Blocked);
    (k, bound)
}

#[test]
fn abort_takes_what_is_owed() {
    let (mut k, bound) = abort_scenario(1);
    // Before the deadline nothing happens.
    k.platform.now.set(ticks(1000) - 1);
    assert_eq!(result(&mut k, 0, EXO_MEM_INFO, &[]).map(|_| ()), Ok(()));
    assert_eq!(state(&k, 1), State::Blocked);
    let vmid = k.partition(pid(0)).unwrap().vmid;
    k.platform.tlb.borrow_mut().clear();
    k.platform.now.set(ticks(1000));
    let a_before = held(&k, 0);
    assert!(result(&mut k, 0, EXO_MEM_INFO, &[]).is_ok());
    assert_eq!(held(&k, 0), a_before - 10);
    let entries = vector(&k, 0);
    assert_eq!(entries.len(), 10);
    let tlb = k.platform.tlb.borrow().clone();
    for (e, (i, &f)) in entries.iter().zip(bound.iter().enumerate()) {
        // No loss order: the lowest frames holding none of its boot RAM (all bound
        // outside it here), in address order. `bound` came from one allocation, in address order.
        let ipa = Ipa::new(HEAP + i as u64 * PAGE_SIZE);
        assert_eq!(e.phys, f);
        assert_eq!(e.ipa, Some(ipa));
        assert_eq!(e.reason, Reason::Aborted);
        assert_eq!(e.sequence, 1);
        assert_eq!(k.translate(pid(0), ipa), None, "A's binding is gone");
        assert!(tlb.contains(&TlbEvent::Ipa(vmid, ipa)), "TLB invalidated");
        assert_eq!(k.frames.owner(f), Some(owner_of(&k, 1)));
    }
    assert_eq!(state(&k, 1), State::Runnable);
    assert_eq!(k.regs_mut(pid(1)).unwrap().x[0], 10);
    let got: BTreeSet<u64> = read_words(&mut k, 1, BUFFER, 10).into_iter().collect();
    let taken: BTreeSet<u64> = entries.iter().map(|e| e.phys.raw()).collect();
    assert_eq!(got, taken);
    let request = revocation_page(&k, 0);
    assert_eq!(request.state, RequestState::Aborted);
    assert_eq!(k.partition(pid(0)).unwrap().aborts, 1);
    assert_eq!(state(&k, 0), State::Runnable, "one abort is allowed");
    assert!(k.partition(pid(0)).unwrap().upcalls.repossession.is_some());
    k.self_check().unwrap();
}

#[test]
fn abort_beyond_the_limit_terminates() {
    let (mut k, _) = abort_scenario(0);
    k.platform.now.set(ticks(5000));
    let (_, step) = call(&mut k, 0, EXO_MEM_INFO, &[]);
    assert_eq!(step, Step::Switch(pid(1)));
    assert_eq!(
        state(&k, 0),
        State::Finished(Outcome::Terminated { aborts: 1 })
    );
    assert_eq!(held(&k, 0), 0);
    assert!(k.partition(pid(0)).unwrap().stage2.is_none());
    assert_eq!(state(&k, 1), State::Runnable);
    assert_eq!(k.regs_mut(pid(1)).unwrap().x[0], 10);
    let vmid = k.partition(pid(0)).unwrap().vmid;
    assert!(k.platform.tlb.borrow().contains(&TlbEvent::Vmid(vmid)));
    assert_eq!(
        k.frames.count(Owner::Kernel),
        KERNEL_IMAGE_FRAMES + 6 + k.partition(pid(1)).unwrap().table_pool.reserved() as usize,
        "A's kernel pages and tables are back in the pool"
    );
    k.self_check().unwrap();
}

#[test]
fn nobody_left_to_comply_aborts_at_once() {
    let (mut k, _) = abort_scenario(1);
    // A exits: its frames are reclaimed and B completes.
    let (_, step) = call(&mut k, 0, EXO_EXIT, &[0]);
    assert_eq!(step, Step::Switch(pid(1)));
    assert_eq!(state(&k, 1), State::Runnable);
    assert_eq!(k.regs_mut(pid(1)).unwrap().x[0], 10);
    assert_eq!(held(&k, 0), 0);
    k.self_check().unwrap();
}

#[test]
fn grants() {
    let mut k = two();
    let f = alloc(&mut k, 0, 1)[0];
    refused(
        &mut k,
        0,
        EXO_GRANT,
        &[f.raw(), 0, bind::READ],
        Error::UnknownPartition,
    );
    refused(
        &mut k,
        0,
        EXO_GRANT,
        &[f.raw(), 7, bind::READ],
        Error::UnknownPartition,
    );
    refused(
        &mut k,
        0,
        EXO_GRANT,
        &[f.raw(), 1, bind::WRITE],
        Error::InvalidParameter,
    );
    refused(
        &mut k,
        0,
        EXO_GRANT,
        &[f.raw(), 1, 0],
        Error::InvalidParameter,
    );
    refused(
        &mut k,
        1,
        EXO_GRANT,
        &[f.raw(), 0, bind::READ],
        Error::OtherPartition,
    );
    refused(
        &mut k,
        1,
        EXO_BIND,
        &[f.raw(), HEAP, bind::READ],
        Error::OtherPartition,
    );
    assert_eq!(
        result(&mut k, 0, EXO_GRANT, &[f.raw(), 1, bind::READ]),
        Ok(0)
    );
    refused(&mut k, 0, EXO_GRANT, &[f.raw(), 1, bind::READ], Error::Busy);
    assert_eq!(
        call(&mut k, 1, EXO_GRANT_QUERY, &[0]).0[..3],
        [f.raw(), 0, bind::READ]
    );
    refused(&mut k, 1, EXO_GRANT_QUERY, &[1], Error::BadAddress);
    refused(&mut k, 1, EXO_BIND, &[f.raw(), HEAP, rw()], Error::Denied);
    refused(
        &mut k,
        1,
        EXO_BIND,
        &[f.raw(), HEAP, bind::READ | bind::EXECUTE],
        Error::Denied,
    );
    assert_eq!(
        result(&mut k, 1, EXO_BIND, &[f.raw(), HEAP, bind::READ]),
        Ok(0)
    );
    let (pa, attrs) = k.translate(pid(1), Ipa::new(HEAP)).unwrap();
    assert_eq!(pa, f);
    assert!(attrs.read && !attrs.write);
    refused(
        &mut k,
        1,
        EXO_BIND,
        &[f.raw(), HEAP + PAGE_SIZE, bind::READ],
        Error::Busy,
    );
    refused(&mut k, 1, EXO_FRAME_FREE, &[f.raw()], Error::OtherPartition);
    refused(
        &mut k,
        1,
        EXO_GRANT,
        &[f.raw(), 0, bind::READ],
        Error::OtherPartition,
    );
    // The owner can bind it too.
    assert_eq!(result(&mut k, 0, EXO_BIND, &[f.raw(), HEAP, rw()]), Ok(0));
    k.self_check().unwrap();
    assert_eq!(result(&mut k, 0, EXO_UNBIND, &[HEAP]), Ok(f.raw()));
    // Freeing the frame ends the grant and B's binding.
    let vmid_b = k.partition(pid(1)).unwrap().vmid;
    k.platform.tlb.borrow_mut().clear();
    assert_eq!(result(&mut k, 0, EXO_FRAME_FREE, &[f.raw()]), Ok(0));
    assert_eq!(k.translate(pid(1), Ipa::new(HEAP)), None);
    assert!(
        k.platform
            .tlb
            .borrow()
            .contains(&TlbEvent::Ipa(vmid_b, Ipa::new(HEAP)))
    );
    assert_eq!(
        vector(&k, 1),
        vec![Repossession {
            phys: f,
            ipa: Some(Ipa::new(HEAP)),
            reason: Reason::OwnerLost,
            sequence: 0
        }]
    );
    assert_eq!(k.grants.iter().count(), 0);
    refused(&mut k, 1, EXO_GRANT_QUERY, &[0], Error::BadAddress);
    k.self_check().unwrap();

    // GRANT_REVOKE of a bound read-write grant.
    let g = alloc(&mut k, 0, 1)[0];
    assert_eq!(result(&mut k, 0, EXO_GRANT, &[g.raw(), 1, rw()]), Ok(0));
    assert_eq!(result(&mut k, 1, EXO_BIND, &[g.raw(), HEAP, rw()]), Ok(0));
    refused(
        &mut k,
        1,
        EXO_GRANT_REVOKE,
        &[g.raw(), 0],
        Error::OtherPartition,
    );
    refused(
        &mut k,
        0,
        EXO_GRANT_REVOKE,
        &[g.raw(), 0],
        Error::UnknownPartition,
    );
    assert_eq!(result(&mut k, 0, EXO_GRANT_REVOKE, &[g.raw(), 1]), Ok(0));
    assert_eq!(k.translate(pid(1), Ipa::new(HEAP)), None);
    refused(
        &mut k,
        0,
        EXO_GRANT_REVOKE,
        &[g.raw(), 1],
        Error::BadAddress,
    );
    let v = vector(&k, 1);
    assert_eq!(v.len(), 2);
    assert_eq!(v[1].phys, g);
    assert_eq!(v[1].ipa, Some(Ipa::new(HEAP)));
    assert_eq!(v[1].reason, Reason::GrantRevoked);
    assert_eq!(k.frames.owner(g), Some(owner_of(&k, 0)));
    refused(
        &mut k,
        1,
        EXO_BIND,
        &[g.raw(), HEAP, bind::READ],
        Error::OtherPartition,
    );

    // An unbound grant dies with the frame, reported without an IPA.
    assert_eq!(
        result(&mut k, 0, EXO_GRANT, &[g.raw(), 1, bind::READ]),
        Ok(0)
    );
    assert_eq!(result(&mut k, 0, EXO_FRAME_FREE, &[g.raw()]), Ok(0));
    assert_eq!(k.grants.iter().count(), 0);
    let v = vector(&k, 1);
    assert_eq!(v.len(), 3);
    assert_eq!(
        (v[2].phys, v[2].ipa, v[2].reason),
        (g, None, Reason::OwnerLost)
    );
    // And with the owner.
    let h = alloc(&mut k, 0, 1)[0];
    assert_eq!(result(&mut k, 0, EXO_GRANT, &[h.raw(), 1, rw()]), Ok(0));
    assert_eq!(
        result(&mut k, 1, EXO_BIND, &[h.raw(), HEAP, bind::READ]),
        Ok(0)
    );
    call(&mut k, 0, EXO_EXIT, &[3]);
    assert_eq!(state(&k, 0), State::Finished(Outcome::Exited(3)));
    assert_eq!(k.translate(pid(1), Ipa::new(HEAP)), None);
    assert_eq!(k.grants.iter().count(), 0);
    assert_eq!(vector(&k, 1).len(), 4);
    // Finished partitions cannot be granted to.
    let mine = alloc(&mut k, 1, 1)[0];
    refused(
        &mut k,
        1,
        EXO_GRANT,
        &[mine.raw(), 0, bind::READ],
        Error::UnknownPartition,
    );
    k.self_check().unwrap();
}

#[test]
fn upcalls() {
    let mut k = two();
    refused(&mut k, 0, EXO_UPCALL_RETURN, &[0], Error::Denied);
    refused(
        &mut k,
        0,
        EXO_SET_UPCALL,
        &[0x4000_0102, 0],
        Error::IpaOutOfRange,
    );
    refused(
        &mut k,
        0,
        EXO_SET_UPCALL,
        &[1 << 39, 0],
        Error::IpaOutOfRange,
    );
    refused(
        &mut k,
        0,
        EXO_SET_UPCALL,
        &[0x4000_0100, 2],
        Error::InvalidParameter,
    );
    assert_eq!(
        result(
            &mut k,
            0,
            EXO_SET_UPCALL,
            &[0x4000_0100, UPCALL_FLAG_FAULTS]
        ),
        Ok(0)
    );
    k.run_as(pid(0));
    k.regs_mut(pid(0)).unwrap().pc = 0x4000_0040;
    k.regs_mut(pid(0)).unwrap().x[7] = 77;
    let before = *k.regs_mut(pid(0)).unwrap();
    let abort = Stage2Abort {
        ipa: Ipa::new(0x9000_0010),
        access: Access::Write,
        kind: FaultKind::Unbound,
    };
    assert_eq!(k.stage2_abort(abort), Step::Resume);
    let regs = *k.regs_mut(pid(0)).unwrap();
    assert_eq!(regs.pc, 0x4000_0100);
    assert_eq!(regs.x[..3], [upcall::FAULT, 0x9000_0010, 1]);
    // A second fault inside the upcall stops the partition... but first, return.
    let (_, step) = call(&mut k, 0, EXO_UPCALL_RETURN, &[1]);
    assert_eq!(step, Step::Resume);
    let regs = *k.regs_mut(pid(0)).unwrap();
    assert_eq!(regs.pc, 0x4000_0044);
    assert_eq!(
        regs.x, before.x,
        "the interrupted context is restored whole"
    );
    refused(&mut k, 0, EXO_UPCALL_RETURN, &[1], Error::Denied);
    // Retry without skipping.
    assert_eq!(k.stage2_abort(abort), Step::Resume);
    call(&mut k, 0, EXO_UPCALL_RETURN, &[0]);
    assert_eq!(k.regs_mut(pid(0)).unwrap().pc, 0x4000_0044);
    // A fault while in an upcall is fatal.
    assert_eq!(k.stage2_abort(abort), Step::Resume);
    assert_eq!(k.stage2_abort(abort), Step::Switch(pid(1)));
    assert!(matches!(
        state(&k, 0),
        State::Finished(Outcome::Stage2Fault { .. })
    ));
    // Without the flag (B), a fault stops the partition; permission faults always do.
    assert_eq!(result(&mut k, 1, EXO_SET_UPCALL, &[0x4000_0100, 0]), Ok(0));
    k.run_as(pid(1));
    assert_eq!(k.stage2_abort(abort), Step::PowerOff);
    assert!(matches!(
        state(&k, 1),
        State::Finished(Outcome::Stage2Fault { .. })
    ));
    assert_eq!(k.frames.count(Owner::Free) + KERNEL_IMAGE_FRAMES, 256);
    k.self_check().unwrap();
}

#[test]
fn repossession_upcall_is_delivered_after_revocation() {
    let mut k = two();
    assert_eq!(result(&mut k, 1, EXO_SET_UPCALL, &[0x4000_0200, 0]), Ok(0));
    let f = alloc(&mut k, 0, 1)[0];
    assert_eq!(
        result(&mut k, 0, EXO_GRANT, &[f.raw(), 1, bind::READ]),
        Ok(0)
    );
    assert_eq!(
        result(&mut k, 1, EXO_BIND, &[f.raw(), HEAP, bind::READ]),
        Ok(0)
    );
    assert_eq!(result(&mut k, 0, EXO_GRANT_REVOKE, &[f.raw(), 1]), Ok(0));
    k.run_as(pid(1));
    k.before_resume();
    let regs = *k.regs_mut(pid(1)).unwrap();
    assert_eq!(regs.pc, 0x4000_0200);
    assert_eq!(regs.x[..2], [upcall::REPOSSESSION, 1]);
}

/// A claimant blocked with its buffer in a granted frame loses that binding while it waits.
/// Its call must either complete or fail without the kernel having given it frames.
#[test]
fn blocked_claimant_whose_buffer_disappears() {
    let mut k = two();
    // A lends B a frame, B binds it as its allocation buffer.
    let g = alloc(&mut k, 0, 1)[0];
    assert_eq!(result(&mut k, 0, EXO_GRANT, &[g.raw(), 1, rw()]), Ok(0));
    assert_eq!(result(&mut k, 1, EXO_BIND, &[g.raw(), HEAP, rw()]), Ok(0));
    let rest = free(&k) as u64;
    alloc(&mut k, 0, rest);
    let b_before = held(&k, 1);
    let (_, step) = call(&mut k, 1, EXO_FRAME_ALLOC, &[5, HEAP]);
    assert_ne!(step, Step::Resume);
    assert_eq!(state(&k, 1), State::Blocked);
    // A frees the granted frame (and so B's buffer), then gives back what is owed.
    assert_eq!(result(&mut k, 0, EXO_FRAME_FREE, &[g.raw()]), Ok(0));
    let mine: Vec<PhysAddr> = k
        .frames
        .owned_by(owner_of(&k, 0))
        .filter(|&f| k.bound.get(f).is_none())
        .take(5)
        .collect();
    for f in mine {
        let _ = result(&mut k, 0, EXO_FRAME_FREE, &[f.raw()]);
    }
    assert_eq!(state(&k, 1), State::Runnable);
    let x0 = k.regs_mut(pid(1)).unwrap().x[0];
    match Error::from_register(x0) {
        Ok(n) => {
            assert_eq!(n, 5);
            assert_eq!(held(&k, 1), b_before + 5);
        }
        Err(e) => assert_eq!(
            held(&k, 1),
            b_before,
            "EXO_FRAME_ALLOC failed with {e:?} but B was given frames it cannot name"
        ),
    }
    k.self_check().unwrap();
}

/// Frames freed for a blocked claimant are reserved for it: another partition taking one
/// by name must not leave the claimant waiting with no request outstanding.
#[test]
fn reserved_frames_are_not_taken_by_name() {
    let mut k = build(
        256,
        &[
            Config::new("a", 32, 400),
            Config::new("b", 64, 0),
            Config::new("c", 64, 0),
        ],
    );
    let rest = free(&k) as u64;
    let borrowed = alloc(&mut k, 0, rest);
    call(&mut k, 1, EXO_FRAME_ALLOC, &[10, BUFFER]);
    assert_eq!(state(&k, 1), State::Blocked);
    for f in &borrowed[..9] {
        assert_eq!(result(&mut k, 0, EXO_FRAME_FREE, &[f.raw()]), Ok(0));
    }
    // C, within its guarantee, names one of the nine free frames promised to B.
    let stolen = borrowed[0];
    let got = result(&mut k, 2, EXO_FRAME_ALLOC_AT, &[stolen.raw()]);
    assert_eq!(
        result(&mut k, 0, EXO_FRAME_FREE, &[borrowed[9].raw()]),
        Ok(0)
    );
    let outstanding = (0..3).any(|p| k.partition(pid(p)).unwrap().revocation.is_some());
    assert!(
        state(&k, 1) == State::Runnable || outstanding,
        "ALLOC_AT returned {got:?}; B waits for 10 frames with {} free and nobody asked to \
         return any",
        free(&k)
    );
}

/// Stage-2 tables for a new binding come from the free pool too.
#[test]
fn reserved_frames_are_not_taken_for_tables() {
    let mut k = two();
    let rest = free(&k) as u64;
    let borrowed = alloc(&mut k, 0, rest);
    call(&mut k, 1, EXO_FRAME_ALLOC, &[10, BUFFER]);
    assert_eq!(state(&k, 1), State::Blocked);
    for f in &borrowed[..9] {
        assert_eq!(result(&mut k, 0, EXO_FRAME_FREE, &[f.raw()]), Ok(0));
    }
    // A binds a frame it keeps: two table frames come out of the nine B is owed.
    let kept = borrowed[20];
    assert_eq!(
        result(&mut k, 0, EXO_BIND, &[kept.raw(), HEAP, rw()]),
        Ok(0)
    );
    assert_eq!(
        result(&mut k, 0, EXO_FRAME_FREE, &[borrowed[9].raw()]),
        Ok(0)
    );
    let outstanding = (0..2).any(|p| k.partition(pid(p)).unwrap().revocation.is_some());
    assert!(
        state(&k, 1) == State::Runnable || outstanding,
        "B waits for 10 frames with {} free and nobody asked to return any",
        free(&k)
    );
}

// ---------------------------------------------------------------------------------------
// The model test.

mod model {
    use super::*;
    use proptest::prelude::*;

    /// Partitions of the model system. RAM is large enough for every guarantee plus every
    /// kernel page and table the kernel may use, so a claim within a guarantee must never
    /// fail for lack of memory.
    fn configs() -> [Config; 3] {
        [
            Config {
                name: "p0",
                memory: BOOT_PAGES,
                guarantee: 64,
                borrow: 900,
                deadline_us: 1000,
                max_aborts: 2,
                talks_to: 0,
                interrupts: &[40, 41],
                devices: &[],
                self_check: true,
                core: 0,
            },
            Config {
                name: "p1",
                memory: BOOT_PAGES,
                guarantee: 300,
                borrow: 0,
                deadline_us: 500,
                max_aborts: 0,
                talks_to: 0,
                interrupts: &[42],
                devices: &[],
                self_check: true,
                core: 0,
            },
            Config {
                name: "p2",
                memory: BOOT_PAGES,
                guarantee: 200,
                borrow: 400,
                deadline_us: 5000,
                max_aborts: 1,
                talks_to: 0,
                interrupts: &[],
                devices: &[],
                self_check: true,
                core: 0,
            },
        ]
    }

    const FRAMES: usize = 1024;

    /// A guest-controlled value: `kind` chooses between plausible and random, `raw` feeds
    /// the choice.
    #[derive(Clone, Copy, Debug)]
    struct Pick {
        kind: u8,
        raw: u64,
    }

    fn pick() -> impl Strategy<Value = Pick> {
        (any::<u8>(), prop_oneof![3 => 0u64..4096, 1 => any::<u64>()])
            .prop_map(|(kind, raw)| Pick { kind, raw })
    }

    #[derive(Clone, Copy, Debug)]
    struct Op {
        kind: u8,
        partition: u8,
        a: Pick,
        b: Pick,
        c: Pick,
    }

    fn op() -> impl Strategy<Value = Op> {
        (any::<u8>(), 0u8..3, pick(), pick(), pick()).prop_map(|(kind, partition, a, b, c)| Op {
            kind,
            partition,
            a,
            b,
            c,
        })
    }

    /// What the test knows beyond the kernel's state.
    struct World {
        k: K,
        /// Frames a partition wrote data into, with the writer.
        dirty: BTreeMap<PhysAddr, usize>,
        /// Partitions blocked in `EXO_FRAME_ALLOC`: frames held then, buffer, count.
        blocked: [Option<(usize, u64, u64)>; 3],
        /// Issues found by checks that are reported rather than asserted.
        log: Vec<String>,
        /// Every partition's stage-2 mappings at the last check, and how long the TLB log
        /// was then: a mapping gone or changed since must have been invalidated since.
        mapped: [Vec<Mapping>; 3],
        tlb_seen: usize,
    }

    std::thread_local! {
        /// What the model test exercised, for `EXO_MODEL_STATS=1 ... --nocapture`.
        static STATS: RefCell<BTreeMap<String, usize>> = RefCell::default();
    }

    fn count(what: String) {
        STATS.with(|s| *s.borrow_mut().entry(what).or_default() += 1);
    }

    fn frame_at(k: &K, index: u64) -> PhysAddr {
        PhysAddr::new(RAM_BASE + (index % k.frames.frame_count() as u64) * PAGE_SIZE)
    }

    fn nth<T: Copy>(items: &[T], raw: u64) -> Option<T> {
        (!items.is_empty()).then(|| items[(raw % items.len() as u64) as usize])
    }

    /// Frames granted to partition `p`.
    fn granted_to(k: &K, p: usize) -> Vec<(PhysAddr, Option<Ipa>)> {
        k.grants
            .iter()
            .filter(|(_, g)| g.grantee.index() == p)
            .map(|(_, g)| (g.frame, g.bound_at))
            .collect()
    }

    fn resolve_pa(k: &K, p: usize, v: Pick) -> u64 {
        let mine: Vec<PhysAddr> = k.frames.owned_by(owner_of(k, p)).collect();
        let unbound: Vec<PhysAddr> = mine
            .iter()
            .copied()
            .filter(|&f| k.bound.get(f).is_none())
            .collect();
        let fallback = frame_at(k, v.raw).raw();
        match v.kind % 10 {
            0 | 1 => nth(&unbound, v.raw).map_or(fallback, PhysAddr::raw),
            2 | 3 => nth(&mine, v.raw).map_or(fallback, PhysAddr::raw),
            4 => nth(&granted_to(k, p), v.raw).map_or(fallback, |g| g.0.raw()),
            5 => k
                .frames
                .owned_by(Owner::Free)
                .next()
                .map_or(fallback, PhysAddr::raw),
            6 => fallback,
            7 => v.raw,
            8 => nth(&mine, v.raw).map_or(fallback, |f| f.raw() + 1 + v.raw % 4095),
            _ => [k.frames.end().raw(), RAM_BASE - PAGE_SIZE, 0, !0xFFF][(v.raw % 4) as usize],
        }
    }

    fn bound_ipas(k: &mut K, p: usize) -> Vec<u64> {
        mappings(k, p).iter().map(|m| m.ipa.raw()).collect()
    }

    fn resolve_ipa(k: &mut K, p: usize, v: Pick) -> u64 {
        match v.kind % 10 {
            0..=3 => HEAP + (v.raw % 64) * PAGE_SIZE,
            4 | 5 => {
                let ipas = bound_ipas(k, p);
                nth(&ipas, v.raw).unwrap_or(HEAP)
            }
            6 => RAM_BASE + (v.raw % BOOT_PAGES) * PAGE_SIZE,
            7 if v.raw.is_multiple_of(2) => {
                // An IPA some other partition has bound: IPAs collide across partitions.
                let q = (p + 1 + (v.raw / 2 % 2) as usize) % 3;
                let ipas = bound_ipas(k, q);
                nth(&ipas, v.raw / 4).unwrap_or(HEAP)
            }
            7 => 0x3FFF_0000 + (v.raw % 16) * PAGE_SIZE,
            8 => v.raw,
            _ => [(1 << 39) - PAGE_SIZE, 1 << 39, HEAP + 8, 0][(v.raw % 4) as usize],
        }
    }

    /// Frames partition `p` holds and binds at an IPA outside its boot memory.
    fn heap_bound(k: &K, p: usize) -> Vec<PhysAddr> {
        k.frames
            .owned_by(owner_of(k, p))
            .filter(|&f| k.bound.get(f).is_some_and(|ipa| ipa.raw() >= HEAP))
            .collect()
    }

    /// Where the holder of frame `pa` binds it, if it is a bound frame.
    fn holder_ipa(k: &K, pa: u64) -> Option<u64> {
        let frame = PhysAddr::new(pa);
        k.frames.owner(frame)?;
        k.bound.get(frame).map(Ipa::raw)
    }

    fn resolve_attrs(v: Pick) -> u64 {
        match v.kind % 10 {
            0..=3 => bind::READ | bind::WRITE,
            4 | 5 => bind::READ,
            6 => bind::READ | bind::EXECUTE,
            7 => v.raw % 16,
            8 => [0, bind::ALL, bind::WRITE, bind::READ | bind::DEVICE][(v.raw % 4) as usize],
            _ => v.raw,
        }
    }

    fn resolve_partition(p: usize, v: Pick) -> u64 {
        match v.kind % 6 {
            0..=2 => (p as u64 + 1 + v.raw % 2) % 3,
            3 => p as u64,
            4 => 3 + v.raw % 64,
            _ => v.raw,
        }
    }

    fn resolve_count(k: &K, p: usize, v: Pick) -> u64 {
        let terms = k.partition(pid(p)).unwrap().terms;
        let room = terms.guaranteed.saturating_sub(held(k, p) as u64);
        match v.kind % 12 {
            10 | 11 if room > 0 => 1 + v.raw % room.min(512),
            0..=2 | 10 | 11 => 1 + v.raw % 8,
            3..=7 => 64 + v.raw % 449,
            8 => [0, 512, 513, 600][(v.raw % 4) as usize],
            _ => v.raw,
        }
    }

    fn resolve_buffer(k: &K, p: usize, v: Pick) -> u64 {
        match v.kind % 10 {
            0..=4 => BUFFER,
            5 => BUFFER2,
            6 => granted_to(k, p)
                .iter()
                .find_map(|g| g.1)
                .map_or(BUFFER, Ipa::raw),
            7 => [
                RAM_BASE,
                RAM_BASE + BOOT_PAGES * PAGE_SIZE - 8,
                0x3FFF_E000,
                HEAP,
            ][(v.raw % 4) as usize],
            _ => v.raw,
        }
    }

    /// The partition that runs for this step: `wanted` if it can run, else the next one
    /// that can; `None` if nobody can.
    fn runnable(k: &K, wanted: usize) -> Option<usize> {
        (0..3)
            .map(|i| (wanted + i) % 3)
            .find(|&p| state(k, p) == State::Runnable)
    }

    impl World {
        fn new() -> Self {
            let mut k = build(FRAMES, &configs());
            let mapped = core::array::from_fn(|p| mappings(&mut k, p));
            let tlb_seen = k.platform.tlb.borrow().len();
            Self {
                k,
                dirty: BTreeMap::new(),
                blocked: [None; 3],
                log: Vec::new(),
                mapped,
                tlb_seen,
            }
        }

        /// No stale translation survives a step: every stage-2 mapping removed or changed
        /// since the last check was invalidated in the TLB (by IPA, or the whole VMID)
        /// before the kernel returned. Without it a partition could keep reaching a frame
        /// that has gone to another owner, through its TLB.
        fn check_tlb(&mut self) -> Result<(), TestCaseError> {
            let k = &mut self.k;
            let log = k.platform.tlb.borrow().clone();
            let since = &log[self.tlb_seen.min(log.len())..];
            for p in 0..3 {
                let now = mappings(k, p);
                let vmid = k.partition(pid(p)).unwrap().vmid;
                for old in &self.mapped[p] {
                    if now.contains(old) {
                        continue;
                    }
                    let invalidated = since
                        .iter()
                        .any(|e| *e == TlbEvent::Vmid(vmid) || *e == TlbEvent::Ipa(vmid, old.ipa));
                    prop_assert!(
                        invalidated,
                        "p{}'s mapping of {} at {} went without a TLB invalidation",
                        p,
                        old.phys,
                        old.ipa
                    );
                }
                self.mapped[p] = now;
            }
            self.tlb_seen = log.len();
            Ok(())
        }

        /// One step. Returns false when nobody can run any more.
        fn step(&mut self, op: Op) -> Result<bool, TestCaseError> {
            let kind = op.kind % 40;
            // Allocation is weighted up so memory runs out and revocation happens.
            let kind = if (32..36).contains(&kind) { 1 } else { kind };
            if kind >= 36 && op.a.kind.is_multiple_of(3) {
                // Hardware: an interrupt fires (owned, the timer's, or anyone's), or the
                // running library OS ends whatever is in its list registers.
                if op.b.kind.is_multiple_of(2) {
                    let intid = [40, 41, 42, VIRTUAL_TIMER_INTID, (op.b.raw % 1100) as u32]
                        [(op.c.raw % 5) as usize];
                    let step = self.k.interrupt(intid);
                    prop_assert_eq!(step, Step::Resume);
                    count(std::format!(
                        "interrupt {}",
                        if intid < 43 { "owned" } else { "other" }
                    ));
                } else {
                    self.k.platform.guest_handles_all();
                }
                self.after_step(None)?;
                return Ok(true);
            }
            if kind == 0 {
                // Time passes, sometimes past every deadline.
                let ticks = match op.a.kind % 4 {
                    0 => ticks(100_000),
                    _ => ticks(op.a.raw % 3000),
                };
                let now = self.k.platform.now.get();
                self.k.platform.now.set(now + ticks);
                return Ok(true);
            }
            let Some(p) = runnable(&self.k, usize::from(op.partition)) else {
                // Nobody can run: what the scheduler does then.
                let step = self.k.schedule();
                count(std::format!("nobody runnable: {step:?}"));
                self.after_step(None)?;
                return Ok(step != Step::PowerOff);
            };
            // Deadlines are checked on every trap; do it first so the call itself can be
            // checked for "an error changes nothing".
            self.k.run_as(pid(p));
            let due = (0..3).any(|q| self.k.partition(pid(q)).unwrap().revocation.is_some());
            let aborts: u32 = (0..3)
                .map(|q| self.k.partition(pid(q)).unwrap().aborts)
                .sum();
            let terminated = self.k.check_deadlines();
            if aborts
                != (0..3)
                    .map(|q| self.k.partition(pid(q)).unwrap().aborts)
                    .sum::<u32>()
            {
                count("abort at a deadline".into());
            }
            if terminated {
                count("caller terminated at a deadline".into());
                self.k.schedule();
                self.after_step(None)?;
                return Ok(true);
            }
            if due {
                self.after_step(None)?;
            }
            if state(&self.k, p) != State::Runnable {
                return Ok(true);
            }
            self.k.run_as(pid(p));
            self.k.before_resume();
            let k = &mut self.k;
            let (function, args): (u32, Vec<u64>) = match kind {
                1..=5 => (
                    EXO_FRAME_ALLOC,
                    vec![resolve_count(k, p, op.a), resolve_buffer(k, p, op.b)],
                ),
                6 | 7 => (EXO_FRAME_ALLOC_AT, vec![resolve_pa(k, p, op.a)]),
                8..=10 => (EXO_FRAME_FREE, vec![resolve_pa(k, p, op.a)]),
                11..=15 => {
                    // Often a frame granted to it, at the IPA where its holder binds it, so
                    // bindings collide across partitions.
                    let unbound_grant = granted_to(k, p).into_iter().find(|g| g.1.is_none());
                    let pa = match unbound_grant {
                        Some((frame, _)) if op.c.kind.is_multiple_of(3) => frame.raw(),
                        _ => resolve_pa(k, p, op.a),
                    };
                    let ipa = match holder_ipa(k, pa) {
                        Some(ipa) if op.b.kind % 3 != 1 => ipa,
                        _ => resolve_ipa(k, p, op.b),
                    };
                    (EXO_BIND, vec![pa, ipa, resolve_attrs(op.c)])
                }
                16 | 17 => {
                    // Often a granted frame's binding: the grantee unbinds, then the holder
                    // frees, and a third partition allocates.
                    let granted = granted_to(k, p);
                    let ipa = match granted.iter().filter_map(|g| g.1).next() {
                        Some(ipa) if op.a.kind.is_multiple_of(2) => ipa.raw(),
                        _ => resolve_ipa(k, p, op.a),
                    };
                    (EXO_UNBIND, vec![ipa])
                }
                18 | 19 => {
                    let pa = match op.a.kind % 4 {
                        0 => resolve_pa(k, p, op.a),
                        // A frame it binds outside its boot memory, so the grantee can bind
                        // it at the same IPA.
                        1 => nth(&heap_bound(k, p), op.a.raw)
                            .map_or_else(|| resolve_pa(k, p, op.a), PhysAddr::raw),
                        _ => resolve_pa(
                            k,
                            p,
                            Pick {
                                kind: 2,
                                raw: op.a.raw,
                            },
                        ),
                    };
                    let rights = match op.c.kind % 4 {
                        0 => resolve_attrs(op.c),
                        1 => bind::READ,
                        _ => bind::READ | bind::WRITE,
                    };
                    let grantee = match op.b.kind % 4 {
                        0 => resolve_partition(p, op.b),
                        _ => (p as u64 + 1 + op.b.raw % 2) % 3,
                    };
                    (EXO_GRANT, vec![pa, grantee, rights])
                }
                20 => (
                    EXO_GRANT_REVOKE,
                    vec![resolve_pa(k, p, op.a), resolve_partition(p, op.b)],
                ),
                21 => (EXO_GRANT_QUERY, vec![op.a.raw % 4]),
                22 => (EXO_REVOKE_ACK, vec![]),
                23 => {
                    let entry = match op.a.kind % 4 {
                        0 => 0,
                        1 => op.a.raw,
                        _ => 0x4000_0100,
                    };
                    (EXO_SET_UPCALL, vec![entry, op.b.raw % 3])
                }
                24 => (EXO_UPCALL_RETURN, vec![op.a.raw % 2]),
                25 => (EXO_YIELD, vec![]),
                26 => (EXO_MEM_INFO, vec![]),
                27 => {
                    let function = match op.a.kind % 3 {
                        0 => exo_call((op.a.raw % 64) as u16),
                        _ => op.a.raw as u32,
                    };
                    if matches!(
                        function,
                        EXO_EXIT | PSCI_CPU_OFF | PSCI_SYSTEM_OFF | PSCI_SYSTEM_RESET
                    ) {
                        return Ok(true);
                    }
                    (function, vec![op.b.raw, op.c.raw, op.a.raw])
                }
                28 | 29 => {
                    // The guest writes data into a frame it holds.
                    let mine: Vec<PhysAddr> = k.frames.owned_by(owner_of(k, p)).collect();
                    if let Some(f) = nth(&mine, op.a.raw) {
                        junk(k, f);
                        self.dirty.insert(f, p);
                    }
                    return Ok(true);
                }
                30 => {
                    // A stage-2 abort (rarely: it usually ends the partition).
                    if !op.b.kind.is_multiple_of(4) {
                        return Ok(true);
                    }
                    let ipa = resolve_ipa(k, p, op.a);
                    let kinds = [FaultKind::Unbound, FaultKind::Permission, FaultKind::Other];
                    let abort = Stage2Abort {
                        ipa: Ipa::new(ipa),
                        access: Access::Read,
                        kind: kinds[(op.c.raw % 3) as usize],
                    };
                    self.k.stage2_abort(abort);
                    self.after_step(None)?;
                    return Ok(true);
                }
                36..=39 => {
                    // Interrupt and CPU calls with plausible and hostile arguments.
                    let intid = match op.b.kind % 8 {
                        0..=2 => [40, 41, 42][(op.b.raw % 3) as usize],
                        3 | 4 => u64::from(signal::ALL[(op.b.raw % 3) as usize]),
                        5 => u64::from(VIRTUAL_TIMER_INTID),
                        6 => op.b.raw % 1100,
                        _ => op.b.raw,
                    };
                    let functions = [
                        EXO_IRQ_ENABLE,
                        EXO_IRQ_DISABLE,
                        EXO_IRQ_SET_PRIORITY,
                        EXO_IRQ_SET_TARGET,
                        EXO_IRQ_RAISE,
                        EXO_WAIT_EVENT,
                        EXO_RECEIVE,
                        EXO_DONATE,
                        EXO_SEND,
                    ];
                    match functions[(op.a.raw % functions.len() as u64) as usize] {
                        EXO_DONATE => (EXO_DONATE, vec![resolve_partition(p, op.c)]),
                        EXO_SEND => (EXO_SEND, vec![resolve_partition(p, op.c), op.b.raw]),
                        f @ (EXO_WAIT_EVENT | EXO_RECEIVE) => (f, vec![]),
                        f => (f, vec![intid, op.c.raw % 300]),
                    }
                }
                _ if op.a.kind.is_multiple_of(8) => (EXO_EXIT, vec![op.a.raw % 2]),
                _ if op.c.kind.is_multiple_of(3) => {
                    // A loss order: the page (its own boot RAM, a page it may have bound,
                    // or anything), listing its frames, others' and garbage.
                    let page = match op.b.kind % 4 {
                        0 | 1 => BUFFER2,
                        2 => resolve_ipa(k, p, op.b) & !0xFFF,
                        _ => 0,
                    };
                    if page == BUFFER2 {
                        let count =
                            [op.a.raw % 12, op.a.raw][usize::from(op.c.kind.is_multiple_of(5))];
                        let mut words = vec![count];
                        for i in 0..12 {
                            let v = Pick {
                                kind: op.a.kind.wrapping_add(i as u8 * 3),
                                raw: op.c.raw.rotate_left(i * 5),
                            };
                            words.push(resolve_pa(k, p, v));
                        }
                        try_write_words(k, p, BUFFER2, &words);
                    }
                    (EXO_SET_LOSS_ORDER, vec![page])
                }
                _ => {
                    // A batch release: its frames, bound or not, with now and then a bad
                    // entry (another's, free, twice, unaligned, granted).
                    let count = match op.b.kind % 8 {
                        0 => [0, 513, op.b.raw][(op.b.raw % 3) as usize],
                        _ => 1 + op.b.raw % 8,
                    };
                    let mut words = Vec::new();
                    for i in 0..count.min(8) {
                        let kind = if op.c.kind.is_multiple_of(4) {
                            op.a.kind
                        } else {
                            2
                        };
                        let v = Pick {
                            kind: kind.wrapping_add(i as u8),
                            raw: op.a.raw.wrapping_add(i * 7919),
                        };
                        words.push(resolve_pa(k, p, v));
                    }
                    try_write_words(k, p, BUFFER, &words);
                    (EXO_FRAME_RELEASE, vec![BUFFER, count])
                }
            };
            self.hypercall(p, function, &args)?;
            Ok(true)
        }

        /// Issues a hypercall from `p` and checks what it did.
        fn hypercall(
            &mut self,
            p: usize,
            function: u32,
            args: &[u64],
        ) -> Result<(), TestCaseError> {
            let k = &mut self.k;
            let before = snapshot(k, p);
            let held_before = held(k, p);
            let terms = k.partition(pid(p)).unwrap().terms;
            let grants_before: Vec<Grant> = k.grants.iter().map(|(_, g)| *g).collect();
            let mappings_before = mappings(k, p);
            let owner = owner_of(k, p);
            let (regs, _step) = call(k, p, function, args);
            let st = state(k, p);
            let outcome = match Error::from_register(regs[0]) {
                _ if st == State::Blocked => "blocked".into(),
                Ok(_) => "ok".into(),
                Err(e) => std::format!("{e:?}"),
            };
            let name = if (EXO_FRAME_ALLOC..=EXO_SET_LOSS_ORDER).contains(&function) {
                std::format!("{function:#x}")
            } else {
                "other".into()
            };
            count(std::format!("{name} {outcome}"));
            for q in 0..3 {
                if q != p && before.partitions[q].state != state(k, q) {
                    count(std::format!(
                        "p{q} {:?} -> {:?}",
                        before.partitions[q].state,
                        state(k, q)
                    ));
                }
                let aborts = k.partition(pid(q)).unwrap().aborts;
                if aborts != before.partitions[q].aborts {
                    count("abort".into());
                }
            }
            let returned = st == State::Runnable
                && !matches!(function, EXO_UPCALL_RETURN | EXO_YIELD)
                || (function == EXO_UPCALL_RETURN && before.partitions[p].upcalls.saved.is_none());
            // A claim that blocked, when nobody else could run, has the pending requests
            // aborted at once and may wake with an error (its buffer went with an aborted
            // partition's grant): the error then follows real changes.
            let aborted_inside =
                (0..3).any(|q| k.partition(pid(q)).unwrap().aborts != before.partitions[q].aborts);
            if returned {
                let x0 = regs[0];
                if (x0 as i64) < 0 && aborted_inside {
                    count("woke with an error after an abort".into());
                } else if (x0 as i64) < 0 {
                    let code = Error::ALL.iter().find(|e| e.to_register() == x0);
                    prop_assert!(code.is_some(), "unknown error code {:#x}", x0);
                    let after = snapshot(k, p);
                    if before != after {
                        // The whole state on both sides, to find what the call changed.
                        std::eprintln!("state before the call: {before:#?}");
                        std::eprintln!("state after the call: {after:#?}");
                    }
                    prop_assert!(
                        before == after,
                        "call {:#x} {:#x?} failed with {:?} but changed the state",
                        function,
                        args,
                        code
                    );
                    if function == EXO_FRAME_ALLOC
                        && x0 == Error::OutOfMemory.to_register()
                        && args[0] >= 1
                        && args[0] <= 512
                        && held_before as u64 + args[0] <= terms.guaranteed
                    {
                        self.log.push(std::format!(
                            "FRAME_ALLOC({}) within the guarantee of p{p} (held {held_before}, \
                             guarantee {}) refused with OutOfMemory",
                            args[0],
                            terms.guaranteed
                        ));
                    }
                } else {
                    let k = &mut self.k;
                    match function {
                        EXO_FRAME_ALLOC => {
                            prop_assert_eq!(x0, args[0]);
                            let count = x0 as usize;
                            prop_assert_eq!(held(k, p), held_before + count);
                            prop_assert!(
                                held(k, p) as u64 <= terms.guaranteed + terms.borrow_limit
                            );
                            Self::check_given(k, p, args[1], count, &before)?;
                        }
                        EXO_FRAME_ALLOC_AT => {
                            prop_assert_eq!(x0, args[0]);
                            let f = PhysAddr::new(x0);
                            prop_assert_eq!(k.frames.owner(f), Some(owner));
                            prop_assert_eq!(
                                before.owners[((x0 - RAM_BASE) / PAGE_SIZE) as usize],
                                Some(Owner::Free)
                            );
                            prop_assert!(is_zero(k, f));
                            prop_assert!(
                                held(k, p) as u64 <= terms.guaranteed + terms.borrow_limit
                            );
                        }
                        EXO_FRAME_FREE => {
                            let f = PhysAddr::new(args[0]);
                            let i = ((args[0] - RAM_BASE) / PAGE_SIZE) as usize;
                            prop_assert_eq!(before.owners[i], Some(owner));
                            prop_assert_eq!(before.bound[i], None);
                            prop_assert_ne!(k.frames.owner(f), Some(owner));
                            prop_assert!(is_zero(k, f));
                        }
                        EXO_BIND => {
                            let (f, ipa) = (PhysAddr::new(args[0]), Ipa::new(args[1]));
                            let i = ((args[0] - RAM_BASE) / PAGE_SIZE) as usize;
                            let held_it =
                                before.owners[i] == Some(owner) && before.bound[i].is_none();
                            let granted = grants_before.iter().any(|g| {
                                g.frame == f
                                    && g.grantee.index() == p
                                    && g.bound_at.is_none()
                                    && args[2] & !g.rights.to_register() == 0
                            });
                            prop_assert!(held_it || granted, "bind without authority");
                            prop_assert!(!mappings_before.iter().any(|m| m.ipa == ipa));
                            let (pa, attrs) = k.translate(pid(p), ipa).unwrap();
                            prop_assert_eq!(pa, f);
                            prop_assert_eq!(attrs.rights().to_register(), args[2]);
                        }
                        EXO_UNBIND => {
                            let ipa = Ipa::new(args[0]);
                            let m = mappings_before.iter().find(|m| m.ipa == ipa);
                            prop_assert!(m.is_some_and(|m| m.phys.raw() == x0));
                            prop_assert!(ipa < KERNEL_WINDOW_START || ipa >= KERNEL_WINDOW_END);
                            prop_assert_eq!(k.translate(pid(p), ipa), None);
                        }
                        EXO_GRANT => {
                            let i = ((args[0] - RAM_BASE) / PAGE_SIZE) as usize;
                            prop_assert_eq!(before.owners[i], Some(owner));
                            prop_assert!(args[1] != p as u64 && args[1] < 3);
                        }
                        EXO_MEM_INFO => {
                            prop_assert_eq!(x0, held_before as u64);
                        }
                        EXO_REVOKE_ACK => {
                            let owed = k
                                .partition(pid(p))
                                .unwrap()
                                .revocation
                                .map_or(0, |r| r.owed);
                            prop_assert_eq!(x0, owed);
                        }
                        EXO_FRAME_RELEASE => {
                            prop_assert_eq!(x0, args[1]);
                            let owed = k
                                .partition(pid(p))
                                .unwrap()
                                .revocation
                                .map_or(0, |r| r.owed);
                            prop_assert_eq!(regs[1], owed);
                            let named = read_words(k, p, args[0], args[1] as usize);
                            let distinct: BTreeSet<u64> = named.iter().copied().collect();
                            prop_assert_eq!(distinct.len(), named.len(), "a frame named twice");
                            prop_assert_eq!(held(k, p), held_before - named.len());
                            for w in named {
                                let i = ((w - RAM_BASE) / PAGE_SIZE) as usize;
                                prop_assert_eq!(before.owners[i], Some(owner));
                                prop_assert_ne!(k.frames.owner(PhysAddr::new(w)), Some(owner));
                                prop_assert_eq!(k.bound.get(PhysAddr::new(w)), None);
                                prop_assert!(is_zero(k, PhysAddr::new(w)));
                                prop_assert!(
                                    !grants_before.iter().any(|g| g.frame.raw() == w),
                                    "released a frame granted out"
                                );
                            }
                        }
                        _ => {}
                    }
                }
            }
            if st == State::Blocked {
                prop_assert_eq!(function, EXO_FRAME_ALLOC);
                prop_assert!(held_before as u64 + args[0] <= terms.guaranteed);
                self.blocked[p] = Some((held_before, args[1], args[0]));
            }
            self.after_step(Some(p))
        }

        /// Checks the frames a successful `EXO_FRAME_ALLOC` wrote to `buffer`.
        fn check_given(
            k: &mut K,
            p: usize,
            buffer: u64,
            count: usize,
            before: &Snapshot,
        ) -> Result<(), TestCaseError> {
            let owner = owner_of(k, p);
            let words = read_words(k, p, buffer, count);
            let distinct: BTreeSet<u64> = words.iter().copied().collect();
            prop_assert_eq!(distinct.len(), count, "distinct frames");
            for w in words {
                let f = PhysAddr::new(w);
                prop_assert_eq!(k.frames.owner(f), Some(owner));
                let i = ((w - RAM_BASE) / PAGE_SIZE) as usize;
                prop_assert_ne!(before.owners[i], Some(owner), "a frame it already held");
                prop_assert!(
                    is_zero(k, f) || buffer & !0xFFF == w,
                    "given frames are zeroed"
                );
            }
            Ok(())
        }

        /// Invariants after every step.
        fn after_step(&mut self, _caller: Option<usize>) -> Result<(), TestCaseError> {
            self.check_tlb()?;
            let k = &mut self.k;
            if let Err(e) = k.self_check() {
                prop_assert!(false, "self_check: {}", e);
            }
            // Interrupts: a partition only ever has its own queued, and one that ended owns
            // and waits for none.
            for p in 0..3 {
                let partition = k.partition(pid(p)).unwrap();
                for intid in partition.virq.queued.iter() {
                    prop_assert!(
                        k.irqs.ownership(pid(p), intid).is_some(),
                        "p{} has interrupt {} queued that it does not own",
                        p,
                        intid
                    );
                }
                if matches!(partition.state, State::Finished(_)) {
                    prop_assert!(partition.virq.queued.is_empty());
                    prop_assert_eq!(k.irqs.owned_by(pid(p)).count(), 0);
                }
            }
            // Conservation.
            let mut total = k.frames.count(Owner::Free) + k.frames.count(Owner::Kernel);
            for p in 0..3 {
                total += held(k, p);
            }
            prop_assert_eq!(total, k.frames.frame_count());
            // Every mapping of a live partition names a frame it holds (and recorded in
            // the binding index) or a frame granted to it and bound there; kernel pages
            // read-only.
            for p in 0..3 {
                let maps = mappings(k, p);
                let live = !matches!(state(k, p), State::Finished(_));
                prop_assert!(live || maps.is_empty(), "finished partition keeps mappings");
                prop_assert!(live || held(k, p) == 0);
                let owner = owner_of(k, p);
                let terms = k.partition(pid(p)).unwrap().terms;
                prop_assert!(held(k, p) as u64 <= terms.guaranteed + terms.borrow_limit);
                let pages = k.partition(pid(p)).unwrap().kernel_pages;
                for m in maps {
                    prop_assert_eq!(m.size, PAGE_SIZE);
                    if m.ipa >= KERNEL_WINDOW_START && m.ipa < KERNEL_WINDOW_END {
                        prop_assert!(pages.bindings().any(|b| b == (m.ipa, m.phys)));
                        prop_assert!(!m.attrs.write);
                        continue;
                    }
                    let own =
                        k.frames.owner(m.phys) == Some(owner) && k.bound.get(m.phys) == Some(m.ipa);
                    let granted = k.grants.iter().any(|(_, g)| {
                        g.frame == m.phys
                            && g.grantee.index() == p
                            && g.bound_at == Some(m.ipa)
                            && g.rights.contains(m.attrs.rights())
                    });
                    prop_assert!(
                        own || granted,
                        "p{} maps {} at {} without authority",
                        p,
                        m.phys,
                        m.ipa
                    );
                    prop_assert_eq!(m.attrs.kind, MemoryKind::Normal);
                }
            }
            // No grant outlives its frame's ownership, nor is held by or for the dead.
            for (_, g) in k.grants.iter() {
                let owner = Owner::Partition(g.owner);
                prop_assert_eq!(k.frames.owner(g.frame), Some(owner));
                prop_assert!(!matches!(state(k, g.grantee.index()), State::Finished(_)));
            }
            // A free frame marked zeroed is zero: its next owner gets it without a scrub.
            for i in 0..k.frames.frame_count() {
                let f = PhysAddr::new(RAM_BASE + i as u64 * PAGE_SIZE);
                prop_assert!(
                    !k.frames.is_zeroed(f) || is_zero(k, f),
                    "{} marked zeroed",
                    f
                );
            }
            // Frames that changed hands were scrubbed: zeroed, then cleaned to the point of
            // coherency, before anything mapped them.
            let scrubbed = match k.platform.take_frame_log() {
                Ok(scrubbed) => scrubbed,
                Err(e) => return Err(TestCaseError::fail(e)),
            };
            let mut clean = Vec::new();
            for (&f, &writer) in &self.dirty {
                if k.frames.owner(f) != Some(owner_of(k, writer)) {
                    prop_assert!(is_zero(k, f), "frame {} left p{} with its data", f, writer);
                    prop_assert!(
                        scrubbed.contains(&f),
                        "frame {} left p{} zeroed but not cleaned to the point of coherency",
                        f,
                        writer
                    );
                    clean.push(f);
                }
            }
            for f in clean {
                self.dirty.remove(&f);
            }
            // Claimants that woke up got what they asked for, or nothing.
            for p in 0..3 {
                let Some((held_then, buffer, count)) = self.blocked[p] else {
                    continue;
                };
                match state(k, p) {
                    State::Blocked => {
                        let anyone_owes =
                            (0..3).any(|q| k.partition(pid(q)).unwrap().revocation.is_some());
                        let pending = k.partition(pid(p)).unwrap().pending_alloc;
                        prop_assert!(pending.is_some(), "blocked without a pending allocation");
                        let pending = pending.map_or(0, |a| a.count);
                        if !anyone_owes && (free(k) as u64) < pending {
                            let line = std::format!(
                                "p{p} blocked for {pending} frames, {} free, and no revocation \
                                 request outstanding: it can only wake if someone frees frames",
                                free(k)
                            );
                            if !self.log.contains(&line) {
                                self.log.push(line);
                            }
                        }
                    }
                    // The model never makes protected control transfers nor waits for
                    // events.
                    State::Waiting | State::Calling { .. } | State::WaitingEvent => {}
                    State::Runnable => {
                        self.blocked[p] = None;
                        let x0 = k.regs_mut(pid(p)).unwrap().x[0];
                        if x0 == count {
                            prop_assert_eq!(held(k, p), held_then + count as usize);
                            let words = read_words(k, p, buffer, count as usize);
                            let distinct: BTreeSet<u64> = words.iter().copied().collect();
                            prop_assert_eq!(distinct.len(), count as usize);
                            for w in words {
                                prop_assert_eq!(
                                    k.frames.owner(PhysAddr::new(w)),
                                    Some(owner_of(k, p))
                                );
                            }
                        } else {
                            prop_assert!((x0 as i64) < 0, "woke with {:#x}", x0);
                            prop_assert_eq!(
                                held(k, p),
                                held_then,
                                "blocked FRAME_ALLOC failed ({:?}) yet p{} was given frames",
                                Error::from_register(x0),
                                p
                            );
                        }
                    }
                    State::Finished(_) => self.blocked[p] = None,
                }
            }
            Ok(())
        }
    }

    fn run(ops: &[Op]) -> Result<Vec<String>, TestCaseError> {
        let mut world = World::new();
        for &op in ops {
            if !world.step(op)? {
                break;
            }
        }
        Ok(world.log)
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("EXO_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128),
            ..ProptestConfig::default()
        })]

        #[test]
        fn invariants_hold_under_random_hypercalls(ops in proptest::collection::vec(op(), 50..250)) {
            let log = run(&ops)?;
            if std::env::var_os("EXO_MODEL_STATS").is_some() {
                STATS.with(|s| std::println!("{:#?}", s.borrow()));
            }
            // Liveness: no claimant stuck without a request on its behalf, no allocation
            // within a guarantee refused for lack of memory.
            prop_assert!(log.is_empty(), "{:#?}", log);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Protected control transfer.

/// Issues `function` from `p` with x1..x8 = `regs` (EXO_CALL carries eight registers).
fn ipc(k: &mut K, p: usize, function: u32, regs: &[u64]) -> Step {
    k.run_as(pid(p));
    let r = k.regs_mut(pid(p)).unwrap();
    r.x[0] = u64::from(function);
    r.x[1..=regs.len()].copy_from_slice(regs);
    let mut args = [0; 7];
    args.copy_from_slice(&r.x[1..8]);
    k.hypercall(function, args)
}

fn talkers() -> K {
    let mut a = Config::new("a", 64, 0);
    a.talks_to = 0b10;
    build(256, &[a, Config::new("b", 64, 0)])
}

#[test]
fn a_call_passes_the_cpu_and_seven_words_each_way() {
    let mut k = talkers();
    assert_eq!(ipc(&mut k, 1, EXO_WAIT, &[]), Step::Switch(pid(0)));
    assert_eq!(state(&k, 1), State::Waiting);
    let words = [11, 12, 13, 14, 15, 16, 17];
    let mut regs = vec![1];
    regs.extend_from_slice(&words);
    assert_eq!(
        ipc(&mut k, 0, EXO_CALL, &regs),
        Step::Switch(pid(1)),
        "direct transfer"
    );
    assert_eq!(k.current(), pid(1));
    let b = k.regs_mut(pid(1)).unwrap().x;
    assert_eq!(b[0], 0, "x0 = the caller's id");
    assert_eq!(&b[1..8], &words);
    let reply = [21, 22, 23, 24, 25, 26, 27];
    assert_eq!(
        ipc(&mut k, 1, EXO_REPLY_WAIT, &reply),
        Step::Switch(pid(0)),
        "straight back"
    );
    let a = k.regs_mut(pid(0)).unwrap().x;
    assert_eq!(a[0], 0);
    assert_eq!(&a[1..8], &reply);
    assert_eq!(state(&k, 0), State::Runnable);
    assert_eq!(state(&k, 1), State::Waiting);
    k.self_check().unwrap();
}

#[test]
fn a_call_before_the_callee_waits_is_queued() {
    let mut k = talkers();
    let step = ipc(&mut k, 0, EXO_CALL, &[1, 5, 0, 0, 0, 0, 0, 0]);
    assert_eq!(step, Step::Switch(pid(1)));
    assert_eq!(
        state(&k, 0),
        State::Calling {
            callee: pid(1),
            accepted: false
        }
    );
    assert_eq!(
        ipc(&mut k, 1, EXO_WAIT, &[]),
        Step::Resume,
        "the queued call is taken at once"
    );
    assert_eq!(k.regs_mut(pid(1)).unwrap().x[1], 5);
    assert_eq!(
        state(&k, 0),
        State::Calling {
            callee: pid(1),
            accepted: true
        }
    );
}

#[test]
fn calls_are_checked_against_the_configuration() {
    let mut k = talkers();
    assert_eq!(ipc(&mut k, 1, EXO_CALL, &[0]), Step::Resume);
    assert_eq!(
        Error::from_register(k.regs_mut(pid(1)).unwrap().x[0]),
        Err(Error::Denied)
    );
    assert_eq!(ipc(&mut k, 0, EXO_CALL, &[0]), Step::Resume);
    assert_eq!(
        Error::from_register(k.regs_mut(pid(0)).unwrap().x[0]),
        Err(Error::UnknownPartition)
    );
    assert_eq!(ipc(&mut k, 0, EXO_CALL, &[9]), Step::Resume);
    assert_eq!(
        Error::from_register(k.regs_mut(pid(0)).unwrap().x[0]),
        Err(Error::UnknownPartition)
    );
    assert_eq!(
        result(&mut k, 1, EXO_REPLY_WAIT, &[]),
        err(Error::Denied),
        "no call served"
    );
    assert_eq!(result(&mut k, 1, EXO_SEND, &[0, 1]), err(Error::Denied));
}

#[test]
fn a_callee_that_dies_fails_the_call() {
    let mut k = talkers();
    ipc(&mut k, 1, EXO_WAIT, &[]);
    ipc(&mut k, 0, EXO_CALL, &[1, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(k.current(), pid(1));
    let step = ipc(&mut k, 1, EXO_EXIT, &[3]);
    assert_eq!(step, Step::Switch(pid(0)));
    assert_eq!(
        Error::from_register(k.regs_mut(pid(0)).unwrap().x[0]),
        Err(Error::UnknownPartition)
    );
    assert_eq!(state(&k, 0), State::Runnable);
}

#[test]
fn a_message_arrives_as_an_upcall() {
    let mut k = talkers();
    assert_eq!(result(&mut k, 1, EXO_SET_UPCALL, &[0x4000_0100, 0]), Ok(0));
    assert_eq!(result(&mut k, 0, EXO_SEND, &[1, 77]), Ok(0));
    assert_eq!(
        result(&mut k, 0, EXO_SEND, &[1, 78]),
        err(Error::Busy),
        "one undelivered message"
    );
    k.run_as(pid(1));
    k.before_resume();
    let b = k.regs_mut(pid(1)).unwrap();
    assert_eq!(b.pc, 0x4000_0100);
    assert_eq!(&b.x[0..3], &[upcall::MESSAGE, 0, 77]);
}

mod mutants;
mod poison;
mod system;
