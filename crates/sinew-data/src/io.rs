//! Reading whole files, transparently gunzipping when the content starts with the gzip magic.

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;

use crate::error::{DataError, Result};

/// The two bytes every gzip stream starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The file's bytes, decompressed if it is gzip (detected by content, not by name).
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if raw.len() < 2 || raw[..2] != GZIP_MAGIC {
        return Ok(raw);
    }
    // The gzip trailer's last 4 bytes hold the uncompressed size mod 2^32: a capacity hint.
    let hint = raw
        .get(raw.len().saturating_sub(4)..)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .unwrap_or(0);
    let mut out = Vec::with_capacity(hint.min(1 << 30));
    GzDecoder::new(&raw[..])
        .read_to_end(&mut out)
        .map_err(|e| DataError::format(path, format!("corrupt or truncated gzip stream: {e}")))?;
    Ok(out)
}

/// Writes `bytes` to `path`, gzip-compressed when `gzip` is set.
pub fn write_maybe_gzip(path: &Path, bytes: &[u8], gzip: bool) -> Result<()> {
    use std::io::Write;
    let data = if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).map_err(|e| DataError::io(path, e))?;
        enc.finish().map_err(|e| DataError::io(path, e))?
    } else {
        bytes.to_vec()
    };
    std::fs::write(path, data).map_err(|e| DataError::io(path, e))
}
