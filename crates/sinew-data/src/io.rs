//! Reading whole files, transparently gunzipping when the content starts with the gzip magic.

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;

use crate::alloc::MAX_BUFFER_BYTES;
use crate::error::{DataError, Result};

/// The two bytes every gzip stream starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The file's bytes, decompressed if it is gzip (detected by content, not by name).
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    gunzip_if_gzip(raw, path)
}

/// `raw` decompressed if it starts with the gzip magic, else `raw` itself; `path` names the
/// source in errors. The output is grown fallibly and capped at [`MAX_BUFFER_BYTES`], so a
/// decompression bomb or a lying size trailer gives an error, never an abort.
pub fn gunzip_if_gzip(raw: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
    if raw.len() < 2 || raw[..2] != GZIP_MAGIC {
        return Ok(raw);
    }
    // The gzip trailer's last 4 bytes hold the uncompressed size mod 2^32: only a capacity hint,
    // bounded by deflate's best ratio (about 1032:1) and 1 GiB.
    let hint = match raw.len().checked_sub(4).and_then(|start| raw.get(start..)) {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]) as usize,
        _ => 0,
    };
    let hint = hint.min(raw.len().saturating_mul(1032)).min(1 << 30);
    let mut out: Vec<u8> = Vec::new();
    // A failed hint reservation is not an error: the loop below reserves as it goes.
    let _ = out.try_reserve_exact(hint);
    let corrupt = |e: std::io::Error| {
        DataError::format(path, format!("corrupt or truncated gzip stream: {e}"))
    };
    let mut decoder = GzDecoder::new(&raw[..]);
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let n = match decoder.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(e)),
        };
        if out.len() + n > MAX_BUFFER_BYTES {
            return Err(DataError::TooLarge {
                op: "gunzip",
                detail: format!(
                    "{}: decompresses to more than {MAX_BUFFER_BYTES} bytes",
                    path.display()
                ),
            });
        }
        out.try_reserve(n).map_err(|e| DataError::TooLarge {
            op: "gunzip",
            detail: format!("{}: cannot grow the output buffer: {e}", path.display()),
        })?;
        out.extend_from_slice(&chunk[..n]);
    }
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
