//! The description of every call: one [`Description`] per [`Call`], in [`CALLS`]. The kernel's
//! conformance test checks every error it returns against these sets, and `docs/abi.md`'s
//! call and error tables are rendered from them.

use super::{CONSOLE_WRITE_MAX, Call, FRAME_ALLOC_MAX, FRAME_RELEASE_MAX};
use crate::Error;

/// The sections of the reference the calls are grouped in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// SMCCC and PSCI queries, the ABI version, console, yield and exit.
    Base,
    /// Memory secure bindings, grants and revocation (ABI 1.1).
    Memory,
    /// Protected control transfer and messages (ABI 1.2).
    Transfer,
    /// Interrupt secure bindings, waiting and donation (ABI 1.3).
    InterruptAndCpu,
}

impl Group {
    /// Every group, in the order of the reference.
    pub const ALL: [Group; 4] = [
        Group::Base,
        Group::Memory,
        Group::Transfer,
        Group::InterruptAndCpu,
    ];

    /// The name of the group's generated table in `docs/abi.md`.
    pub const fn marker(self) -> &'static str {
        match self {
            Group::Base => "base",
            Group::Memory => "memory",
            Group::Transfer => "transfer",
            Group::InterruptAndCpu => "interrupt-and-cpu",
        }
    }
}

/// A run of registers `x<first>..=x<last>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registers {
    /// First register number.
    pub first: u8,
    /// Last register number (equal to `first` for one register).
    pub last: u8,
}

/// One register.
const fn x(n: u8) -> Registers {
    Registers { first: n, last: n }
}

/// Registers `x<first>..=x<last>`.
const fn xs(first: u8, last: u8) -> Registers {
    Registers { first, last }
}

/// What an argument is, so a test can choose hostile values of the right kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    /// An SMCCC function identifier (low 32 bits used).
    FunctionId,
    /// An exit status.
    Status,
    /// The IPA of a buffer in the caller's memory.
    Buffer,
    /// A length in bytes.
    Length,
    /// A number of frames.
    Count,
    /// A frame's physical address.
    Frame,
    /// A page's IPA.
    Ipa,
    /// [`crate::BindAttributes`].
    Attributes,
    /// [`crate::Rights`].
    Rights,
    /// A partition id.
    Partition,
    /// An index into a list.
    Index,
    /// The IPA of code.
    Entry,
    /// [`crate::UpcallFlags`].
    UpcallFlags,
    /// A boolean: non-zero is true.
    Flag,
    /// A word passed on unchanged.
    Word,
    /// An interrupt ID.
    Intid,
    /// An interrupt priority.
    Priority,
    /// A core number.
    Core,
}

/// One argument of a call.
#[derive(Clone, Copy, Debug)]
pub struct Arg {
    /// Where it is passed.
    pub registers: Registers,
    /// Its name, as the library OS's wrappers spell it.
    pub name: &'static str,
    /// What it is.
    pub kind: ArgKind,
    /// What it means (Markdown).
    pub meaning: &'static str,
}

/// One result of a call.
#[derive(Clone, Copy, Debug)]
pub struct Value {
    /// Where it is returned.
    pub registers: Registers,
    /// What it means (Markdown).
    pub meaning: &'static str,
}

/// What a call returns when it succeeds.
#[derive(Clone, Copy, Debug)]
pub enum Results {
    /// Returns to the caller with these values; unlisted registers of `x0`..`x3` are 0.
    Values(&'static [Value]),
    /// Never returns to the caller.
    NoReturn,
    /// Does not return on success (only its errors do).
    NoReturnOnSuccess,
}

/// One error a call can return, and when.
#[derive(Clone, Copy, Debug)]
pub struct ErrorCase {
    /// The error.
    pub error: Error,
    /// When the call returns it (Markdown; may be empty).
    pub when: &'static str,
}

/// Everything the ABI says about one call.
#[derive(Clone, Copy, Debug)]
pub struct Description {
    /// The call.
    pub call: Call,
    /// Its name, e.g. `EXO_BIND`.
    pub name: &'static str,
    /// The section it is documented in.
    pub group: Group,
    /// Its arguments, in register order.
    pub args: &'static [Arg],
    /// What it returns.
    pub results: Results,
    /// Every error it can return, in the order the kernel checks for them. Each error
    /// appears once. Not listed: `UnknownPartition` for a kernel whose own partition state
    /// is inconsistent (a kernel bug).
    pub errors: &'static [ErrorCase],
}

impl Description {
    /// The function identifier.
    pub const fn id(&self) -> u32 {
        self.call.id()
    }
}

/// Shorthand for an argument.
const fn arg(
    registers: Registers,
    name: &'static str,
    kind: ArgKind,
    meaning: &'static str,
) -> Arg {
    Arg {
        registers,
        name,
        kind,
        meaning,
    }
}

/// Shorthand for a result.
const fn value(registers: Registers, meaning: &'static str) -> Value {
    Value { registers, meaning }
}

/// Shorthand for an error case.
const fn when(error: Error, when: &'static str) -> ErrorCase {
    ErrorCase { error, when }
}

/// `x0` = 0.
const ZERO: Results = Results::Values(&[value(x(0), "0")]);

// The limits the descriptions quote, checked against the constants in the tests below.
const _: () =
    assert!(CONSOLE_WRITE_MAX == 4096 && FRAME_ALLOC_MAX == 512 && FRAME_RELEASE_MAX == 512);

use ArgKind as K;
use Error as E;

/// The errors of the "held check" of the memory calls (a page-aligned frame the caller
/// holds), followed by `more`.
macro_rules! held_check {
    ($($more:expr),* $(,)?) => {
        &[
            when(E::Unaligned, "not page aligned"),
            when(E::NotRam, "outside managed RAM"),
            when(E::KernelMemory, "kernel-owned, e.g. an info page's frame"),
            when(E::OtherPartition, "held by another partition"),
            when(E::NotOwner, "free"),
            $($more,)*
        ]
    };
}

/// The frame named by a memory call.
const FRAME: Arg = arg(x(1), "phys", K::Frame, "physical address of a frame");

/// The IPA bound by `EXO_BIND` or `EXO_UNBIND`.
const IPA_OUT_OF_RANGE: &str = "IPA ≥ 2^39, or in the kernel window `0x3FFF_0000..0x4000_0000`";

/// The INTID of an interrupt call.
const INTID: Arg = arg(x(1), "intid", K::Intid, "INTID");

/// The ownership check every interrupt call starts with.
const INTID_RANGE: ErrorCase = when(E::InvalidParameter, "INTID ≥ 1020");
/// The ownership check every interrupt call starts with.
const NOT_OWNER: ErrorCase = when(
    E::NotOwner,
    "not an SPI the caller owns, a kernel signal or the virtual timer",
);

/// Every call, in the order of [`Call::ALL`].
pub const CALLS: &[Description] = &[
    // --------------------------------------------------------------------------------
    // Base calls.
    Description {
        call: Call::SmcccVersion,
        name: "SMCCC_VERSION",
        group: Group::Base,
        args: &[],
        results: Results::Values(&[value(x(0), "`0x0001_0001`: SMCCC 1.1")]),
        errors: &[],
    },
    Description {
        call: Call::SmcccArchFeatures,
        name: "SMCCC_ARCH_FEATURES",
        group: Group::Base,
        args: &[arg(
            x(1),
            "function",
            K::FunctionId,
            "function ID, low 32 bits used",
        )],
        results: Results::Values(&[value(
            x(0),
            "0 if `x1` is `SMCCC_VERSION` or `SMCCC_ARCH_FEATURES`",
        )]),
        errors: &[when(
            E::NotSupported,
            "any other ID: no SMCCC workarounds are offered",
        )],
    },
    Description {
        call: Call::PsciVersion,
        name: "PSCI_VERSION",
        group: Group::Base,
        args: &[],
        results: Results::Values(&[value(x(0), "`0x0001_0001`: PSCI 1.1")]),
        errors: &[],
    },
    Description {
        call: Call::PsciFeatures,
        name: "PSCI_FEATURES",
        group: Group::Base,
        args: &[arg(
            x(1),
            "function",
            K::FunctionId,
            "PSCI function ID, low 32 bits used",
        )],
        results: Results::Values(&[value(
            x(0),
            "0 for `PSCI_VERSION`, `PSCI_FEATURES`, `PSCI_CPU_OFF`, `PSCI_SYSTEM_OFF`, and \
             `SMCCC_VERSION` (how a caller discovers SMCCC 1.1)",
        )]),
        errors: &[when(E::NotSupported, "any other ID")],
    },
    Description {
        call: Call::PsciSystemOff,
        name: "PSCI_SYSTEM_OFF",
        group: Group::Base,
        args: &[],
        results: Results::NoReturn,
        errors: &[],
    },
    Description {
        call: Call::PsciCpuOff,
        name: "PSCI_CPU_OFF",
        group: Group::Base,
        args: &[],
        results: Results::NoReturn,
        errors: &[],
    },
    Description {
        call: Call::AbiVersion,
        name: "EXO_ABI_VERSION",
        group: Group::Base,
        args: &[],
        results: Results::Values(&[value(x(0), "`ABI_VERSION`")]),
        errors: &[],
    },
    Description {
        call: Call::ConsoleWrite,
        name: "EXO_CONSOLE_WRITE",
        group: Group::Base,
        args: &[
            arg(x(1), "ipa", K::Buffer, "IPA of the bytes"),
            arg(x(2), "len", K::Length, "length in bytes"),
        ],
        results: Results::Values(&[value(x(0), "bytes written (= length)")]),
        errors: &[
            when(E::TooLarge, "length > 4096, `CONSOLE_WRITE_MAX`"),
            when(
                E::BadAddress,
                "`ipa + len` overflows, or a page of the buffer is not bound readable",
            ),
        ],
    },
    Description {
        call: Call::Yield,
        name: "EXO_YIELD",
        group: Group::Base,
        args: &[],
        results: ZERO,
        errors: &[],
    },
    Description {
        call: Call::Exit,
        name: "EXO_EXIT",
        group: Group::Base,
        args: &[arg(
            x(1),
            "status",
            K::Status,
            "0 success, anything else failure",
        )],
        results: Results::NoReturn,
        errors: &[],
    },
    // --------------------------------------------------------------------------------
    // Memory calls (ABI 1.1).
    Description {
        call: Call::FrameAlloc,
        name: "EXO_FRAME_ALLOC",
        group: Group::Memory,
        args: &[
            arg(x(1), "count", K::Count, "frames wanted"),
            arg(
                x(2),
                "buffer",
                K::Buffer,
                "IPA where their addresses are written",
            ),
        ],
        results: Results::Values(&[value(x(0), "count")]),
        errors: &[
            when(E::InvalidParameter, "count 0 or > 512, `FRAME_ALLOC_MAX`"),
            when(
                E::BadAddress,
                "the `8 × count` bytes at the buffer are not bound writable; also when a \
                 blocked call completes",
            ),
            when(E::QuotaExhausted, "held + count > guarantee + borrow limit"),
            when(
                E::OutOfMemory,
                "not enough unreserved free frames and either held + count > guarantee, or \
                 the borrowers together hold fewer revocable frames than are missing",
            ),
        ],
    },
    Description {
        call: Call::FrameAllocAt,
        name: "EXO_FRAME_ALLOC_AT",
        group: Group::Memory,
        args: &[FRAME],
        results: Results::Values(&[value(x(0), "the address")]),
        errors: &[
            when(E::Unaligned, ""),
            when(E::Busy, "the caller already holds it"),
            when(E::NotRam, "not free"),
            when(E::KernelMemory, "not free"),
            when(E::OtherPartition, "not free"),
            when(E::QuotaExhausted, "held + 1 > guarantee + borrow limit"),
            when(
                E::OutOfMemory,
                "every free frame is promised to a partition blocked in `EXO_FRAME_ALLOC`",
            ),
        ],
    },
    Description {
        call: Call::FrameFree,
        name: "EXO_FRAME_FREE",
        group: Group::Memory,
        args: &[FRAME],
        results: ZERO,
        errors: held_check![when(E::Busy, "bound in the caller: unbind it first")],
    },
    Description {
        call: Call::Bind,
        name: "EXO_BIND",
        group: Group::Memory,
        args: &[
            FRAME,
            arg(x(2), "ipa", K::Ipa, "where to bind it"),
            arg(x(3), "attributes", K::Attributes, "`BindAttributes`"),
        ],
        results: ZERO,
        errors: &[
            when(
                E::InvalidParameter,
                "undefined bits, none of read/write/execute, or `DEVICE`",
            ),
            when(E::Unaligned, "frame or IPA"),
            when(E::IpaOutOfRange, IPA_OUT_OF_RANGE),
            when(
                E::Busy,
                "the frame is already bound in the caller, or the grant is already bound",
            ),
            when(E::NotRam, "neither held nor granted: as in the held check"),
            when(E::KernelMemory, "neither held nor granted"),
            when(E::OtherPartition, "neither held nor granted"),
            when(E::NotOwner, "neither held nor granted"),
            when(E::Denied, "attributes beyond the granted rights"),
            when(E::Overlap, "something is bound at the IPA"),
            when(E::OutOfMemory, "the caller's stage-2 table pool is used up"),
        ],
    },
    Description {
        call: Call::Unbind,
        name: "EXO_UNBIND",
        group: Group::Memory,
        args: &[arg(x(1), "ipa", K::Ipa, "a bound page")],
        results: Results::Values(&[value(x(0), "the physical address that was bound there")]),
        errors: &[
            when(E::Unaligned, ""),
            when(
                E::IpaOutOfRange,
                "as for `EXO_BIND`: kernel pages cannot be unbound",
            ),
            when(
                E::Denied,
                "a device binding from the configuration, or the GICv2 `GICV` frame",
            ),
            when(E::BadAddress, "nothing bound there"),
        ],
    },
    Description {
        call: Call::Grant,
        name: "EXO_GRANT",
        group: Group::Memory,
        args: &[
            FRAME,
            arg(x(2), "partition", K::Partition, "grantee's id"),
            arg(
                x(3),
                "rights",
                K::Rights,
                "`Rights`, `READ` or `READ | WRITE`",
            ),
        ],
        results: ZERO,
        errors: held_check![
            when(
                E::UnknownPartition,
                "no such partition, the caller itself, or finished",
            ),
            when(
                E::InvalidParameter,
                "rights other than `READ` or `READ | WRITE`"
            ),
            when(E::Busy, "already granted to that partition"),
            when(
                E::OutOfMemory,
                "the system-wide grant table (256 entries) is full"
            ),
        ],
    },
    Description {
        call: Call::GrantRevoke,
        name: "EXO_GRANT_REVOKE",
        group: Group::Memory,
        args: &[FRAME, arg(x(2), "partition", K::Partition, "grantee's id")],
        results: ZERO,
        errors: held_check![
            when(E::UnknownPartition, "as for `EXO_GRANT`"),
            when(E::BadAddress, "no such grant"),
        ],
    },
    Description {
        call: Call::RevokeAck,
        name: "EXO_REVOKE_ACK",
        group: Group::Memory,
        args: &[],
        results: Results::Values(&[value(
            x(0),
            "frames still owed (0: no request outstanding, or it is met)",
        )]),
        errors: &[],
    },
    Description {
        call: Call::SetUpcall,
        name: "EXO_SET_UPCALL",
        group: Group::Memory,
        args: &[
            arg(x(1), "entry", K::Entry, "entry IPA, 0 disables"),
            arg(x(2), "flags", K::UpcallFlags, "`UpcallFlags`"),
        ],
        results: ZERO,
        errors: &[
            when(
                E::InvalidParameter,
                "flags other than `UpcallFlags::FAULTS` = 1",
            ),
            when(E::IpaOutOfRange, "entry ≥ 2^39 or not 4-byte aligned"),
        ],
    },
    Description {
        call: Call::UpcallReturn,
        name: "EXO_UPCALL_RETURN",
        group: Group::Memory,
        args: &[arg(
            x(1),
            "skip",
            K::Flag,
            "non-zero skips the interrupted instruction",
        )],
        results: Results::NoReturnOnSuccess,
        errors: &[when(E::Denied, "not in an upcall")],
    },
    Description {
        call: Call::MemInfo,
        name: "EXO_MEM_INFO",
        group: Group::Memory,
        args: &[],
        results: Results::Values(&[
            value(x(0), "frames held"),
            value(x(1), "guarantee"),
            value(x(2), "borrow limit"),
            value(x(3), "free frames in the system"),
        ]),
        errors: &[],
    },
    Description {
        call: Call::PartitionLookup,
        name: "EXO_PARTITION_LOOKUP",
        group: Group::Memory,
        args: &[
            arg(x(1), "name", K::Buffer, "IPA of the name"),
            arg(x(2), "len", K::Length, "its length"),
        ],
        results: Results::Values(&[value(x(0), "partition id")]),
        errors: &[
            when(E::TooLarge, "length > 32"),
            when(E::BadAddress, "name not bound readable"),
            when(E::UnknownPartition, "no partition has exactly that name"),
        ],
    },
    Description {
        call: Call::SelfCheck,
        name: "EXO_SELF_CHECK",
        group: Group::Memory,
        args: &[],
        results: Results::Values(&[value(x(0), "number of frames checked")]),
        errors: &[when(
            E::Denied,
            "the caller's configuration does not grant `capabilities = [\"self-check\"]`, \
             or an invariant is broken (a kernel bug, also logged)",
        )],
    },
    Description {
        call: Call::GrantQuery,
        name: "EXO_GRANT_QUERY",
        group: Group::Memory,
        args: &[arg(x(1), "index", K::Index, "which grant to the caller")],
        results: Results::Values(&[
            value(x(0), "physical address"),
            value(x(1), "owner's partition id"),
            value(x(2), "granted `Rights`"),
        ]),
        errors: &[when(
            E::BadAddress,
            "index past the last grant to the caller",
        )],
    },
    Description {
        call: Call::FrameRelease,
        name: "EXO_FRAME_RELEASE",
        group: Group::Memory,
        args: &[
            arg(
                x(1),
                "buffer",
                K::Buffer,
                "IPA of an array of frame addresses (`u64`) in the caller's RAM",
            ),
            arg(
                x(2),
                "count",
                K::Count,
                "entries, 1..=512 (`FRAME_RELEASE_MAX`)",
            ),
        ],
        results: Results::Values(&[
            value(x(0), "frames released (= count)"),
            value(
                x(1),
                "frames still owed on the caller's revocation request (0: none, or met)",
            ),
        ]),
        errors: &[
            when(E::InvalidParameter, "count 0 or > 512, `FRAME_RELEASE_MAX`"),
            when(
                E::BadAddress,
                "the buffer is not 8-byte aligned, or its `8 × count` bytes are not bound \
                 readable",
            ),
            when(
                E::Unaligned,
                "an entry is not page aligned; x1 = the index of the first bad entry, \
                 and nothing was released",
            ),
            when(E::NotRam, "an entry is outside managed RAM (x1 as above)"),
            when(
                E::KernelMemory,
                "an entry is kernel-owned, or named twice (x1 as above)",
            ),
            when(
                E::OtherPartition,
                "an entry is held by another partition (x1 as above)",
            ),
            when(E::NotOwner, "an entry is free (x1 as above)"),
            when(
                E::Busy,
                "an entry is granted to another partition, or holds the buffer itself (x1 as \
                 above)",
            ),
        ],
    },
    Description {
        call: Call::SetLossOrder,
        name: "EXO_SET_LOSS_ORDER",
        group: Group::Memory,
        args: &[arg(
            x(1),
            "page",
            K::Ipa,
            "IPA of a page of the caller's RAM holding a `revocation::LossOrder`, 0 \
             unregisters",
        )],
        results: ZERO,
        errors: &[
            when(E::Unaligned, "not page aligned"),
            when(
                E::BadAddress,
                "not bound read-write as Normal memory over RAM held by the caller",
            ),
        ],
    },
    // --------------------------------------------------------------------------------
    // Protected control transfer (ABI 1.2).
    Description {
        call: Call::Call,
        name: "EXO_CALL",
        group: Group::Transfer,
        args: &[
            arg(x(1), "callee", K::Partition, "callee's id"),
            arg(xs(2, 8), "words", K::Word, "seven words"),
        ],
        results: Results::Values(&[
            value(x(0), "0 on reply"),
            value(xs(1, 7), "seven reply words"),
        ]),
        errors: &[
            when(
                E::UnknownPartition,
                "no such partition, the caller itself, finished, or it ended before replying",
            ),
            when(E::Denied, "not in `talks_to`"),
        ],
    },
    Description {
        call: Call::Wait,
        name: "EXO_WAIT",
        group: Group::Transfer,
        args: &[],
        results: Results::Values(&[value(x(0), "caller's id"), value(xs(1, 7), "its words")]),
        errors: &[when(E::Denied, "a call is being served: reply first")],
    },
    Description {
        call: Call::ReplyWait,
        name: "EXO_REPLY_WAIT",
        group: Group::Transfer,
        args: &[arg(xs(1, 7), "reply", K::Word, "seven reply words")],
        results: Results::Values(&[
            value(x(0), "next caller's id"),
            value(xs(1, 7), "its words"),
        ]),
        errors: &[when(E::Denied, "no call is being served")],
    },
    Description {
        call: Call::Send,
        name: "EXO_SEND",
        group: Group::Transfer,
        args: &[
            arg(x(1), "target", K::Partition, "target's id"),
            arg(x(2), "word", K::Word, "one word"),
        ],
        results: ZERO,
        errors: &[
            when(E::UnknownPartition, "as for `EXO_CALL`"),
            when(E::Denied, "not in `talks_to`"),
            when(E::Busy, "the target has an undelivered message"),
        ],
    },
    // --------------------------------------------------------------------------------
    // Interrupt and CPU calls (ABI 1.3).
    Description {
        call: Call::WaitEvent,
        name: "EXO_WAIT_EVENT",
        group: Group::InterruptAndCpu,
        args: &[],
        results: Results::Values(&[value(x(0), "0 when the caller has an event")]),
        errors: &[],
    },
    Description {
        call: Call::Donate,
        name: "EXO_DONATE",
        group: Group::InterruptAndCpu,
        args: &[arg(
            x(1),
            "partition",
            K::Partition,
            "who gets the time slice",
        )],
        results: Results::Values(&[value(x(0), "0 when the caller runs again")]),
        errors: &[
            when(E::UnknownPartition, "none, the caller itself, or finished"),
            when(E::Busy, "it cannot run now"),
            when(
                E::InvalidParameter,
                "it runs on another core than the caller",
            ),
        ],
    },
    Description {
        call: Call::Receive,
        name: "EXO_RECEIVE",
        group: Group::InterruptAndCpu,
        args: &[],
        results: Results::Values(&[value(x(0), "sender's id"), value(x(1), "the word")]),
        errors: &[when(E::NotRequired, "no message waiting")],
    },
    Description {
        call: Call::IrqEnable,
        name: "EXO_IRQ_ENABLE",
        group: Group::InterruptAndCpu,
        args: &[INTID],
        results: ZERO,
        errors: &[INTID_RANGE, NOT_OWNER],
    },
    Description {
        call: Call::IrqDisable,
        name: "EXO_IRQ_DISABLE",
        group: Group::InterruptAndCpu,
        args: &[INTID],
        results: ZERO,
        errors: &[
            INTID_RANGE,
            NOT_OWNER,
            when(
                E::NotSupported,
                "the virtual timer: mask it with `CNTV_CTL_EL0.IMASK`",
            ),
        ],
    },
    Description {
        call: Call::IrqSetPriority,
        name: "EXO_IRQ_SET_PRIORITY",
        group: Group::InterruptAndCpu,
        args: &[
            INTID,
            arg(x(2), "priority", K::Priority, "0 (highest) ..= 255"),
        ],
        results: ZERO,
        errors: &[
            when(E::InvalidParameter, "INTID ≥ 1020, or priority > 255"),
            NOT_OWNER,
        ],
    },
    Description {
        call: Call::IrqSetTarget,
        name: "EXO_IRQ_SET_TARGET",
        group: Group::InterruptAndCpu,
        args: &[
            INTID,
            arg(x(2), "core", K::Core, "a core the caller runs on"),
        ],
        results: ZERO,
        errors: &[
            when(
                E::InvalidParameter,
                "INTID ≥ 1020; a core the caller does not run on (the one its `cores` \
                 names); not an SPI: signals and the virtual timer have no target",
            ),
            NOT_OWNER,
        ],
    },
    Description {
        call: Call::IrqRaise,
        name: "EXO_IRQ_RAISE",
        group: Group::InterruptAndCpu,
        args: &[INTID],
        results: ZERO,
        errors: &[
            when(E::InvalidParameter, "INTID ≥ 1020, or the virtual timer"),
            NOT_OWNER,
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_is_described_once_in_order() {
        assert_eq!(CALLS.len(), Call::ALL.len());
        for (description, &call) in CALLS.iter().zip(Call::ALL) {
            assert_eq!(description.call, call, "CALLS is in the order of Call::ALL");
            assert_eq!(Call::try_from(description.id()), Ok(call));
        }
    }

    #[test]
    fn names_follow_the_identifier_ranges() {
        for d in CALLS {
            let exo = super::super::is_exo_call(d.id());
            assert_eq!(exo, d.name.starts_with("EXO_"), "{}", d.name);
            assert_eq!(exo, d.call.is_smc64(), "{}", d.name);
        }
        assert_eq!(Call::Bind.name(), "EXO_BIND");
    }

    #[test]
    fn each_error_is_declared_once_per_call() {
        for d in CALLS {
            for (i, case) in d.errors.iter().enumerate() {
                assert!(
                    d.errors[..i].iter().all(|c| c.error != case.error),
                    "{} declares {:?} twice",
                    d.name,
                    case.error
                );
            }
        }
    }

    #[test]
    fn arguments_are_in_register_order_within_x1_to_x8() {
        for d in CALLS {
            let mut next = 1;
            for a in d.args {
                assert_eq!(a.registers.first, next, "{} {}", d.name, a.name);
                assert!(a.registers.last >= a.registers.first && a.registers.last <= 8);
                next = a.registers.last + 1;
            }
        }
    }

    #[test]
    fn unknown_identifiers_decode_as_not_supported() {
        for id in [
            0,
            super::super::exo_call(0x04),
            super::super::PSCI_SYSTEM_RESET,
            !0,
        ] {
            assert_eq!(Call::try_from(id), Err(Error::NotSupported));
        }
    }
}
