//! Memory the library OS manages itself: frames allocated from the kernel, bound where the
//! program wants them, given back when the kernel asks.
//!
//! - [`call`]: one safe wrapper per memory hypercall.
//! - The frame functions here ([`alloc`], [`bind`], [`unbind`], [`free`], [`map`], ...) call
//!   the kernel *and* keep the library OS's frame table ([`table`]) in step: which frames it
//!   holds, where each is bound, when it was bound.
//! - [`policy`] and [`revocation`]: visible revocation. When the kernel asks for frames back
//!   (upcall `REVOCATION`), a [`RevocationPolicy`] picks them, the library OS unbinds and frees
//!   them and acknowledges; when the kernel took frames itself (the abort protocol) or a grant
//!   was withdrawn (upcall `REPOSSESSION`), the table forgets them and a
//!   [`RepossessionReader`] lets the program see what went. A program may take both as
//!   interrupts instead ([`revocation::by_interrupt`]); the work then waits for a safe point
//!   ([`revocation::poll`], [`yield_now`], [`crate::irq::wait_until`]).
//! - [`heap`]: a global allocator over frames in the heap window.
//!
//! Frames the program maps with [`map`] go in the frame window from [`FRAME_WINDOW_START`],
//! above the heap window, so the kernel's abort protocol (which takes bound frames from the
//! highest IPA down) reaches them before the heap.
//!
//! Upcalls arrive only when the kernel is entered (a hypercall or a fault), so the frame
//! table is never locked across a hypercall: an upcall always finds it free. Interrupts can
//! arrive while it is locked, which is why their revocation work is deferred.

pub mod call;
pub mod heap;
pub mod policy;
pub mod revocation;
pub mod table;

use core::sync::atomic::{AtomicU64, Ordering};

use exo_abi::{BindAttributes, Error, Ipa, PAGE_SIZE, PhysAddr};
use spin::{Mutex, MutexGuard};

pub use call::{Grant, MemInfo, PartitionId};
pub use policy::{
    DefaultPolicy, HalfPolicy, RefusePolicy, RevocationPolicy, RevocationRequest, Selection,
};
pub use revocation::{RepossessionReader, RevocationStats, set_revocation_policy};
pub use table::Frame;

/// Most frames the library OS can keep track of (128 MiB worth).
pub const TABLE_CAPACITY: usize = 32768;
/// Size of the frame table's index.
const TABLE_INDEX: usize = 65536;

/// The frame table type.
pub type Table = table::FrameTable<TABLE_CAPACITY, TABLE_INDEX>;

/// First IPA of the frame window, where [`map`] binds frames.
pub const FRAME_WINDOW_START: Ipa = Ipa::new(0x40_0000_0000);
/// End (exclusive) of the frame window (the top of the 39-bit IPA space).
pub const FRAME_WINDOW_END: Ipa = Ipa::new(0x80_0000_0000);

/// The frames this partition holds beyond its boot memory.
static TABLE: Mutex<Table> = Mutex::new(Table::new());
/// Next IPA [`map`] hands out.
static NEXT_FRAME_IPA: AtomicU64 = AtomicU64::new(FRAME_WINDOW_START.raw());

/// Locks the frame table. In an upcall the lock may be held by the interrupted code (it
/// never is across a hypercall, but a buggy program could fault while holding it): then
/// `Busy`, never a deadlock.
fn table() -> Result<MutexGuard<'static, Table>, Error> {
    if crate::upcall::in_upcall() {
        TABLE.try_lock().ok_or(Error::Busy)
    } else {
        Ok(TABLE.lock())
    }
}

/// Allocates `out.len()` frames (1..=512), zeroed and unbound, records them and writes
/// their addresses to `out`. May block while borrowers give frames back. `QuotaExhausted`
/// if the kernel refuses for the partition's limits or the frame table is full.
pub fn alloc(out: &mut [PhysAddr]) -> Result<usize, Error> {
    {
        let table = table()?;
        if table.len() + out.len() > table.capacity() {
            return Err(Error::QuotaExhausted);
        }
    }
    let count = call::frame_alloc(out)?;
    let mut table = table()?;
    for &phys in &out[..count] {
        // Cannot fail: capacity was checked and only this partition adds frames.
        let _ = table.insert(phys);
    }
    Ok(count)
}

/// Allocates one frame.
pub fn alloc_one() -> Result<PhysAddr, Error> {
    let mut frame = [PhysAddr::new(0)];
    alloc(&mut frame)?;
    Ok(frame[0])
}

/// Allocates the named frame, if free.
pub fn alloc_at(phys: PhysAddr) -> Result<PhysAddr, Error> {
    if table()?.len() == TABLE_CAPACITY {
        return Err(Error::QuotaExhausted);
    }
    let phys = call::frame_alloc_at(phys)?;
    let _ = table()?.insert(phys);
    Ok(phys)
}

/// Binds a held frame at `ipa` with `attributes` and records it.
pub fn bind(phys: PhysAddr, ipa: Ipa, attributes: BindAttributes) -> Result<(), Error> {
    {
        let mut table = table()?;
        let frame = table.get(phys).ok_or(Error::NotOwner)?;
        if frame.is_busy() || frame.ipa().is_some() {
            return Err(Error::Busy);
        }
        table.set_busy(phys, true)?;
    }
    let result = call::bind(phys, ipa, attributes);
    let mut table = table()?;
    match result {
        Ok(()) => table.set_bound(phys, ipa, attributes),
        Err(error) => {
            let _ = table.set_busy(phys, false);
            Err(error)
        }
    }
}

/// Binds a held frame at the next free page of the frame window; returns the IPA.
pub fn map(phys: PhysAddr, attributes: BindAttributes) -> Result<Ipa, Error> {
    let ipa = Ipa::new(NEXT_FRAME_IPA.fetch_add(PAGE_SIZE, Ordering::Relaxed));
    if ipa >= FRAME_WINDOW_END {
        return Err(Error::IpaOutOfRange);
    }
    bind(phys, ipa, attributes)?;
    Ok(ipa)
}

/// Allocates one frame and maps it in the frame window.
pub fn alloc_mapped(attributes: BindAttributes) -> Result<(PhysAddr, Ipa), Error> {
    let phys = alloc_one()?;
    match map(phys, attributes) {
        Ok(ipa) => Ok((phys, ipa)),
        Err(error) => {
            let _ = free(phys);
            Err(error)
        }
    }
}

/// Removes the binding at `ipa` (of a held or granted frame); returns the frame.
pub fn unbind(ipa: Ipa) -> Result<PhysAddr, Error> {
    let phys = call::unbind(ipa)?;
    let mut table = table()?;
    if table.get(phys).is_some() {
        let _ = table.set_unbound(phys);
    }
    Ok(phys)
}

/// Gives an unbound held frame back to the kernel.
pub fn free(phys: PhysAddr) -> Result<(), Error> {
    {
        let mut table = table()?;
        let frame = table.get(phys).ok_or(Error::NotOwner)?;
        if frame.is_busy() || frame.ipa().is_some() {
            return Err(Error::Busy);
        }
        table.set_busy(phys, true)?;
    }
    let result = call::frame_free(phys);
    let mut table = table()?;
    match result {
        Ok(()) => {
            table.remove(phys);
            Ok(())
        }
        Err(error) => {
            let _ = table.set_busy(phys, false);
            Err(error)
        }
    }
}

/// Unbinds a held frame if it is bound, then frees it.
pub fn release(phys: PhysAddr) -> Result<(), Error> {
    let ipa = table()?.get(phys).ok_or(Error::NotOwner)?.ipa();
    if let Some(ipa) = ipa {
        unbind(ipa)?;
    }
    free(phys)
}

/// Pins a held frame so no revocation policy releases it.
pub(crate) fn pin(phys: PhysAddr) {
    if let Ok(mut table) = table() {
        let _ = table.pin(phys);
    }
}

/// How many frames the library OS holds beyond boot memory.
pub fn held() -> usize {
    table().map_or(0, |t| t.len())
}

/// What the table records about `phys`, if it is held.
pub fn frame(phys: PhysAddr) -> Option<Frame> {
    table().ok()?.get(phys).copied()
}

/// Calls `each` for every held frame (in no particular order) with the table locked: `each`
/// must not call into [`crate::mem`].
pub fn for_each_frame(mut each: impl FnMut(&Frame)) {
    if let Ok(table) = table() {
        table.frames().iter().for_each(&mut each);
    }
}

/// Yields the CPU ([`crate::hypercall::yield_now`]): a safe point, where revocation work
/// that signals noted or an upcall had to put off is done ([`revocation::poll`]) before and
/// after. Programs that hold borrowed frames should wait with this.
pub fn yield_now() -> Result<u64, Error> {
    revocation::poll();
    let result = crate::hypercall::yield_now();
    revocation::poll();
    result
}
