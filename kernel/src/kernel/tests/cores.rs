//! Partitions pinned to cores: each core schedules from its own time-slice vector, a core
//! with one partition alone is unsliced, calls and donations stay on their core, the
//! machine powers off only once every core's partitions are done, and a partition ended
//! from another core while it runs there is torn down by its own core.

use super::*;

/// Core `index`.
fn core(index: usize) -> CoreId {
    CoreId::new(index).unwrap()
}

/// Partitions `p0`, `p1`, … pinned to `cores`, with per-core time-slice `schedules`.
fn pinned(cores: &[u32], schedules: &[&[u8]]) -> K {
    const NAMES: [&str; 4] = ["p0", "p1", "p2", "p3"];
    let configs: Vec<Config> = cores
        .iter()
        .zip(NAMES)
        .map(|(&core, name)| Config {
            core,
            talks_to: 0b1111,
            ..Config::new(name, 32, 0)
        })
        .collect();
    let system = SystemSpec {
        schedules,
        ..SystemSpec::default()
    };
    let (mut k, bytes) = unloaded_with_system(1024, &configs, &system);
    k.load(&Package::parse(&bytes).unwrap()).unwrap();
    k.self_check().unwrap();
    k
}

/// The partition core `index` runs after its time slice ends.
fn next_on(k: &mut K, index: usize) -> PartitionId {
    assert_eq!(k.enter(core(index)), None);
    k.preempt();
    k.current()
}

#[test]
fn each_core_schedules_only_from_its_own_vector() {
    // p0 and p1 on core 0 (one slot each, the default); p2 and p3 on core 1, whose vector
    // is [p3, p2, p3].
    let mut k = pinned(&[0, 0, 1, 1], &[&[], &[3, 2, 3]]);
    assert_eq!(k.first_on(core(0)), Some(pid(0)));
    assert_eq!(k.first_on(core(1)), Some(pid(3)));
    assert_eq!(k.first_on(core(2)), None);
    let (mut zero, mut one) = (Vec::new(), Vec::new());
    for _ in 0..6 {
        zero.push(next_on(&mut k, 0).index());
        one.push(next_on(&mut k, 1).index());
    }
    assert_eq!(zero, [1, 0, 1, 0, 1, 0]);
    assert_eq!(one, [2, 3, 3, 2, 3, 3]);
    // A core whose partitions have all ended runs none of another core's.
    call(&mut k, 2, EXO_EXIT, &[0]);
    let (_, step) = call(&mut k, 3, EXO_EXIT, &[0]);
    assert_eq!(step, Step::Idle(None), "core 0's partitions still run");
    assert_eq!(next_on(&mut k, 0), pid(1));
    k.self_check().unwrap();
}

#[test]
fn a_partition_alone_on_its_core_is_unsliced() {
    let mut k = pinned(&[0, 0, 1, 2], &[]);
    let slice = k.slice_ticks();
    for (index, tick) in [(0, Some(slice)), (1, None), (2, None)] {
        assert_eq!(k.enter(core(index)), None);
        assert_eq!(k.tick(), tick, "core {index}");
    }
    // A vector that names one partition several times leaves it alone; one left out of
    // the vector (it runs on time donated to it) still shares the core.
    let mut k = pinned(&[0, 1], &[&[0], &[1, 1]]);
    assert_eq!(k.enter(core(1)), None);
    assert_eq!(k.tick(), None);
    let mut k = pinned(&[0, 1, 1], &[&[0], &[1, 1]]);
    assert_eq!(k.enter(core(1)), None);
    assert_eq!(k.tick(), Some(slice), "two partitions share core 1");
    assert_eq!(k.enter(core(0)), None);
    assert_eq!(k.tick(), None);
    // Every partition on core 0: today's tick, even for one alone.
    let k = pinned(&[0], &[]);
    assert_eq!(k.tick(), Some(slice));
}

#[test]
fn power_off_waits_for_every_cores_partitions() {
    let mut k = pinned(&[0, 1], &[]);
    let (_, step) = call(&mut k, 0, EXO_EXIT, &[0]);
    assert_eq!(step, Step::Idle(None), "p1 still runs on core 1");
    let (_, step) = call(&mut k, 1, EXO_EXIT, &[0]);
    assert_eq!(step, Step::PowerOff);
    assert!(k.report());
}

#[test]
fn calls_across_cores_wake_the_callee_on_its_own_core() {
    let mut k = pinned(&[0, 1], &[]);
    let (_, step) = call(&mut k, 1, EXO_WAIT, &[]);
    assert_eq!(step, Step::Idle(None), "p1 waits; p0 runs elsewhere");
    // No direct switch to a partition of another core: p1 takes the call on core 1.
    let (_, step) = call(&mut k, 0, EXO_CALL, &[1, 7, 8]);
    assert_eq!(
        step,
        Step::Idle(None),
        "p0 waits for its reply; p1 runs elsewhere"
    );
    assert_eq!(state(&k, 1), State::Runnable);
    assert_eq!(k.enter(core(1)), None);
    assert_eq!(k.schedule(), Step::Resume);
    assert_eq!(k.current(), pid(1));
    assert_eq!(k.regs_mut(pid(1)).unwrap().x[..3], [0, 7, 8]);
    let (_, step) = call(&mut k, 1, EXO_REPLY_WAIT, &[9]);
    assert_eq!(step, Step::Idle(None), "the reply goes to core 0");
    assert_eq!(k.enter(core(0)), None);
    assert_eq!(k.schedule(), Step::Resume);
    assert_eq!(k.regs_mut(pid(0)).unwrap().x[..2], [0, 9]);
    // A time slice of core 0 is no use to a partition of core 1.
    assert_eq!(
        result(&mut k, 0, EXO_DONATE, &[1]),
        err(Error::InvalidParameter)
    );
    k.self_check().unwrap();
}

#[test]
fn an_interrupt_follows_its_owner_to_its_core() {
    let mut dev = Config::new("dev", 32, 0);
    dev.interrupts = &[40];
    dev.core = 2;
    let mut k = build(512, &[Config::new("zero", 32, 0), dev]);
    assert_eq!(result(&mut k, 1, EXO_IRQ_ENABLE, &[40]), Ok(0));
    assert_eq!(
        result(&mut k, 1, EXO_IRQ_SET_TARGET, &[40, 0]),
        err(Error::InvalidParameter)
    );
    assert_eq!(result(&mut k, 1, EXO_IRQ_SET_TARGET, &[40, 2]), Ok(0));
    assert_eq!(
        k.platform.spi_log,
        vec![(40, SpiOp::Enable), (40, SpiOp::Target(core(2)))]
    );
}

#[test]
fn a_partition_ended_from_another_core_is_torn_down_by_its_own() {
    // The borrower `a` runs alone on core 1; the claimant `b` on core 0.
    let a = Config {
        core: 1,
        max_aborts: 0,
        ..Config::new("a", 32, 400)
    };
    let mut k = build(256, &[a, Config::new("b", 64, 0)]);
    let spare = free(&k) as u64;
    alloc(&mut k, 0, spare);
    let (_, step) = call(&mut k, 1, EXO_FRAME_ALLOC, &[10, BUFFER]);
    assert_eq!(step, Step::Idle(None), "nobody on core 0 can comply");
    assert_eq!(state(&k, 1), State::Blocked);
    // The deadline passes while `a` runs on core 1; core 0's tick aborts the request.
    k.platform.now.set(ticks(5000));
    assert_eq!(k.enter(core(0)), None);
    assert_eq!(k.preempt(), Step::Resume, "b has its frames");
    assert_eq!(state(&k, 1), State::Runnable);
    assert_eq!(
        state(&k, 0),
        State::Finished(Outcome::Terminated { aborts: 1 })
    );
    // Core 1 may still be running `a`: its stage 2 and frames wait for core 1.
    assert!(k.partition(pid(0)).unwrap().stage2.is_some());
    assert!(held(&k, 0) > 0);
    k.self_check().unwrap();
    assert_eq!(k.enter(core(1)), Some(Step::Idle(None)));
    assert!(k.partition(pid(0)).unwrap().stage2.is_none());
    assert_eq!(held(&k, 0), 0);
    k.self_check().unwrap();
}
