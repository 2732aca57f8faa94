//! What the pickle's calls and persistent ids mean: the tensor-rebuilding functions of
//! `torch._utils`, `collections.OrderedDict` and `torch.save`'s storage records. Every other
//! call makes an opaque value; nothing is imported or run.

use std::rc::Rc;

use super::pickle::{StorageRef, TensorRef, Value, as_index};

/// The items of a tuple value.
fn tuple(v: &Value, what: &str) -> Result<Vec<Value>, String> {
    match v {
        Value::Tuple(items) => Ok(items.0.borrow().clone()),
        _ => Err(format!("{what} is not a tuple")),
    }
}

/// `callable(*args)` (REDUCE).
pub(super) fn call(callable: &Value, args: &Value) -> Result<Value, String> {
    let Value::Global(global) = callable else {
        return Ok(Value::Opaque);
    };
    let (module, name) = (global.0.as_str(), global.1.as_str());
    match (module, name) {
        ("collections", "OrderedDict") => ordered_dict(&tuple(args, "OrderedDict's arguments")?),
        ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => {
            rebuild_tensor(&tuple(args, "a tensor's arguments")?)
        }
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
            match tuple(args, "a parameter's arguments")?.first() {
                Some(t @ Value::Tensor(_)) => Ok(t.clone()),
                _ => Err("a parameter without a tensor".into()),
            }
        }
        // Sparse, quantized, nested or subclassed tensors: never skipped silently.
        ("torch._utils", other) if other.starts_with("_rebuild") => Err(format!(
            "torch._utils.{other}: only dense tensors can be loaded"
        )),
        // A set (a module's `_non_persistent_buffers_set`): its items, as a list.
        ("builtins" | "__builtin__", "set" | "frozenset") => {
            match tuple(args, "a set's arguments")?.first() {
                Some(list @ Value::List(_)) => Ok(list.clone()),
                _ => Ok(Value::List(Rc::new(super::pickle::Items::default()))),
            }
        }
        // Any other class or function: an object whose attributes BUILD may set.
        _ => Ok(Value::Object(Rc::new(super::pickle::Items::default()))),
    }
}

/// `OrderedDict()` or `OrderedDict([(key, value), ...])`.
fn ordered_dict(args: &[Value]) -> Result<Value, String> {
    let mut items = Vec::new();
    if let Some(Value::List(pairs)) = args.first() {
        for pair in pairs.0.borrow().iter() {
            match tuple(pair, "an OrderedDict item")?.as_slice() {
                [k, v] => items.extend([k.clone(), v.clone()]),
                _ => return Err("an OrderedDict item is not a pair".into()),
            }
        }
    }
    Ok(Value::Dict(Rc::new(super::pickle::Items(items.into()))))
}

/// `_rebuild_tensor_v2(storage, offset, size, stride, ...)`: a view whose every element lies
/// inside the storage (checked arithmetic; an empty view needs nothing).
fn rebuild_tensor(args: &[Value]) -> Result<Value, String> {
    let [Value::Storage(storage), offset, size, stride, ..] = args else {
        return Err("a tensor is not (storage, offset, size, stride, ...)".into());
    };
    let offset = as_index(offset, "a tensor's offset")?;
    let ints = |v: &Value, what: &str| -> Result<Vec<usize>, String> {
        tuple(v, what)?.iter().map(|x| as_index(x, what)).collect()
    };
    let size = ints(size, "a tensor's size")?;
    let stride = ints(stride, "a tensor's stride")?;
    if size.len() != stride.len() {
        return Err(format!(
            "a tensor has {} dims and {} strides",
            size.len(),
            stride.len()
        ));
    }
    if !size.contains(&0) {
        let mut last = offset;
        for (&n, &s) in size.iter().zip(&stride) {
            last = (n - 1)
                .checked_mul(s)
                .and_then(|span| last.checked_add(span))
                .ok_or("a tensor's extent overflows")?;
        }
        if last >= storage.numel {
            return Err(format!(
                "a tensor reaches element {last} of a storage of {}",
                storage.numel
            ));
        }
    }
    Ok(Value::Tensor(Rc::new(TensorRef {
        storage: storage.clone(),
        offset,
        size,
        stride,
    })))
}

/// A persistent id: `('storage', torch.<Class>Storage, key, location, numel)`, with a sixth
/// item in the format before PyTorch 1.6 (a storage view's metadata: `None` is supported).
pub(super) fn persistent(pid: &Value) -> Result<Rc<StorageRef>, String> {
    let items = tuple(pid, "a persistent id")?;
    let (head, view) = match items.as_slice() {
        [head @ .., view] if items.len() == 6 => (head, Some(view)),
        head => (head, None),
    };
    let [
        Value::Str(kind),
        Value::Global(class),
        Value::Str(key),
        _,
        numel,
    ] = head
    else {
        return Err("a persistent id is not ('storage', class, key, location, numel)".into());
    };
    if &**kind != "storage" || class.0 != "torch" {
        return Err(format!(
            "a persistent id of kind {kind:?} and class {}.{}",
            class.0, class.1
        ));
    }
    if view.is_some_and(|v| !matches!(v, Value::None)) {
        return Err("a view of a storage (PyTorch before 0.4): not supported".into());
    }
    Ok(Rc::new(StorageRef {
        class: class.1.clone(),
        key: key.to_string(),
        numel: as_index(numel, "a storage's size")?,
    }))
}
