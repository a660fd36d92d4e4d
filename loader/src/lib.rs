//! The serial chain-loading protocol, shared by the loader (`src/main.rs`, on the board)
//! and the host (`exo run --serial`, tools/exo/src/deploy/serial.rs).
//!
//! The loader boots from the card in place of the kernel and prints [`READY`] once a second
//! until an image starts. The host then sends, with no flow control assumed:
//!
//! ```text
//! header   "EXOIMG\x02\n"  length: u32 LE  crc32(image): u32 LE  crc32(the 16 bytes before): u32 LE
//! chunk i  i: u32 LE  image[i*CHUNK ..][..CHUNK]  crc32(i bytes + data): u32 LE    (i = 0, 1, ...)
//!      or  i | ZERO_CHUNK: u32 LE  crc32(those 4 bytes): u32 LE       (a chunk of zeros)
//! ```
//!
//! Most of a boot image is zeros (the kernel's `.bss`, page padding), which the zero frame
//! sends in 8 bytes instead of 1032.
//!
//! and after the header and after every chunk waits for the loader's answer: [`ACK`] and
//! the frame's [sequence byte](sequence) (go on), [`NAK`] (that frame was damaged or cut
//! short: send it again) or [`CANCEL`] (the
//! loader gave up and waits for a new header). Before a `NAK` or `CANCEL` the loader prints
//! a line starting [`LINE_PREFIX`] saying why, in words. A frame never exceeds
//! `CHUNK + 8` bytes, and nothing more is sent before the answer, so a UART with an 8-byte
//! FIFO and a polling loader is not overrun. After the last chunk the loader checks the
//! whole image's CRC-32 against the header's, prints [`STARTING`] and the sizes, sends
//! `ACK` and jumps to the image as the firmware would: at [`LOAD_ADDRESS`], `x0` = the
//! device tree.
//!
//! A lost or late `ACK` makes the host send the same frame again, and the loader may then
//! answer it twice: the sequence byte lets the host tell the second `ACK` from the next
//! frame's. The receiver reads a frame's
//! length from the frame's own index (not the chunk it expects), acknowledges a repeat of
//! the chunk it already has, and takes a repeated header (whose first four bytes no chunk
//! index can equal) as a new start. The host takes the [`STARTING`] line for a lost last
//! `ACK`.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use core::fmt;

/// Protocol version, in [`HEADER_MAGIC`] and [`READY`].
pub const PROTOCOL: u8 = 2;
/// What every line the loader prints starts with.
pub const LINE_PREFIX: &str = "exo-loader: ";
/// The line the loader prints, once a second, while it waits for a header.
pub const READY: &str = "exo-loader: ready for an image (protocol 2)";
/// What the loader's last line starts with before it jumps to the image.
pub const STARTING: &str = "exo-loader: starting the image";
/// First bytes of the header.
pub const HEADER_MAGIC: [u8; 8] = *b"EXOIMG\x02\n";
/// Bytes in the header.
pub const HEADER_LEN: usize = 20;
/// Image bytes per chunk (the last chunk may be shorter).
pub const CHUNK: usize = 1024;
/// Flag in a chunk frame's index word: the chunk is all zeros and its data is left out.
pub const ZERO_CHUNK: u32 = 1 << 31;
/// Bytes of a chunk frame around its data: index and CRC-32.
pub const CHUNK_OVERHEAD: usize = 8;
/// The frame arrived whole and checked: send the next. Followed by the frame's
/// [sequence byte](sequence).
pub const ACK: u8 = 0x06;
/// The frame was damaged or cut short: send it again.
pub const NAK: u8 = 0x15;
/// The loader gave up on this image (its line says why) and waits for a new header.
pub const CANCEL: u8 = 0x18;
/// Where the image goes and runs: RAM + the arm64 Image header's text_offset.
pub const LOAD_ADDRESS: u64 = 0x8_0000;
/// Milliseconds without a byte after which the loader drops a partly received frame and
/// answers `NAK` (the host waits longer, [`HOST_ANSWER_TIMEOUT_MS`], for an answer).
pub const FRAME_TIMEOUT_MS: u64 = 1000;
/// After a damaged frame the loader ignores the line until it has been quiet this many
/// milliseconds (the rest of the frame may still be arriving), and the host waits twice
/// as long before sending it again.
pub const QUIET_MS: u64 = 100;
/// Milliseconds the host waits for an answer to a frame before it sends it again.
pub const HOST_ANSWER_TIMEOUT_MS: u64 = 3000;
/// Times the host sends one frame before it gives up.
pub const HOST_TRIES: u32 = 8;

/// CRC-32 (IEEE 802.3, as zlib and `crc32(1)`), updated piece by piece.
#[derive(Clone, Copy, Debug)]
pub struct Crc32(u32);

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32 {
    /// Nothing hashed yet.
    pub const fn new() -> Self {
        Self(!0)
    }

    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u32::from(byte);
            for _ in 0..8 {
                let mask = (self.0 & 1).wrapping_neg();
                self.0 = (self.0 >> 1) ^ (0xEDB8_8320 & mask);
            }
        }
    }

    /// The checksum of everything added.
    pub const fn finish(self) -> u32 {
        !self.0
    }
}

/// CRC-32 of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = Crc32::new();
    crc.update(bytes);
    crc.finish()
}

/// What the header announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Image bytes.
    pub length: u32,
    /// CRC-32 of the image.
    pub crc: u32,
}

impl Header {
    /// The header for `image`.
    pub fn of(image: &[u8]) -> Self {
        Self {
            length: u32::try_from(image.len()).unwrap_or(u32::MAX),
            crc: crc32(image),
        }
    }

    /// Its bytes on the wire.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0; HEADER_LEN];
        out[..8].copy_from_slice(&HEADER_MAGIC);
        out[8..12].copy_from_slice(&self.length.to_le_bytes());
        out[12..16].copy_from_slice(&self.crc.to_le_bytes());
        let check = crc32(&out[..16]);
        out[16..].copy_from_slice(&check.to_le_bytes());
        out
    }
}

/// The byte after an `ACK`, naming what it acknowledges: 0 for the header, `index + 1`
/// (modulo 256) for chunk `index`. A late `ACK` is at most a frame behind, so a byte tells
/// it apart.
pub fn sequence(chunk: Option<u32>) -> u8 {
    chunk.map_or(0, |index| (index.wrapping_add(1) & 0xFF) as u8)
}

/// Number of chunks of an image of `length` bytes.
pub fn chunk_count(length: u32) -> u32 {
    length.div_ceil(CHUNK as u32)
}

/// The bytes of chunk `index` of an image of `length` bytes.
pub fn chunk_range(length: u32, index: u32) -> core::ops::Range<usize> {
    let start = (index as usize).saturating_mul(CHUNK).min(length as usize);
    start..(start + CHUNK).min(length as usize)
}

/// The frame of chunk `index` holding `data`, written into `out` (at least
/// `CHUNK + CHUNK_OVERHEAD` bytes); returns its length. A chunk of zeros is sent without
/// its data, flagged [`ZERO_CHUNK`].
pub fn encode_chunk(index: u32, data: &[u8], out: &mut [u8]) -> usize {
    let zero = data.iter().all(|&b| b == 0);
    let (word, data) = if zero {
        (index | ZERO_CHUNK, &[][..])
    } else {
        (index, data)
    };
    out[..4].copy_from_slice(&word.to_le_bytes());
    out[4..4 + data.len()].copy_from_slice(data);
    let crc = chunk_crc(word, data);
    out[4 + data.len()..8 + data.len()].copy_from_slice(&crc.to_le_bytes());
    8 + data.len()
}

/// The frame's checksum: CRC-32 of the index word's bytes, then the data.
pub fn chunk_crc(index: u32, data: &[u8]) -> u32 {
    let mut crc = Crc32::new();
    crc.update(&index.to_le_bytes());
    crc.update(data);
    crc.finish()
}

/// Data bytes in the chunk frame starting `frame` (its index word read): none for a chunk
/// of zeros (or an index past the image), else the chunk's length.
fn frame_data_len(length: u32, frame: &[u8]) -> usize {
    let word = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
    if word & ZERO_CHUNK != 0 {
        0
    } else {
        chunk_range(length, word).len()
    }
}

/// Why the loader answered `NAK` or `CANCEL`; displays as words for its line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The header's own checksum is wrong (a damaged header).
    HeaderChecksum,
    /// The image is empty.
    Empty,
    /// The image is larger than the room below the loader.
    TooLarge {
        /// Its length.
        length: u32,
        /// The room.
        room: usize,
    },
    /// A chunk's checksum is wrong.
    ChunkChecksum {
        /// The chunk expected.
        index: u32,
    },
    /// A chunk arrived whole but not the one expected.
    OutOfOrder {
        /// The chunk expected.
        expected: u32,
        /// The chunk received.
        got: u32,
    },
    /// Nothing arrived for [`FRAME_TIMEOUT_MS`] in the middle of a frame.
    Stalled {
        /// Bytes of the frame received.
        received: usize,
    },
    /// Every chunk checked, but the whole image's CRC-32 is not the header's.
    ImageChecksum {
        /// The header's.
        expected: u32,
        /// The received image's.
        got: u32,
    },
}

impl Refusal {
    /// Whether the loader gave up on the image (`CANCEL`) rather than asking for the frame
    /// again (`NAK`).
    pub fn cancels(&self) -> bool {
        !matches!(
            self,
            Refusal::ChunkChecksum { .. } | Refusal::Stalled { .. }
        )
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Refusal::HeaderChecksum => write!(
                f,
                "the header's checksum is wrong: it was damaged on the line"
            ),
            Refusal::Empty => write!(f, "the image is empty"),
            Refusal::TooLarge { length, room } => write!(
                f,
                "the image of {length} bytes is larger than the {room} bytes below the loader"
            ),
            Refusal::ChunkChecksum { index } => {
                write!(f, "chunk {index} arrived damaged (checksum mismatch)")
            }
            Refusal::OutOfOrder { expected, got } => {
                write!(f, "chunk {got} arrived where chunk {expected} was expected")
            }
            Refusal::Stalled { received } => write!(
                f,
                "the line went quiet {FRAME_TIMEOUT_MS} ms into a frame ({received} bytes \
                 received): bytes were lost"
            ),
            Refusal::ImageChecksum { expected, got } => write!(
                f,
                "the image's CRC-32 is {got:#010x} but the header says {expected:#010x}: the \
                 transfer is corrupt"
            ),
        }
    }
}

/// What the loader answers after a byte or a timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `ACK`: the header or a chunk was accepted.
    Ack,
    /// `NAK` with why (see [`Refusal::cancels`]) or `CANCEL`.
    Refused(Refusal),
    /// The whole image arrived and checked: `ACK`, then start it.
    Done(Header),
}

impl Answer {
    /// The byte the loader sends for it.
    pub fn byte(&self) -> u8 {
        match self {
            Answer::Ack | Answer::Done(_) => ACK,
            Answer::Refused(why) if why.cancels() => CANCEL,
            Answer::Refused(_) => NAK,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// Looking for [`HEADER_MAGIC`]; this many of its bytes matched.
    Hunting(usize),
    /// Reading the header; this many bytes in.
    Header(usize),
    /// Reading chunk frames; `expected` is the next chunk, `filled` the frame's bytes in.
    Chunks {
        header: Header,
        expected: u32,
        filled: usize,
    },
}

/// The loader's side: fed one byte at a time, writes the image into `dest` (the memory
/// from [`LOAD_ADDRESS`] up) and says what to answer.
pub struct Receiver<'a> {
    dest: &'a mut [u8],
    state: State,
    frame: [u8; CHUNK + CHUNK_OVERHEAD],
    draining: bool,
    acknowledged: u8,
}

impl<'a> Receiver<'a> {
    /// A receiver writing into `dest`, waiting for a header.
    pub fn new(dest: &'a mut [u8]) -> Self {
        Self {
            dest,
            state: State::Hunting(0),
            frame: [0; CHUNK + CHUNK_OVERHEAD],
            draining: false,
            acknowledged: 0,
        }
    }

    /// The [sequence byte](sequence) of the frame the last [`Answer::Ack`] or
    /// [`Answer::Done`] acknowledges, to send after the `ACK`.
    pub fn acknowledged(&self) -> u8 {
        self.acknowledged
    }

    /// Whether it ignores the line until [`QUIET_MS`] pass without a byte (after a damaged
    /// frame); the loader then calls [`Receiver::quiet`].
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// The line has been quiet for [`QUIET_MS`]: take frames again.
    pub fn quiet(&mut self) {
        self.draining = false;
    }

    /// Whether it is between images, looking for a header (the loader prints [`READY`]
    /// only then).
    pub fn is_waiting(&self) -> bool {
        matches!(self.state, State::Hunting(0))
    }

    /// The received image, once [`Answer::Done`] has been given.
    pub fn image(&self, header: &Header) -> &[u8] {
        &self.dest[..header.length as usize]
    }

    /// Takes one byte from the line.
    pub fn feed(&mut self, byte: u8) -> Option<Answer> {
        if self.draining {
            return None;
        }
        match self.state {
            State::Hunting(matched) => {
                let matched = if byte == HEADER_MAGIC[matched] {
                    matched + 1
                } else {
                    usize::from(byte == HEADER_MAGIC[0])
                };
                self.frame[..matched].copy_from_slice(&HEADER_MAGIC[..matched]);
                self.state = if matched == HEADER_MAGIC.len() {
                    State::Header(matched)
                } else {
                    State::Hunting(matched)
                };
                None
            }
            State::Header(filled) => {
                self.frame[filled] = byte;
                if filled + 1 < HEADER_LEN {
                    self.state = State::Header(filled + 1);
                    return None;
                }
                Some(self.header())
            }
            State::Chunks {
                header,
                expected,
                filled,
            } => {
                self.frame[filled] = byte;
                if filled + 1 == 4 && self.frame[..4] == HEADER_MAGIC[..4] {
                    // No chunk has this index: the host sent the header again (our ACK
                    // of it was lost, or it starts over).
                    self.state = State::Hunting(4);
                    return None;
                }
                // A frame's length follows from its own index, not the one expected: a
                // repeated full chunk before a short last one is read whole.
                let data = if filled < 3 {
                    CHUNK
                } else {
                    frame_data_len(header.length, &self.frame)
                };
                if filled + 1 < data + CHUNK_OVERHEAD {
                    self.state = State::Chunks {
                        header,
                        expected,
                        filled: filled + 1,
                    };
                    return None;
                }
                Some(self.chunk(header, expected, data))
            }
        }
    }

    /// Nothing arrived for [`FRAME_TIMEOUT_MS`]: a partly received frame is dropped.
    pub fn timeout(&mut self) -> Option<Answer> {
        match self.state {
            State::Header(filled) => {
                self.state = State::Hunting(0);
                Some(Answer::Refused(Refusal::Stalled { received: filled }))
            }
            State::Chunks {
                header,
                expected,
                filled,
            } if filled > 0 => {
                self.state = State::Chunks {
                    header,
                    expected,
                    filled: 0,
                };
                Some(Answer::Refused(Refusal::Stalled { received: filled }))
            }
            _ => None,
        }
    }

    fn header(&mut self) -> Answer {
        self.state = State::Hunting(0);
        let word = |at: usize| {
            u32::from_le_bytes([
                self.frame[at],
                self.frame[at + 1],
                self.frame[at + 2],
                self.frame[at + 3],
            ])
        };
        let header = Header {
            length: word(8),
            crc: word(12),
        };
        if crc32(&self.frame[..16]) != word(16) {
            return Answer::Refused(Refusal::HeaderChecksum);
        }
        if header.length == 0 {
            return Answer::Refused(Refusal::Empty);
        }
        if header.length as usize > self.dest.len() {
            return Answer::Refused(Refusal::TooLarge {
                length: header.length,
                room: self.dest.len(),
            });
        }
        self.state = State::Chunks {
            header,
            expected: 0,
            filled: 0,
        };
        self.acknowledged = sequence(None);
        Answer::Ack
    }

    fn chunk(&mut self, header: Header, expected: u32, data: usize) -> Answer {
        self.state = State::Chunks {
            header,
            expected,
            filled: 0,
        };
        let frame = &self.frame[..data + CHUNK_OVERHEAD];
        let word = |at: usize| {
            u32::from_le_bytes([frame[at], frame[at + 1], frame[at + 2], frame[at + 3]])
        };
        let zero = word(0) & ZERO_CHUNK != 0;
        let index = word(0) & !ZERO_CHUNK;
        if crc32(&frame[..4 + data]) != word(4 + data) {
            self.draining = true;
            return Answer::Refused(Refusal::ChunkChecksum { index: expected });
        }
        if index + 1 == expected {
            // Our ACK was lost or late and the host sent it again.
            self.acknowledged = sequence(Some(index));
            return Answer::Ack;
        }
        if index != expected {
            self.state = State::Hunting(0);
            return Answer::Refused(Refusal::OutOfOrder {
                expected,
                got: index,
            });
        }
        self.acknowledged = sequence(Some(index));
        let range = chunk_range(header.length, index);
        if zero {
            self.dest[range].fill(0);
        } else {
            self.dest[range].copy_from_slice(&frame[4..4 + data]);
        }
        if index + 1 < chunk_count(header.length) {
            self.state = State::Chunks {
                header,
                expected: index + 1,
                filled: 0,
            };
            return Answer::Ack;
        }
        self.state = State::Hunting(0);
        let got = crc32(&self.dest[..header.length as usize]);
        if got != header.crc {
            return Answer::Refused(Refusal::ImageChecksum {
                expected: header.crc,
                got,
            });
        }
        Answer::Done(header)
    }
}

#[cfg(test)]
mod tests;
