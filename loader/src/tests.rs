//! The protocol on the host: framing, checksums, and a receiver fed damaged, lost and
//! repeated frames.

use super::*;

/// Feeds `bytes` and collects the answers.
fn feed(receiver: &mut Receiver<'_>, bytes: &[u8]) -> Vec<Answer> {
    bytes.iter().filter_map(|&b| receiver.feed(b)).collect()
}

fn frame(image: &[u8], index: u32) -> Vec<u8> {
    let data = &image[chunk_range(image.len() as u32, index)];
    let mut out = vec![0; CHUNK + CHUNK_OVERHEAD];
    let length = encode_chunk(index, data, &mut out);
    out.truncate(length);
    out
}

fn image(length: usize) -> Vec<u8> {
    (0..length).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn crc32_is_the_ieee_one() {
    assert_eq!(crc32(b""), 0);
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    let mut crc = Crc32::new();
    crc.update(b"1234");
    crc.update(b"56789");
    assert_eq!(crc.finish(), 0xCBF4_3926);
}

#[test]
fn the_header_carries_length_and_checksum() {
    let header = Header::of(b"123456789");
    let bytes = header.encode();
    assert_eq!(&bytes[..8], b"EXOIMG\x02\n");
    assert_eq!(&bytes[8..12], &9u32.to_le_bytes());
    assert_eq!(&bytes[12..16], &0xCBF4_3926u32.to_le_bytes());
    assert_eq!(&bytes[16..], &crc32(&bytes[..16]).to_le_bytes());
}

#[test]
fn chunks_cover_the_image_once() {
    assert_eq!(chunk_count(1), 1);
    assert_eq!(chunk_count(CHUNK as u32), 1);
    assert_eq!(chunk_count(CHUNK as u32 + 1), 2);
    assert_eq!(chunk_range(2500, 0), 0..1024);
    assert_eq!(chunk_range(2500, 2), 2048..2500);
}

#[test]
fn a_clean_transfer_is_done_with_the_image_in_place() {
    let sent = image(3 * CHUNK + 17);
    let mut memory = vec![0; 8 * CHUNK];
    let mut receiver = Receiver::new(&mut memory);
    assert!(receiver.is_waiting());
    // Console noise before the header is skipped; a false start of the magic too.
    assert!(feed(&mut receiver, b"\r\nEXOIM garbage EEXOIMG").is_empty());
    let header = Header::of(&sent);
    assert_eq!(feed(&mut receiver, &header.encode()), [Answer::Ack]);
    for index in 0..3 {
        assert_eq!(feed(&mut receiver, &frame(&sent, index)), [Answer::Ack]);
    }
    assert_eq!(
        feed(&mut receiver, &frame(&sent, 3)),
        [Answer::Done(header)]
    );
    assert_eq!(receiver.image(&header), &sent[..]);
    assert!(receiver.is_waiting());
    assert_eq!(Answer::Done(header).byte(), ACK);
}

#[test]
fn a_damaged_chunk_is_asked_for_again_and_a_repeated_one_acknowledged() {
    let sent = image(2 * CHUNK + 5);
    let mut memory = vec![0; 4 * CHUNK];
    let mut receiver = Receiver::new(&mut memory);
    feed(&mut receiver, &Header::of(&sent).encode());
    let mut damaged = frame(&sent, 0);
    damaged[100] ^= 0x20;
    let answers = feed(&mut receiver, &damaged);
    assert_eq!(
        answers,
        [Answer::Refused(Refusal::ChunkChecksum { index: 0 })]
    );
    assert_eq!(answers[0].byte(), NAK);
    // Until the line is quiet, bytes are the rest of the damaged frame.
    assert!(receiver.is_draining());
    assert!(feed(&mut receiver, b"stray").is_empty());
    receiver.quiet();
    assert_eq!(feed(&mut receiver, &frame(&sent, 0)), [Answer::Ack]);
    // The ACK was lost: the host sends chunk 0 again.
    assert_eq!(feed(&mut receiver, &frame(&sent, 0)), [Answer::Ack]);
    assert_eq!(feed(&mut receiver, &frame(&sent, 1)), [Answer::Ack]);
    // A lost byte: the frame stalls, and is dropped at the timeout.
    let short = frame(&sent, 2);
    assert!(feed(&mut receiver, &short[..short.len() - 1]).is_empty());
    let answer = receiver.timeout();
    assert_eq!(
        answer,
        Some(Answer::Refused(Refusal::Stalled { received: 12 }))
    );
    assert_eq!(answer.unwrap().byte(), NAK);
    let header = Header::of(&sent);
    assert_eq!(feed(&mut receiver, &short), [Answer::Done(header)]);
    assert_eq!(receiver.image(&header), &sent[..]);
}

#[test]
fn a_corrupt_image_is_refused_in_words() {
    let sent = image(100);
    let mut memory = vec![0; CHUNK];
    let mut receiver = Receiver::new(&mut memory);
    // The host's image changed after the header was made: every chunk checks, the whole
    // does not.
    let mut header = Header::of(&sent);
    header.crc ^= 1;
    feed(&mut receiver, &header.encode());
    let answers = feed(&mut receiver, &frame(&sent, 0));
    let [Answer::Refused(why)] = answers[..] else {
        panic!("{answers:?}")
    };
    assert_eq!(Answer::Refused(why).byte(), CANCEL);
    assert_eq!(
        why.to_string(),
        format!(
            "the image's CRC-32 is {:#010x} but the header says {:#010x}: the transfer is \
             corrupt",
            crc32(&sent),
            header.crc
        )
    );
    assert!(receiver.is_waiting());
}

#[test]
fn bad_headers_are_refused_in_words() {
    let mut memory = vec![0; CHUNK];
    let mut receiver = Receiver::new(&mut memory);
    let mut bytes = Header::of(&[1; 10]).encode();
    bytes[9] ^= 1;
    assert_eq!(
        feed(&mut receiver, &bytes),
        [Answer::Refused(Refusal::HeaderChecksum)]
    );
    let big = Header {
        length: CHUNK as u32 + 1,
        crc: 0,
    };
    let answers = feed(&mut receiver, &big.encode());
    assert_eq!(
        answers[0].to_owned(),
        Answer::Refused(Refusal::TooLarge {
            length: 1025,
            room: CHUNK
        })
    );
    assert_eq!(answers[0].byte(), CANCEL);
    let empty = Header { length: 0, crc: 0 };
    assert_eq!(
        feed(&mut receiver, &empty.encode()),
        [Answer::Refused(Refusal::Empty)]
    );
    assert_eq!(
        Refusal::TooLarge {
            length: 1025,
            room: 1024
        }
        .to_string(),
        "the image of 1025 bytes is larger than the 1024 bytes below the loader"
    );
}

#[test]
fn a_chunk_of_zeros_is_eight_bytes_and_lands_as_zeros() {
    let mut sent = image(3 * CHUNK);
    sent[CHUNK..2 * CHUNK].fill(0);
    let zero = frame(&sent, 1);
    assert_eq!(zero.len(), 8);
    assert_eq!(zero[..4], (1 | ZERO_CHUNK).to_le_bytes());
    assert_eq!(frame(&sent, 0).len(), CHUNK + 8);
    // Memory left dirty by whatever ran before is cleared.
    let mut memory = vec![0xAA; 4 * CHUNK];
    let mut receiver = Receiver::new(&mut memory);
    let header = Header::of(&sent);
    feed(&mut receiver, &header.encode());
    assert_eq!(feed(&mut receiver, &frame(&sent, 0)), [Answer::Ack]);
    let mut damaged = zero.clone();
    damaged[5] ^= 1;
    assert_eq!(
        feed(&mut receiver, &damaged),
        [Answer::Refused(Refusal::ChunkChecksum { index: 1 })]
    );
    receiver.quiet();
    assert_eq!(feed(&mut receiver, &zero), [Answer::Ack]);
    assert_eq!(
        feed(&mut receiver, &frame(&sent, 2)),
        [Answer::Done(header)]
    );
    assert_eq!(receiver.image(&header), &sent[..]);
}

#[test]
fn a_lost_ack_before_a_short_last_chunk_is_answered_again() {
    // The last chunk is shorter than the others: a repeated full chunk must still be read
    // at its own length, not the expected (last) chunk's.
    let sent = image(3 * CHUNK + 100);
    let header = Header::of(&sent);
    let mut memory = vec![0; 8 * CHUNK];
    let mut receiver = Receiver::new(&mut memory);
    feed(&mut receiver, &header.encode());
    for index in 0..3 {
        assert_eq!(feed(&mut receiver, &frame(&sent, index)), [Answer::Ack]);
    }
    // The ACK of chunk 2 (the second-to-last) was lost: the host sends it again.
    assert_eq!(feed(&mut receiver, &frame(&sent, 2)), [Answer::Ack]);
    assert!(!receiver.is_draining());
    assert_eq!(
        feed(&mut receiver, &frame(&sent, 3)),
        [Answer::Done(header)]
    );
    assert_eq!(receiver.image(&header), &sent[..]);
}

#[test]
fn a_lost_ack_of_the_header_is_answered_again() {
    let sent = image(2 * CHUNK + 9);
    let header = Header::of(&sent);
    let mut memory = vec![0; 8 * CHUNK];
    let mut receiver = Receiver::new(&mut memory);
    assert_eq!(feed(&mut receiver, &header.encode()), [Answer::Ack]);
    // The ACK was lost: the host sends the header again, then the chunks.
    assert_eq!(feed(&mut receiver, &header.encode()), [Answer::Ack]);
    for index in 0..2 {
        assert_eq!(feed(&mut receiver, &frame(&sent, index)), [Answer::Ack]);
    }
    assert_eq!(
        feed(&mut receiver, &frame(&sent, 2)),
        [Answer::Done(header)]
    );
    assert_eq!(receiver.image(&header), &sent[..]);
}

#[test]
fn every_ack_names_the_frame_it_acknowledges() {
    assert_eq!(
        (sequence(None), sequence(Some(0)), sequence(Some(255))),
        (0, 1, 0)
    );
    let sent = image(2 * CHUNK + 1);
    let mut memory = vec![0; 4 * CHUNK];
    let mut receiver = Receiver::new(&mut memory);
    feed(&mut receiver, &Header::of(&sent).encode());
    assert_eq!(receiver.acknowledged(), sequence(None));
    assert_eq!(feed(&mut receiver, &frame(&sent, 0)), [Answer::Ack]);
    assert_eq!(receiver.acknowledged(), 1);
    assert_eq!(feed(&mut receiver, &frame(&sent, 1)), [Answer::Ack]);
    assert_eq!(receiver.acknowledged(), 2);
    // Chunk 1 again (its ACK was late): acknowledged again as chunk 1, not chunk 2.
    assert_eq!(feed(&mut receiver, &frame(&sent, 1)), [Answer::Ack]);
    assert_eq!(receiver.acknowledged(), 2);
    assert_eq!(
        feed(&mut receiver, &frame(&sent, 2)),
        [Answer::Done(Header::of(&sent))]
    );
    assert_eq!(receiver.acknowledged(), 3);
}
