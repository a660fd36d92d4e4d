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
    assert_eq!(k.translate(pid(0), Ipa::new(HEAP)).map(|m| m.0), Some(f));
    assert_eq!(k.translate(pid(1), Ipa::new(HEAP)), None);

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
        k.translate(pid(1), Ipa::new(HEAP)),
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
    let (pa, attrs) = k
        .translate(pid(0), Ipa::new(DEVICE_IPA))
        .expect("device bound");
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

/// The zeroes of a scrubbed frame reach memory before anyone can map the frame: on a
/// Cortex-A72 (no FEAT_S2FWB) a new owner that maps it non-cacheable, or runs with its MMU
/// off, would otherwise read the previous owner's data from DRAM. The recording fake sees
/// zero, clean, then map, on every path by which a frame changes hands.
#[test]
fn frames_changing_hands_are_zeroed_then_cleaned_then_mapped() {
    let mut k = two();
    k.platform.take_frame_log().unwrap();
    let scrubbed = |k: &mut K| k.platform.take_frame_log().expect("zero, clean, map");

    // Allocation, then a binding.
    let f = alloc(&mut k, 0, 1)[0];
    assert_eq!(result(&mut k, 0, EXO_BIND, &[f.raw(), HEAP, rw()]), Ok(0));
    assert_eq!(
        k.platform.frame_log[..2],
        [FrameEvent::Zero(f), FrameEvent::Clean(f)]
    );
    assert!(k.platform.frame_log.contains(&FrameEvent::Map(f)));
    assert_eq!(scrubbed(&mut k), [f]);

    // Allocation by name.
    let g = some_free(&k);
    assert_eq!(
        result(&mut k, 0, EXO_FRAME_ALLOC_AT, &[g.raw()]),
        Ok(g.raw())
    );
    assert_eq!(scrubbed(&mut k), [g]);

    // Free.
    junk(&mut k, g);
    assert_eq!(result(&mut k, 0, EXO_FRAME_FREE, &[g.raw()]), Ok(0));
    assert_eq!(scrubbed(&mut k), [g]);

    // The end of a partition: everything it held.
    let held_by_a: Vec<PhysAddr> = k.frames.owned_by(owner_of(&k, 0)).collect();
    call(&mut k, 0, EXO_EXIT, &[0]);
    let ended = scrubbed(&mut k);
    for frame in held_by_a {
        assert!(ended.contains(&frame), "{frame} left a without a clean");
        assert!(is_zero(&k, frame));
    }
}

/// The same for frames repossessed at a revocation deadline.
#[test]
fn repossessed_frames_are_zeroed_then_cleaned() {
    let (mut k, bound) = abort_scenario(1);
    for &frame in &bound {
        junk(&mut k, frame);
    }
    k.platform.take_frame_log().unwrap();
    let now = k.platform.now.get();
    k.platform.now.set(now + (1 << 40));
    k.run_as(pid(1));
    k.check_deadlines();
    let scrubbed = k.platform.take_frame_log().expect("zero, clean, map");
    let taken: Vec<PhysAddr> = bound
        .iter()
        .copied()
        .filter(|&f| k.frames.owner(f) != Some(owner_of(&k, 0)))
        .collect();
    assert!(!taken.is_empty(), "the abort took frames");
    for frame in taken {
        assert!(
            scrubbed.contains(&frame),
            "{frame} repossessed without a clean"
        );
    }
}

/// A set/way cache operation (trapped) cleans the caller's own bound memory by address,
/// once until it is next scheduled, and nobody else's.
#[test]
fn set_way_maintenance_cleans_only_the_callers_bound_memory_once_per_slice() {
    let mut k = three();
    let mine = alloc(&mut k, 0, 2);
    assert_eq!(
        result(&mut k, 0, EXO_BIND, &[mine[0].raw(), HEAP, rw()]),
        Ok(0)
    );
    let theirs = alloc(&mut k, 1, 1)[0];
    assert_eq!(
        result(&mut k, 1, EXO_BIND, &[theirs.raw(), HEAP, rw()]),
        Ok(0)
    );
    assert_eq!(
        result(&mut k, 1, EXO_GRANT, &[theirs.raw(), 0, rw()]),
        Ok(0)
    );
    assert_eq!(
        result(&mut k, 0, EXO_BIND, &[theirs.raw(), HEAP + PAGE_SIZE, rw()]),
        Ok(0)
    );
    k.platform.take_frame_log().unwrap();
    k.run_as(pid(0));
    assert_eq!(k.set_way_maintenance(), Step::Resume);
    let cleaned: Vec<PhysAddr> = k
        .platform
        .frame_log
        .iter()
        .filter_map(|e| match e {
            FrameEvent::Clean(f) => Some(*f),
            _ => None,
        })
        .collect();
    assert!(cleaned.contains(&mine[0]), "its bound frame");
    assert!(cleaned.contains(&theirs), "the grant it bound");
    assert!(
        !cleaned.contains(&mine[1]),
        "an unbound frame it cannot reach"
    );
    let boot = k.translate(pid(0), Ipa::new(BUFFER)).unwrap().0;
    assert!(cleaned.contains(&boot), "its boot memory");
    let others: Vec<PhysAddr> = k.frames.owned_by(owner_of(&k, 2)).collect();
    assert!(cleaned.iter().all(|f| !others.contains(f)), "nobody else's");
    k.platform.frame_log.clear();
    k.set_way_maintenance();
    assert!(k.platform.frame_log.is_empty(), "once until next scheduled");
    // Scheduled again (its next slot): the next set/way operation cleans again.
    for _ in 0..4 {
        k.schedule();
        if k.current() == pid(0) {
            break;
        }
    }
    assert_eq!(k.current(), pid(0));
    k.set_way_maintenance();
    assert!(!k.platform.frame_log.is_empty());
}

/// The self-check scans every frame and stage 2 with interrupts masked: only a partition
/// whose configuration grants it may ask, so no partition can keep the kernel busy in a
/// loop of them.
#[test]
fn only_a_partition_granted_it_may_run_the_self_check() {
    let mut checker = Config::new("checker", 32, 0);
    checker.self_check = true;
    let mut k = build(256, &[checker, Config::new("other", 32, 0)]);
    assert_eq!(result(&mut k, 0, EXO_SELF_CHECK, &[]), Ok(256));
    refused(&mut k, 1, EXO_SELF_CHECK, &[], Error::Denied);
}

/// A frame changes hands with one scrub, not two: frames repossessed at a deadline, or
/// released, reach the blocked claimant zeroed without being zeroed again.
#[test]
fn frames_reach_a_blocked_claimant_scrubbed_once() {
    let (mut k, _) = abort_scenario(1);
    k.platform.take_frame_log().unwrap();
    let now = k.platform.now.get();
    k.platform.now.set(now + (1 << 40));
    k.current = pid(1);
    k.check_deadlines();
    assert_ne!(state(&k, 1), State::Blocked, "the claimant got its frames");
    let got: Vec<PhysAddr> = k.frames.owned_by(owner_of(&k, 1)).collect();
    let zeroes = |f: PhysAddr| {
        k.platform
            .frame_log
            .iter()
            .filter(|e| **e == FrameEvent::Zero(f))
            .count()
    };
    let handed: Vec<PhysAddr> = got.into_iter().filter(|&f| zeroes(f) > 0).collect();
    assert_eq!(handed.len(), 10, "the ten repossessed frames reached b");
    for f in handed {
        assert_eq!(zeroes(f), 1, "{f} zeroed more than once on its way to b");
    }
}
