//! What the portable kernel needs from the machine, one narrow trait per concern (as
//! Hafnium splits its `inc/hf/arch/{mm,cpu,timer,irq,vm}.h`): physical memory, stage-2
//! translation hardware, caches, the console, the clock, the interrupt controller and the
//! vCPUs. [`Platform`] is their union, implemented for every machine that has all of them.
//!
//! Portable code that needs one concern bounds on that trait alone (the stage-2 table
//! memory needs only [`PhysicalMemory`]); the kernel itself takes a [`Platform`].

mod cache;
mod clock;
mod console;
mod gic;
mod memory;
mod vcpu;

pub use cache::CacheMaintenance;
pub use clock::Clock;
pub use console::ConsoleOutput;
pub use gic::{CpuInterface, GicFacts, InterruptController, SpiOp};
pub use memory::{PhysicalMemory, Stage2Hardware};
pub use vcpu::VcpuControl;

/// What the kernel needs from the machine: every concern at once. Implemented for any type
/// that implements each of them; machines implement the concern traits, not this one.
pub trait Platform:
    PhysicalMemory
    + Stage2Hardware
    + CacheMaintenance
    + ConsoleOutput
    + Clock
    + InterruptController
    + VcpuControl
{
}

impl<T> Platform for T where
    T: PhysicalMemory
        + Stage2Hardware
        + CacheMaintenance
        + ConsoleOutput
        + Clock
        + InterruptController
        + VcpuControl
{
}
