//! Booting an image under QEMU and watching the console until the kernel powers off, QEMU
//! exits, or the deadline passes (then QEMU is killed: a hung guest never hangs the caller).
//!
//! Two reader threads forward QEMU's standard output and error, line by line, over a
//! channel; the calling thread echoes them, feeds them to [`RunOutcome::observe`] and waits
//! on the channel with the time left before the deadline.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;

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
    /// Extra QEMU arguments, appended after the board's (e.g. `-icount shift=0` for
    /// deterministic benchmarks).
    pub extra_qemu_args: Vec<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            board: None,
            echo: true,
            qemu: None,
            extra_qemu_args: Vec::new(),
        }
    }
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

/// Boots `image` on `system`'s board and returns what happened.
///
/// `Err` only if QEMU could not be started.
pub fn run(system: &System, image: &Path, options: &RunOptions) -> anyhow::Result<RunOutcome> {
    let mut command = system.board.qemu_command(image, options.qemu.as_deref());
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
                    eprintln!("{line}");
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
    fn a_hung_qemu_is_killed_at_the_deadline() {
        let started = Instant::now();
        let outcome = run_script("echo '[hello] hi'; exec sleep 30", Duration::from_secs(1));
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(outcome.end, RunEnd::TimedOut(Duration::from_secs(1)));
        assert!(outcome.to_string().contains("timed out after 1 s"));
    }

    #[test]
    fn qemu_errors_are_captured() {
        let outcome = run_script(
            "echo 'qemu: no such machine' >&2; exit 1",
            Duration::from_secs(20),
        );
        assert_eq!(outcome.qemu_stderr, ["qemu: no such machine"]);
        assert_eq!(outcome.end, RunEnd::Exited(Some(1)));
        assert!(
            outcome
                .to_string()
                .contains("without the kernel's power-off line")
        );
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
}
