//! Error codes returned in `x0` by every exo hypercall.

/// A hypercall failure. The code is a negative number in `x0`, following the SMC Calling
/// Convention: the first three are SMCCC's own values, the rest are exo-specific and
/// distinct so a library OS can tell precisely what it did wrong.
///
/// A call that fails changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i64)]
pub enum Error {
    /// SMCCC `NOT_SUPPORTED`: unknown function identifier.
    NotSupported = -1,
    /// SMCCC `NOT_REQUIRED`.
    NotRequired = -2,
    /// SMCCC `INVALID_PARAMETER`: an argument is malformed.
    InvalidParameter = -3,
    /// The guest buffer is not (readably) bound in the caller's stage-2 tables.
    BadAddress = -4,
    /// The length or count argument is larger than the call allows.
    TooLarge = -5,
    /// The address is not aligned to a page.
    Unaligned = -6,
    /// The frame is not owned by the caller.
    NotOwner = -7,
    /// The frame is not RAM.
    NotRam = -8,
    /// The frame belongs to the kernel.
    KernelMemory = -9,
    /// The frame belongs to another partition.
    OtherPartition = -10,
    /// The IPA is outside the caller's IPA space.
    IpaOutOfRange = -11,
    /// Something is already bound at that IPA.
    Overlap = -12,
    /// The caller's memory quota is exhausted.
    QuotaExhausted = -13,
    /// No free frame is available.
    OutOfMemory = -14,
    /// No partition has that identifier or name.
    UnknownPartition = -15,
    /// The caller is not allowed to do this.
    Denied = -16,
    /// The frame is still bound (unbind it first) or already bound in the caller.
    Busy = -17,
}

impl Error {
    /// Every error, in code order.
    pub const ALL: [Error; 17] = [
        Error::NotSupported,
        Error::NotRequired,
        Error::InvalidParameter,
        Error::BadAddress,
        Error::TooLarge,
        Error::Unaligned,
        Error::NotOwner,
        Error::NotRam,
        Error::KernelMemory,
        Error::OtherPartition,
        Error::IpaOutOfRange,
        Error::Overlap,
        Error::QuotaExhausted,
        Error::OutOfMemory,
        Error::UnknownPartition,
        Error::Denied,
        Error::Busy,
    ];

    /// The value placed in `x0`.
    pub const fn code(self) -> i64 {
        self as i64
    }

    /// The register image of this error (two's complement of [`Error::code`]).
    pub const fn to_register(self) -> u64 {
        self.code() as u64
    }

    /// Decodes `x0`: `Ok(value)` for a non-negative value, the error otherwise.
    /// An unknown negative code decodes as [`Error::NotSupported`].
    pub fn from_register(x0: u64) -> Result<u64, Error> {
        let signed = x0 as i64;
        if signed >= 0 {
            return Ok(x0);
        }
        Err(Self::ALL
            .iter()
            .copied()
            .find(|e| e.code() == signed)
            .unwrap_or(Error::NotSupported))
    }

    /// A short human-readable description.
    pub const fn description(self) -> &'static str {
        match self {
            Error::NotSupported => "not supported",
            Error::NotRequired => "not required",
            Error::InvalidParameter => "invalid parameter",
            Error::BadAddress => "address not bound",
            Error::TooLarge => "too large",
            Error::Unaligned => "unaligned address",
            Error::NotOwner => "not owned by caller",
            Error::NotRam => "not RAM",
            Error::KernelMemory => "kernel memory",
            Error::OtherPartition => "frame belongs to another partition",
            Error::IpaOutOfRange => "IPA out of range",
            Error::Overlap => "IPA already bound",
            Error::QuotaExhausted => "quota exhausted",
            Error::OutOfMemory => "out of memory",
            Error::UnknownPartition => "unknown partition",
            Error::Denied => "denied",
            Error::Busy => "frame still bound",
        }
    }
}

impl Error {
    /// What the error means, as the ABI reference explains it.
    pub const fn meaning(self) -> &'static str {
        match self {
            Error::NotSupported => "unknown function ID, or not offered for this argument",
            Error::NotRequired => "nothing to do: SMCCC `NOT_REQUIRED`",
            Error::InvalidParameter => "an argument is malformed",
            Error::BadAddress => {
                "buffer not bound with the needed rights; nothing bound; no such grant"
            }
            Error::TooLarge => "length larger than the call allows",
            Error::Unaligned => "address not page aligned",
            Error::NotOwner => {
                "the frame is free, not the caller's; the interrupt is not the caller's"
            }
            Error::NotRam => "the frame is not managed RAM",
            Error::KernelMemory => "the frame belongs to the kernel",
            Error::OtherPartition => {
                "the frame belongs to another partition (and is not granted to the caller)"
            }
            Error::IpaOutOfRange => {
                "IPA outside the 39-bit IPA space or in the kernel window; misaligned upcall entry"
            }
            Error::Overlap => "something is already bound at that IPA",
            Error::QuotaExhausted => "beyond guarantee + borrow limit",
            Error::OutOfMemory => "no frame can be had; table pool or grant table exhausted",
            Error::UnknownPartition => {
                "no partition has that id or name (or it is the caller, or finished)"
            }
            Error::Denied => "not allowed",
            Error::Busy => "already held, bound, granted or waiting; cannot run now",
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.description())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_negative_and_round_trip() {
        for (i, e) in Error::ALL.iter().enumerate() {
            assert_eq!(e.code(), -(i as i64) - 1, "codes are dense and ordered");
            assert_eq!(Error::from_register(e.to_register()), Err(*e));
        }
        assert_eq!(Error::from_register(7), Ok(7));
    }

    #[test]
    fn smccc_codes_match_the_specification() {
        assert_eq!(
            Error::NotSupported.code(),
            i64::from(smccc::arch::error::NOT_SUPPORTED)
        );
        assert_eq!(Error::InvalidParameter.code(), -3);
    }
}
