//! The scoring hot loop of the Isolation Forest: every tree of a forest in the
//! complete layout (see `iforest.rs`) walked by a block of [`BLOCK`] rows.
//!
//! Four kernels compute exactly the same f32 sums (same comparisons, trees
//! added in the same order): a portable scalar one, and AVX2 / AVX-512 /
//! AVX-512 tree-parallel ones chosen at run time. The row-parallel vector
//! kernels walk 8 or 16 rows per register and several registers at once, so
//! the gathers of independent rows overlap; the tree-parallel one walks 16
//! trees per register for 8 rows at once (see [`TreeGroups`]).
//! Hand-written because the traversal is the product's hot path and no crate
//! offers it. Measured on the 2-core EPYC (Zen 4) dev machine, 1M × 20 rows,
//! 100 trees, one thread (`cargo run --release -p palisade-models --example
//! iforest_speed`, which runs all kernels side by side on the same forest):
//! scalar 1.3 M rows/s, AVX2 2.5 M, AVX-512 3.9 M; scikit-learn 0.38–0.40 M
//! in the same session. On a Zen 5 EPYC (fifth session): scalar 1.2–1.3 M,
//! AVX2 2.4 M, AVX-512 3.8–4.0 M, AVX-512 tree-parallel 4.3–4.5 M
//! (1.13–1.15×; the rows' shared preprocessing is ~40 ns of each row's
//! ~225). Blocks of 128 rather than 64 rows helped the scalar and AVX2
//! kernels (+8%, +12%); replacing the value gathers of levels 1–3 by loads
//! and blends gained only 2% and was not kept.
//!
//! Why the top levels avoid gathers: a level-l node index lies in
//! [2^l − 1, 2^(l+1) − 2], so for l ≤ 4 the level's 2^l nodes fit one 16-lane
//! register and a lane's node is found by a register permute (1 cycle)
//! instead of a memory gather (several); level 5 (32 nodes) takes a
//! two-register permute. Only the deeper levels gather from memory.

/// Blocks of at most this many rows are scored a row at a time
/// (`FlatForest::sum_row`), whatever the kernel.
pub(crate) const FEW_ROWS: usize = 4;

/// Rows walked together: the preprocessed block (BLOCK × d f32) stays in L1.
pub(crate) const BLOCK: usize = 1 << BLOCK_SHIFT;
const BLOCK_SHIFT: u32 = 7;
/// Slack after the last tree, so that the permute kernels may load 16 node
/// entries past the start of any level of any tree (shallow trees included).
pub(crate) const PAD: usize = 64;

/// A forest in struct-of-arrays scoring layout. Fields are private: `new`
/// checks the invariants the unchecked kernels rely on, once.
pub(crate) struct FlatForest {
    /// Split feature of every internal slot, tree after tree, then PAD zeros.
    feature: Vec<u32>,
    /// Split value of every internal slot (`+inf` = always left), then PAD.
    split: Vec<f32>,
    /// Path length of every bottom slot, tree after tree.
    leaf: Vec<f32>,
    depth: u32,
    n_trees: usize,
    /// Columns of a preprocessed row (every feature index is below this).
    width: usize,
    /// The same trees in groups of 16 for the tree-parallel AVX-512 kernel,
    /// when every split carries its feature (see [`TreeGroups`]).
    groups: Option<TreeGroups>,
}

/// Trees in groups of 16, one tree per vector lane, for the tree-parallel
/// AVX-512 kernel: node slot i of tree 16·g + l at `(g·ni + i)·16 + l`,
/// bottom slot i at `(g·nl + i)·16 + l`; the last group's spare lanes hold
/// always-left filler trees whose leaves are never added, or, when it is
/// packed (see `pack`), repeats of its trees.
///
/// Why: the row-parallel kernels (16 rows per register, one tree at a time)
/// spend about two thirds of their time in the gather that reads each row's
/// split feature (measured: replacing it by a plain load made the AVX-512
/// kernel 3× faster). With one tree per lane and one row per register
/// instead, the row's ≤ 64 features sit in two or four registers and
/// permutes read them; what a lane must look up is its own tree's node,
/// and one gather reads it because the split value carries the feature
/// index in its low 5 (above 32 features, 6) mantissa bits (training puts it there:
/// `iforest::carry_feature`). The top three levels (7 nodes) need no
/// gather at all: each lane's node is chosen from the level's node vectors
/// by mask blends on its earlier decisions. Measured (Zen 5, 1M rows, 100
/// trees, `iforest_speed 1000000 D`): 20 features 1.13–1.15× the
/// row-parallel AVX-512 kernel; 40 and 64 features about equal (3.39 vs
/// 3.38 and 3.11 vs 3.02 M rows/s: four row registers per chain, and the
/// wider input's preprocessing weighs more); one row alone 0.38 / 0.46 /
/// 0.50 µs against ~1.0 µs for the interleaved scalar walk.
// Built on every target (the layout is checked alike); read only by the
// x86_64 kernels.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct TreeGroups {
    node: Vec<f32>,
    leaf: Vec<f32>,
    count: usize,
    /// Floats a row takes in a block: 32 (two registers) for up to 32
    /// features, else 64 (four).
    row_floats: usize,
    /// Rows a register of the last group walks at once in a block: 4 when
    /// that group holds ≤ 4 trees, 2 when ≤ 8, else 1. Its tables then
    /// repeat its trees in every 16/`pack` lanes (lane l holds tree
    /// l mod 16/`pack`), so one register walks `pack` rows. Why: with
    /// scikit-learn's default of 100 trees the last group holds 4 trees,
    /// and walking it a row per register spent 12 of its 16 lanes on filler
    /// trees (a seventh of the kernel's time for 6¼ groups of work).
    pack: usize,
    /// Trees in the last group.
    rest: usize,
}

/// Preprocessed rows wider than this cannot use the tree-parallel kernel
/// (the permutes read a row from at most four 16-lane registers).
pub(crate) const GROUP_MAX_WIDTH: usize = 64;

/// How many low mantissa bits of a split value carry its feature, for rows
/// of `width` features: 5 up to 32 features, 6 up to 64.
pub(crate) fn carry_bits(width: usize) -> u32 {
    if width <= 32 {
        5
    } else {
        6
    }
}

/// Where a block's values lie: see [`FlatForest::block_layout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockLayout {
    pub col_stride: usize,
    pub row_stride: usize,
    pub len: usize,
}

/// The feature index a split value carries in its low `bits` mantissa bits.
#[inline]
pub(crate) fn carried_feature(split: f32, bits: u32) -> u32 {
    split.to_bits() & ((1 << bits) - 1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// Tree-parallel AVX-512 (see `TreeGroups`); forests whose splits do
    /// not carry their features (models trained before it, or wider than
    /// 64 features) run the row-parallel AVX-512 kernel instead.
    #[cfg(target_arch = "x86_64")]
    Avx512Trees,
}

impl Kernel {
    /// The fastest kernel this CPU runs. `PALISADE_SIMD=off` forces the
    /// scalar one (for comparisons and for ruling the kernels out in a bug).
    /// Decided once per process: the gate scores a row per request.
    pub fn best() -> Kernel {
        static BEST: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *BEST.get_or_init(Kernel::detect)
    }

    fn detect() -> Kernel {
        if std::env::var_os("PALISADE_SIMD").is_some_and(|v| v == "off") {
            return Kernel::Scalar;
        }
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                return Kernel::Avx512Trees;
            }
            if std::is_x86_feature_detected!("avx2") {
                return Kernel::Avx2;
            }
        }
        Kernel::Scalar
    }

    /// Every kernel this CPU can run (for tests and benchmarks).
    pub fn available() -> Vec<Kernel> {
        #[allow(unused_mut)]
        let mut v = vec![Kernel::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") {
                v.push(Kernel::Avx2);
            }
            if std::is_x86_feature_detected!("avx512f") {
                v.push(Kernel::Avx512);
                v.push(Kernel::Avx512Trees);
            }
        }
        v
    }

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Scalar => "scalar",
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => "avx2",
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => "avx512",
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Trees => "avx512-trees",
        }
    }
}

impl FlatForest {
    /// `feature`/`split`: the internal slots of every tree (without padding);
    /// `leaf`: the bottom slots. Panics on inconsistent tables (the caller,
    /// `IsolationForest::from_params`, has already validated them).
    pub fn new(
        mut feature: Vec<u32>,
        mut split: Vec<f32>,
        leaf: Vec<f32>,
        depth: u32,
        n_trees: usize,
        width: usize,
    ) -> FlatForest {
        assert!((1..=24).contains(&depth), "depth");
        assert!(width >= 1 && width * BLOCK < i32::MAX as usize, "width");
        let ni = (1usize << depth) - 1;
        assert_eq!(feature.len(), n_trees * ni, "feature table");
        assert_eq!(split.len(), n_trees * ni, "split table");
        assert_eq!(leaf.len(), n_trees * (ni + 1), "leaf table");
        assert!(
            feature.iter().all(|&f| (f as usize) < width),
            "feature index out of range"
        );
        let groups = TreeGroups::new(&feature, &split, &leaf, depth, n_trees, width);
        feature.extend(std::iter::repeat_n(0, PAD));
        split.extend(std::iter::repeat_n(f32::INFINITY, PAD));
        FlatForest {
            feature,
            split,
            leaf,
            depth,
            n_trees,
            width,
            groups,
        }
    }

    /// Whether the tree-parallel kernel can walk this forest.
    #[cfg(test)]
    pub fn has_tree_groups(&self) -> bool {
        self.groups.is_some()
    }

    fn n_internal(&self) -> usize {
        (1usize << self.depth) - 1
    }

    /// How `kernel` wants a block of preprocessed rows: feature f of row r
    /// at `f·col_stride + r·row_stride`, in a buffer of `len` floats.
    /// Column-major for the row-parallel kernels (a feature of 16 rows is
    /// one load); rows of 32 or 64 floats for the tree-parallel one (a row
    /// is two or four registers). Columns past `width` of a row-major block
    /// are never read by the walk; keep them finite (the caller zeroes the
    /// buffer once).
    pub fn block_layout(&self, kernel: Kernel) -> BlockLayout {
        #[cfg(target_arch = "x86_64")]
        if let (Kernel::Avx512Trees, Some(tg)) = (kernel, &self.groups) {
            return BlockLayout {
                col_stride: 1,
                row_stride: tg.row_floats,
                len: BLOCK * tg.row_floats,
            };
        }
        let _ = kernel;
        BlockLayout {
            col_stride: BLOCK,
            row_stride: 1,
            len: BLOCK * self.width,
        }
    }

    /// `sums[r]` = Σ over trees of the path length of row r < `n` of `block`
    /// (laid out as `self.block_layout(kernel)` says; `width` columns).
    /// Only the first `n` rows are walked (rounded up to a vector's width):
    /// a short block, such as the one row of a gate request, costs what its
    /// rows cost, not a full block. Sums past `n` are unspecified. A full
    /// block runs the kernels with a constant group count (fully unrolled,
    /// state in registers: 5% faster than a run-time count, measured).
    pub fn sum_paths(&self, kernel: Kernel, block: &[f32], n: usize, sums: &mut [f32; BLOCK]) {
        // With the invariants of `new`, all the kernels' unchecked indexing needs.
        let at = self.block_layout(kernel);
        assert_eq!(block.len(), at.len, "block size");
        assert!(n <= BLOCK, "rows in the block");
        if n <= FEW_ROWS && kernel != Kernel::Scalar {
            return self.sum_paths_few(kernel, block, at, n, sums);
        }
        match kernel {
            Kernel::Scalar => self.sum_paths_scalar(block, n, sums),
            // SAFETY: the kernel is only selected when the CPU reports the
            // feature (Kernel::best/available); `new` and the assert above
            // give the bounds each kernel documents.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe {
                if n == BLOCK {
                    self.sum_paths_avx2::<{ BLOCK / 8 }>(block, 0, sums)
                } else {
                    for first in (0..n).step_by(8) {
                        self.sum_paths_avx2::<1>(block, first, sums)
                    }
                }
            },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Trees if self.groups.is_some() => unsafe {
                self.sum_paths_trees(block, n, sums)
            },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 | Kernel::Avx512Trees => unsafe {
                if n == BLOCK {
                    self.sum_paths_avx512::<{ BLOCK / 16 }>(block, 0, sums)
                } else {
                    for first in (0..n).step_by(16) {
                        self.sum_paths_avx512::<1>(block, first, sums)
                    }
                }
            },
        }
    }

    /// A few rows of a block, each as [`sum_row`](Self::sum_row) scores a
    /// row alone (rows of a column-major block by [`sum_one`](Self::sum_one),
    /// which is what `sum_row` takes for those kernels).
    fn sum_paths_few(
        &self,
        kernel: Kernel,
        block: &[f32],
        at: BlockLayout,
        n: usize,
        sums: &mut [f32; BLOCK],
    ) {
        for (r, sum) in sums.iter_mut().enumerate().take(n) {
            let row = &block[r * at.row_stride..];
            *sum = if at.col_stride == 1 {
                self.sum_row(kernel, &row[..self.width])
            } else {
                self.sum_one(row, at.col_stride)
            };
        }
    }

    /// Σ over trees of the path length of one preprocessed row
    /// (`row[f]` = feature f, `width` of them), as `sum_paths` would give
    /// it: what the gate asks for each request. The tree-parallel kernel
    /// walks the row through 8 groups of 16 trees at once; every other
    /// kernel takes [`sum_one`](Self::sum_one).
    pub fn sum_row(&self, kernel: Kernel, row: &[f32]) -> f32 {
        assert_eq!(row.len(), self.width, "row width");
        #[cfg(target_arch = "x86_64")]
        if kernel == Kernel::Avx512Trees && self.groups.is_some() {
            // SAFETY: the kernel is only selected when the CPU reports
            // AVX-512F; the groups exist; the row has `width` features.
            return unsafe { self.sum_row_trees(row) };
        }
        let _ = kernel;
        self.sum_one(row, 1)
    }

    /// One row alone (feature f at `row[f·col_stride]`), 8 trees
    /// interleaved. A lone row's walk through a tree is a chain of
    /// dependent loads, so the 8 trees' chains are what overlaps; the
    /// vector kernels would walk 8 or 16 rows (and the row-parallel ones
    /// one tree at a time, latency-bound). Measured on one row of 20
    /// features, 100 trees, the whole `mean_path_lengths` call
    /// (`iforest_speed`, Zen 5): the row in a 16-row block took 10.2 µs
    /// with the AVX-512 row-parallel kernel, 3.2 µs tree-parallel and
    /// 2.9–4.2 µs scalar; alone, 1.0 µs here and 0.39 µs with the
    /// tree-parallel [`sum_row`](Self::sum_row).
    fn sum_one(&self, row: &[f32], col_stride: usize) -> f32 {
        const CHAINS: usize = 8;
        let ni = self.n_internal();
        let nl = ni + 1;
        let mut total = 0f32;
        for t0 in (0..self.n_trees).step_by(CHAINS) {
            let m = CHAINS.min(self.n_trees - t0);
            let mut idx = [0usize; CHAINS];
            for _ in 0..self.depth {
                for (k, ix) in idx.iter_mut().enumerate().take(m) {
                    let node = (t0 + k) * ni + *ix;
                    let v = row[self.feature[node] as usize * col_stride];
                    *ix = 2 * *ix + 1 + usize::from(v > self.split[node]);
                }
            }
            // trees added in order, as every kernel does
            for (k, &ix) in idx.iter().enumerate().take(m) {
                total += self.leaf[(t0 + k) * nl + ix - ni];
            }
        }
        total
    }

    fn sum_paths_scalar(&self, block: &[f32], n: usize, sums: &mut [f32; BLOCK]) {
        let ni = self.n_internal();
        let nl = ni + 1;
        *sums = [0f32; BLOCK];
        for t in 0..self.n_trees {
            let feature = &self.feature[t * ni..(t + 1) * ni];
            let split = &self.split[t * ni..(t + 1) * ni];
            let leaf = &self.leaf[t * nl..(t + 1) * nl];
            // Level by level over the whole block: the rows are independent,
            // so the CPU overlaps many of them.
            let mut idx = [0u32; BLOCK];
            for _ in 0..self.depth {
                for (r, ix) in idx.iter_mut().enumerate().take(n) {
                    let i = *ix as usize;
                    let v = block[feature[i] as usize * BLOCK + r];
                    *ix = 2 * *ix + 1 + u32::from(v > split[i]);
                }
            }
            for (sum, &ix) in sums.iter_mut().zip(idx.iter()).take(n) {
                *sum += leaf[ix as usize - ni];
            }
        }
    }

    /// Walks rows `first .. first + 8·G` of the block.
    /// SAFETY (caller): AVX2 available; the invariants of `new` and the
    /// block-size assert of `sum_paths` hold; `first + 8·G ≤ BLOCK`.
    /// Bounds: a level-l index is < 2^(l+1) − 1 ≤ ni for l < depth, so node
    /// gathers stay inside the tree; `feature·BLOCK + r < BLOCK·width =
    /// block.len()`; the final index minus ni is in [0, nl).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    // idx, rows and acc are indexed by group together
    #[allow(clippy::needless_range_loop)]
    unsafe fn sum_paths_avx2<const G: usize>(
        &self,
        block: &[f32],
        first: usize,
        sums: &mut [f32; BLOCK],
    ) {
        use std::arch::x86_64::*;
        const L: usize = 8;
        let ni = self.n_internal();
        let nl = ni + 1;
        let one = _mm256_set1_epi32(1);
        let niv = _mm256_set1_epi32(ni as i32);
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mut rows = [_mm256_setzero_si256(); G];
        for (g, r) in rows.iter_mut().enumerate() {
            *r = _mm256_add_epi32(lane, _mm256_set1_epi32((first + g * L) as i32));
        }
        let mut acc = [_mm256_setzero_ps(); G];
        let bp = block.as_ptr();
        for t in 0..self.n_trees {
            let fp = self.feature.as_ptr().add(t * ni) as *const i32;
            let sp = self.split.as_ptr().add(t * ni) as *const i32;
            let lp = self.leaf.as_ptr().add(t * nl);
            let mut idx = [_mm256_setzero_si256(); G];
            for level in 0..self.depth {
                if level == 0 {
                    // Every row starts at the root: its feature's values
                    // for a group are 8 consecutive floats.
                    let f0 = *fp as usize;
                    let s = _mm256_set1_ps(f32::from_bits(*sp as u32));
                    for g in 0..G {
                        let v = _mm256_loadu_ps(bp.add(f0 * BLOCK + first + g * L));
                        let gt = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GT_OQ>(v, s));
                        // 2·0 + 1 + (v > s): gt is −1 where true.
                        idx[g] = _mm256_sub_epi32(one, gt);
                    }
                } else {
                    let first = (1usize << level) - 1;
                    let firstv = _mm256_set1_epi32(first as i32);
                    // Levels of ≤ 32 nodes: ≤ 4 registers per table and
                    // permutes; deeper ones gather.
                    let nreg = (1usize << level).div_ceil(L);
                    let mut ft = [_mm256_setzero_si256(); 4];
                    let mut st = [_mm256_setzero_si256(); 4];
                    if nreg <= 4 {
                        for i in 0..nreg {
                            ft[i] = _mm256_loadu_si256(fp.add(first + i * L) as *const _);
                            st[i] = _mm256_loadu_si256(sp.add(first + i * L) as *const _);
                        }
                    }
                    for g in 0..G {
                        let (f, s) = if nreg <= 4 {
                            let k = _mm256_sub_epi32(idx[g], firstv);
                            (
                                lookup256(&ft, nreg, k),
                                _mm256_castsi256_ps(lookup256(&st, nreg, k)),
                            )
                        } else {
                            (
                                _mm256_i32gather_epi32::<4>(fp, idx[g]),
                                _mm256_i32gather_ps::<4>(sp as *const f32, idx[g]),
                            )
                        };
                        let at = _mm256_add_epi32(
                            _mm256_slli_epi32::<{ BLOCK_SHIFT as i32 }>(f),
                            rows[g],
                        );
                        let v = _mm256_i32gather_ps::<4>(bp, at);
                        let gt = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GT_OQ>(v, s));
                        let twice = _mm256_add_epi32(idx[g], idx[g]);
                        idx[g] = _mm256_sub_epi32(_mm256_add_epi32(twice, one), gt);
                    }
                }
            }
            for g in 0..G {
                let h = _mm256_i32gather_ps::<4>(lp, _mm256_sub_epi32(idx[g], niv));
                acc[g] = _mm256_add_ps(acc[g], h);
            }
        }
        for (g, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(sums.as_mut_ptr().add(first + g * L), *a);
        }
    }

    /// Walks rows `first .. first + 16·G` of the block.
    /// SAFETY (caller): AVX-512F available; as for AVX2, with
    /// `first + 16·G ≤ BLOCK`. The permute levels
    /// load 16·k entries from the first slot of level l (2^l − 1) of tree t:
    /// inside the tree for a full level, and inside the tables thanks to the
    /// PAD entries after the last tree otherwise.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    // idx, rows and acc are indexed by group together
    #[allow(clippy::needless_range_loop)]
    unsafe fn sum_paths_avx512<const G: usize>(
        &self,
        block: &[f32],
        first: usize,
        sums: &mut [f32; BLOCK],
    ) {
        use std::arch::x86_64::*;
        const L: usize = 16;
        let ni = self.n_internal();
        let nl = ni + 1;
        let one = _mm512_set1_epi32(1);
        let niv = _mm512_set1_epi32(ni as i32);
        let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        // Column-major block: row r's feature f is at f·BLOCK + r.
        let mut rows = [_mm512_setzero_si512(); G];
        for (g, r) in rows.iter_mut().enumerate() {
            *r = _mm512_add_epi32(lane, _mm512_set1_epi32((first + g * L) as i32));
        }
        let mut acc = [_mm512_setzero_ps(); G];
        let bp = block.as_ptr();
        for t in 0..self.n_trees {
            let fp = self.feature.as_ptr().add(t * ni) as *const i32;
            let sp = self.split.as_ptr().add(t * ni) as *const i32;
            let lp = self.leaf.as_ptr().add(t * nl);
            let mut idx = [_mm512_setzero_si512(); G];
            // Level 0: one node for every row, and each group's values of
            // its feature are 16 consecutive floats.
            let f0 = *fp as usize;
            let s0 = _mm512_set1_ps(f32::from_bits(*sp as u32));
            for g in 0..G {
                let v = _mm512_loadu_ps(bp.add(f0 * BLOCK + first + g * L));
                let gt = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, s0);
                idx[g] = _mm512_mask_add_epi32(one, gt, one, one);
            }
            for level in 1..self.depth {
                let first = (1usize << level) - 1;
                let firstv = _mm512_set1_epi32(first as i32);
                if level <= 7 {
                    // The level's 2^l ≤ 128 nodes in ≤ 8 registers per table;
                    // a lane finds its node by permutes instead of a gather.
                    let nreg = (1usize << level).div_ceil(L);
                    let mut ft = [_mm512_setzero_si512(); 8];
                    let mut st = [_mm512_setzero_si512(); 8];
                    for i in 0..nreg {
                        ft[i] = _mm512_loadu_si512(fp.add(first + i * L) as *const _);
                        st[i] = _mm512_loadu_si512(sp.add(first + i * L) as *const _);
                    }
                    for g in 0..G {
                        let k = _mm512_sub_epi32(idx[g], firstv);
                        let f = lookup512(&ft, nreg, k);
                        let s = _mm512_castsi512_ps(lookup512(&st, nreg, k));
                        idx[g] = step512(idx[g], f, s, rows[g], bp, one);
                    }
                } else {
                    for g in 0..G {
                        let f = _mm512_i32gather_epi32::<4>(idx[g], fp);
                        let s = _mm512_castsi512_ps(_mm512_i32gather_epi32::<4>(idx[g], sp));
                        idx[g] = step512(idx[g], f, s, rows[g], bp, one);
                    }
                }
            }
            for g in 0..G {
                let h = _mm512_i32gather_ps::<4>(_mm512_sub_epi32(idx[g], niv), lp);
                acc[g] = _mm512_add_ps(acc[g], h);
            }
        }
        for (g, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(sums.as_mut_ptr().add(first + g * L), *a);
        }
    }
}

impl TreeGroups {
    /// The grouped tables, or `None` when some split does not carry its
    /// feature or the rows are too wide (arguments as [`FlatForest::new`],
    /// before padding).
    fn new(
        feature: &[u32],
        split: &[f32],
        leaf: &[f32],
        depth: u32,
        n_trees: usize,
        width: usize,
    ) -> Option<TreeGroups> {
        let bits = carry_bits(width);
        if width > GROUP_MAX_WIDTH
            || feature
                .iter()
                .zip(split)
                .any(|(&f, &s)| carried_feature(s, bits) != f)
        {
            return None;
        }
        let ni = (1usize << depth) - 1;
        let nl = ni + 1;
        let count = n_trees.div_ceil(16);
        let rest = n_trees - (count.max(1) - 1) * 16;
        let pack = match rest {
            _ if count == 0 => 1,
            0..=4 => 4,
            5..=8 => 2,
            _ => 1,
        };
        // Filler trees: +inf everywhere (always left, carrying feature 0).
        let mut node = vec![f32::INFINITY; count * ni * 16];
        let mut leaves = vec![0f32; count * nl * 16];
        for t in 0..n_trees {
            let (g, l) = (t / 16, t % 16);
            // the last group repeats its trees every 16/pack lanes
            let copies = if g + 1 == count { pack } else { 1 };
            for c in 0..copies {
                let l = l + c * (16 / copies);
                for i in 0..ni {
                    node[(g * ni + i) * 16 + l] = split[t * ni + i];
                }
                for i in 0..nl {
                    leaves[(g * nl + i) * 16 + l] = leaf[t * nl + i];
                }
            }
        }
        Some(TreeGroups {
            node,
            leaf: leaves,
            count,
            row_floats: if width <= 32 { 32 } else { 64 },
            pack,
            rest,
        })
    }
}

impl FlatForest {
    /// The tree-parallel kernel (see [`TreeGroups`]): for each group of 16
    /// trees, rows are walked 8 at a time (8 independent chains overlap
    /// their gathers), then each 16 rows' leaf vectors are transposed and
    /// added tree by tree, so every row's sum is formed in the same order
    /// as the scalar kernel's and the results are bit-identical.
    /// SAFETY (caller): AVX-512F available; `self.groups` is `Some`; the
    /// invariants of `new` and the asserts of `sum_paths` hold.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn sum_paths_trees(&self, block: &[f32], n: usize, sums: &mut [f32; BLOCK]) {
        use std::arch::x86_64::*;
        let Some(tg) = &self.groups else {
            return;
        };
        let ni = self.n_internal();
        let nl = ni + 1;
        let chunks = n.div_ceil(16);
        let mut acc = [_mm512_setzero_ps(); BLOCK / 16];
        // a packed last group is walked after the others (below)
        let full = tg.count - (tg.pack > 1) as usize;
        for g in 0..full {
            let np = tg.node.as_ptr().add(g * ni * 16);
            let lp = tg.leaf.as_ptr().add(g * nl * 16);
            let trees_here = (self.n_trees - g * 16).min(16);
            for (c, a) in acc.iter_mut().enumerate().take(chunks) {
                let mut leaves = [[_mm512_setzero_ps(); 8]; 2];
                for (half, l) in leaves.iter_mut().enumerate() {
                    let first = c * 16 + half * 8;
                    // row-major, 32 or 64 floats a row (`block_layout`)
                    let rows =
                        std::array::from_fn(|j| block.as_ptr().add((first + j) * tg.row_floats));
                    if tg.row_floats == 32 {
                        walk8::<false, 1>([(np, lp); 8], rows, 0, self.depth, l);
                    } else {
                        walk8::<true, 1>([(np, lp); 8], rows, 0, self.depth, l);
                    }
                }
                let leaves: [__m512; 16] = std::array::from_fn(|i| leaves[i / 8][i % 8]);
                let by_tree = transpose16(&leaves);
                for h in by_tree.iter().take(trees_here) {
                    *a = _mm512_add_ps(*a, *h);
                }
            }
        }
        for (c, a) in acc.iter().enumerate().take(chunks) {
            _mm512_storeu_ps(sums.as_mut_ptr().add(c * 16), *a);
        }
        if full == tg.count {
            return;
        }
        // The packed last group: chain j walks rows first + j·pack + p
        // (p < pack) in lanes p·q .. p·q + q (q = 16/pack, lane l = tree
        // l mod q); its trees are added after all the others, in tree order,
        // one row at a time: the same additions as the full groups make.
        let g = tg.count - 1;
        let table = (
            tg.node.as_ptr().add(g * ni * 16),
            tg.leaf.as_ptr().add(g * nl * 16),
        );
        let q = 16 / tg.pack;
        let step = tg.row_floats;
        for first in (0..n).step_by(8 * tg.pack) {
            let rows = std::array::from_fn(|j| block.as_ptr().add((first + j * tg.pack) * step));
            let mut leaves = [_mm512_setzero_ps(); 8];
            match (tg.row_floats == 32, tg.pack) {
                (true, 4) => walk8::<false, 4>([table; 8], rows, step, self.depth, &mut leaves),
                (true, _) => walk8::<false, 2>([table; 8], rows, step, self.depth, &mut leaves),
                (false, 4) => walk8::<true, 4>([table; 8], rows, step, self.depth, &mut leaves),
                (false, _) => walk8::<true, 2>([table; 8], rows, step, self.depth, &mut leaves),
            }
            for (j, l) in leaves.iter().enumerate() {
                let mut lanes = [0f32; 16];
                _mm512_storeu_ps(lanes.as_mut_ptr(), *l);
                for p in 0..tg.pack {
                    let r = first + j * tg.pack + p;
                    if r < n {
                        for h in &lanes[p * q..p * q + tg.rest] {
                            sums[r] += h;
                        }
                    }
                }
            }
        }
    }

    /// One row through every group, 8 groups at a time (8 independent
    /// chains), then the trees' path lengths added in tree order.
    /// SAFETY (caller): AVX-512F available; `self.groups` is `Some`;
    /// `row.len() == self.width` (≤ 64).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn sum_row_trees(&self, row: &[f32]) -> f32 {
        use std::arch::x86_64::*;
        let Some(tg) = &self.groups else {
            return f32::NAN;
        };
        let ni = self.n_internal();
        let nl = ni + 1;
        let mut padded = [0f32; GROUP_MAX_WIDTH];
        padded[..row.len()].copy_from_slice(row);
        let wide = tg.row_floats == 64;
        let mut total = 0f32;
        for g0 in (0..tg.count).step_by(8) {
            // chains past the last group walk it again; they are not added
            let tables = std::array::from_fn(|j| {
                let g = (g0 + j).min(tg.count - 1);
                (
                    tg.node.as_ptr().add(g * ni * 16),
                    tg.leaf.as_ptr().add(g * nl * 16),
                )
            });
            let mut leaves = [_mm512_setzero_ps(); 8];
            if wide {
                walk8::<true, 1>(tables, [padded.as_ptr(); 8], 0, self.depth, &mut leaves);
            } else {
                walk8::<false, 1>(tables, [padded.as_ptr(); 8], 0, self.depth, &mut leaves);
            }
            for (j, l) in leaves.iter().enumerate().take(tg.count - g0) {
                let mut by_tree = [0f32; 16];
                _mm512_storeu_ps(by_tree.as_mut_ptr(), *l);
                let trees_here = (self.n_trees - (g0 + j) * 16).min(16);
                for h in &by_tree[..trees_here] {
                    total += h;
                }
            }
        }
        total
    }
}

/// Walks 8 independent chains, chain j being one row (at `rows[j]`, 32
/// floats, or 64 when `WIDE`) through the 16 trees of one group
/// (node and leaf tables at `tables[j]`); `leaves[j]` gets the chain's path
/// length in each tree (lane = tree). A block walks 8 rows through one
/// group; a lone row walks through 8 groups at once. With `P` > 1 (a packed
/// last group, see `TreeGroups::pack`) chain j is the `P` rows at
/// `rows[j] + p·row_step`, row p in lanes p·16/P .. (p + 1)·16/P.
/// SAFETY (caller): AVX-512F; each `tables[j]` points at a group of a
/// `TreeGroups` of this depth; 32 (`WIDE`: 64) floats readable at each
/// row.
/// Bounds: a level-l node index is < 2^(l+1) − 1 ≤ ni for l < depth, and
/// the final index minus ni is in [0, nl), as in the row-parallel kernels.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
// the chains' state arrays are indexed together
#[allow(clippy::needless_range_loop)]
unsafe fn walk8<const WIDE: bool, const P: usize>(
    tables: [(*const f32, *const f32); 8],
    rows: [*const f32; 8],
    row_step: usize,
    depth: u32,
    leaves: &mut [std::arch::x86_64::__m512; 8],
) {
    use std::arch::x86_64::*;
    const R: usize = 8;
    let ni = (1usize << depth) - 1;
    let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    // 2·(16i + l) + (16 − l) = 16(2i + 1) + l: the left child's slot
    let off = _mm512_sub_epi32(_mm512_set1_epi32(16), lane);
    let sixteen = _mm512_set1_epi32(16);
    let one = _mm512_set1_epi32(1);
    // chain j's row p: registers 0–1 (features 0–31) and, when WIDE, 2–3
    let mut row = [[[_mm512_setzero_ps(); 4]; P]; R];
    for j in 0..R {
        for (p, regs) in row[j].iter_mut().enumerate() {
            for (k, r) in regs.iter_mut().enumerate().take(if WIDE { 4 } else { 2 }) {
                *r = _mm512_loadu_ps(rows[j].add(p * row_step + 16 * k));
            }
        }
    }
    // lanes of row p in a packed chain
    let slot = |p: usize| -> __mmask16 { (((1u32 << (16 / P)) - 1) << (p * 16 / P)) as __mmask16 };
    // node vector i (of level ≤ 2) of chain j
    let node = |j: usize, i: usize| _mm512_loadu_ps(tables[j].0.add(16 * i));
    let bit5 = _mm512_set1_epi32(32);
    // One decision: the lane's feature (the split's low bits pick it from
    // the row's registers: a two-register permute takes bits 0–4, bit 5
    // chooses between the two pairs), then go right when the value is
    // greater (NaN compares false: left, as the scalar kernel).
    let decide = |node: __m512, rs: &[[__m512; 4]; P]| -> __mmask16 {
        let ix = _mm512_castps_si512(node);
        let value = |r: &[__m512; 4]| {
            let mut v = _mm512_permutex2var_ps(r[0], ix, r[1]);
            if WIDE {
                let upper = _mm512_permutex2var_ps(r[2], ix, r[3]);
                v = _mm512_mask_blend_ps(_mm512_test_epi32_mask(ix, bit5), v, upper);
            }
            v
        };
        let mut v = value(&rs[0]);
        for (p, r) in rs.iter().enumerate().skip(1) {
            v = _mm512_mask_blend_ps(slot(p), v, value(r));
        }
        _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, node)
    };
    // Levels 0–2 (1, 2, 4 nodes): node vectors blended on earlier decisions.
    let top = depth.min(3);
    let mut d0 = [0 as __mmask16; R];
    let mut d1 = [0 as __mmask16; R];
    let mut d2 = [0 as __mmask16; R];
    for j in 0..R {
        d0[j] = decide(node(j, 0), &row[j]);
    }
    if top > 1 {
        for j in 0..R {
            let n = _mm512_mask_blend_ps(d0[j], node(j, 1), node(j, 2));
            d1[j] = decide(n, &row[j]);
        }
    }
    if top > 2 {
        for j in 0..R {
            let left = _mm512_mask_blend_ps(d1[j], node(j, 3), node(j, 4));
            let right = _mm512_mask_blend_ps(d1[j], node(j, 5), node(j, 6));
            d2[j] = decide(_mm512_mask_blend_ps(d0[j], left, right), &row[j]);
        }
    }
    // The slot reached below the blended levels: 2^top − 1 + (d0 d1 d2 as
    // bits), times 16, plus the lane.
    let mut idx = [_mm512_setzero_si512(); R];
    for j in 0..R {
        let mut k = _mm512_setzero_si512();
        for d in [d0[j], d1[j], d2[j]].iter().take(top as usize) {
            k = _mm512_add_epi32(k, k);
            k = _mm512_mask_add_epi32(k, *d, k, one);
        }
        let slot = _mm512_add_epi32(k, _mm512_set1_epi32((1i32 << top) - 1));
        idx[j] = _mm512_add_epi32(_mm512_slli_epi32::<4>(slot), lane);
    }
    for _ in top..depth {
        for j in 0..R {
            let n = _mm512_i32gather_ps::<4>(idx[j], tables[j].0);
            let gt = decide(n, &row[j]);
            let next = _mm512_add_epi32(_mm512_add_epi32(idx[j], idx[j]), off);
            idx[j] = _mm512_mask_add_epi32(next, gt, next, sixteen);
        }
    }
    let bottom = _mm512_set1_epi32((16 * ni) as i32);
    for j in 0..R {
        leaves[j] = _mm512_i32gather_ps::<4>(_mm512_sub_epi32(idx[j], bottom), tables[j].1);
    }
}

/// 16×16 transpose: `out[j]` lane i = `m[i]` lane j. Four butterfly stages
/// (distance 8, 4, 2, 1), each swapping bit d of the row and lane indices
/// with one two-register permute per register.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn transpose16(m: &[std::arch::x86_64::__m512; 16]) -> [std::arch::x86_64::__m512; 16] {
    use std::arch::x86_64::*;
    let mut x = *m;
    for d in [8usize, 4, 2, 1] {
        // lane l of the lower register: own lane l when bit d of l is clear,
        // else the upper register's lane l − d; of the upper: the lower's
        // lane l + d when clear, else its own lane l
        let mut lo_ix = [0i32; 16];
        let mut hi_ix = [0i32; 16];
        for l in 0..16 {
            if l & d == 0 {
                lo_ix[l] = l as i32;
                hi_ix[l] = (l + d) as i32;
            } else {
                lo_ix[l] = (16 + l - d) as i32;
                hi_ix[l] = (16 + l) as i32;
            }
        }
        // SAFETY: 16 i32 are 64 readable bytes (unaligned load).
        let (lo_ix, hi_ix) = unsafe {
            (
                _mm512_loadu_si512(lo_ix.as_ptr() as *const _),
                _mm512_loadu_si512(hi_ix.as_ptr() as *const _),
            )
        };
        for i in 0..16 {
            if i & d == 0 {
                let (a, b) = (x[i], x[i + d]);
                x[i] = _mm512_permutex2var_ps(a, lo_ix, b);
                x[i + d] = _mm512_permutex2var_ps(a, hi_ix, b);
            }
        }
    }
    x
}

/// Entry k (0 ≤ k < 8·nreg ≤ 32) of a table held in `nreg` registers:
/// one-register permutes, then blends on index bits 3 and 4.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn lookup256(
    t: &[std::arch::x86_64::__m256i; 4],
    nreg: usize,
    k: std::arch::x86_64::__m256i,
) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    let p0 = _mm256_permutevar8x32_epi32(t[0], k);
    if nreg == 1 {
        return p0;
    }
    let bit = |b: i32| {
        let m = _mm256_set1_epi32(b);
        _mm256_cmpeq_epi32(_mm256_and_si256(k, m), m)
    };
    let b3 = bit(8);
    let q0 = _mm256_blendv_epi8(p0, _mm256_permutevar8x32_epi32(t[1], k), b3);
    if nreg == 2 {
        return q0;
    }
    let p2 = _mm256_permutevar8x32_epi32(t[2], k);
    let q1 = _mm256_blendv_epi8(p2, _mm256_permutevar8x32_epi32(t[3], k), b3);
    _mm256_blendv_epi8(q0, q1, bit(16))
}

/// Entry k (0 ≤ k < 16·nreg ≤ 128) of a table held in `nreg` registers:
/// a one- or two-register permute, then blends on the index's higher bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn lookup512(
    t: &[std::arch::x86_64::__m512i; 8],
    nreg: usize,
    k: std::arch::x86_64::__m512i,
) -> std::arch::x86_64::__m512i {
    use std::arch::x86_64::*;
    if nreg == 1 {
        return _mm512_permutexvar_epi32(k, t[0]);
    }
    // pairs of registers cover 32 entries (index bits 0–4)
    let p0 = _mm512_permutex2var_epi32(t[0], k, t[1]);
    if nreg == 2 {
        return p0;
    }
    let p1 = _mm512_permutex2var_epi32(t[2], k, t[3]);
    let b5 = _mm512_test_epi32_mask(k, _mm512_set1_epi32(32));
    let q0 = _mm512_mask_blend_epi32(b5, p0, p1);
    if nreg == 4 {
        return q0;
    }
    let p2 = _mm512_permutex2var_epi32(t[4], k, t[5]);
    let p3 = _mm512_permutex2var_epi32(t[6], k, t[7]);
    let q1 = _mm512_mask_blend_epi32(b5, p2, p3);
    let b6 = _mm512_test_epi32_mask(k, _mm512_set1_epi32(64));
    _mm512_mask_blend_epi32(b6, q0, q1)
}

/// One level for 16 rows: read each row's split feature, go right when the
/// value is greater than the split (NaN compares false: left, as scalar).
/// SAFETY (caller): AVX-512F; `f·BLOCK + row` indexes inside the block.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn step512(
    idx: std::arch::x86_64::__m512i,
    f: std::arch::x86_64::__m512i,
    s: std::arch::x86_64::__m512,
    rows: std::arch::x86_64::__m512i,
    bp: *const f32,
    one: std::arch::x86_64::__m512i,
) -> std::arch::x86_64::__m512i {
    use std::arch::x86_64::*;
    let at = _mm512_add_epi32(_mm512_slli_epi32::<BLOCK_SHIFT>(f), rows);
    let v = _mm512_i32gather_ps::<4>(at, bp);
    let gt = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, s);
    let next = _mm512_add_epi32(_mm512_add_epi32(idx, idx), one);
    _mm512_mask_add_epi32(next, gt, next, one)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random forest of complete trees (random features, splits, some
    /// always-left padding) and a random block with NaNs and ties: every
    /// kernel must give bit-identical sums to the scalar one.
    #[test]
    fn every_kernel_matches_the_scalar_one() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // (depth, width, trees, splits carry their features: the
        // tree-parallel kernel runs, else it falls back)
        for (depth, width, n_trees, carry) in [
            (8u32, 20usize, 37usize, true),
            (8, 20, 37, false),
            (1, 3, 5, true),
            (2, 3, 16, true),
            (3, 5, 17, true),
            (4, 7, 9, true),
            (6, 1, 3, true),
            (9, 32, 33, true),
            (8, 33, 20, false),
            (8, 40, 20, true),
            (5, 64, 17, true),
            (8, 65, 5, false),
            // the last group packed 4 rows (100 trees: scikit-learn's
            // default) or 2 rows (24 trees, wide rows) to a register
            (8, 20, 100, true),
            (7, 48, 24, true),
        ] {
            let ni = (1usize << depth) - 1;
            let feature: Vec<u32> = (0..n_trees * ni)
                .map(|_| (next() % width as u64) as u32)
                .collect();
            let split: Vec<f32> = feature
                .iter()
                .map(|&f| match next() % 8 {
                    // always left (as training pads): carries feature 0
                    0 if !carry || f == 0 => f32::INFINITY,
                    // a split equal to some block values (exact ties)
                    _ => {
                        let s = (next() % 100) as f32 / 10.0 - 5.0;
                        let mask = (1u32 << carry_bits(width)) - 1;
                        if carry {
                            f32::from_bits((s.to_bits() & !mask) | f)
                        } else {
                            s
                        }
                    }
                })
                .collect();
            let leaf: Vec<f32> = (0..n_trees * (ni + 1))
                .map(|_| (next() % 1000) as f32 / 97.0)
                .collect();
            let ties: Vec<f32> = split.iter().copied().filter(|s| s.is_finite()).collect();
            let forest = FlatForest::new(feature, split, leaf, depth, n_trees, width);
            assert_eq!(
                forest.has_tree_groups(),
                carry,
                "depth {depth} width {width}"
            );
            let block: Vec<f32> = (0..BLOCK * width)
                .map(|_| match next() % 16 {
                    0 => f32::NAN,
                    // exact ties with split values
                    1 => ties[(next() % ties.len() as u64) as usize],
                    _ => (next() % 10_000) as f32 / 1000.0 - 5.0,
                })
                .collect();
            // the same values in the layout each kernel reads
            let laid_out = |k: Kernel| {
                let l = forest.block_layout(k);
                let mut b = vec![0f32; l.len];
                for r in 0..BLOCK {
                    for f in 0..width {
                        b[f * l.col_stride + r * l.row_stride] = block[f * BLOCK + r];
                    }
                }
                b
            };
            let mut want = [0f32; BLOCK];
            forest.sum_paths(Kernel::Scalar, &block, BLOCK, &mut want);
            assert!(want.iter().all(|&s| s > 0.0));
            for k in Kernel::available() {
                let kblock = laid_out(k);
                let mut got = [0f32; BLOCK];
                forest.sum_paths(k, &kblock, BLOCK, &mut got);
                assert_eq!(
                    got.map(f32::to_bits),
                    want.map(f32::to_bits),
                    "kernel {} depth {depth}",
                    k.name()
                );
                // one row alone, as the gate asks
                for r in [0, 1, 77, BLOCK - 1] {
                    let row: Vec<f32> = (0..width).map(|f| block[f * BLOCK + r]).collect();
                    assert_eq!(
                        forest.sum_row(k, &row).to_bits(),
                        want[r].to_bits(),
                        "kernel {} depth {depth}, row {r} alone",
                        k.name()
                    );
                }
                // a short block's rows get the same sums
                for n in [1, 3, 5, 17, 100] {
                    let mut short = [0f32; BLOCK];
                    forest.sum_paths(k, &kblock, n, &mut short);
                    assert_eq!(
                        short[..n].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        want[..n].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        "kernel {} depth {depth}, {n} rows",
                        k.name()
                    );
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn transpose16_transposes() {
        if !std::is_x86_feature_detected!("avx512f") {
            return;
        }
        let m: [[f32; 16]; 16] =
            std::array::from_fn(|i| std::array::from_fn(|j| (i * 16 + j) as f32));
        // SAFETY: AVX-512F checked above; 16 f32 per load/store.
        let t = unsafe {
            use std::arch::x86_64::*;
            let v: [__m512; 16] = std::array::from_fn(|i| _mm512_loadu_ps(m[i].as_ptr()));
            let t = transpose16(&v);
            let mut out = [[0f32; 16]; 16];
            for (o, r) in out.iter_mut().zip(t.iter()) {
                _mm512_storeu_ps(o.as_mut_ptr(), *r);
            }
            out
        };
        for i in 0..16 {
            for j in 0..16 {
                assert_eq!(t[j][i], m[i][j], "({i}, {j})");
            }
        }
    }
}
