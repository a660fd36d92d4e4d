//! The hypercall dispatcher, driven by several partitions on the fake machine.
//!
//! The input's first bytes choose a system (two to four partitions with their guarantees,
//! borrow limits, deadlines, abort budgets, who may talk to whom, SPIs, and the time-slice
//! vector); the rest is a sequence of events, each what the trap path hands the kernel:
//! a hypercall from the running partition (function and arguments, each argument either
//! a plausible value — a frame it holds, a bound IPA, a result it saw — or raw bits), a
//! time-slice tick, a physical interrupt, a stage-2 abort, an unexpected trap, or what a
//! guest does without trapping (writing its memory, arming its virtual timer, handling its
//! list registers). The kernel's answer ([`Step`]) is followed as `arch/aarch64/trap.rs`
//! follows it, idling by advancing the clock.
//!
//! After every event: nothing panicked (the fake machine panics when the kernel touches
//! memory outside RAM, and its descriptor format on a descriptor it did not write),
//! `Kernel::self_check` holds, and the scheduler only ever runs a partition that is
//! runnable and still has its stage-2 tables.

use crate::input::Input;
use crate::machine::{FakeMachine, GIC_LINES, RAM_BASE};
use exo_abi::call::{
    PSCI_CPU_OFF, PSCI_FEATURES, PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET, PSCI_VERSION,
    SMCCC_ARCH_FEATURES, SMCCC_VERSION, VIRTUAL_TIMER_INTID, exo_call,
};
use exo_abi::info::{INFO_PAGE_IPA, REPOSSESSION_VECTOR_IPA, REVOCATION_PAGE_IPA};
use exo_abi::package::build::{PartitionSpec, SegmentSpec, encode};
use exo_abi::package::{DEFAULT_RAM_BASE, Package};
use exo_abi::{Ipa, Name, PAGE_SIZE, PhysAddr};
use exo_kernel::kernel::{Kernel, Stage2Abort, Step};
use exo_kernel::mem::frame_table::{FrameTable, Owner, PartitionId};
use exo_kernel::mem::stage2::TableMemory;
use exo_kernel::partition::{Access, FaultKind, State};
use exo_kernel::platform::PhysicalMemory;

/// Frames of fake RAM: room for every guarantee below plus kernel pages and tables.
const FRAMES: usize = 2048;
/// Frames reserved for "the kernel image" at the start of RAM.
const KERNEL_IMAGE_FRAMES: u64 = 4;
/// Boot RAM of every partition, in pages.
const BOOT_PAGES: u64 = 16;
/// Where guests bind the frames they allocate.
const HEAP: u64 = 0x8000_0000;
/// The time slice, in counter ticks (microseconds).
const SLICE: u64 = 2_000;
/// Most events one input may drive.
const MAX_EVENTS: usize = 4096;
/// SPIs handed out: partition `i` may own `FIRST_SPI + 2i` and `FIRST_SPI + 2i + 1`.
const FIRST_SPI: u32 = 40;
/// Function identifiers worth trying: exo's calls (and gaps between them), SMCCC and PSCI.
const FUNCTIONS: &[u32] = &[
    SMCCC_VERSION,
    SMCCC_ARCH_FEATURES,
    PSCI_VERSION,
    PSCI_FEATURES,
    0xC600_0000,
    0xC600_0001,
    0xC600_0002,
    0xC600_0010,
    0xC600_0011,
    0xC600_0012,
    0xC600_0013,
    0xC600_0014,
    0xC600_0015,
    0xC600_0016,
    0xC600_0017,
    0xC600_0018,
    0xC600_0019,
    0xC600_001A,
    0xC600_001B,
    0xC600_001C,
    0xC600_001D,
    0xC600_001E,
    0xC600_0020,
    0xC600_0021,
    0xC600_0022,
    0xC600_0023,
    0xC600_0024,
    0xC600_0025,
    0xC600_0026,
    0xC600_0027,
    0xC600_0030,
    0xC600_0031,
    0xC600_0032,
    0xC600_0033,
    0xC600_0034,
    0xC600_0035,
];
/// Calls that end the caller, chosen only when the input insists.
const ENDINGS: &[u32] = &[
    exo_call(0x03),
    PSCI_CPU_OFF,
    PSCI_SYSTEM_OFF,
    PSCI_SYSTEM_RESET,
];

/// Whether to print every hypercall and its result (`EXO_FUZZ_TRACE=1`, for the replay tool).
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("EXO_FUZZ_TRACE").is_some())
}

/// Runs one input; panics on a finding.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let specs = system(&mut input);
    let bytes = encode(&specs.partitions, &specs.schedule);
    let package = Package::parse(&bytes).expect("the encoder writes valid packages");
    let mut storage = vec![0u16; FRAMES];
    let mut bindings = vec![0u64; FRAMES];
    let mut frames = FrameTable::new(PhysAddr::new(RAM_BASE), &mut storage);
    frames
        .reserve(
            PhysAddr::new(RAM_BASE),
            PhysAddr::new(RAM_BASE + KERNEL_IMAGE_FRAMES * PAGE_SIZE),
            Owner::Kernel,
        )
        .expect("the kernel image fits in RAM");
    let kernel = Kernel::new(FakeMachine::new(FRAMES), frames, &mut bindings);
    let mut world = World {
        kernel,
        count: specs.partitions.len(),
        idle: false,
        seen: Vec::new(),
    };
    if world.kernel.load(&package).is_err() {
        return;
    }
    world.check("load");
    // Boot: the first slot's partition starts, as `start.rs` does.
    let step = world.kernel.schedule();
    world.follow(step);
    for _ in 0..MAX_EVENTS {
        if input.is_empty() || !world.event(&mut input) {
            break;
        }
    }
}

/// A system to boot.
struct System {
    partitions: Vec<PartitionSpec>,
    schedule: Vec<u8>,
}

/// Decodes the system from the input's first bytes.
fn system(input: &mut Input<'_>) -> System {
    let count = 2 + input.below(3);
    let names = ["p0", "p1", "p2", "p3"];
    let partitions = (0..count)
        .map(|i| {
            let guarantee = BOOT_PAGES + u64::from(input.u8()) % 240;
            let borrow = u64::from(input.u8()) * 4;
            let spis = input.u8();
            let interrupts = (0..2)
                .filter(|bit| spis & (1 << bit) != 0)
                .map(|bit| FIRST_SPI + 2 * i as u32 + bit)
                .collect();
            PartitionSpec {
                name: Name::new(names[i]).expect("short name"),
                memory_bytes: BOOT_PAGES * PAGE_SIZE,
                entry: DEFAULT_RAM_BASE,
                ram_base: DEFAULT_RAM_BASE,
                segments: vec![SegmentSpec {
                    ipa: DEFAULT_RAM_BASE,
                    // nop; b .
                    data: vec![0x1f, 0x20, 0x03, 0xd5, 0x00, 0x00, 0x00, 0x14],
                    mem_size: PAGE_SIZE,
                    rights: exo_abi::Rights::READ | exo_abi::Rights::EXECUTE,
                }],
                guaranteed_bytes: guarantee * PAGE_SIZE,
                borrow_bytes: borrow * PAGE_SIZE,
                revocation_deadline_us: 100 + u64::from(input.u16()),
                max_aborts: u32::from(input.u8() % 4),
                talks_to: u64::from(input.u8()) & ((1 << count) - 1),
                // The first may run the self-check, the others are refused it.
                flags: if i == 0 {
                    exo_abi::package::PartitionFlags::SELF_CHECK
                } else {
                    exo_abi::package::PartitionFlags::empty()
                },
                interrupts,
                devices: vec![],
                core: 0,
                boot_argument: 0,
            }
        })
        .collect();
    let slots = input.below(8);
    let schedule = (0..slots).map(|_| input.below(count) as u8).collect();
    System {
        partitions,
        schedule,
    }
}

/// The kernel and what the driver remembers.
struct World<'a> {
    kernel: Kernel<'a, FakeMachine>,
    count: usize,
    /// Nobody can run: the CPU waits for an interrupt.
    idle: bool,
    /// Values partitions got back from calls, reused as arguments.
    seen: Vec<u64>,
}

impl World<'_> {
    /// Asserts the kernel's invariants after `what`.
    fn check(&mut self, what: &str) {
        if let Err(e) = self.kernel.self_check() {
            panic!("self_check failed after {what}: {e}");
        }
    }

    /// The running partition, if one is (not idle and runnable).
    fn running(&self) -> Option<PartitionId> {
        let current = self.kernel.current();
        let runnable = self
            .kernel
            .partition(current)
            .is_some_and(|p| p.state == State::Runnable);
        (!self.idle && runnable).then_some(current)
    }

    /// Follows the kernel's answer as the trap path does. Returns false at power-off.
    fn follow(&mut self, mut step: Step) -> bool {
        for _ in 0..64 {
            match step {
                Step::Resume | Step::Switch(_) => {
                    let current = self.kernel.current();
                    if let Step::Switch(next) = step {
                        assert_eq!(next, current, "Switch({next}) but current is {current}");
                    }
                    let partition = self
                        .kernel
                        .partition(current)
                        .unwrap_or_else(|| panic!("scheduled partition {current} does not exist"));
                    assert!(
                        partition.stage2.is_some(),
                        "scheduled partition {current} has no stage-2 tables"
                    );
                    assert_eq!(
                        partition.state,
                        State::Runnable,
                        "resumed partition {current}, which is not runnable"
                    );
                    self.idle = false;
                    self.kernel.platform.switch(current);
                    self.kernel.before_resume();
                    return true;
                }
                Step::Idle(deadline) => {
                    // Sleep until the earliest deadline or a slice, then the hypervisor
                    // timer fires.
                    self.idle = true;
                    let now = self.kernel.platform.now;
                    let wake = deadline.map_or(now + SLICE, |d| d.clamp(now + 1, now + SLICE));
                    self.kernel.platform.now = wake;
                    step = match self.kernel.preempt() {
                        Step::Resume => self.kernel.schedule(),
                        other => other,
                    };
                    self.check("idling");
                }
                Step::PowerOff => {
                    self.kernel.report();
                    return false;
                }
            }
        }
        // Still idle: wait for an interrupt from the input.
        true
    }

    /// One event from the input. Returns false at power-off.
    fn event(&mut self, input: &mut Input<'_>) -> bool {
        let kind = input.u8() % 16;
        let step = match (kind, self.running()) {
            (0..=6, Some(p)) => {
                let step = self.hypercall(p, input);
                self.check("a hypercall");
                step
            }
            (7, Some(_)) => {
                // The time slice ends.
                self.kernel.platform.now += u64::from(input.u16());
                self.kernel.preempt()
            }
            (8, Some(_)) => {
                // Run the wanted partition: slices end until it is scheduled.
                let wanted = input.below(self.count);
                for _ in 0..self.count {
                    if self.kernel.current().index() == wanted || self.running().is_none() {
                        break;
                    }
                    let step = self.kernel.preempt();
                    if !self.follow(step) {
                        return false;
                    }
                    self.check("a time slice");
                }
                return true;
            }
            (9, _) => {
                self.kernel.platform.now += u64::from(input.u32() % 200_000);
                return true;
            }
            (10, _) => {
                // What the GIC can signal: the loaded vCPU's virtual timer or an SPI it has.
                let intid = match input.u8() % 4 {
                    0 => VIRTUAL_TIMER_INTID,
                    1 => 32 + u32::from(input.u16()) % (GIC_LINES - 32),
                    _ => FIRST_SPI + input.below(2 * self.count) as u32,
                };
                let step = self.kernel.interrupt(intid);
                if self.idle && step == Step::Resume {
                    self.kernel.schedule()
                } else {
                    step
                }
            }
            (11, _) => {
                self.kernel.platform.guest_handles_all();
                return true;
            }
            (12, Some(p)) => {
                // The guest arms (or disarms) its virtual timer.
                let delay = input.u16();
                if delay == 0 {
                    self.kernel.platform.timers.remove(&p);
                } else {
                    let at = self.kernel.platform.now + u64::from(delay);
                    self.kernel.platform.timers.insert(p, at);
                }
                return true;
            }
            (13, Some(p)) => {
                // The guest writes into a frame it holds.
                let frame = self.pick_pa(p, input);
                let offset = usize::from(input.u16()) % PAGE_SIZE as usize;
                let bytes = input.bytes(64);
                let owner = self.owner(p);
                if self.kernel.frames().owner(frame) == Some(owner) {
                    let page = self.kernel.platform.frame_mut(frame);
                    let n = bytes.len().min(page.len() - offset);
                    page[offset..offset + n].copy_from_slice(&bytes[..n]);
                }
                return true;
            }
            (14, Some(p)) => {
                let ipa = Ipa::new(self.pick_ipa(p, input));
                let access = [Access::Read, Access::Write, Access::Execute][input.below(3)];
                let kind =
                    [FaultKind::Unbound, FaultKind::Permission, FaultKind::Other][input.below(3)];
                if !input.u8().is_multiple_of(4) {
                    return true;
                }
                self.kernel.stage2_abort(Stage2Abort { ipa, access, kind })
            }
            (15, Some(_)) if input.u8().is_multiple_of(8) => self
                .kernel
                .unexpected_trap("fuzzed trap", u64::from(input.u32())),
            _ => return true,
        };
        let alive = self.follow(step);
        self.check("an event");
        alive
    }

    fn owner(&self, p: PartitionId) -> Owner {
        Owner::Partition(self.kernel.partition(p).expect("partition exists").id)
    }

    /// Issues a hypercall from partition `p` as the trap path does.
    fn hypercall(&mut self, p: PartitionId, input: &mut Input<'_>) -> Step {
        let choice = input.u8();
        let function = match choice {
            0..=239 => FUNCTIONS[usize::from(choice) % FUNCTIONS.len()],
            240..=247 => input.u32(),
            _ if input.u8().is_multiple_of(4) => ENDINGS[usize::from(choice) % ENDINGS.len()],
            _ => FUNCTIONS[0],
        };
        // Mostly the arguments the call takes, sometimes anything.
        let shape = if input.u8() < 192 {
            shape(function)
        } else {
            &[Arg::Any, Arg::Any, Arg::Any]
        };
        let mut args = [0u64; 7];
        for (arg, kind) in args.iter_mut().zip(shape) {
            *arg = self.pick(p, *kind, input);
        }
        let regs = self.kernel.regs_mut(p).expect("partition exists");
        regs.x[0] = u64::from(function);
        regs.x[1..8].copy_from_slice(&args);
        let step = self.kernel.hypercall(function, args);
        let Some(regs) = self.kernel.regs_mut(p) else {
            return step;
        };
        let results = [regs.x[0], regs.x[1]];
        if trace() {
            let result = exo_abi::Error::from_register(results[0]);
            eprintln!("trace: p{p} {function:#x} {args:x?} -> {result:?} {step:?}");
        }
        self.remember(&results);
        if function == FRAME_ALLOC && step == Step::Resume && (results[0] as i64) > 0 {
            // The frames it got are in its buffer.
            for i in 0..results[0].min(16) {
                if let Some(frame) = self.read_guest(p, args[1].wrapping_add(i * 8)) {
                    self.remember(&[frame]);
                }
            }
        }
        step
    }

    fn remember(&mut self, values: &[u64]) {
        for &v in values {
            if v != 0 && !self.seen.contains(&v) {
                if self.seen.len() >= 32 {
                    self.seen.remove(0);
                }
                self.seen.push(v);
            }
        }
    }

    /// The word of partition `p`'s memory at `ipa`, through its stage 2.
    fn read_guest(&self, p: PartitionId, ipa: u64) -> Option<u64> {
        let stage2 = self.kernel.partition(p)?.stage2.as_ref()?;
        let tables = ReadTables(&self.kernel.platform);
        let (pa, _) = stage2.translate(&tables, Ipa::new(ipa))?;
        Some(self.kernel.platform.read_u64(pa))
    }

    /// IPAs bound in partition `p`'s stage 2.
    fn bound_ipas(&self, p: PartitionId) -> Vec<u64> {
        let mut ipas = Vec::new();
        if let Some(stage2) = self.kernel.partition(p).and_then(|p| p.stage2.as_ref()) {
            let tables = ReadTables(&self.kernel.platform);
            stage2.for_each_mapping(&tables, |m| ipas.push(m.ipa.raw()));
        }
        ipas
    }

    /// A guest-controlled argument of kind `kind`: plausible or hostile.
    fn pick(&mut self, p: PartitionId, kind: Arg, input: &mut Input<'_>) -> u64 {
        let how = input.u8();
        if how >= 224 {
            // Anything at all.
            return match how % 4 {
                0 => input.u64(),
                1 => u64::from(input.u16()),
                2 => [0, 1, 512, 513, u64::MAX, 1 << 63, PAGE_SIZE][input.below(7)],
                _ => match self.seen.len() {
                    0 => 0,
                    n => self.seen[input.below(n)],
                },
            };
        }
        match kind {
            Arg::Frame => self.pick_pa(p, input).raw(),
            Arg::Ipa => self.pick_ipa(p, input),
            Arg::Buffer => {
                DEFAULT_RAM_BASE.raw()
                    + (8 + u64::from(input.u8()) % 8) * PAGE_SIZE
                    + u64::from(input.u8() % 4) * 8
            }
            Arg::Count => match input.u8() % 4 {
                0 => 1,
                1 => 1 + u64::from(input.u8() % 16),
                2 => 64 + u64::from(input.u16() % 512),
                _ => u64::from(input.u16()),
            },
            Arg::Rights => match input.u8() % 4 {
                0 => 3,
                1 => 1,
                2 => 5,
                _ => u64::from(input.u8() % 32),
            },
            Arg::Partition => input.below(self.count + 1) as u64,
            Arg::Intid => match input.u8() % 4 {
                0 => u64::from(VIRTUAL_TIMER_INTID),
                1 => u64::from(input.u8() % 4),
                _ => u64::from(FIRST_SPI) + input.below(2 * self.count) as u64,
            },
            Arg::Small => u64::from(input.u8() % 64),
            Arg::Any => match self.seen.len() {
                0 => u64::from(input.u16()),
                n => self.seen[input.below(n)],
            },
        }
    }

    /// A physical address: a frame `p` got lately or holds, a free one, or anywhere in or
    /// near RAM.
    fn pick_pa(&mut self, p: PartitionId, input: &mut Input<'_>) -> PhysAddr {
        let owner = self.owner(p);
        let frames = self.kernel.frames();
        let end = frames.end().raw();
        match input.u8() % 8 {
            0..=2 => {
                // A frame it got lately (or, with 2, any RAM frame it saw: granted ones).
                let mine = how_recent_filter(frames, owner, input.u8());
                let recent: Vec<u64> = self.seen.iter().copied().filter(|&v| mine(v)).collect();
                match recent.len() {
                    0 => PhysAddr::new(RAM_BASE),
                    n => PhysAddr::new(recent[input.below(n)]),
                }
            }
            3 | 4 => {
                let n = usize::from(input.u16());
                let held = frames.count(owner);
                if held == 0 {
                    PhysAddr::new(RAM_BASE)
                } else {
                    frames.owned_by(owner).nth(n % held).expect("counted")
                }
            }
            5 => frames
                .owned_by(Owner::Free)
                .next()
                .unwrap_or(PhysAddr::new(RAM_BASE)),
            6 => PhysAddr::new(RAM_BASE + (u64::from(input.u16()) % FRAMES as u64) * PAGE_SIZE),
            _ => PhysAddr::new(
                [end, end - PAGE_SIZE, RAM_BASE - PAGE_SIZE, RAM_BASE + 8, 0][input.below(5)],
            ),
        }
    }

    /// An IPA: the heap, one bound, boot RAM, the kernel window, or edges.
    fn pick_ipa(&mut self, p: PartitionId, input: &mut Input<'_>) -> u64 {
        match input.u8() % 8 {
            0..=2 => HEAP + u64::from(input.u8() % 64) * PAGE_SIZE,
            3 | 4 => {
                let bound = self.bound_ipas(p);
                match bound.len() {
                    0 => HEAP,
                    n => bound[usize::from(input.u16()) % n],
                }
            }
            5 => DEFAULT_RAM_BASE.raw() + u64::from(input.u8()) % BOOT_PAGES * PAGE_SIZE,
            6 => [
                INFO_PAGE_IPA.raw(),
                REVOCATION_PAGE_IPA.raw(),
                REPOSSESSION_VECTOR_IPA.raw(),
                (1 << 39) - PAGE_SIZE,
                1 << 39,
                HEAP + 8,
            ][input.below(6)],
            _ => input.u64(),
        }
    }
}

/// What an argument of a call is.
#[derive(Clone, Copy, Debug)]
enum Arg {
    /// A physical frame address.
    Frame,
    /// An IPA to bind at or read from.
    Ipa,
    /// A buffer in boot RAM the kernel writes results into.
    Buffer,
    /// A number of frames.
    Count,
    /// `bind` rights bits.
    Rights,
    /// A partition index.
    Partition,
    /// An INTID or signal.
    Intid,
    /// A small number (a length, a flag, a slot).
    Small,
    /// Anything.
    Any,
}

/// `EXO_FRAME_ALLOC`, whose results are read back from the guest's buffer.
const FRAME_ALLOC: u32 = 0xC600_0010;

/// The arguments call `function` takes (see `exo_abi::call`).
fn shape(function: u32) -> &'static [Arg] {
    use Arg::*;
    match function {
        0xC600_0001 => &[Ipa, Small],
        FRAME_ALLOC => &[Count, Buffer],
        0xC600_0011 | 0xC600_0012 => &[Frame],
        0xC600_0013 => &[Frame, Ipa, Rights],
        0xC600_0014 => &[Ipa],
        0xC600_0015 => &[Frame, Partition, Rights],
        0xC600_0016 => &[Frame, Partition],
        0xC600_0018 => &[Ipa, Small],
        0xC600_0019 | 0xC600_001D => &[Small],
        0xC600_001B => &[Ipa, Small],
        0xC600_0020 | 0xC600_0025 => &[Partition],
        0xC600_0023 => &[Partition, Any],
        0xC600_0030..=0xC600_0034 => &[Intid, Small],
        _ => &[Any, Any, Any],
    }
}

/// Read-only access to stage-2 tables in the fake RAM, for looking at a partition's
/// memory as its stage 2 maps it.
struct ReadTables<'m>(&'m FakeMachine);

impl TableMemory for ReadTables<'_> {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        None
    }

    fn free_table(&mut self, _table: PhysAddr) {
        unreachable!("reading tables frees nothing")
    }

    fn read(&self, table: PhysAddr, index: usize) -> u64 {
        self.0.read_u64(table.add(index as u64 * 8))
    }

    fn write(&mut self, _table: PhysAddr, _index: usize, _value: u64) {
        unreachable!("reading tables writes nothing")
    }
}

/// Which remembered values [`World::pick_pa`] offers: frames `owner` holds, or (one time in
/// four) any partition's frame (a grant's).
fn how_recent_filter<'f>(
    frames: &'f FrameTable<'_>,
    owner: Owner,
    how: u8,
) -> impl Fn(u64) -> bool + 'f {
    move |v| {
        let frame = PhysAddr::new(v);
        frame.is_page_aligned()
            && match frames.owner(frame) {
                Some(Owner::Partition(_)) if how.is_multiple_of(4) => true,
                found => found == Some(owner),
            }
    }
}
