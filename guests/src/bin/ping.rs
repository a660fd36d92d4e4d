//! `ping`: a client for protected control transfer. It sends `pong` one message, checks that
//! calls outside its `talks_to` are `Denied` and calls to itself `UnknownPartition`, then
//! calls `pong` ten thousand times with distinct arguments and checks every word of every
//! reply against [`ping_pong::reply`]. Exits 1 at the first mismatch, printing it.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_guests::ping_pong;
use exo_libos::ipc::{self, PartitionId};
use exo_libos::mem::call::partition_lookup;
use exo_libos::{Error, ExitCode, Info, println, time};

exo_libos::entry!(main);

/// Round trips to make.
const ROUND_TRIPS: u64 = 10_000;

fn main(info: &Info) -> Result<ExitCode, Error> {
    let me = PartitionId(info.partition_id());
    let pong = partition_lookup("pong")?;
    let bystander = partition_lookup("bystander")?;

    ipc::send(pong, ping_pong::MESSAGE)?;

    if let Some(code) = expect_refusal("bystander", ipc::call(bystander, [0; 7]), Error::Denied)
        .or_else(|| expect_refusal("bystander", ipc::send(bystander, 1), Error::Denied))
        .or_else(|| expect_refusal("myself", ipc::call(me, [0; 7]), Error::UnknownPartition))
    {
        return Ok(code);
    }
    println!("calling bystander: Denied; calling myself: UnknownPartition");

    let start = time::ticks();
    for n in 0..ROUND_TRIPS {
        let args = ping_pong::arguments(n);
        let reply = ipc::call(pong, args)?;
        let expected = ping_pong::reply(&args, n + 1);
        if let Some(i) = (0..reply.len()).find(|&i| reply[i] != expected[i]) {
            println!(
                "call {n}: reply word {i} is {:#x}, expected {:#x} (reply {reply:x?})",
                reply[i], expected[i]
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    let ticks = time::ticks() - start;
    println!("{ROUND_TRIPS} round trips, every reply checked");
    println!(
        "{} ticks per round trip ({ticks} ticks in all)",
        ticks / ROUND_TRIPS
    );
    // For `exo bench` (deterministic under QEMU -icount; with 10 ms slices interleaved).
    println!(
        "bench ipc_round_trip_ticks={} round_trips={ROUND_TRIPS}",
        ticks / ROUND_TRIPS
    );
    Ok(ExitCode::SUCCESS)
}

/// `None` if `result` is `Err(expected)`; otherwise prints what happened instead and returns
/// the failure.
fn expect_refusal<T: core::fmt::Debug>(
    whom: &str,
    result: Result<T, Error>,
    expected: Error,
) -> Option<ExitCode> {
    match result {
        Err(error) if error == expected => None,
        other => {
            println!("talking to {whom}: expected {expected:?}, got {other:?}");
            Some(ExitCode::FAILURE)
        }
    }
}
