//! The kernel against the ABI's description of its calls: every call, driven on the fake
//! machine by partitions passing hostile and odd arguments of the kinds the description
//! names, must return only the errors `exo_abi::call::CALLS` declares for it; and every
//! declared error must be seen at least once (but for the few listed as out of reach). So
//! the declared sets, and the documentation rendered from them, cannot drift from the code.

use super::*;
use exo_abi::call::{ArgKind, CALLS, Call};

/// SPIs partition 0 owns.
const SPIS_0: [u32; 2] = [40, 41];
/// The SPI partition 1 owns.
const SPI_1: u32 = 42;
/// Partition 0's device page (physical address and IPA).
const DEVICE: u64 = 0x0900_0000;
/// Frames of fake RAM.
const FRAMES: usize = 200;
/// Independent systems driven, and hypercalls per system at most.
const WORLDS: u64 = 300;
const STEPS: usize = 400;

/// Declared errors this test cannot provoke, and why. Anything else declared must be seen.
/// (`EXO_SELF_CHECK`'s `Denied` is seen from the partitions not granted the capability; the
/// kernel's own invariants are checked directly after every call.)
const OUT_OF_REACH: &[(Call, Error, &str)] = &[];

/// A small deterministic generator (xorshift64*), so a failure replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One of `items`, chosen by `roll`.
fn pick<T: Copy>(items: &[T], roll: u64) -> T {
    items[(roll % items.len() as u64) as usize]
}

/// Three partitions: 0 owns two SPIs and a device page and talks to 1 and 2; 1 owns an SPI
/// and talks to 0; 2 talks to nobody. Guarantees and borrow limits leave room to borrow,
/// exhaust quotas and run out of memory.
fn system(frames: usize) -> K {
    let config = |name, guarantee, borrow, talks_to| Config {
        deadline_us: 100,
        max_aborts: 2,
        talks_to,
        ..Config::new(name, guarantee, borrow)
    };
    let zero = Config {
        interrupts: &SPIS_0,
        devices: &[(DEVICE, DEVICE, 1)],
        self_check: true,
        ..config("zero", 60, 80, 0b110)
    };
    let one = Config {
        interrupts: &[SPI_1],
        ..config("one", 20, 100, 0b001)
    };
    build(frames, &[zero, one, config("two", 20, 4, 0)])
}

/// A physical address of the kind an argument asks for: held, bound, granted, free,
/// another's, the kernel's, not RAM, unaligned, or anything.
fn frame(k: &K, rng: &mut Rng, p: usize) -> u64 {
    let mine: Vec<PhysAddr> = k.frames.owned_by(owner_of(k, p)).collect();
    let unbound: Vec<PhysAddr> = mine
        .iter()
        .copied()
        .filter(|&f| k.bound.get(f).is_none())
        .collect();
    let granted: Vec<PhysAddr> = k
        .grants
        .iter()
        .filter(|(_, g)| g.grantee.index() == p)
        .map(|(_, g)| g.frame)
        .collect();
    let any = RAM_BASE + rng.below(FRAMES as u64) * PAGE_SIZE;
    let choose = |rng: &mut Rng, from: &[PhysAddr]| {
        if from.is_empty() {
            any
        } else {
            pick(from, rng.next()).raw()
        }
    };
    match rng.below(10) {
        0..=2 => choose(rng, &unbound),
        3 => choose(rng, &mine),
        4 => choose(rng, &granted),
        5 => k
            .frames
            .owned_by(Owner::Free)
            .next()
            .map_or(any, PhysAddr::raw),
        6 => any,
        7 => pick(
            &[RAM_BASE, RAM_BASE + FRAMES as u64 * PAGE_SIZE, 0, DEVICE],
            rng.next(),
        ),
        8 => choose(rng, &mine) + 1 + rng.below(4095),
        _ => rng.next(),
    }
}

/// An IPA: free heap pages, bound pages, the kernel window, the device page, the edge of
/// the IPA space, unaligned, sparse (to use up table frames), or anything.
fn ipa(k: &mut K, rng: &mut Rng, p: usize) -> u64 {
    match rng.below(11) {
        0..=2 => HEAP + rng.below(32) * PAGE_SIZE,
        3 | 4 => {
            let bound: Vec<u64> = mappings(k, p).iter().map(|m| m.ipa.raw()).collect();
            if bound.is_empty() {
                HEAP
            } else {
                pick(&bound, rng.next())
            }
        }
        5 => KERNEL_WINDOW_START.raw() + rng.below(16) * PAGE_SIZE,
        6 => DEVICE,
        7 => pick(&[(1 << 39) - PAGE_SIZE, 1 << 39, !0xFFF, 0], rng.next()),
        8 => HEAP + 1 + rng.below(4095),
        9 => rng.below(1 << 18) << 21,
        _ => rng.next(),
    }
}

/// A buffer IPA: writable boot RAM, the edge of RAM, kernel pages (read-only), unbound,
/// wrapping, or anything.
fn buffer(rng: &mut Rng) -> u64 {
    let ram_end = DEFAULT_RAM_BASE.raw() + BOOT_PAGES * PAGE_SIZE;
    pick(
        &[
            BUFFER,
            BUFFER,
            BUFFER2,
            ram_end - 8,
            ram_end - 100,
            info::INFO_PAGE_IPA.raw(),
            info::REVOCATION_PAGE_IPA.raw(),
            HEAP,
            u64::MAX - 3,
            rng.next(),
        ],
        rng.next(),
    )
}

/// An INTID: owned SPIs, another's SPI, the signals, the virtual timer, the kernel's own
/// PPIs, SGIs, the edge of the INTID space, or anything.
fn intid(rng: &mut Rng) -> u64 {
    pick(
        &[
            40,
            41,
            u64::from(SPI_1),
            43,
            8,
            9,
            10,
            27,
            26,
            25,
            0,
            1019,
            1020,
            u64::MAX,
            rng.below(2048),
        ],
        rng.next(),
    )
}

/// A value for an argument of `kind`, from partition `p`'s point of view.
fn argument(k: &mut K, rng: &mut Rng, p: usize, kind: ArgKind) -> u64 {
    let room = {
        let terms = k.partition(pid(p)).unwrap().terms;
        (terms.guaranteed + terms.borrow_limit).saturating_sub(held(k, p) as u64)
    };
    match kind {
        ArgKind::FunctionId => {
            let known = pick(Call::ALL, rng.next()).id();
            pick(
                &[u64::from(known), rng.next(), u64::from(known) | 1 << 32],
                rng.next(),
            )
        }
        ArgKind::Status => pick(&[0, 1, rng.next()], rng.next()),
        ArgKind::Buffer => buffer(rng),
        ArgKind::Length => pick(
            &[0, 1, 3, 32, 33, 4096, 4097, u64::MAX, rng.below(64)],
            rng.next(),
        ),
        ArgKind::Count => pick(
            &[
                0,
                1,
                1 + rng.below(8),
                1 + rng.below(room.max(1)),
                512,
                513,
                u64::MAX,
                64 + rng.below(449),
            ],
            rng.next(),
        ),
        ArgKind::Frame => frame(k, rng, p),
        ArgKind::Ipa => ipa(k, rng, p),
        ArgKind::Attributes => pick(&[1, 3, 3, 5, 7, 15, 9, 0, 16, 2, rng.next()], rng.next()),
        ArgKind::Rights => pick(&[1, 3, 3, 0, 2, 4, 7, rng.next()], rng.next()),
        ArgKind::Partition => pick(&[0, 1, 2, 0, 1, 2, p as u64, 3, 64, u64::MAX], rng.next()),
        ArgKind::Index => pick(&[0, 0, 1, 2, 255, 256, u64::MAX], rng.next()),
        ArgKind::Entry => pick(
            &[
                0,
                HEAP,
                DEFAULT_RAM_BASE.raw() + 0x100,
                HEAP + 2,
                1 << 39,
                rng.next(),
            ],
            rng.next(),
        ),
        ArgKind::UpcallFlags => pick(&[0, 1, 1, 2, rng.next()], rng.next()),
        ArgKind::Flag => rng.below(2),
        ArgKind::Word => rng.next(),
        ArgKind::Intid => intid(rng),
        ArgKind::Priority => pick(&[0, 0x80, 255, 256, rng.next()], rng.next()),
        ArgKind::Core => pick(&[0, 0, 1, rng.next()], rng.next()),
    }
}

/// A call for partition `p`: every call is drawn alike, but those that end the caller
/// only rarely, so systems live long enough to reach deep states.
fn choose_call(rng: &mut Rng) -> Call {
    loop {
        let call = pick(Call::ALL, rng.next());
        let ends = matches!(call, Call::Exit | Call::PsciSystemOff | Call::PsciCpuOff);
        if !ends || rng.below(40) == 0 {
            return call;
        }
    }
}

/// Arguments in x1..x7 for `call`, of the kinds its description names.
fn arguments(k: &mut K, rng: &mut Rng, p: usize, call: Call) -> [u64; 7] {
    let mut args = [0; 7];
    for arg in call.describe().args {
        for register in arg.registers.first..=arg.registers.last.min(7) {
            args[usize::from(register) - 1] = argument(k, rng, p, arg.kind);
        }
    }
    args
}

/// What a driven system saw: every (call, error) returned.
#[derive(Default)]
struct Seen {
    errors: BTreeSet<(Call, i64)>,
    calls: u64,
}

impl Seen {
    /// Records `x0` of `call`; fails if it is an error the call does not declare.
    fn result(&mut self, call: Call, x0: u64, args: &[u64; 7], world: u64) {
        self.calls += 1;
        if let Err(error) = Error::from_register(x0) {
            assert!(
                call.may_return(error),
                "{} returned {error:?}, which exo_abi::call::CALLS does not declare for it \
                 (world {world}, args {args:#x?}): declare it (docs/abi.md is generated from \
                 the declaration) or fix the kernel",
                call.name(),
            );
            self.errors.insert((call, error.code()));
        }
    }
}

/// Drives one system until nobody can run or the steps run out.
fn drive(world: u64, seen: &mut Seen) {
    let mut k = system(FRAMES);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (world + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    // A call that did not return at once (it blocked, or passed the CPU on), per partition:
    // its result is read when the partition runs again.
    let mut pending: [Option<Call>; 3] = [None; 3];
    for _ in 0..STEPS {
        if rng.below(16) == 0 {
            // Time passes: revocation deadlines expire.
            let now = k.platform.now.get();
            k.platform.now.set(now + rng.below(400));
        }
        let wanted = rng.below(3) as usize;
        let Some(p) = (0..3)
            .map(|i| (wanted + i) % 3)
            .find(|&p| state(&k, p) == State::Runnable)
        else {
            return;
        };
        if let Some(call) = pending[p].take() {
            let x0 = k.regs_mut(pid(p)).unwrap().x[0];
            seen.result(call, x0, &[0; 7], world);
        }
        let call = choose_call(&mut rng);
        let args = arguments(&mut k, &mut rng, p, call);
        // A successful EXO_UPCALL_RETURN restores the interrupted context's x0, which is
        // no result of its own.
        let restores = call == Call::UpcallReturn
            && k.partition(pid(p))
                .is_some_and(|q| q.upcalls.saved.is_some());
        let ([x0, ..], step) = super::call(&mut k, p, call.id(), &args);
        let returned =
            step == Step::Resume && k.current() == pid(p) && state(&k, p) == State::Runnable;
        if restores {
            continue;
        }
        if returned {
            seen.result(call, x0, &args, world);
        } else {
            pending[p] = Some(call);
        }
        if let Err(e) = k.self_check() {
            panic!("self-check after {} in world {world}: {e}", call.name());
        }
        if rng.below(4) == 0 {
            k.before_resume();
        }
    }
}

/// Calls `call` as partition `p` and records what it returned, for the directed scenarios.
fn directed(k: &mut K, seen: &mut Seen, p: usize, call: Call, args: &[u64]) -> Result<u64, Error> {
    let mut full = [0; 7];
    full[..args.len()].copy_from_slice(args);
    let ([x0, ..], _) = super::call(k, p, call.id(), args);
    seen.result(call, x0, &full, u64::MAX);
    Error::from_register(x0)
}

/// Allocates `count` frames for `p`; returns them.
fn take_frames(k: &mut K, seen: &mut Seen, p: usize, count: u64) -> Vec<PhysAddr> {
    assert_eq!(
        directed(k, seen, p, Call::FrameAlloc, &[count, BUFFER]),
        Ok(count)
    );
    read_words(k, p, BUFFER, count as usize)
        .into_iter()
        .map(PhysAddr::new)
        .collect()
}

/// States random calls seldom reach: full grant and table pools, rights beyond a grant, a
/// quota reached, every free frame promised to a blocked claimant.
fn directed_scenarios(seen: &mut Seen) {
    let read = exo_abi::Rights::READ.to_register();
    let rw = exo_abi::BindAttributes::READ_WRITE.bits();
    // Grants: twice to the same partition, beyond the granted rights, until the table is full.
    let mut k = system(600);
    let frames = take_frames(&mut k, seen, 0, 120);
    assert_eq!(
        directed(&mut k, seen, 0, Call::Grant, &[frames[0].raw(), 1, read]),
        Ok(0)
    );
    assert_eq!(
        directed(&mut k, seen, 0, Call::Grant, &[frames[0].raw(), 1, read]),
        Err(Error::Busy)
    );
    assert_eq!(
        directed(&mut k, seen, 1, Call::Bind, &[frames[0].raw(), HEAP, rw]),
        Err(Error::Denied)
    );
    let held: Vec<PhysAddr> = k.frames.owned_by(owner_of(&k, 0)).collect();
    let full = held
        .iter()
        .flat_map(|f| [(f, 1), (f, 2)])
        .skip(1)
        .any(|(f, to)| {
            directed(&mut k, seen, 0, Call::Grant, &[f.raw(), to, read]) == Err(Error::OutOfMemory)
        });
    assert!(full, "the grant table never filled");
    // Stage-2 tables: bind one frame per 1 GiB region until the pool is used up.
    let mut k = system(600);
    let frames = take_frames(&mut k, seen, 1, 100);
    let exhausted = frames.iter().zip(1u64..).any(|(f, gib)| {
        directed(&mut k, seen, 1, Call::Bind, &[f.raw(), gib << 30, rw]) == Err(Error::OutOfMemory)
    });
    assert!(exhausted, "the table pool never ran out");
    // A quota reached: partition two may hold 24 frames and holds 16 at boot.
    let mut k = system(FRAMES);
    take_frames(&mut k, seen, 2, 8);
    let named = some_free(&k).raw();
    assert_eq!(
        directed(&mut k, seen, 2, Call::FrameAllocAt, &[named]),
        Err(Error::QuotaExhausted)
    );
    // Batched release: each kind of bad entry, behind a good one.
    let mut k = system(600);
    let mine = take_frames(&mut k, seen, 0, 8);
    let theirs = take_frames(&mut k, seen, 1, 1);
    let buffer_frame = k.translate(pid(0), Ipa::new(BUFFER2)).unwrap().0;
    let info_frame = k.partition(pid(0)).unwrap().kernel_pages.info;
    assert_eq!(
        directed(&mut k, seen, 0, Call::Grant, &[mine[2].raw(), 1, read]),
        Ok(0)
    );
    for (bad, error) in [
        (mine[1].raw() + 8, Error::Unaligned),
        (mine[0].raw(), Error::KernelMemory),
        (info_frame.raw(), Error::KernelMemory),
        (theirs[0].raw(), Error::OtherPartition),
        (some_free(&k).raw(), Error::NotOwner),
        (mine[2].raw(), Error::Busy),
        (buffer_frame.raw(), Error::Busy),
    ] {
        super::write_words(&mut k, 0, BUFFER2, &[mine[0].raw(), bad]);
        assert_eq!(
            directed(&mut k, seen, 0, Call::FrameRelease, &[BUFFER2, 2]),
            Err(error)
        );
        assert_eq!(k.regs_mut(pid(0)).unwrap().x[1], 1, "the bad entry's index");
    }
    super::write_words(&mut k, 0, BUFFER2, &[mine[0].raw(), mine[1].raw()]);
    assert_eq!(
        directed(&mut k, seen, 0, Call::FrameRelease, &[BUFFER2, 2]),
        Ok(2)
    );
    // Every free frame promised: one borrows all it can, zero claims its guarantee and
    // blocks, and two asks for a free frame by name.
    let mut k = system(FRAMES);
    let mut borrowed = 0;
    while free(&k) > 0 && directed(&mut k, seen, 1, Call::FrameAlloc, &[1, BUFFER]) == Ok(1) {
        borrowed += 1;
    }
    assert!(borrowed > 10, "one borrowed only {borrowed} frames");
    let last = read_words(&mut k, 1, BUFFER, 1)[0];
    assert_eq!(directed(&mut k, seen, 1, Call::FrameFree, &[last]), Ok(0));
    super::call(&mut k, 0, Call::FrameAlloc.id(), &[10, BUFFER]);
    assert_eq!(state(&k, 0), State::Blocked);
    let named = some_free(&k).raw();
    assert_eq!(
        directed(&mut k, seen, 2, Call::FrameAllocAt, &[named]),
        Err(Error::OutOfMemory)
    );
    across_cores(seen);
}

/// A donation to a partition of another core. (A function of its own: a kernel is large,
/// and each one a function holds takes its own stack space.)
#[inline(never)]
fn across_cores(seen: &mut Seen) {
    let other = Config {
        core: 1,
        ..Config::new("other", 32, 0)
    };
    let mut k = build(256, &[Config::new("here", 32, 0), other]);
    assert_eq!(
        directed(&mut k, seen, 0, Call::Donate, &[1]),
        Err(Error::InvalidParameter)
    );
}

#[test]
fn every_call_returns_exactly_its_declared_errors() {
    // Each kernel (some 150 KiB, most of it the partition table and each core's time-slice
    // vector) held or moved by value takes stack space in an unoptimised build: more than a
    // test thread's default 2 MiB across these scenarios.
    std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(check_every_call)
        .expect("a test thread")
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
}

/// [`every_call_returns_exactly_its_declared_errors`], on a thread with a larger stack.
fn check_every_call() {
    let mut seen = Seen::default();
    directed_scenarios(&mut seen);
    for world in 0..WORLDS {
        drive(world, &mut seen);
    }
    let mut unseen = Vec::new();
    for d in CALLS {
        for case in d.errors {
            let reached = seen.errors.contains(&(d.call, case.error.code()));
            let excused = OUT_OF_REACH
                .iter()
                .any(|&(c, e, _)| c == d.call && e == case.error);
            if !reached && !excused {
                unseen.push(format!("{} {:?} ({})", d.name, case.error, case.when));
            }
            assert!(
                !(reached && excused),
                "{} {:?} is listed as out of reach but was seen",
                d.name,
                case.error
            );
        }
    }
    assert!(
        unseen.is_empty(),
        "declared but never returned in {} calls; the kernel no longer returns them, or \
         this test cannot reach them (then list them in OUT_OF_REACH with the reason):\n{}",
        seen.calls,
        unseen.join("\n")
    );
}
