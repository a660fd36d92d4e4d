//! Visible revocation, the library OS side: answering the kernel's revocation requests with
//! the installed [`RevocationPolicy`], and following the repossession vector.
//!
//! The news comes one of two ways, as the program chooses:
//!
//! - **Upcalls** ([`crate::upcall::register`]): the `REVOCATION` and `REPOSSESSION` upcalls
//!   do the work at once. An upcall arrives only when a hypercall returns, and the library OS
//!   never holds its locks across one, so the work finds them free, and frames go only at
//!   hypercalls.
//! - **Interrupts** ([`by_interrupt`]): the kernel raises its `REVOCATION` and
//!   `REPOSSESSION` signals instead, and an interrupt can arrive at any instruction: while
//!   the interrupted code holds the frame table's lock (waiting for it would deadlock), or
//!   is writing to a frame the policy would choose (unbinding it would fault the code under
//!   its feet). So the interrupt handlers only note the news, with one atomic operation, and
//!   the work waits for a safe point: [`poll`], which the program calls from its main loop,
//!   [`super::yield_now`], and [`crate::irq::wait_until`] before each check of its
//!   condition. Frames go only at those points.
//!
//! Either way the work runs in one place, one caller at a time: a caller that finds another
//! at work further up the stack (an upcall during the work's own hypercalls) leaves the news
//! to it, and it looks again before it stops. The work takes every lock with `try_lock` and
//! leaves the news noted when one is held. So no news is lost (it is cleared only by the
//! caller about to act on it) and none is acted on twice: the revocation page, re-read on
//! every pass, says what is still owed, and the repossession vector is read on from where
//! the last pass stopped. A program that reaches no safe point before the deadline loses the
//! frames to the kernel's abort protocol, and the repossession news then says which.
//!
//! Both pages are written by the kernel while the partition is not running; the library OS
//! copies them (volatile loads) before reading, so no Rust reference ever covers memory that
//! changes under it. The repossession vector is [`VECTOR_SIZE`] bytes: copies of it go on
//! the stack (the upcall stack has room).

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use exo_abi::info::{REPOSSESSION_VECTOR_IPA, REVOCATION_PAGE_IPA};
use exo_abi::revocation::{
    HEADER, LOSS_ORDER_MAX, MAX_NAMED, Reason, Repossession, Request, RequestReader, RequestState,
    SIZE, VECTOR_SIZE, VectorReader,
};
use exo_abi::{Error, Ipa, PhysAddr};
use spin::Mutex;

use super::call;
use super::policy::{DefaultPolicy, RevocationPolicy, RevocationRequest, Selection};
use super::table::FrameTable;
use crate::{Info, arch, hypercall, irq};

pub use timeline::{Timeline, last_timeline, timeline};

/// What the library OS has done about revocation so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RevocationStats {
    /// Requests seen (distinct sequence numbers).
    pub requests: u64,
    /// Requests met: the acknowledgement found nothing still owed.
    pub met: u64,
    /// Frames given back in answer to requests.
    pub released: u64,
    /// Frames the kernel took or whose grants it withdrew (repossession vector entries).
    pub repossessed: u64,
    /// Sequence number of the last request seen.
    pub last_sequence: u64,
    /// `REVOCATION` signals taken (interrupts, with [`by_interrupt`]).
    pub revocation_signals: u64,
    /// `REPOSSESSION` signals taken.
    pub repossession_signals: u64,
}

/// The counters behind [`RevocationStats`]: atomics, so [`stats`] never waits for the work
/// and a signal handler can count without a lock. Only the caller doing the work changes the
/// first five.
struct Counters {
    requests: AtomicU64,
    met: AtomicU64,
    released: AtomicU64,
    repossessed: AtomicU64,
    last_sequence: AtomicU64,
    revocation_signals: AtomicU64,
    repossession_signals: AtomicU64,
}

impl Counters {
    const fn new() -> Self {
        Self {
            requests: AtomicU64::new(0),
            met: AtomicU64::new(0),
            released: AtomicU64::new(0),
            repossessed: AtomicU64::new(0),
            last_sequence: AtomicU64::new(0),
            revocation_signals: AtomicU64::new(0),
            repossession_signals: AtomicU64::new(0),
        }
    }

    /// Counts request `sequence` if it is new.
    fn saw(&self, sequence: u64) {
        if sequence != 0 && sequence != self.last_sequence.load(Ordering::Relaxed) {
            self.requests.fetch_add(1, Ordering::Relaxed);
            self.last_sequence.store(sequence, Ordering::Relaxed);
        }
    }

    fn snapshot(&self) -> RevocationStats {
        RevocationStats {
            requests: self.requests.load(Ordering::Relaxed),
            met: self.met.load(Ordering::Relaxed),
            released: self.released.load(Ordering::Relaxed),
            repossessed: self.repossessed.load(Ordering::Relaxed),
            last_sequence: self.last_sequence.load(Ordering::Relaxed),
            revocation_signals: self.revocation_signals.load(Ordering::Relaxed),
            repossession_signals: self.repossession_signals.load(Ordering::Relaxed),
        }
    }
}

/// News bit: the revocation page may hold a request to answer.
const REQUEST: u8 = 1;
/// News bit: the repossession vector may have new entries.
const REPOSSESSIONS: u8 = 2;

/// Revocation news not acted on yet, and whether a caller is acting on it. Lock-free, so an
/// interrupt handler can note news whatever the interrupted code holds.
struct News {
    noted: AtomicU8,
    working: AtomicBool,
}

impl News {
    const fn new() -> Self {
        Self {
            noted: AtomicU8::new(0),
            working: AtomicBool::new(false),
        }
    }

    /// Notes the news `bits`. One atomic operation: fit for an interrupt handler.
    fn note(&self, bits: u8) {
        self.noted.fetch_or(bits, Ordering::AcqRel);
    }

    /// Whether news waits.
    fn pending(&self) -> bool {
        self.noted.load(Ordering::Acquire) != 0
    }

    /// Acts on the news with `work`, which gets the bits noted and returns those it could not
    /// act on (a lock was held): they stay noted for a later call, and this one stops. Returns
    /// at once if a caller further up the stack is at work already: that caller looks again
    /// before it stops, so it acts on this news too. Returns whether `work` ran.
    fn settle(&self, mut work: impl FnMut(u8) -> u8) -> bool {
        let mut ran = false;
        while self.pending() {
            if self.working.swap(true, Ordering::Acquire) {
                break;
            }
            let mut stuck = false;
            loop {
                let bits = self.noted.swap(0, Ordering::AcqRel);
                if bits == 0 {
                    break;
                }
                ran = true;
                let left = work(bits);
                if left != 0 {
                    self.note(left);
                    stuck = true;
                    break;
                }
            }
            self.working.store(false, Ordering::Release);
            if stuck {
                break;
            }
            // News noted after the last look but before `working` was cleared was left for
            // this caller: the loop condition looks once more.
        }
        ran
    }
}

/// What the work needs of the kernel: the real calls and pages ([`Machine`]), or a fake in
/// host tests.
trait Kernel {
    /// Copies the first `page.len()` bytes of the revocation page; false if there is none.
    fn revocation_page(&mut self, page: &mut [u8]) -> bool;
    /// Copies the repossession vector; false if there is none.
    fn repossession_vector(&mut self, vector: &mut [u8; VECTOR_SIZE]) -> bool;
    /// `EXO_UNBIND`.
    fn unbind(&mut self, ipa: Ipa) -> Result<PhysAddr, Error>;
    /// `EXO_FRAME_FREE`.
    fn frame_free(&mut self, phys: PhysAddr) -> Result<(), Error>;
    /// `EXO_REVOKE_ACK`: frames still owed.
    fn revoke_ack(&mut self) -> Result<u64, Error>;
    /// `EXO_FRAME_RELEASE`: frames still owed.
    fn frame_release(&mut self, frames: &mut [u64]) -> Result<u64, Error>;
    /// `EXO_SET_LOSS_ORDER`.
    fn set_loss_order(&mut self, page: Ipa) -> Result<(), Error>;
}

/// The kernel itself.
struct Machine;

impl Kernel for Machine {
    fn revocation_page(&mut self, page: &mut [u8]) -> bool {
        arch::copy_kernel_pages(REVOCATION_PAGE_IPA, page)
    }

    fn repossession_vector(&mut self, vector: &mut [u8; VECTOR_SIZE]) -> bool {
        arch::copy_kernel_pages(REPOSSESSION_VECTOR_IPA, vector)
    }

    fn unbind(&mut self, ipa: Ipa) -> Result<PhysAddr, Error> {
        call::unbind(ipa)
    }

    fn frame_free(&mut self, phys: PhysAddr) -> Result<(), Error> {
        call::frame_free(phys)
    }

    fn revoke_ack(&mut self) -> Result<u64, Error> {
        call::revoke_ack()
    }

    fn frame_release(&mut self, frames: &mut [u64]) -> Result<u64, Error> {
        call::frame_release(frames).map(|(_, owed)| owed)
    }

    fn set_loss_order(&mut self, page: Ipa) -> Result<(), Error> {
        call::set_loss_order(page)
    }
}

/// Which policy answers requests.
enum Installed {
    Default(DefaultPolicy),
    Custom(&'static Mutex<dyn RevocationPolicy + Send>),
}

/// Everything the library OS keeps for revocation, over a frame table of `N` frames: the
/// global [`REVOKER`] works on the library OS's table; host tests build their own.
struct Revoker<'a, const N: usize, const H: usize> {
    table: &'a Mutex<FrameTable<N, H>>,
    policy: Mutex<Installed>,
    /// The policy's scratch selection (too large for the upcall stack).
    selection: Mutex<Selection>,
    /// Addresses of one `EXO_FRAME_RELEASE` batch (kept here, not zeroed on every answer).
    batch: Mutex<[u64; BATCH]>,
    /// The loss-order page (`EXO_SET_LOSS_ORDER`), and whether the kernel has it.
    loss_order: Mutex<LossPage>,
    loss_registered: AtomicBool,
    counters: Counters,
    /// Repossession vector entries applied to the frame table.
    applied: AtomicU64,
    news: News,
}

static REVOKER: Revoker<'static, { super::TABLE_CAPACITY }, { super::TABLE_INDEX }> =
    Revoker::new(&super::TABLE);

impl<'a, const N: usize, const H: usize> Revoker<'a, N, H> {
    const fn new(table: &'a Mutex<FrameTable<N, H>>) -> Self {
        Self {
            table,
            policy: Mutex::new(Installed::Default(DefaultPolicy)),
            selection: Mutex::new(Selection::new()),
            batch: Mutex::new([0; BATCH]),
            loss_order: Mutex::new(LossPage([0; 512])),
            loss_registered: AtomicBool::new(false),
            counters: Counters::new(),
            applied: AtomicU64::new(0),
            news: News::new(),
        }
    }

    /// Acts on the news noted so far (see [`News::settle`]); returns whether there was any
    /// this caller acted on.
    fn settle(&self, kernel: &mut impl Kernel) -> bool {
        self.news.settle(|bits| self.work(kernel, bits))
    }

    /// One pass over the news `bits`; returns the bits it could not act on.
    fn work(&self, kernel: &mut impl Kernel, bits: u8) -> u8 {
        let mut left = 0;
        // Repossessions first, so the policy does not choose frames the kernel took.
        if bits & REPOSSESSIONS != 0 && !self.apply_repossessions(kernel) {
            left |= REPOSSESSIONS;
        }
        if bits & REQUEST != 0 && !self.answer_request(kernel) {
            left |= REQUEST;
        }
        left
    }

    /// Answers the pending revocation request, if any: the policy chooses, the chosen frames
    /// are unbound and freed, and the kernel is told (`EXO_REVOKE_ACK`) unless nothing was
    /// released. False, having changed nothing, if a lock it needs is held.
    fn answer_request(&self, kernel: &mut impl Kernel) -> bool {
        let entered = crate::time::ticks();
        // The header alone, unless the request names frames.
        let mut header = [0; HEADER];
        if !kernel.revocation_page(&mut header) {
            return true;
        }
        let Some(reader) = RequestReader::new(&header) else {
            return true;
        };
        let request = reader.request();
        self.counters.saw(request.sequence);
        if request.state != RequestState::Pending || request.frames_owed == 0 {
            return true;
        }
        let named_count = reader.named_count();
        if named_count == 0 {
            return self.answer(kernel, &request, &[], entered);
        }
        let mut page = [0; SIZE];
        let bytes = HEADER + named_count * 8;
        if !kernel.revocation_page(&mut page[..bytes]) {
            return true;
        }
        let mut named = [PhysAddr::new(0); MAX_NAMED];
        let mut count = 0;
        if let Some(reader) = RequestReader::new(&page[..bytes]) {
            for (slot, frame) in named.iter_mut().zip(reader.named()) {
                *slot = frame;
                count += 1;
            }
        }
        self.answer(kernel, &request, &named[..count], entered)
    }

    /// Lets the policy choose for `request` (naming `named`), releases the choice and
    /// counts the outcome; `entered` is when the handler started, for the [`Timeline`].
    /// False, having changed nothing, if a lock it needs is held.
    fn answer(
        &self,
        kernel: &mut impl Kernel,
        request: &Request,
        named: &[PhysAddr],
        entered: u64,
    ) -> bool {
        let (Some(mut table), Some(mut choice), Some(mut policy), Some(mut batch)) = (
            self.table.try_lock(),
            self.selection.try_lock(),
            self.policy.try_lock(),
            self.batch.try_lock(),
        ) else {
            return false;
        };
        choice.clear();
        let view = RevocationRequest {
            sequence: request.sequence,
            requested: request.frames_requested,
            owed: request.frames_owed,
            deadline: request.deadline,
            named,
        };
        match &mut *policy {
            Installed::Default(policy) => policy.choose(&view, &table.holdings(), &mut choice),
            Installed::Custom(policy) => match policy.try_lock() {
                Some(mut policy) => policy.choose(&view, &table.holdings(), &mut choice),
                None => return false,
            },
        }
        drop(policy);
        let held = table.len() as u64;
        let chosen = crate::time::ticks();
        // The kernel is called with the table locked: nothing else in the library OS runs
        // meanwhile but interrupt handlers, which only note news.
        let (released, owed) = release_chosen(kernel, &mut table, &mut choice, &mut batch);
        // EXO_FRAME_RELEASE both releases and acknowledges: one stamp for both.
        let freed = crate::time::ticks();
        drop(choice);
        // The loss order is written when first answering and whenever frames stay owed
        // (the abort protocol may then read it), not on every answer that meets a request.
        if owed != Some(0) || !self.loss_registered.load(Ordering::Relaxed) {
            self.refresh_loss_order(kernel, &table);
        }
        drop(table);
        self.counters
            .released
            .fetch_add(released, Ordering::Relaxed);
        if released > 0 && owed == Some(0) {
            self.counters.met.fetch_add(1, Ordering::Relaxed);
        }
        timeline::record(Timeline {
            sequence: request.sequence,
            issued_at: request.issued_at,
            deadline: request.deadline,
            entered,
            chosen,
            released: freed,
            acknowledged: if released > 0 { freed } else { 0 },
            owed: request.frames_owed,
            frames: released,
            held,
        });
        true
    }

    /// Writes the frames the policy would release next, in order (up to a page's worth,
    /// pinned ones never), to the loss-order page, and registers it the first time, so the
    /// abort protocol takes frames in the library OS's order, not the kernel's.
    fn refresh_loss_order(&self, kernel: &mut impl Kernel, table: &FrameTable<N, H>) {
        let Some(mut page) = self.loss_order.try_lock() else {
            return;
        };
        let holdings = table.holdings();
        let mut count = 0;
        for slot in holdings.in_release_order() {
            if count == LOSS_ORDER_MAX {
                break;
            }
            if holdings[slot].is_revocable() {
                page.0[1 + count] = holdings[slot].phys().raw();
                count += 1;
            }
        }
        page.0[0] = count as u64;
        if !self.loss_registered.load(Ordering::Relaxed) {
            let ipa = Ipa::new(&page.0 as *const [u64; 512] as u64);
            if ipa.is_page_aligned() && kernel.set_loss_order(ipa).is_ok() {
                self.loss_registered.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Applies new repossession vector entries to the frame table: frames the kernel took
    /// are no longer held. False, having changed nothing, if the table is locked.
    fn apply_repossessions(&self, kernel: &mut impl Kernel) -> bool {
        let Some(mut table) = self.table.try_lock() else {
            return false;
        };
        let mut vector = [0; VECTOR_SIZE];
        if !kernel.repossession_vector(&mut vector) {
            return true;
        }
        let mut reader = RepossessionReader {
            seen: self.applied.load(Ordering::Relaxed),
        };
        let mut heap_lost = false;
        let poll = reader.poll_copy(&vector, |entry| {
            if entry.reason == Reason::Aborted
                && let Some(frame) = table.remove(entry.phys)
            {
                heap_lost |= frame.is_pinned();
            }
        });
        drop(table);
        self.applied.store(reader.seen, Ordering::Relaxed);
        self.counters
            .repossessed
            .fetch_add(poll.new + poll.lost, Ordering::Relaxed);
        if heap_lost {
            crate::println!("libos: the kernel repossessed heap frames; the heap is damaged");
        }
        true
    }
}

/// A page of this program's memory (its `.bss`, bound read-write and held since boot):
/// the loss order's layout, a count then frame addresses ([`exo_abi::revocation::LossOrder`]).
#[repr(C, align(4096))]
struct LossPage([u64; 512]);

/// Frames per `EXO_FRAME_RELEASE`.
const BATCH: usize = exo_abi::call::FRAME_RELEASE_MAX as usize;

/// Releases the chosen, revocable frames, highest slot first, in batches of `EXO_FRAME_RELEASE`
/// (each also an acknowledgement); a batch the kernel refuses is released a frame at a time
/// (unbind, free, then `EXO_REVOKE_ACK`). Returns how many went back to the kernel and
/// what the kernel said was still owed after the last (`None`: nothing was released).
fn release_chosen<const N: usize, const H: usize>(
    kernel: &mut impl Kernel,
    table: &mut FrameTable<N, H>,
    choice: &mut Selection,
    batch: &mut [u64; BATCH],
) -> (u64, Option<u64>) {
    let mut released = 0;
    let mut owed = None;
    let mut filled = 0;
    let mut chosen = choice.iter_descending().peekable();
    while chosen.peek().is_some() {
        // Slots below those gathered stay valid while the gathered frames are removed.
        for slot in chosen.by_ref() {
            if let Some(frame) = table.frames().get(slot).filter(|f| f.is_revocable()) {
                batch[filled] = frame.phys().raw();
                filled += 1;
                if filled == BATCH {
                    break;
                }
            }
        }
        if filled == 0 {
            break;
        }
        match kernel.frame_release(&mut batch[..filled]) {
            Ok(left) => {
                for &phys in &batch[..filled] {
                    table.remove(PhysAddr::new(phys));
                }
                released += filled as u64;
                owed = Some(left);
            }
            Err(_) => {
                let one_by_one = release_one_by_one(kernel, table, &batch[..filled]);
                released += one_by_one;
                if one_by_one > 0 {
                    owed = kernel.revoke_ack().ok();
                }
            }
        }
        filled = 0;
    }
    (released, owed)
}

/// Unbinds and frees each of `frames`; returns how many went back to the kernel.
fn release_one_by_one<const N: usize, const H: usize>(
    kernel: &mut impl Kernel,
    table: &mut FrameTable<N, H>,
    frames: &[u64],
) -> u64 {
    let mut released = 0;
    for &phys in frames {
        let phys = PhysAddr::new(phys);
        let Some(&frame) = table.get(phys) else {
            continue;
        };
        if let Some(ipa) = frame.ipa() {
            if kernel.unbind(ipa).is_err() {
                continue;
            }
            let _ = table.set_unbound(phys);
        }
        if kernel.frame_free(phys).is_ok() {
            table.remove(phys);
            released += 1;
        }
    }
    released
}

/// Installs `policy` for every later revocation request:
///
/// ```ignore
/// static POLICY: Mutex<Half> = Mutex::new(Half);
/// exo_libos::mem::set_revocation_policy(&POLICY);
/// ```
pub fn set_revocation_policy(policy: &'static Mutex<dyn RevocationPolicy + Send>) {
    *REVOKER.policy.lock() = Installed::Custom(policy);
}

/// What has happened so far. Never waits: fit for an interrupt handler.
pub fn stats() -> RevocationStats {
    REVOKER.counters.snapshot()
}

/// The kernel's latest revocation request, from the revocation page (`None` before the
/// first, or where there is no such page).
pub fn latest_request() -> Option<Request> {
    let mut page = [0; SIZE];
    if !arch::copy_kernel_pages(REVOCATION_PAGE_IPA, &mut page) {
        return None;
    }
    RequestReader::new(&page)
        .map(|reader| reader.request())
        .filter(|request| request.sequence != 0)
}

/// Takes revocation requests and repossession news as the kernel's `REVOCATION` and
/// `REPOSSESSION` signals (virtual interrupts, INTIDs from the info page) instead of
/// upcalls: binds a handler to each ([`irq::bind`]), which only notes the news. The work is
/// done at the next safe point: [`poll`], [`super::yield_now`] or [`irq::wait_until`]. So
/// the program must reach one before the revocation deadline, with IRQs unmasked
/// ([`irq::enable`]) or waiting in [`irq::wait_until`] so the handlers can run.
///
/// Needs [`irq::init`]. `Kernel(NotSupported)` if the info page has no interrupt facts (a
/// kernel before ABI 1.3, which has no signals). News from before the call is not lost:
/// the first safe point looks at both pages.
pub fn by_interrupt(info: &Info) -> Result<(), irq::Error> {
    let facts = info
        .interrupts()
        .ok_or(irq::Error::Kernel(Error::NotSupported))?;
    if !irq::is_initialised() {
        return Err(irq::Error::NotInitialised);
    }
    let revocation = u32::from(facts.revocation);
    irq::bind(revocation, on_revocation_signal)?;
    if let Err(error) = irq::bind(u32::from(facts.repossession), on_repossession_signal) {
        let _ = hypercall::irq_disable(revocation);
        irq::unregister(revocation);
        return Err(error);
    }
    irq::set_deferred_work(deferred_work);
    REVOKER.news.note(REQUEST | REPOSSESSIONS);
    Ok(())
}

/// [`poll`], as [`irq::wait_until`] calls it.
fn deferred_work() {
    poll();
}

/// The `REVOCATION` signal's handler: notes the news, nothing else.
fn on_revocation_signal(_intid: u32) {
    REVOKER
        .counters
        .revocation_signals
        .fetch_add(1, Ordering::Relaxed);
    REVOKER.news.note(REQUEST);
}

/// The `REPOSSESSION` signal's handler: notes the news, nothing else.
fn on_repossession_signal(_intid: u32) {
    REVOKER
        .counters
        .repossession_signals
        .fetch_add(1, Ordering::Relaxed);
    REVOKER.news.note(REPOSSESSIONS);
}

/// A safe point: answers the pending revocation request and applies repossessions, if the
/// signals brought news of them (or an upcall found a lock held). Call it from the program's
/// main loop, where frames may go (the policy unbinds the ones it chooses); not from an
/// interrupt handler. Cheap when there is no news. Returns whether there was any.
pub fn poll() -> bool {
    REVOKER.settle(&mut Machine)
}

/// Whether news waits for [`poll`].
pub fn pending() -> bool {
    REVOKER.news.pending()
}

/// The `REVOCATION` upcall: answers at once.
pub(crate) fn on_revocation_upcall() {
    REVOKER.news.note(REQUEST);
    REVOKER.settle(&mut Machine);
}

/// The `REPOSSESSION` upcall: applies the new entries at once.
pub(crate) fn on_repossession_upcall() {
    REVOKER.news.note(REPOSSESSIONS);
    REVOKER.settle(&mut Machine);
}

/// What one [`RepossessionReader::poll`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Poll {
    /// Entries passed to the callback.
    pub new: u64,
    /// Entries overwritten in the ring before they could be read.
    pub lost: u64,
}

/// Follows the repossession vector: remembers how many entries it has seen and hands out
/// only the new ones. Each reader has its own position.
#[derive(Clone, Copy, Debug, Default)]
pub struct RepossessionReader {
    seen: u64,
}

impl RepossessionReader {
    /// A reader that will see every entry still in the vector.
    pub const fn from_start() -> Self {
        Self { seen: 0 }
    }

    /// A reader that will see only entries appended from now on.
    pub fn from_now() -> Self {
        Self { seen: total() }
    }

    /// Entries seen so far (the vector total at the last poll).
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Calls `each` for every entry appended since the last poll.
    pub fn poll(&mut self, each: impl FnMut(Repossession)) -> Poll {
        let mut vector = [0; VECTOR_SIZE];
        if !arch::copy_kernel_pages(REPOSSESSION_VECTOR_IPA, &mut vector) {
            return Poll::default();
        }
        self.poll_copy(&vector, each)
    }

    /// [`RepossessionReader::poll`] over a copy of the vector.
    fn poll_copy(&mut self, vector: &[u8], mut each: impl FnMut(Repossession)) -> Poll {
        let Some(vector) = VectorReader::new(vector) else {
            return Poll::default();
        };
        let mut poll = Poll::default();
        let total = vector.total();
        for index in self.seen..total {
            match vector.entry(index) {
                Some(entry) => {
                    poll.new += 1;
                    each(entry);
                }
                None => poll.lost += 1,
            }
        }
        self.seen = self.seen.max(total);
        poll
    }
}

/// Entries ever appended to the repossession vector.
fn total() -> u64 {
    let mut page = [0; VECTOR_SIZE];
    if !arch::copy_kernel_pages(REPOSSESSION_VECTOR_IPA, &mut page) {
        return 0;
    }
    VectorReader::new(&page).map_or(0, |vector| vector.total())
}

/// Counter stamps of the requests the library OS answered, for benchmarks: the guest reads
/// them after its timed section ([`timeline`], [`last_timeline`]) and prints them.
mod timeline {
    use spin::Mutex;

    /// What happened to one revocation request, in counter ticks (the kernel's `issued_at`
    /// and the library OS's stamps read the same counter: `CNTVOFF_EL2` is 0). A request
    /// answered in several passes keeps its first `entered`, its last other stamps, and the
    /// sum of the frames released.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Timeline {
        /// The request's sequence number.
        pub sequence: u64,
        /// When the kernel issued it (from the revocation page).
        pub issued_at: u64,
        /// Its deadline (from the revocation page).
        pub deadline: u64,
        /// When the library OS's handler began to answer it.
        pub entered: u64,
        /// When the policy had chosen.
        pub chosen: u64,
        /// When the chosen frames were unbound and freed.
        pub released: u64,
        /// When the acknowledgement returned; 0 if nothing was released (no acknowledgement).
        pub acknowledged: u64,
        /// Frames owed when the handler read the page.
        pub owed: u64,
        /// Frames released.
        pub frames: u64,
        /// Frames the library OS held when the policy chose.
        pub held: u64,
    }

    impl Timeline {
        /// No request: every stamp zero (for arrays of timelines).
        pub const EMPTY: Timeline = Timeline {
            sequence: 0,
            issued_at: 0,
            deadline: 0,
            entered: 0,
            chosen: 0,
            released: 0,
            acknowledged: 0,
            owed: 0,
            frames: 0,
            held: 0,
        };
    }

    /// Requests remembered (the latest ones, by sequence number).
    const KEPT: usize = 16;

    static KEPT_TIMELINES: Mutex<[Timeline; KEPT]> = Mutex::new([Timeline::EMPTY; KEPT]);

    /// Records `new` (dropped if a reader holds the lock: stamps never make the work wait).
    pub(super) fn record(new: Timeline) {
        if let Some(mut kept) = KEPT_TIMELINES.try_lock() {
            merge(&mut kept, new);
        }
    }

    /// Puts `new` in its slot of `kept`, or merges it with an earlier pass at the same request.
    fn merge(kept: &mut [Timeline; KEPT], new: Timeline) {
        let slot = &mut kept[(new.sequence % KEPT as u64) as usize];
        if slot.sequence == new.sequence {
            slot.chosen = new.chosen;
            slot.released = new.released;
            slot.acknowledged = new.acknowledged.max(slot.acknowledged);
            slot.frames += new.frames;
            slot.held = new.held;
        } else {
            *slot = new;
        }
    }

    /// The stamps of request `sequence`, if it is among the last 16 answered.
    pub fn timeline(sequence: u64) -> Option<Timeline> {
        let kept = KEPT_TIMELINES.lock();
        let found = kept[(sequence % KEPT as u64) as usize];
        (sequence != 0 && found.sequence == sequence).then_some(found)
    }

    /// The stamps of the last request answered.
    pub fn last_timeline() -> Option<Timeline> {
        let kept = KEPT_TIMELINES.lock();
        kept.iter()
            .filter(|t| t.sequence != 0)
            .max_by_key(|t| t.sequence)
            .copied()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn stamps(sequence: u64, entered: u64, frames: u64) -> Timeline {
            Timeline {
                sequence,
                entered,
                chosen: entered + 1,
                released: entered + 2,
                acknowledged: entered + 3,
                frames,
                ..Timeline::default()
            }
        }

        #[test]
        fn a_second_pass_keeps_the_first_entry_and_adds_the_frames() {
            let mut kept = [Timeline::default(); KEPT];
            merge(&mut kept, stamps(5, 100, 3));
            merge(&mut kept, stamps(5, 200, 2));
            let t = kept[5];
            assert_eq!(
                (t.entered, t.chosen, t.acknowledged, t.frames),
                (100, 201, 203, 5)
            );
        }

        #[test]
        fn a_newer_request_replaces_the_one_sixteen_before() {
            let mut kept = [Timeline::default(); KEPT];
            merge(&mut kept, stamps(3, 100, 3));
            merge(&mut kept, stamps(3 + KEPT as u64, 500, 1));
            assert_eq!(kept[3], stamps(3 + KEPT as u64, 500, 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::policy::RefusePolicy;
    use exo_abi::PAGE_SIZE;
    use exo_abi::revocation::{push_repossession, vector_header, write_request};
    use std::cell::Cell;

    type SmallTable = FrameTable<64, 128>;

    fn frame(n: u64) -> PhysAddr {
        PhysAddr::new(0x4000_0000 + n * PAGE_SIZE)
    }

    fn ipa(n: u64) -> Ipa {
        Ipa::new(0x40_0000_0000 + n * PAGE_SIZE)
    }

    /// A table of `count` frames, every one bound (frame `n` at `ipa(n)`), leaked so a
    /// [`Revoker`] can borrow it for as long as it likes.
    fn table(count: u64) -> &'static Mutex<SmallTable> {
        let table = Box::leak(Box::new(Mutex::new(SmallTable::new())));
        for n in 0..count {
            let mut table = table.lock();
            table.insert(frame(n)).unwrap();
            table
                .set_bound(frame(n), ipa(n), exo_abi::BindAttributes::READ_WRITE)
                .unwrap();
        }
        table
    }

    /// A kernel with one revocation page and repossession vector that keeps the books the
    /// way the real one does: a free counts toward the request, and the request is met when
    /// nothing is owed. Records every call; `during_free` runs inside each `EXO_FRAME_FREE`,
    /// standing in for an interrupt or upcall that arrives meanwhile.
    struct Fake<'a> {
        request: Request,
        vector: Box<[u8; VECTOR_SIZE]>,
        bound: Vec<(Ipa, PhysAddr)>,
        freed: Vec<PhysAddr>,
        acks: u64,
        releases: u64,
        loss_order: Option<Ipa>,
        during_free: Option<&'a dyn Fn(&mut Request)>,
    }

    impl<'a> Fake<'a> {
        /// Frames `0..count` bound at `ipa(n)`, no request yet.
        fn new(count: u64) -> Self {
            let mut vector = Box::new([0; VECTOR_SIZE]);
            vector[..32].copy_from_slice(&vector_header());
            Self {
                request: Request {
                    sequence: 0,
                    state: RequestState::Idle,
                    frames_requested: 0,
                    frames_owed: 0,
                    deadline: 0,
                    issued_at: 0,
                },
                vector,
                bound: (0..count).map(|n| (ipa(n), frame(n))).collect(),
                freed: Vec::new(),
                acks: 0,
                releases: 0,
                loss_order: None,
                during_free: None,
            }
        }

        /// Issues (or adds to) a request for `frames`.
        fn ask(&mut self, frames: u64) {
            if self.request.state != RequestState::Pending {
                self.request.sequence += 1;
                self.request.frames_requested = 0;
                self.request.state = RequestState::Pending;
            }
            self.request.frames_requested += frames;
            self.request.frames_owed += frames;
        }

        /// The abort protocol: takes frame `n` and reports it.
        fn repossess(&mut self, n: u64) {
            self.bound.retain(|&(_, phys)| phys != frame(n));
            let entry = Repossession {
                phys: frame(n),
                ipa: Some(ipa(n)),
                reason: Reason::Aborted,
                sequence: self.request.sequence as u32,
            };
            push_repossession(&mut self.vector, &entry);
        }
    }

    impl Kernel for Fake<'_> {
        fn revocation_page(&mut self, page: &mut [u8]) -> bool {
            let mut whole = [0; SIZE];
            write_request(&mut whole, &self.request, &[]);
            let len = page.len();
            page.copy_from_slice(&whole[..len]);
            true
        }

        fn repossession_vector(&mut self, vector: &mut [u8; VECTOR_SIZE]) -> bool {
            vector.copy_from_slice(&self.vector[..]);
            true
        }

        fn unbind(&mut self, ipa: Ipa) -> Result<PhysAddr, Error> {
            let at = self.bound.iter().position(|&(bound, _)| bound == ipa);
            at.map(|at| self.bound.remove(at).1)
                .ok_or(Error::BadAddress)
        }

        fn frame_free(&mut self, phys: PhysAddr) -> Result<(), Error> {
            if self.freed.contains(&phys) {
                return Err(Error::NotOwner);
            }
            self.freed.push(phys);
            if let Some(during_free) = self.during_free {
                during_free(&mut self.request);
            }
            if self.request.state == RequestState::Pending {
                self.request.frames_owed -= 1;
                if self.request.frames_owed == 0 {
                    self.request.state = RequestState::Met;
                }
            }
            Ok(())
        }

        fn frame_release(&mut self, frames: &mut [u64]) -> Result<u64, Error> {
            self.releases += 1;
            for &phys in frames.iter() {
                let phys = PhysAddr::new(phys);
                if self.freed.contains(&phys) {
                    return Err(Error::NotOwner);
                }
            }
            for &phys in frames.iter() {
                let phys = PhysAddr::new(phys);
                self.bound.retain(|&(_, bound)| bound != phys);
                self.freed.push(phys);
                if let Some(during_free) = self.during_free {
                    during_free(&mut self.request);
                }
                if self.request.state == RequestState::Pending {
                    self.request.frames_owed -= 1;
                    if self.request.frames_owed == 0 {
                        self.request.state = RequestState::Met;
                    }
                }
            }
            Ok(if self.request.state == RequestState::Pending {
                self.request.frames_owed
            } else {
                0
            })
        }

        fn set_loss_order(&mut self, page: Ipa) -> Result<(), Error> {
            self.loss_order = Some(page);
            Ok(())
        }

        fn revoke_ack(&mut self) -> Result<u64, Error> {
            self.acks += 1;
            Ok(if self.request.state == RequestState::Pending {
                self.request.frames_owed
            } else {
                0
            })
        }
    }

    #[test]
    fn news_is_acted_on_once_and_left_when_work_cannot_proceed() {
        let news = News::new();
        let passes = Cell::new(0);
        assert!(!news.settle(|_| unreachable!("no news, no work")));
        news.note(REQUEST);
        news.note(REQUEST);
        assert!(news.settle(|bits| {
            assert_eq!(bits, REQUEST, "two notes of the same news are one pass");
            passes.set(passes.get() + 1);
            0
        }));
        assert_eq!(passes.get(), 1);
        assert!(!news.pending());

        news.note(REQUEST | REPOSSESSIONS);
        assert!(
            news.settle(|_| REQUEST),
            "the work could not answer: a lock was held"
        );
        assert!(news.pending(), "what it could not do stays noted");
        news.settle(|bits| {
            assert_eq!(bits, REQUEST, "only what was left");
            0
        });
        assert!(!news.pending());
    }

    #[test]
    fn news_noted_during_the_work_is_done_before_settle_returns() {
        let news = News::new();
        let seen = Cell::new(Vec::new());
        news.note(REQUEST);
        news.settle(|bits| {
            let mut passes = seen.take();
            passes.push(bits);
            if passes.len() == 1 {
                // An interrupt handler notes more news, and a nested caller (an upcall
                // during one of the work's hypercalls) finds the work busy and leaves it.
                news.note(REPOSSESSIONS);
                assert!(!news.settle(|_| unreachable!("nested work")));
            }
            seen.set(passes);
            0
        });
        assert_eq!(seen.take(), [REQUEST, REPOSSESSIONS]);
        assert!(!news.pending());
    }

    #[test]
    fn a_signal_is_answered_at_the_safe_point_and_only_once() {
        let revoker = Revoker::new(table(10));
        let mut kernel = Fake::new(10);
        kernel.ask(3);
        // The handler runs: the news is noted, nothing is released yet.
        revoker.news.note(REQUEST);
        assert!(kernel.freed.is_empty());
        assert!(revoker.settle(&mut kernel));
        assert_eq!(kernel.freed.len(), 3);
        assert_eq!(revoker.table.lock().len(), 7);
        assert_eq!(kernel.request.state, RequestState::Met);
        // The same request signalled again (or a poll with stale news) releases nothing more.
        revoker.news.note(REQUEST);
        revoker.settle(&mut kernel);
        revoker.settle(&mut kernel);
        assert_eq!(kernel.freed.len(), 3);
        assert_eq!(
            (kernel.releases, kernel.acks),
            (1, 0),
            "one EXO_FRAME_RELEASE, which acknowledged"
        );
        let stats = revoker.counters.snapshot();
        assert_eq!((stats.requests, stats.met, stats.released), (1, 1, 3));
        assert_eq!(stats.last_sequence, 1);
    }

    #[test]
    fn the_loss_order_is_published_at_the_first_answer_and_when_frames_stay_owed() {
        let revoker = Revoker::new(table(10));
        {
            let mut table = revoker.table.lock();
            table.pin(frame(0)).unwrap();
            table.set_unbound(frame(7)).unwrap();
        }
        let mut kernel = Fake::new(10);
        kernel.ask(2);
        revoker.news.note(REQUEST);
        revoker.settle(&mut kernel);
        let registered = kernel.loss_order.expect("registered at the first answer");
        assert!(registered.is_page_aligned());
        let listed = |revoker: &Revoker<'_, 64, 128>| {
            let page = revoker.loss_order.lock();
            page.0[1..=page.0[0] as usize].to_vec()
        };
        // Frame 7 (unbound) and frame 1 went back; the rest, least recently bound first,
        // without the pinned frame 0.
        let expected: Vec<u64> = (2..7).chain(8..10).map(|n| frame(n).raw()).collect();
        assert_eq!(listed(&revoker), expected);
        // A request met changes nothing; one left owed (a refusing policy) refreshes it.
        kernel.ask(1);
        revoker.news.note(REQUEST);
        revoker.settle(&mut kernel);
        assert_eq!(listed(&revoker), expected, "not refreshed when met");
        static REFUSE: Mutex<RefusePolicy> = Mutex::new(RefusePolicy);
        *revoker.policy.lock() = Installed::Custom(&REFUSE);
        kernel.ask(1);
        revoker.news.note(REQUEST);
        revoker.settle(&mut kernel);
        assert_eq!(listed(&revoker), expected[1..], "refreshed while owed");
    }

    #[test]
    fn a_locked_table_defers_the_answer_without_losing_it() {
        let revoker = Revoker::new(table(10));
        let mut kernel = Fake::new(10);
        kernel.ask(2);
        revoker.news.note(REQUEST);
        {
            // The interrupted code holds the table: the work must not wait for it.
            let _held = revoker.table.lock();
            assert!(revoker.settle(&mut kernel));
            assert!(kernel.freed.is_empty());
            assert!(revoker.news.pending());
        }
        assert!(revoker.settle(&mut kernel));
        assert_eq!(kernel.freed.len(), 2);
        assert!(!revoker.news.pending());
        let stats = revoker.counters.snapshot();
        assert_eq!((stats.requests, stats.met), (1, 1), "counted once");

        // So does a custom policy the program holds.
        static REFUSE: Mutex<RefusePolicy> = Mutex::new(RefusePolicy);
        *revoker.policy.lock() = Installed::Custom(&REFUSE);
        kernel.ask(1);
        revoker.news.note(REQUEST);
        let held = REFUSE.lock();
        revoker.settle(&mut kernel);
        assert!(revoker.news.pending());
        drop(held);
        revoker.settle(&mut kernel);
        assert!(!revoker.news.pending());
        assert_eq!(kernel.freed.len(), 2, "the refusing policy gave nothing");
        assert_eq!(revoker.counters.snapshot().requests, 2);
    }

    #[test]
    fn a_request_grown_during_the_answer_is_answered_in_full() {
        let revoker = Revoker::new(table(10));
        let grown = Cell::new(false);
        let news = &revoker.news;
        let grow = |request: &mut Request| {
            if !grown.replace(true) {
                // The kernel asks for two more while the first free is in flight, and
                // signals it.
                request.frames_requested += 2;
                request.frames_owed += 2;
                news.note(REQUEST);
            }
        };
        let mut kernel = Fake::new(10);
        kernel.during_free = Some(&grow);
        kernel.ask(3);
        revoker.news.note(REQUEST);
        revoker.settle(&mut kernel);
        assert_eq!(
            kernel.freed.len(),
            5,
            "three asked, two more asked meanwhile"
        );
        assert_eq!(kernel.request.state, RequestState::Met);
        let stats = revoker.counters.snapshot();
        assert_eq!((stats.requests, stats.met, stats.released), (1, 1, 5));
        assert!(!revoker.news.pending());
    }

    #[test]
    fn repossessions_are_applied_once_each() {
        let revoker = Revoker::new(table(10));
        let mut kernel = Fake::new(10);
        kernel.ask(2);
        kernel.repossess(8);
        kernel.repossess(9);
        kernel.request.state = RequestState::Aborted;
        revoker.news.note(REQUEST);
        revoker.news.note(REPOSSESSIONS);
        revoker.settle(&mut kernel);
        assert!(
            kernel.freed.is_empty(),
            "an aborted request is not answered"
        );
        let table = revoker.table.lock();
        assert_eq!(table.len(), 8);
        assert!(table.get(frame(8)).is_none() && table.get(frame(9)).is_none());
        drop(table);
        revoker.news.note(REPOSSESSIONS);
        revoker.settle(&mut kernel);
        kernel.repossess(0);
        revoker.news.note(REPOSSESSIONS);
        revoker.settle(&mut kernel);
        assert_eq!(revoker.table.lock().len(), 7);
        let stats = revoker.counters.snapshot();
        assert_eq!((stats.requests, stats.met, stats.repossessed), (1, 0, 3));
    }

    fn info(interrupts: bool) -> Info {
        use exo_abi::Name;
        use exo_abi::info::{GicInterface, InfoHeader, InfoWriter, InterruptInfo, SIZE};
        let page: &'static mut [u8; SIZE] = Box::leak(Box::new([0; SIZE]));
        let header = InfoHeader {
            abi_version: exo_abi::ABI_VERSION,
            partition_id: 0,
            name: Name::new("irqborrower").unwrap(),
            timer_frequency: 62_500_000,
            guaranteed_frames: 256,
            borrow_limit_frames: 1024,
            partition_count: 2,
        };
        let mut writer = InfoWriter::new(page, &header);
        if interrupts {
            let facts = InterruptInfo {
                gic: GicInterface::V3,
                revocation: 8,
                repossession: 9,
                message: 10,
                virtual_timer: 27,
            };
            writer.set_interrupts(&facts, [].into_iter());
        }
        Info::from_page(page).unwrap()
    }

    #[test]
    fn signals_need_interrupt_facts_and_a_cpu_interface() {
        assert_eq!(
            by_interrupt(&info(false)),
            Err(irq::Error::Kernel(Error::NotSupported))
        );
        // The host has no CPU interface to initialise.
        assert_eq!(by_interrupt(&info(true)), Err(irq::Error::NotInitialised));
    }

    #[test]
    fn the_global_instance_has_no_pages_on_the_host() {
        static REFUSE: Mutex<RefusePolicy> = Mutex::new(RefusePolicy);
        set_revocation_policy(&REFUSE);
        // No kernel pages on the host: the upcalls and a poll find nothing to do.
        on_revocation_upcall();
        on_repossession_upcall();
        assert!(!poll());
        assert!(!pending());
        assert_eq!(stats(), RevocationStats::default());
        assert_eq!(latest_request(), None);
        assert_eq!(
            RepossessionReader::from_start().poll(|_| {}),
            Poll::default()
        );
        *REVOKER.policy.lock() = Installed::Default(DefaultPolicy);
    }
}
