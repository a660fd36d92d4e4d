//! `exo run --board raspi4b --serial DEV`: sends the image to the chain loader on the card
//! (`exo image --chain-loader`) over the serial line, then reads the console and decides
//! the run's outcome by the same rules as under QEMU (the partitions' result lines and the
//! kernel's power-off line; see [`crate::console`]).
//!
//! The protocol is `exo_loader`'s (loader/src/lib.rs): wait for the loader's ready line,
//! send the header, then the image in chunks, each acknowledged before the next, so a UART
//! without flow control is never sent more than one frame ahead. Damaged or lost frames
//! are sent again; a refusal is reported with the loader's own words.
//!
//! The line is configured raw at the baud rate given (115200 by default) with termios
//! (`rustix`), which also suits the pseudo-terminal QEMU's `-serial pty` gives.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use exo_loader::{
    ACK, CANCEL, CHUNK_OVERHEAD, HOST_ANSWER_TIMEOUT_MS, HOST_TRIES, Header, LINE_PREFIX, NAK,
    QUIET_MS, READY, STARTING, chunk_count, chunk_range, encode_chunk, sequence,
};

use crate::config::System;
use crate::console::{RunEnd, RunOutcome};

/// The console's speed on the Pi (what the loader and the kernel program).
pub const DEFAULT_BAUD: u32 = 115_200;
/// How long to wait for the loader's ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// After the power-off line, how long the console is still read for late lines.
const POWER_OFF_GRACE: Duration = Duration::from_millis(500);

/// What `exo run --serial` needs.
#[derive(Clone, Debug)]
pub struct SerialOptions {
    /// The serial device (or pseudo-terminal).
    pub device: PathBuf,
    /// Its speed in baud.
    pub baud: u32,
    /// How long the whole run may take, transfer included.
    pub timeout: Duration,
    /// Print the loader's lines, progress and the console as they come.
    pub echo: bool,
}

/// A byte line to the loader: what the protocol needs of it.
pub trait Link {
    /// Sends `bytes`.
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    /// The next byte received, waiting at most `timeout`; `None` if none came.
    fn recv(&mut self, timeout: Duration) -> std::io::Result<Option<u8>>;
}

/// A serial device: writes go to the file, reads come from a thread blocked on it.
pub struct Tty {
    file: File,
    bytes: Receiver<std::io::Result<Vec<u8>>>,
    pending: std::collections::VecDeque<u8>,
}

impl Tty {
    /// Opens `device`, raw, at `baud`.
    pub fn open(device: &Path, baud: u32) -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(device)
            .with_context(|| format!("cannot open the serial line {}", device.display()))?;
        configure(&file, baud)
            .with_context(|| format!("cannot configure {} (raw, {baud} baud)", device.display()))?;
        let mut reader = file.try_clone()?;
        let (sender, bytes) = mpsc::channel();
        thread::spawn(move || {
            let mut buffer = [0; 4096];
            loop {
                let read = reader.read(&mut buffer).map(|n| buffer[..n].to_vec());
                let stop = !matches!(&read, Ok(b) if !b.is_empty());
                if sender.send(read).is_err() || stop {
                    break;
                }
            }
        });
        Ok(Self {
            file,
            bytes,
            pending: Default::default(),
        })
    }
}

/// Raw mode (no echo, no line editing, no translation), 8N1, no flow control, `baud`.
fn configure(file: &File, baud: u32) -> std::io::Result<()> {
    use rustix::termios::{ControlModes, OptionalActions, tcgetattr, tcsetattr};
    let mut termios = tcgetattr(file)?;
    termios.make_raw();
    termios.control_modes |= ControlModes::CLOCAL | ControlModes::CREAD;
    termios.control_modes -= ControlModes::CRTSCTS | ControlModes::CSTOPB | ControlModes::PARENB;
    termios.set_speed(baud)?;
    tcsetattr(file, OptionalActions::Now, &termios)?;
    Ok(())
}

impl Link for Tty {
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)?;
        self.file.flush()
    }

    fn recv(&mut self, timeout: Duration) -> std::io::Result<Option<u8>> {
        if let Some(byte) = self.pending.pop_front() {
            return Ok(Some(byte));
        }
        match self.bytes.recv_timeout(timeout) {
            Ok(Ok(bytes)) if bytes.is_empty() => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the serial line closed",
            )),
            Ok(Ok(bytes)) => {
                self.pending.extend(bytes);
                Ok(self.pending.pop_front())
            }
            Ok(Err(e)) => Err(e),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the serial line closed",
            )),
        }
    }
}

/// Time one byte takes on the line at `baud` (10 bits: start, 8 data, stop).
fn byte_time(baud: u32) -> Duration {
    Duration::from_nanos(10_000_000_000 / u64::from(baud.max(1)))
}

/// The loader's answer to a frame.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Ack,
    Nak,
    Cancel,
    Silence,
}

/// The host's side of a transfer: the link, the loader's text so far, and a log.
pub struct Sender<'a, L: Link> {
    link: &'a mut L,
    line: Vec<u8>,
    /// The loader's lines (and any other text on the line), in order.
    pub lines: Vec<String>,
    log: &'a mut dyn FnMut(&str),
    answer_timeout: Duration,
    quiet: Duration,
    byte_time: Duration,
}

impl<'a, L: Link> Sender<'a, L> {
    /// A sender on `link`, telling `log` what happens.
    pub fn new(link: &'a mut L, log: &'a mut dyn FnMut(&str)) -> Self {
        Self {
            link,
            line: Vec::new(),
            lines: Vec::new(),
            log,
            answer_timeout: Duration::from_millis(HOST_ANSWER_TIMEOUT_MS),
            quiet: Duration::from_millis(2 * QUIET_MS),
            byte_time: byte_time(DEFAULT_BAUD),
        }
    }

    /// The line's speed, for the pause before a frame is sent again.
    pub fn baud(mut self, baud: u32) -> Self {
        self.byte_time = byte_time(baud);
        self
    }

    /// Text from the line, split into lines (`\r` dropped).
    fn text(&mut self, byte: u8) {
        match byte {
            b'\n' => {
                let line = String::from_utf8_lossy(&self.line).into_owned();
                self.line.clear();
                if line.starts_with(LINE_PREFIX) {
                    (self.log)(&line);
                }
                self.lines.push(line);
            }
            b'\r' => {}
            _ => self.line.push(byte),
        }
    }

    /// Waits for the loader's ready line, at most `timeout`.
    pub fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "no `{READY}` line within {} s: is the board powered, booted from a card \
                     made with `exo image --chain-loader`, and wired TX to RX, RX to TX, GND \
                     to GND?",
                    timeout.as_secs()
                );
            }
            if let Some(byte) = self.link.recv(left)? {
                self.text(byte);
                if byte == b'\n' && self.lines.last().is_some_and(|l| l == READY) {
                    return Ok(());
                }
            }
        }
    }

    /// The loader's answer to the frame with sequence byte `frame` (just sent): a control
    /// byte, with its text before. An `ACK` of another frame (a late answer to a frame sent
    /// twice) is passed over.
    fn answer(&mut self, frame: u8) -> anyhow::Result<Answer> {
        let deadline = Instant::now() + self.answer_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(byte) = self.link.recv(left)? else {
                return Ok(Answer::Silence);
            };
            match byte {
                ACK => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match self.link.recv(left)? {
                        Some(acknowledged) if acknowledged == frame => return Ok(Answer::Ack),
                        Some(_) => {}
                        None => return Ok(Answer::Silence),
                    }
                }
                NAK => return Ok(Answer::Nak),
                CANCEL => return Ok(Answer::Cancel),
                other => self.text(other),
            }
        }
    }

    /// The loader's last line, for an error.
    fn last_words(&self) -> String {
        self.lines
            .iter()
            .rev()
            .find(|l| l.starts_with(LINE_PREFIX))
            .cloned()
            .unwrap_or_else(|| "(it said nothing)".to_owned())
    }

    /// Sends `frame` (sequence byte `number`) until it is acknowledged ([`HOST_TRIES`] at
    /// most).
    fn frame(&mut self, frame: &[u8], number: u8, what: &str) -> anyhow::Result<()> {
        for _ in 0..HOST_TRIES {
            self.link.send(frame)?;
            match self.answer(number)? {
                Answer::Ack => return Ok(()),
                // The loader answers as soon as it sees the damage; the rest of the frame
                // is still on the line, and it waits for the line to go quiet.
                Answer::Nak => thread::sleep(self.quiet + self.byte_time * frame.len() as u32),
                // The last frame's ACK was lost, but the loader's line before it came:
                // it has started the image and will answer nothing more.
                Answer::Silence if self.lines.iter().any(|l| l.starts_with(STARTING)) => {
                    return Ok(());
                }
                Answer::Silence => (self.log)(&format!(
                    "exo run: no answer to {what} within {} ms: sending it again",
                    self.answer_timeout.as_millis()
                )),
                Answer::Cancel => bail!(
                    "the chain loader refused the image at {what}: {}",
                    self.last_words()
                ),
            }
        }
        bail!(
            "the chain loader did not take {what} in {HOST_TRIES} tries; its last words: {}",
            self.last_words()
        )
    }

    /// Sends `image` (after [`Sender::wait_ready`]); returns once the loader has checked
    /// it whole and said it starts it.
    pub fn send(&mut self, image: &[u8]) -> anyhow::Result<()> {
        let header = Header::of(image);
        if header.length as usize != image.len() {
            bail!("the image of {} bytes is too large to send", image.len());
        }
        self.frame(&header.encode(), sequence(None), "the header")?;
        let count = chunk_count(header.length);
        let mut frame = [0; exo_loader::CHUNK + CHUNK_OVERHEAD];
        let mut shown = 0;
        for index in 0..count {
            let data = &image[chunk_range(header.length, index)];
            let length = encode_chunk(index, data, &mut frame);
            let what = format!("chunk {index} of {count}");
            self.frame(&frame[..length], sequence(Some(index)), &what)?;
            let percent = (index + 1) * 100 / count;
            if percent >= shown + 10 {
                shown = percent - percent % 10;
                (self.log)(&format!("exo run: sent {shown}%"));
            }
        }
        if !self.lines.iter().any(|l| l.starts_with(STARTING)) {
            bail!(
                "the chain loader acknowledged the image without saying it starts it; its last \
                 words: {}",
                self.last_words()
            );
        }
        Ok(())
    }
}

/// Refuses `exo run --serial` for a system of another board than the Pi 4 (before anything
/// is built).
pub fn check_board(system: &System) -> anyhow::Result<()> {
    if system.board.name != super::BOARD {
        bail!(
            "exo run --serial sends the image to the chain loader on a Raspberry Pi 4: give \
             --board {} (the configuration's board is `{}`)",
            super::BOARD,
            system.board.name
        );
    }
    Ok(())
}

/// Sends `image` to the chain loader on `options.device`, then reads the console until the
/// kernel's power-off line or the timeout, and returns the outcome as [`crate::qemu::run`]
/// would.
pub fn run(system: &System, image: &Path, options: &SerialOptions) -> anyhow::Result<RunOutcome> {
    let bytes = std::fs::read(image).with_context(|| format!("cannot read {}", image.display()))?;
    let mut tty = Tty::open(&options.device, options.baud)?;
    let start = Instant::now();
    let echo = options.echo;
    let mut log = |line: &str| {
        if echo {
            eprintln!("{line}");
        }
    };
    let mut sender = Sender::new(&mut tty, &mut log).baud(options.baud);
    let left = options.timeout.min(READY_TIMEOUT);
    sender.wait_ready(left)?;
    if echo {
        eprintln!(
            "exo run: sending {} ({} bytes) over {} at {} baud",
            image.display(),
            bytes.len(),
            options.device.display(),
            options.baud
        );
    }
    let sending = Instant::now();
    sender.send(&bytes)?;
    if echo {
        eprintln!("exo run: sent in {:.1} s", sending.elapsed().as_secs_f64());
    }
    let leftover = std::mem::take(&mut sender.line);
    let loader_lines = std::mem::take(&mut sender.lines);
    drop(sender);

    // The outcome's lines start with the loader's, then the console's.
    let mut outcome = RunOutcome::new(system.partitions.iter().map(|p| p.name.clone()).collect());
    for line in &loader_lines {
        outcome.observe(line);
    }
    let mut line = leftover;
    let mut deadline = start + options.timeout;
    let end = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break if outcome.powered_off {
                RunEnd::Exited(Some(0))
            } else {
                RunEnd::TimedOut(options.timeout)
            };
        }
        let byte = match tty.recv(left.min(Duration::from_millis(100))) {
            Ok(Some(byte)) => byte,
            Ok(None) => continue,
            // A board that powered off may take its line with it (QEMU closes its pty).
            Err(_) if outcome.powered_off => break RunEnd::Exited(Some(0)),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "reading the console on {} after the transfer",
                        options.device.display()
                    )
                });
            }
        };
        if byte != b'\n' {
            line.push(byte);
            continue;
        }
        let text = String::from_utf8_lossy(&line).into_owned();
        line.clear();
        let text = text.trim_end_matches('\r');
        if echo {
            println!("{text}");
        }
        let was_off = outcome.powered_off;
        outcome.observe(text);
        if outcome.powered_off && !was_off {
            deadline = deadline.min(Instant::now() + POWER_OFF_GRACE);
        }
    };
    outcome.end = end;
    Ok(outcome)
}

#[cfg(test)]
mod tests;
