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
    /// of full column panels through the AVX-512 kernels where the CPU has it (tiles of up to
    /// 12 x 32, the last one taking whatever rows remain), the rest one panel at a time.
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
            let mut ip = rows.start;
            while ip < rows.end {
                // The item's next rows, up to two row panels (a partial last panel included):
                // `ip` is a panel of the block, so `ip * MR < mc` and there is at least one.
                let tile_rows = ((rows.end - ip) * MR).min(mc - ip * MR).min(2 * MR);
                let panels = tile_rows.div_ceil(MR);
                let a = &self.a[ip * kc * MR..][..panels * kc * MR];
                let off = (ip * MR) as isize * self.c.row_stride + (jp * NR) as isize;
                let (a, b, c) = (a.as_ptr(), b.as_ptr(), self.c.ptr.wrapping_offset(off));
                let (rs, acc) = (self.c.row_stride, self.accumulate);
                // SAFETY: `a` holds `panels` packed panels of `kc * MR` elements and `b` two of
                // `kc * NR` (sliced above); the `tile_rows x 2NR` tile (`col_stride == 1`,
                // rows inside `mc`, `nc >= (jp + 2) * NR`) lies in C's block (`sgemm`'s
                // contract), this item's only; `wide` checked AVX-512F.
                unsafe { kernel_avx512::kernel_x32_rows(tile_rows, kc, a, b, c, rs, acc) };
                ip += panels;
            }
            jp += 2;
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
