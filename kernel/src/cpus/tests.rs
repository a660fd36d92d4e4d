//! `/cpus` and `/psci` of QEMU `virt`, the Pi's own tree, exo's tree for QEMU `raspi4b`, and
//! trees with every kind of unusable core, which must leave cores out and never fail.

use super::*;

/// QEMU 10 `virt,virtualization=on,gic-version=3 -cpu cortex-a72 -smp 8` (`dumpdtb=`).
const VIRT_SMP8: &[u8] = include_bytes!("../../tests/fixtures/qemu-virt-gicv3-smp8.dtb");
/// The same with one core.
const VIRT_SMP1: &[u8] = include_bytes!("../../tests/fixtures/qemu-virt-gicv3.dtb");
/// The Pi 4's own tree, as the firmware fills it.
const PI: &[u8] = include_bytes!("../../tests/fixtures/rpi4b-2gib.dtb");
/// exo's tree for QEMU raspi4b (`platform/raspi4b/qemu-raspi4b.dts`).
const QEMU_RASPI4B: &[u8] = include_bytes!("../../tests/fixtures/qemu-raspi4b.dtb");
/// Every way a cpu node can be unusable, and no /psci.
const ODD: &[u8] = include_bytes!("../../tests/fixtures/cpus-odd.dtb");
/// Ten PSCI 0.1 cores over HVC.
const TEN: &[u8] = include_bytes!("../../tests/fixtures/cpus-ten.dtb");
/// `synthetic.dtb`: no /cpus at all.
const NO_CPUS: &[u8] = include_bytes!("../../tests/fixtures/synthetic.dtb");

/// The cores of `blob` booted on `boot_mpidr`, and the warnings.
fn read(blob: &[u8], boot_mpidr: u64) -> (Cores, Vec<CoreWarning>) {
    let tree = DeviceTree::new(blob).unwrap();
    let mut warnings = Vec::new();
    let cores = Cores::from_fdt(&tree, boot_mpidr, &mut |w| warnings.push(w));
    (cores, warnings)
}

fn affinities(cores: &Cores) -> Vec<u64> {
    cores.iter().map(|(_, core)| core.mpidr).collect()
}

fn spin(release: u64) -> Option<EnableMethod> {
    Some(EnableMethod::SpinTable {
        release: PhysAddr::new(release),
    })
}

const VIRT_PSCI: Option<EnableMethod> = Some(EnableMethod::Psci(Psci {
    conduit: Conduit::Smc,
    cpu_on: PSCI_CPU_ON_64,
}));

#[test]
fn qemu_virt_starts_seven_cores_with_psci_cpu_on_over_smc() {
    // MPIDR_EL1 bit 31 is RES1: only the affinity counts.
    let (cores, warnings) = read(VIRT_SMP8, 0x8000_0000);
    assert_eq!(warnings, []);
    assert_eq!(affinities(&cores), (0..8).collect::<Vec<_>>());
    let (boot, first) = (
        cores.get(CoreId::BOOT).unwrap(),
        cores.iter().nth(1).unwrap(),
    );
    assert_eq!(boot.enable, None);
    assert_eq!(first.1.enable, VIRT_PSCI);
    assert!(
        cores
            .iter()
            .skip(1)
            .all(|(_, core)| core.enable == VIRT_PSCI)
    );
    assert_eq!(cores.id_of(0x8000_0005), CoreId::new(5));
    assert_eq!(cores.id_of(9), None);
}

#[test]
fn the_boot_core_is_core_0_whichever_it_is() {
    let (cores, warnings) = read(VIRT_SMP8, 3);
    assert_eq!(warnings, []);
    assert_eq!(affinities(&cores), [3, 0, 1, 2, 4, 5, 6, 7]);
    assert_eq!(cores.id_of(3), Some(CoreId::BOOT));
}

#[test]
fn one_core_virt_runs_alone() {
    let (cores, warnings) = read(VIRT_SMP1, 0x8000_0000);
    assert_eq!(warnings, []);
    assert_eq!(cores.len(), 1);
}

#[test]
fn the_pi_releases_its_cores_through_the_firmware_spin_table() {
    for blob in [PI, QEMU_RASPI4B] {
        let (cores, warnings) = read(blob, 0x8000_0000);
        assert_eq!(warnings, []);
        assert_eq!(affinities(&cores), [0, 1, 2, 3]);
        let releases: Vec<_> = cores.iter().map(|(_, core)| core.enable).collect();
        assert_eq!(releases, [None, spin(0xe0), spin(0xe8), spin(0xf0)]);
    }
}

#[test]
fn unusable_cores_are_left_out_with_a_warning_each() {
    let (cores, warnings) = read(ODD, 0);
    assert_eq!(affinities(&cores), [0, 0x100, 0x1_0000_0000]);
    assert_eq!(
        cores.get(CoreId::new(2).unwrap()).unwrap().enable,
        spin(0xf8)
    );
    assert_eq!(
        warnings,
        [
            CoreWarning::NoPsci { mpidr: 1 },
            CoreWarning::UnknownMethod { mpidr: 2 },
            CoreWarning::NoReleaseAddress { mpidr: 3 },
            CoreWarning::Duplicate { mpidr: 0x100 },
            CoreWarning::BadReg,
        ]
    );
    assert_eq!(
        warnings[1].to_string(),
        "the core with MPIDR 0x2 has no enable-method exo knows: left down"
    );
}

#[test]
fn past_eight_cores_the_rest_stay_down() {
    let (cores, warnings) = read(TEN, 0);
    assert_eq!(cores.len(), MAX_CORES);
    assert_eq!(warnings, [CoreWarning::TooMany { ignored: 2 }]);
    let psci_0_1 = Some(EnableMethod::Psci(Psci {
        conduit: Conduit::Hvc,
        cpu_on: 0x95c1_ba60,
    }));
    assert!(
        cores
            .iter()
            .skip(1)
            .all(|(_, core)| core.enable == psci_0_1)
    );
    assert_eq!(cores.id_of(0x103), CoreId::new(7));
    assert_eq!(cores.id_of(0x200), None);
}

#[test]
fn a_tree_without_the_boot_core_or_without_cpus_runs_the_boot_core_alone() {
    let (cores, warnings) = read(VIRT_SMP8, 0x8000_0100);
    assert_eq!(affinities(&cores), [0x100]);
    assert_eq!(warnings, [CoreWarning::BootCoreMissing { mpidr: 0x100 }]);
    let (cores, warnings) = read(NO_CPUS, 0);
    assert_eq!(cores.len(), 1);
    assert_eq!(warnings, [CoreWarning::NoCpus]);
}

#[test]
fn core_ids_stop_at_max_cores() {
    assert_eq!(CoreId::new(7).map(CoreId::index), Some(7));
    assert_eq!(CoreId::new(MAX_CORES), None);
    assert_eq!(CoreId::BOOT.to_string(), "core 0");
}
