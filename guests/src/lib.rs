//! Guest programs for exo partitions. Each binary in `src/bin` is one program, named by the
//! `program` key of a partition in a system configuration (`configs/*.toml`,
//! `tests/configs/*.toml`):
//!
//! - `hello`: greets, prints its identity and memory bindings and the SMCCC/PSCI versions,
//!   yields once and exits 0.
//! - `counter`: counts to five, yielding between counts; checks that an unknown exo call is
//!   refused; ends with PSCI `SYSTEM_OFF`.
//! - `panicker`: panics (exit status 101).
//! - `victim`: writes a pattern into its own memory, waits for the faulter, checks it is intact.
//! - `faulter`: aims every memory call at every RAM frame it does not hold (each refusal
//!   checked), then reads an IPA outside its bindings and expects to be stopped.
//! - `stale`: touches pages right after `EXO_UNBIND` and after an abort took them, with no
//!   world switch between; checks fresh frames are zero (on poisoned RAM).
//! - `borrower`, `partial`, `hoarder`, `claimant`: visible revocation and the abort protocol
//!   (borrowers grow until refused; a claimant then claims its guarantee).
//! - `irqborrower`: a borrower that takes revocation and repossession news as the kernel's
//!   signals (virtual interrupts) and gives frames back from its main loop; `...-late`
//!   misses the deadline and catches up on the repossessions afterwards.
//! - `sharer`, `reader`: granting a frame read-only and withdrawing the grant.
//! - `pager`: demand paging from a fault handler.
//! - `hostile`, `keeper`: random hypercalls and accesses (each must fault) against a
//!   bystander's data, then `EXO_BIND` on every frame the bystander holds, bound or not.
//! - `ping`, `pong`: protected control transfer; `ping` calls `pong` ten thousand times and
//!   checks every reply word ([`ping_pong`]), and sends it one asynchronous message.
//! - `spinner`: computes for 300 ms without a hypercall (sharing its loop count with a
//!   `ticker` through a grant).
//! - `ticker`: takes 20 interrupts from its own 5 ms virtual timer while spinning, and
//!   watches the spinner's loop count advance between them.
//! - `flooder`: raises its 16 SPIs at once, more than the GIC has list registers, round
//!   after round, and checks each was handled exactly once.
//! - `irqowner`, `intruder`: SPI 50 reaches its owner only; every call on it from the
//!   intruder is `NotOwner`.
//! - `echo`: drives its own PL011 (`uart1`) by interrupts and echoes what it receives.
//! - `sleeper`: sleeps 20 times 5 ms on its virtual timer, giving the CPU away meanwhile.
//! - `listener`, `messenger`: messages taken as the `MESSAGE` signal, a virtual interrupt.
//!
//! The library holds what the memory programs share: growing until refused and checking
//! the patterns written into frames.

#![no_std]
#![forbid(unsafe_code)]

use exo_libos::abi::BindAttributes;
use exo_libos::mem::{self, Frame};
use exo_libos::{Error, Ipa, PhysAddr, probe};

/// Word offsets (in `u64`s) of each frame that carry the pattern.
const PATTERN_WORDS: [u64; 4] = [0, 1, 256, 511];

/// The pattern word at `word` of the frame `phys` bound at `ipa`: depends on all three, so a
/// frame that moved, was swapped or was zeroed does not pass.
pub fn pattern(phys: PhysAddr, ipa: Ipa, word: u64) -> u64 {
    phys.raw() ^ ipa.raw().rotate_left(17) ^ word.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xA5A5
}

/// Writes the pattern into the frame `phys` bound at `ipa`.
pub fn write_pattern(phys: PhysAddr, ipa: Ipa) {
    for word in PATTERN_WORDS {
        let _ = probe::write_u64(ipa.add(word * 8), pattern(phys, ipa, word));
    }
}

/// A frame whose pattern is wrong.
#[derive(Clone, Copy, Debug)]
pub struct Corrupt {
    /// Where it is bound.
    pub ipa: Ipa,
    /// What was read.
    pub found: u64,
    /// What should be there.
    pub expected: u64,
}

/// Checks the pattern of every bound frame in the library OS's table except pinned (heap)
/// ones; returns how many frames were checked.
pub fn verify_patterns() -> Result<u64, Corrupt> {
    let mut checked = 0;
    let mut corrupt = None;
    mem::for_each_frame(|frame: &Frame| {
        let Some(ipa) = frame.ipa() else { return };
        if frame.is_pinned() || corrupt.is_some() {
            return;
        }
        for word in PATTERN_WORDS {
            let expected = pattern(frame.phys(), ipa, word);
            let found = probe::read_u64(ipa.add(word * 8)).unwrap_or(!expected);
            if found != expected {
                corrupt = Some(Corrupt {
                    ipa: ipa.add(word * 8),
                    found,
                    expected,
                });
                return;
            }
        }
        checked += 1;
    });
    corrupt.map_or(Ok(checked), Err)
}

/// Allocates frames until the kernel refuses (`QuotaExhausted` or `OutOfMemory`), halving
/// the batch on each refusal down to one frame; maps each read-write in the frame window
/// and writes its pattern. Calls `each` for every frame. Returns the number of frames and
/// the final refusal; any other error is returned as is.
pub fn grow_until_refused(mut each: impl FnMut(PhysAddr, Ipa)) -> Result<(u64, Error), Error> {
    let mut batch = [PhysAddr::new(0); 512];
    let mut size = batch.len();
    let mut grown = 0;
    loop {
        match mem::alloc(&mut batch[..size]) {
            Ok(count) => {
                for &phys in &batch[..count] {
                    // With time slices a revocation request can arrive while the batch is
                    // being mapped, and the policy gives unbound frames back first: skip
                    // any the library OS already released.
                    if mem::frame(phys).is_none() {
                        continue;
                    }
                    // A partition that ignores requests can also lose an unbound frame to
                    // the abort protocol inside the bind call itself (deadlines are checked
                    // on every hypercall); the repossession vector reports it.
                    let ipa = match mem::map(phys, BindAttributes::READ_WRITE) {
                        Ok(ipa) => ipa,
                        Err(Error::OtherPartition | Error::NotOwner) => continue,
                        Err(other) => return Err(other),
                    };
                    write_pattern(phys, ipa);
                    each(phys, ipa);
                    grown += 1;
                }
            }
            Err(refusal @ (Error::QuotaExhausted | Error::OutOfMemory)) => {
                if size == 1 {
                    return Ok((grown, refusal));
                }
                size /= 2;
            }
            Err(other) => return Err(other),
        }
    }
}

/// Why an interrupt program failed: lets `main` use `?` on the library OS's errors. The
/// library OS prints it as `error: <Debug>` and exits 1.
#[derive(Debug)]
pub enum Failure {
    /// A hypercall was refused.
    Kernel(Error),
    /// Interrupts could not be set up or waited for.
    Irq(exo_libos::irq::Error),
    /// The timer could not be used.
    Timer(exo_libos::timer::Error),
    /// A device region could not be claimed.
    Device(exo_libos::device::Error),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Kernel(error)
    }
}

impl From<exo_libos::irq::Error> for Failure {
    fn from(error: exo_libos::irq::Error) -> Self {
        Failure::Irq(error)
    }
}

impl From<exo_libos::timer::Error> for Failure {
    fn from(error: exo_libos::timer::Error) -> Self {
        Failure::Timer(error)
    }
}

impl From<exo_libos::device::Error> for Failure {
    fn from(error: exo_libos::device::Error) -> Self {
        Failure::Device(error)
    }
}

/// `true` if `result` is `Err(expected)`; otherwise prints what `what` gave instead.
pub fn refused_with<T: core::fmt::Debug>(
    what: core::fmt::Arguments<'_>,
    result: Result<T, Error>,
    expected: Error,
) -> bool {
    match result {
        Err(error) if error == expected => true,
        other => {
            exo_libos::println!("{what}: expected {expected:?}, got {other:?}");
            false
        }
    }
}

/// How a borrower waits for and answers revocation requests (see [`serve_revocations`]).
pub struct Serving {
    /// How long to wait for the first request, in milliseconds.
    pub first_request_ms: u64,
    /// Yields without a new request, after one was met, before it is done.
    pub quiet_yields: u64,
}

/// Runs `step` (which must yield the CPU and reach a point where the library OS answers
/// revocation requests) until at least one request was met and no new one came for
/// [`Serving::quiet_yields`] steps, checking every kept frame's pattern after each new
/// request. Returns the number of intact frames kept, or `None` after printing why it
/// failed: no request within [`Serving::first_request_ms`], or a corrupted frame.
pub fn serve_revocations<E: From<Error>>(
    serving: Serving,
    mut step: impl FnMut() -> Result<(), E>,
) -> Result<Option<u64>, E> {
    let deadline = exo_libos::time::Deadline::after_millis(serving.first_request_ms);
    let mut seen = 0;
    let mut quiet = 0;
    loop {
        step()?;
        let stats = mem::revocation::stats();
        if stats.requests != seen {
            seen = stats.requests;
            quiet = 0;
            if let Err(corrupt) = verify_patterns() {
                exo_libos::println!("frame CORRUPTED after a revocation: {corrupt:?}");
                return Ok(None);
            }
        } else {
            quiet += 1;
        }
        if stats.met > 0 && quiet >= serving.quiet_yields {
            break;
        }
        if stats.requests == 0 && deadline.passed() {
            exo_libos::println!("no revocation request arrived");
            return Ok(None);
        }
    }
    match verify_patterns() {
        Ok(kept) => Ok(Some(kept)),
        Err(corrupt) => {
            exo_libos::println!("frame CORRUPTED: {corrupt:?}");
            Ok(None)
        }
    }
}

/// What `ping` sends and `pong` answers, so both sides agree on every word.
pub mod ping_pong {
    use exo_libos::ipc::{WORDS, Words};

    /// The word `ping` sends `pong` with `EXO_SEND` before its first call.
    pub const MESSAGE: u64 = 0x005E_ED0F_BEEF;

    /// The arguments of call number `n`: distinct for every call and every word.
    pub fn arguments(n: u64) -> Words {
        core::array::from_fn(|i| {
            n.wrapping_add(1)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .rotate_left(9 * i as u32)
                ^ (i as u64) << 56
        })
    }

    /// `pong`'s answer to `args`, the `count`-th call it serves (from 1): each of the first six
    /// words times three, exclusive-or its index; the last word is the count.
    pub fn reply(args: &Words, count: u64) -> Words {
        core::array::from_fn(|i| match i {
            _ if i == WORDS - 1 => count,
            _ => args[i].wrapping_mul(3) ^ i as u64,
        })
    }
}

/// Shared by `leaker` and `checker`.
pub mod registers {
    /// What `leaker` puts in every register: unlikely to appear by chance.
    pub const PATTERN: u64 = 0x5EC2_E75A_FE1E_A4ED;

    /// A fingerprint the compiler cannot invert back into [`PATTERN`], so the checker can
    /// recognise the pattern without ever holding it in a register itself.
    pub const fn fingerprint(word: u64) -> u64 {
        (word ^ (word >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (word >> 61)
    }

    /// Whether `word` is [`PATTERN`], by fingerprint.
    pub fn is_pattern(word: u64) -> bool {
        const EXPECTED: u64 = fingerprint(PATTERN);
        fingerprint(word) == EXPECTED
    }
}

/// One owned SPI watched: its arrivals counted, and any interrupt that is not ours counted
/// and named on the console (`irqowner`, `neighbour`).
pub mod spi_watch {
    use core::sync::atomic::{AtomicU64, Ordering};
    use exo_libos::{irq, println};

    static RECEIVED: AtomicU64 = AtomicU64::new(0);
    static STRAY: AtomicU64 = AtomicU64::new(0);

    fn on_spi(_intid: u32) {
        RECEIVED.fetch_add(1, Ordering::Relaxed);
    }

    fn on_stray(intid: u32) {
        println!("interrupt {intid} arrived, which is not ours");
        STRAY.fetch_add(1, Ordering::Relaxed);
    }

    /// Binds `spi` to the arrival count and every other interrupt to the stray count.
    pub fn watch(spi: u32) -> Result<(), irq::Error> {
        irq::set_fallback(Some(on_stray));
        irq::bind(spi, on_spi)
    }

    /// Arrivals of the watched SPI so far.
    pub fn received() -> u64 {
        RECEIVED.load(Ordering::Relaxed)
    }

    /// Interrupts so far that were not the watched SPI.
    pub fn stray() -> u64 {
        STRAY.load(Ordering::Relaxed)
    }
}
