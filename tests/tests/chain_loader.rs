//! The serial chain loader end to end under QEMU `raspi4b`: `exo image --chain-loader`
//! writes the loader as the boot folder's `kernel8.img`; QEMU boots it with the Pi's own
//! device tree (as the firmware fills it on a 2 GiB board) and the mini UART (serial 1) on
//! a pseudo-terminal; `exo run --serial` (here `exo_tool::run_serial`) sends the default
//! system over it, and that system runs on the same line and powers off.
//!
//! A second boot checks the loader's refusals on the line: an image too large, a damaged
//! chunk (asked for again), an image whose CRC-32 is not its header's.
//!
//! The firmware packages come from build/cache/firmware/ (downloaded once, as for
//! rpi4_image.rs). The transfer takes about 45 s: QEMU feeds the mini UART's 8-byte FIFO
//! from a pseudo-terminal at about 5 KB/s.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use exo_loader::Header;
use exo_system_tests::{announce, boot_lock, workspace_root};
use exo_tool::Workspace;
use exo_tool::deploy::serial::{DEFAULT_BAUD, Link, Sender, SerialOptions, Tty};
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
        "exo-loader: ready for an image (protocol 2)",
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

/// Sends `bytes` to the loader and reads until its answer byte; returns it with the lines
/// it printed before.
fn exchange(tty: &mut Tty, bytes: &[u8]) -> (u8, Vec<String>) {
    tty.send(bytes).unwrap();
    let (mut lines, mut line) = (Vec::new(), Vec::new());
    loop {
        let byte = tty
            .recv(Duration::from_secs(10))
            .unwrap()
            .unwrap_or_else(|| panic!("no answer from the loader; it said {lines:#?}"));
        match byte {
            // An ACK is followed by the frame's sequence byte: taken with it.
            exo_loader::ACK => {
                let _ = tty.recv(Duration::from_secs(10)).unwrap();
                return (byte, lines);
            }
            exo_loader::NAK | exo_loader::CANCEL => return (byte, lines),
            b'\n' => lines.push(String::from_utf8_lossy(&std::mem::take(&mut line)).into()),
            b'\r' => {}
            other => line.push(other),
        }
    }
}

/// A chunk frame of `data`, index 0.
fn chunk0(data: &[u8]) -> Vec<u8> {
    let mut frame = vec![0; exo_loader::CHUNK + exo_loader::CHUNK_OVERHEAD];
    let length = exo_loader::encode_chunk(0, data, &mut frame);
    frame.truncate(length);
    frame
}

#[test]
fn the_chain_loader_refuses_damaged_and_corrupt_transfers_in_words() {
    let root = workspace_root();
    let workspace = Workspace::locate_for(Some(&root.join("guests/configs/default.toml"))).unwrap();
    let dir = root.join("build/test-chain-loader-refusals");
    std::fs::create_dir_all(&dir).unwrap();
    let kernel = dir.join("kernel8.img");
    std::fs::write(
        &kernel,
        chain_loader::build(&workspace, Console::MiniUart).unwrap(),
    )
    .unwrap();

    let _guard = boot_lock();
    let (_qemu, pty) = start_qemu(&kernel);
    let mut tty = Tty::open(&pty, DEFAULT_BAUD).unwrap();
    let mut log = |_: &str| {};
    Sender::new(&mut tty, &mut log)
        .wait_ready(Duration::from_secs(20))
        .expect("the loader did not say it was ready");

    // An image larger than the room below the loader is refused at the header.
    let huge = Header {
        length: 1 << 30,
        crc: 0,
    };
    let (answer, lines) = exchange(&mut tty, &huge.encode());
    assert_eq!(answer, exo_loader::CANCEL, "{lines:#?}");
    let room = 0x2000_0000 - 0x8_0000;
    let refusal = format!(
        "exo-loader: error: the image of 1073741824 bytes is larger than the {room} bytes \
         below the loader; waiting for an image again"
    );
    assert!(lines.contains(&refusal), "no {refusal:?} in {lines:#?}");

    // A chunk damaged on the line is asked for again.
    let image: Vec<u8> = (0..100u8).collect();
    let mut header = Header::of(&image);
    header.crc ^= 1; // and the image will not match its header
    let (answer, lines) = exchange(&mut tty, &header.encode());
    assert_eq!(answer, exo_loader::ACK, "header refused: {lines:#?}");
    let mut damaged = chunk0(&image);
    damaged[50] ^= 0x10;
    let (answer, lines) = exchange(&mut tty, &damaged);
    assert_eq!(answer, exo_loader::NAK, "{lines:#?}");
    assert_eq!(
        lines,
        ["exo-loader: chunk 0 arrived damaged (checksum mismatch): send it again"]
    );
    std::thread::sleep(Duration::from_millis(300)); // the loader waits for a quiet line

    // The whole image, every chunk good, does not match the header: refused, not started.
    let (answer, lines) = exchange(&mut tty, &chunk0(&image));
    assert_eq!(answer, exo_loader::CANCEL, "{lines:#?}");
    let refusal = format!(
        "exo-loader: error: the image's CRC-32 is {:#010x} but the header says {:#010x}: the \
         transfer is corrupt; waiting for an image again",
        exo_loader::crc32(&image),
        header.crc
    );
    assert!(lines.contains(&refusal), "no {refusal:?} in {lines:#?}");
}
