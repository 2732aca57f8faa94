//! Zero padding written out once per image before its im2col panels are packed: the padded
//! planes are read by a convolution without padding, whose every im2col row of a panel is a
//! plain run of the padded image (no clipping, no bounds per tap), at the cost of one copy of
//! the image (a ninth of the columns of a 3 x 3 kernel). Used for width-stride-1 convolutions,
//! whose panels `im2col_avx2.rs` then packs with two vector loads and stores per row.

use std::cell::Cell;

use crate::backend::Unfold2d;
use crate::cpu::alloc::out_of_memory;
use crate::{Error, Result};

thread_local! {
    /// This thread's padded planes, taken out while in use (a nested convolution on the same
    /// thread allocates its own).
    static PADDED: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// The spec that reads `s`'s input with its padding written out: the planes grown by the
/// padding on each side, padding zero, the same windows. `None` where this does not apply (no
/// padding, a width stride other than 1, a non-zero padding value) or the sizes overflow.
pub(super) fn padded_spec(s: &Unfold2d) -> Option<Unfold2d> {
    if s.padding == (0, 0) || s.stride.1 != 1 || s.pad_value != 0.0 {
        return None;
    }
    let h = s.h.checked_add(s.padding.0.checked_mul(2)?)?;
    let w = s.w.checked_add(s.padding.1.checked_mul(2)?)?;
    h.checked_mul(w)?.checked_mul(s.c)?;
    Some(Unfold2d {
        h,
        w,
        padding: (0, 0),
        ..*s
    })
}

/// Runs `f` on the `s.c` planes `img` (`[c, h, w]` of `s`) copied with zero borders into the
/// `[c, p.h, p.w]` planes of `p = padded_spec(s)`, in this thread's reused buffer.
///
/// # Errors
/// [`Error::OutOfMemory`] when the buffer cannot grow, [`Error::InvalidArgument`] when `img` is
/// shorter than its planes; otherwise `f`'s result.
pub(super) fn with_padded<R>(
    img: &[f32],
    s: &Unfold2d,
    p: &Unfold2d,
    f: impl FnOnce(&[f32]) -> Result<R>,
) -> Result<R> {
    const OP: &str = "conv2d";
    let size = |c: usize, h: usize, w: usize| {
        c.checked_mul(h)
            .and_then(|x| x.checked_mul(w))
            .ok_or_else(|| Error::Overflow {
                op: OP,
                what: format!("{c} padded planes of {h} x {w}"),
            })
    };
    let (plane, padded_plane) = (s.h * s.w, p.h * p.w);
    let len = size(s.c, p.h, p.w)?;
    if img.len() < size(s.c, s.h, s.w)? {
        return Err(Error::invalid(OP, "input shorter than its shape"));
    }
    let mut buf = PADDED.with(Cell::take);
    if buf.len() < len {
        buf = Vec::new();
        buf.try_reserve_exact(len)
            .map_err(|_| out_of_memory::<f32>(OP, len))?;
        buf.resize(len, 0.0);
    }
    let (ph, pw) = s.padding;
    for (src, dst) in img
        .chunks_exact(plane.max(1))
        .zip(buf.chunks_exact_mut(padded_plane.max(1)))
        .take(s.c)
    {
        let (top, rest) = dst.split_at_mut(ph * p.w);
        top.fill(0.0);
        let (middle, bottom) = rest.split_at_mut(s.h * p.w);
        bottom.fill(0.0);
        for (row, out) in src
            .chunks_exact(s.w.max(1))
            .zip(middle.chunks_exact_mut(p.w))
        {
            out[..pw].fill(0.0);
            out[pw..pw + s.w].copy_from_slice(row);
            out[pw + s.w..].fill(0.0);
        }
    }
    let result = f(&buf[..len]);
    PADDED.with(|cell| cell.set(buf));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_planes_hold_the_image_inside_zero_borders() {
        let s = Unfold2d {
            n: 1,
            c: 2,
            h: 2,
            w: 3,
            kernel: (3, 3),
            stride: (1, 1),
            padding: (1, 2),
            dilation: (1, 1),
            pad_value: 0.0,
        };
        let p = padded_spec(&s).unwrap();
        assert_eq!((p.h, p.w, p.padding), (4, 7, (0, 0)));
        assert_eq!(p.out_hw(), s.out_hw());
        let img: Vec<f32> = (1..=12).map(|i| i as f32).collect();
        let got = with_padded(&img, &s, &p, |planes| Ok(planes.to_vec())).unwrap();
        let mut want = vec![0.0; 2 * 4 * 7];
        for ch in 0..2 {
            for y in 0..2 {
                for x in 0..3 {
                    want[ch * 28 + (y + 1) * 7 + x + 2] = img[ch * 6 + y * 3 + x];
                }
            }
        }
        assert_eq!(got, want);
        // No padding, a wider stride or a padding value: not this path.
        assert!(
            padded_spec(&Unfold2d {
                padding: (0, 0),
                ..s
            })
            .is_none()
        );
        assert!(
            padded_spec(&Unfold2d {
                stride: (1, 2),
                ..s
            })
            .is_none()
        );
        assert!(
            padded_spec(&Unfold2d {
                pad_value: -1.0,
                ..s
            })
            .is_none()
        );
    }
}
