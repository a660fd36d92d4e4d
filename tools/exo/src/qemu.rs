//! Booting an image under QEMU and watching the console until the kernel powers off, QEMU
//! exits, or the deadline passes (then QEMU is killed: a hung guest never hangs the caller).
//!
//! The board's arguments make QEMU's serial port 0 the kernel's console (`-serial stdio`).
//! When a partition owns a device that is another of QEMU's serial ports (`qemu_serial = N`
//! in the board file, `uart1` on QEMU virt), the run gives QEMU that port too
//! ([`serial_ports`], [`serial_args`]): connected to [`RunOptions::serial1_input`] and
//! [`RunOptions::serial1_output`] when given, else its output goes to
//! `<image dir>/<config stem>.serial<N>.log` and it gets no input.
//!
//! Two reader threads forward QEMU's standard output and error, line by line, over a
//! channel; the calling thread echoes them, feeds them to [`RunOutcome::observe`] and waits
//! on the channel with the time left before the deadline.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::config::System;
use crate::console::{RunEnd, RunOutcome};

/// How long QEMU may take to exit after the kernel's power-off line.
pub const POWER_OFF_GRACE: Duration = Duration::from_secs(5);
/// Default limit on a whole boot.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of [`crate::run_system`] and [`run`].
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Kill QEMU and fail after this long.
    pub timeout: Duration,
    /// Board to use instead of the configuration's.
    pub board: Option<String>,
    /// Echo every console line to standard output (QEMU's own errors to standard error)
    /// as it arrives.
    pub echo: bool,
    /// QEMU binary to use instead of the board's.
    pub qemu: Option<PathBuf>,
    /// Extra QEMU arguments, appended after the board's and the serial ports' (e.g.
    /// `-icount shift=0` for deterministic benchmarks).
    pub extra_qemu_args: Vec<String>,
    /// A file QEMU's serial port 1 reads its input from (the device with `qemu_serial = 1`,
    /// `uart1` on QEMU virt). A partition must own that device.
    pub serial1_input: Option<PathBuf>,
    /// The file QEMU's serial port 1 writes to, instead of
    /// `<image dir>/<config stem>.serial1.log`. A partition must own that device.
    pub serial1_output: Option<PathBuf>,
    /// The device tree QEMU passes the kernel (`-dtb`) instead of the board's own (`dtb`
    /// in its board file, or QEMU's generated one): a blob, or a `.dts` source compiled
    /// with dtc first. E.g. the Raspberry Pi's own device tree on `raspi4b`.
    pub dtb: Option<PathBuf>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            board: None,
            echo: true,
            qemu: None,
            extra_qemu_args: Vec::new(),
            serial1_input: None,
            serial1_output: None,
            dtb: None,
        }
    }
}

/// A QEMU serial port beyond the console that a run attaches, for a partition's device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialPort {
    /// QEMU's serial port number (1 is the second `-serial`).
    pub port: u32,
    /// The board device it is.
    pub device: String,
    /// The partition owning the device.
    pub partition: String,
    /// The file QEMU reads the port's input from, if any.
    pub input: Option<PathBuf>,
    /// The file QEMU writes the port's output to.
    pub output: PathBuf,
}

/// The serial ports `system`'s partitions own, with their files: for port 1 those of
/// `options` if given; otherwise output to `<image dir>/<config stem>.serial<N>.log`, and
/// no input.
///
/// `Err` if `options` gives port 1 files but no partition owns port 1, or the input file
/// does not exist.
pub fn serial_ports(
    system: &System,
    image: &Path,
    options: &RunOptions,
) -> anyhow::Result<Vec<SerialPort>> {
    let uses = system.qemu_serials();
    let wants_serial1 = options.serial1_input.is_some() || options.serial1_output.is_some();
    if wants_serial1 && !uses.iter().any(|u| u.port == 1) {
        let device = system
            .board
            .devices
            .iter()
            .find(|d| d.qemu_serial == Some(1))
            .map_or_else(
                || format!("board `{}` has none", system.board.name),
                |d| format!("`{}` on board `{}`", d.name, system.board.name),
            );
        bail!(
            "files for QEMU serial 1 were given (--serial1-input/--serial1-output), but no \
             partition of {} owns the device on serial 1 ({device}): add it to a partition's \
             `devices`",
            system.path.display()
        );
    }
    if let Some(input) = &options.serial1_input
        && !input.is_file()
    {
        bail!("serial 1 input file {} does not exist", input.display());
    }
    let dir = image.parent().unwrap_or(Path::new(""));
    Ok(uses
        .into_iter()
        .map(|u| {
            let (input, output) = match u.port {
                1 => (
                    options.serial1_input.clone(),
                    options.serial1_output.clone(),
                ),
                _ => (None, None),
            };
            let output = output
                .unwrap_or_else(|| dir.join(format!("{}.serial{}.log", system.stem(), u.port)));
            SerialPort {
                port: u.port,
                device: u.device,
                partition: u.partition,
                input,
                output,
            }
        })
        .collect())
}

/// QEMU arguments attaching `ports` after the board's console (`-serial` options count from
/// port 0, so a gap below a port is filled with `-serial null`): `-serial file:<output>`,
/// or with an input file `-chardev file,id=serial<N>,path=<output>,input-path=<input>` and
/// `-serial chardev:serial<N>`.
pub fn serial_args(ports: &[SerialPort]) -> Vec<String> {
    let mut args = Vec::new();
    let last = ports.iter().map(|p| p.port).max().unwrap_or(0);
    for port in 1..=last {
        let Some(attached) = ports.iter().find(|p| p.port == port) else {
            args.extend(["-serial".to_owned(), "null".to_owned()]);
            continue;
        };
        let output = &attached.output;
        match &attached.input {
            None => args.extend(["-serial".to_owned(), format!("file:{}", output.display())]),
            Some(input) => {
                // QEMU option values escape a comma by doubling it.
                let escape = |path: &Path| path.display().to_string().replace(',', ",,");
                args.extend([
                    "-chardev".to_owned(),
                    format!(
                        "file,id=serial{port},path={},input-path={}",
                        escape(output),
                        escape(input)
                    ),
                    "-serial".to_owned(),
                    format!("chardev:serial{port}"),
                ]);
            }
        }
    }
    args
}

enum Event {
    Console(String),
    QemuError(String),
}

/// Kills QEMU unless it has been waited for, so no exit path leaves it running.
struct Qemu(Child, bool);

impl Drop for Qemu {
    fn drop(&mut self) {
        if !self.1 {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Compiles the board's device-tree source `source` with `dtc` next to `image`; returns
/// the blob's path.
fn compile_dtb(source: &Path, image: &Path) -> anyhow::Result<PathBuf> {
    let name = source.file_stem().unwrap_or_default();
    let blob = image.with_file_name(name).with_extension("dtb");
    let output = Command::new("dtc")
        .args(["-q", "-I", "dts", "-O", "dtb", "-o"])
        .arg(&blob)
        .arg(source)
        .output()
        .context("cannot run dtc (device-tree-compiler); run scripts/setup to install it")?;
    if !output.status.success() {
        anyhow::bail!(
            "dtc could not compile {}: {}",
            source.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(blob)
}

/// The device tree file QEMU gets with `-dtb`, if any: [`RunOptions::dtb`], else the
/// board's; a `.dts` source is compiled next to `image`.
///
/// `Err` if the given file does not exist or does not compile.
pub fn device_tree(
    system: &System,
    image: &Path,
    options: &RunOptions,
) -> anyhow::Result<Option<PathBuf>> {
    let Some(file) = options.dtb.as_ref().or(system.board.qemu_dtb.as_ref()) else {
        return Ok(None);
    };
    if !file.is_file() {
        bail!("device tree file {} does not exist", file.display());
    }
    if file.extension().is_some_and(|e| e == "dts") {
        return compile_dtb(file, image).map(Some);
    }
    Ok(Some(file.clone()))
}

/// Boots `image` on `system`'s board, with the [`serial_ports`] its partitions own, and
/// returns what happened.
///
/// `Err` only if QEMU could not be started, or the serial port files or the device tree
/// are wrong.
pub fn run(system: &System, image: &Path, options: &RunOptions) -> anyhow::Result<RunOutcome> {
    let ports = serial_ports(system, image, options)?;
    let mut command = system.board.qemu_command(image, options.qemu.as_deref());
    if let Some(blob) = device_tree(system, image, options)? {
        command.arg("-dtb").arg(blob);
    }
    command.args(serial_args(&ports));
    command.args(&options.extra_qemu_args);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().with_context(|| {
        format!(
            "cannot start QEMU ({:?}); run scripts/setup to install it",
            command.get_program()
        )
    })?;
    let mut qemu = Qemu(child, false);
    let (sender, receiver) = mpsc::channel();
    if let Some(stdout) = qemu.0.stdout.take() {
        forward(stdout, sender.clone(), Event::Console);
    }
    if let Some(stderr) = qemu.0.stderr.take() {
        forward(stderr, sender.clone(), Event::QemuError);
    }
    drop(sender);

    let mut outcome = RunOutcome::new(system.partitions.iter().map(|p| p.name.clone()).collect());
    for port in &ports {
        if options.echo {
            let input = match &port.input {
                Some(input) => format!(", input from {}", input.display()),
                None => String::new(),
            };
            eprintln!(
                "exo run: QEMU serial {} (`{}` of partition `{}`) writes to {}{input}",
                port.port,
                port.device,
                port.partition,
                port.output.display()
            );
        }
        outcome
            .serial_outputs
            .insert(port.port, port.output.clone());
    }
    let mut deadline = Instant::now() + options.timeout;
    let mut end = None;
    // Read until both pipes close (QEMU exited) or the deadline passes.
    while end.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(Event::Console(line)) => {
                if options.echo {
                    println!("{}", line.trim_end_matches(['\r', '\n']));
                }
                let was_off = outcome.powered_off;
                outcome.observe(&line);
                if outcome.powered_off && !was_off {
                    deadline = deadline.min(Instant::now() + POWER_OFF_GRACE);
                }
            }
            Ok(Event::QemuError(line)) => {
                let line = line.trim_end_matches(['\r', '\n']).to_owned();
                if options.echo {
                    eprintln!("qemu stderr: {line}");
                }
                outcome.qemu_stderr.push(line);
            }
            Err(RecvTimeoutError::Timeout) => end = Some(late(&outcome, options)),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    // The pipes are closed: QEMU has exited or is about to.
    while end.is_none() {
        if let Some(status) = qemu.0.try_wait().context("waiting for QEMU")? {
            qemu.1 = true;
            end = Some(RunEnd::Exited(status.code()));
        } else if Instant::now() >= deadline {
            end = Some(late(&outcome, options));
        } else {
            thread::sleep(Duration::from_millis(20));
        }
    }
    drop(qemu); // kills it if it has not exited
    outcome.end = end.unwrap_or(RunEnd::Exited(None));
    Ok(outcome)
}

fn late(outcome: &RunOutcome, options: &RunOptions) -> RunEnd {
    if outcome.powered_off {
        RunEnd::HungAfterPowerOff(POWER_OFF_GRACE)
    } else {
        RunEnd::TimedOut(options.timeout)
    }
}

/// Sends each line of `pipe` (lossily decoded) until end of file.
fn forward(pipe: impl Read + Send + 'static, sender: Sender<Event>, wrap: fn(String) -> Event) {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line).into_owned();
                    if sender.send(wrap(text)).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{TempDir, workspace};

    /// Runs a shell script in place of QEMU.
    fn run_script(script: &str, timeout: Duration) -> RunOutcome {
        let (dir, workspace) = workspace();
        let config = "[[partition]]\nname = \"hello\"\nprogram = \"hello\"\nmemory = 4096\n";
        let path = dir.path().join("c.toml");
        let system = crate::config::parse(&workspace, &path, config, None).unwrap();
        let scripts = TempDir::new();
        let fake = scripts.write("fake-qemu", format!("#!/bin/sh\n{script}\n"));
        let status = std::process::Command::new("chmod")
            .arg("+x")
            .arg(&fake)
            .status()
            .unwrap();
        assert!(status.success());
        let options = RunOptions {
            timeout,
            echo: false,
            qemu: Some(fake),
            ..RunOptions::default()
        };
        run(&system, Path::new("x.img"), &options).unwrap()
    }

    #[test]
    fn a_clean_run_succeeds() {
        let outcome = run_script(
            "echo '[hello] hi'; echo 'exo: result hello ok'; \
             printf 'exo: all partitions finished, powering off\\r\\n'",
            Duration::from_secs(20),
        );
        assert!(outcome.success(), "{outcome}");
        assert_eq!(outcome.end, RunEnd::Exited(Some(0)));
        assert_eq!(outcome.partition_lines("hello").collect::<Vec<_>>(), ["hi"]);
    }

    #[test]
    fn a_given_device_tree_reaches_qemu_once() {
        let (dir, workspace) = workspace();
        let config = "[[partition]]\nname = \"hello\"\nprogram = \"hello\"\nmemory = 4096\n";
        let system =
            crate::config::parse(&workspace, &dir.path().join("c.toml"), config, None).unwrap();
        let blob = dir.write("pi.dtb", "not checked here: the kernel reads it");
        let image = dir.path().join("c.img");
        let mut options = RunOptions::default();
        assert_eq!(device_tree(&system, &image, &options).unwrap(), None);
        options.dtb = Some(blob.clone());
        assert_eq!(
            device_tree(&system, &image, &options).unwrap(),
            Some(blob.clone())
        );
        options.dtb = Some(dir.path().join("missing.dtb"));
        let error = device_tree(&system, &image, &options).unwrap_err();
        assert!(
            error.to_string().contains("missing.dtb does not exist"),
            "{error}"
        );

        let scripts = TempDir::new();
        let fake = scripts.write("fake-qemu", "#!/bin/sh\necho \"args: $*\"\n");
        let status = std::process::Command::new("chmod")
            .arg("+x")
            .arg(&fake)
            .status()
            .unwrap();
        assert!(status.success());
        let options = RunOptions {
            echo: false,
            qemu: Some(fake),
            dtb: Some(blob.clone()),
            ..RunOptions::default()
        };
        let outcome = run(&system, &image, &options).unwrap();
        let args = &outcome.lines[0];
        assert_eq!(args.matches("-dtb").count(), 1, "{args}");
        assert!(args.contains(&format!("-dtb {}", blob.display())), "{args}");
    }

    #[test]
    fn a_hung_qemu_is_killed_at_the_deadline() {
        let started = Instant::now();
        let outcome = run_script("echo '[hello] hi'; exec sleep 30", Duration::from_secs(1));
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(outcome.end, RunEnd::TimedOut(Duration::from_secs(1)));
        assert!(outcome.to_string().contains("timed out after 1 s"));
    }

    #[test]
    fn qemu_errors_are_captured_and_shown() {
        let outcome = run_script(
            "echo 'qemu-system-aarch64: -nic none: no such option' >&2; \
             echo 'qemu-system-aarch64: failed to find romfile \"efi-virtio.rom\"' >&2; exit 1",
            Duration::from_secs(20),
        );
        assert_eq!(outcome.end, RunEnd::Exited(Some(1)));
        assert_eq!(outcome.qemu_stderr.len(), 2);
        assert!(!outcome.success());
        let shown = outcome.to_string();
        assert!(
            shown.starts_with(
                "exo run: QEMU exited with status 1 without the kernel's power-off line; \
                 QEMU said:\n  qemu stderr: qemu-system-aarch64: -nic none: no such option\n  \
                 qemu stderr: qemu-system-aarch64: failed to find romfile \"efi-virtio.rom\"\n"
            ),
            "{shown}"
        );
    }

    #[test]
    fn a_failing_exit_after_power_off_is_shown_with_qemu_errors() {
        let outcome = run_script(
            "echo 'exo: result hello ok'; echo 'exo: all partitions finished, powering off'; \
             echo 'qemu: cannot flush the log' >&2; exit 3",
            Duration::from_secs(20),
        );
        assert!(!outcome.success());
        assert_eq!(
            outcome.to_string(),
            "exo run: QEMU exited with status 3 after the kernel's power-off line; QEMU said:\n  \
             qemu stderr: qemu: cannot flush the log"
        );
    }

    #[test]
    fn only_the_last_qemu_errors_are_shown() {
        let outcome = run_script(
            "i=0; while [ $i -lt 30 ]; do echo \"error $i\" >&2; i=$((i+1)); done; exit 1",
            Duration::from_secs(20),
        );
        let shown = outcome.to_string();
        assert!(shown.contains("(10 earlier lines left out)"), "{shown}");
        assert!(
            !shown.contains("error 9\n") && shown.contains("error 10\n"),
            "{shown}"
        );
        assert!(shown.contains("error 29\n"), "{shown}");
    }

    #[test]
    fn a_missing_qemu_says_to_run_setup() {
        let (dir, workspace) = workspace();
        let config = "[[partition]]\nname = \"hello\"\nprogram = \"hello\"\nmemory = 4096\n";
        let system =
            crate::config::parse(&workspace, &dir.path().join("c.toml"), config, None).unwrap();
        let options = RunOptions {
            qemu: Some("/nonexistent/qemu".into()),
            ..RunOptions::default()
        };
        let e = run(&system, Path::new("x.img"), &options).unwrap_err();
        assert!(format!("{e:#}").contains("scripts/setup"), "{e:#}");
    }

    /// A system whose partition `p` owns `uart1` (QEMU serial 1) when `with_uart1`.
    fn system_with_uart1(with_uart1: bool) -> (TempDir, System) {
        let (dir, workspace) = workspace();
        let devices = if with_uart1 {
            "devices = [\"uart1\"]\n"
        } else {
            ""
        };
        let config =
            format!("[[partition]]\nname = \"p\"\nprogram = \"hello\"\nmemory = 4096\n{devices}");
        let system =
            crate::config::parse(&workspace, &dir.path().join("c.toml"), &config, None).unwrap();
        (dir, system)
    }

    #[test]
    fn an_owned_uart_is_logged_next_to_the_image() {
        let (_dir, system) = system_with_uart1(true);
        let image = Path::new("build/qemu-virt/c.img");
        let ports = serial_ports(&system, image, &RunOptions::default()).unwrap();
        assert_eq!(
            ports,
            [SerialPort {
                port: 1,
                device: "uart1".into(),
                partition: "p".into(),
                input: None,
                output: "build/qemu-virt/c.serial1.log".into(),
            }]
        );
        assert_eq!(
            serial_args(&ports),
            ["-serial", "file:build/qemu-virt/c.serial1.log"]
        );
    }

    #[test]
    fn serial1_files_become_a_chardev() {
        let (dir, system) = system_with_uart1(true);
        let input = dir.write("in,put.txt", "hello\n");
        let options = RunOptions {
            serial1_input: Some(input.clone()),
            serial1_output: Some("out.txt".into()),
            ..RunOptions::default()
        };
        let ports = serial_ports(&system, Path::new("x.img"), &options).unwrap();
        assert_eq!(ports[0].input.as_deref(), Some(input.as_path()));
        let escaped = input.display().to_string().replace(',', ",,");
        assert_eq!(
            serial_args(&ports),
            [
                "-chardev".to_owned(),
                format!("file,id=serial1,path=out.txt,input-path={escaped}"),
                "-serial".to_owned(),
                "chardev:serial1".to_owned(),
            ]
        );
        // Only an output file: no chardev needed.
        let options = RunOptions {
            serial1_output: Some("out.txt".into()),
            ..RunOptions::default()
        };
        let ports = serial_ports(&system, Path::new("x.img"), &options).unwrap();
        assert_eq!(serial_args(&ports), ["-serial", "file:out.txt"]);
    }

    #[test]
    fn serial_ports_below_an_attached_one_are_null() {
        let port = |port: u32| SerialPort {
            port,
            device: format!("uart{port}"),
            partition: "p".into(),
            input: None,
            output: format!("s{port}.log").into(),
        };
        assert_eq!(
            serial_args(&[port(3), port(1)]),
            [
                "-serial",
                "file:s1.log",
                "-serial",
                "null",
                "-serial",
                "file:s3.log"
            ]
        );
        assert!(serial_args(&[]).is_empty());
    }

    #[test]
    fn no_serial_port_without_a_device() {
        let (_dir, system) = system_with_uart1(false);
        let ports = serial_ports(&system, Path::new("x.img"), &RunOptions::default()).unwrap();
        assert!(ports.is_empty());
        let options = RunOptions {
            serial1_output: Some("out.txt".into()),
            ..RunOptions::default()
        };
        let e = serial_ports(&system, Path::new("x.img"), &options).unwrap_err();
        assert!(
            e.to_string().contains("no partition of")
                && e.to_string().contains("(`uart1` on board `qemu-virt`)"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_serial1_input_is_refused() {
        let (_dir, system) = system_with_uart1(true);
        let options = RunOptions {
            serial1_input: Some("/nonexistent/input".into()),
            ..RunOptions::default()
        };
        let e = serial_ports(&system, Path::new("x.img"), &options).unwrap_err();
        assert!(
            e.to_string().contains("/nonexistent/input does not exist"),
            "{e}"
        );
    }

    #[test]
    fn qemu_gets_the_serial_port() {
        let (dir, system) = system_with_uart1(true);
        let scripts = TempDir::new();
        let args = scripts.path().join("args");
        let fake = scripts.write(
            "fake-qemu",
            format!(
                "#!/bin/sh\necho \"$@\" > {}\necho 'exo: result p ok'\n\
                 echo 'exo: all partitions finished, powering off'\n",
                args.display()
            ),
        );
        let status = std::process::Command::new("chmod")
            .arg("+x")
            .arg(&fake)
            .status()
            .unwrap();
        assert!(status.success());
        let image = dir.path().join("build/c.img");
        let options = RunOptions {
            echo: false,
            qemu: Some(fake),
            extra_qemu_args: vec!["-icount".into(), "0".into()],
            ..RunOptions::default()
        };
        let outcome = run(&system, &image, &options).unwrap();
        assert!(outcome.success(), "{outcome}");
        let log = dir.path().join("build/c.serial1.log");
        assert_eq!(outcome.serial_outputs.get(&1), Some(&log));
        let args = std::fs::read_to_string(args).unwrap();
        assert!(
            args.trim_end().ends_with(&format!(
                "-kernel {} -serial file:{} -icount 0",
                image.display(),
                log.display()
            )),
            "{args}"
        );
    }
}
