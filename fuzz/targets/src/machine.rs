//! A fake machine for the portable kernel: a small RAM, a settable clock, a GIC with four
//! list registers and per-partition virtual-timer deadlines, all in host memory.
//!
//! It is strict where the real machine would silently misbehave: the kernel touching an
//! address outside RAM, or copying across a frame boundary, panics (a finding). The stage-2
//! descriptors use the kernel's deliberately unlike `arch::fake::FakeFormat`, which panics on
//! a descriptor it did not produce.

use exo_abi::{PAGE_SIZE, PhysAddr};
use exo_kernel::arch::fake::FakeFormat;
use exo_kernel::console::Writer;
use exo_kernel::irq::VirtualIrq;
use exo_kernel::mem::frame_table::PartitionId;
use exo_kernel::mem::stage2::{TlbMaintenance, Vmid};
use exo_kernel::platform::{
    CacheMaintenance, Clock, ConsoleOutput, CpuInterface, GicFacts, InterruptController,
    PhysicalMemory, SpiOp, Stage2Hardware, VcpuControl,
};
use std::collections::BTreeMap;

/// Physical address of the fake RAM.
pub const RAM_BASE: u64 = 0x4000_0000;
/// List registers of the fake virtual CPU interface (as many as QEMU's GICs have).
pub const LIST_REGISTERS: usize = 4;
/// INTIDs the fake distributor implements.
pub const GIC_LINES: u32 = 288;
/// Bytes of console output kept (the rest is counted, not stored).
const CONSOLE_KEEP: usize = 4096;

/// A TLB with nothing to invalidate.
pub struct NullTlb;

impl TlbMaintenance for NullTlb {
    fn invalidate_ipa(&mut self, _vmid: Vmid, _ipa: exo_abi::Ipa) {}

    fn invalidate_vmid(&mut self, _vmid: Vmid) {}
}

/// The fake machine.
pub struct FakeMachine {
    ram: Vec<u8>,
    /// The system counter, in microseconds (the timer runs at 1 MHz).
    pub now: u64,
    /// The loaded vCPU's list registers.
    pub lrs: [Option<VirtualIrq>; LIST_REGISTERS],
    /// Whose vCPU is loaded.
    pub loaded: PartitionId,
    /// The list registers of vCPUs not loaded, saved by [`FakeMachine::switch`].
    saved: BTreeMap<PartitionId, [Option<VirtualIrq>; LIST_REGISTERS]>,
    /// Whether the kernel asked for a maintenance interrupt on underflow.
    pub underflow: bool,
    /// Virtual-timer deadlines the guests set, by partition.
    pub timers: BTreeMap<PartitionId, u64>,
    /// Console bytes written (the first [`CONSOLE_KEEP`] are kept).
    pub console: Vec<u8>,
    /// Every console byte written.
    pub console_bytes: u64,
}

impl FakeMachine {
    /// A machine with `frames` frames of RAM at [`RAM_BASE`].
    pub fn new(frames: usize) -> Self {
        Self {
            ram: vec![0; frames * PAGE_SIZE as usize],
            now: 0,
            lrs: [None; LIST_REGISTERS],
            loaded: PartitionId::FIRST,
            saved: BTreeMap::new(),
            underflow: false,
            timers: BTreeMap::new(),
            console: Vec::new(),
            console_bytes: 0,
        }
    }

    /// Byte offset of `pa` in RAM; the kernel touching anything else is a bug.
    fn offset(&self, pa: PhysAddr, len: usize) -> usize {
        let offset = pa
            .raw()
            .checked_sub(RAM_BASE)
            .unwrap_or_else(|| panic!("kernel touched non-RAM {pa}")) as usize;
        assert!(
            offset + len <= self.ram.len(),
            "kernel touched non-RAM {pa}+{len}"
        );
        offset
    }

    /// The bytes of `frame`, for the guest to write into.
    pub fn frame_mut(&mut self, frame: PhysAddr) -> &mut [u8] {
        let at = self.offset(frame, PAGE_SIZE as usize);
        &mut self.ram[at..at + PAGE_SIZE as usize]
    }

    /// Loads partition `next`'s vCPU, saving the list registers of the one loaded (what
    /// the AArch64 `vcpu_state::switch` does).
    pub fn switch(&mut self, next: PartitionId) {
        if next != self.loaded {
            self.saved.insert(self.loaded, self.lrs);
            self.lrs = self.saved.remove(&next).unwrap_or_default();
            self.loaded = next;
        }
    }

    /// The library OS takes and ends every interrupt in its list registers.
    pub fn guest_handles_all(&mut self) {
        self.lrs = [None; LIST_REGISTERS];
    }
}

impl PhysicalMemory for FakeMachine {
    fn read_u64(&self, pa: PhysAddr) -> u64 {
        let at = self.offset(pa, 8);
        let mut word = [0; 8];
        word.copy_from_slice(&self.ram[at..at + 8]);
        u64::from_le_bytes(word)
    }

    fn write_u64(&mut self, pa: PhysAddr, value: u64) {
        let at = self.offset(pa, 8);
        self.ram[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }

    fn zero_frame(&mut self, frame: PhysAddr) {
        assert!(frame.is_page_aligned(), "zero_frame({frame}) unaligned");
        self.frame_mut(frame).fill(0);
    }

    fn copy_to_phys(&mut self, pa: PhysAddr, bytes: &[u8]) {
        assert!(
            pa.page_offset() + bytes.len() as u64 <= PAGE_SIZE,
            "copy_to_phys crosses a frame"
        );
        let at = self.offset(pa, bytes.len());
        self.ram[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn copy_from_phys(&self, pa: PhysAddr, buffer: &mut [u8]) {
        assert!(
            pa.page_offset() + buffer.len() as u64 <= PAGE_SIZE,
            "copy_from_phys crosses a frame"
        );
        let at = self.offset(pa, buffer.len());
        buffer.copy_from_slice(&self.ram[at..at + buffer.len()]);
    }
}

impl Stage2Hardware for FakeMachine {
    type Format = FakeFormat;
    type Tlb = NullTlb;

    fn tlb(&self) -> NullTlb {
        NullTlb
    }
}

impl CacheMaintenance for FakeMachine {
    fn clean_to_poc(&mut self, frame: PhysAddr) {
        self.offset(frame, PAGE_SIZE as usize);
    }

    fn publish_done(&mut self) {}
}

impl ConsoleOutput for FakeMachine {
    fn console_write(&mut self, _who: Writer<'_>, bytes: &[u8]) {
        self.console_bytes += bytes.len() as u64;
        let room = CONSOLE_KEEP.saturating_sub(self.console.len());
        self.console
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

impl Clock for FakeMachine {
    fn timer_frequency(&self) -> u64 {
        1_000_000
    }

    fn now(&self) -> u64 {
        self.now
    }
}

impl InterruptController for FakeMachine {
    fn gic(&self) -> GicFacts {
        GicFacts {
            interface: CpuInterface::SystemRegisters,
            lines: GIC_LINES,
        }
    }

    fn spi(&mut self, intid: u32, _op: SpiOp) {
        assert!(
            (32..GIC_LINES).contains(&intid),
            "kernel drove INTID {intid}, not an SPI of this GIC"
        );
    }

    fn inject(&mut self, irq: VirtualIrq) -> bool {
        if self.lrs.iter().flatten().any(|l| l.intid == irq.intid) {
            return true;
        }
        match self.lrs.iter_mut().find(|l| l.is_none()) {
            Some(free) => {
                *free = Some(irq);
                true
            }
            None => false,
        }
    }

    fn notify_on_underflow(&mut self, on: bool) {
        self.underflow = on;
    }

    fn live_virtual_pending(&self) -> bool {
        self.lrs.iter().any(Option::is_some)
    }
}

impl VcpuControl for FakeMachine {
    fn initial_pstate(&self) -> u64 {
        0x3c5
    }

    fn virtual_timer_deadline(&self, id: PartitionId) -> Option<u64> {
        self.timers.get(&id).copied()
    }

    fn vcpu_ended(&mut self, id: PartitionId) {
        self.timers.remove(&id);
        if id == self.loaded {
            self.lrs = [None; LIST_REGISTERS];
        } else {
            self.saved.remove(&id);
        }
    }
}
