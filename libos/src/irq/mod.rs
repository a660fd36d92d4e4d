//! Interrupts at EL1: the virtual GIC CPU interface (GICv3 system registers or the GICv2
//! `GICV` frame), a table of handlers, the dispatcher the IRQ vector runs, and waiting for
//! interrupts without spinning and without losing a wake-up.
//!
//! The kernel injects a partition's interrupts through list registers. Which CPU interface
//! the library OS drives the info page says ([`exo_abi::info::GicInterface`]):
//!
//! - GICv3: with `HCR_EL2.IMO` set, the `ICC_*` system registers reach the virtual CPU
//!   interface (`ICV_*`); interrupts are Group 1.
//! - GICv2: the kernel maps the hardware `GICV` frame at an IPA the info page names
//!   (the `gicv2` module); interrupts are Group 0, signalled as IRQ.
//!
//! The sequence is:
//!
//! 1. [`init`]: set up the CPU interface the info page names.
//! 2. [`register`] a handler per INTID (the virtual timer's is [`crate::timer`]'s), and ask
//!    the kernel to deliver the SPIs the partition owns ([`bind`], or
//!    [`crate::hypercall::irq_enable`]).
//! 3. [`enable`]: unmask IRQs at EL1 (`PSTATE.I`). Partitions start with them masked.
//!    Or leave them masked and take interrupts only inside [`wait_until`].
//!
//! The dispatcher acknowledges interrupts until the CPU interface reports none, runs each
//! one's handler (found by the INTID bits, 9:0 on GICv2) and ends it with exactly the value
//! it acknowledged. Handlers run in the IRQ vector on the interrupted stack with IRQs masked:
//! they must be short, must not wait for anything the interrupted code might hold, and must
//! silence a level-sensitive source (move a timer deadline forward, drain a FIFO) before they
//! return. They may print.
//!
//! Upcalls run with IRQs masked too, and the upcall entry never unmasks them, so interrupts
//! and upcalls never run inside each other.
//!
//! Because a handler may interrupt code holding any lock, work that needs the library OS's
//! locks is only noted in the handler and done later, at a safe point: the kernel's
//! revocation signals are taken that way ([`crate::mem::revocation::by_interrupt`]).

pub(crate) mod gicv2;

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use exo_abi::info::GicInterface;
use spin::Mutex;

use crate::{Info, arch, device, hypercall, runtime};

/// The spurious INTID the CPU interface acknowledges when nothing is pending (IHI 0069
/// §2.2.1, IHI 0048B §3.2.5). 1020..=1022 are special too and never reach a handler.
pub const SPURIOUS: u32 = 1023;
/// How many INTIDs can have a handler at once.
pub const HANDLER_SLOTS: usize = 32;

/// An interrupt handler: gets the INTID; runs in the IRQ vector with IRQs masked.
pub type Handler = fn(u32);

/// Why interrupts cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The PE has no GIC system-register interface (`ID_AA64PFR0_EL1.GIC == 0`) although the
    /// system has a GICv3 (or the info page names no CPU interface and there is none).
    NoSystemRegisterInterface,
    /// `ICC_SRE_EL1.SRE` reads back 0 after being set: only the memory-mapped interface is
    /// offered.
    SystemRegisterInterfaceDisabled,
    /// The GICv2 CPU interface the info page names cannot be used: see the inner error.
    CpuInterface(device::Error),
    /// [`init`] has not succeeded yet.
    NotInitialised,
    /// Every handler slot is taken.
    TableFull,
    /// Not an INTID a handler can be registered for (1020..=1023 are special).
    InvalidIntid,
    /// The kernel refused a call.
    Kernel(exo_abi::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoSystemRegisterInterface => f.write_str(
                "the CPU has no GIC system-register interface (ID_AA64PFR0_EL1.GIC == 0)",
            ),
            Error::SystemRegisterInterfaceDisabled => {
                f.write_str("ICC_SRE_EL1.SRE does not read back 1")
            }
            Error::CpuInterface(error) => write!(f, "the GICv2 CPU interface: {error}"),
            Error::NotInitialised => f.write_str("interrupts are not initialised"),
            Error::TableFull => f.write_str("every interrupt handler slot is taken"),
            Error::InvalidIntid => f.write_str("not a valid INTID"),
            Error::Kernel(error) => write!(f, "the kernel refused: {error}"),
        }
    }
}

impl From<exo_abi::Error> for Error {
    fn from(error: exo_abi::Error) -> Self {
        Error::Kernel(error)
    }
}

/// The CPU interface in use.
enum Interface {
    /// Not set up yet.
    None,
    /// GICv3 system registers.
    V3,
    /// The GICv2 `GICV` frame.
    V2(gicv2::CpuInterface),
}

/// Which kind of CPU interface [`init`] set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// GICv3 system registers (`ICC_*`, reaching `ICV_*`).
    V3,
    /// The GICv2 virtual CPU interface frame (`GICV_*`).
    V2,
}

/// The handler table: INTID and handler per slot.
type Table = [Option<(u32, Handler)>; HANDLER_SLOTS];

static HANDLERS: Mutex<Table> = Mutex::new([None; HANDLER_SLOTS]);
static FALLBACK: Mutex<Option<Handler>> = Mutex::new(None);
static INTERFACE: Mutex<Interface> = Mutex::new(Interface::None);
static INITIALISED: AtomicBool = AtomicBool::new(false);
static HANDLED: AtomicU64 = AtomicU64::new(0);
static UNHANDLED: AtomicU64 = AtomicU64::new(0);
/// Work handlers put off to a safe point, done by [`wait_until`] before each check. A hook,
/// set by the module that needs it, so a program that never uses it does not link that
/// module's state (the frame table, for revocation).
static DEFERRED_WORK: Mutex<Option<fn()>> = Mutex::new(None);

/// Sets up the CPU interface the info page names; IRQs stay masked until [`enable`] (or a
/// [`wait_until`]). Calling it again once it succeeded does nothing.
///
/// - GICv3: `ICC_SRE_EL1.SRE = 1` (checked by reading it back), `ICC_PMR_EL1 = 0xFF`,
///   `ICC_BPR1_EL1 = 0`, `ICC_IGRPEN1_EL1 = 1`.
/// - GICv2: claims the `GICV` frame and sets `GICV_PMR`, `GICV_BPR`, `GICV_CTLR`
///   (`gicv2::CpuInterface::setup`).
///
/// An info page without interrupt facts (a kernel older than ABI 1.3) means GICv3 if the PE
/// has the system-register interface.
pub fn init(info: &Info) -> Result<Kind, Error> {
    // The IRQ vector runs `dispatch` from now on (a second `init` registers nothing new).
    runtime::hooks::set_irq_handler(dispatch);
    without_interrupts(|| {
        let mut interface = INTERFACE.lock();
        match *interface {
            Interface::V3 => return Ok(Kind::V3),
            Interface::V2(_) => return Ok(Kind::V2),
            Interface::None => {}
        }
        let gic = info.interrupts().map(|facts| facts.gic);
        let kind = match gic {
            Some(GicInterface::V2 { .. }) => {
                let region = match device::claim_gic_cpu_interface(info) {
                    Some(Ok(region)) => region,
                    Some(Err(error)) => return Err(Error::CpuInterface(error)),
                    None => return Err(Error::CpuInterface(device::Error::NotFound)),
                };
                let mut cpu = gicv2::CpuInterface::new(region);
                cpu.setup();
                *interface = Interface::V2(cpu);
                Kind::V2
            }
            Some(GicInterface::V3) | None => {
                if !arch::gic_system_registers_implemented() {
                    return Err(Error::NoSystemRegisterInterface);
                }
                if !arch::enable_gic_system_registers() {
                    return Err(Error::SystemRegisterInterfaceDisabled);
                }
                arch::gic_cpu_interface_setup();
                *interface = Interface::V3;
                Kind::V3
            }
        };
        INITIALISED.store(true, Ordering::Release);
        Ok(kind)
    })
}

/// Whether [`init`] has succeeded.
pub fn is_initialised() -> bool {
    INITIALISED.load(Ordering::Acquire)
}

/// Runs `handler` for every interrupt `intid` from now on, replacing any handler it had.
pub fn register(intid: u32, handler: Handler) -> Result<(), Error> {
    if intid >= 1020 {
        return Err(Error::InvalidIntid);
    }
    without_interrupts(|| insert(&mut HANDLERS.lock(), intid, handler))
}

/// Makes [`wait_until`] call `work` before each check of its condition: work interrupt
/// handlers noted but could not do where they interrupted (they must not wait for locks).
pub(crate) fn set_deferred_work(work: fn()) {
    without_interrupts(|| *DEFERRED_WORK.lock() = Some(work));
}

/// Removes the handler of `intid`, if any; its interrupts then go to the fallback handler.
pub fn unregister(intid: u32) {
    without_interrupts(|| {
        for slot in HANDLERS.lock().iter_mut() {
            if slot.is_some_and(|(registered, _)| registered == intid) {
                *slot = None;
            }
        }
    });
}

/// Runs `handler` for interrupts that have no handler of their own (`None`: only count
/// them). They are counted as unhandled either way.
pub fn set_fallback(handler: Option<Handler>) {
    without_interrupts(|| *FALLBACK.lock() = handler);
}

/// Registers `handler` for `intid` and asks the kernel to deliver it (`EXO_IRQ_ENABLE`): an
/// SPI the partition owns, or a kernel signal ([`exo_abi::call::signal`]). The handler is
/// removed again if the kernel refuses.
pub fn bind(intid: u32, handler: Handler) -> Result<(), Error> {
    register(intid, handler)?;
    hypercall::irq_enable(intid).map_err(|error| {
        unregister(intid);
        Error::Kernel(error)
    })
}

fn insert(table: &mut Table, intid: u32, handler: Handler) -> Result<(), Error> {
    if let Some(slot) = table
        .iter_mut()
        .find(|slot| slot.is_some_and(|(registered, _)| registered == intid))
    {
        *slot = Some((intid, handler));
        return Ok(());
    }
    let free = table
        .iter_mut()
        .find(|slot| slot.is_none())
        .ok_or(Error::TableFull)?;
    *free = Some((intid, handler));
    Ok(())
}

fn lookup(table: &Table, intid: u32) -> Option<Handler> {
    table
        .iter()
        .flatten()
        .find(|(registered, _)| *registered == intid)
        .map(|&(_, handler)| handler)
}

/// Unmasks IRQs at EL1. Refused until [`init`] has succeeded: the dispatcher must be able
/// to acknowledge what arrives.
pub fn enable() -> Result<(), Error> {
    if !is_initialised() {
        return Err(Error::NotInitialised);
    }
    arch::unmask_irqs();
    Ok(())
}

/// Masks IRQs at EL1.
pub fn disable() {
    arch::mask_irqs();
}

/// Whether IRQs are unmasked at EL1.
pub fn enabled() -> bool {
    !arch::irqs_masked()
}

/// Runs `f` with IRQs masked, restoring the previous mask afterwards.
///
/// This keeps out interrupt handlers on the calling vCPU only: with one vCPU per partition
/// (today) that makes `f` exclusive; with several, state shared between vCPUs needs a lock
/// as well (and a lock taken in a handler needs this around it).
pub fn without_interrupts<T>(f: impl FnOnce() -> T) -> T {
    let was_masked = arch::irqs_masked();
    arch::mask_irqs();
    let result = f();
    if !was_masked {
        arch::unmask_irqs();
    }
    result
}

/// Waits until `condition` holds, giving the CPU away while nothing happens.
///
/// With IRQs masked, checks `condition`; if it does not hold, calls `EXO_WAIT_EVENT`, which
/// returns once a virtual interrupt is pending (at once if one already is), then unmasks IRQs
/// just long enough for the pending interrupts to be taken and their handlers to run, and
/// checks again. An interrupt that arrives after a check stays pending, so `EXO_WAIT_EVENT`
/// returns at once: no wake-up is lost. On return the IRQ mask is as it was; the condition
/// held at the last check, made with IRQs masked.
///
/// Something must eventually make `condition` true from an interrupt handler (or the passing
/// of time it reads itself together with a timer: see [`crate::timer::wait_for`]). Not for
/// use in an interrupt handler or an upcall. Needs [`init`]. On a kernel without
/// `EXO_WAIT_EVENT` it waits with `WFI` instead, which idles the rest of the time slice.
///
/// A wait is a safe point for revocation taken by interrupt: once
/// [`crate::mem::revocation::by_interrupt`] is set up, the request or repossessions the
/// signals' handlers noted are dealt with ([`crate::mem::revocation::poll`]) before each
/// check of `condition`, so a partition that sleeps here still gives frames back in time,
/// and `condition` may test [`crate::mem::revocation::stats`].
pub fn wait_until(mut condition: impl FnMut() -> bool) -> Result<(), Error> {
    if !is_initialised() {
        return Err(Error::NotInitialised);
    }
    let was_masked = arch::irqs_masked();
    arch::mask_irqs();
    let result = wait_loop(
        || {
            let deferred = *DEFERRED_WORK.lock();
            if let Some(work) = deferred {
                work();
            }
            condition()
        },
        hypercall::wait_event,
        arch::take_pending_interrupts,
    );
    if !was_masked {
        arch::unmask_irqs();
    }
    result
}

/// Waits until at least one interrupt has been dispatched (handled or not) after the call.
/// See [`wait_until`].
pub fn wait() -> Result<(), Error> {
    let before = dispatched();
    wait_until(|| dispatched() != before)
}

/// The loop of [`wait_until`], over its two machine operations: `wait_event` blocks until an
/// interrupt is pending, `take_pending` lets pending interrupts in.
fn wait_loop(
    mut condition: impl FnMut() -> bool,
    mut wait_event: impl FnMut() -> Result<(), exo_abi::Error>,
    mut take_pending: impl FnMut(),
) -> Result<(), Error> {
    loop {
        if condition() {
            return Ok(());
        }
        match wait_event() {
            Ok(()) => {}
            // A kernel without EXO_WAIT_EVENT: WFI wakes on a pending interrupt even while
            // IRQs are masked (Arm ARM C6.2.403).
            Err(exo_abi::Error::NotSupported) => arch::wait_for_interrupt(),
            Err(error) => return Err(Error::Kernel(error)),
        }
        take_pending();
    }
}

/// Waits (`WFI`) until an interrupt is pending. The kernel does not trap `WFI`: the partition
/// idles the rest of its time slice. With IRQs unmasked the handler has run when this
/// returns; with them masked it returns with the interrupt still pending. Prefer
/// [`wait_until`], which gives the CPU to others.
pub fn wait_for_interrupt() {
    arch::wait_for_interrupt();
}

/// Interrupts dispatched so far: `(handled, unhandled)`, the latter having no handler of
/// their own (the fallback, if any, ran).
pub fn counts() -> (u64, u64) {
    (
        HANDLED.load(Ordering::Relaxed),
        UNHANDLED.load(Ordering::Relaxed),
    )
}

/// Handled plus unhandled.
fn dispatched() -> u64 {
    let (handled, unhandled) = counts();
    handled.wrapping_add(unhandled)
}

/// The dispatcher: the IRQ vector runs it (through the runtime's hooks, where [`init`]
/// registers it) with IRQs masked.
///
/// Multi-vCPU: the handler table is the partition's, but `INTERFACE`'s lock would serialise
/// vCPUs taking interrupts at once; the CPU interface is per PE (GICv3 system registers, or
/// the GICv2 `GICV` frame banked per CPU at one IPA), so it can become a `PerVcpu` value.
fn dispatch() {
    dispatch_with(&HANDLERS, &FALLBACK, &mut *INTERFACE.lock());
}

/// What the dispatcher needs of a CPU interface.
trait Acknowledge {
    /// Acknowledges the highest-priority pending interrupt: the raw value and the INTID it
    /// names; `None` if the interface cannot say.
    fn acknowledge(&mut self) -> Option<(u32, u32)>;

    /// Ends the interrupt `acknowledged` (the raw value [`Acknowledge::acknowledge`] gave).
    fn end(&mut self, acknowledged: u32);
}

impl Acknowledge for Interface {
    fn acknowledge(&mut self) -> Option<(u32, u32)> {
        match self {
            Interface::V3 => arch::acknowledge_interrupt().map(|intid| (intid, intid)),
            Interface::V2(cpu) => {
                let acknowledged = cpu.acknowledge();
                Some((acknowledged, gicv2::intid_of(acknowledged)))
            }
            // IRQs are unmasked only once `init` set an interface up.
            Interface::None => None,
        }
    }

    fn end(&mut self, acknowledged: u32) {
        match self {
            Interface::V3 => arch::end_interrupt(acknowledged),
            Interface::V2(cpu) => cpu.end(acknowledged),
            Interface::None => {}
        }
    }
}

/// Acknowledges interrupts on `interface` until it reports none or a special INTID
/// (1020..=1023), runs each one's handler from `table` (or `fallback`) outside those locks,
/// so a handler may register others, and ends it with the raw value it acknowledged.
fn dispatch_with(
    table: &Mutex<Table>,
    fallback: &Mutex<Option<Handler>>,
    interface: &mut impl Acknowledge,
) {
    while let Some((acknowledged, intid)) = interface.acknowledge() {
        if intid >= 1020 {
            break;
        }
        let handler = lookup(&table.lock(), intid);
        match handler {
            Some(handler) => {
                HANDLED.fetch_add(1, Ordering::Relaxed);
                handler(intid);
            }
            None => {
                UNHANDLED.fetch_add(1, Ordering::Relaxed);
                let fallback = *fallback.lock();
                if let Some(fallback) = fallback {
                    fallback(intid);
                }
            }
        }
        interface.end(acknowledged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::sync::atomic::AtomicU32;

    static FIRST: AtomicU32 = AtomicU32::new(0);
    static SECOND: AtomicU32 = AtomicU32::new(0);
    static CAUGHT: AtomicU32 = AtomicU32::new(0);

    fn first(_: u32) {
        FIRST.fetch_add(1, Ordering::Relaxed);
    }

    fn second(intid: u32) {
        assert_eq!(intid, 30);
        SECOND.fetch_add(1, Ordering::Relaxed);
    }

    fn catch_all(intid: u32) {
        CAUGHT.fetch_add(intid, Ordering::Relaxed);
    }

    static REPLACED: AtomicU32 = AtomicU32::new(0);

    fn replaced(_: u32) {
        REPLACED.fetch_add(1, Ordering::Relaxed);
    }

    fn info(gic: Option<GicInterface>) -> Info {
        use exo_abi::Name;
        use exo_abi::info::{InfoHeader, InfoWriter, InterruptInfo, SIZE};
        let page: &'static mut [u8; SIZE] = Box::leak(Box::new([0; SIZE]));
        let header = InfoHeader {
            abi_version: exo_abi::ABI_VERSION,
            partition_id: 0,
            name: Name::new("irq").unwrap(),
            timer_frequency: 62_500_000,
            guaranteed_frames: 256,
            borrow_limit_frames: 0,
            partition_count: 1,
        };
        let mut writer = InfoWriter::new(page, &header);
        if let Some(gic) = gic {
            let facts = InterruptInfo {
                gic,
                revocation: 8,
                repossession: 9,
                message: 10,
                virtual_timer: 27,
            };
            writer.set_interrupts(&facts, [48, 49].into_iter());
        }
        Info::from_page(page).unwrap()
    }

    #[test]
    fn host_has_no_gicv3() {
        assert_eq!(
            init(&info(Some(GicInterface::V3))),
            Err(Error::NoSystemRegisterInterface)
        );
        assert_eq!(init(&info(None)), Err(Error::NoSystemRegisterInterface));
        assert!(
            Error::SystemRegisterInterfaceDisabled
                .to_string()
                .contains("ICC_SRE_EL1")
        );
    }

    #[test]
    fn a_gicv2_interface_needs_a_usable_frame() {
        let bad = info(Some(GicInterface::V2 {
            cpu_interface: exo_abi::Ipa::new(0x0801_0010),
        }));
        assert_eq!(
            init(&bad),
            Err(Error::CpuInterface(device::Error::NotFound))
        );
    }

    #[test]
    fn special_intids_are_refused() {
        assert_eq!(register(1023, first), Err(Error::InvalidIntid));
        assert_eq!(register(1020, first), Err(Error::InvalidIntid));
    }

    #[test]
    fn table_replaces_and_fills_up() {
        let mut table: Table = [None; HANDLER_SLOTS];
        insert(&mut table, 27, first).unwrap();
        insert(&mut table, 27, replaced).unwrap();
        assert_eq!(table.iter().flatten().count(), 1);
        lookup(&table, 27).expect("registered")(27);
        assert_eq!(REPLACED.load(Ordering::Relaxed), 1);
        for intid in 0..HANDLER_SLOTS as u32 - 1 {
            insert(&mut table, 100 + intid, first).unwrap();
        }
        assert_eq!(insert(&mut table, 999, first), Err(Error::TableFull));
        assert!(lookup(&table, 5).is_none());
    }

    /// A CPU interface with a queue of raw acknowledge values, recording what was ended.
    struct Fake {
        pending: Vec<u32>,
        ended: Vec<u32>,
    }

    impl Acknowledge for Fake {
        fn acknowledge(&mut self) -> Option<(u32, u32)> {
            (!self.pending.is_empty()).then(|| {
                let raw = self.pending.remove(0);
                (raw, gicv2::intid_of(raw))
            })
        }

        fn end(&mut self, acknowledged: u32) {
            self.ended.push(acknowledged);
        }
    }

    #[test]
    fn dispatcher_acknowledges_until_spurious_and_ends_each_with_the_raw_value() {
        let mut entries: Table = [None; HANDLER_SLOTS];
        insert(&mut entries, 27, first).unwrap();
        insert(&mut entries, 30, second).unwrap();
        let table = Mutex::new(entries);
        let fallback = Mutex::new(Some(catch_all as Handler));
        // GICv2-style raw values: SGI 10 from CPU 2 carries 2 in bits 12:10.
        let sgi = 2 << 10 | 10;
        let mut interface = Fake {
            pending: vec![27, 31, 30, sgi, 27, SPURIOUS, 27],
            ended: Vec::new(),
        };
        let (first_before, second_before, caught_before) = (
            FIRST.load(Ordering::Relaxed),
            SECOND.load(Ordering::Relaxed),
            CAUGHT.load(Ordering::Relaxed),
        );
        dispatch_with(&table, &fallback, &mut interface);
        assert_eq!(interface.ended, [27, 31, 30, sgi, 27]);
        assert_eq!(interface.pending, [27]);
        assert_eq!(FIRST.load(Ordering::Relaxed) - first_before, 2);
        assert_eq!(SECOND.load(Ordering::Relaxed) - second_before, 1);
        assert_eq!(
            CAUGHT.load(Ordering::Relaxed) - caught_before,
            31 + 10,
            "the fallback sees INTIDs without handlers, by their INTID bits"
        );
        assert!(counts().1 >= 2);
    }

    #[test]
    fn waiting_checks_first_and_takes_interrupts_after_each_event() {
        // The condition becomes true from a "handler" run by `take_pending`.
        let flag = Cell::new(0);
        let events = Cell::new(0);
        let result = wait_loop(
            || flag.get() >= 3,
            || {
                events.set(events.get() + 1);
                Ok(())
            },
            || flag.set(flag.get() + 1),
        );
        assert_eq!(result, Ok(()));
        assert_eq!((flag.get(), events.get()), (3, 3));

        let events = Cell::new(0);
        let result = wait_loop(
            || true,
            || {
                events.set(events.get() + 1);
                Ok(())
            },
            || {},
        );
        assert_eq!(
            (result, events.get()),
            (Ok(()), 0),
            "no wait if the condition holds"
        );

        let result = wait_loop(|| false, || Err(exo_abi::Error::Denied), || {});
        assert_eq!(result, Err(Error::Kernel(exo_abi::Error::Denied)));
    }

    #[test]
    fn waiting_needs_init() {
        assert_eq!(wait_until(|| true), Err(Error::NotInitialised));
    }
}
