//! The tiles of one packed block of `C`: work items of row panels times column panels, each
//! `B` micro-panel swept over the item's `A` panels by the micro-kernel, run over rayon when the
//! product is split.

use rayon::prelude::*;

use super::pack::{MR, NR};
use super::{MC, MatMut, kernel_avx2, kernel_avx512};

/// The tiles of one `mc x nc` block of `C` over packed `A` (`mc` rows) and `B` (`nc` columns).
pub(super) struct Tiles<'a> {
    pub(super) a: &'a [f32],
    pub(super) b: &'a [f32],
    pub(super) kc: usize,
    pub(super) c: MatMut,
    pub(super) accumulate: bool,
}

impl Tiles<'_> {
    /// Runs the block as row blocks of at most `MC` rows times column blocks, in parallel when
    /// asked: at least one work item per thread, their count a multiple of the threads.
    pub(super) fn run(&self, mc: usize, nc: usize, parallel: bool) {
        let threads = if parallel {
            rayon::current_num_threads()
        } else {
            1
        };
        let row_panels = mc.div_ceil(MR);
        let col_panels = nc.div_ceil(NR);
        let mut row_blocks = mc.div_ceil(MC);
        let mut col_blocks = 1;
        if threads > 1 {
            if row_blocks >= threads {
                row_blocks = row_blocks.div_ceil(threads) * threads;
            } else {
                col_blocks = threads;
            }
        }
        let rows_per = row_panels.div_ceil(row_blocks.min(row_panels));
        let cols_per = col_panels.div_ceil(col_blocks.min(col_panels));
        let items = row_panels.div_ceil(rows_per) * col_panels.div_ceil(cols_per);
        let item = |t: usize| {
            let (rb, cb) = (
                t % row_panels.div_ceil(rows_per),
                t / row_panels.div_ceil(rows_per),
            );
            let rows = rb * rows_per..((rb + 1) * rows_per).min(row_panels);
            let cols = cb * cols_per..((cb + 1) * cols_per).min(col_panels);
            self.block(rows, cols, mc, nc);
        };
        if threads > 1 && items > 1 {
            (0..items).into_par_iter().for_each(item);
        } else {
            (0..items).for_each(item);
        }
    }

    /// Row panels `rows` times column panels `cols` of the block (`mc x nc` elements): pairs
    /// of full column panels through the AVX-512 kernels where the CPU has it (12 x 32 on two
    /// full row panels, 6 x 32 on a last one), the rest one panel at a time.
    fn block(
        &self,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        mc: usize,
        nc: usize,
    ) {
        let wide = self.c.col_stride == 1 && kernel_avx512::available();
        let mut jp = cols.start;
        while jp < cols.end {
            let pair = wide && jp + 1 < cols.end && nc >= (jp + 2) * NR;
            if !pair {
                for ip in rows.clone() {
                    self.tile(ip, jp, mc, nc);
                }
                jp += 1;
                continue;
            }
            let kc = self.kc;
            let b = &self.b[jp * kc * NR..][..2 * kc * NR];
            // Row panel `i` is full when MR rows of the block remain from its first (`i` is a
            // panel of the block, so `i * MR < mc`).
            let full = |i: usize| mc - i * MR >= MR;
            let mut ip = rows.start;
            while ip < rows.end {
                if !full(ip) {
                    self.partial_pair(ip, jp, mc - ip * MR, b);
                    ip += 1;
                    continue;
                }
                // Two full row panels at once where there are two: a 12 x 32 tile.
                let panels = if ip + 1 < rows.end && full(ip + 1) {
                    2
                } else {
                    1
                };
                let a = &self.a[ip * kc * MR..][..panels * kc * MR];
                let off = (ip * MR) as isize * self.c.row_stride + (jp * NR) as isize;
                let (a, b, c) = (a.as_ptr(), b.as_ptr(), self.c.ptr.wrapping_offset(off));
                let (rs, acc) = (self.c.row_stride, self.accumulate);
                // SAFETY: `a` holds `panels` packed panels of `kc * MR` elements and `b` two of
                // `kc * NR` (sliced above); the `panels * MR x 2NR` tile (`col_stride == 1`, full
                // rows checked by `full`, `nc >= (jp + 2) * NR`) lies in C's block (`sgemm`'s
                // contract), this item's only; `wide` checked AVX-512F.
                unsafe {
                    if panels == 2 {
                        kernel_avx512::kernel_x32::<{ 2 * MR }>(kc, a, b, c, rs, acc);
                    } else {
                        kernel_avx512::kernel_x32::<MR>(kc, a, b, c, rs, acc);
                    }
                };
                ip += panels;
            }
            jp += 2;
        }
    }

    /// The last, partial row panel `ip` (`rows < MR` rows) times the full column panels `jp`
    /// and `jp + 1` (`b`, packed): one 6 x 32 AVX-512 kernel call into a scratch tile, whose
    /// first `rows` rows go to C (same bits as two 6 x 16 tiles).
    fn partial_pair(&self, ip: usize, jp: usize, rows: usize, b: &[f32]) {
        let kc = self.kc;
        let a = &self.a[ip * kc * MR..][..kc * MR];
        let mut tile = [0.0f32; MR * 2 * NR];
        // SAFETY: `a` holds one packed panel of `kc * MR` elements and `b` two of `kc * NR`
        // (sliced here and by `block`); `tile` holds MR rows of 2NR contiguous elements; only
        // `block` calls this, after checking AVX-512F (`wide`).
        unsafe {
            kernel_avx512::kernel_x32::<MR>(
                kc,
                a.as_ptr(),
                b.as_ptr(),
                tile.as_mut_ptr(),
                (2 * NR) as isize,
                false,
            )
        };
        let c = self.c;
        let off = (ip * MR) as isize * c.row_stride + (jp * NR) as isize;
        for (r, row) in tile.chunks_exact(2 * NR).take(rows).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                // SAFETY: `r < rows` and `j < 2NR`: an element of the block's full column
                // panels `jp, jp + 1` (`col_stride == 1`, checked by `block`) in a row of this
                // partial panel, inside C's block and written by this work item only.
                unsafe {
                    let p = c.ptr.offset(off + r as isize * c.row_stride + j as isize);
                    *p = if self.accumulate { *p + v } else { v };
                }
            }
        }
    }

    /// The tile of row panel `ip` and column panel `jp` through the 6 x 16 kernel (partial
    /// tiles and strided columns through a scratch tile).
    fn tile(&self, ip: usize, jp: usize, mc: usize, nc: usize) {
        let kc = self.kc;
        let c = self.c;
        let b = &self.b[jp * kc * NR..][..kc * NR];
        let nr = NR.min(nc - jp * NR);
        let a = &self.a[ip * kc * MR..][..kc * MR];
        let mr = MR.min(mc - ip * MR);
        let off = (ip * MR) as isize * c.row_stride + (jp * NR) as isize * c.col_stride;
        if mr == MR && nr == NR && c.col_stride == 1 {
            // SAFETY: `a`, `b` hold `kc * MR`, `kc * NR` packed elements (sliced above);
            // the tile's MR rows of NR contiguous columns lie in C's `mc x nc` block
            // (`sgemm`'s contract), written by this work item only (disjoint panels);
            // `sgemm` comes here only when `kernel_avx2::available()` (safe intrinsics).
            unsafe {
                kernel_avx2::kernel_6x16(
                    kc,
                    a.as_ptr(),
                    b.as_ptr(),
                    c.ptr.offset(off),
                    c.row_stride,
                    self.accumulate,
                )
            };
        } else {
            let mut tile = [0.0f32; MR * NR];
            // SAFETY: as above for `a` and `b`; `tile` holds MR rows of NR elements.
            unsafe {
                kernel_avx2::kernel_6x16(
                    kc,
                    a.as_ptr(),
                    b.as_ptr(),
                    tile.as_mut_ptr(),
                    NR as isize,
                    false,
                )
            };
            for (r, row) in tile.chunks_exact(NR).take(mr).enumerate() {
                for (j, &v) in row[..nr].iter().enumerate() {
                    // SAFETY: `r < mr` and `j < nr`: an element of this tile inside the
                    // `mc x nc` block of C (valid, written by this work item only).
                    unsafe {
                        let p = c
                            .ptr
                            .offset(off + r as isize * c.row_stride + j as isize * c.col_stride);
                        *p = if self.accumulate { *p + v } else { v };
                    }
                }
            }
        }
    }
}
