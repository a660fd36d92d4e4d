//! The AArch64 implementation of the kernel's [`Platform`](crate::platform::Platform), one
//! concern trait at a time: physical memory through the EL2 identity map, stage-2 TLB
//! maintenance, cache maintenance, the console and the logger, the counter, the GIC and
//! the vCPUs.

use super::stage2_format::Aarch64Stage2;
use crate::console::{Console, Writer};
use crate::drivers::Uart;
use crate::irq::VirtualIrq;
use crate::mem::frame_table::PartitionId;
use crate::mem::stage2::{TlbMaintenance, Vmid};
use crate::platform::{
    CacheMaintenance, Clock, ConsoleOutput, GicFacts, InterruptController, PhysicalMemory, SpiOp,
    Stage2Hardware, VcpuControl,
};
use aarch64_cpu::registers::{Readable, VTTBR_EL2, Writeable};
use exo_abi::{Ipa, PAGE_SIZE, PhysAddr};

/// The machine as the portable kernel sees it.
pub struct Aarch64Platform;

impl PhysicalMemory for Aarch64Platform {
    fn read_u64(&self, pa: PhysAddr) -> u64 {
        // SAFETY: the portable kernel reads only stage-2 table frames it allocated from RAM,
        // which the EL2 identity map covers; the address is 8-byte aligned (table index * 8).
        unsafe { core::ptr::read_volatile(pa.raw() as *const u64) }
    }

    fn write_u64(&mut self, pa: PhysAddr, value: u64) {
        // SAFETY: as for `read_u64`; the frame is kernel-owned per the frame table.
        unsafe { core::ptr::write_volatile(pa.raw() as *mut u64, value) };
        // Make the descriptor visible to the table walker before anyone relies on it
        // (Arm ARM D8.2.x "Ordering of translation table updates").
        aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISHST);
    }

    fn zero_frame(&mut self, frame: PhysAddr) {
        debug_assert!(frame.is_page_aligned());
        match zva_block_size() {
            // SAFETY: `DC ZVA` zeroes naturally aligned blocks of `block` bytes (Arm ARM
            // C5.3.x), here every block of `frame`, a RAM frame the frame table just gave to
            // (or took from) a new owner, identity mapped as Normal memory at EL2; nothing
            // else references it while the kernel runs.
            Some(block) => unsafe { by_block::<ZVA>(frame, block) },
            // SAFETY: as above; a plain store loop where `DC ZVA` is prohibited.
            None => unsafe {
                core::ptr::write_bytes(frame.raw() as *mut u8, 0, PAGE_SIZE as usize)
            },
        }
    }

    fn copy_to_phys(&mut self, pa: PhysAddr, bytes: &[u8]) {
        debug_assert!(pa.page_offset() + bytes.len() as u64 <= PAGE_SIZE);
        // SAFETY: the destination lies in one RAM frame the kernel is loading (checked by the
        // caller against the frame table), identity mapped, and cannot overlap `bytes`, which
        // is kernel data or the boot package (reserved frames).
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), pa.raw() as *mut u8, bytes.len()) };
    }

    fn copy_from_phys(&self, pa: PhysAddr, buffer: &mut [u8]) {
        debug_assert!(pa.page_offset() + buffer.len() as u64 <= PAGE_SIZE);
        // SAFETY: the source lies in one RAM frame bound readable to the calling partition
        // (checked through its stage-2 tables); the partition is not running while we copy.
        unsafe {
            core::ptr::copy_nonoverlapping(pa.raw() as *const u8, buffer.as_mut_ptr(), buffer.len())
        };
    }
}

impl Stage2Hardware for Aarch64Platform {
    type Format = Aarch64Stage2;
    type Tlb = Stage2Tlb;

    fn tlb(&self) -> Stage2Tlb {
        Stage2Tlb
    }
}

impl CacheMaintenance for Aarch64Platform {
    fn clean_to_poc(&mut self, frame: PhysAddr) {
        // SAFETY: `DC CIVAC` (Arm ARM C5.3.x) cleans and invalidates data cache lines of
        // `frame`, a RAM frame identity mapped at EL2; it changes no memory contents.
        unsafe { by_block::<CIVAC>(frame, cache_line_size()) };
        aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::SY);
    }

    fn publish_done(&mut self) {
        // SAFETY: invalidates all instruction caches to the point of unification, inner
        // shareable (Arm ARM C5.3.x `IC IALLUIS`); no data effect.
        unsafe { core::arch::asm!("ic ialluis", "dsb ish", "isb", options(nostack)) };
    }
}

impl ConsoleOutput for Aarch64Platform {
    #[inline]
    fn console_write(&mut self, who: Writer<'_>, bytes: &[u8]) {
        write_console(who, bytes);
    }
}

impl Clock for Aarch64Platform {
    #[inline]
    fn timer_frequency(&self) -> u64 {
        super::el2::timer_frequency()
    }

    #[inline]
    fn now(&self) -> u64 {
        aarch64_cpu::registers::CNTPCT_EL0.get()
    }
}

impl InterruptController for Aarch64Platform {
    #[inline]
    fn gic(&self) -> GicFacts {
        super::gic::facts()
    }

    #[inline]
    fn spi(&mut self, intid: u32, op: SpiOp) {
        super::gic::spi(intid, op);
    }

    #[inline]
    fn inject(&mut self, irq: VirtualIrq) -> bool {
        super::gic::inject(irq)
    }

    #[inline]
    fn notify_on_underflow(&mut self, on: bool) {
        super::gic::notify_on_underflow(on);
    }

    #[inline]
    fn live_virtual_pending(&self) -> bool {
        super::gic::live_virtual_pending()
    }
}

impl VcpuControl for Aarch64Platform {
    #[inline]
    fn initial_pstate(&self) -> u64 {
        // SPSR_EL2 (C5.2.19): M[3:0] = 0b0101 (EL1h), D, A, I, F masked.
        0x3C5
    }

    #[inline]
    fn virtual_timer_deadline(&self, id: PartitionId) -> Option<u64> {
        super::vcpu_state::virtual_timer_deadline(id)
    }

    #[inline]
    fn vcpu_ended(&mut self, id: PartitionId) {
        super::vcpu_state::ended(id);
    }
}

/// Stage-2 TLB maintenance by VMID (Arm ARM D8.13 "TLB maintenance instructions").
/// TLBI by IPA and by VMID act on the VMID in `VTTBR_EL2`, so each operation briefly
/// installs the target VMID and then puts the running partition's back.
pub struct Stage2Tlb;

impl Stage2Tlb {
    fn with_vmid(vmid: Vmid, operation: impl FnOnce()) {
        let saved = VTTBR_EL2.get();
        VTTBR_EL2.set((saved & ((1 << 48) - 1)) | (u64::from(vmid.0) << 48));
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        operation();
        VTTBR_EL2.set(saved);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    }
}

impl TlbMaintenance for Stage2Tlb {
    fn invalidate_ipa(&mut self, vmid: Vmid, ipa: Ipa) {
        let page = ipa.raw() >> 12;
        Self::with_vmid(vmid, || {
            // SAFETY: TLB maintenance has no memory effects. Sequence per Arm ARM D8.13.5:
            // complete the table write, invalidate the stage-2 entry, then every combined
            // stage-1+2 entry of the VMID (they may cache the old translation), then sync.
            unsafe {
                core::arch::asm!(
                    "dsb ishst",
                    "tlbi ipas2e1is, {page}",
                    "dsb ish",
                    "tlbi vmalle1is",
                    "dsb ish",
                    "isb",
                    page = in(reg) page,
                    options(nostack),
                )
            };
        });
    }

    fn invalidate_vmid(&mut self, vmid: Vmid) {
        Self::with_vmid(vmid, || {
            // SAFETY: TLB maintenance only; invalidates stage 1 and 2 entries of the VMID.
            unsafe {
                core::arch::asm!(
                    "dsb ishst",
                    "tlbi vmalls12e1is",
                    "dsb ish",
                    "isb",
                    options(nostack)
                )
            };
        });
    }
}

/// The system console, once the UART is known.
static CONSOLE: spin::Mutex<Option<Console<Uart>>> = spin::Mutex::new(None);

/// Moves the console to `uart`: what the previous UART still holds is sent first (a
/// bounded wait), then `uart` is programmed for 115200 8N1 from `clock_hz` if given (the
/// early console is used as the firmware left it).
pub fn init_console(mut uart: Uart, clock_hz: Option<u32>) {
    let mut console = CONSOLE.lock();
    if let Some(previous) = console.as_mut() {
        previous.sink_mut().flush();
    }
    if let Some(clock_hz) = clock_hz {
        uart.init(clock_hz);
    }
    *console = Some(Console::new(uart));
    drop(console);
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(if cfg!(debug_assertions) {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    });
}

/// Writes to the console (dropped if there is none yet).
pub fn write_console(who: Writer<'_>, bytes: &[u8]) {
    if let Some(console) = CONSOLE.lock().as_mut() {
        console.write(who, bytes);
    }
}

/// Writes a panic message even if the console lock is held by the code that panicked.
pub fn write_console_forced(bytes: &[u8]) {
    // SAFETY: only used on the panic path, after which nothing else runs; a torn line is
    // better than a silent kernel death.
    unsafe { CONSOLE.force_unlock() };
    write_console(Writer::Kernel, bytes);
}

struct Logger;
static LOGGER: Logger = Logger;

/// Formats straight into the console.
struct KernelLine<'a>(&'a mut Console<Uart>);

impl core::fmt::Write for KernelLine<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.write(Writer::Kernel, s.as_bytes());
        Ok(())
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut guard = CONSOLE.lock();
        let Some(console) = guard.as_mut() else {
            return;
        };
        let mut line = KernelLine(console);
        let _ = match record.level() {
            log::Level::Info => {
                core::fmt::write(&mut line, format_args!("exo: {}\n", record.args()))
            }
            level => core::fmt::write(
                &mut line,
                format_args!("exo: {}: {}\n", level_name(level), record.args()),
            ),
        };
    }

    fn flush(&self) {}
}

/// The word printed before a non-info log message.
fn level_name(level: log::Level) -> &'static str {
    match level {
        log::Level::Error => "error",
        log::Level::Warn => "warning",
        log::Level::Info => "info",
        log::Level::Debug => "debug",
        log::Level::Trace => "trace",
    }
}

/// `by_block` operation: `DC ZVA`.
const ZVA: u8 = 0;
/// `by_block` operation: `DC CIVAC`.
const CIVAC: u8 = 1;

/// Issues the data-cache operation `OP` ([`ZVA`] or [`CIVAC`]) on every `block` bytes of
/// `frame`, eight per loop iteration (two instructions a block instead of four).
///
/// # Safety
/// `frame` must be a page-aligned RAM frame identity mapped at EL2 that the kernel may
/// overwrite (for `ZVA`); `block` a power of two dividing [`PAGE_SIZE`].
unsafe fn by_block<const OP: u8>(frame: PhysAddr, block: usize) {
    let end = frame.raw() + PAGE_SIZE;
    let mut at = frame.raw();
    macro_rules! eight {
        ($op:literal) => {
            // SAFETY: eight operations on the eight blocks from `at`, all inside `frame`
            // (the caller's guarantee; the loop below runs this only while they fit).
            unsafe {
                core::arch::asm!(
                    concat!("dc ", $op, ", {a}"), "add {a}, {a}, {b}",
                    concat!("dc ", $op, ", {a}"), "add {a}, {a}, {b}",
                    concat!("dc ", $op, ", {a}"), "add {a}, {a}, {b}",
                    concat!("dc ", $op, ", {a}"), "add {a}, {a}, {b}",
                    concat!("dc ", $op, ", {a}"), "add {a}, {a}, {b}",
                    concat!("dc ", $op, ", {a}"), "add {a}, {a}, {b}",
                    concat!("dc ", $op, ", {a}"), "add {a}, {a}, {b}",
                    concat!("dc ", $op, ", {a}"), "add {a}, {a}, {b}",
                    a = inout(reg) at,
                    b = in(reg) block,
                    options(nostack),
                )
            }
        };
    }
    macro_rules! one {
        ($op:literal) => {
            // SAFETY: one operation on the block at `at`, inside `frame`.
            unsafe {
                core::arch::asm!(concat!("dc ", $op, ", {a}"), a = in(reg) at, options(nostack))
            }
        };
    }
    while at + 8 * block as u64 <= end {
        match OP {
            ZVA => eight!("zva"),
            _ => eight!("civac"),
        }
    }
    while at < end {
        match OP {
            ZVA => one!("zva"),
            _ => one!("civac"),
        }
        at += block as u64;
    }
}

/// The block `DC ZVA` zeroes, in bytes, or `None` if EL2 may not use it (`DCZID_EL0`,
/// D24.2.x: DZP in bit 4, BS in bits 3:0 as log2 of 4-byte words).
fn zva_block_size() -> Option<usize> {
    let dczid: u64;
    // SAFETY: reading DCZID_EL0 has no side effect.
    unsafe { core::arch::asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack)) };
    let block = 4usize << (dczid & 0xF);
    (dczid & 0x10 == 0 && block <= PAGE_SIZE as usize).then_some(block)
}

/// The smallest data cache line, in bytes (`CTR_EL0.DminLine`, log2 of words; D24.2.x).
fn cache_line_size() -> usize {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effect.
    unsafe { core::arch::asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    4 << ((ctr >> 16) & 0xF)
}
