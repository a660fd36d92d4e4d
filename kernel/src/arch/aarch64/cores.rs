//! Bringing up the other cores: each is started (PSCI `CPU_ON`, or its spin table), enters
//! at `boot.rs`'s secondary entry with the boot core's EL2 map, stack and vectors, sets up
//! its own EL2 controls and GIC interface, and reports in. Then it waits, touching no
//! kernel state, until the boot core has loaded every partition and [`release`]s the
//! cores; from there it runs the partitions pinned to it (`trap::enter_first`), or idles
//! for good if none is.

use super::boot::secondary_entry;
use super::mmu::SharedMap;
use crate::cpus::{Conduit, CoreId, Cores, EnableMethod, MAX_CORES, MPIDR_AFFINITY_MASK, Psci};
use crate::device_tree::DeviceTree;
use crate::mem::ram::{Cover, Ram};
use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::*;
use core::cell::UnsafeCell;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use exo_abi::PhysAddr;
use log::{info, warn};

/// What a starting core reads with its MMU off: the boot core's EL2 map and the MPIDR
/// affinity of each core (by [`CoreId`] index; `u64::MAX` for none). Written by the boot
/// core before it starts any core and cleaned to the point of coherency; read only after.
#[repr(C)]
pub struct Handoff {
    map: SharedMap,
    /// Each core's affinity, by index.
    pub mpidr: [u64; MAX_CORES],
}

struct HandoffCell(UnsafeCell<Handoff>);
// SAFETY: written only by `start`, on the boot core, before it starts any other core; the
// other cores only read it afterwards.
unsafe impl Sync for HandoffCell {}

#[unsafe(no_mangle)]
static exo_secondary_handoff: HandoffCell = HandoffCell(UnsafeCell::new(Handoff {
    map: SharedMap {
        mair: 0,
        tcr: 0,
        ttbr0: 0,
        sctlr: 0,
    },
    mpidr: [u64::MAX; MAX_CORES],
}));

/// A core's progress, by index: not (yet) up, up and idle, up but without its GIC part.
const DOWN: u8 = 0;
const UP: u8 = 1;
const UP_WITHOUT_GIC: u8 = 2;
static STATE: [AtomicU8; MAX_CORES] = [const { AtomicU8::new(DOWN) }; MAX_CORES];

/// Set by the boot core once every partition is loaded: the other cores may enter theirs.
static RELEASED: AtomicBool = AtomicBool::new(false);

/// How long the boot core waits for each core to report in.
const REPORT_TIMEOUT_MS: u64 = 1000;

/// Starts every other core the device tree describes and waits (bounded) for each to report
/// in; logs which came up and which run partitions (bit `i` of `pinned`: partitions are
/// pinned to core `i`). `ram` is the RAM the EL2 map covers: a spin table's release
/// address must lie in one of its banks. Call after `mmu::enable` and `gic::init`.
pub fn start(tree: &DeviceTree<'_>, ram: &Ram, pinned: u32) {
    let cores = Cores::from_fdt(tree, MPIDR_EL1.get(), &mut |why| warn!("cores: {why}"));
    write_handoff(&cores);
    let entry = secondary_entry();
    for (id, core) in cores.iter().skip(1) {
        let started = match core.enable {
            Some(EnableMethod::Psci(psci)) => cpu_on(psci, core.mpidr, entry, id),
            Some(EnableMethod::SpinTable { release }) => spin_table(release, entry, ram),
            None => Err("no way to start it"),
        };
        match started {
            Ok(()) => wait_for(id),
            Err(why) => warn!("cores: {id} (MPIDR {:#x}) not started: {why}", core.mpidr),
        }
    }
    report(&cores, pinned);
}

/// This core's [`CoreId`]: the slot of its MPIDR affinity in the handoff's table (the boot
/// core's is slot 0; before [`start`] fills the table, every core is taken for the boot
/// core, which is then the only one running).
#[inline]
pub fn this_core() -> CoreId {
    let mpidr = MPIDR_EL1.get() & MPIDR_AFFINITY_MASK;
    // SAFETY: the handoff is written only by `start` on the boot core before it starts any
    // other core (see `HandoffCell`); this is a read, on a core that is not writing it.
    let table = unsafe { &(*exo_secondary_handoff.0.get()).mpidr };
    // On the boards exo knows, core n has Aff0 = n (and Aff1..3 = 0): try that slot first,
    // then look the affinity up.
    let guess = (mpidr & 0xFF) as usize % MAX_CORES;
    if table[guess] == mpidr {
        return CoreId::new(guess).unwrap_or(CoreId::BOOT);
    }
    this_core_by_search(table, mpidr)
}

/// [`this_core`] for a core whose affinity is not its index: a search of `table`.
#[inline(never)]
fn this_core_by_search(table: &[u64; MAX_CORES], mpidr: u64) -> CoreId {
    table
        .iter()
        .position(|&m| m == mpidr)
        .and_then(CoreId::new)
        .unwrap_or(CoreId::BOOT)
}

/// The MPIDR affinity of core `core`, if it exists.
pub fn mpidr_of(core: CoreId) -> Option<u64> {
    // SAFETY: as in `this_core`.
    let table = unsafe { &(*exo_secondary_handoff.0.get()).mpidr };
    table.get(core.index()).copied().filter(|&m| m != u64::MAX)
}

/// Whether core `id` reported in ([`start`] waited for it).
pub fn is_up(id: CoreId) -> bool {
    id == CoreId::BOOT || STATE[id.index()].load(Ordering::Acquire) != DOWN
}

/// Lets every core that came up enter the partitions pinned to it. Call once every
/// partition is loaded, with the kernel in `trap::KERNEL`.
pub fn release() {
    RELEASED.store(true, Ordering::Release);
    barrier::dsb(barrier::SY);
    aarch64_cpu::asm::sev();
}

/// Fills the handoff and cleans it to the point of coherency, where a core with its MMU
/// off reads (Arm ARM, "Data cache maintenance instructions": `DC CVAC`).
fn write_handoff(cores: &Cores) {
    // SAFETY: only the boot core runs, before any other core is started (see `HandoffCell`).
    let handoff = unsafe { &mut *exo_secondary_handoff.0.get() };
    handoff.map = super::mmu::shared_map();
    for (id, core) in cores.iter() {
        handoff.mpidr[id.index()] = core.mpidr;
    }
    let start = handoff as *const Handoff as u64;
    clean_to_poc(start, start + size_of::<Handoff>() as u64);
}

/// `DC CVAC` over `[start, end)` by 64-byte lines (the smallest data cache line exo meets;
/// `CTR_EL0.DminLine` on Cortex-A72 is 64 bytes), then `DSB SY`.
fn clean_to_poc(start: u64, end: u64) {
    let mut line = start & !63;
    while line < end {
        // SAFETY: cleans one line of memory the EL2 map covers; no architectural effect on
        // its contents.
        unsafe { core::arch::asm!("dc cvac, {}", in(reg) line, options(nostack)) };
        line += 64;
    }
    barrier::dsb(barrier::SY);
}

/// PSCI `CPU_ON` (DEN0022, "CPU_ON"): the core enters at `entry` with `context_id` = its index.
/// Only over SMC: an `HVC` from EL2 would trap to exo itself.
fn cpu_on(psci: Psci, mpidr: u64, entry: u64, id: CoreId) -> Result<(), &'static str> {
    if psci.conduit == Conduit::Hvc {
        return Err("PSCI is reached by HVC, which from EL2 calls exo itself");
    }
    let mut args = [0; 17];
    (args[0], args[1], args[2]) = (mpidr, entry, id.index() as u64);
    let result = smccc::smc64(psci.cpu_on, args)[0] as i64;
    // Return codes: DEN0022, "Return error codes".
    match result {
        0 => Ok(()),
        -2 => Err("PSCI CPU_ON: invalid parameters"),
        -4 => Err("PSCI CPU_ON: already on"),
        -5 => Err("PSCI CPU_ON: already being turned on"),
        -6 => Err("PSCI CPU_ON: internal failure"),
        -9 => Err("PSCI CPU_ON: invalid entry address"),
        _ => Err("PSCI CPU_ON failed"),
    }
}

/// The spin-table method (Linux `Documentation/arch/arm64/booting.rst`, and what the Pi's
/// armstub8 and QEMU's `raspi` boot stub implement): the core waits in `WFE` polling
/// `release`; write the entry there, clean it to the point of coherency (the core reads
/// it with its MMU off) and `SEV`.
fn spin_table(release: PhysAddr, entry: u64, ram: &Ram) -> Result<(), &'static str> {
    let address = release.raw();
    if ram.cover(address, 8) != Cover::Whole {
        return Err("its cpu-release-addr is outside the RAM exo maps");
    }
    // SAFETY: an 8-byte-aligned word in mapped RAM (checked above and by `Cores::from_fdt`),
    // reserved by the device tree (/memreserve/) for the spin table; nothing else uses it.
    unsafe { core::ptr::write_volatile(address as *mut u64, entry) };
    clean_to_poc(address, address + 8);
    aarch64_cpu::asm::sev();
    Ok(())
}

/// Waits until core `id` reports in, at most [`REPORT_TIMEOUT_MS`] by the system counter.
fn wait_for(id: CoreId) {
    let ticks = super::el2::timer_frequency() * REPORT_TIMEOUT_MS / 1000;
    let start = super::el2::counter();
    while STATE[id.index()].load(Ordering::Acquire) == DOWN {
        if super::el2::counter().wrapping_sub(start) > ticks {
            return;
        }
        core::hint::spin_loop();
    }
}

/// Logs one line of which cores are up and which of them idle (run no partition: bit `i`
/// of `pinned` clear), and a warning per core that is not up.
fn report(cores: &Cores, pinned: u32) {
    let mut up = Line::new();
    let mut count = 0;
    for (id, core) in cores.iter() {
        let state = if id == CoreId::BOOT {
            UP
        } else {
            STATE[id.index()].load(Ordering::Acquire)
        };
        match state {
            DOWN => warn!(
                "cores: {id} (MPIDR {:#x}) did not come up within {REPORT_TIMEOUT_MS} ms",
                core.mpidr
            ),
            UP_WITHOUT_GIC => warn!(
                "cores: {id} (MPIDR {:#x}) is up without its GIC interface",
                core.mpidr
            ),
            _ => {}
        }
        if state != DOWN {
            count += 1;
            let _ = write!(up, " {:#x}", core.mpidr);
        }
    }
    let mut idle = Line::new();
    let _ = match count {
        _ if pinned & !1 != 0 => running(&mut idle, cores, pinned),
        1 => Ok(()),
        2 => write!(idle, ", 1 idle"),
        _ if count == cores.len() => write!(idle, ", 1-{} idle", count - 1),
        _ => write!(idle, ", the other {} idle", count - 1),
    };
    info!(
        "cores: {count} of {} up (MPIDR{}){}",
        cores.len(),
        up.as_str(),
        idle.as_str()
    );
}

/// Partitions run on other cores than the boot core: which cores run partitions, which idle
/// (`, partitions on 0 1 2 3`, then `, idle: 4 5` if any up core runs none).
fn running(line: &mut Line, cores: &Cores, pinned: u32) -> core::fmt::Result {
    let up = |id: CoreId| is_up(id);
    write!(line, ", partitions on")?;
    for (id, _) in cores
        .iter()
        .filter(|&(id, _)| up(id) && pinned & (1 << id.index()) != 0)
    {
        write!(line, " {}", id.index())?;
    }
    let mut idle = cores
        .iter()
        .filter(|&(id, _)| up(id) && pinned & (1 << id.index()) == 0)
        .peekable();
    if idle.peek().is_some() {
        write!(line, ", idle:")?;
        for (id, _) in idle {
            write!(line, " {}", id.index())?;
        }
    }
    Ok(())
}

/// A short line built without allocation (MPIDRs of at most [`MAX_CORES`] cores).
struct Line {
    bytes: [u8; 160],
    len: usize,
}

impl Line {
    fn new() -> Self {
        Self {
            bytes: [0; 160],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Rust entry of a secondary core (`boot.rs`): MMU on with the boot core's map, on its own
/// stack, vectors set, interrupts masked. Sets up this core's EL2 controls and GIC part,
/// reports in, and idles.
#[unsafe(no_mangle)]
extern "C" fn exo_secondary_main(index: usize) -> ! {
    super::el2::init();
    // The timers' control registers reset to UNKNOWN values (Arm ARM, "The Generic Timer
    // in AArch64 state"): stop the EL2, EL1 physical and virtual timers, so no timer
    // interrupt keeps waking the idle core.
    CNTHP_CTL_EL2.set(0);
    CNTP_CTL_EL0.set(0);
    CNTV_CTL_EL0.set(0);
    let state = match super::gic::init_this_core() {
        Ok(()) => UP,
        Err(why) => {
            warn!(
                "cores: MPIDR {:#x}: GIC interface: {why}",
                MPIDR_EL1.get() & MPIDR_AFFINITY_MASK
            );
            UP_WITHOUT_GIC
        }
    };
    if let Some(slot) = STATE.get(index) {
        slot.store(state, Ordering::Release);
    }
    // `WFE` sleeps until an event: `release`'s `SEV` (an event sent between the load and
    // the `WFE` is remembered in the event register, so none is missed).
    while !RELEASED.load(Ordering::Acquire) {
        aarch64_cpu::asm::wfe();
    }
    match CoreId::new(index) {
        Some(core) => super::trap::enter_first(core, super::boot::core_stack_top(core)),
        None => loop {
            super::el2::wait_for_interrupt();
        },
    }
}
