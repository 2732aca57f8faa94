//! The part of Python's pickle format that `torch.save` writes (protocols 2 to 5): a stack
//! machine that builds plain values (numbers, strings, tuples, lists, dicts) and tensor
//! references, and never imports or runs anything. A global is only a name: the few that
//! rebuild tensors and ordered dicts are understood, calling any other makes an opaque object
//! (a checkpoint's `argparse.Namespace`, a NumPy scalar), which the loader skips.

use std::cell::RefCell;
use std::rc::Rc;

use super::reader::Reader;

/// A tensor's storage, as `torch.save` records it (its persistent id): the archive entry
/// `data/<key>` holds `numel` elements of the storage class's dtype.
#[derive(Debug)]
pub(super) struct StorageRef {
    /// The class name, `FloatStorage`, `LongStorage`, ...
    pub class: String,
    /// The entry's name under `data/`.
    pub key: String,
    /// Elements in the storage.
    pub numel: usize,
}

/// A tensor: `size` and `stride` (in elements) from `offset` into a storage, bounds checked.
#[derive(Debug)]
pub(super) struct TensorRef {
    /// The storage it views.
    pub storage: Rc<StorageRef>,
    /// The first element's index.
    pub offset: usize,
    /// The dims.
    pub size: Vec<usize>,
    /// The strides, in elements.
    pub stride: Vec<usize>,
}

/// The items of a tuple or list, or a dict's keys and values alternating. Dropping one takes
/// its nested items apart in a loop, so that a hostile file nesting a million tuples cannot
/// overflow the stack when its values are dropped.
#[derive(Debug, Default)]
pub(super) struct Items(pub RefCell<Vec<Value>>);

impl Drop for Items {
    fn drop(&mut self) {
        let mut pending = std::mem::take(self.0.get_mut());
        while let Some(value) = pending.pop() {
            if let Value::Tuple(rc) | Value::List(rc) | Value::Dict(rc) | Value::Object(rc) = value
                && let Ok(mut items) = Rc::try_unwrap(rc)
            {
                pending.append(items.0.get_mut());
            }
        }
    }
}

/// A value on the machine's stack.
#[derive(Debug, Clone)]
pub(super) enum Value {
    /// `None`.
    None,
    /// A bool.
    Bool(bool),
    /// An int that fits 64 bits.
    Int(i64),
    /// A str.
    Str(Rc<str>),
    /// A tuple.
    Tuple(Rc<Items>),
    /// A list (shared: appends reach every reference, as in Python).
    List(Rc<Items>),
    /// A dict: keys and values alternating, in insertion order.
    Dict(Rc<Items>),
    /// An instance of a class (not imported): its attributes as BUILD set them, names and
    /// values alternating (a pickled `nn.Module`'s `_parameters`, `_buffers`, `_modules`, ...).
    Object(Rc<Items>),
    /// A global name (`module`, `name`), not imported.
    Global(Rc<(String, String)>),
    /// A storage (a persistent id).
    Storage(Rc<StorageRef>),
    /// A tensor.
    Tensor(Rc<TensorRef>),
    /// Anything else (floats, bytes, big ints): kept opaque. Sets are lists.
    Opaque,
}

impl Value {
    fn new_items(items: Vec<Value>) -> Rc<Items> {
        Rc::new(Items(RefCell::new(items)))
    }

    fn int(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }
}

/// What one pickle gave: the value it stops with, the byte after its STOP and the storages its
/// persistent ids named (in order).
pub(super) struct Unpickled {
    /// The value.
    pub value: Value,
    /// Where the next pickle or data starts.
    pub end: usize,
    /// Every storage record, referenced by a tensor that is kept or not.
    pub storages: Vec<Rc<StorageRef>>,
}

/// Runs the pickle that starts at byte `start` of `bytes`.
pub(super) fn unpickle(bytes: &[u8], start: usize) -> Result<Unpickled, String> {
    let mut machine = Machine {
        stack: Vec::new(),
        marks: Vec::new(),
        memo: std::collections::HashMap::new(),
        storages: Vec::new(),
    };
    let mut r = Reader { bytes, at: start };
    loop {
        let at = r.at;
        let op = r.u8()?;
        if op == b'.' {
            return Ok(Unpickled {
                value: machine.pop(at)?,
                end: r.at,
                storages: machine.storages,
            });
        }
        machine
            .step(op, &mut r)
            .map_err(|e| format!("{e} (opcode {op:#04x} at byte {at})"))?;
    }
}

/// The stack, the marks (stack lengths at each MARK), the memo and the storages seen.
struct Machine {
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: std::collections::HashMap<usize, Value>,
    storages: Vec<Rc<StorageRef>>,
}

impl Machine {
    fn pop(&mut self, at: usize) -> Result<Value, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(format!("the stack is empty at byte {at}"));
        }
        self.stack.pop().ok_or_else(|| "the stack is empty".into())
    }

    fn top(&self) -> Result<&Value, String> {
        self.stack.last().ok_or_else(|| "the stack is empty".into())
    }

    /// The values above the last MARK, which is removed.
    fn since_mark(&mut self) -> Result<Vec<Value>, String> {
        let mark = self.marks.pop().ok_or("no MARK to pop to")?;
        Ok(self.stack.split_off(mark))
    }

    fn push_items(&mut self, wrap: fn(Rc<Items>) -> Value, items: Vec<Value>) {
        self.stack.push(wrap(Value::new_items(items)));
    }

    /// Adds `items` to the list (a set too) or dict (keys and values alternating) on top of the
    /// stack. An object takes a dict's items (a `dict` subclass) and drops a list's.
    fn extend_top(&mut self, items: Vec<Value>, dict: bool) -> Result<(), String> {
        match (self.top()?, dict) {
            (Value::List(list), false) => list.0.borrow_mut().extend(items),
            (Value::Dict(map) | Value::Object(map), true) if items.len().is_multiple_of(2) => {
                map.0.borrow_mut().extend(items)
            }
            (Value::Object(_), false) => {}
            _ => return Err("adds items to a value that does not hold them".into()),
        }
        Ok(())
    }

    fn step(&mut self, op: u8, r: &mut Reader<'_>) -> Result<(), String> {
        let at = r.at;
        match op {
            0x80 => {
                let protocol = r.u8()?;
                if protocol > 5 {
                    return Err(format!("pickle protocol {protocol} is newer than 5"));
                }
            }
            0x95 => {
                r.u64()?; // FRAME: a length hint only
            }
            b'(' => self.marks.push(self.stack.len()),
            b'0' => {
                if self.marks.last() == Some(&self.stack.len()) {
                    self.marks.pop();
                } else {
                    self.pop(at)?;
                }
            }
            b'1' => drop(self.since_mark()?),
            b'2' => self.stack.push(self.top()?.clone()),
            b'N' => self.stack.push(Value::None),
            0x88 => self.stack.push(Value::Bool(true)),
            0x89 => self.stack.push(Value::Bool(false)),
            b'K' => self.stack.push(Value::Int(i64::from(r.u8()?))),
            b'M' => self
                .stack
                .push(Value::Int(i64::from(u16::from_le_bytes(r.array()?)))),
            b'J' => self
                .stack
                .push(Value::Int(i64::from(i32::from_le_bytes(r.array()?)))),
            0x8a => {
                let n = usize::from(r.u8()?);
                let v = r.long(n)?;
                self.stack.push(v);
            }
            0x8b => {
                let n = r.u32()?;
                let v = r.long(n)?;
                self.stack.push(v);
            }
            // A float: kept opaque (no float in a state dict's structure is needed).
            b'G' => {
                r.take(8)?;
                self.stack.push(Value::Opaque);
            }
            b'X' => {
                let n = r.u32()?;
                let v = r.str(n)?;
                self.stack.push(v);
            }
            0x8c => {
                let n = usize::from(r.u8()?);
                let v = r.str(n)?;
                self.stack.push(v);
            }
            0x8d => {
                let n = r.u64()?;
                let v = r.str(n)?;
                self.stack.push(v);
            }
            b'B' | b'C' | 0x8e | 0x96 => {
                let n = match op {
                    b'B' => r.u32()?,
                    b'C' => usize::from(r.u8()?),
                    _ => r.u64()?,
                };
                r.take(n)?;
                self.stack.push(Value::Opaque);
            }
            b')' => self.push_items(Value::Tuple, Vec::new()),
            b']' => self.push_items(Value::List, Vec::new()),
            b'}' => self.push_items(Value::Dict, Vec::new()),
            0x8f => self.push_items(Value::List, Vec::new()),
            b't' => {
                let items = self.since_mark()?;
                self.push_items(Value::Tuple, items);
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let floor = self.marks.last().copied().unwrap_or(0);
                if self.stack.len() < floor + n {
                    return Err("too few values for the tuple".into());
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.push_items(Value::Tuple, items);
            }
            b'l' => {
                let items = self.since_mark()?;
                self.push_items(Value::List, items);
            }
            b'd' => {
                let items = self.since_mark()?;
                if !items.len().is_multiple_of(2) {
                    return Err("a dict with a key and no value".into());
                }
                self.push_items(Value::Dict, items);
            }
            0x91 => {
                let items = self.since_mark()?;
                self.push_items(Value::List, items);
            }
            b'a' => {
                let v = self.pop(at)?;
                self.extend_top(vec![v], false)?;
            }
            b'e' => {
                let items = self.since_mark()?;
                self.extend_top(items, false)?;
            }
            b's' => {
                let v = self.pop(at)?;
                let k = self.pop(at)?;
                self.extend_top(vec![k, v], true)?;
            }
            b'u' => {
                let items = self.since_mark()?;
                self.extend_top(items, true)?;
            }
            0x90 => {
                let items = self.since_mark()?;
                self.extend_top(items, false)?;
            }
            b'c' => {
                let module = r.line()?;
                let name = r.line()?;
                self.stack.push(Value::Global(Rc::new((module, name))));
            }
            0x93 => {
                let name = self.pop(at)?;
                let module = self.pop(at)?;
                let (Value::Str(module), Value::Str(name)) = (module, name) else {
                    return Err("STACK_GLOBAL needs two strings".into());
                };
                let global = (module.to_string(), name.to_string());
                self.stack.push(Value::Global(Rc::new(global)));
            }
            b'R' => {
                let args = self.pop(at)?;
                let callable = self.pop(at)?;
                let v = super::rebuild::call(&callable, &args)?;
                self.stack.push(v);
            }
            0x81 | 0x92 => {
                for _ in 0..(if op == 0x81 { 2 } else { 3 }) {
                    self.pop(at)?;
                }
                self.push_items(Value::Object, Vec::new());
            }
            // BUILD sets an object's attributes from a dict (or the dict of a (dict, slots)
            // pair); an OrderedDict's `_metadata` and other states are dropped.
            b'b' => {
                let state = self.pop(at)?;
                let state = match state {
                    Value::Tuple(pair) => pair.0.borrow().first().cloned().unwrap_or(Value::None),
                    other => other,
                };
                if let (Value::Object(object), Value::Dict(attributes)) = (self.top()?, &state) {
                    let attributes = attributes.0.borrow().clone();
                    object.0.borrow_mut().extend(attributes);
                }
            }
            b'Q' => {
                let pid = self.pop(at)?;
                let storage = super::rebuild::persistent(&pid)?;
                self.storages.push(storage.clone());
                self.stack.push(Value::Storage(storage));
            }
            b'q' | b'r' | 0x94 => {
                let index = match op {
                    b'q' => usize::from(r.u8()?),
                    b'r' => r.u32()?,
                    _ => self.memo.len(),
                };
                let v = self.top()?.clone();
                self.memo.insert(index, v);
            }
            b'h' | b'j' => {
                let index = if op == b'h' {
                    usize::from(r.u8()?)
                } else {
                    r.u32()?
                };
                let v = self.memo.get(&index).cloned();
                self.stack
                    .push(v.ok_or_else(|| format!("memo entry {index} was never stored"))?);
            }
            _ => return Err("an opcode torch.save does not write".into()),
        }
        Ok(())
    }
}

/// `v` as a non-negative int (a size, stride, offset or count).
pub(super) fn as_index(v: &Value, what: &str) -> Result<usize, String> {
    v.int()
        .and_then(|i| usize::try_from(i).ok())
        .ok_or_else(|| format!("{what} is not a non-negative int"))
}
