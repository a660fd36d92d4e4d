//! The serial chain loader end to end under QEMU `raspi4b`: `exo image --chain-loader`
//! writes the loader as the boot folder's `kernel8.img`; QEMU boots it with the Pi's own
//! device tree (as the firmware fills it on a 2 GiB board) and the mini UART (serial 1) on
//! a pseudo-terminal; `exo run --serial` (here `exo_tool::run_serial`) sends the default
//! system over it, and that system runs on the same line and powers off.
//!
//! The firmware packages come from build/cache/firmware/ (downloaded once, as for
//! rpi4_image.rs). The transfer takes about 45 s: QEMU feeds the mini UART's 8-byte FIFO
//! from a pseudo-terminal at about 5 KB/s.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use exo_system_tests::{announce, boot_lock, workspace_root};
use exo_tool::Workspace;
use exo_tool::deploy::serial::{DEFAULT_BAUD, SerialOptions};
use exo_tool::deploy::{Console, ImageOptions, chain_loader};

/// Limit for the whole run: transfer, boot and power-off.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// QEMU, killed when dropped.
struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts QEMU `raspi4b` on `kernel8.img` with the mini UART on a pseudo-terminal; returns
/// it and the terminal's path (from QEMU's `char device redirected to` line).
fn start_qemu(kernel: &std::path::Path) -> (Qemu, PathBuf) {
    let dtb = workspace_root().join("kernel/tests/fixtures/rpi4b-2gib.dtb");
    let mut child = Command::new("qemu-system-aarch64")
        .args(["-M", "raspi4b", "-m", "2G", "-nographic", "-no-reboot"])
        .args(["-monitor", "none", "-serial", "null", "-serial", "pty"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-dtb")
        .arg(&dtb)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start qemu-system-aarch64; run scripts/setup");
    let (sender, receiver) = mpsc::channel();
    for pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let sender = sender.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let qemu = Qemu(child);
    let mut said = Vec::new();
    loop {
        let line = match receiver.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => line,
            Err(_) => panic!("QEMU named no pseudo-terminal for serial 1; it said: {said:#?}"),
        };
        if let Some(rest) = line.strip_prefix("char device redirected to ")
            && let Some((path, label)) = rest.split_once(' ')
            && label == "(label serial1)"
        {
            return (qemu, PathBuf::from(path));
        }
        said.push(line);
    }
}

#[test]
fn the_chain_loader_receives_the_default_system_over_the_mini_uart_and_it_runs() {
    let root = workspace_root();
    let config = root.join("guests/configs/default.toml");
    let workspace = Workspace::locate_for(Some(&config)).unwrap();
    let dir = root.join("build/test-chain-loader");
    let _ = std::fs::remove_dir_all(&dir);
    let options = ImageOptions {
        chain_loader: true,
        ..ImageOptions::default()
    };
    let folder = exo_tool::image(&workspace, &config, Some("raspi4b"), &dir, &options)
        .expect("exo image --chain-loader failed");
    let kernel = folder.dir.join("kernel8.img");
    let loader = chain_loader::build(&workspace, Console::MiniUart).unwrap();
    assert!(
        std::fs::read(&kernel).unwrap() == loader,
        "kernel8.img is not the chain loader"
    );

    let _guard = boot_lock();
    announce(&config, Some("raspi4b"));
    let (_qemu, pty) = start_qemu(&kernel);
    let serial = SerialOptions {
        device: pty.clone(),
        baud: DEFAULT_BAUD,
        timeout: RUN_TIMEOUT,
        echo: false,
    };
    let outcome = exo_tool::run_serial(&config, Some("raspi4b"), &serial)
        .unwrap_or_else(|e| panic!("exo run --serial {} failed: {e:#}", pty.display()));
    let console = outcome.lines.join("\n");
    assert!(outcome.success(), "{outcome}\n--- console:\n{console}");
    for line in [
        "exo-loader: ready for an image (protocol 1)",
        "exo 0.1.0 at EL2 on Raspberry Pi 4 Model B",
        "[hello] hello again from hello",
        "exo: all partitions finished, powering off",
    ] {
        assert!(console.contains(line), "no {line:?} in:\n{console}");
    }
    // The loader says it checked the image, where it put it and the device tree it moved.
    let starting = outcome
        .lines
        .iter()
        .find(|l| l.starts_with("exo-loader: starting the image: "))
        .unwrap_or_else(|| panic!("no starting line in:\n{console}"));
    assert!(
        starting.contains("bytes at 0x80000, CRC-32 0x") && starting.contains("checked"),
        "{starting}"
    );
    assert!(outcome.powered_off, "no power-off line:\n{console}");
}
