//! The `torch.save` format before PyTorch 1.6 (still written with
//! `_use_new_zipfile_serialization=False`, and the format of older torchvision weights such as
//! `vgg16-397923af.pth`): five pickles in a row (a magic number, the protocol version 1001,
//! the writer's system information, the object, the sorted storage keys), then each storage as
//! its element count (a little-endian i64) and its bytes.

use std::collections::HashMap;

use super::Source;
use super::pickle::{Value, unpickle};

/// The first pickle's value: LONG1 of the 10-byte int 0x1950a86a20f9469cfc6c, then STOP.
const MAGIC: [u8; 13] = [
    0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
];

/// Where the first pickle ends, if it is the magic number: PROTO (any protocol `torch.save`
/// takes), a FRAME from protocol 4 on, then [`MAGIC`].
pub(super) fn magic_end(bytes: &[u8]) -> Option<usize> {
    let [0x80, protocol, rest @ ..] = bytes else {
        return None;
    };
    let (skip, rest) = match rest {
        [0x95, frame @ ..] if *protocol >= 4 => (11, frame.get(8..)?),
        _ => (2, rest),
    };
    rest.starts_with(&MAGIC).then_some(skip + MAGIC.len())
}

/// The bytes each element of a storage class takes (the classes Sinew cannot load too, so that
/// their data can be stepped over).
fn element_width(class: &str) -> Option<usize> {
    Some(match class {
        "DoubleStorage" | "LongStorage" | "ComplexFloatStorage" => 8,
        "FloatStorage" | "IntStorage" => 4,
        "HalfStorage" | "BFloat16Storage" | "ShortStorage" => 2,
        "ByteStorage" | "CharStorage" | "BoolStorage" => 1,
        "ComplexDoubleStorage" => 16,
        _ => return None,
    })
}

/// The file's object and where each storage's bytes are; the magic number ends at `magic_end`.
pub(super) fn parse(bytes: &[u8], magic_end: usize) -> Result<(Value, Source<'_>), String> {
    let version = unpickle(bytes, magic_end).map_err(|e| format!("version: {e}"))?;
    if !matches!(version.value, Value::Int(1001)) {
        return Err("a pre-1.6 torch.save file whose protocol version is not 1001".into());
    }
    let info = unpickle(bytes, version.end).map_err(|e| format!("system info: {e}"))?;
    let little = match &info.value {
        Value::Dict(items) => items.0.borrow().chunks_exact(2).any(|kv| {
            matches!(&kv[0], Value::Str(k) if &**k == "little_endian")
                && matches!(kv[1], Value::Bool(true))
        }),
        _ => false,
    };
    if !little {
        return Err("a pre-1.6 torch.save file not written little-endian".into());
    }
    let object = unpickle(bytes, info.end).map_err(|e| format!("object: {e}"))?;
    let keys = unpickle(bytes, object.end).map_err(|e| format!("storage keys: {e}"))?;
    let Value::List(keys_list) = &keys.value else {
        return Err("the storage keys are not a list".into());
    };
    let storages: HashMap<&str, _> = object
        .storages
        .iter()
        .map(|s| (s.key.as_str(), s))
        .collect();
    let mut at = keys.end;
    let mut runs = HashMap::new();
    for key in keys_list.0.borrow().iter() {
        let Value::Str(key) = key else {
            return Err("a storage key is not a string".into());
        };
        let storage = storages
            .get(&**key)
            .ok_or_else(|| format!("storage {key:?} is named by no tensor"))?;
        let width = element_width(&storage.class)
            .ok_or_else(|| format!("storage {key:?} of unknown class {}", storage.class))?;
        let count = bytes
            .get(at..at.saturating_add(8))
            .ok_or_else(|| format!("the file ends before storage {key:?}"))?;
        let count = i64::from_le_bytes(count.try_into().map_err(|_| "a short count")?);
        if usize::try_from(count).ok() != Some(storage.numel) {
            return Err(format!(
                "storage {key:?} holds {count} elements, its tensors say {}",
                storage.numel
            ));
        }
        let start = at + 8;
        let end = storage
            .numel
            .checked_mul(width)
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| format!("the file ends inside storage {key:?}"))?;
        runs.insert(key.to_string(), &bytes[start..end]);
        at = end;
    }
    Ok((object.value, Source::Legacy(runs)))
}
