//! Writing PyTorch's own format: the zip archive `torch.save(state_dict, path)` writes, which
//! `torch.load(path)` reads (with `weights_only=True`, its default: the pickle names only
//! `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` and the storage classes).

use std::io::{Cursor, Write};
use std::path::Path;

use sinew_tensor::{DType, Error, Result, Tensor};

use crate::StateDict;
use crate::weights::{file_error, le_bytes, write_atomic};

/// Pickle opcodes used here.
const PROTO: u8 = 0x80;
const GLOBAL: u8 = b'c';
const MARK: u8 = b'(';
const TUPLE: u8 = b't';
const EMPTY_TUPLE: u8 = b')';
const REDUCE: u8 = b'R';
const BINPERSID: u8 = b'Q';
const NEWFALSE: u8 = 0x89;
const SETITEMS: u8 = b'u';
const STOP: u8 = b'.';

/// The storage class `torch.save` names for a dtype (the loader reads the same names).
pub(super) fn storage_class(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "FloatStorage",
        DType::F64 => "DoubleStorage",
        DType::F16 => "HalfStorage",
        DType::BF16 => "BFloat16Storage",
        DType::I64 => "LongStorage",
        DType::U8 => "ByteStorage",
        DType::Bool => "BoolStorage",
    }
}

/// The pickle being written.
struct Pickle(Vec<u8>);

impl Pickle {
    fn op(&mut self, op: u8) {
        self.0.push(op);
    }

    fn global(&mut self, module: &str, name: &str) {
        self.op(GLOBAL);
        self.0
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
    }

    fn str(&mut self, s: &str) {
        self.op(b'X');
        // A key (checked below 4 GiB by `serialize_pytorch`) or a number's digits.
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }

    /// A non-negative int: BININT below 2^31, else LONG1 of 8 bytes.
    fn int(&mut self, v: usize) {
        match i32::try_from(v) {
            Ok(small) => {
                self.op(b'J');
                self.0.extend_from_slice(&small.to_le_bytes());
            }
            Err(_) => {
                self.0.extend_from_slice(&[0x8a, 8]);
                self.0.extend_from_slice(&(v as u64).to_le_bytes());
            }
        }
    }

    fn ints(&mut self, values: impl Iterator<Item = usize>) {
        self.op(MARK);
        for v in values {
            self.int(v);
        }
        self.op(TUPLE);
    }

    /// `key: _rebuild_tensor_v2(<storage `index`>, 0, size, stride, False, OrderedDict())`.
    fn tensor(&mut self, key: &str, index: usize, t: &Tensor) {
        self.str(key);
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.op(MARK);
        self.op(MARK);
        self.str("storage");
        self.global("torch", storage_class(t.dtype()));
        self.str(&index.to_string());
        self.str("cpu");
        self.int(t.elem_count());
        self.op(TUPLE);
        self.op(BINPERSID);
        self.int(0);
        self.ints(t.dims().iter().copied());
        // Row-major strides, in elements.
        let dims = t.dims();
        let strides = (0..dims.len()).map(|d| dims[d + 1..].iter().product::<usize>());
        self.ints(strides);
        self.op(NEWFALSE);
        self.global("collections", "OrderedDict");
        self.op(EMPTY_TUPLE);
        self.op(REDUCE);
        self.op(TUPLE);
        self.op(REDUCE);
    }
}

/// The bytes of a `torch.save` file of `sd` (see [`save_pytorch`]); `name` is the archive's
/// folder (PyTorch uses the file's stem).
pub fn serialize_pytorch(sd: &StateDict, name: &str) -> Result<Vec<u8>> {
    if let Some((key, _)) = sd.iter().find(|(k, _)| u32::try_from(k.len()).is_err()) {
        let start: String = key.chars().take(20).collect();
        return Err(Error::invalid(
            "save_pytorch",
            format!("a key of 4 GiB: {start}..."),
        ));
    }
    let mut pickle = Pickle(vec![PROTO, 2]);
    pickle.global("collections", "OrderedDict");
    pickle.op(EMPTY_TUPLE);
    pickle.op(REDUCE);
    pickle.op(MARK);
    for (index, (key, t)) in sd.iter().enumerate() {
        pickle.tensor(key, index, t);
    }
    pickle.op(SETITEMS);
    pickle.op(STOP);
    let fault = |e: &dyn std::fmt::Display| Error::invalid("save_pytorch", e.to_string());
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .with_alignment(64);
    let entry = |zip: &mut zip::ZipWriter<_>, path: String, bytes: &[u8]| -> Result<()> {
        let options = stored.large_file(bytes.len() > u32::MAX as usize);
        zip.start_file(path, options).map_err(|e| fault(&e))?;
        zip.write_all(bytes).map_err(|e| fault(&e))
    };
    entry(&mut zip, format!("{name}/data.pkl"), &pickle.0)?;
    entry(&mut zip, format!("{name}/byteorder"), b"little")?;
    for (index, (_, t)) in sd.iter().enumerate() {
        entry(&mut zip, format!("{name}/data/{index}"), &le_bytes(t)?)?;
    }
    entry(&mut zip, format!("{name}/version"), b"3\n")?;
    Ok(zip.finish().map_err(|e| fault(&e))?.into_inner())
}

/// Writes `sd` as `torch.save(state_dict, path)` would, atomically, so that PyTorch's
/// `model.load_state_dict(torch.load(path))` reads it with no other library (every tensor
/// contiguous, on the CPU, in its dtype).
pub fn save_pytorch(sd: &StateDict, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty() && !s.contains(['/', '\\']))
        .unwrap_or("archive");
    let bytes = serialize_pytorch(sd, stem)?;
    write_atomic(path, &bytes).map_err(|e| file_error(path, e))
}
