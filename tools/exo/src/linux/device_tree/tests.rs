//! The generated trees read back through the kernel's own device-tree reader (and, where
//! installed, `dtc`), so what the tool writes is what a device-tree consumer finds.

use exo_abi::PhysAddr;
use exo_kernel::boot_info::{BootInfo, GicInfo, UartKind};
use exo_kernel::cpus::{Conduit, Cores, EnableMethod};
use exo_kernel::device_tree::{DeviceTree, string};

use super::*;

const RAM: u64 = 0x4000_0000;

fn layout() -> Layout {
    Layout {
        ram_base: RAM,
        ram_size: 256 << 20,
        kernel: RAM,
        dtb: RAM + (34 << 20),
        initrd: (RAM + (36 << 20), RAM + (36 << 20) + 986_100),
    }
}

fn pl011() -> DeviceView {
    DeviceView {
        compatible: "arm,pl011".into(),
        ipa: 0x0904_0000,
        size: 0x1000,
        interrupts: vec![40],
    }
}

fn description(gic: GicView) -> Description {
    Description {
        name: "linux".into(),
        layout: layout(),
        has_initrd: true,
        bootargs: "console=ttyAMA0 earlycon".into(),
        vcpus: 1,
        gic,
        devices: vec![pl011()],
        console: 0,
    }
}

const V3: GicView = GicView::V3 {
    distributor: 0x0800_0000,
    redistributors: 0x080A_0000,
};
const V2: GicView = GicView::V2 {
    distributor: 0x0800_0000,
    cpu_interface: 0x0801_0000,
};

fn u64_of(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes.try_into().unwrap())
}

fn cells(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn memory_console_and_gicv3_read_back_as_the_kernel_reads_a_machine() {
    let blob = description(V3).to_dtb().unwrap();
    let tree = DeviceTree::new(&blob).unwrap();
    let info = BootInfo::from_fdt(&tree, PhysAddr::new(RAM)).unwrap();
    assert_eq!(
        (info.ram_start, info.ram_end),
        (PhysAddr::new(RAM), PhysAddr::new(RAM + (256 << 20)))
    );
    assert_eq!(info.memory.as_slice().len(), 1);
    let console = info.console.unwrap();
    assert_eq!(console.base, PhysAddr::new(0x0904_0000));
    assert_eq!(console.kind, UartKind::Pl011);
    assert!(console.named_by_stdout, "stdout-path names the PL011");
    assert_eq!(console.clock_hz, Some(UART_CLOCK_HZ));
    assert_eq!(
        info.gic,
        Some(GicInfo::V3 {
            gicd: PhysAddr::new(0x0800_0000),
            gicr: PhysAddr::new(0x080A_0000),
        })
    );
    let uart = tree.stdout().unwrap();
    assert_eq!(
        cells(uart.node().property("interrupts").unwrap()),
        [0, 8, 4]
    );
    assert_eq!(tree.size(), blob.len());
}

#[test]
fn chosen_carries_the_command_line_and_the_initramfs() {
    let blob = description(V3).to_dtb().unwrap();
    let tree = DeviceTree::new(&blob).unwrap();
    let chosen = tree.find_path("/chosen").unwrap().node();
    assert_eq!(string(chosen, "bootargs"), Some("console=ttyAMA0 earlycon"));
    assert_eq!(string(chosen, "stdout-path"), Some("/pl011@9040000"));
    let (start, end) = layout().initrd;
    assert_eq!(
        u64_of(chosen.property("linux,initrd-start").unwrap()),
        start
    );
    assert_eq!(u64_of(chosen.property("linux,initrd-end").unwrap()), end);

    let without = Description {
        has_initrd: false,
        ..description(V3)
    };
    let blob = without.to_dtb().unwrap();
    let tree = DeviceTree::new(&blob).unwrap();
    let chosen = tree.find_path("/chosen").unwrap().node();
    assert!(chosen.property("linux,initrd-start").is_none());
}

#[test]
fn vcpus_start_through_psci_over_hvc() {
    let blob = Description {
        vcpus: 2,
        ..description(V3)
    }
    .to_dtb()
    .unwrap();
    let tree = DeviceTree::new(&blob).unwrap();
    let mut warnings = Vec::new();
    let cores = Cores::from_fdt(&tree, 0, &mut |w| warnings.push(w));
    assert!(warnings.is_empty(), "{warnings:?}");
    let all: Vec<_> = cores.iter().map(|(_, core)| *core).collect();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].mpidr, 0);
    let Some(EnableMethod::Psci(psci)) = all[1].enable else {
        panic!("vCPU 1 does not start through PSCI: {:?}", all[1]);
    };
    assert_eq!((all[1].mpidr, psci.conduit), (1, Conduit::Hvc));
    let gic = tree.find_compatible(&["arm,gic-v3"]).unwrap();
    let redistributors = gic.regions().nth(1).unwrap().unwrap();
    assert_eq!(
        redistributors.size,
        2 * 0x2_0000,
        "one redistributor per vCPU"
    );
}

#[test]
fn the_timer_names_the_architected_ppis_and_on_gicv2_the_vcpus() {
    for (gic, flags) in [(V3, 4), (V2, 0x104)] {
        let blob = description(gic).to_dtb().unwrap();
        let tree = DeviceTree::new(&blob).unwrap();
        let timer = tree.find_compatible(&["arm,armv8-timer"]).unwrap();
        let interrupts = cells(timer.node().property("interrupts").unwrap());
        assert_eq!(
            interrupts,
            [1, 13, flags, 1, 14, flags, 1, 11, flags, 1, 10, flags]
        );
    }
}

#[test]
fn gicv2_shows_the_cpu_interface_where_the_partition_sees_gicv() {
    let blob = description(V2).to_dtb().unwrap();
    let tree = DeviceTree::new(&blob).unwrap();
    let info = BootInfo::from_fdt(&tree, PhysAddr::new(RAM)).unwrap();
    assert_eq!(
        info.gic,
        Some(GicInfo::V2 {
            gicd: PhysAddr::new(0x0800_0000),
            gicc: PhysAddr::new(0x0801_0000),
            gich: None,
            gicv: None,
        })
    );
}

#[test]
fn dtc_reads_the_tree_without_a_warning() {
    for gic in [V3, V2] {
        let blob = description(gic).to_dtb().unwrap();
        let path = std::env::temp_dir().join(format!("exo-linux-dt-{}.dtb", std::process::id()));
        std::fs::write(&path, &blob).unwrap();
        let output = std::process::Command::new("dtc")
            .args(["-I", "dtb", "-O", "dts"])
            .arg(&path)
            .output();
        let _ = std::fs::remove_file(&path);
        let Ok(output) = output else {
            eprintln!("skipped: no dtc (device-tree-compiler)");
            return;
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success() && stderr.is_empty(), "{stderr}");
        let source = String::from_utf8_lossy(&output.stdout);
        assert!(source.contains("method = \"hvc\""), "{source}");
    }
}

#[test]
fn a_configured_partition_is_described_from_its_board() {
    use crate::config::Program;
    use crate::config::testing::workspace;
    let (dir, workspace) = workspace();
    let mut kernel = vec![0u8; 4096];
    kernel[0x10..0x18].copy_from_slice(&(16u64 << 20).to_le_bytes());
    kernel[0x38..0x3c].copy_from_slice(b"ARM\x64");
    dir.write("configs/Image", kernel);
    for (board, gic) in [("qemu-virt", V3), ("qemu-virt-gicv2", V2)] {
        let path = dir.path().join("configs/linux.toml");
        let text = format!(
            "[system]\nboard = \"{board}\"\n[[partition]]\nname = \"linux\"\n\
             kernel = \"Image\"\nmemory = \"64MiB\"\ndevices = [\"rtc\", \"uart1\"]\n"
        );
        let system = crate::config::parse(&workspace, &path, &text, None).unwrap();
        let partition = &system.partitions[0];
        let Program::Linux(linux) = &partition.program else {
            panic!("not Linux");
        };
        let described = Description::of_partition(&system.board, partition, linux).unwrap();
        // `rtc` has no `compatible` on the test boards: mapped, but not described.
        assert_eq!(described.devices, [pl011()]);
        assert_eq!(described.console, 0);
        assert!(!described.has_initrd);
        assert_eq!(described.gic, gic);
        assert_eq!(described.layout.ram_size, 64 << 20);
    }
}
