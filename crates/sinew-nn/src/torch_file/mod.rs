//! PyTorch's own checkpoint format, read and written without Python: `torch.save` writes a zip
//! archive of a pickle (`<name>/data.pkl`) and one entry per tensor storage
//! (`<name>/data/<key>`); before PyTorch 1.6 it wrote pickles and storages in a row
//! (`legacy.rs`). So `torch.save(model.state_dict(), "model.pt")` and torchvision's `.pth`
//! weights, old and new, load as they are. The pickle is read by a small machine that builds
//! values and never imports or calls anything (the safety of `torch.load(weights_only=True)`):
//! only dense tensors, dicts, lists, tuples, strings and numbers come out, and objects as
//! their attributes (a pickled `nn.Module` as its state dict).

mod legacy;
mod pickle;
mod reader;
mod rebuild;
mod save;

pub use save::{save_pytorch, serialize_pytorch};

use std::collections::HashMap;
use std::io::{Cursor, Read, Seek};
use std::path::Path;
use std::rc::Rc;

use sinew_tensor::{DType, Result};

use crate::StateDict;
use crate::weights::{read_mapped, tensor_from_le_bytes};
use pickle::{Items, TensorRef, Value};

/// How deep dicts and lists may nest around a tensor.
const MAX_DEPTH: usize = 64;
/// How many values the walk over the pickle's result may visit (shared lists and dicts could
/// otherwise make it exponential).
const MAX_VISITS: usize = 1 << 22;

/// Reads a `torch.save` file (a zip archive, or the format before PyTorch 1.6) into a state
/// dict. The file holds a dict of tensors (a `state_dict()`), or dicts and lists around them
/// (a checkpoint such as `{"model": model.state_dict(), "epoch": 3}`), whose keys join with
/// dots (`model.fc.weight`; take one part with [`StateDict::select`]). Values that are not
/// tensors (numbers, strings, other objects) are skipped; tensors keep their dtype and come out
/// contiguous, views copied out of their storage. A pickled module (`torch.save(model)`) gives
/// what its `state_dict()` would, without importing its class. Sparse, quantized or int32
/// tensors are errors naming the file and the fault.
pub fn load_pytorch(path: impl AsRef<Path>) -> Result<StateDict> {
    read_mapped(path.as_ref(), parse_pytorch)
}

/// Parses the bytes of a `torch.save` file (see [`load_pytorch`]).
pub fn parse_pytorch(bytes: &[u8]) -> std::result::Result<StateDict, String> {
    if let Some(end) = legacy::magic_end(bytes) {
        let (root, source) = legacy::parse(bytes, end)?;
        return state_dict_of(&root, Storages::new(source, bytes.len()));
    }
    if bytes.starts_with(&[0x80]) {
        return Err("a pickle that is not a torch.save file".into());
    }
    // A torch.save archive starts at byte 0. (The zip crate's search for an offset archive,
    // its default, rejected a valid archive PyTorch 2.15 wrote: "Invalid Central Directory
    // header".)
    let config = zip::read::Config {
        archive_offset: zip::read::ArchiveOffset::Known(0),
    };
    let mut zip = zip::ZipArchive::with_config(config, Cursor::new(bytes))
        .map_err(|e| format!("not a torch.save file (a zip archive): {e}"))?;
    let pickle_name = zip
        .file_names()
        .filter_map(|n| n.ok())
        .find(|n| n == "data.pkl" || n.ends_with("/data.pkl"))
        .map(|n| n.into_owned())
        .ok_or("a zip archive without data.pkl: not a torch.save file")?;
    let prefix = pickle_name.trim_end_matches("data.pkl").to_string();
    let byteorder = format!("{prefix}byteorder");
    // Files from before PyTorch 1.10 have no byteorder entry: little-endian.
    if zip.index_for_name(&byteorder).is_some() {
        let order = read_entry(&mut zip, &byteorder, 16)?;
        if order != b"little" {
            return Err(format!(
                "byte order {:?}: only little-endian files are supported",
                String::from_utf8_lossy(&order)
            ));
        }
    }
    let pickle = read_entry(&mut zip, &pickle_name, bytes.len())?;
    let root = pickle::unpickle(&pickle, 0)
        .map_err(|e| format!("{pickle_name}: {e}"))?
        .value;
    let source = Source::Zip {
        zip,
        prefix,
        file_len: bytes.len(),
        read: HashMap::new(),
    };
    state_dict_of(&root, Storages::new(source, bytes.len()))
}

/// The tensors below `root` (the file's object), copied out of `storages`.
fn state_dict_of(
    root: &Value,
    mut storages: Storages<'_>,
) -> std::result::Result<StateDict, String> {
    let mut found = Vec::new();
    match root {
        Value::Dict(_) | Value::List(_) | Value::Tuple(_) => {
            let mut visits = 0;
            collect(root, &mut String::new(), 0, &mut visits, &mut found)?;
        }
        Value::Object(attributes) if module_parts(attributes).is_some() => {
            let mut visits = 0;
            collect(root, &mut String::new(), 0, &mut visits, &mut found)?;
        }
        Value::Tensor(_) => return Err("holds one tensor, not a dict of tensors".into()),
        _ => {
            return Err(
                "holds a pickled object, not a dict of tensors (torch.save(model)? \
                        save model.state_dict() instead)"
                    .into(),
            );
        }
    }
    let mut made: HashMap<*const TensorRef, sinew_tensor::Tensor> = HashMap::new();
    let mut sd = StateDict::new();
    for (key, t) in found {
        if sd.get(&key).is_some() {
            return Err(format!("the key {key:?} appears twice"));
        }
        let tensor = match made.get(&Rc::as_ptr(&t)) {
            Some(done) => done.clone(),
            None => {
                let done = storages.tensor(&t).map_err(|e| format!("{key}: {e}"))?;
                made.insert(Rc::as_ptr(&t), done.clone());
                done
            }
        };
        sd.insert(key, tensor);
    }
    Ok(sd)
}

/// The whole entry `name`, refused when it claims more than `limit` bytes (memory is
/// reserved fallibly).
fn read_entry<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    limit: usize,
) -> std::result::Result<Vec<u8>, String> {
    let mut entry = zip.by_name(name).map_err(|e| format!("{name}: {e}"))?;
    if entry.compression() != zip::CompressionMethod::Stored {
        return Err(format!("{name} is compressed; torch.save stores entries"));
    }
    let size = usize::try_from(entry.size())
        .ok()
        .filter(|&s| s <= limit)
        .ok_or_else(|| format!("{name} claims {} bytes, more than the file", entry.size()))?;
    let mut out = Vec::new();
    out.try_reserve_exact(size)
        .map_err(|e| format!("{name}: {e}"))?;
    entry
        .read_to_end(&mut out)
        .map_err(|e| format!("{name}: {e}"))?;
    Ok(out)
}

/// Gathers the tensors below `v` under dotted paths (dict keys that are strings or ints, list
/// and tuple positions).
fn collect(
    v: &Value,
    path: &mut String,
    depth: usize,
    visits: &mut usize,
    out: &mut Vec<(String, Rc<TensorRef>)>,
) -> std::result::Result<(), String> {
    *visits += 1;
    if *visits > MAX_VISITS {
        return Err(format!("more than {MAX_VISITS} values"));
    }
    if depth > MAX_DEPTH {
        return Err(format!("values nested deeper than {MAX_DEPTH} levels"));
    }
    let mut child = |name: &str, v: &Value| {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(name);
        let done = collect(v, path, depth + 1, visits, out);
        path.truncate(len);
        done
    };
    // A pickled `nn.Module`: what its `state_dict()` holds, under the same names.
    if let Value::Object(attributes) = v
        && let Some(module) = module_parts(attributes)
    {
        let buffers = pairs(&module.buffers).into_iter();
        let persistent = buffers.filter(|(name, _)| !module.transient.contains(name));
        for (name, value) in pairs(&module.parameters).into_iter().chain(persistent) {
            child(&name, &value)?;
        }
        for (name, value) in pairs(&module.children) {
            child(&name, &value)?;
        }
        return Ok(());
    }
    match v {
        Value::Tensor(t) => out.push((path.clone(), t.clone())),
        // A dict, or another object's attributes.
        Value::Dict(items) | Value::Object(items) => {
            for (key, value) in pairs_of(items) {
                child(&key, &value)?;
            }
        }
        Value::List(items) | Value::Tuple(items) => {
            for (i, item) in items.0.borrow().iter().enumerate() {
                child(&i.to_string(), item)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The entries of a dict's (or an object's) items whose keys are strings or ints, the ints
/// written out.
fn pairs_of(items: &Items) -> Vec<(String, Value)> {
    let items = items.0.borrow();
    let key = |k: &Value| match k {
        Value::Str(s) => Some(s.to_string()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    };
    (items.chunks_exact(2))
        .filter_map(|kv| Some((key(&kv[0])?, kv[1].clone())))
        .collect()
}

/// [`pairs_of`] a dict or object value; nothing for another value.
fn pairs(v: &Value) -> Vec<(String, Value)> {
    match v {
        Value::Dict(items) | Value::Object(items) => pairs_of(items),
        _ => Vec::new(),
    }
}

/// What a pickled `nn.Module`'s attributes hold for its `state_dict()`.
struct ModuleParts {
    parameters: Value,
    buffers: Value,
    /// The buffers `state_dict()` leaves out (`register_buffer(..., persistent=False)`).
    transient: Vec<String>,
    children: Value,
}

/// The parts of a module, if `attributes` are a pickled `nn.Module`'s (they hold
/// `_parameters` and `_modules`).
fn module_parts(attributes: &Items) -> Option<ModuleParts> {
    let attributes = pairs_of(attributes);
    let get = |name: &str| {
        let found = attributes.iter().find(|(k, _)| k == name);
        found.map(|(_, v)| v.clone())
    };
    let transient = match get("_non_persistent_buffers_set") {
        Some(Value::List(names)) => (names.0.borrow().iter())
            .filter_map(|n| match n {
                Value::Str(s) => Some(s.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Some(ModuleParts {
        parameters: get("_parameters")?,
        buffers: get("_buffers").unwrap_or(Value::None),
        transient,
        children: get("_modules")?,
    })
}

/// Where the storages' bytes are: entries of the zip archive (each read once), or runs of the
/// file in the format before PyTorch 1.6.
enum Source<'a> {
    /// `<prefix>data/<key>` entries.
    Zip {
        /// The archive.
        zip: zip::ZipArchive<Cursor<&'a [u8]>>,
        /// The folder of `data.pkl`.
        prefix: String,
        /// The archive's length, which no entry can exceed.
        file_len: usize,
        /// The entries read so far.
        read: HashMap<String, Vec<u8>>,
    },
    /// Each storage's bytes by key.
    Legacy(HashMap<String, &'a [u8]>),
}

/// The storages, and what is left of the bytes tensors may take.
struct Storages<'a> {
    source: Source<'a>,
    /// Tensors copied out of storages may total this many bytes more (views of one storage
    /// could otherwise ask for far more memory than the file holds).
    budget: usize,
}

impl<'a> Storages<'a> {
    fn new(source: Source<'a>, file_len: usize) -> Self {
        Storages {
            source,
            budget: file_len.saturating_mul(4).saturating_add(1 << 20),
        }
    }

    /// The bytes of storage `key`.
    fn data(&mut self, key: &str) -> std::result::Result<&[u8], String> {
        match &mut self.source {
            Source::Legacy(map) => map
                .get(key)
                .copied()
                .ok_or_else(|| format!("storage {key:?} is not in the file")),
            Source::Zip {
                zip,
                prefix,
                file_len,
                read,
            } => {
                if !read.contains_key(key) {
                    let data = read_entry(zip, &format!("{prefix}data/{key}"), *file_len)?;
                    read.insert(key.to_string(), data);
                }
                Ok(&read[key])
            }
        }
    }

    /// The tensor `t`: its view of the storage copied out, contiguous.
    fn tensor(&mut self, t: &TensorRef) -> std::result::Result<sinew_tensor::Tensor, String> {
        let class = t.storage.class.as_str();
        let dtype = (DType::ALL.into_iter())
            .find(|&d| save::storage_class(d) == class)
            .ok_or_else(|| {
                format!(
                    "a {class}: Sinew reads float, double, half, bfloat16, long, byte and \
                     bool tensors"
                )
            })?;
        let width = dtype.size_in_bytes();
        let numel = (t.size.iter())
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or("too many elements")?;
        let need = numel.checked_mul(width).ok_or("too many bytes")?;
        self.budget = self
            .budget
            .checked_sub(need)
            .ok_or("its tensors would take more memory than the file could hold")?;
        let want = t.storage.numel.checked_mul(width).ok_or("too many bytes")?;
        let key = &t.storage.key;
        let data = self.data(key)?;
        if data.len() < want {
            return Err(format!(
                "storage {key} holds {} bytes, not the {want} of {} {class} elements",
                data.len(),
                t.storage.numel
            ));
        }
        let mut out = Vec::new();
        out.try_reserve_exact(need).map_err(|e| e.to_string())?;
        gather(data, t, width, &mut out);
        tensor_from_le_bytes(dtype, &out, t.size.clone())
    }
}

/// Appends the elements of the view `t` (of `width` bytes each) in row-major order; every
/// index was checked to lie inside `data` when the view was rebuilt.
fn gather(data: &[u8], t: &TensorRef, width: usize, out: &mut Vec<u8>) {
    if t.size.contains(&0) {
        return;
    }
    let rank = t.size.len();
    // A row-major view (what state dicts hold): one copy.
    let mut expected = 1;
    let row_major = (0..rank).rev().all(|d| {
        let ok = t.size[d] == 1 || t.stride[d] == expected;
        expected *= t.size[d];
        ok
    });
    if row_major {
        out.extend_from_slice(&data[t.offset * width..(t.offset + expected) * width]);
        return;
    }
    let mut index = vec![0usize; rank];
    loop {
        let at: usize = t.offset
            + index
                .iter()
                .zip(&t.stride)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        out.extend_from_slice(&data[at * width..(at + 1) * width]);
        // The odometer: the last dim moves fastest.
        let mut d = rank;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            if index[d] < t.size[d] {
                break;
            }
            index[d] = 0;
        }
    }
}
