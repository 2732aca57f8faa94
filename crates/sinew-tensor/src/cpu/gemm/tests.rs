//! The packed GEMM against a naive f64-accumulated reference: edge sizes around MR, NR, KC, MC
//! and the chunking, transposed, sliced and reversed operands, strided outputs, accumulation,
//! the parallel path, and empty products.

use proptest::prelude::*;

use super::pack::{MR, NR};
use super::{KC, M_CHUNK, MC, MatMut, MatRef, sgemm};

/// Deterministic values in [-1, 1).
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// How an operand is laid out in its buffer.
#[derive(Clone, Copy, Debug)]
enum Form {
    /// Row-major, rows `pad` elements longer than needed.
    Rows(usize),
    /// Column-major (a transposed row-major matrix).
    Cols,
    /// Row-major with both strides negative (start at the last element).
    Reversed,
    /// Every other column (column stride 2).
    Skip,
}

/// A `rows x cols` operand in `form`: its buffer, the offset of element (0, 0), its strides.
fn operand(rows: usize, cols: usize, form: Form, seed: u64) -> (Vec<f32>, usize, isize, isize) {
    let (len, off, rs, cs) = match form {
        Form::Rows(pad) => (rows * (cols + pad), 0, (cols + pad) as isize, 1),
        Form::Cols => (rows * cols, 0, 1, rows as isize),
        Form::Reversed => {
            let last = (rows * cols).saturating_sub(1);
            (rows * cols, last, -(cols as isize), -1)
        }
        Form::Skip => (rows * cols * 2, 0, (2 * cols) as isize, 2),
    };
    (values(len.max(1), seed), off, rs, cs)
}

fn at(buf: &[f32], off: usize, rs: isize, cs: isize, i: usize, j: usize) -> f32 {
    buf[(off as isize + i as isize * rs + j as isize * cs) as usize]
}

/// Runs `sgemm` on the given forms and compares with the f64 reference.
fn check(m: usize, k: usize, n: usize, fa: Form, fb: Form, accumulate: bool, parallel: bool) {
    let (a, ao, ars, acs) = operand(m, k, fa, 1 + m as u64);
    let (b, bo, brs, bcs) = operand(k, n, fb, 2 + n as u64);
    // C with padded rows; the padding must stay untouched.
    let rsc = n + 3;
    let start = values(m * rsc + 1, 3);
    let mut c = start.clone();
    let base = |x: &[f32], i: usize, j: usize| x[i * rsc + j];
    // SAFETY: the buffers hold every element the offsets and strides name (built by `operand`
    // and sized `m * rsc` above), `c` is distinct from `a` and `b` and used by nobody else.
    unsafe {
        sgemm(
            m,
            k,
            n,
            MatRef {
                ptr: a.as_ptr().add(ao),
                row_stride: ars,
                col_stride: acs,
            },
            MatRef {
                ptr: b.as_ptr().add(bo),
                row_stride: brs,
                col_stride: bcs,
            },
            MatMut {
                ptr: c.as_mut_ptr(),
                row_stride: rsc as isize,
                col_stride: 1,
            },
            accumulate,
            parallel,
        )
        .expect("sgemm");
    }
    for i in 0..m {
        for j in 0..rsc {
            if j >= n {
                assert_eq!(base(&c, i, j), base(&start, i, j), "padding at ({i}, {j})");
                continue;
            }
            let mut want: f64 = if accumulate {
                base(&start, i, j) as f64
            } else {
                0.0
            };
            for p in 0..k {
                want += at(&a, ao, ars, acs, i, p) as f64 * at(&b, bo, brs, bcs, p, j) as f64;
            }
            let got = base(&c, i, j) as f64;
            let tol = 1e-5 * (k as f64 + 1.0).sqrt() * 4.0 + 1e-5;
            assert!(
                (got - want).abs() <= tol,
                "{m}x{k}x{n} {fa:?} {fb:?} acc={accumulate} par={parallel}: ({i}, {j}) = {got}, want {want}"
            );
        }
    }
}

#[test]
fn small_and_prime_shapes() {
    for &(m, k, n) in &[
        (1, 1, 1),
        (7, 13, 17),
        (MR, 1, NR),
        (MR - 1, 3, NR - 1),
        (MR + 1, 5, NR + 1),
        (2 * MR, 9, 2 * NR),
        (3, 31, 1),
        (1, 29, 40),
        (23, 37, 41),
    ] {
        for acc in [false, true] {
            check(m, k, n, Form::Rows(0), Form::Rows(0), acc, false);
        }
    }
}

/// Every row count up to four panels next to pairs of full column panels: the wide tiles take
/// 1 to 12 rows, a partial last panel included.
#[test]
fn row_remainders_of_the_wide_tiles() {
    for m in 1..=4 * MR + 1 {
        check(
            m,
            7,
            4 * NR + 3,
            Form::Rows(0),
            Form::Rows(0),
            m % 2 == 0,
            false,
        );
    }
}

#[test]
fn blocking_edges() {
    for &(m, k, n) in &[
        (MC + 1, KC + 1, 33),
        (MC - 1, KC - 1, NR * 3 + 5),
        (M_CHUNK + 7, 2 * KC + 3, 19),
        (2 * MC + MR + 1, KC, 2 * NR),
        (MR * 3, 3 * KC - 1, NR * 2 - 1),
    ] {
        check(m, k, n, Form::Rows(0), Form::Rows(0), false, false);
        check(m, k, n, Form::Rows(1), Form::Cols, true, true);
    }
}

#[test]
fn strided_operands() {
    let forms = [
        Form::Rows(0),
        Form::Rows(5),
        Form::Cols,
        Form::Reversed,
        Form::Skip,
    ];
    for fa in forms {
        for fb in forms {
            check(11, 19, 35, fa, fb, false, false);
            check(MR, KC + 2, NR, fa, fb, true, false);
        }
    }
}

#[test]
fn parallel_products() {
    // Above PARALLEL_WORK: many row blocks, one row block (columns split), odd edges.
    check(300, 70, 100, Form::Rows(0), Form::Rows(0), false, true);
    check(40, 300, 200, Form::Rows(0), Form::Cols, false, true);
    check(M_CHUNK + 13, 40, 97, Form::Cols, Form::Rows(2), true, true);
    check(97, 301, 131, Form::Skip, Form::Reversed, false, true);
}

#[test]
fn empty_products() {
    // k = 0 writes zeros (or keeps C when accumulating); m = 0 or n = 0 touches nothing.
    check(5, 0, 7, Form::Rows(0), Form::Rows(0), false, false);
    check(5, 0, 7, Form::Rows(0), Form::Rows(0), true, false);
    check(0, 4, 7, Form::Rows(0), Form::Rows(0), false, true);
    check(5, 4, 0, Form::Rows(0), Form::Rows(0), false, true);
}

#[test]
fn transposed_output() {
    // C with column stride m (written column-major) goes through the edge-tile path.
    let (m, k, n) = (13, 21, 29);
    let (a, b) = (values(m * k, 4), values(k * n, 5));
    let mut c = vec![0.0f32; m * n];
    // SAFETY: row-major `a` (m x k) and `b` (k x n) and column-major `c` (m x n) hold exactly
    // the elements their strides name; `c` is distinct from both.
    unsafe {
        sgemm(
            m,
            k,
            n,
            MatRef {
                ptr: a.as_ptr(),
                row_stride: k as isize,
                col_stride: 1,
            },
            MatRef {
                ptr: b.as_ptr(),
                row_stride: n as isize,
                col_stride: 1,
            },
            MatMut {
                ptr: c.as_mut_ptr(),
                row_stride: 1,
                col_stride: m as isize,
            },
            false,
            false,
        )
        .expect("sgemm");
    }
    for i in 0..m {
        for j in 0..n {
            let want: f64 = (0..k)
                .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                .sum();
            assert!((c[j * m + i] as f64 - want).abs() < 1e-4, "({i}, {j})");
        }
    }
}

fn form() -> impl Strategy<Value = Form> {
    prop_oneof![
        (0usize..3).prop_map(Form::Rows),
        Just(Form::Cols),
        Just(Form::Reversed),
        Just(Form::Skip),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn matches_the_reference(
        m in 0usize..40,
        k in 0usize..300,
        n in 0usize..50,
        fa in form(),
        fb in form(),
        accumulate: bool,
        parallel: bool,
    ) {
        check(m, k, n, fa, fb, accumulate, parallel);
    }
}
