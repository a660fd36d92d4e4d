//! The exo library OS: everything a guest program needs to run at EL1 in an exo partition.
//!
//! The kernel enters a partition at `_start` (in `arch`) with the stage-1 MMU off and the
//! IPA of the read-only info page in `x0`. The library OS zeroes `.bss`, sets up a stack and
//! the EL1 exception vectors, reads the info page into an [`Info`] and calls the program's
//! entry point, named with [`entry!`]. When that returns, the partition exits through
//! `EXO_EXIT` with the program's [`ExitCode`].
//!
//! Inside, the library OS is layered: the machine (`arch`) at the bottom calls up only
//! through the runtime's hooks; policy modules ([`irq`], [`upcall`], [`mem`], ...) register
//! their handlers with the runtime; programs sit on top (docs/libos.md, "Layers";
//! `libos/tests/layers.rs` keeps the arrows pointing down).
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! #![forbid(unsafe_code)]
//!
//! use exo_libos::{ExitCode, Info, println};
//!
//! exo_libos::entry!(main);
//!
//! fn main(info: &Info) -> ExitCode {
//!     println!("hello from {}", info.name());
//!     ExitCode::SUCCESS
//! }
//! ```
//!
//! Programs link with `libos/guest.ld`, which lays the image out from
//! [`DEFAULT_RAM_BASE`](exo_abi::package::DEFAULT_RAM_BASE) with one page-aligned segment per
//! set of stage-2 rights. `unsafe` code lives in the `arch` module, but for two promises only
//! a policy module can make and so makes itself, each in one place: the heap's
//! `GlobalAlloc` (its blocks are disjoint) and a claimed device region's register block (it
//! is the only one). The rest is safe, portable and tested on the host.
//!
//! Beyond that, the library OS manages memory the exokernel way ([`mem`]): it allocates
//! frames, binds them where it likes, answers revocation requests with a pluggable policy
//! through upcalls ([`upcall`]) or, if the program chooses, the kernel's signals
//! ([`mem::revocation::by_interrupt`]), and can serve as the program's global allocator.
//!
//! Partitions talk to each other through [`ipc`]: register-sized synchronous calls that pass
//! the CPU straight to the callee, and one-word asynchronous messages.
//!
//! Interrupts the kernel injects through the virtual GIC CPU interface (GICv3 system
//! registers or the GICv2 `GICV` frame, as the info page says) reach handlers registered with
//! [`irq`], which also waits for them without spinning ([`irq::wait_until`], over
//! `EXO_WAIT_EVENT`). [`timer`] shares the EL1 virtual timer between a periodic interrupt and
//! sleeping; [`time`] is the monotonic clock. Devices the configuration gives a partition are
//! claimed and driven through [`device`].

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

mod arch;
pub mod console;
pub mod device;
pub mod hypercall;
pub mod info;
pub mod ipc;
pub mod irq;
pub mod mem;
pub mod memory;
pub mod mmu;
pub mod probe;
pub mod registers;
mod runtime;

#[doc(hidden)]
pub use runtime::start as __start;
pub mod time;
pub mod timer;
pub mod upcall;

use core::fmt;

pub use exo_abi as abi;
pub use exo_abi::{Error, Ipa, PhysAddr};
pub use info::Info;
pub use spin;

/// Exit status of a program stopped by an exception taken to EL1.
pub const EXIT_STATUS_EXCEPTION: u64 = 102;
/// Exit status when `x0` at entry did not point at a valid info page.
pub const EXIT_STATUS_NO_INFO: u64 = 103;

/// The status a program ends with; passed to `EXO_EXIT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitCode(u64);

impl ExitCode {
    /// Success (0).
    pub const SUCCESS: ExitCode = ExitCode(0);
    /// Failure (1).
    pub const FAILURE: ExitCode = ExitCode(1);

    /// An arbitrary status; anything but 0 is failure.
    pub const fn new(status: u64) -> Self {
        Self(status)
    }

    /// The raw status.
    pub const fn status(self) -> u64 {
        self.0
    }
}

impl From<u8> for ExitCode {
    fn from(status: u8) -> Self {
        Self(u64::from(status))
    }
}

/// What a program's entry point may return: turned into an [`ExitCode`] when it finishes.
pub trait Termination {
    /// The exit code this result stands for; may print why it is a failure.
    fn report(self) -> ExitCode;
}

impl Termination for () {
    fn report(self) -> ExitCode {
        ExitCode::SUCCESS
    }
}

impl Termination for ExitCode {
    fn report(self) -> ExitCode {
        self
    }
}

/// `Ok` reports the inner value; `Err` prints `error: <error>` and is a failure.
impl<T: Termination, E: fmt::Debug> Termination for Result<T, E> {
    fn report(self) -> ExitCode {
        match self {
            Ok(value) => value.report(),
            Err(error) => {
                println!("error: {error:?}");
                ExitCode::FAILURE
            }
        }
    }
}

/// Names the program's entry point: `entry!(main)` where `fn main(info: &Info) -> T` and `T`
/// is `()`, [`ExitCode`] or `Result<T, E: Debug>` (anything [`Termination`]).
///
/// It defines the program's entry stub, `exo_libos_guest_main`: the boot stub (`_start`)
/// calls it, and it hands the runtime `main` to run (as `main` in a C program is called by
/// the C runtime's start-up code). Exactly one use per program; a
/// program without it fails to link with an undefined `exo_libos_guest_main`.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        /// The program's entry stub: `_start` calls it once the partition is set up.
        #[unsafe(export_name = "exo_libos_guest_main")]
        extern "C" fn __exo_libos_guest_main() -> ! {
            $crate::__start(|info| $crate::Termination::report($main(info)))
        }
    };
}
