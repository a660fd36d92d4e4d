//! The host's side against the loader's own receiver (`exo_loader::Receiver`) over an
//! in-memory line that can damage or lose bytes.

use std::collections::VecDeque;

use exo_loader::{Answer as LoaderAnswer, Receiver as LoaderReceiver};

use super::*;

/// The loader, in memory: bytes sent are fed to its receiver; what it would print and
/// answer is queued for `recv`. `damage` flips a bit in the bytes sent at those offsets
/// (counted over everything sent); `lose` drops them; `lose_answers` drops the loader's
/// answers (its control bytes) with those numbers (counted from 0, the header's);
/// `late_answers` holds those back until the host sends again (after its answer timeout).
struct FakeLoader {
    receiver: LoaderReceiver<'static>,
    out: VecDeque<u8>,
    sent: usize,
    damage: Vec<usize>,
    lose: Vec<usize>,
    answers: usize,
    lose_answers: Vec<usize>,
    late_answers: Vec<usize>,
    held: Vec<u8>,
    started: bool,
}

impl FakeLoader {
    fn new(room: usize) -> Self {
        let memory = Box::leak(vec![0u8; room].into_boxed_slice());
        let mut out = VecDeque::new();
        out.extend(format!("noise\r\n{READY}\r\n").bytes());
        Self {
            receiver: LoaderReceiver::new(memory),
            out,
            sent: 0,
            damage: Vec::new(),
            lose: Vec::new(),
            answers: 0,
            lose_answers: Vec::new(),
            late_answers: Vec::new(),
            held: Vec::new(),
            started: false,
        }
    }

    fn answer(&mut self, answer: LoaderAnswer) {
        match answer {
            LoaderAnswer::Ack => {}
            LoaderAnswer::Refused(why) if why.cancels() => self
                .out
                .extend(format!("{LINE_PREFIX}error: {why}; waiting again\r\n").bytes()),
            LoaderAnswer::Refused(why) => self
                .out
                .extend(format!("{LINE_PREFIX}{why}: send it again\r\n").bytes()),
            LoaderAnswer::Done(header) => {
                self.started = true;
                self.out
                    .extend(format!("{STARTING}: {} bytes\r\n", header.length).bytes());
            }
        }
        let number = self.answers;
        self.answers += 1;
        if self.lose_answers.contains(&number) {
            return;
        }
        let mut bytes = vec![answer.byte()];
        if answer.byte() == exo_loader::ACK {
            bytes.push(self.receiver.acknowledged());
        }
        if self.late_answers.contains(&number) {
            self.held.extend(bytes);
        } else {
            self.out.extend(bytes);
        }
    }
}

impl Link for FakeLoader {
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.receiver.quiet(); // the host waited before sending again
        let held = std::mem::take(&mut self.held);
        self.out.extend(held); // a late answer arrives while the host sends again
        for &byte in bytes {
            let at = self.sent;
            self.sent += 1;
            if self.lose.contains(&at) {
                continue;
            }
            let byte = if self.damage.contains(&at) {
                byte ^ 4
            } else {
                byte
            };
            if let Some(answer) = self.receiver.feed(byte) {
                self.answer(answer);
            }
        }
        Ok(())
    }

    fn recv(&mut self, _timeout: Duration) -> std::io::Result<Option<u8>> {
        if self.out.is_empty() {
            // Silence on the line: the loader's frame timeout passes.
            if let Some(answer) = self.receiver.timeout() {
                self.answer(answer);
            }
        }
        Ok(self.out.pop_front())
    }
}

fn image(length: usize) -> Vec<u8> {
    (0..length).map(|i| (i * 13 + i / 256) as u8).collect()
}

/// Sends `image` through `loader`; returns the result, the log and the loader's lines.
fn transfer(loader: &mut FakeLoader, image: &[u8]) -> (anyhow::Result<()>, Vec<String>) {
    let mut log = Vec::new();
    let mut record = |line: &str| log.push(line.to_owned());
    let mut sender = Sender::new(loader, &mut record);
    sender.quiet = Duration::ZERO;
    sender.byte_time = Duration::ZERO;
    let result = sender
        .wait_ready(Duration::from_secs(1))
        .and_then(|()| sender.send(image));
    drop(sender);
    (result, log)
}

/// Offset of byte `at` of chunk `index` in everything sent (header first).
fn offset(index: usize, at: usize) -> usize {
    exo_loader::HEADER_LEN + index * (exo_loader::CHUNK + CHUNK_OVERHEAD) + at
}

#[test]
fn a_clean_transfer_lands_the_image() {
    let sent = image(5 * 1024 + 300);
    let mut loader = FakeLoader::new(1 << 20);
    let (result, log) = transfer(&mut loader, &sent);
    result.unwrap();
    assert!(loader.started);
    let header = Header::of(&sent);
    assert_eq!(loader.receiver.image(&header), &sent[..]);
    assert!(log.iter().any(|l| l == "exo run: sent 100%"), "{log:?}");
}

#[test]
fn damaged_and_lost_bytes_are_sent_again() {
    let sent = image(4 * 1024);
    let mut loader = FakeLoader::new(1 << 20);
    loader.damage = vec![offset(2, 500)];
    loader.lose = vec![offset(3, 7) + exo_loader::CHUNK + CHUNK_OVERHEAD];
    let (result, log) = transfer(&mut loader, &sent);
    result.unwrap();
    assert_eq!(loader.receiver.image(&Header::of(&sent)), &sent[..]);
    assert!(
        log.contains(
            &"exo-loader: chunk 2 arrived damaged (checksum mismatch): send it again".into()
        ),
        "{log:?}"
    );
    assert!(
        log.iter().any(|l| l.contains("the line went quiet")),
        "{log:?}"
    );
}

#[test]
fn a_line_that_keeps_damaging_a_chunk_fails_in_words() {
    let sent = image(3 * 1024);
    let mut loader = FakeLoader::new(1 << 20);
    let frame = exo_loader::CHUNK + CHUNK_OVERHEAD;
    // Chunk 1 is damaged on every try.
    loader.damage = (0..HOST_TRIES as usize)
        .map(|t| offset(1, 10) + t * frame)
        .collect();
    let (result, _) = transfer(&mut loader, &sent);
    let error = result.unwrap_err().to_string();
    assert_eq!(
        error,
        "the chain loader did not take chunk 1 of 3 in 8 tries; its last words: exo-loader: \
         chunk 1 arrived damaged (checksum mismatch): send it again"
    );
    assert!(!loader.started);
}

#[test]
fn an_image_too_large_for_the_board_is_refused_in_words() {
    let sent = image(3000);
    let mut loader = FakeLoader::new(2048);
    let (result, _) = transfer(&mut loader, &sent);
    assert_eq!(
        result.unwrap_err().to_string(),
        "the chain loader refused the image at the header: exo-loader: error: the image of \
         3000 bytes is larger than the 2048 bytes below the loader; waiting again"
    );
}

#[test]
fn no_loader_on_the_line_is_a_clear_error() {
    let mut loader = FakeLoader::new(1024);
    loader.out.clear();
    loader.out.extend(b"login: ");
    let (result, _) = transfer(&mut loader, &image(10));
    let error = result.unwrap_err().to_string();
    assert!(
        error.starts_with("no `exo-loader: ready for an image (protocol 2)` line within 1 s"),
        "{error}"
    );
}

/// Sends a 5-chunk image whose last chunk is short, losing the loader's answers numbered
/// `lost` (0 is the header's, 1 + i chunk i's); returns the log.
fn transfer_losing_answers(lost: &[usize]) -> Vec<String> {
    let sent = image(4 * 1024 + 300);
    let mut loader = FakeLoader::new(1 << 20);
    loader.lose_answers = lost.to_vec();
    let (result, log) = transfer(&mut loader, &sent);
    result.unwrap_or_else(|e| panic!("losing answers {lost:?}: {e:#}; log {log:?}"));
    assert!(loader.started);
    assert_eq!(loader.receiver.image(&Header::of(&sent)), &sent[..]);
    log
}

#[test]
fn a_lost_ack_of_the_second_to_last_chunk_does_not_stall_the_transfer() {
    let log = transfer_losing_answers(&[4]);
    assert!(
        log.contains(&"exo run: no answer to chunk 3 of 5 within 3000 ms: sending it again".into()),
        "{log:?}"
    );
}

#[test]
fn a_lost_ack_of_the_header_or_the_last_chunk_does_not_stall_the_transfer() {
    transfer_losing_answers(&[0]);
    // The loader has started the image; its line says so.
    transfer_losing_answers(&[5]);
    transfer_losing_answers(&[0, 1, 3, 4, 5]);
}

#[test]
fn a_late_ack_is_not_taken_for_the_next_chunks() {
    // The ACKs of chunk 0 and of chunk 3 (the second-to-last) arrive after the host has
    // sent the chunk again: the loader then acknowledges each twice, and the second ACK
    // must not count for the next chunk.
    let sent = image(4 * 1024 + 300);
    let mut loader = FakeLoader::new(1 << 20);
    loader.late_answers = vec![1, 4];
    let (result, log) = transfer(&mut loader, &sent);
    result.unwrap_or_else(|e| panic!("{e:#}; log {log:?}"));
    assert!(loader.started);
    assert_eq!(loader.receiver.image(&Header::of(&sent)), &sent[..]);
}
