//! Isolation scenarios that need several partitions acting together: what one grants,
//! binds, unbinds or frees must never give another a way into a third's memory.

use super::*;

/// Three partitions: a holder, a grantee colluding with it, and a bystander whose memory
/// the pair is after.
fn three() -> K {
    build(
        512,
        &[
            Config::new("holder", 32, 64),
            Config::new("grantee", 32, 64),
            Config::new("bystander", 32, 64),
        ],
    )
}

/// The grantee binds a granted frame at the IPA where its holder binds it, then unbinds
/// it. That must not clear the holder's own binding record: with it cleared, the holder
/// could free a frame still mapped read-write in its stage 2, and the next allocation
/// would hand the bystander a frame the holder can read and write.
#[test]
fn a_grantee_unbinding_at_the_holders_ipa_leaves_the_holders_binding() {
    let mut k = three();
    let f = alloc(&mut k, 0, 1)[0];
    assert_eq!(result(&mut k, 0, EXO_BIND, &[f.raw(), HEAP, rw()]), Ok(0));
    assert_eq!(result(&mut k, 0, EXO_GRANT, &[f.raw(), 1, rw()]), Ok(0));
    assert_eq!(result(&mut k, 1, EXO_BIND, &[f.raw(), HEAP, rw()]), Ok(0));
    k.self_check().unwrap();

    assert_eq!(result(&mut k, 1, EXO_UNBIND, &[HEAP]), Ok(f.raw()));
    k.self_check().unwrap();
    assert_eq!(k.bound.get(f), Some(Ipa::new(HEAP)), "the holder's record");
    assert_eq!(k.translate(0, Ipa::new(HEAP)).map(|m| m.0), Some(f));
    assert_eq!(k.translate(1, Ipa::new(HEAP)), None);

    // The holder cannot free what it still maps; the grantee may bind again.
    refused(&mut k, 0, EXO_FRAME_FREE, &[f.raw()], Error::Busy);
    assert_eq!(result(&mut k, 1, EXO_BIND, &[f.raw(), HEAP, rw()]), Ok(0));
    k.self_check().unwrap();

    // Only after both unbind may it be freed, and then nobody maps it.
    assert_eq!(result(&mut k, 1, EXO_UNBIND, &[HEAP]), Ok(f.raw()));
    assert_eq!(result(&mut k, 0, EXO_UNBIND, &[HEAP]), Ok(f.raw()));
    assert_eq!(result(&mut k, 0, EXO_FRAME_FREE, &[f.raw()]), Ok(0));
    assert_eq!(
        result(&mut k, 2, EXO_FRAME_ALLOC_AT, &[f.raw()]),
        Ok(f.raw())
    );
    for p in 0..2 {
        assert!(
            mappings(&mut k, p).iter().all(|m| m.phys != f),
            "p{p} still maps the bystander's new frame"
        );
    }
    k.self_check().unwrap();
}

/// The same collision the other way round: the holder unbinds at the IPA where the
/// grantee binds the frame. The grantee's record must survive, and the holder may free
/// the frame only by withdrawing the grant (which unmaps it in the grantee).
#[test]
fn a_holder_unbinding_at_the_grantees_ipa_leaves_the_grant_bound() {
    let mut k = three();
    let f = alloc(&mut k, 0, 1)[0];
    assert_eq!(result(&mut k, 0, EXO_BIND, &[f.raw(), HEAP, rw()]), Ok(0));
    assert_eq!(result(&mut k, 0, EXO_GRANT, &[f.raw(), 1, rw()]), Ok(0));
    assert_eq!(result(&mut k, 1, EXO_BIND, &[f.raw(), HEAP, rw()]), Ok(0));
    assert_eq!(result(&mut k, 0, EXO_UNBIND, &[HEAP]), Ok(f.raw()));
    k.self_check().unwrap();
    let grant = k.grants.iter().map(|(_, g)| *g).next().unwrap();
    assert_eq!(grant.bound_at, Some(Ipa::new(HEAP)));
    assert_eq!(result(&mut k, 0, EXO_FRAME_FREE, &[f.raw()]), Ok(0));
    assert_eq!(
        k.translate(1, Ipa::new(HEAP)),
        None,
        "freeing withdrew the grant"
    );
    k.self_check().unwrap();
}

/// Where a device's MMIO (here a UART's page) is bound in the partition that owns it:
/// right after its boot RAM, so a buffer can run from RAM into it.
const DEVICE_IPA: u64 = DEFAULT_RAM_BASE.raw() + BOOT_PAGES * PAGE_SIZE;

/// No call takes a buffer in device memory, even one the caller owns and may write: the
/// kernel's copies would read and write device registers from EL2.
#[test]
fn a_buffer_in_device_memory_is_refused() {
    let mut owner = Config::new("owner", 32, 0);
    owner.devices = &[(0x0900_0000, DEVICE_IPA, 1)];
    let mut k = build(256, &[owner, Config::new("other", 32, 0)]);
    let (pa, attrs) = k.translate(0, Ipa::new(DEVICE_IPA)).expect("device bound");
    assert_eq!((pa.raw(), attrs.kind), (0x0900_0000, MemoryKind::Device));
    assert!(attrs.read && attrs.write);
    refused(
        &mut k,
        0,
        EXO_FRAME_ALLOC,
        &[1, DEVICE_IPA],
        Error::BadAddress,
    );
    refused(
        &mut k,
        0,
        EXO_CONSOLE_WRITE,
        &[DEVICE_IPA, 8],
        Error::BadAddress,
    );
    // A buffer that starts in RAM and runs into the device page is refused whole.
    refused(
        &mut k,
        0,
        EXO_CONSOLE_WRITE,
        &[DEVICE_IPA - 4, 8],
        Error::BadAddress,
    );
    // The same calls with a RAM buffer work.
    assert_eq!(result(&mut k, 0, EXO_FRAME_ALLOC, &[1, BUFFER]), Ok(1));
}
