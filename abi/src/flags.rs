//! Flag words of the ABI, each defined once as a [`bitflags`] type: access rights, the
//! attributes of [`crate::call::Call::Bind`], the flags of [`crate::call::Call::SetUpcall`]
//! and the info page's flags.

use bitflags::bitflags;

bitflags! {
    /// Access rights of a binding, as stage 2 enforces them: in the info page's binding
    /// records, the boot package's segments, and the rights of a grant.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Rights: u32 {
        /// Readable.
        const READ = 1;
        /// Writable.
        const WRITE = 2;
        /// Executable at EL1 and EL0.
        const EXECUTE = 4;
    }
}

impl Rights {
    /// Read and write.
    pub const READ_WRITE: Rights = Rights::READ.union(Rights::WRITE);

    /// The rights as passed in a hypercall register (`EXO_GRANT`, `EXO_GRANT_QUERY`).
    pub const fn to_register(self) -> u64 {
        self.bits() as u64
    }

    /// Rights from a register: `None` if any bit is not a right.
    pub const fn from_register(register: u64) -> Option<Rights> {
        if register > u32::MAX as u64 {
            return None;
        }
        Rights::from_bits(register as u32)
    }
}

bitflags! {
    /// Attributes of `EXO_BIND` (`x3`): the rights of the binding plus its memory type.
    /// The rights bits are [`Rights`]'s.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct BindAttributes: u64 {
        /// Readable.
        const READ = Rights::READ.bits() as u64;
        /// Writable.
        const WRITE = Rights::WRITE.bits() as u64;
        /// Executable at EL1 and EL0.
        const EXECUTE = Rights::EXECUTE.bits() as u64;
        /// Device-nGnRE memory instead of Normal write-back (defined; always refused by
        /// `EXO_BIND`, which binds RAM only).
        const DEVICE = 8;
    }
}

impl BindAttributes {
    /// Read and write.
    pub const READ_WRITE: BindAttributes = BindAttributes::READ.union(BindAttributes::WRITE);

    /// The access rights among these attributes.
    pub const fn rights(self) -> Rights {
        Rights::from_bits_truncate(self.bits() as u32)
    }
}

impl From<Rights> for BindAttributes {
    fn from(rights: Rights) -> Self {
        BindAttributes::from_bits_truncate(u64::from(rights.bits()))
    }
}

bitflags! {
    /// Flags of `EXO_SET_UPCALL` (`x2`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct UpcallFlags: u64 {
        /// Reflect stage-2 faults on unbound IPAs to the upcall instead of stopping the
        /// partition.
        const FAULTS = 1;
    }
}

bitflags! {
    /// The info page's flags word (offset 60).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct InfoFlags: u32 {
        /// The partition has more bindings than [`crate::info::MAX_BINDINGS`]; only the
        /// first are listed.
        const BINDINGS_TRUNCATED = 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_attributes_share_the_rights_bits() {
        for rights in [Rights::READ, Rights::WRITE, Rights::EXECUTE, Rights::all()] {
            let attributes = BindAttributes::from(rights);
            assert_eq!(attributes.bits(), u64::from(rights.bits()));
            assert_eq!(attributes.rights(), rights);
        }
        assert_eq!(
            (BindAttributes::DEVICE | BindAttributes::READ).rights(),
            Rights::READ
        );
    }

    #[test]
    fn register_values_outside_the_rights_are_refused() {
        assert_eq!(Rights::from_register(3), Some(Rights::READ_WRITE));
        assert_eq!(Rights::from_register(8), None);
        assert_eq!(Rights::from_register(1 << 32 | 1), None);
        assert_eq!(Rights::READ_WRITE.to_register(), 3);
    }
}
