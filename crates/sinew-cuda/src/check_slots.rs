//! Failure slots: where kernels record an error that only the data reveals (an index out of
//! range, a zero divisor), for the host to read when it next waits for the device.
//!
//! A slot is two device words, both `u64::MAX` ("none") until a kernel records the lowest bad
//! position `i` and the value `v` found there (`cuda/common.cuh`'s `record_bad`): word 0 is the
//! minimum of `i << 32 | low half of v`, word 1 of `i << 32 | high half of v`, so the pair
//! decodes to the position and value of one element whatever order the threads ran in.
//!
//! Slots come from a per-device ring of [`RING_SLOTS`], set to "none" by one fill when the ring
//! is made; each slot is handed out once, and the next ring is made when one runs out. An op
//! that checks its data therefore queues no kernel of its own for the slot (one fill per
//! [`RING_SLOTS`] ops), and a retired ring lives on (shared ownership) until its last slot has
//! been read.

use std::sync::{Arc, Mutex};

use sinew_tensor::{DType, Result};

use crate::device::CudaBackend;
use crate::ops::cast::fill_pattern;
use crate::storage::CudaStorage;

/// Slots per ring (16 bytes each).
pub(crate) const RING_SLOTS: usize = 256;

/// The device's current ring and the next slot of it to hand out.
#[derive(Debug, Default)]
pub(crate) struct SlotRing(Mutex<Option<(Arc<CudaStorage>, usize)>>);

/// One failure slot (see the module documentation). Reading it waits for the stream: i64
/// division reads it at once; index ops leave it to the next synchronisation
/// ([`crate::deferred`]).
pub(crate) struct FirstBad {
    ring: Arc<CudaStorage>,
    slot: usize,
}

/// What a slot's two words say: `None`, or the lowest bad position and the value found there.
pub(crate) fn decode(words: [u64; 2]) -> Option<(usize, i64)> {
    (words[0] != u64::MAX).then(|| {
        let position = (words[0] >> 32) as usize;
        let value = (words[1] << 32) | (words[0] & 0xffff_ffff);
        (position, value as i64)
    })
}

impl FirstBad {
    /// The next free slot of the device's ring (a new ring when it has none left).
    pub(crate) fn new(dev: &CudaBackend) -> Result<Self> {
        let mut held = dev.slot_ring.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((ring, next)) = held.as_mut().filter(|(_, next)| *next < RING_SLOTS) {
            let slot = FirstBad {
                ring: Arc::clone(ring),
                slot: *next,
            };
            *next += 1;
            return Ok(slot);
        }
        let ring = Arc::new(fill_pattern(dev, DType::I64, 2 * RING_SLOTS, u64::MAX)?);
        *held = Some((Arc::clone(&ring), 1));
        Ok(FirstBad { ring, slot: 0 })
    }

    /// Device address of the slot (the kernels' `unsigned long long *bad`).
    pub(crate) fn ptr(&self) -> u64 {
        self.ring.ptr_at(2 * self.slot)
    }

    /// Waits for the queued kernels and returns the lowest bad position and the value recorded
    /// there, if any (one 16-byte copy).
    pub(crate) fn first_bad(&self, dev: &CudaBackend) -> Result<Option<(usize, i64)>> {
        Ok(read_slots(dev, &[self])?[0])
    }
}

/// The device-to-host copies that read a list of slots, one for each run of slots from the same
/// ring (its slots' span), and their decoding in the list's order.
pub(crate) struct SlotReads {
    /// Each run's first device address, its lowest slot, its bytes and its slots in order.
    runs: Vec<(u64, usize, Vec<u8>, Vec<usize>)>,
}

impl SlotReads {
    /// The copies for `slots`.
    pub(crate) fn plan(slots: &[&FirstBad]) -> Self {
        let mut runs = Vec::new();
        let mut rest = slots;
        while let Some(first) = rest.first() {
            let run = rest
                .iter()
                .take_while(|s| Arc::ptr_eq(&s.ring, &first.ring))
                .count();
            let (lo, hi) = rest[..run].iter().fold((usize::MAX, 0), |(lo, hi), s| {
                (lo.min(s.slot), hi.max(s.slot))
            });
            let bytes = vec![0u8; 16 * (hi - lo + 1)];
            let members = rest[..run].iter().map(|s| s.slot).collect();
            runs.push((first.ring.ptr_at(2 * lo), lo, bytes, members));
            rest = &rest[run..];
        }
        SlotReads { runs }
    }

    /// The copies, `(device address, host bytes)`, for [`DeviceStream::download_all`]
    /// (`crate::stream`).
    pub(crate) fn copies(&mut self) -> impl Iterator<Item = (u64, &mut [u8])> {
        self.runs
            .iter_mut()
            .map(|(src, _, bytes, _)| (*src, bytes.as_mut_slice()))
    }

    /// Each slot's fault, in the order of the list planned, once the copies have landed.
    pub(crate) fn decode(&self) -> Vec<Option<(usize, i64)>> {
        let mut out = Vec::new();
        for (_, lo, bytes, members) in &self.runs {
            let word = |at: usize| {
                let mut w = [0u8; 8];
                w.copy_from_slice(&bytes[at..at + 8]);
                u64::from_le_bytes(w)
            };
            for slot in members {
                let at = 16 * (slot - lo);
                out.push(decode([word(at), word(at + 8)]));
            }
        }
        out
    }
}

/// Waits for the queued kernels and decodes `slots` (in order), with one copy for each run of
/// slots from the same ring and one wait for all.
pub(crate) fn read_slots(
    dev: &CudaBackend,
    slots: &[&FirstBad],
) -> Result<Vec<Option<(usize, i64)>>> {
    let mut reads = SlotReads::plan(slots);
    dev.bind()?;
    dev.stream()
        .download_all(&mut reads.copies().collect::<Vec<_>>())?;
    Ok(reads.decode())
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn slots_decode_position_and_value() {
        assert_eq!(decode([u64::MAX, u64::MAX]), None);
        // Position 7 holding -3 (0xffff_ffff_ffff_fffd).
        let v = -3i64 as u64;
        let words = [(7 << 32) | (v & 0xffff_ffff), (7 << 32) | (v >> 32)];
        assert_eq!(decode(words), Some((7, -3)));
        // The largest position a kernel records (2^32 - 2), with i64::MIN and i64::MAX.
        let top = (u64::from(u32::MAX) - 1) << 32;
        for v in [i64::MIN, i64::MAX, 0] {
            let bits = v as u64;
            let words = [top | (bits & 0xffff_ffff), top | (bits >> 32)];
            assert_eq!(decode(words), Some((u32::MAX as usize - 1, v)));
        }
    }
}
