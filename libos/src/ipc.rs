//! Protected control transfer: synchronous calls between partitions (`EXO_CALL`, `EXO_WAIT`,
//! `EXO_REPLY_WAIT`) and one-word asynchronous messages (`EXO_SEND`, upcall `MESSAGE`).
//!
//! A call carries seven words each way in registers; the CPU passes straight from caller to
//! callee and back, so a round trip costs two hypercalls and no copying. Who may call or
//! send to whom is fixed by the system configuration (`talks_to`); the kernel answers
//! `Denied` otherwise.
//!
//! ```ignore
//! // Server: answer every call with the sum of its arguments.
//! let (mut caller, mut args) = ipc::wait()?;
//! loop {
//!     let sum = args.iter().fold(0u64, |a, &b| a.wrapping_add(b));
//!     (caller, args) = ipc::reply_wait([sum, 0, 0, 0, 0, 0, 0])?;
//! }
//!
//! // Client.
//! let reply = ipc::call(server, [1, 2, 3, 4, 5, 6, 7])?;
//! ```
//!
//! Messages arrive as upcalls, when the kernel next returns from a hypercall of the target:
//! [`set_message_handler`] installs a handler (and registers the upcall entry), which runs in
//! the upcall. Without a handler, the latest message waits for [`take_message`]. Or, with
//! [`receive_by_interrupt`], as the `MESSAGE` signal, a virtual interrupt whose handler takes
//! them with `EXO_RECEIVE`: they then also wake a partition waiting for events.

use core::sync::atomic::{AtomicU64, Ordering};

use exo_abi::Error;
use exo_abi::call::{EXO_CALL, EXO_RECEIVE, EXO_REPLY_WAIT, EXO_SEND, EXO_WAIT};
use spin::Mutex;

pub use crate::mem::call::PartitionId;

use crate::arch;

/// Words a call carries each way.
pub const WORDS: usize = 7;

/// The arguments of a call, or its reply.
pub type Words = [u64; WORDS];

/// A message handler: gets the sender and the word; runs in the upcall.
pub type MessageHandler = fn(PartitionId, u64);

static MESSAGE_HANDLER: Mutex<Option<MessageHandler>> = Mutex::new(None);
/// A message no handler took: (sender, word).
static UNHANDLED: Mutex<Option<(PartitionId, u64)>> = Mutex::new(None);
static MESSAGES: AtomicU64 = AtomicU64::new(0);

/// `EXO_CALL`: calls `callee` with `args` and returns its reply. Blocks until the callee
/// takes the call (if it is not waiting yet) and replies.
///
/// Errors: `UnknownPartition` (no such partition, this one, or it ended before replying),
/// `Denied` (not in this partition's `talks_to`).
pub fn call(callee: PartitionId, args: Words) -> Result<Words, Error> {
    // Word by word: array copies into a zeroed array are SIMD stores in the compiled code,
    // and a partition's first FP/SIMD use after a world switch traps (lazy switching).
    let [a, b, c, d, e, f, g] = args;
    decode_reply(arch::hvc8(
        EXO_CALL,
        [u64::from(callee.0), a, b, c, d, e, f, g],
    ))
}

/// `EXO_WAIT`: waits for a call; returns the caller and its arguments. Answer it with
/// [`reply_wait`].
pub fn wait() -> Result<(PartitionId, Words), Error> {
    decode_call(arch::hvc8(EXO_WAIT, [0; 8]))
}

/// `EXO_REPLY_WAIT`: answers the call being served with `reply` and waits for the next call,
/// like [`wait`]. Errors: `Denied` when no call is being served.
pub fn reply_wait(reply: Words) -> Result<(PartitionId, Words), Error> {
    let [a, b, c, d, e, f, g] = reply;
    decode_call(arch::hvc8(EXO_REPLY_WAIT, [a, b, c, d, e, f, g, 0]))
}

/// Serves calls forever: waits for one, answers it with `handler(caller, args)`, and so on.
/// Returns only the error that stopped it.
pub fn serve(mut handler: impl FnMut(PartitionId, Words) -> Words) -> Error {
    let (mut caller, mut args) = match wait() {
        Ok(call) => call,
        Err(error) => return error,
    };
    loop {
        match reply_wait(handler(caller, args)) {
            Ok(call) => (caller, args) = call,
            Err(error) => return error,
        }
    }
}

/// `EXO_SEND`: sends `word` to `target`, which gets it as a `MESSAGE` upcall; does not wait.
/// Errors: `UnknownPartition`, `Denied`, `Busy` (the target has not yet taken the last
/// message sent to it).
pub fn send(target: PartitionId, word: u64) -> Result<(), Error> {
    let results = arch::hvc8(EXO_SEND, [u64::from(target.0), word, 0, 0, 0, 0, 0, 0]);
    Error::from_register(results[0]).map(drop)
}

/// `EXO_RECEIVE`: takes the message waiting for this partition, `(sender, word)`, when it has
/// the [`signal::MESSAGE`](exo_abi::call::signal::MESSAGE) interrupt enabled (then messages
/// raise that interrupt instead of making an upcall). Errors: `NotRequired` (none waiting).
pub fn receive() -> Result<(PartitionId, u64), Error> {
    let results = arch::hvc4(EXO_RECEIVE, [0; 6]);
    let sender = Error::from_register(results[0])?;
    let sender = u32::try_from(sender).map_err(|_| Error::NotSupported)?;
    Ok((PartitionId(sender), results[1]))
}

/// Installs the handler for `MESSAGE` upcalls and registers the upcall entry with the kernel
/// (messages are delivered only to a partition that has one).
pub fn set_message_handler(handler: MessageHandler) -> Result<(), Error> {
    *MESSAGE_HANDLER.lock() = Some(handler);
    crate::upcall::register()
}

/// Takes messages as the [`signal::MESSAGE`](exo_abi::call::signal::MESSAGE) virtual
/// interrupt instead of upcalls: installs `handler` (as [`set_message_handler`] would, but
/// without registering an upcall entry) and binds an interrupt handler that takes every
/// waiting message with [`receive`] and passes it on. Messages then arrive whenever IRQs are
/// unmasked, or inside [`crate::irq::wait_until`], which they wake. Needs
/// [`crate::irq::init`].
pub fn receive_by_interrupt(handler: MessageHandler) -> Result<(), crate::irq::Error> {
    *MESSAGE_HANDLER.lock() = Some(handler);
    crate::irq::bind(exo_abi::call::signal::MESSAGE, on_message_signal)
}

/// The `MESSAGE` signal's interrupt handler.
fn on_message_signal(_intid: u32) {
    while let Ok((sender, word)) = receive() {
        deliver(u64::from(sender.0), word);
    }
}

/// The latest message that arrived while no handler was installed, if it was not taken yet.
pub fn take_message() -> Option<(PartitionId, u64)> {
    UNHANDLED.lock().take()
}

/// Messages received so far (handled or not).
pub fn messages_received() -> u64 {
    MESSAGES.load(Ordering::Relaxed)
}

/// Handles a `MESSAGE` upcall: `x1` = sender, `x2` = word. Called by the upcall dispatcher.
pub(crate) fn deliver(sender: u64, word: u64) {
    MESSAGES.fetch_add(1, Ordering::Relaxed);
    let sender = PartitionId(sender as u32);
    // Neither lock is ever held across a hypercall, so an upcall finds them free; `try_lock`
    // keeps a buggy program that faulted while holding one from deadlocking here.
    let handler = MESSAGE_HANDLER.try_lock().and_then(|h| *h);
    match handler {
        Some(handler) => handler(sender, word),
        None => {
            if let Some(mut slot) = UNHANDLED.try_lock() {
                *slot = Some((sender, word));
            }
        }
    }
}

/// Decodes the results of `EXO_CALL`: `x0` = 0, the reply in `x1`..`x7`.
fn decode_reply(results: [u64; 8]) -> Result<Words, Error> {
    Error::from_register(results[0])?;
    Ok(words(&results))
}

/// Decodes the results of `EXO_WAIT` and `EXO_REPLY_WAIT`: `x0` = caller, arguments in
/// `x1`..`x7`.
fn decode_call(results: [u64; 8]) -> Result<(PartitionId, Words), Error> {
    let caller = Error::from_register(results[0])?;
    let caller = u32::try_from(caller).map_err(|_| Error::NotSupported)?;
    Ok((PartitionId(caller), words(&results)))
}

/// `x1`..`x7` of a result.
fn words(results: &[u64; 8]) -> Words {
    let [_, a, b, c, d, e, f, g] = *results;
    [a, b, c, d, e, f, g]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_x1_to_x7() {
        assert_eq!(
            decode_reply([0, 1, 2, 3, 4, 5, 6, 7]),
            Ok([1, 2, 3, 4, 5, 6, 7])
        );
        for error in [Error::Denied, Error::UnknownPartition] {
            let mut results = [9; 8];
            results[0] = error.to_register();
            assert_eq!(decode_reply(results), Err(error));
        }
    }

    #[test]
    fn a_call_is_the_caller_and_x1_to_x7() {
        assert_eq!(
            decode_call([3, 10, 20, 30, 40, 50, 60, 70]),
            Ok((PartitionId(3), [10, 20, 30, 40, 50, 60, 70]))
        );
        let mut results = [0; 8];
        results[0] = Error::Denied.to_register();
        assert_eq!(decode_call(results), Err(Error::Denied));
        // No partition id is that large: the kernel did not mean it.
        assert_eq!(
            decode_call([1 << 40, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::NotSupported)
        );
    }

    #[test]
    fn the_host_fake_refuses_every_call() {
        assert_eq!(call(PartitionId(1), [0; 7]), Err(Error::NotSupported));
        assert_eq!(wait(), Err(Error::NotSupported));
        assert_eq!(reply_wait([0; 7]), Err(Error::NotSupported));
        assert_eq!(send(PartitionId(1), 5), Err(Error::NotSupported));
        assert_eq!(receive(), Err(Error::NotSupported));
        assert_eq!(serve(|_, args| args), Error::NotSupported);
    }
}
