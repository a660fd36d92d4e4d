//! The Raspberry Pi 4 boot folder and SD card image, as a user makes them: `scripts/image-rpi4
//! DIR --sd-image FILE` writes the folder (kernel8.img, config.txt, firmware from pinned Debian
//! packages, the Pi's device tree) and a card image; the folder's kernel8.img boots under QEMU
//! `raspi4b` from the folder's own device tree, filled in the way the firmware fills it, with
//! the console on the mini UART its `stdout-path` names; the card's FAT partition holds the
//! same files.
//!
//! The firmware packages are downloaded once (apt-get download, network to the Debian
//! archive) into build/cache/firmware/ and reused.

use std::path::{Path, PathBuf};
use std::process::Command;

use exo_system_tests::{BOOT_TIMEOUT, Booted, announce, boot_lock, workspace_root};
use exo_tool::deploy::{Console, config_txt, firmware, sd_image};
use exo_tool::{RunOptions, Workspace};

/// The files of a boot folder with the mini UART console.
const FILES: [&str; 5] = [
    "bcm2711-rpi-4-b.dtb",
    "config.txt",
    "fixup4.dat",
    "kernel8.img",
    "start4.elf",
];

fn scratch() -> PathBuf {
    let dir = workspace_root().join("build/test-rpi4-image");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `scripts/image-rpi4 <dir> --sd-image <card>` with the default configuration.
fn image_rpi4(dir: &Path, card: &Path) {
    let output = Command::new(workspace_root().join("scripts/image-rpi4"))
        .arg(dir)
        .arg("--sd-image")
        .arg(card)
        .output()
        .expect("cannot run scripts/image-rpi4");
    assert!(
        output.status.success(),
        "scripts/image-rpi4 failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Sorted names of the files under `dir` (relative paths).
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The folder's device tree as the Pi 4 firmware passes it on a 2 GiB board: `/memory@0`
/// with its two banks (kernel/tests/fixtures/README.md) and `/chosen` with the properties
/// the firmware adds (the kernel command line, a KASLR seed). QEMU rewrites every `memory@`
/// node to its first 960 MiB, so the second bank is also given as `ram@40000000`, a memory
/// node by its `device_type` that QEMU leaves alone (docs/raspberry-pi.md): the kernel then
/// sees both banks, as on the board.
fn fill_like_the_firmware(dtb: &Path, filled: &Path) {
    std::fs::copy(dtb, filled).unwrap();
    let fdtput = |args: &[&str]| {
        let status = Command::new("fdtput")
            .arg(filled)
            .args(args)
            .status()
            .expect("cannot run fdtput (device-tree-compiler); run scripts/setup");
        assert!(status.success(), "fdtput {args:?} failed");
    };
    fdtput(&[
        "-t",
        "x",
        "/memory@0",
        "reg",
        "0",
        "0",
        "3b400000",
        "0",
        "40000000",
        "40000000",
    ]);
    fdtput(&["-c", "/ram@40000000"]);
    fdtput(&["-t", "s", "/ram@40000000", "device_type", "memory"]);
    fdtput(&[
        "-t",
        "x",
        "/ram@40000000",
        "reg",
        "0",
        "40000000",
        "40000000",
    ]);
    fdtput(&[
        "-t",
        "s",
        "/chosen",
        "bootargs",
        "coherent_pool=1M 8250.nr_uarts=1",
    ]);
    fdtput(&["-t", "x", "/chosen", "kaslr-seed", "0", "0"]);
}

fn boot_folder(dir: &Path, dtb: &Path) -> Booted {
    let config = workspace_root().join("guests/configs/default.toml");
    let workspace = Workspace::locate_for(Some(&config)).unwrap();
    let system = exo_tool::check(&workspace, &config, Some("raspi4b")).unwrap();
    let options = RunOptions {
        timeout: BOOT_TIMEOUT,
        board: Some("raspi4b".to_owned()),
        dtb: Some(dtb.to_path_buf()),
        ..RunOptions::default()
    };
    let _guard = boot_lock();
    announce(&config, Some("raspi4b"));
    let outcome = exo_tool::qemu::run(&system, &dir.join("kernel8.img"), &options)
        .expect("cannot boot the folder's kernel8.img");
    Booted { config, outcome }
}

/// Boots the folder's kernel8.img with QEMU's serial 0 (the PL011) discarded and serial 1
/// (the mini UART) written to a file; returns that file's text once QEMU exits.
fn mini_uart_only(dir: &Path, dtb: &Path, log: &Path) -> String {
    let _guard = boot_lock();
    let mut qemu = Command::new("qemu-system-aarch64")
        .args([
            "-M",
            "raspi4b",
            "-m",
            "2G",
            "-nographic",
            "-no-reboot",
            "-monitor",
            "none",
        ])
        .args(["-serial", "null", "-serial"])
        .arg(format!("file:{}", log.display()))
        .arg("-kernel")
        .arg(dir.join("kernel8.img"))
        .arg("-dtb")
        .arg(dtb)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("cannot start qemu-system-aarch64; run scripts/setup");
    let deadline = std::time::Instant::now() + BOOT_TIMEOUT;
    while qemu.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = qemu.kill();
            let _ = qemu.wait();
            panic!("QEMU did not power off within {BOOT_TIMEOUT:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::fs::read_to_string(log).unwrap()
}

#[test]
fn the_boot_folder_boots_from_its_own_device_tree_and_the_card_holds_it() {
    let scratch = scratch();
    let (dir, card) = (scratch.join("boot"), scratch.join("card.img"));
    image_rpi4(&dir, &card);
    assert_eq!(files(&dir), FILES);
    assert_eq!(
        std::fs::read_to_string(dir.join("config.txt")).unwrap(),
        config_txt::config_txt(Console::MiniUart, false)
    );
    // The firmware and device tree are the pinned files.
    let pins_path = workspace_root().join("platform/raspi4b/firmware.toml");
    let pins = firmware::Pins::load(&pins_path).unwrap();
    for package in &pins.packages {
        for file in &package.files {
            firmware::check(package, file, &dir.join(&file.out)).unwrap();
        }
    }

    let filled = scratch.join("bcm2711-rpi-4-b.filled.dtb");
    fill_like_the_firmware(&dir.join("bcm2711-rpi-4-b.dtb"), &filled);
    let booted = boot_folder(&dir, &filled);
    booted.assert_success();
    booted.assert_ok("hello");
    booted.assert_ok("counter");
    booted.check(booted.outcome.powered_off, "no power-off line");
    booted.assert_line_with(&["exo 0.1.0 at EL2 on Raspberry Pi 4 Model B"]);
    // Every line after this one came out of the mini UART (QEMU serial 1): the kernel
    // writes nothing to the PL011 once it has switched.
    booted.assert_line_with(&[
        "console: mini UART at 0xfe215040 (the device tree's stdout-path), 115200 8N1",
    ]);
    booted.assert_line_with(&["RAM bank 0: 0x0..0x3c000000 (960 MiB)"]);
    booted.assert_line_with(&["RAM 0x0..0x80000000 (1984 MiB in 2 banks)"]);
    // The same boot with only the mini UART connected: the whole run is there.
    let log = mini_uart_only(&dir, &filled, &scratch.join("mini-uart.log"));
    for line in [
        "[hello] hello again from hello",
        "exo: all partitions finished, powering off",
    ] {
        assert!(log.contains(line), "no {line:?} on the mini UART:\n{log}");
    }

    let (kind, start, sectors) = sd_image::partition(&card).unwrap();
    assert_eq!((kind, start), (sd_image::FAT32_LBA, 2048));
    assert!(u64::from(sectors) * 512 + (1 << 20) <= std::fs::metadata(&card).unwrap().len());
    let on_card = scratch.join("card");
    sd_image::extract(&card, &on_card).unwrap();
    assert_eq!(files(&on_card), FILES);
    for name in FILES {
        assert!(
            std::fs::read(dir.join(name)).unwrap() == std::fs::read(on_card.join(name)).unwrap(),
            "{name} on the card differs from the folder's"
        );
    }
}

/// `scripts/image-rpi4 DIR --jtag`: the folder's config.txt puts the Arm JTAG port on GPIO
/// 22-27 for a debugger (docs/raspberry-pi.md, "Attaching a debugger").
#[test]
fn jtag_puts_the_arm_debug_port_in_the_folders_config_txt() {
    let dir = workspace_root().join("build/test-rpi4-jtag");
    let _ = std::fs::remove_dir_all(&dir);
    let output = Command::new(workspace_root().join("scripts/image-rpi4"))
        .arg(&dir)
        .arg("--jtag")
        .output()
        .expect("cannot run scripts/image-rpi4");
    assert!(
        output.status.success(),
        "scripts/image-rpi4 --jtag failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(dir.join("config.txt")).unwrap();
    assert_eq!(text, config_txt::config_txt(Console::MiniUart, true));
    assert!(text.ends_with("enable_jtag_gpio=1\n"), "{text}");
}
