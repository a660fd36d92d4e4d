//! `pong`: a server for protected control transfer. It looks nothing up: it waits for calls
//! and answers each with [`ping_pong::reply`] (a function of the arguments and of how many
//! calls it has served), passing the CPU straight back with `EXO_REPLY_WAIT`. Messages sent
//! to it are printed as `message <word> from <sender>`. It never exits: once its callers are
//! done it waits for good, which the kernel counts as idle, and so `ok`.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_guests::ping_pong;
use exo_libos::ipc::{self, PartitionId};
use exo_libos::{Error, Info, println};

exo_libos::entry!(main);

/// Runs in the `MESSAGE` upcall.
fn on_message(sender: PartitionId, word: u64) {
    println!("message {word:#x} from {}", sender.0);
}

fn main(info: &Info) -> Result<(), Error> {
    ipc::set_message_handler(on_message)?;
    // A message that came in before the handler was set (not expected: the kernel delivers
    // only once the upcall entry is registered, which the line above does last).
    if let Some((sender, word)) = ipc::take_message() {
        on_message(sender, word);
    }
    println!(
        "{} (id {}) waiting for calls",
        info.name(),
        info.partition_id()
    );
    let (mut caller, mut args) = ipc::wait()?;
    let mut count = 0u64;
    loop {
        count += 1;
        let reply = ping_pong::reply(&args, count);
        (caller, args) = match ipc::reply_wait(reply) {
            Ok(call) => call,
            Err(error) => {
                println!(
                    "reply to {} refused after {count} calls: {error:?}",
                    caller.0
                );
                return Err(error);
            }
        };
    }
}
