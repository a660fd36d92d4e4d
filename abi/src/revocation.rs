//! The two pages through which the kernel asks for memory back and reports what it took:
//! the **revocation page** and the **repossession vector**. Both are written only by the
//! kernel and bound read-only in the partition (IPAs in [`crate::info`]).
//!
//! Revocation page (little-endian):
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0 | 8 | magic `"EXOREVK\0"` |
//! | 8 | 8 | sequence number of the latest request (0: none ever) |
//! | 16 | 4 | [`RequestState`] |
//! | 20 | 4 | number of named frames (0: any frames will do) |
//! | 24 | 8 | frames requested |
//! | 32 | 8 | frames still owed |
//! | 40 | 8 | deadline, in system counter ticks (`CNTPCT_EL0`) |
//! | 48 | 8 | when the request was issued, in ticks |
//! | 56 | 8 | reserved |
//! | 64 | 8 × n | named frames' physical addresses |
//!
//! Repossession vector: a ring of [`VECTOR_PAGES`] pages the kernel appends to.
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0 | 8 | magic `"EXOREPO\0"` |
//! | 8 | 8 | total entries ever appended; entry `i` is in slot `i % capacity` |
//! | 16 | 4 | capacity |
//! | 20 | 12 | reserved |
//! | 32 + 32 × slot | 32 | entry: physical address (8), IPA it was bound at or `u64::MAX` (8), [`Reason`] (4), request sequence (4), reserved (8) |
//!
//! Entries are 32 bytes so none straddles a page boundary.
//!
//! Loss-order page ([`LossOrder`]): a page of the partition's own RAM it registers with
//! `EXO_SET_LOSS_ORDER`, written only by the library OS and read by the kernel only when
//! it aborts a request, to take frames in the order the library OS would rather lose them.
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0 | 8 | number of frames listed (more than [`LOSS_ORDER_MAX`] reads as that many) |
//! | 8 + 8 × i | 8 | frame `i`'s physical address, first to lose first |

use crate::bytes::{put_u32, put_u64, u32_at, u64_at};
use crate::{Ipa, PhysAddr};

/// Size of the revocation page.
pub const SIZE: usize = 4096;
/// Pages in the repossession vector.
pub const VECTOR_PAGES: usize = 4;
/// Size of the repossession vector in bytes.
pub const VECTOR_SIZE: usize = VECTOR_PAGES * 4096;
/// Magic of the revocation page.
pub const REVOCATION_MAGIC: u64 = u64::from_le_bytes(*b"EXOREVK\0");
/// Magic of the repossession vector.
pub const REPOSSESSION_MAGIC: u64 = u64::from_le_bytes(*b"EXOREPO\0");
const NAMED: usize = 64;
/// Bytes of the revocation page before the named frames: all a reader needs when none is
/// named.
pub const HEADER: usize = NAMED;
/// Most frames a request can name.
pub const MAX_NAMED: usize = (SIZE - NAMED) / 8;
const ENTRIES: usize = 32;
/// Size of one repossession entry.
pub const ENTRY_SIZE: usize = 32;
/// Entries the repossession vector holds before it wraps.
pub const CAPACITY: usize = (VECTOR_SIZE - ENTRIES) / ENTRY_SIZE;

/// Byte offset of slot `slot` in the vector.
pub const fn entry_offset(slot: usize) -> usize {
    ENTRIES + slot * ENTRY_SIZE
}

/// Byte offset of the total counter in the vector.
pub const TOTAL_OFFSET: usize = 8;

/// Byte offsets of the revocation page's fields, for a writer that updates only what
/// changed: the sequence number, the state (a `u32`, then the named count), frames
/// requested, frames owed, the deadline and the issue time.
pub mod field {
    /// Sequence number.
    pub const SEQUENCE: usize = 8;
    /// [`super::RequestState`] (`u32`), then the number of named frames (`u32`).
    pub const STATE: usize = 16;
    /// Frames requested.
    pub const REQUESTED: usize = 24;
    /// Frames still owed.
    pub const OWED: usize = 32;
    /// Deadline.
    pub const DEADLINE: usize = 40;
    /// Issue time.
    pub const ISSUED_AT: usize = 48;
}

/// Most frames a loss-order page lists.
pub const LOSS_ORDER_MAX: usize = SIZE / 8 - 1;

/// The loss-order page's layout: a count, then frame addresses.
pub struct LossOrder;

impl LossOrder {
    /// Byte offset of the count.
    pub const COUNT: usize = 0;

    /// Byte offset of entry `i`.
    pub const fn entry(i: usize) -> usize {
        8 + i * 8
    }

    /// Writes `frames` (at most [`LOSS_ORDER_MAX`]; the rest are dropped) into `page`.
    /// Returns how many were written.
    pub fn write(page: &mut [u8; SIZE], frames: impl IntoIterator<Item = PhysAddr>) -> usize {
        let mut count = 0;
        for frame in frames.into_iter().take(LOSS_ORDER_MAX) {
            put_u64(page, Self::entry(count), frame.raw());
            count += 1;
        }
        put_u64(page, Self::COUNT, count as u64);
        count
    }

    /// The number of entries a page claims, capped at [`LOSS_ORDER_MAX`].
    pub fn count(raw: u64) -> usize {
        usize::try_from(raw).map_or(LOSS_ORDER_MAX, |n| n.min(LOSS_ORDER_MAX))
    }
}

/// Where a revocation request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum RequestState {
    /// No request has been made.
    Idle = 0,
    /// Frames are owed; the deadline has not passed.
    Pending = 1,
    /// The library OS gave back what was asked.
    Met = 2,
    /// The deadline passed and the kernel took the frames (see the repossession vector).
    Aborted = 3,
}

impl RequestState {
    fn from_raw(raw: u32) -> Self {
        match raw {
            1 => Self::Pending,
            2 => Self::Met,
            3 => Self::Aborted,
            _ => Self::Idle,
        }
    }
}

/// A revocation request as the kernel publishes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// Increments with every new request.
    pub sequence: u64,
    /// Where it stands.
    pub state: RequestState,
    /// How many frames were asked for.
    pub frames_requested: u64,
    /// How many are still owed.
    pub frames_owed: u64,
    /// Deadline in counter ticks.
    pub deadline: u64,
    /// Issue time in counter ticks.
    pub issued_at: u64,
}

/// Writes the revocation page (kernel side). `named` lists specific frames asked for
/// (at most [`MAX_NAMED`]; extra names are dropped), or is empty for "any frames".
pub fn write_request(page: &mut [u8; SIZE], request: &Request, named: &[PhysAddr]) {
    page.fill(0);
    put_u64(page, 0, REVOCATION_MAGIC);
    put_u64(page, 8, request.sequence);
    put_u32(page, 16, request.state as u32);
    let named = &named[..named.len().min(MAX_NAMED)];
    put_u32(page, 20, named.len() as u32);
    put_u64(page, 24, request.frames_requested);
    put_u64(page, 32, request.frames_owed);
    put_u64(page, 40, request.deadline);
    put_u64(page, 48, request.issued_at);
    for (i, frame) in named.iter().enumerate() {
        put_u64(page, NAMED + i * 8, frame.raw());
    }
}

/// Reads a revocation page (library OS side).
#[derive(Clone, Copy)]
pub struct RequestReader<'a> {
    page: &'a [u8],
}

impl<'a> RequestReader<'a> {
    /// Checks the magic number. `page` may be the [`HEADER`] alone: then no frame is
    /// named, whatever the count says.
    pub fn new(page: &'a [u8]) -> Option<Self> {
        (page.len() >= HEADER && u64_at(page, 0) == Some(REVOCATION_MAGIC)).then_some(Self { page })
    }

    /// The request.
    pub fn request(&self) -> Request {
        let p = self.page;
        Request {
            sequence: u64_at(p, 8).unwrap_or(0),
            state: RequestState::from_raw(u32_at(p, 16).unwrap_or(0)),
            frames_requested: u64_at(p, 24).unwrap_or(0),
            frames_owed: u64_at(p, 32).unwrap_or(0),
            deadline: u64_at(p, 40).unwrap_or(0),
            issued_at: u64_at(p, 48).unwrap_or(0),
        }
    }

    /// How many frames the request names.
    pub fn named_count(&self) -> usize {
        (u32_at(self.page, 20).unwrap_or(0) as usize).min(MAX_NAMED)
    }

    /// How many named frames this copy of the page holds.
    fn named_here(&self) -> usize {
        self.named_count()
            .min((self.page.len().saturating_sub(NAMED)) / 8)
    }

    /// Frames the request names (empty: any will do).
    pub fn named(&self) -> impl Iterator<Item = PhysAddr> + 'a {
        let p = self.page;
        let count = self.named_here();
        (0..count).map(move |i| PhysAddr::new(u64_at(p, NAMED + i * 8).unwrap_or(0)))
    }
}

/// Why a frame appears in the repossession vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Reason {
    /// Taken by the abort protocol: a revocation deadline passed.
    Aborted = 1,
    /// Its owner withdrew the grant that let this partition bind it.
    GrantRevoked = 2,
    /// Its owner lost or freed the frame, which ends every grant of it.
    OwnerLost = 3,
}

/// One repossession.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repossession {
    /// The frame's physical address.
    pub phys: PhysAddr,
    /// Where it was bound in the partition, if it was.
    pub ipa: Option<Ipa>,
    /// Why it was taken.
    pub reason: Reason,
    /// Sequence number of the revocation request (0 for grants).
    pub sequence: u32,
}

/// The header of an empty repossession vector (the rest of the vector is zero).
pub fn vector_header() -> [u8; ENTRIES] {
    let mut header = [0; ENTRIES];
    put_u64(&mut header, 0, REPOSSESSION_MAGIC);
    put_u32(&mut header, 16, CAPACITY as u32);
    header
}

/// Encodes one entry.
pub fn encode_entry(entry: &Repossession) -> [u8; ENTRY_SIZE] {
    let mut bytes = [0; ENTRY_SIZE];
    put_u64(&mut bytes, 0, entry.phys.raw());
    put_u64(&mut bytes, 8, entry.ipa.map_or(u64::MAX, Ipa::raw));
    put_u32(&mut bytes, 16, entry.reason as u32);
    put_u32(&mut bytes, 20, entry.sequence);
    bytes
}

/// Appends an entry to a vector held in one buffer; returns the new total. (The kernel
/// writes the same bytes page by page: see [`entry_offset`], [`encode_entry`].)
pub fn push_repossession(vector: &mut [u8; VECTOR_SIZE], entry: &Repossession) -> u64 {
    let total = u64_at(vector, TOTAL_OFFSET).unwrap_or(0);
    let at = entry_offset(total as usize % CAPACITY);
    vector[at..at + ENTRY_SIZE].copy_from_slice(&encode_entry(entry));
    put_u64(vector, TOTAL_OFFSET, total + 1);
    total + 1
}

/// Reads a repossession vector (library OS side).
#[derive(Clone, Copy)]
pub struct VectorReader<'a> {
    page: &'a [u8],
}

impl<'a> VectorReader<'a> {
    /// Checks the magic number. `vector` is all [`VECTOR_SIZE`] bytes.
    pub fn new(vector: &'a [u8]) -> Option<Self> {
        (vector.len() >= VECTOR_SIZE && u64_at(vector, 0) == Some(REPOSSESSION_MAGIC))
            .then_some(Self { page: vector })
    }

    /// Entries ever appended.
    pub fn total(&self) -> u64 {
        u64_at(self.page, 8).unwrap_or(0)
    }

    /// Entry number `index` (0-based, counting from the first ever appended), if it is still
    /// in the ring.
    pub fn entry(&self, index: u64) -> Option<Repossession> {
        let total = self.total();
        if index >= total || total - index > CAPACITY as u64 {
            return None;
        }
        let at = entry_offset(index as usize % CAPACITY);
        let p = self.page;
        let ipa = u64_at(p, at + 8)?;
        Some(Repossession {
            phys: PhysAddr::new(u64_at(p, at)?),
            ipa: (ipa != u64::MAX).then_some(Ipa::new(ipa)),
            reason: match u32_at(p, at + 16)? {
                2 => Reason::GrantRevoked,
                3 => Reason::OwnerLost,
                _ => Reason::Aborted,
            },
            sequence: u32_at(p, at + 20)?,
        })
    }

    /// Entries from `since` (an earlier [`VectorReader::total`]) to now that are still held.
    pub fn since(&self, since: u64) -> impl Iterator<Item = Repossession> + '_ {
        (since..self.total()).filter_map(|i| self.entry(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_with_named_frames() {
        let mut page = [0xEE; SIZE];
        let request = Request {
            sequence: 7,
            state: RequestState::Pending,
            frames_requested: 3,
            frames_owed: 2,
            deadline: 1000,
            issued_at: 10,
        };
        write_request(&mut page, &request, &[PhysAddr::new(0x4000_1000)]);
        let reader = RequestReader::new(&page).unwrap();
        assert_eq!(reader.request(), request);
        assert_eq!(
            reader.named().collect::<Vec<_>>(),
            vec![PhysAddr::new(0x4000_1000)]
        );
    }

    #[test]
    fn vector_wraps_and_forgets_only_what_was_overwritten() {
        let mut page = [0; VECTOR_SIZE];
        page[..32].copy_from_slice(&vector_header());
        for i in 0..(CAPACITY as u64 + 5) {
            let entry = Repossession {
                phys: PhysAddr::new(i * 4096),
                ipa: if i % 2 == 0 {
                    Some(Ipa::new(0x8000_0000 + i * 4096))
                } else {
                    None
                },
                reason: Reason::Aborted,
                sequence: i as u32,
            };
            assert_eq!(push_repossession(&mut page, &entry), i + 1);
        }
        let reader = VectorReader::new(&page).unwrap();
        assert_eq!(reader.total(), CAPACITY as u64 + 5);
        assert!(reader.entry(4).is_none(), "overwritten");
        let last = CAPACITY as u64 + 4;
        let entry = reader.entry(last).unwrap();
        assert_eq!(entry.phys, PhysAddr::new(last * 4096));
        let expected_ipa = last
            .is_multiple_of(2)
            .then(|| Ipa::new(0x8000_0000 + last * 4096));
        assert_eq!(entry.ipa, expected_ipa);
        assert_eq!(reader.entry(5).unwrap().ipa, None);
        assert_eq!(
            reader.entry(6).unwrap().ipa,
            Some(Ipa::new(0x8000_0000 + 6 * 4096))
        );
        assert_eq!(reader.since(CAPACITY as u64).count(), 5);
    }
}
