//! The phases of an implicit-GEMM input gradient: with stride `s` and dilation 1, the input rows
//! `y` with one value of `y mod s` all take their gradient from the same kernel rows (those with
//! `(y + pad - ki) mod s == 0`), so a product per phase over those positions and taps skips
//! every tap the stride would make zero (the identity phase, for dilated convolutions, tests each
//! tap in the kernel instead). The kernel runs up to four phases a launch (each block's phase is
//! its grid z). A 3x3 stride-2 convolution multiplies 9/4 taps per position instead of 9, in one
//! launch; a 1x1 stride-2 one (a ResNet shortcut) runs one phase of four, the other positions'
//! gradient being zero.

use sinew_tensor::Unfold2d;

/// One phase: the input positions `start + k * step` (`positions` of them per axis) and their
/// taps, kernel rows and columns `first_tap + i * step` (`taps` per axis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Phase {
    /// First input row and column.
    pub(crate) start: (usize, usize),
    /// First kernel row and column of the phase's taps.
    pub(crate) first_tap: (usize, usize),
    /// Step between positions and between taps: the stride, or 1 for the identity phase.
    pub(crate) step: (usize, usize),
    /// Input rows and columns of the phase.
    pub(crate) positions: (usize, usize),
    /// Kernel rows and columns per position (0: the phase's gradient is zero).
    pub(crate) taps: (usize, usize),
}

impl Phase {
    /// Whether any tap reaches the phase's positions.
    pub(crate) fn has_taps(&self) -> bool {
        self.taps.0 > 0 && self.taps.1 > 0
    }
}

/// `(positions, first tap, taps)` along one axis of `len` inputs, a `kernel`-wide window,
/// `stride` and `pad`, for the phase starting at input `start`.
fn axis(
    len: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    start: usize,
) -> (usize, usize, usize) {
    let positions = len.saturating_sub(start).div_ceil(stride);
    let first = (start + pad) % stride;
    let taps = kernel.saturating_sub(first).div_ceil(stride);
    (positions, first, taps)
}

/// The phases of `spec`'s input gradient that have positions: one per `(y mod sh, x mod sw)`
/// when the dilation is 1 (a single phase for stride 1), else the identity phase (every position
/// and tap, step 1).
pub(crate) fn dgrad_phases(spec: &Unfold2d) -> Vec<Phase> {
    let (kh, kw) = spec.kernel;
    if spec.dilation != (1, 1) {
        return vec![Phase {
            start: (0, 0),
            first_tap: (0, 0),
            step: (1, 1),
            positions: (spec.h, spec.w),
            taps: (kh, kw),
        }];
    }
    let (sh, sw) = spec.stride;
    let mut out = Vec::with_capacity(sh * sw);
    for py in 0..sh {
        let (hp, ry, th) = axis(spec.h, kh, sh, spec.padding.0, py);
        for px in 0..sw {
            let (wp, rx, tw) = axis(spec.w, kw, sw, spec.padding.1, px);
            if hp > 0 && wp > 0 {
                out.push(Phase {
                    start: (py, px),
                    first_tap: (ry, rx),
                    step: (sh, sw),
                    positions: (hp, wp),
                    taps: (th, tw),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(side: usize, kernel: usize, stride: usize, pad: usize, dilation: usize) -> Unfold2d {
        Unfold2d {
            n: 2,
            c: 3,
            h: side,
            w: side,
            kernel: (kernel, kernel),
            stride: (stride, stride),
            padding: (pad, pad),
            dilation: (dilation, dilation),
            pad_value: 0.0,
        }
    }

    #[test]
    fn a_stride_two_gradient_multiplies_a_quarter_of_the_taps() {
        let phases = dgrad_phases(&spec(8, 3, 2, 1, 1));
        assert_eq!(phases.len(), 4);
        let work: usize = phases
            .iter()
            .map(|p| p.positions.0 * p.positions.1 * p.taps.0 * p.taps.1)
            .sum();
        assert_eq!(work, 8 * 8 * 9 / 4);
        assert_eq!(phases[0].first_tap, (1, 1));
        assert_eq!(phases[3].taps, (2, 2));
        // A 1x1 stride-2 shortcut: only the even positions have a tap.
        let phases = dgrad_phases(&spec(8, 1, 2, 0, 1));
        let with_taps: Vec<_> = phases.iter().filter(|p| p.has_taps()).collect();
        assert_eq!(with_taps.len(), 1);
        assert_eq!(with_taps[0].start, (0, 0));
        // Stride 1: one phase, everything; dilation 2: the identity phase.
        for s in [spec(7, 3, 1, 1, 1), spec(7, 3, 2, 1, 2)] {
            let phases = dgrad_phases(&s);
            assert_eq!(phases.len(), 1);
            assert_eq!(phases[0].positions, (7, 7));
            assert_eq!(phases[0].taps, (3, 3));
            assert_eq!(phases[0].first_tap, (0, 0));
        }
    }

    #[test]
    fn every_position_is_in_one_phase_with_exactly_its_taps() {
        for (len, kernel, stride, pad) in [(9, 3, 2, 1), (10, 5, 3, 2), (5, 2, 4, 0), (3, 7, 2, 3)]
        {
            let mut seen = vec![0; len];
            for start in 0..stride {
                let (positions, first, taps) = axis(len, kernel, stride, pad, start);
                for k in 0..positions {
                    let y = start + k * stride;
                    seen[y] += 1;
                    let phase_taps: Vec<usize> = (0..taps).map(|i| first + i * stride).collect();
                    let exact: Vec<usize> = (0..kernel)
                        .filter(|&ki| (y + pad + stride * kernel - ki) % stride == 0)
                        .collect();
                    assert_eq!(
                        phase_taps, exact,
                        "y {y} of {len}, k {kernel} s {stride} p {pad}"
                    );
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "{seen:?}");
        }
    }
}
