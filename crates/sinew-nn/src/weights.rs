//! State dicts in safetensors files, the format PyTorch (`safetensors.torch`) and Hugging Face
//! use: memory-mapped loading, atomic saving, and errors that name the file and the fault.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use half::{bf16, f16};
use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};
use sinew_tensor::{DType, Error, ExternalError, Result, Tensor};

use crate::StateDict;

/// A weights file that could not be read or written: the path and what went wrong.
#[derive(Debug)]
pub struct WeightsFileError {
    /// The file.
    pub path: PathBuf,
    /// The fault (I/O error, corrupt header, unsupported dtype, ...).
    pub fault: String,
}

impl fmt::Display for WeightsFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.fault)
    }
}

impl std::error::Error for WeightsFileError {}

pub(crate) fn file_error(path: &Path, fault: impl fmt::Display) -> Error {
    Error::External {
        context: "weights file",
        source: ExternalError::new(WeightsFileError {
            path: path.to_path_buf(),
            fault: fault.to_string(),
        }),
    }
}

/// Reads a weights file in either format, told apart by its first bytes: a `torch.save` file
/// (a zip archive: [`crate::load_pytorch`]) or safetensors ([`load_safetensors`]).
pub fn load_weights(path: impl AsRef<Path>) -> Result<StateDict> {
    let path = path.as_ref();
    let mut magic = [0u8; 4];
    let mut file = File::open(path).map_err(|e| file_error(path, e))?;
    let read = std::io::Read::read(&mut file, &mut magic).map_err(|e| file_error(path, e))?;
    if magic[..read].starts_with(b"PK\x03\x04") || magic[..read].starts_with(&[0x80]) {
        crate::load_pytorch(path)
    } else {
        load_safetensors(path)
    }
}

/// Writes `sd` atomically in the format the path's extension names: `.pt` or `.pth` as
/// `torch.save` would ([`crate::save_pytorch`], for `torch.load`), anything else safetensors
/// ([`save_safetensors`]).
pub fn save_weights(sd: &StateDict, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    match path.extension().and_then(|e| e.to_str()) {
        Some("pt" | "pth") => crate::save_pytorch(sd, path),
        _ => save_safetensors(sd, path),
    }
}

/// Reads a safetensors file into a state dict (in the file's key order). The file is memory
/// mapped; each tensor is copied out once.
pub fn load_safetensors(path: impl AsRef<Path>) -> Result<StateDict> {
    Ok(load_safetensors_with_metadata(path)?.0)
}

/// [`load_safetensors`] plus the header's string metadata (empty when there is none).
pub fn load_safetensors_with_metadata(
    path: impl AsRef<Path>,
) -> Result<(StateDict, HashMap<String, String>)> {
    read_mapped(path.as_ref(), |bytes| {
        let sd = parse(bytes)?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| format!("{e:?}"))?;
        Ok((sd, header.metadata().clone().unwrap_or_default()))
    })
}

/// `parse` of the file at `path`, memory-mapped; an error names the file and the fault.
pub(crate) fn read_mapped<T>(
    path: &Path,
    parse: impl FnOnce(&[u8]) -> std::result::Result<T, String>,
) -> Result<T> {
    let file = File::open(path).map_err(|e| file_error(path, e))?;
    // SAFETY: the map is read-only and lives only inside this function; `parse` copies what it
    // keeps into tensors before the map is dropped. Another process truncating the file while
    // we read could fault (a documented limit of memory mapping, shared with PyTorch's loader).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| file_error(path, e))?;
    parse(&map).map_err(|fault| file_error(path, fault))
}

/// Parses safetensors bytes (from a file or memory).
pub fn parse(bytes: &[u8]) -> std::result::Result<StateDict, String> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| format!("not a valid safetensors file: {e:?}"))?;
    let mut names: Vec<(usize, String)> = Vec::new();
    // Keep the on-disk order (safetensors sorts by offset): stable and deterministic.
    for (name, view) in st.tensors() {
        let offset = view.data().as_ptr() as usize;
        names.push((offset, name));
    }
    names.sort();
    let mut sd = StateDict::new();
    for (_, name) in names {
        let view = st
            .tensor(&name)
            .map_err(|e| format!("tensor {name:?}: {e:?}"))?;
        let t = to_tensor(&view).map_err(|e| format!("tensor {name:?}: {e}"))?;
        sd.insert(name, t);
    }
    Ok(sd)
}

fn to_tensor(view: &TensorView<'_>) -> std::result::Result<Tensor, String> {
    let dtype = match view.dtype() {
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::I64 => DType::I64,
        Dtype::U8 => DType::U8,
        Dtype::BOOL => DType::Bool,
        other => return Err(format!("unsupported dtype {other:?}")),
    };
    tensor_from_le_bytes(dtype, view.data(), view.shape().to_vec())
}

/// A tensor of `dtype` and `shape` from its elements' little-endian bytes, row-major (a bool is
/// any nonzero byte). The caller has checked that `data` holds exactly the shape's elements.
pub(crate) fn tensor_from_le_bytes(
    dtype: DType,
    data: &[u8],
    shape: Vec<usize>,
) -> std::result::Result<Tensor, String> {
    let t = match dtype {
        DType::F32 => Tensor::from_vec(bytemuck::pod_collect_to_vec::<u8, f32>(data), shape),
        DType::F64 => Tensor::from_vec(bytemuck::pod_collect_to_vec::<u8, f64>(data), shape),
        DType::F16 => Tensor::from_vec(bytemuck::pod_collect_to_vec::<u8, f16>(data), shape),
        DType::BF16 => Tensor::from_vec(bytemuck::pod_collect_to_vec::<u8, bf16>(data), shape),
        DType::I64 => Tensor::from_vec(bytemuck::pod_collect_to_vec::<u8, i64>(data), shape),
        DType::U8 => Tensor::from_vec(data.to_vec(), shape),
        DType::Bool => Tensor::from_vec(data.iter().map(|&b| b != 0).collect::<Vec<_>>(), shape),
    };
    t.map_err(|e| e.to_string())
}

/// Raw little-endian bytes and safetensors dtype of a tensor.
fn to_bytes(t: &Tensor) -> Result<(Dtype, Vec<u8>)> {
    let dtype = match t.dtype() {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
        DType::I64 => Dtype::I64,
        DType::U8 => Dtype::U8,
        DType::Bool => Dtype::BOOL,
    };
    Ok((dtype, le_bytes(t)?))
}

/// A tensor's elements as little-endian bytes, row-major (a bool as 0 or 1), copied to the host.
pub(crate) fn le_bytes(t: &Tensor) -> Result<Vec<u8>> {
    let t = t.detach().contiguous()?;
    Ok(match t.dtype() {
        DType::F32 => bytemuck::cast_slice(&t.to_vec::<f32>()?).to_vec(),
        DType::F64 => bytemuck::cast_slice(&t.to_vec::<f64>()?).to_vec(),
        DType::F16 => bytemuck::cast_slice(&t.to_vec::<f16>()?).to_vec(),
        DType::BF16 => bytemuck::cast_slice(&t.to_vec::<bf16>()?).to_vec(),
        DType::I64 => bytemuck::cast_slice(&t.to_vec::<i64>()?).to_vec(),
        DType::U8 => t.to_vec::<u8>()?,
        DType::Bool => t.to_vec::<bool>()?.into_iter().map(u8::from).collect(),
    })
}

/// Serialises a state dict to safetensors bytes.
pub fn serialize(sd: &StateDict) -> Result<Vec<u8>> {
    serialize_with_metadata(sd, None)
}

/// Serialises a state dict with string metadata in the header.
pub fn serialize_with_metadata(
    sd: &StateDict,
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let raw = sd
        .iter()
        .map(|(n, t)| Ok((n.to_string(), to_bytes(t)?, t.dims().to_vec())))
        .collect::<Result<Vec<_>>>()?;
    let views = raw
        .iter()
        .map(|(n, (dtype, bytes), shape)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::invalid("save_safetensors", format!("tensor {n:?}: {e:?}")))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, &metadata)
        .map_err(|e| Error::invalid("save_safetensors", format!("{e:?}")))
}

/// Writes `sd` to `path` atomically: the bytes go to a temporary file in the same directory,
/// which is flushed to disk and then renamed over `path`, so a crash leaves either the old
/// file or the new one, never a partial file.
pub fn save_safetensors(sd: &StateDict, path: impl AsRef<Path>) -> Result<()> {
    save_safetensors_with_metadata(sd, None, path)
}

/// [`save_safetensors`] with string metadata in the header (atomic as well).
pub fn save_safetensors_with_metadata(
    sd: &StateDict,
    metadata: Option<HashMap<String, String>>,
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    let bytes = serialize_with_metadata(sd, metadata)?;
    write_atomic(path, &bytes).map_err(|e| file_error(path, e))
}

/// Writes `bytes` to `path` through a temporary file and a rename. The temporary file's name
/// is unique to the call (process id and a count), so two threads saving to one path at once
/// each rename a whole file of their own: the last rename wins, and no file is torn.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        CALLS.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // Persist the rename itself (best effort: not every platform can open a directory).
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
