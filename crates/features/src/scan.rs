//! The fast path of the lexical features and entropies: the same values as
//! [`Histogram::lex`](crate::lexical::Histogram::lex) and
//! [`Histogram::entropy`](crate::lexical::Histogram::entropy), which stay as
//! the plain reference (tests compare the two on every URL of the bench data,
//! bit for bit).
//!
//! Two ideas make it fast:
//! - Class features from bit masks. A 64-byte chunk becomes one `u64` mask
//!   per class (SSE2 compares on x86-64, else the class table and a multiply
//!   per 8 bytes); counts are popcounts, vowel/consonant changes are
//!   `prev & cur` of shifted masks, and the longest run of a class takes a
//!   few shifts per chunk.
//! - One histogram pass for the whole URL and its host, path and query. A
//!   packed `u32` per byte value counts the whole string in its high half and
//!   the current segment in its low half; the largest count is tracked as it
//!   grows, and a list of the segment's byte values in order of first
//!   occurrence lets its entropy visit only the distinct bytes, summing
//!   `c log2 c` in that order, as the reference does.

#[cfg(any(test, not(target_arch = "x86_64")))]
use crate::lexical::CLASS;
use crate::lexical::{LexStats, PLOG, PLOG_N};

#[cfg(any(test, not(target_arch = "x86_64")))]
/// One in each byte lane.
const LSB: u64 = 0x0101_0101_0101_0101;
#[cfg(any(test, not(target_arch = "x86_64")))]
/// Multiplying a word whose bytes are 0 or 1 by this moves byte `i`'s bit to
/// bit `56 + i` (the partial products of different bytes never share a bit
/// in the top byte, and nothing below it carries that far).
const GATHER: u64 = 0x0102_0408_1020_4080;

#[cfg(any(test, not(target_arch = "x86_64")))]
/// Bit `k` of each of the 8 class bytes of `w`, packed into the low 8 bits.
#[inline(always)]
fn bits(w: u64, k: u32) -> u64 {
    ((w >> k) & LSB).wrapping_mul(GATHER) >> 56
}

#[inline(always)]
fn popcount(x: u64) -> u32 {
    x.count_ones()
}

/// Longest run of one bits in `m` (`m` is not all ones).
///
/// `a_s` marks the positions that start a run of at least `s` ones; a run of
/// `r + s` starts at `p` exactly when one of `r` starts at `p` and one of `s`
/// at `p + r`, so the answer is built greedily from 32, 16, ..., 1.
#[inline(always)]
fn max_run(m: u64) -> u32 {
    let a1 = m;
    let a2 = a1 & (a1 >> 1);
    let a4 = a2 & (a2 >> 2);
    let a8 = a4 & (a4 >> 4);
    let a16 = a8 & (a8 >> 8);
    let a32 = a16 & (a16 >> 16);
    let mut r = 0u32;
    let mut x = u64::MAX;
    for (s, a) in [(32, a32), (16, a16), (8, a8), (4, a4), (2, a2), (1, a1)] {
        let y = x & (a >> r);
        if y != 0 {
            x = y;
            r += s;
        }
    }
    r
}

/// Fold one chunk mask (bit `i` = byte `i` of the chunk; bits past the end
/// are zero) into a run: `carry` is the run still open at the chunk's start.
#[inline(always)]
fn runs(m: u64, carry: &mut u32, best: &mut u32) {
    if m == 0 {
        // common (no upper-case, no digits): skip the search
        *carry = 0;
        return;
    }
    if m == u64::MAX {
        *carry += 64;
        *best = (*best).max(*carry);
        return;
    }
    let lead = (!m).trailing_zeros();
    *best = (*best).max(*carry + lead).max(max_run(m));
    *carry = (!m).leading_zeros();
}

#[cfg(any(test, not(target_arch = "x86_64")))]
/// The class bytes of up to 8 bytes as one little-endian word (zero lanes past the end).
#[inline(always)]
fn class_word(b: &[u8]) -> u64 {
    let mut w = 0u64;
    for (i, &x) in b.iter().enumerate() {
        w |= (CLASS[x as usize] as u64) << (8 * i);
    }
    w
}

#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
fn class_word8(b: &[u8; 8]) -> u64 {
    u64::from_le_bytes(b.map(|x| CLASS[x as usize]))
}

/// The class counts, runs and changes of `s` (every field of [`LexStats`]
/// except the histogram ones: `amps`, `equals`, `max_byte_count`).
pub(crate) fn class_stats(s: &[u8]) -> LexStats {
    #[cfg(target_arch = "x86_64")]
    {
        // The baseline x86-64 target has no popcnt/lzcnt/tzcnt instructions;
        // nearly every CPU does, and the detection result is cached.
        if std::is_x86_feature_detected!("popcnt")
            && std::is_x86_feature_detected!("lzcnt")
            && std::is_x86_feature_detected!("bmi1")
        {
            // SAFETY: the CPU has the features `class_stats_bitops` enables
            // (checked just above); it is otherwise an ordinary safe function.
            return unsafe { class_stats_bitops(s) };
        }
    }
    class_stats_with(s, chunk_masks)
}

/// [`class_stats`] compiled with the bit-counting instructions.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt,lzcnt,bmi1")]
unsafe fn class_stats_bitops(s: &[u8]) -> LexStats {
    class_stats_with(s, chunk_masks)
}

/// The class masks of one chunk of at most 64 bytes: bit `i` is byte `i`;
/// bits past the chunk's end are zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Masks {
    digit: u64,
    lower: u64,
    upper: u64,
    vowel: u64,
    consonant: u64,
    base64: u64,
    special: u64,
}

#[cfg(any(test, not(target_arch = "x86_64")))]
/// The class masks of a chunk from the class table, 8 bytes per step (SWAR).
/// Portable; the reference for the SSE2 version.
pub(crate) fn chunk_masks_swar(chunk: &[u8]) -> Masks {
    let mut m = Masks::default();
    let mut add = |j: usize, w: u64| {
        let at = 8 * j;
        m.digit |= bits(w, 0) << at;
        m.lower |= bits(w, 1) << at;
        m.upper |= bits(w, 2) << at;
        m.vowel |= bits(w, 3) << at;
        m.consonant |= bits(w, 4) << at;
        m.base64 |= bits(w, 5) << at;
        m.special |= bits(w, 6) << at;
    };
    let words = chunk.chunks_exact(8);
    let tail = words.remainder();
    let full = words.len();
    for (j, w8) in words.enumerate() {
        // chunks_exact(8) yields 8-byte slices, so the conversion cannot fail
        add(j, w8.try_into().map_or(0, class_word8));
    }
    if !tail.is_empty() {
        add(full, class_word(tail));
    }
    m
}

#[cfg(not(target_arch = "x86_64"))]
use chunk_masks_swar as chunk_masks;

#[cfg(target_arch = "x86_64")]
use sse2::chunk_masks;

/// The class masks with SSE2 compares, 16 bytes per step, without the table.
/// SSE2 is part of the x86-64 baseline, so no runtime detection is needed.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use super::Masks;
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_setzero_si128, _mm_sub_epi8, _mm_subs_epu8,
    };

    #[inline(always)]
    #[allow(unused_unsafe)] // the intrinsics are safe to call from Rust 1.87 on
    fn eq(x: __m128i, c: u8) -> __m128i {
        // SAFETY: SSE2 is enabled on every x86-64 target; no memory is touched.
        unsafe { _mm_cmpeq_epi8(x, _mm_set1_epi8(c as i8)) }
    }

    /// Lanes with `lo <= x <= hi` (unsigned): `x - lo` saturating-minus
    /// `hi - lo` is zero exactly then.
    #[inline(always)]
    #[allow(unused_unsafe)]
    fn range(x: __m128i, lo: u8, hi: u8) -> __m128i {
        // SAFETY: as in `eq`.
        unsafe {
            let t = _mm_sub_epi8(x, _mm_set1_epi8(lo as i8));
            _mm_cmpeq_epi8(
                _mm_subs_epu8(t, _mm_set1_epi8((hi - lo) as i8)),
                _mm_setzero_si128(),
            )
        }
    }

    /// The masks of 16 bytes, as `u16` lane masks in the `Masks` fields.
    #[inline(always)]
    #[allow(unused_unsafe)]
    fn block(b: &[u8; 16]) -> Masks {
        // SAFETY: `b` is 16 readable bytes and `_mm_loadu_si128` has no
        // alignment requirement; the other intrinsics touch no memory.
        unsafe {
            let x = _mm_loadu_si128(b.as_ptr().cast::<__m128i>());
            let or = |a, b| _mm_or_si128(a, b);
            let digit = range(x, b'0', b'9');
            let lower = range(x, b'a', b'z');
            let upper = range(x, b'A', b'Z');
            // `x | 0x20` equals a lower-case vowel only for that vowel in either case
            let lx = _mm_or_si128(x, _mm_set1_epi8(0x20));
            let vowel = or(
                or(eq(lx, b'a'), eq(lx, b'e')),
                or(or(eq(lx, b'i'), eq(lx, b'o')), eq(lx, b'u')),
            );
            let alpha = or(lower, upper);
            let base64 = or(
                or(alpha, digit),
                or(or(eq(x, b'+'), eq(x, b'/')), eq(x, b'=')),
            );
            // special: outside printable ASCII, or one of the nine printable
            // bytes RFC 3986 does not allow: " < > \ ^ ` { | }
            let printable = range(x, 0x21, 0x7e);
            let bad = or(
                or(or(eq(x, b'"'), eq(x, b'<')), or(eq(x, b'>'), eq(x, b'\\'))),
                or(or(eq(x, b'^'), eq(x, b'`')), range(x, b'{', b'}')),
            );
            let mm = |v| _mm_movemask_epi8(v) as u16 as u64;
            let alpha_m = mm(alpha);
            let vowel_m = mm(vowel);
            Masks {
                digit: mm(digit),
                lower: mm(lower),
                upper: mm(upper),
                vowel: vowel_m,
                consonant: alpha_m & !vowel_m,
                base64: mm(base64),
                special: !mm(printable) & 0xffff | mm(bad),
            }
        }
    }

    pub(crate) fn chunk_masks(chunk: &[u8]) -> Masks {
        let mut m = Masks::default();
        let mut add = |j: usize, bm: Masks, keep: u64| {
            let at = 16 * j;
            m.digit |= (bm.digit & keep) << at;
            m.lower |= (bm.lower & keep) << at;
            m.upper |= (bm.upper & keep) << at;
            m.vowel |= (bm.vowel & keep) << at;
            m.consonant |= (bm.consonant & keep) << at;
            m.base64 |= (bm.base64 & keep) << at;
            m.special |= (bm.special & keep) << at;
        };
        let blocks = chunk.chunks_exact(16);
        let tail = blocks.remainder();
        let full = blocks.len();
        for (j, b) in blocks.enumerate() {
            // chunks_exact(16) yields 16-byte slices, so the conversion cannot fail
            if let Ok(b) = b.try_into() {
                add(j, block(b), 0xffff);
            }
        }
        let t = tail.len();
        if t > 0 && chunk.len() >= 16 {
            // the last 16 bytes, shifted so that only the tail's lanes remain
            if let Ok(b) = chunk[chunk.len() - 16..].try_into() {
                let bm = block(b);
                let sh = |x: u64| x >> (16 - t);
                let bm = Masks {
                    digit: sh(bm.digit),
                    lower: sh(bm.lower),
                    upper: sh(bm.upper),
                    vowel: sh(bm.vowel),
                    consonant: sh(bm.consonant),
                    base64: sh(bm.base64),
                    special: sh(bm.special),
                };
                add(full, bm, 0xffff);
            }
        } else if t > 0 {
            // shorter than a block: pad with zero bytes and drop their lanes
            let mut b = [0u8; 16];
            for (d, x) in b.iter_mut().zip(tail) {
                *d = *x;
            }
            add(full, block(&b), (1u64 << t) - 1);
        }
        m
    }
}

/// [`class_stats`] with a given mask builder (tests run both).
#[inline(always)]
fn class_stats_with(s: &[u8], masks: impl Fn(&[u8]) -> Masks) -> LexStats {
    let mut st = LexStats {
        len: s.len() as u32,
        first_is_digit: s.first().is_some_and(|b| b.is_ascii_digit()),
        ..Default::default()
    };
    // open runs (digit, lower, upper, vowel, consonant) and the last vowel/consonant bit
    let mut carry = [0u32; 5];
    let (mut pv, mut pc) = (0u64, 0u64);
    for chunk in s.chunks(64) {
        let m = masks(chunk);
        st.non_base64 += chunk.len() as u32 - popcount(m.base64);
        st.specials += popcount(m.special);
        st.digits += popcount(m.digit);
        st.lower += popcount(m.lower);
        st.upper += popcount(m.upper);
        st.vowels += popcount(m.vowel);
        st.consonants += popcount(m.consonant);
        let prev_v = (m.vowel << 1) | pv;
        let prev_c = (m.consonant << 1) | pc;
        st.vowel_changes += popcount((prev_v & m.consonant) | (prev_c & m.vowel));
        pv = m.vowel >> 63;
        pc = m.consonant >> 63;
        runs(m.digit, &mut carry[0], &mut st.max_digit_run);
        runs(m.lower, &mut carry[1], &mut st.max_lower_run);
        runs(m.upper, &mut carry[2], &mut st.max_upper_run);
        runs(m.vowel, &mut carry[3], &mut st.max_vowel_run);
        runs(m.consonant, &mut carry[4], &mut st.max_consonant_run);
    }
    st
}

/// `log2 n` for small `n`, bit-identical to `(n as f64).log2()`.
static LOG2: std::sync::LazyLock<Box<[f64]>> =
    std::sync::LazyLock::new(|| (0..PLOG_N).map(|n| (n as f64).log2()).collect());

/// Largest string (and segment) the scanner takes: every count and length
/// is then an index into the `c log2 c` and `log2 n` tables, and fits the
/// 16-bit halves of the packed histogram.
pub(crate) const MAX_FUSED: usize = PLOG_N - 1;
const _: () = assert!(PLOG_N.is_power_of_two() && MAX_FUSED < 1 << 16);

const TOTAL: u32 = 1 << 16;
const SEG: u32 = 1;
const SEG_MASK: u32 = 0xffff;

/// Reusable histogram state of the fused pass (zeroed between uses).
pub(crate) struct Scanner {
    /// Per byte value: count in the whole string (high 16 bits) and in the
    /// current segment (low 16 bits).
    h: [u32; 256],
    /// Largest packed value so far: its high half is the largest
    /// whole-string count (the low half is below `TOTAL`, and counts only grow).
    max: u32,
    /// Distinct byte values of the segment in order of first occurrence;
    /// `n_seg` of them are valid. 512 entries so that `idx & 511` is always
    /// in bounds and the write needs no check (the index never exceeds 256:
    /// there are 256 byte values).
    seg: [u8; 512],
    n_seg: usize,
    /// `c log2 c` and `log2 n` for `0..PLOG_N`, fetched once.
    plog: &'static [f64],
    log2: &'static [f64],
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            h: [0; 256],
            max: 0,
            seg: [0; 512],
            n_seg: 0,
            plog: &PLOG,
            log2: &LOG2,
        }
    }
}

impl Scanner {
    /// Count `s` in the whole-string half only.
    #[inline(always)]
    fn feed_total(&mut self, s: &[u8]) {
        let mut max = self.max;
        for &b in s {
            let new = self.h[b as usize] + TOTAL;
            self.h[b as usize] = new;
            max = max.max(new);
        }
        self.max = max;
    }

    /// Count `s` in both halves.
    #[inline(always)]
    fn feed_both(&mut self, s: &[u8]) {
        let (mut max, mut ns) = (self.max, self.n_seg);
        for &b in s {
            let old = self.h[b as usize];
            let new = old + (TOTAL | SEG);
            self.h[b as usize] = new;
            // the low half is below TOTAL, so the maximum of the packed
            // values has the maximum whole-string count in its high half
            max = max.max(new);
            self.seg[ns & 511] = b;
            ns += (old & SEG_MASK == 0) as usize;
        }
        self.max = max;
        self.n_seg = ns;
    }

    /// Count `s` in the segment half only (the whole-string half is empty).
    #[inline(always)]
    fn feed_seg(&mut self, s: &[u8]) {
        let mut ns = self.n_seg;
        for &b in s {
            let old = self.h[b as usize];
            self.h[b as usize] = old + SEG;
            self.seg[ns & 511] = b;
            ns += (old == 0) as usize;
        }
        self.n_seg = ns;
    }

    /// Entropy of the segment of `n` bytes just fed; clears the segment half.
    #[inline(always)]
    fn take_seg(&mut self, n: usize) -> f64 {
        let mut acc = 0.0;
        for &b in &self.seg[..self.n_seg.min(256)] {
            let c = self.h[b as usize] & SEG_MASK;
            // c <= n <= MAX_FUSED < PLOG_N, so the mask changes nothing
            acc += self.plog[c as usize & (PLOG_N - 1)];
            self.h[b as usize] &= !SEG_MASK;
        }
        self.n_seg = 0;
        // H = log2 n - (1/n) Σ c log2 c, the reference's expression
        let nf = n as f64;
        (self.log2[n & (PLOG_N - 1)] - acc / nf).max(0.0)
    }

    /// (count of `&`, count of `=`, count of the most frequent byte) of the
    /// whole string just fed; clears the histogram.
    #[inline(always)]
    fn take_total(&mut self, text: &[u8]) -> (u32, u32, u32) {
        let amps = self.h[b'&' as usize] >> 16;
        let equals = self.h[b'=' as usize] >> 16;
        let max = self.max >> 16;
        if text.len() > 32 {
            // a 1 KiB fill is cheaper than scattered stores for all but short strings
            self.h = [0; 256];
        } else {
            for &b in text {
                self.h[b as usize] = 0;
            }
        }
        self.max = 0;
        (amps, equals, max)
    }

    /// The lexical stats of `text` and the entropies of `segs` (NaN for
    /// `None`, 0 for an empty one). Segments that are sub-slices of `text`, in
    /// order and disjoint, share the histogram pass over `text`; the others
    /// get their own. `text` must be at most [`MAX_FUSED`] bytes and each
    /// segment too.
    pub(crate) fn scan(&mut self, text: &[u8], segs: [Option<&[u8]>; 3]) -> (LexStats, [f64; 3]) {
        debug_assert!(text.len() <= MAX_FUSED);
        let mut st = class_stats(text);
        let mut ent = [f64::NAN; 3];
        // (offset in text, segment index) of the fused segments, in text order
        let mut fused: [(usize, usize); 3] = [(0, 0); 3];
        let mut n_fused = 0;
        let mut own = [false; 3];
        let base = text.as_ptr() as usize;
        let mut end_prev = 0;
        for (i, s) in segs.iter().enumerate() {
            let Some(s) = s else { continue };
            if s.is_empty() {
                ent[i] = 0.0;
                continue;
            }
            let off = (s.as_ptr() as usize).wrapping_sub(base);
            if s.as_ptr() as usize >= base && off >= end_prev && off + s.len() <= text.len() {
                fused[n_fused] = (off, i);
                n_fused += 1;
                end_prev = off + s.len();
            } else {
                own[i] = true;
            }
        }
        let mut pos = 0;
        for &(off, i) in &fused[..n_fused] {
            // the checks above make off >= pos and off + len <= text.len()
            let len = segs[i].map_or(0, <[u8]>::len);
            self.feed_total(&text[pos..off]);
            self.feed_both(&text[off..off + len]);
            ent[i] = self.take_seg(len);
            pos = off + len;
        }
        self.feed_total(&text[pos..]);
        let (amps, equals, max) = self.take_total(text);
        st.amps = amps;
        st.equals = equals;
        st.max_byte_count = max;
        for (i, s) in segs.iter().enumerate() {
            if let (true, Some(s)) = (own[i], s) {
                self.feed_seg(s);
                ent[i] = self.take_seg(s.len());
            }
        }
        (st, ent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexical::Histogram;

    fn runs_ref(m: u64) -> u32 {
        let (mut best, mut r) = (0, 0);
        for i in 0..64 {
            r = if m >> i & 1 == 1 { r + 1 } else { 0 };
            best = best.max(r);
        }
        best
    }

    #[test]
    fn bit_helpers_match_plain_loops() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // sparse and dense masks both
            for m in [x, x & (x >> 3), x | (x << 5), x & 0xffff_0000_ffff] {
                if m != u64::MAX {
                    assert_eq!(max_run(m), runs_ref(m), "{m:#x}");
                }
            }
            let w = x & 0x7f7f_7f7f_7f7f_7f7f;
            for k in 0..7 {
                let want = (0..8).fold(0u64, |a, i| a | ((w >> (8 * i + k) & 1) << i));
                assert_eq!(bits(w, k as u32), want);
            }
        }
        // every byte value, at every offset of a chunk and in short tails
        let all: Vec<u8> = (0..=255u8).collect();
        for start in 0..64 {
            for len in [1, 15, 16, 17, 63, 64] {
                let c: Vec<u8> = all
                    .iter()
                    .cycle()
                    .skip(start * 5)
                    .take(len)
                    .copied()
                    .collect();
                assert_eq!(chunk_masks(&c), chunk_masks_swar(&c), "{c:?}");
            }
        }
        assert_eq!(max_run(0), 0);
        assert_eq!(max_run(u64::MAX >> 1), 63);
    }

    /// Strings that cross the 64-byte chunk edges with every class.
    fn samples() -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"a".to_vec(),
            b"9".to_vec(),
            "é".as_bytes().to_vec(),
            b"http://bcdAEx12345.iou/ZZ?k=v&k=v&".to_vec(),
        ];
        for n in [63, 64, 65, 127, 128, 129, 200] {
            for pat in [&b"a"[..], b"b", b"1", b"Z", b"ae", b"bc", b"aB3/", b"x=1&"] {
                v.push(pat.iter().copied().cycle().take(n).collect());
            }
        }
        let mut x: u64 = 42;
        for n in 0..300 {
            let s: Vec<u8> = (0..n)
                .map(|_| {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    const PAT: &[u8] = b"aeioubcdxyzAEBZ0189/.?&=%~ \xc3\x80";
                    PAT[(x >> 33) as usize % PAT.len()]
                })
                .collect();
            v.push(s);
        }
        v
    }

    #[test]
    fn scan_matches_reference() {
        let mut h = Histogram::default();
        let mut sc = Scanner::default();
        for s in samples() {
            let n = s.len();
            // fused sub-slices, a non-fused copy, overlapping and out-of-order ones
            let copy = s.clone();
            let cases: Vec<[Option<&[u8]>; 3]> = vec![
                [Some(&s[..n / 3]), Some(&s[n / 3..n / 2]), Some(&s[n / 2..])],
                [Some(&s[n / 4..n / 2]), None, Some(&copy)],
                [Some(&s[n / 2..]), Some(&s[..n / 2]), Some(&s[n / 4..])],
                [Some(&s), Some(&s), Some(b"")],
            ];
            for c in s.chunks(64) {
                assert_eq!(chunk_masks(c), chunk_masks_swar(c));
            }
            assert_eq!(class_stats_with(&s, chunk_masks_swar), class_stats(&s));
            assert_eq!(class_stats_with(&s, chunk_masks), class_stats(&s));
            for segs in cases {
                let (st, ent) = sc.scan(&s, segs);
                assert_eq!(st, h.lex(&s), "{:?}", String::from_utf8_lossy(&s));
                for (e, seg) in ent.iter().zip(segs) {
                    match seg {
                        None => assert!(e.is_nan()),
                        Some(x) => assert_eq!(e.to_bits(), h.entropy(x).to_bits()),
                    }
                }
                assert!(sc.h.iter().all(|&c| c == 0), "histogram left dirty");
            }
        }
    }
}
