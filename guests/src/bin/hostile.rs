//! `hostile`: 100 000 random hypercalls with random arguments, and random loads and stores
//! at random IPAs, then asks the kernel to check its own invariants (`EXO_SELF_CHECK`).
//!
//! It spares only itself: no `EXO_EXIT`, PSCI `SYSTEM_OFF`/`SYSTEM_RESET`/`CPU_OFF`, no
//! `EXO_SET_UPCALL` (its fault handler must stay), no console writes or self-checks (they
//! would flood the console), no unbinding of its own boot memory and no frame-allocation
//! buffer inside it. Random accesses go to a part of the IPA space it never binds, and its
//! fault handler skips them: each one must fault.
//!
//! Then it sweeps every frame of RAM with `EXO_FRAME_ALLOC_AT`; each frame another partition
//! holds (the keeper holds some bound and some unbound) must refuse `EXO_BIND` with
//! `OtherPartition`.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use exo_libos::abi::call::{self, exo_call};
use exo_libos::abi::package::DEFAULT_RAM_BASE;
use exo_libos::abi::{Error, PAGE_SIZE};
use exo_libos::hypercall;
use exo_libos::mem::call as mem_call;
use exo_libos::upcall::{self, Access, FaultResolution};
use exo_libos::{ExitCode, Info, Ipa, PhysAddr, println, probe};

exo_libos::entry!(main);

/// Hypercalls made.
const CALLS: u64 = 100_000;
/// Where random accesses go: bits 38 and 37 set, never bound by this program.
const ACCESS_REGION: u64 = 0x60_0000_0000;
/// Where the sweep tries to bind other partitions' frames (below the access region).
const SWEEP_IPA: Ipa = Ipa::new(0x50_0000_0000);

static SKIPPED: AtomicU64 = AtomicU64::new(0);

fn skip(_ipa: Ipa, _access: Access) -> FaultResolution {
    SKIPPED.fetch_add(1, Ordering::Relaxed);
    FaultResolution::Skip
}

/// xorshift64.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, limit: u64) -> u64 {
        self.next() % limit
    }
}

/// What the program must not hand the kernel.
struct Limits {
    ram_start: u64,
    ram_end: u64,
    phys_base: u64,
}

impl Limits {
    fn in_own_ram(&self, ipa: u64) -> bool {
        (self.ram_start..self.ram_end).contains(&(ipa & !(PAGE_SIZE - 1)))
    }
}

/// A random argument: often a plausible address, sometimes junk.
fn argument(random: &mut Random, limits: &Limits) -> u64 {
    match random.below(8) {
        0 => random.below(16),
        1 => limits.phys_base + random.below(128 * 1024 * 1024 / PAGE_SIZE) * PAGE_SIZE,
        2 => random.below(1 << 38) & !(PAGE_SIZE - 1),
        3 => {
            [0, u64::MAX, 1 << 39, 0x3FFF_F000, 0x3FFF_E000, 0x3FFF_D000][random.below(6) as usize]
        }
        4 => limits.ram_start + random.below(limits.ram_end - limits.ram_start),
        5 => random.below(8),
        _ => random.next(),
    }
}

/// Functions it picks from on purpose (most of them). Not `EXO_WAIT_EVENT`, `EXO_WAIT` or
/// `EXO_CALL`: with nothing to wake it, it would wait for ever.
const FUNCTIONS: [u32; 32] = [
    call::EXO_IRQ_ENABLE,
    call::EXO_IRQ_DISABLE,
    call::EXO_IRQ_SET_PRIORITY,
    call::EXO_IRQ_SET_TARGET,
    call::EXO_IRQ_RAISE,
    call::EXO_RECEIVE,
    call::EXO_DONATE,
    call::EXO_SEND,
    call::EXO_ABI_VERSION,
    call::EXO_YIELD,
    call::EXO_FRAME_ALLOC,
    call::EXO_FRAME_ALLOC_AT,
    call::EXO_FRAME_FREE,
    call::EXO_BIND,
    call::EXO_UNBIND,
    call::EXO_GRANT,
    call::EXO_GRANT_REVOKE,
    call::EXO_REVOKE_ACK,
    call::EXO_UPCALL_RETURN,
    call::EXO_MEM_INFO,
    call::EXO_PARTITION_LOOKUP,
    call::EXO_GRANT_QUERY,
    call::SMCCC_VERSION,
    call::SMCCC_ARCH_FEATURES,
    call::PSCI_VERSION,
    call::PSCI_FEATURES,
    exo_call(0x04),
    exo_call(0x1E),
    exo_call(0x7FF),
    0x8400_0001,
    0xC400_0003,
    0x8600_0003,
];

/// Calls it never makes.
fn forbidden(function: u32) -> bool {
    matches!(
        function,
        call::EXO_EXIT
            | call::EXO_SET_UPCALL
            | call::EXO_CONSOLE_WRITE
            | call::EXO_SELF_CHECK
            | call::PSCI_SYSTEM_OFF
            | call::PSCI_SYSTEM_RESET
            | call::PSCI_CPU_OFF
            | call::EXO_WAIT_EVENT
            | call::EXO_WAIT
            | call::EXO_REPLY_WAIT
            | call::EXO_CALL
    )
}

fn main(info: &Info) -> Result<ExitCode, Error> {
    upcall::set_fault_handler(skip)?;
    let ram_start = DEFAULT_RAM_BASE.raw();
    let limits = Limits {
        ram_start,
        ram_end: info.ram_end().raw(),
        phys_base: info
            .bindings()
            .map(|b| b.phys.raw())
            .min()
            .unwrap_or(0x4000_0000)
            & !0x7FF_FFFF,
    };
    let mut random = Random(0x5DEE_CE66_D1CE_4E5B ^ exo_libos::time::ticks());
    let mut outcomes = [0u64; 18]; // [0]: success; [n]: error code -n
    let mut accesses = 0u64;
    let mut frames = [PhysAddr::new(0); 512];
    while outcomes.iter().sum::<u64>() < CALLS {
        let function = if random.below(4) == 0 {
            random.next() as u32
        } else {
            FUNCTIONS[random.below(FUNCTIONS.len() as u64) as usize]
        };
        if forbidden(function) {
            continue;
        }
        let mut args = [0u64; 6];
        for arg in &mut args {
            *arg = argument(&mut random, &limits);
        }
        if matches!(
            function,
            call::EXO_IRQ_ENABLE
                | call::EXO_IRQ_DISABLE
                | call::EXO_IRQ_SET_PRIORITY
                | call::EXO_IRQ_SET_TARGET
                | call::EXO_IRQ_RAISE
        ) && random.below(2) == 0
        {
            // Its own SPIs, the signals, the timer, someone else's SPI, the console's.
            args[0] = [48, 49, 8, 9, 10, 27, 50, 33, 1020][random.below(9) as usize];
        }
        let result = match function {
            call::EXO_UNBIND if limits.in_own_ram(args[0]) => continue,
            call::EXO_FRAME_ALLOC if random.below(2) == 0 => {
                let count = 1 + random.below(frames.len() as u64) as usize;
                mem_call::frame_alloc(&mut frames[..count]).map(|n| n as u64)
            }
            call::EXO_FRAME_ALLOC if limits.in_own_ram(args[1]) || args[1] >= 0x4000_0000 => {
                args[1] = 0x2000_0000; // unbound: the kernel must refuse the buffer
                hypercall::call(function, &args)
            }
            call::EXO_BIND if args[1] >= ACCESS_REGION => continue,
            _ => hypercall::call(function, &args),
        };
        let slot = match result {
            Ok(_) => 0,
            Err(error) => (-error.code()) as usize,
        };
        outcomes[slot.min(17)] += 1;
        if random.below(4) == 0 {
            accesses += 1;
            let ipa = Ipa::new(ACCESS_REGION | (random.below(1 << 37) & !7));
            let before = SKIPPED.load(Ordering::Relaxed);
            if random.below(2) == 0 {
                let _ = probe::read_u64(ipa);
            } else {
                let _ = probe::write_u64(ipa, random.next());
            }
            if SKIPPED.load(Ordering::Relaxed) != before + 1 {
                println!("random access at {ipa} did not fault");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    println!(
        "{} calls: ok {}; {} random accesses, {} faults skipped",
        outcomes.iter().sum::<u64>(),
        outcomes[0],
        accesses,
        SKIPPED.load(Ordering::Relaxed)
    );
    for error in Error::ALL {
        let count = outcomes[(-error.code()) as usize];
        if count > 0 {
            println!("  {error}: {count}");
        }
    }
    let start = info
        .bindings()
        .next()
        .map_or(PhysAddr::new(0x4000_0000), |b| b.phys);
    let Some(others) = sweep(start) else {
        return Ok(ExitCode::FAILURE);
    };
    println!("EXO_BIND refused for all {others} frames of other partitions");
    match mem_call::self_check() {
        Ok(frames) => {
            println!("kernel self-check passed ({frames} frames)");
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            println!("kernel self-check FAILED: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Walks every frame of the RAM bank holding `start`, down then up, until `NotRam`; each
/// frame another partition holds must refuse `EXO_BIND`. Returns how many there were, or
/// `None` after printing a breach.
fn sweep(start: PhysAddr) -> Option<u64> {
    let mut others = 0;
    for step in [-(PAGE_SIZE as i64), PAGE_SIZE as i64] {
        let mut frame = if step < 0 {
            start.raw().checked_sub(PAGE_SIZE)?
        } else {
            start.raw()
        };
        loop {
            let phys = PhysAddr::new(frame);
            match mem_call::frame_alloc_at(phys) {
                Err(Error::NotRam) => break,
                Err(Error::OtherPartition) => {
                    others += 1;
                    let bound =
                        mem_call::bind(phys, SWEEP_IPA, exo_libos::abi::BindAttributes::READ_WRITE);
                    if bound != Err(Error::OtherPartition) {
                        println!("EXO_BIND of {phys}, another partition's: {bound:?}");
                        return None;
                    }
                }
                Ok(_) => {
                    if let Err(error) = mem_call::frame_free(phys) {
                        println!("cannot give back {phys}: {error}");
                        return None;
                    }
                }
                Err(_) => {}
            }
            match frame.checked_add_signed(step) {
                Some(next) => frame = next,
                None => break,
            }
        }
    }
    Some(others)
}
