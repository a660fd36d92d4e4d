//! A Linux partition beside a library OS, against the fake machine: it enters with its
//! device tree in `x0` and a distributor view of its own SPIs; its distributor writes reach
//! only those, and enabling one sets it up as `EXO_IRQ_ENABLE` would; its debug and PMU
//! registers read as zero and its SGIs reach only itself. A library OS gets none of this.

use super::*;
use crate::gicd_filter::{Access, DistributorRegisters, Width};
use crate::linux::Encoding;
use exo_abi::package::PartitionFlags;

/// Where the test puts the Linux partition's device tree.
const DTB: u64 = 0x4000_2000;

/// A distributor that records every write and reads back what was written.
#[derive(Default)]
struct Registers {
    values: BTreeMap<u32, u32>,
    writes: Vec<(u32, u32)>,
}

impl DistributorRegisters for Registers {
    fn read32(&mut self, offset: u32) -> u32 {
        self.values.get(&offset).copied().unwrap_or(0)
    }

    fn write32(&mut self, offset: u32, value: u32) {
        self.writes.push((offset, value));
        self.values.insert(offset, value);
    }
}

/// Partition 0 runs Linux and owns SPI 40; partition 1, a library OS, owns SPI 48.
fn linux_beside_a_library_os() -> K {
    let mut linux = Config::new("linux", 32, 0);
    linux.interrupts = &[40];
    let mut library = Config::new("library", 32, 0);
    library.interrupts = &[48];
    let (mut kernel, bytes) = unloaded(1024, &[linux, library]);
    // The same package with partition 0 turned into a Linux partition.
    let mut package = bytes;
    let table = u64::from_le_bytes(package[24..32].try_into().unwrap()) as usize;
    package[table + 68..table + 72].copy_from_slice(&PartitionFlags::LINUX.bits().to_le_bytes());
    package[table + 128..table + 136].copy_from_slice(&DTB.to_le_bytes());
    kernel.load(&Package::parse(&package).unwrap()).unwrap();
    kernel.self_check().unwrap();
    kernel
}

fn word(offset: u32, write: Option<u64>) -> Access {
    Access {
        offset,
        width: Width::Word,
        write,
    }
}

#[test]
fn linux_enters_with_its_device_tree_and_a_view_of_its_own_interrupts() {
    let mut k = linux_beside_a_library_os();
    assert_eq!(k.regs_mut(pid(0)).unwrap().x[0], DTB);
    assert_eq!(k.regs_mut(pid(1)).unwrap().x[0], info::INFO_PAGE_IPA.raw());
    assert!(k.partition(pid(0)).unwrap().gicd.is_some());
    assert!(k.partition(pid(1)).unwrap().gicd.is_none());
    k.current = pid(0);
    assert!(k.current_is_linux());
    k.current = pid(1);
    assert!(!k.current_is_linux());
}

#[test]
fn its_distributor_writes_reach_only_its_own_spis() {
    let mut k = linux_beside_a_library_os();
    let mut gicd = Registers::default();
    k.current = pid(0);
    // GICD_ISENABLER1 (INTIDs 32..63), every bit: only SPI 40's reaches the register, and
    // the kernel sets SPI 40 up (priority, group, route) as for EXO_IRQ_ENABLE.
    let written = k.linux_distributor(word(0x104, Some(u64::MAX)), &mut gicd);
    assert_eq!(written, Some(0));
    assert_eq!(gicd.writes, [(0x104, 1 << 8)]);
    assert_eq!(k.platform.spi_log, [(40, SpiOp::Enable)]);
    assert!(k.irqs.has_enabled(pid(0)));
    assert!(!k.irqs.has_enabled(pid(1)));
    // GICD_ISPENDR1: SPI 48 is the library OS's, so nothing is written for it.
    gicd.values.insert(0x204, 1 << 16);
    let pending = k.linux_distributor(word(0x204, None), &mut gicd);
    assert_eq!(pending, Some(0), "Linux sees none of SPI 48's state");
    // Disabling: recorded, no SpiOp needed beyond the register write.
    k.linux_distributor(word(0x184, Some(u64::MAX)), &mut gicd);
    assert!(!k.irqs.has_enabled(pid(0)));
    // A library OS has no distributor view: its accesses are stage-2 faults as ever.
    k.current = pid(1);
    assert_eq!(k.linux_distributor(word(0x104, None), &mut gicd), None);
}

#[test]
fn debug_and_pmu_registers_read_as_zero_and_sgis_reach_only_itself() {
    let mut k = linux_beside_a_library_os();
    let mdscr = Encoding {
        op0: 2,
        op1: 0,
        crn: 0,
        crm: 2,
        op2: 2,
    };
    let sgi1r = Encoding {
        op0: 3,
        op1: 0,
        crn: 12,
        crm: 11,
        op2: 5,
    };
    k.current = pid(0);
    assert_eq!(k.linux_system_register(mdscr, true, 0), Some(0));
    // SGI 5 to affinity 0.0.0, target list {0}: itself.
    assert_eq!(k.linux_system_register(sgi1r, false, 5 << 24 | 1), Some(0));
    let queued = k.partition(pid(0)).unwrap().virq.peek(&k.irqs);
    assert_eq!(
        queued.map(|irq| (irq.intid, irq.hardware)),
        Some((5, false))
    );
    // To another vCPU: nobody (the library OS gets nothing either).
    k.linux_system_register(sgi1r, false, 6 << 24 | 2);
    assert!(k.partition(pid(1)).unwrap().virq.peek(&k.irqs).is_none());
    // A library OS touching the same registers is stopped as before: not served.
    k.current = pid(1);
    assert_eq!(k.linux_system_register(mdscr, true, 0), None);
    assert_eq!(k.linux_system_register(sgi1r, false, 1), None);
}

#[test]
fn psci_system_reset_ends_only_the_linux_partition() {
    let mut k = linux_beside_a_library_os();
    // A library OS is told it is not supported, as before.
    assert_eq!(
        result(&mut k, 1, PSCI_SYSTEM_RESET, &[]),
        err(Error::NotSupported)
    );
    assert_eq!(state(&k, 1), State::Runnable);
    // Linux's `reboot`: it ends (exo does not restart partitions); the other runs on.
    let (_, step) = call(&mut k, 0, PSCI_SYSTEM_RESET, &[]);
    assert_eq!(step, Step::Switch(pid(1)));
    assert_eq!(
        state(&k, 0),
        State::Finished(crate::partition::Outcome::SystemReset)
    );
    assert_eq!(state(&k, 1), State::Runnable);
    k.self_check().unwrap();
}

#[test]
fn ownership_is_the_interrupt_tables_at_every_access() {
    let mut k = linux_beside_a_library_os();
    let mut gicd = Registers::default();
    k.current = pid(0);
    // Its SPIs given back (as when it ends): its distributor writes reach nothing more.
    k.irqs.release_all(pid(0));
    k.linux_distributor(word(0x104, Some(u64::MAX)), &mut gicd);
    assert!(gicd.writes.is_empty(), "{:?}", gicd.writes);
    assert!(k.platform.spi_log.is_empty());
}

#[test]
fn the_distributor_view_costs_a_partition_no_room() {
    // Three bytes, in what was padding: every trap indexes the partition table, and a
    // larger entry showed in the hypercall benchmarks.
    assert!(core::mem::size_of::<Option<crate::gicd_filter::DistributorView>>() <= 4);
}

/// PSCI over a Linux partition's one vCPU (affinity 0): `CPU_ON` finds it already on and
/// has no other to start, `AFFINITY_INFO` says it is on; both in SMC32 and SMC64 form. A
/// library OS is told neither is supported, and nothing changes for anyone.
#[test]
fn psci_cpu_on_and_affinity_info_cover_the_linux_partitions_one_vcpu() {
    use smccc::psci::{
        PSCI_AFFINITY_INFO_32, PSCI_AFFINITY_INFO_64, PSCI_CPU_ON_32, PSCI_CPU_ON_64,
    };
    let mut k = linux_beside_a_library_os();
    let code = |k: &mut K, p: usize, function: u32, args: &[u64]| {
        let (regs, step) = call(k, p, function, args);
        assert_eq!(step, Step::Resume, "{function:#x} keeps the caller running");
        regs[0] as i64
    };
    for cpu_on in [PSCI_CPU_ON_32, PSCI_CPU_ON_64] {
        // Affinity 0 with bit 31 (RES1 in MPIDR_EL1) as Linux passes it: already on.
        assert_eq!(code(&mut k, 0, cpu_on, &[1 << 31, 0x4008_0000, 7]), -4);
        assert_eq!(code(&mut k, 0, cpu_on, &[1, 0x4008_0000, 7]), -2);
        assert_eq!(code(&mut k, 0, cpu_on, &[1 << 32, 0x4008_0000, 7]), -2);
        refused(&mut k, 1, cpu_on, &[0, 0x4008_0000, 7], Error::NotSupported);
    }
    for affinity_info in [PSCI_AFFINITY_INFO_32, PSCI_AFFINITY_INFO_64] {
        assert_eq!(code(&mut k, 0, affinity_info, &[0, 0]), 0, "ON");
        assert_eq!(code(&mut k, 0, affinity_info, &[2, 0]), -2);
        assert_eq!(code(&mut k, 0, affinity_info, &[0, 1]), -2);
        refused(&mut k, 1, affinity_info, &[0, 0], Error::NotSupported);
    }
    assert_eq!(state(&k, 0), State::Runnable);
    assert_eq!(state(&k, 1), State::Runnable);
    k.self_check().unwrap();
}
