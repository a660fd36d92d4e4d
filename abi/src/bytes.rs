//! Little-endian field access for the byte layouts in this crate.

/// Reads a little-endian `u32` at `offset`, or `None` if out of bounds.
pub(crate) fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    let field = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes(field.try_into().ok()?))
}

/// Reads a little-endian `u64` at `offset`, or `None` if out of bounds.
pub(crate) fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    let field = bytes.get(offset..offset.checked_add(8)?)?;
    Some(u64::from_le_bytes(field.try_into().ok()?))
}

/// Writes a little-endian `u32` at `offset`. The caller sizes `bytes`.
pub(crate) fn put_u32(bytes: &mut [u8], offset: usize, value: u32) {
    bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}

/// Writes a little-endian `u64` at `offset`. The caller sizes `bytes`.
pub(crate) fn put_u64(bytes: &mut [u8], offset: usize, value: u64) {
    bytes[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
}

/// A fixed-size, NUL-padded name field.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Name {
    bytes: [u8; Name::LEN],
}

impl Name {
    /// Capacity of a name in bytes.
    pub const LEN: usize = 32;

    /// Builds a name; `None` if it is empty, longer than [`Name::LEN`] bytes or contains NUL.
    pub fn new(text: &str) -> Option<Self> {
        if text.is_empty() || text.len() > Self::LEN || text.contains('\0') {
            return None;
        }
        let mut bytes = [0; Self::LEN];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Some(Self { bytes })
    }

    /// Reads a name field at `offset`.
    pub(crate) fn read(bytes: &[u8], offset: usize) -> Option<Self> {
        let field = bytes.get(offset..offset + Self::LEN)?;
        Some(Self {
            bytes: field.try_into().ok()?,
        })
    }

    /// Writes the name field at `offset`.
    pub(crate) fn write(&self, bytes: &mut [u8], offset: usize) {
        bytes[offset..offset + Self::LEN].copy_from_slice(&self.bytes);
    }

    /// The name as text (invalid UTF-8 shows as `?`).
    pub fn as_str(&self) -> &str {
        let len = self.bytes.iter().position(|&b| b == 0).unwrap_or(Self::LEN);
        core::str::from_utf8(&self.bytes[..len]).unwrap_or("?")
    }
}

impl core::fmt::Debug for Name {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl core::fmt::Display for Name {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}
