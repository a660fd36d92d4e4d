//! Visible revocation, the library OS side: answering the kernel's revocation requests with
//! the installed [`RevocationPolicy`], and following the repossession vector.
//!
//! Both are written by the kernel while the partition is not running; the library OS copies
//! them (volatile loads) before reading, so no Rust reference ever covers memory that changes
//! under it. The repossession vector is [`VECTOR_SIZE`] bytes: copies of it go on the stack
//! (the upcall stack has room).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use exo_abi::PhysAddr;
use exo_abi::info::{REPOSSESSION_VECTOR_IPA, REVOCATION_PAGE_IPA};
use exo_abi::revocation::{
    MAX_NAMED, Reason, Repossession, Request, RequestReader, RequestState, SIZE, VECTOR_SIZE,
    VectorReader,
};
use spin::Mutex;

use super::call;
use super::policy::{DefaultPolicy, RevocationPolicy, RevocationRequest, Selection};
use crate::arch;

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
}

static STATS: Mutex<RevocationStats> = Mutex::new(RevocationStats {
    requests: 0,
    met: 0,
    released: 0,
    repossessed: 0,
    last_sequence: 0,
});

/// Which policy answers requests.
enum Installed {
    Default(DefaultPolicy),
    Custom(&'static Mutex<dyn RevocationPolicy + Send>),
}

static POLICY: Mutex<Installed> = Mutex::new(Installed::Default(DefaultPolicy));
/// The handler's scratch selection (too large for the upcall stack).
static SELECTION: Mutex<Selection> = Mutex::new(Selection::new());
/// Repossession entries the library OS has applied to its frame table.
static APPLIED: AtomicU64 = AtomicU64::new(0);
/// Work an upcall could not do because the frame table was locked.
static DEFERRED: AtomicBool = AtomicBool::new(false);

/// Installs `policy` for every later revocation request:
///
/// ```ignore
/// static POLICY: Mutex<Half> = Mutex::new(Half);
/// exo_libos::mem::set_revocation_policy(&POLICY);
/// ```
pub fn set_revocation_policy(policy: &'static Mutex<dyn RevocationPolicy + Send>) {
    *POLICY.lock() = Installed::Custom(policy);
}

/// What has happened so far.
pub fn stats() -> RevocationStats {
    *STATS.lock()
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

/// Answers the pending revocation request, if any: the policy chooses, the chosen frames are
/// unbound and freed, and the kernel is told (`EXO_REVOKE_ACK`) unless nothing was released.
/// Runs in the `REVOCATION` upcall, and again from [`service`] when it had to be put off.
pub(crate) fn answer_request() {
    let mut page = [0; SIZE];
    if !arch::copy_kernel_pages(REVOCATION_PAGE_IPA, &mut page) {
        return;
    }
    let Some(reader) = RequestReader::new(&page) else {
        return;
    };
    let request = reader.request();
    {
        let mut stats = STATS.lock();
        if request.sequence != stats.last_sequence && request.sequence != 0 {
            stats.requests += 1;
            stats.last_sequence = request.sequence;
        }
    }
    if request.state != RequestState::Pending || request.frames_owed == 0 {
        return;
    }
    let mut named = [PhysAddr::new(0); MAX_NAMED];
    let mut count = 0;
    for (slot, frame) in named.iter_mut().zip(reader.named()) {
        *slot = frame;
        count += 1;
    }
    let Ok(mut table) = super::table() else {
        DEFERRED.store(true, Ordering::Relaxed);
        return;
    };
    let Some(mut choice) = SELECTION.try_lock() else {
        DEFERRED.store(true, Ordering::Relaxed);
        return;
    };
    choice.clear();
    let view = RevocationRequest {
        sequence: request.sequence,
        requested: request.frames_requested,
        owed: request.frames_owed,
        deadline: request.deadline,
        named: &named[..count],
    };
    match &mut *POLICY.lock() {
        Installed::Default(policy) => policy.choose(&view, table.frames(), &mut choice),
        Installed::Custom(policy) => policy.lock().choose(&view, table.frames(), &mut choice),
    }
    // The kernel is called with the table locked: this is an upcall, nothing else runs.
    let released = release_chosen(&mut table, &choice);
    drop(choice);
    drop(table);
    let mut stats = STATS.lock();
    stats.released += released;
    if released > 0 && call::revoke_ack() == Ok(0) {
        stats.met += 1;
    }
}

/// Unbinds and frees the chosen, revocable frames, highest slot first; returns how many
/// went back to the kernel.
fn release_chosen(table: &mut super::Table, choice: &Selection) -> u64 {
    let mut released = 0;
    for slot in choice.iter_descending() {
        let Some(&frame) = table.frames().get(slot) else {
            continue;
        };
        if !frame.is_revocable() {
            continue;
        }
        if let Some(ipa) = frame.ipa() {
            if call::unbind(ipa).is_err() {
                continue;
            }
            let _ = table.set_unbound(frame.phys());
        }
        if call::frame_free(frame.phys()).is_ok() {
            table.remove(frame.phys());
            released += 1;
        }
    }
    released
}

/// Applies new repossession vector entries to the frame table: frames the kernel took are
/// no longer held. Runs in the `REPOSSESSION` upcall and from [`service`].
pub(crate) fn apply_repossessions() {
    let Ok(mut table) = super::table() else {
        DEFERRED.store(true, Ordering::Relaxed);
        return;
    };
    let mut reader = RepossessionReader {
        seen: APPLIED.load(Ordering::Relaxed),
    };
    let mut heap_lost = false;
    let poll = reader.poll(|entry| {
        if entry.reason == Reason::Aborted
            && let Some(frame) = table.remove(entry.phys)
        {
            heap_lost |= frame.is_pinned();
        }
    });
    drop(table);
    APPLIED.store(reader.seen, Ordering::Relaxed);
    STATS.lock().repossessed += poll.new + poll.lost;
    if heap_lost {
        crate::println!("libos: the kernel repossessed heap frames; the heap is damaged");
    }
}

/// Does revocation work an upcall had to put off. Called by [`super::yield_now`].
pub fn service() {
    if DEFERRED.swap(false, Ordering::Relaxed) {
        apply_repossessions();
        answer_request();
    }
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
    pub fn poll(&mut self, mut each: impl FnMut(Repossession)) -> Poll {
        let mut page = [0; VECTOR_SIZE];
        if !arch::copy_kernel_pages(REPOSSESSION_VECTOR_IPA, &mut page) {
            return Poll::default();
        }
        let Some(vector) = VectorReader::new(&page) else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::policy::RefusePolicy;

    #[test]
    fn a_custom_policy_coerces_and_installs() {
        static REFUSE: Mutex<RefusePolicy> = Mutex::new(RefusePolicy);
        set_revocation_policy(&REFUSE);
        // No kernel pages on the host: nothing to answer, nothing applied.
        answer_request();
        apply_repossessions();
        assert_eq!(stats(), RevocationStats::default());
        assert_eq!(latest_request(), None);
        assert_eq!(
            RepossessionReader::from_start().poll(|_| {}),
            Poll::default()
        );
        *POLICY.lock() = Installed::Default(DefaultPolicy);
    }
}
