//! Numbers users can trust: the benchmarks `scripts/bench` runs boot twice under QEMU
//! `-icount` and must agree to the tick, and measure what they claim to. A change that makes
//! a benchmark non-deterministic, or stops a guest reporting its metric, fails here rather
//! than in someone's paper. Every `guests/configs/bench-*.toml` is run (a new one without a
//! test fails [`every_benchmark_configuration_is_tested`]).

use std::time::Duration;

use exo_system_tests::{RevocationOutcome, RunOptions, workspace_root};
use exo_tool::bench;

/// Runs `exo bench` on `guests/configs/<name>` twice and returns its report, failing the
/// test with the report if it is not sound (a failed run, nothing measured, or runs that
/// disagree). Revocation sweeps run their `--quick` form.
fn bench_twice(name: &str) -> bench::Report {
    let root = workspace_root();
    let config = root.join("guests/configs").join(name);
    let config = bench::suite::config_to_boot(&root, &config, true)
        .unwrap_or_else(|e| panic!("cannot prepare the quick form of {name}: {e:#}"));
    let options = RunOptions {
        timeout: Duration::from_secs(600),
        echo: false,
        extra_qemu_args: bench::QEMU_ARGS.iter().map(|a| a.to_string()).collect(),
        ..RunOptions::default()
    };
    let _guard = exo_system_tests::boot_lock();
    exo_system_tests::announce(&config, None);
    let report = bench::run(&config, &options, 2)
        .unwrap_or_else(|e| panic!("exo bench {name} could not run: {e:#}"));
    assert!(
        report.is_sound(),
        "benchmark {name} is not sound:\n{report}"
    );
    report
}

/// The value of metric `name`, failing if the benchmark did not report it.
fn metric(report: &bench::Report, name: &str) -> u64 {
    report
        .metrics
        .iter()
        .find(|m| m.name == name)
        .map(|m| m.value)
        .unwrap_or_else(|| panic!("no metric `{name}` in:\n{report}"))
}

#[test]
fn kernel_latencies_repeat_to_the_tick() {
    let report = bench_twice("bench-latency.toml");
    let null = metric(&report, "null_hypercall_ticks");
    let switch = metric(&report, "yield_round_trip_ticks");
    assert!(null > 0 && switch > null, "implausible numbers:\n{report}");
}

#[test]
fn interrupt_latencies_repeat_to_the_tick() {
    let report = bench_twice("bench-interrupts.toml");
    let spi = metric(&report, "spi_raise_to_handler_ticks");
    let signal = metric(&report, "signal_raise_to_handler_ticks");
    // A physical SPI takes the hypercall, the physical interrupt at EL2 and the virtual one;
    // a signal skips the physical interrupt.
    assert!(spi > signal && signal > 0, "implausible numbers:\n{report}");
}

#[test]
fn ipc_round_trips_repeat_to_the_tick() {
    let report = bench_twice("bench-ipc.toml");
    let round_trip = metric(&report, "ipc_round_trip_ticks");
    assert!(round_trip > 0, "implausible numbers:\n{report}");
}

/// The borrower meets its request within its 2 s deadline; the hoarder is aborted no
/// sooner than its 20 ms deadline, and loses exactly what it was asked for.
#[test]
fn revocation_latencies_repeat_to_the_tick() {
    let report = bench_twice("bench-revocation.toml");
    let frequency = report
        .frequency
        .unwrap_or_else(|| panic!("no counter frequency in:\n{report}"));
    let first = |name: &str, outcome: RevocationOutcome| {
        report
            .revocations
            .iter()
            .find(|r| r.partition == name && r.outcome == outcome)
            .unwrap_or_else(|| panic!("no {outcome:?} revocation of {name} in:\n{report}"))
            .clone()
    };
    let met = first("borrower", RevocationOutcome::Met);
    let aborted = first("hoarder", RevocationOutcome::Aborted);
    assert!(
        met.released >= met.asked && met.ticks < 2 * frequency,
        "the borrower met its request late or short: {met:?}"
    );
    assert!(
        aborted.repossessed == aborted.asked && aborted.ticks >= frequency / 50,
        "the hoarder was aborted early or for the wrong count: {aborted:?}"
    );
}

/// The figures of docs/architecture.md's "Bounded kernel time": the self-check covers all
/// of RAM, `worst` holds nearly all of it, and its end (every frame scrubbed) is the
/// longest of the three, longer than a 512-frame allocation by far more than 100 times.
#[test]
fn worst_case_kernel_times_repeat_to_the_tick() {
    let report = bench_twice("bench-worstcase.toml");
    let frames = metric(&report, "self_check_frames");
    let held = metric(&report, "worst_held_frames");
    let alloc = metric(&report, "alloc_max_ticks");
    let exit = metric(&report, "exit_ticks");
    let check = metric(&report, "self_check_ticks");
    assert!(
        frames == 262_144 && held > 200_000 && held < frames,
        "worst did not hold nearly all of 1 GiB:\n{report}"
    );
    assert!(
        alloc > 0 && check > alloc && exit > 100 * alloc,
        "implausible numbers:\n{report}"
    );
}

/// Distributions of the null hypercall and of a stage-2 fault reflected to the library OS:
/// ordered statistics, and a fault costs more than a hypercall (it is one, and more).
#[test]
fn primitive_distributions_repeat_to_the_tick() {
    let report = bench_twice("bench-primitives.toml");
    for name in [
        "null_hypercall",
        "stage2_fault_to_handler",
        "stage2_fault_round_trip",
    ] {
        let stat = |s: &str| metric(&report, &format!("{name}_{s}_ticks"));
        let (min, median, p99, max) = (stat("min"), stat("median"), stat("p99"), stat("max"));
        assert!(
            0 < min && min <= median && median <= p99 && p99 <= max,
            "{name}: statistics out of order:\n{report}"
        );
    }
    assert!(
        metric(&report, "stage2_fault_round_trip_median_ticks")
            > metric(&report, "null_hypercall_median_ticks"),
        "implausible numbers:\n{report}"
    );
}

/// The revocation sweep of `name` (quick form): every point of the sweep measured, with
/// large holdings larger than small ones; returns the points as the suite reports them.
fn revocation_sweep(name: &str) -> Vec<bench::samples::Point> {
    let report = bench_twice(name);
    let results = bench::suite::collect("qemu-virt", true, &[(name.to_owned(), report)]);
    let points = results.configs[0].points.clone();
    let keys: Vec<(&str, u64)> = points
        .iter()
        .map(|p| (p.holdings.as_str(), p.frames))
        .collect();
    assert_eq!(
        keys,
        [
            ("large", 1),
            ("large", 16),
            ("large", 256),
            ("large", 4096),
            ("small", 1),
            ("small", 16),
            ("small", 256),
            ("small", 4096)
        ],
        "{name}: the sweep is incomplete: {points:#?}"
    );
    for p in &points {
        let sum: u64 = p.phases.iter().map(|ph| ph.stats.ticks.median).sum();
        assert!(
            p.requests >= 1 && p.total.ticks.min > 0 && sum > 0,
            "{name}: a claim was not revoked or not timed: {p:#?}"
        );
    }
    assert!(
        points[0].held > points[4].held,
        "{name}: small holdings are not smaller: {points:#?}"
    );
    points
}

/// Median ticks of phase `name` of `point`.
fn phase(point: &bench::samples::Point, name: &str) -> u64 {
    point
        .phases
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.stats.ticks.median)
        .unwrap_or_else(|| panic!("no phase {name} in {point:#?}"))
}

/// Cooperative revocation, one borrower: no claim waits for a deadline, and the
/// 4,096-frame claims complete.
#[test]
fn cooperative_revocation_sweep_repeats_to_the_tick() {
    let points = revocation_sweep("bench-revoke.toml");
    for p in &points {
        assert_eq!(
            phase(p, "deadline"),
            0,
            "a cooperative claim waited: {p:#?}"
        );
        assert!(phase(p, "release") > 0, "nothing was released: {p:#?}");
    }
}

/// Two cooperative borrowers share the requests.
#[test]
fn two_borrower_revocation_sweep_repeats_to_the_tick() {
    let points = revocation_sweep("bench-revoke-2.toml");
    assert!(
        points.iter().all(|p| phase(p, "deadline") == 0),
        "{points:#?}"
    );
    assert!(
        points.iter().any(|p| p.requests >= 2),
        "no claim was shared by both borrowers: {points:#?}"
    );
}

/// Four cooperative borrowers share the requests.
#[test]
fn four_borrower_revocation_sweep_repeats_to_the_tick() {
    let points = revocation_sweep("bench-revoke-4.toml");
    assert!(
        points.iter().all(|p| phase(p, "deadline") == 0),
        "{points:#?}"
    );
    assert!(
        points.iter().any(|p| p.requests >= 4),
        "no claim was shared by all four borrowers: {points:#?}"
    );
}

/// Frames shared by grant: the borrower gives back the frames it granted first, so the
/// kernel withdraws grants (and the grantee's bindings, which `revgrantee` checks it lost)
/// on every claim; nothing waits for a deadline.
#[test]
fn granted_frame_revocation_sweep_repeats_to_the_tick() {
    let points = revocation_sweep("bench-revoke-grant.toml");
    for p in &points {
        assert!(
            phase(p, "deadline") == 0 && phase(p, "release") > 0,
            "{p:#?}"
        );
    }
}

/// A borrower that releases half: every claim but the 1-frame ones (half of one frame is
/// none) releases something and waits for the 1 ms deadline for the rest.
#[test]
fn partial_compliance_sweep_repeats_to_the_tick() {
    let points = revocation_sweep("bench-revoke-partial.toml");
    for p in points.iter().filter(|p| p.frames > 1) {
        assert!(
            phase(p, "release") > 0 && phase(p, "deadline") > 0,
            "{p:#?}"
        );
    }
}

/// A borrower that refuses: every claim waits for the 1 ms deadline (62,500 ticks from the
/// request), then the kernel scrubs and hands the frames over.
#[test]
fn abort_sweep_repeats_to_the_tick() {
    let points = revocation_sweep("bench-revoke-abort.toml");
    for p in &points {
        assert!(
            p.total.ticks.min >= 62_500 && phase(p, "resume") > 0,
            "an abort came before its deadline or took no time: {p:#?}"
        );
    }
}

/// Every `guests/configs/bench-*.toml` has a test above: a new benchmark gets one too.
#[test]
fn every_benchmark_configuration_is_tested() {
    let tested = [
        "bench-interrupts.toml",
        "bench-ipc.toml",
        "bench-latency.toml",
        "bench-primitives.toml",
        "bench-revocation.toml",
        "bench-revoke-2.toml",
        "bench-revoke-4.toml",
        "bench-revoke-abort.toml",
        "bench-revoke-grant.toml",
        "bench-revoke-partial.toml",
        "bench-revoke.toml",
        "bench-worstcase.toml",
    ];
    let dir = workspace_root().join("guests/configs");
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("bench-") && name.ends_with(".toml"))
        .collect();
    found.sort();
    assert_eq!(
        found, tested,
        "benchmark configurations and their tests differ"
    );
}
