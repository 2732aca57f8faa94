//! The byte reader under the pickle machine: every read is checked against what is left of
//! the pickle, so a forged length is an error, never an out-of-bounds read or a huge
//! allocation.

use super::pickle::Value;

/// A byte reader over the pickle, each read checked against what is left.
pub(super) struct Reader<'a> {
    /// The pickle.
    pub bytes: &'a [u8],
    /// The next byte's index.
    pub at: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end =
            end.ok_or_else(|| format!("the pickle ends inside an item at byte {}", self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(super) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    pub(super) fn u32(&mut self) -> Result<usize, String> {
        usize::try_from(u32::from_le_bytes(self.array()?)).map_err(|e| e.to_string())
    }

    pub(super) fn u64(&mut self) -> Result<usize, String> {
        usize::try_from(u64::from_le_bytes(self.array()?))
            .map_err(|_| format!("a length beyond memory at byte {}", self.at))
    }

    pub(super) fn str(&mut self, n: usize) -> Result<Value, String> {
        let at = self.at;
        let s = std::str::from_utf8(self.take(n)?)
            .map_err(|_| format!("a string that is not UTF-8 at byte {at}"))?;
        Ok(Value::Str(s.into()))
    }

    /// A text line of GLOBAL (a module or a name), without its newline.
    pub(super) fn line(&mut self) -> Result<String, String> {
        let rest = &self.bytes[self.at..];
        let len = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| format!("a global's name has no end at byte {}", self.at))?;
        let line = std::str::from_utf8(&rest[..len])
            .map_err(|_| format!("a global's name is not UTF-8 at byte {}", self.at))?;
        self.at += len + 1;
        Ok(line.to_string())
    }

    /// A little-endian two's complement int of `n` bytes (LONG1, LONG4); wider than 64 bits
    /// is opaque.
    pub(super) fn long(&mut self, n: usize) -> Result<Value, String> {
        let bytes = self.take(n)?;
        if n > 8 {
            return Ok(Value::Opaque);
        }
        let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
        let mut wide = [if negative { 0xff } else { 0 }; 8];
        wide[..n].copy_from_slice(bytes);
        Ok(Value::Int(i64::from_le_bytes(wide)))
    }
}
