//! The fast path of the lexical features and entropies: the same values as
//! [`Histogram::lex`](crate::lexical::Histogram::lex) and
//! [`Histogram::entropy`](crate::lexical::Histogram::entropy), which stay as
//! the plain reference (tests compare the two on every URL of the bench data,
//! bit for bit).
//!
//! Two ideas make it fast:
//! - Class features from bit masks. A 64-byte chunk becomes one `u64` mask
//!   per class (with AVX-512BW/VBMI, detected at run time: one masked load,
//!   a table permute and a test per class; with AVX2, detected likewise:
//!   the SSE2 compares on at most two 32-byte blocks that lie inside the
//!   string, overlapping at its end; else SSE2 compares on x86-64, else the
//!   class table and a multiply per 8 bytes); counts are popcounts,
//!   vowel/consonant changes are `prev & cur` of shifted masks, and the
//!   longest run of a class takes a few shifts per chunk (with AVX-512 or
//!   AVX2, the five classes side by side in vector lanes, and the runs that
//!   cross chunks joined without the data-dependent branches of [`runs`]).
//! - One counting pass for the whole URL and its host, path and query. With
//!   AVX-512 and a text of at most 64 bytes (86% of the PhishCrawl URLs),
//!   each byte's count is the popcount of a compare of the whole text
//!   against it, inside its segment's bit range (`avx512::stats_and_counts`,
//!   which makes the class masks from the same load); otherwise a packed
//!   `u64` per byte value counts the whole string in its top 16 bits and
//!   each segment in a 16-bit field of its own; the largest count and the
//!   clearing come from one sweep over the histogram's printable-ASCII
//!   entries when the text has no special byte (`Scanner::take_total`;
//!   twenty-fourth session, Zen 3, AVX2, PhishCrawl: callgrind 2056 → 1924
//!   instructions per URL, `url_row` 233–237 → 215–217 ns/URL). Either way
//!   the entropy sums, per byte, how much `Σ c log2 c` grows as that byte
//!   is counted (`GROWTH[c]`, `c` its count so far), as the reference does
//!   ([`sum4`]): so the histogram is read in the counting pass itself, with
//!   no second pass over the segment.
//!
//! The counting pass, measured on its own (Zen 4, AVX-512, `examples/url_rows`,
//! min ns/URL over alternated runs, same checksums within each step):
//! `url_row` 215 (the distinct-byte list) → 205 (per-byte `log2 c`, four
//! accumulators, a field per segment) → 194 (the compares); `request_rows`
//! 259 → 231 → 224 (the entropies written in place, see `url_part`). Then
//! the vector runs for texts over 64 bytes: `url_row` 193 → 186; the class
//! masks and the counts from one load: 185 → 180 (`request_rows` 219 → 211).
//! Then (sixteenth session, Zen 3, AVX2, callgrind instructions per URL)
//! the growth terms in the counting pass and `sum4` over groups of four:
//! `url_row` 2197 → 2081, `request_row` 2444 → 2340.
//!
//! The levels ([`Simd`]) are Base (SSE2 or SWAR), BitOps (+ popcnt, lzcnt,
//! bmi1), Avx2 (+ AVX2 and BMI2, no AVX-512) and Avx512. The AVX2 level,
//! for CPUs such as AMD Zen 2/3 and Intel client cores, has three parts,
//! each measured on its own (PhishCrawl dev URLs, `examples/url_rows`,
//! Zen 3, callgrind instructions per URL; `url_row` ns/URL min/median over
//! 16 alternating runs on a noisy 2-core machine):
//! - the class masks and vector runs of [`avx2`]: -420 instructions/URL,
//!   about -40/-50 ns/URL (of which the vector runs: -165 and -25/-35);
//! - the URL splitter and host lower-casing with '/' and '.' masks from
//!   32-byte compares (`urlparts::avx2`; the psl lookup and slash counts
//!   then use the masks as with AVX-512): -155 instructions, -30 ns/URL;
//! - `url_row`/`request_row` compiled with AVX2 so that the helpers inline:
//!   -50 instructions, -10 ns/URL.
//!
//! Together, against BitOps on the same CPU: `url_row` 3185 → 2363
//! instructions and 415/524 → 349/416 ns/URL (min/median), `request_row`
//! 3275 → 2643 instructions and 507/579 → 418/502 ns/URL, with
//! bit-identical outputs (the checksums of `url_rows` do not change).

#[cfg(any(test, not(target_arch = "x86_64")))]
use crate::lexical::CLASS;
use crate::lexical::{sum4, LexStats, GROWTH, LOG2, LOG2_N};

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

/// Which class-mask builder the CPU allows, detected once per [`Scanner`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Simd {
    /// The baseline: SSE2 on x86-64, the table (SWAR) elsewhere.
    Base,
    /// x86-64 with popcnt/lzcnt/bmi1: the baseline masks, counted with
    /// the bit instructions.
    BitOps,
    /// x86-64 with AVX2, BMI2 and the bit instructions but no AVX-512: the
    /// masks of a chunk from at most two 32-byte compares, the five longest
    /// runs of a one-chunk string in 4 x u64 lanes, and the hot functions
    /// compiled with AVX2 so that the helpers inline.
    Avx2,
    /// x86-64 with AVX-512F/BW/VBMI and BMI2 as well: one masked 64-byte load
    /// and a table permute per chunk.
    Avx512,
}

impl Simd {
    /// The highest level this CPU runs, capped by the environment variable
    /// `PALISADE_SIMD`: `off` gives the baseline, `avx2` at most the AVX2
    /// level (as the models' kernels read `off`). Why a switch: to compare
    /// the levels on one machine (the AVX2 level on an AVX-512 CPU, say),
    /// and to rule the SIMD code out when a value looks wrong. Every level
    /// gives the same features (the tests check it bit for bit).
    pub(crate) fn detect() -> Simd {
        let cpu = Simd::of_cpu();
        #[cfg(target_arch = "x86_64")]
        let avx2 = cpu == Simd::Avx2 || (cpu == Simd::Avx512 && Simd::has_avx2());
        #[cfg(not(target_arch = "x86_64"))]
        let avx2 = false;
        Simd::capped(cpu, avx2, std::env::var_os("PALISADE_SIMD").as_deref())
    }

    /// `cpu` (the highest level; `avx2`: whether the CPU runs the AVX2
    /// level too) capped by `PALISADE_SIMD`'s value `cap`.
    fn capped(cpu: Simd, avx2: bool, cap: Option<&std::ffi::OsStr>) -> Simd {
        match cap {
            Some(v) if v == "off" => Simd::Base,
            // (AVX-512 is found without asking for AVX2 itself)
            Some(v) if v == "avx2" && cpu == Simd::Avx512 => {
                if avx2 {
                    Simd::Avx2
                } else {
                    Simd::BitOps
                }
            }
            _ => cpu,
        }
    }

    /// The highest level this CPU runs.
    fn of_cpu() -> Simd {
        #[cfg(target_arch = "x86_64")]
        {
            // The baseline x86-64 target has no popcnt/lzcnt/tzcnt instructions;
            // nearly every CPU does.
            let bitops = std::is_x86_feature_detected!("popcnt")
                && std::is_x86_feature_detected!("lzcnt")
                && std::is_x86_feature_detected!("bmi1");
            if bitops
                && std::is_x86_feature_detected!("bmi2")
                && std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vbmi")
            {
                return Simd::Avx512;
            }
            if bitops && Simd::has_avx2() {
                return Simd::Avx2;
            }
            if bitops {
                return Simd::BitOps;
            }
        }
        Simd::Base
    }

    /// AVX2 and BMI2 (the bit instructions of [`Simd::BitOps`] aside).
    #[cfg(target_arch = "x86_64")]
    fn has_avx2() -> bool {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("bmi2")
    }

    /// Every level this CPU can run, lowest first (tests check each against
    /// the references).
    #[cfg(test)]
    pub(crate) fn levels() -> Vec<Simd> {
        let top = Simd::detect();
        let mut v = vec![Simd::Base];
        if top != Simd::Base {
            v.push(Simd::BitOps);
        }
        #[cfg(target_arch = "x86_64")]
        if top != Simd::Base && Simd::has_avx2() {
            v.push(Simd::Avx2);
        }
        if top == Simd::Avx512 {
            v.push(Simd::Avx512);
        }
        v
    }
}

/// The class counts, runs and changes of `s` (every field of [`LexStats`]
/// except the histogram ones: `amps`, `equals`, `max_byte_count`), with the
/// mask builder `simd` names (which must come from [`Simd::detect`], or be
/// a lower level).
#[inline]
pub(crate) fn class_stats(s: &[u8], simd: Simd) -> LexStats {
    #[cfg(target_arch = "x86_64")]
    {
        match simd {
            // SAFETY: `Simd::detect` found the CPU features these functions
            // enable; they are otherwise ordinary safe functions.
            Simd::Avx512 => return unsafe { avx512::class_stats(s) },
            Simd::Avx2 => return unsafe { avx2::class_stats(s) },
            Simd::BitOps => return unsafe { class_stats_bitops(s) },
            Simd::Base => {}
        }
    }
    let _ = simd;
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

/// The class masks with AVX-512: a whole chunk per step.
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use super::Masks;
    use crate::lexical::{
        LexStats, BASE64, CLASS, CONSONANT, DIGIT, LOG2_N, LOWER, SPECIAL, UPPER, VOWEL,
    };
    use std::arch::x86_64::{
        __m512i, _bzhi_u64, _mm512_and_si512, _mm512_cmpeq_epi64_mask, _mm512_loadu_si512,
        _mm512_mask_add_epi64, _mm512_mask_cmpeq_epi8_mask, _mm512_mask_mov_epi64,
        _mm512_mask_test_epi8_mask, _mm512_maskz_loadu_epi8, _mm512_movepi8_mask,
        _mm512_permutex2var_epi8, _mm512_set1_epi64, _mm512_set1_epi8, _mm512_set_epi64,
        _mm512_setzero_si512, _mm512_srli_epi64, _mm512_srlv_epi64, _mm512_storeu_si512,
        _mm512_test_epi64_mask,
    };

    /// The class bytes of the 128 ASCII values: the two 64-byte tables one
    /// `vpermi2b` indexes with the low 7 bits of each byte.
    static ASCII: [u8; 128] = {
        let mut t = [0u8; 128];
        let mut i = 0;
        while i < 128 {
            t[i] = CLASS[i];
            i += 1;
        }
        t
    };

    /// The two halves of [`ASCII`], as [`chunk_masks`] and [`masks_of`] take them.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn ascii_halves() -> (__m512i, __m512i) {
        // SAFETY (both loads): `ASCII` is 128 readable bytes and the
        // unaligned load reads 64 at a time.
        unsafe {
            (
                _mm512_loadu_si512(ASCII.as_ptr().cast::<__m512i>()),
                _mm512_loadu_si512(ASCII.as_ptr().add(64).cast::<__m512i>()),
            )
        }
    }

    /// The bytes of `s` (at most 64) in a vector, zeros past its end, and
    /// the mask of its lanes (`valid`): one masked load.
    ///
    /// An empty `s` loads from a static buffer, with every lane masked off.
    /// Why: an empty slice's pointer may point nowhere (`b""` is 0x1), and
    /// a masked load whose lanes lie on an unmapped page, even all of them
    /// masked off, costs a fault-suppression assist: 73–80 ns a load on Zen
    /// 5 (`examples/masked_load.rs`). 70% of the events of Zeek's ssl.log in
    /// the real request logs have no server name, so an empty text:
    /// `request_rows` on those logs (`url_rows real`) took 118 ns/event with
    /// the load at 0x1 and 67–71 with this, in one binary switched at run
    /// time (64–69 with the AVX2 level, which loads nothing for an empty
    /// text). How much the assist costs varies from build to build (one
    /// build of the old code ran at 68–75 ns); this takes it out of all.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,bmi2")]
    pub(crate) fn load_upto64(s: &[u8]) -> (__m512i, u64) {
        static NOTHING: [u8; 64] = [0; 64];
        debug_assert!(s.len() <= 64);
        // (BZHI keeps all 64 bits for a length of 64; no branch on either)
        let valid = _bzhi_u64(u64::MAX, s.len() as u32);
        let p = if s.is_empty() {
            NOTHING.as_ptr()
        } else {
            s.as_ptr()
        };
        // SAFETY: a masked load reads only the lanes of `valid`, which lie
        // inside `s` (BZHI takes the low 8 bits of the length as its index,
        // so `valid` has at most that many bits: never more than `s` has
        // bytes, whatever its length; none for an empty `s`, whose pointer
        // is then `NOTHING`'s); masked-off lanes are neither read nor faulted on.
        let x = unsafe { _mm512_maskz_loadu_epi8(valid, p.cast::<i8>()) };
        (x, valid)
    }

    /// [`class_stats`](super::class_stats) with these masks.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,popcnt,lzcnt,bmi1,bmi2")]
    pub(super) fn class_stats(s: &[u8]) -> LexStats {
        let (lo, hi) = ascii_halves();
        if s.len() > 64 {
            // the longest run inside each chunk from the vector lanes too,
            // and the runs that cross chunks joined without branches (with
            // `runs`' branches: texts over 64 bytes 364–371 → 326–333 ns/URL)
            return super::class_stats_runs(
                s,
                |chunk| chunk_masks(chunk, lo, hi),
                |m, carry, best| super::join_runs(m, max_runs(m), carry, best),
            );
        }
        // One chunk (most URLs): the same sums as `class_stats_with`, and the
        // five longest runs side by side in vector lanes, without the
        // data-dependent branches of `runs` (whether a class occurs at all
        // varies from URL to URL and mispredicts).
        let m = chunk_masks(s, lo, hi);
        let runs = max_runs([m.digit, m.lower, m.upper, m.vowel, m.consonant]);
        super::one_chunk_stats(s, &m, runs)
    }

    /// The longest run of one bits of each of five masks: [`max_run`](super::max_run)
    /// in the lanes of one vector, plus 64 for an all-ones mask.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn max_runs(m: [u64; 5]) -> [u32; 5] {
        let v = _mm512_set_epi64(
            0,
            0,
            0,
            m[4] as i64,
            m[3] as i64,
            m[2] as i64,
            m[1] as i64,
            m[0] as i64,
        );
        let and_shr = |a: __m512i, k: u32| match k {
            1 => _mm512_and_si512(a, _mm512_srli_epi64::<1>(a)),
            2 => _mm512_and_si512(a, _mm512_srli_epi64::<2>(a)),
            4 => _mm512_and_si512(a, _mm512_srli_epi64::<4>(a)),
            8 => _mm512_and_si512(a, _mm512_srli_epi64::<8>(a)),
            _ => _mm512_and_si512(a, _mm512_srli_epi64::<16>(a)),
        };
        let a1 = v;
        let a2 = and_shr(a1, 1);
        let a4 = and_shr(a2, 2);
        let a8 = and_shr(a4, 4);
        let a16 = and_shr(a8, 8);
        let a32 = and_shr(a16, 16);
        let mut x = _mm512_set1_epi64(-1);
        let mut r = _mm512_setzero_si512();
        for (step, a) in [(32, a32), (16, a16), (8, a8), (4, a4), (2, a2), (1, a1)] {
            let y = _mm512_and_si512(x, _mm512_srlv_epi64(a, r));
            let some = _mm512_test_epi64_mask(y, y);
            x = _mm512_mask_mov_epi64(x, some, y);
            r = _mm512_mask_add_epi64(r, some, r, _mm512_set1_epi64(step));
        }
        let full = _mm512_cmpeq_epi64_mask(v, _mm512_set1_epi64(-1));
        r = _mm512_mask_mov_epi64(r, full, _mm512_set1_epi64(64));
        let mut out = [0u64; 8];
        // SAFETY: `out` is 64 writable bytes; the store has no alignment requirement.
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast::<__m512i>(), r) };
        [out[0], out[1], out[2], out[3], out[4]].map(|x| x as u32)
    }

    /// The masks of a chunk of at most 64 bytes (`lo`, `hi`: the halves of [`ASCII`]).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,bmi2")]
    pub(super) fn chunk_masks(chunk: &[u8], lo: __m512i, hi: __m512i) -> Masks {
        let (x, valid) = load_upto64(chunk);
        masks_of(x, valid, lo, hi)
    }

    /// The masks of the `valid` lanes of `x` (the others zero).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    fn masks_of(x: __m512i, valid: u64, lo: __m512i, hi: __m512i) -> Masks {
        // CLASS of the low 7 bits; bytes with the high bit set (non-ASCII)
        // belong only to `special`
        let cls = _mm512_permutex2var_epi8(lo, x, hi);
        let high = _mm512_movepi8_mask(x) & valid;
        let ascii = valid & !high;
        let t = |bit: u8| _mm512_mask_test_epi8_mask(ascii, cls, _mm512_set1_epi8(bit as i8));
        let base64 = t(BASE64);
        Masks {
            digit: t(DIGIT),
            lower: t(LOWER),
            upper: t(UPPER),
            vowel: t(VOWEL),
            consonant: t(CONSONANT),
            base64,
            special: t(SPECIAL) | high,
        }
    }

    /// The lexical stats of a text of at most 64 bytes (one vector), its
    /// histogram facts (count of `&`, count of `=`, largest count of one
    /// byte value) counted without a histogram, and, for each
    /// `(offset, length)` range of `ranges`, the sum `Σ c log2 c` of entropy
    /// over its bytes ([`sum4`](crate::lexical::sum4): `GROWTH[c]` per byte,
    /// `c` the count of the byte's value inside the range up to and
    /// including that byte), into `sums`. The class stats are [`class_stats`]'s; one
    /// load of the text serves both (apart: `url_row` 185 → 180 ns/URL
    /// together, `request_rows` 219 → 211).
    ///
    /// Each byte's count is the popcount of one compare of the whole text
    /// against that byte. Why not the packed histogram here: its counts are
    /// stores that the entropy pass then loads back (perf: the adds waiting
    /// on those loads were a third of `url_row`'s own samples on Zen 4), and
    /// the histogram must be cleared after; these are compares, popcounts
    /// and table loads, nothing stored. Why only one vector: the same with
    /// two (texts of 65 to 128 bytes, `u128` masks) was slower than the
    /// histogram on the PhishCrawl URLs (`url_row` 193 → 199 ns/URL). Why
    /// not with AVX2 too: the same compares on at most two 32-byte vectors
    /// (loaded as `avx2::masks64` loads them) were slower than the
    /// histogram there (the AVX2 level forced on Zen 4: `url_row` 213–215 →
    /// 219 ns/URL).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,popcnt,lzcnt,bmi1,bmi2")]
    pub(super) fn stats_and_counts(
        text: &[u8],
        ranges: &[(usize, usize)],
        growth: &[f64; LOG2_N],
        sums: &mut [f64; 3],
    ) -> LexStats {
        debug_assert!(text.len() <= 64 && ranges.len() <= 3);
        let (x, valid) = load_upto64(text);
        let (lo, hi) = ascii_halves();
        let m = masks_of(x, valid, lo, hi);
        let runs = max_runs([m.digit, m.lower, m.upper, m.vowel, m.consonant]);
        let mut st = super::one_chunk_stats(text, &m, runs);
        // the bytes equal to `b`, inside the text (a NUL byte must not match
        // the zeroed lanes past its end)
        let eq = |b: u8| _mm512_mask_cmpeq_epi8_mask(valid, x, _mm512_set1_epi8(b as i8));
        st.amps = eq(b'&').count_ones();
        st.equals = eq(b'=').count_ones();
        // BZHI, not a shift and a mask: LLVM widened those (four bytes' masks
        // at a time, popcounts by nibble lookups in one vector, then each
        // lane extracted for its table load), which made `url_row` ~7%
        // slower than counting by final counts had been (Zen 4); BZHI is an
        // instruction it cannot widen, so each count stays one `popcnt`.
        let upto = |m: u64, n: usize| _bzhi_u64(m, n as u32).count_ones();
        st.max_byte_count = super::counts_by_compare(text, ranges, growth, sums, eq, upto);
        st
    }
}

/// The counting of [`avx512::stats_and_counts`], given `eq(b)`: the bits of
/// the bytes of `text` (at most 64) equal to `b`, and `upto(m, n)`: the one
/// bits of `m` below bit `n` (1 ≤ n ≤ 64). Into `sums[k]`, the sum of
/// entropy of the `k`-th `(offset, length)` range of `ranges` ([`sum4`]:
/// `GROWTH[c]` per byte, `c` the matches inside the range up to and
/// including that byte); returns the largest count of one byte value in the
/// whole text. Apart from the SIMD code so that the tests run it, with a
/// plain `eq`, on CPUs without AVX-512 too.
#[cfg(any(test, target_arch = "x86_64"))]
#[inline(always)]
fn counts_by_compare(
    text: &[u8],
    ranges: &[(usize, usize)],
    growth: &[f64; LOG2_N],
    sums: &mut [f64; 3],
    eq: impl Fn(u8) -> u64,
    upto: impl Fn(u64, usize) -> u32,
) -> u32 {
    debug_assert!(text.len() <= 64 && ranges.len() <= 3);
    let max_of = |bytes: &[u8]| bytes.iter().map(|&b| eq(b).count_ones()).fold(0, u32::max);
    let mut max = 0u32;
    let mut pos = 0;
    for (k, &(off, len)) in ranges.iter().enumerate() {
        max = max.max(max_of(&text[pos..off]));
        let seg = &text[off..off + len];
        let range = crate::urlparts::range_mask(off, len);
        let mut seg_max = 0u32;
        sums[k] = sum4(seg, |j, b| {
            let m = eq(b);
            seg_max = seg_max.max(m.count_ones());
            // the matches in the range up to and including this byte (at
            // text position off + j <= 63)
            let c = upto(m & range, off + j + 1);
            // 1 <= c <= len <= 64 < LOG2_N, so the mask changes nothing
            growth[c as usize & (LOG2_N - 1)]
        });
        max = max.max(seg_max);
        pos = off + len;
    }
    max.max(max_of(&text[pos..]))
}

/// The stats of a string of at most one chunk from its masks `m` and the
/// longest runs of digit, lower, upper, vowel and consonant bytes: the sums
/// of [`class_stats_with`] for one chunk.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn one_chunk_stats(s: &[u8], m: &Masks, runs: [u32; 5]) -> LexStats {
    let pop = |x: u64| x.count_ones();
    let [digit, lower, upper, vowel, consonant] = runs;
    LexStats {
        len: s.len() as u32,
        first_is_digit: s.first().is_some_and(|b| b.is_ascii_digit()),
        non_base64: s.len() as u32 - pop(m.base64),
        specials: pop(m.special),
        digits: pop(m.digit),
        lower: pop(m.lower),
        upper: pop(m.upper),
        vowels: pop(m.vowel),
        consonants: pop(m.consonant),
        vowel_changes: pop(((m.vowel << 1) & m.consonant) | ((m.consonant << 1) & m.vowel)),
        max_digit_run: digit,
        max_lower_run: lower,
        max_upper_run: upper,
        max_vowel_run: vowel,
        max_consonant_run: consonant,
        ..Default::default()
    }
}

/// The class masks with AVX2: a chunk in at most two 32-byte blocks (the
/// compares of [`sse2`], twice as wide), and the longest runs of a
/// one-chunk string in vector lanes.
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use super::Masks;
    use crate::lexical::LexStats;
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi64, _mm256_and_si256, _mm256_andnot_si256, _mm256_blendv_epi8,
        _mm256_cmpeq_epi64, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_set1_epi64x, _mm256_set1_epi8, _mm256_set_epi64x, _mm256_set_m128i,
        _mm256_setzero_si256, _mm256_srli_epi64, _mm256_srlv_epi64, _mm256_storeu_si256,
        _mm256_sub_epi8, _mm256_subs_epu8, _mm_loadu_si128,
    };

    /// Lane masks of up to 64 bytes of `s` (bit `i` = byte `i`; bits past
    /// the end are zero): `f` gives `K` lane masks of a 32-byte vector, and
    /// is applied to at most two vectors that lie inside `s` (overlapping,
    /// never reading past it; a string under 16 bytes is copied first).
    /// `f` must be a per-lane test (a byte's bits depend on that byte only);
    /// the bits of padding lanes are dropped.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) fn masks64<const K: usize>(s: &[u8], f: impl Fn(__m256i) -> [u32; K]) -> [u64; K] {
        let n = s.len();
        debug_assert!(n <= 64);
        if n >= 32 {
            // SAFETY: n >= 32, so the loads read bytes 0..32 and n-32..n of
            // `s`; unaligned loads have no alignment requirement.
            let (a, b) = unsafe {
                (
                    _mm256_loadu_si256(s.as_ptr().cast::<__m256i>()),
                    _mm256_loadu_si256(s.as_ptr().add(n - 32).cast::<__m256i>()),
                )
            };
            let (ma, mb) = (f(a), f(b));
            // the second block's lanes are bytes n-32..n; the overlap with
            // the first agrees (the same bytes, a per-lane test)
            std::array::from_fn(|k| ma[k] as u64 | (mb[k] as u64) << (n - 32))
        } else if n >= 16 {
            // SAFETY: the loads read bytes 0..16 and n-16..n of `s`.
            let x = unsafe {
                _mm256_set_m128i(
                    _mm_loadu_si128(s.as_ptr().add(n - 16).cast()),
                    _mm_loadu_si128(s.as_ptr().cast()),
                )
            };
            let m = f(x);
            std::array::from_fn(|k| (m[k] & 0xffff) as u64 | ((m[k] >> 16) as u64) << (n - 16))
        } else {
            let mut b = [0u8; 32];
            b[..n].copy_from_slice(s);
            // SAFETY: `b` is 32 readable bytes.
            let x = unsafe { _mm256_loadu_si256(b.as_ptr().cast::<__m256i>()) };
            let m = f(x);
            let valid = (1u32 << n) - 1;
            std::array::from_fn(|k| (m[k] & valid) as u64)
        }
    }

    /// The lane masks of 32 bytes: digit, lower, upper, vowel, consonant,
    /// base64, special (the tests of `sse2::block`).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn block(x: __m256i) -> [u32; 7] {
        // closures, not functions: they inherit the enabled features
        let eq = |x, c: u8| _mm256_cmpeq_epi8(x, _mm256_set1_epi8(c as i8));
        // lanes with `lo <= x <= hi` (unsigned): `x - lo` saturating-minus
        // `hi - lo` is zero exactly then
        let range = |x, lo: u8, hi: u8| {
            let t = _mm256_sub_epi8(x, _mm256_set1_epi8(lo as i8));
            _mm256_cmpeq_epi8(
                _mm256_subs_epu8(t, _mm256_set1_epi8((hi - lo) as i8)),
                _mm256_setzero_si256(),
            )
        };
        let or = |a, b| _mm256_or_si256(a, b);
        let digit = range(x, b'0', b'9');
        let lower = range(x, b'a', b'z');
        let upper = range(x, b'A', b'Z');
        // `x | 0x20` equals a lower-case vowel only for that vowel in either case
        let lx = _mm256_or_si256(x, _mm256_set1_epi8(0x20));
        let vowel = or(
            or(eq(lx, b'a'), eq(lx, b'e')),
            or(or(eq(lx, b'i'), eq(lx, b'o')), eq(lx, b'u')),
        );
        let alpha = or(lower, upper);
        let base64 = or(
            or(alpha, digit),
            or(or(eq(x, b'+'), eq(x, b'/')), eq(x, b'=')),
        );
        let printable = range(x, 0x21, 0x7e);
        let bad = or(
            or(or(eq(x, b'"'), eq(x, b'<')), or(eq(x, b'>'), eq(x, b'\\'))),
            or(or(eq(x, b'^'), eq(x, b'`')), range(x, b'{', b'}')),
        );
        let mm = |v| _mm256_movemask_epi8(v) as u32;
        let alpha_m = mm(alpha);
        let vowel_m = mm(vowel);
        [
            mm(digit),
            mm(lower),
            mm(upper),
            vowel_m,
            alpha_m & !vowel_m,
            mm(base64),
            !mm(printable) | mm(bad),
        ]
    }

    /// The masks of a chunk of at most 64 bytes.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) fn chunk_masks(chunk: &[u8]) -> Masks {
        let [digit, lower, upper, vowel, consonant, base64, special] = masks64(chunk, |x| block(x));
        Masks {
            digit,
            lower,
            upper,
            vowel,
            consonant,
            base64,
            special,
        }
    }

    /// [`class_stats`](super::class_stats) with these masks.
    #[inline]
    #[target_feature(enable = "avx2,popcnt,lzcnt,bmi1,bmi2")]
    pub(super) fn class_stats(s: &[u8]) -> LexStats {
        if s.len() > 64 {
            // as with AVX-512
            return super::class_stats_runs(
                s,
                |c| chunk_masks(c),
                |m, carry, best| super::join_runs(m, max_runs(m), carry, best),
            );
        }
        // One chunk (most URLs): the runs without the data-dependent
        // branches of `runs`, as with AVX-512.
        let m = chunk_masks(s);
        let runs = max_runs([m.digit, m.lower, m.upper, m.vowel, m.consonant]);
        super::one_chunk_stats(s, &m, runs)
    }

    /// [`max_run`](super::max_run) of the four lanes of `v`, and 64 for an
    /// all-ones lane.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn max_runs4(v: __m256i) -> __m256i {
        let and_shr = |a: __m256i, k: u32| match k {
            1 => _mm256_and_si256(a, _mm256_srli_epi64::<1>(a)),
            2 => _mm256_and_si256(a, _mm256_srli_epi64::<2>(a)),
            4 => _mm256_and_si256(a, _mm256_srli_epi64::<4>(a)),
            8 => _mm256_and_si256(a, _mm256_srli_epi64::<8>(a)),
            _ => _mm256_and_si256(a, _mm256_srli_epi64::<16>(a)),
        };
        let a1 = v;
        let a2 = and_shr(a1, 1);
        let a4 = and_shr(a2, 2);
        let a8 = and_shr(a4, 4);
        let a16 = and_shr(a8, 8);
        let a32 = and_shr(a16, 16);
        let zero = _mm256_setzero_si256();
        let mut x = _mm256_set1_epi64x(-1);
        let mut r = zero;
        for (step, a) in [(32, a32), (16, a16), (8, a8), (4, a4), (2, a2), (1, a1)] {
            let y = _mm256_and_si256(x, _mm256_srlv_epi64(a, r));
            // all ones in the lanes where no run of `r + step` exists
            let none = _mm256_cmpeq_epi64(y, zero);
            x = _mm256_blendv_epi8(y, x, none);
            r = _mm256_add_epi64(r, _mm256_andnot_si256(none, _mm256_set1_epi64x(step)));
        }
        let full = _mm256_cmpeq_epi64(v, _mm256_set1_epi64x(-1));
        _mm256_blendv_epi8(r, _mm256_set1_epi64x(64), full)
    }

    /// The longest run of one bits of each of five masks, in two vectors.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn max_runs(m: [u64; 5]) -> [u32; 5] {
        let a = _mm256_set_epi64x(m[3] as i64, m[2] as i64, m[1] as i64, m[0] as i64);
        let b = _mm256_set_epi64x(0, 0, 0, m[4] as i64);
        let (ra, rb) = (max_runs4(a), max_runs4(b));
        let (mut oa, mut ob) = ([0u64; 4], [0u64; 4]);
        // SAFETY: `oa` and `ob` are 32 writable bytes each; the stores have
        // no alignment requirement.
        unsafe {
            _mm256_storeu_si256(oa.as_mut_ptr().cast::<__m256i>(), ra);
            _mm256_storeu_si256(ob.as_mut_ptr().cast::<__m256i>(), rb);
        }
        [oa[0], oa[1], oa[2], oa[3], ob[0]].map(|x| x as u32)
    }
}

/// [`class_stats`] with a given mask builder (tests run both).
#[inline(always)]
fn class_stats_with(s: &[u8], masks: impl Fn(&[u8]) -> Masks) -> LexStats {
    class_stats_runs(s, masks, |m, carry, best| {
        for k in 0..5 {
            runs(m[k], &mut carry[k], &mut best[k]);
        }
    })
}

/// [`runs`] for five masks of a chunk at once, without its branches, given
/// the longest run inside each (`inner`, 64 for an all-ones mask).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn join_runs(m: [u64; 5], inner: [u32; 5], carry: &mut [u32; 5], best: &mut [u32; 5]) {
    for k in 0..5 {
        // the run that continues the one still open (64 for all ones)
        let lead = (!m[k]).trailing_zeros();
        best[k] = best[k].max(carry[k] + lead).max(inner[k]);
        carry[k] = if m[k] == u64::MAX {
            carry[k] + 64
        } else {
            (!m[k]).leading_zeros()
        };
    }
}

/// [`class_stats_with`] with the runs of each chunk's five masks (digit,
/// lower, upper, vowel, consonant) folded by `fold` into the runs still open
/// (`carry`) and the longest so far (`best`), as [`runs`] folds one.
#[inline(always)]
fn class_stats_runs(
    s: &[u8],
    masks: impl Fn(&[u8]) -> Masks,
    mut fold: impl FnMut([u64; 5], &mut [u32; 5], &mut [u32; 5]),
) -> LexStats {
    let mut st = LexStats {
        len: s.len() as u32,
        first_is_digit: s.first().is_some_and(|b| b.is_ascii_digit()),
        ..Default::default()
    };
    // open runs (digit, lower, upper, vowel, consonant) and the last vowel/consonant bit
    let mut carry = [0u32; 5];
    let mut best = [0u32; 5];
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
        fold(
            [m.digit, m.lower, m.upper, m.vowel, m.consonant],
            &mut carry,
            &mut best,
        );
    }
    [
        st.max_digit_run,
        st.max_lower_run,
        st.max_upper_run,
        st.max_vowel_run,
        st.max_consonant_run,
    ] = best;
    st
}

/// Largest string (and segment) the scanner takes: every count and length
/// is then an index into the `log2` table, and fits the 16-bit fields of the
/// packed histogram.
pub(crate) const MAX_FUSED: usize = LOG2_N - 1;
const _: () = assert!(LOG2_N.is_power_of_two() && MAX_FUSED < 1 << 16);

/// One in the whole-string field (the top 16 bits of a packed count).
const TOTAL: u64 = 1 << 48;
/// The histogram entries that may count a byte a URL allows unescaped
/// (`0x21..=0x7e`), widened to whole 32-byte blocks of entries.
const URL_BYTES: std::ops::Range<usize> = 0x20..0x80;
/// Texts of more bytes than this take the sweep (`Scanner::take_total`):
/// the sweep is ~80 instructions, the loop over the text ~5 a byte. Measured
/// (callgrind, `url_rows real`, Zeek SNIs and Apache paths, where texts are
/// short and repeat): 64.3 M instructions without the sweep, 63.8 M with it
/// for every text, 62.4 M from 16 bytes, 63.0 M from 32; on the PhishCrawl
/// URLs the cut at 16 costs 10 instructions a URL against none.
const SWEEP_FROM: usize = 16;
/// Bits of one 16-bit field.
const FIELD: u64 = 0xffff;

/// Reusable histogram state of the fused pass (zeroed between uses).
pub(crate) struct Scanner {
    /// Per byte value, four 16-bit counts: in the whole string (bits 48..64)
    /// and in each of up to three segments (bits `16 j..16 j + 16` for the
    /// `j`-th segment in text order). Why a field per segment: no segment's
    /// counts need clearing before the next one is counted; one clear at the
    /// end serves all.
    h: [u64; 256],
    /// `log2 n` for `0..LOG2_N`, fetched once.
    log2: &'static [f64; LOG2_N],
    /// [`GROWTH`], fetched once.
    growth: &'static [f64; LOG2_N],
    /// The class-mask builder this CPU allows.
    simd: Simd,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            h: [0; 256],
            log2: &LOG2,
            growth: &GROWTH,
            simd: Simd::detect(),
        }
    }
}

impl Scanner {
    /// The SIMD level detected for this CPU (for the URL splitter too).
    #[inline]
    pub(crate) fn simd(&self) -> Simd {
        self.simd
    }

    /// Use a lower SIMD level than detected (tests run every level).
    #[cfg(test)]
    pub(crate) fn set_simd(&mut self, simd: Simd) {
        self.simd = simd;
    }

    /// Count `s` in the whole-string field only.
    #[inline(always)]
    fn feed_total(&mut self, s: &[u8]) {
        for &b in s {
            self.h[b as usize] += TOTAL;
        }
    }

    /// Count `s` in `add`'s fields (the whole string's and a segment's, or a
    /// segment's alone) and return its entropy, from the growth of the
    /// segment's field (at bit `shift`) at each byte ([`sum4`], as the
    /// reference sums).
    #[inline(always)]
    fn count_seg(&mut self, s: &[u8], add: u64, shift: u32) -> f64 {
        let (h, growth) = (&mut self.h, self.growth);
        let acc = sum4(s, |_, b| {
            let new = h[b as usize] + add;
            h[b as usize] = new;
            // 1 <= c <= n <= MAX_FUSED < LOG2_N, so the mask changes nothing
            growth[((new >> shift) & FIELD) as usize & (LOG2_N - 1)]
        });
        self.entropy_of(s.len(), acc)
    }

    /// (count of `&`, count of `=`, count of the most frequent byte) of the
    /// whole string just fed; clears the histogram. `url_bytes`: every byte
    /// of `text` is one a URL allows unescaped (no special byte, see
    /// [`crate::lexical`]), all in `0x21..=0x7e`.
    ///
    /// Why the range: the largest count and the clearing then take a fixed
    /// sweep over the 96 entries of `0x20..0x80` ([`Self::sweep`]) instead
    /// of a largest count kept at every byte of the counting loops (a
    /// compare and a conditional move a byte) and a clearing loop over the
    /// text (a store a byte, and an exit that the text's length decides):
    /// fewer instructions for texts of over [`SWEEP_FROM`] bytes, and no
    /// loop exit to mispredict. Shorter texts, and texts of at most 64
    /// bytes with a special byte, take the loop over the text (their largest
    /// count from it); longer texts with a special byte sweep the whole
    /// table.
    #[inline(always)]
    fn take_total(&mut self, text: &[u8], url_bytes: bool) -> (u32, u32, u32) {
        let top = |x: u64| (x >> 48) as u32;
        let amps = top(self.h[b'&' as usize]);
        let equals = top(self.h[b'=' as usize]);
        let max = if url_bytes && text.len() > SWEEP_FROM {
            self.sweep(URL_BYTES)
        } else if text.len() > 64 {
            // a long text with a special byte: the whole table (as the
            // 2 KiB fill that cleared long texts before)
            self.sweep(0..256)
        } else {
            let mut max = 0;
            for &b in text {
                max = max.max(top(self.h[b as usize]));
                self.h[b as usize] = 0;
            }
            max
        };
        (amps, equals, max)
    }

    /// The largest whole-string count in the histogram entries `range`,
    /// which it clears. The largest 16-bit field of the range is that count
    /// (a segment's count of a byte is at most the whole string's), so the
    /// sweep is a maximum over 16-bit lanes: a vector maximum (LLVM: PMAXUW,
    /// or its SSE2 form) and stores of zero, with no branch on the data.
    #[inline(always)]
    fn sweep(&mut self, range: std::ops::Range<usize>) -> u32 {
        let entries = &mut self.h[range];
        // SAFETY: the entries are `4 * len` initialised u16 lanes of the same
        // memory (u64's alignment covers u16's; every bit pattern is a u16),
        // borrowed mutably here alone.
        let lanes: &mut [u16] = unsafe {
            std::slice::from_raw_parts_mut(entries.as_mut_ptr().cast::<u16>(), 4 * entries.len())
        };
        let mut max = 0u16;
        for l in lanes {
            max = max.max(*l);
            *l = 0;
        }
        max as u32
    }

    /// The lexical stats of `text` and the entropies of `segs` (NaN for
    /// `None`, 0 for an empty one). Segments that are sub-slices of `text`, in
    /// order and disjoint, share the histogram pass over `text`; the others
    /// get their own. `text` must be at most [`MAX_FUSED`] bytes and each
    /// segment too.
    #[inline(always)]
    pub(crate) fn scan(
        &mut self,
        text: &[u8],
        segs: [Option<&[u8]>; 3],
        ent: &mut [f64; 3],
    ) -> LexStats {
        debug_assert!(text.len() <= MAX_FUSED);
        *ent = [f64::NAN; 3];
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
        #[cfg(target_arch = "x86_64")]
        if self.simd == Simd::Avx512 && text.len() <= 64 {
            let mut ranges = [(0, 0); 3];
            for (r, &(off, i)) in ranges.iter_mut().zip(&fused[..n_fused]) {
                *r = (off, segs[i].map_or(0, <[u8]>::len));
            }
            let mut sums = [0.0; 3];
            // SAFETY: `Simd::Avx512` comes from `Simd::detect`, which found
            // the features `stats_and_counts` enables.
            let st = unsafe {
                avx512::stats_and_counts(text, &ranges[..n_fused], self.growth, &mut sums)
            };
            for (&(_, i), (&(_, len), acc)) in fused[..n_fused].iter().zip(ranges.iter().zip(sums))
            {
                ent[i] = self.entropy_of(len, acc);
            }
            self.own_segments(segs, own, ent);
            return st;
        }
        let mut st = class_stats(text, self.simd);
        let mut pos = 0;
        for (j, &(off, i)) in fused[..n_fused].iter().enumerate() {
            // the checks above make off >= pos and off + len <= text.len()
            let len = segs[i].map_or(0, <[u8]>::len);
            self.feed_total(&text[pos..off]);
            let seg = &text[off..off + len];
            let shift = 16 * j as u32;
            ent[i] = self.count_seg(seg, TOTAL | 1 << shift, shift);
            pos = off + len;
        }
        self.feed_total(&text[pos..]);
        let (amps, equals, max) = self.take_total(text, st.specials == 0);
        st.amps = amps;
        st.equals = equals;
        st.max_byte_count = max;
        self.own_segments(segs, own, ent);
        st
    }

    /// The entropies of the segments marked `own` (not inside the text),
    /// each counted on its own.
    #[inline(always)]
    fn own_segments(&mut self, segs: [Option<&[u8]>; 3], own: [bool; 3], ent: &mut [f64; 3]) {
        for (i, s) in segs.iter().enumerate() {
            if let (true, Some(s)) = (own[i], s) {
                ent[i] = self.count_seg(s, 1, 0);
                for &b in *s {
                    self.h[b as usize] = 0;
                }
            }
        }
    }

    /// `H = log2 n - (1/n) Σ c log2 c` (the reference's expression) of a
    /// segment of `n` bytes whose sum is `acc`.
    #[inline(always)]
    fn entropy_of(&self, n: usize, acc: f64) -> f64 {
        (self.log2[n & (LOG2_N - 1)] - acc / n as f64).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexical::Histogram;

    /// The levels this CPU can run: each must give the reference's values.
    fn levels() -> Vec<Simd> {
        Simd::levels()
    }

    /// `PALISADE_SIMD` only lowers the level: `off` to the baseline, `avx2`
    /// to AVX2 from AVX-512 (to the bit instructions when the CPU somehow
    /// lacks AVX2); other values, and no value, leave the CPU's level.
    #[test]
    fn the_environment_caps_the_level() {
        use std::ffi::OsStr;
        use Simd::*;
        let all = [Base, BitOps, Avx2, Avx512];
        for cpu in all {
            for avx2 in [false, true] {
                assert_eq!(Simd::capped(cpu, avx2, None), cpu);
                assert_eq!(Simd::capped(cpu, avx2, Some(OsStr::new("off"))), Base);
                assert_eq!(Simd::capped(cpu, avx2, Some(OsStr::new("on"))), cpu);
                assert_eq!(Simd::capped(cpu, avx2, Some(OsStr::new(""))), cpu);
                let want = match (cpu, avx2) {
                    (Avx512, true) => Avx2,
                    (Avx512, false) => BitOps,
                    _ => cpu,
                };
                assert_eq!(Simd::capped(cpu, avx2, Some(OsStr::new("avx2"))), want);
            }
        }
    }

    /// `load_upto64` gives a slice's bytes and zeros past them, and the
    /// mask of its lanes, for every length up to 64; an empty slice, from
    /// wherever (`b""`, an empty `Vec`, the end of a buffer), gives zeros.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn load_upto64_reads_exactly_the_slice() {
        if Simd::detect() != Simd::Avx512 {
            return;
        }
        let load = |s: &[u8]| {
            // SAFETY: `detect` found AVX-512 (and BMI2, which it requires).
            let (x, valid) = unsafe { avx512::load_upto64(s) };
            let mut out = [0u8; 64];
            // SAFETY: as above; the store writes the 64 bytes of `out`.
            unsafe { std::arch::x86_64::_mm512_storeu_si512(out.as_mut_ptr().cast(), x) };
            (out, valid)
        };
        let buf: Vec<u8> = (1..=130u8).collect();
        for start in [0, 1, 63, 64, 66] {
            for len in 0..=64.min(buf.len() - start) {
                let (out, valid) = load(&buf[start..start + len]);
                assert_eq!(&out[..len], &buf[start..start + len], "{start} {len}");
                assert!(out[len..].iter().all(|&b| b == 0), "{start} {len}");
                assert_eq!(valid, u64::MAX.checked_shr(64 - len as u32).unwrap_or(0));
            }
        }
        for empty in [&b""[..], &Vec::new()[..], &buf[buf.len()..]] {
            assert_eq!(load(empty), ([0u8; 64], 0));
        }
    }

    /// The AVX-512 masks of a chunk, when the CPU has AVX-512.
    fn avx512_masks(c: &[u8]) -> Option<Masks> {
        #[cfg(target_arch = "x86_64")]
        if Simd::detect() == Simd::Avx512 {
            // SAFETY: `detect` found the features.
            return Some(unsafe {
                let (lo, hi) = avx512::ascii_halves();
                avx512::chunk_masks(c, lo, hi)
            });
        }
        let _ = c;
        None
    }

    /// The AVX2 masks of a chunk, when the CPU has AVX2.
    fn avx2_masks(c: &[u8]) -> Option<Masks> {
        #[cfg(target_arch = "x86_64")]
        if Simd::levels().contains(&Simd::Avx2) {
            // SAFETY: `levels` found AVX2.
            return Some(unsafe { avx2::chunk_masks(c) });
        }
        let _ = c;
        None
    }

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
            for len in [0, 1, 7, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64] {
                let c: Vec<u8> = all
                    .iter()
                    .cycle()
                    .skip(start * 5)
                    .take(len)
                    .copied()
                    .collect();
                assert_eq!(chunk_masks(&c), chunk_masks_swar(&c), "{c:?}");
                if let Some(m) = avx512_masks(&c) {
                    assert_eq!(m, chunk_masks_swar(&c), "{c:?}");
                }
                if let Some(m) = avx2_masks(&c) {
                    assert_eq!(m, chunk_masks_swar(&c), "{c:?}");
                }
            }
        }
        assert_eq!(max_run(0), 0);
        assert_eq!(max_run(u64::MAX >> 1), 63);
        // the vector versions, all-ones included
        #[cfg(target_arch = "x86_64")]
        if Simd::levels().contains(&Simd::Avx2) {
            let mut x: u64 = 0x2545_f491_4f6c_dd1d;
            let mut cases = vec![[0, u64::MAX, 1, u64::MAX >> 1, u64::MAX << 1]];
            for _ in 0..20_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                cases.push([
                    x,
                    x & (x >> 3),
                    x | (x << 5),
                    x & 0xffff_0000_ffff,
                    !x & (!x >> 1),
                ]);
            }
            for m in cases {
                let want = m.map(runs_ref);
                // SAFETY: `levels` found AVX2.
                assert_eq!(unsafe { avx2::max_runs(m) }, want, "{m:x?}");
                if Simd::detect() == Simd::Avx512 {
                    // SAFETY: `detect` found AVX-512.
                    assert_eq!(unsafe { avx512::max_runs(m) }, want, "{m:x?}");
                }
            }
        }
    }

    /// Strings that cross the 64-byte chunk edges with every class.
    fn samples() -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"a".to_vec(),
            b"9".to_vec(),
            "é".as_bytes().to_vec(),
            b"http://bcdAEx12345.iou/ZZ?k=v&k=v&".to_vec(),
            // NUL bytes: the zeroed lanes past the end must not count as them
            b"\0a\0\0b".to_vec(),
            b"\0".to_vec(),
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

    /// The counting of the AVX-512 path, with a plain compare in place of
    /// the vector one, gives the reference's entropies and largest count
    /// (on any CPU: the SIMD level has its own check in
    /// `scan_matches_reference`, where the CPU has AVX-512).
    #[test]
    fn counting_by_compare_matches_reference() {
        let mut h = Histogram::default();
        let sc = Scanner::default();
        let mut checked = 0;
        for s in samples().into_iter().filter(|s| s.len() <= 64) {
            let n = s.len();
            let eq = |b: u8| {
                s.iter()
                    .enumerate()
                    .fold(0u64, |m, (i, &c)| m | ((c == b) as u64) << i)
            };
            // BZHI's result, for n in 1..=64
            let upto = |m: u64, n: usize| (m & (u64::MAX >> (64 - n))).count_ones();
            for ranges in [
                vec![(0, n / 3), (n / 3, n / 2 - n / 3), (n / 2, n - n / 2)],
                vec![(n / 4, n / 2 - n / 4)],
                vec![(0, n)],
                vec![],
            ] {
                let mut sums = [0.0; 3];
                let max = counts_by_compare(&s, &ranges, &GROWTH, &mut sums, eq, upto);
                assert_eq!(max, h.lex(&s).max_byte_count);
                for (&(off, len), acc) in ranges.iter().zip(sums) {
                    let seg = &s[off..off + len];
                    if len > 0 {
                        let got = sc.entropy_of(len, acc);
                        assert_eq!(got.to_bits(), h.entropy(seg).to_bits(), "{seg:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 100, "{checked}");
    }

    #[test]
    fn scan_matches_reference() {
        eprintln!("mask builder of this CPU: {:?}", Simd::detect());
        // every level on every URL of the bench data (when there)
        for u in crate::test_data::dev_urls() {
            let want = class_stats_with(u.as_bytes(), chunk_masks_swar);
            for simd in levels() {
                assert_eq!(class_stats(u.as_bytes(), simd), want, "{u:?} {simd:?}");
            }
        }
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
                if let Some(m) = avx512_masks(c) {
                    assert_eq!(m, chunk_masks_swar(c));
                }
                if let Some(m) = avx2_masks(c) {
                    assert_eq!(m, chunk_masks_swar(c));
                }
            }
            let want = class_stats_with(&s, chunk_masks_swar);
            assert_eq!(class_stats_with(&s, chunk_masks), want);
            for simd in levels() {
                assert_eq!(class_stats(&s, simd), want, "{simd:?}");
            }
            // every level: with AVX-512 a text of at most 64 bytes is
            // counted by compares, not in the histogram
            for (segs, simd) in cases
                .iter()
                .flat_map(|c| levels().into_iter().map(move |l| (*c, l)))
            {
                sc.set_simd(simd);
                let mut ent = [0.0; 3];
                let st = sc.scan(&s, segs, &mut ent);
                let text = String::from_utf8_lossy(&s);
                assert_eq!(st, h.lex(&s), "{text:?} {simd:?}");
                for (e, seg) in ent.iter().zip(segs) {
                    match seg {
                        None => assert!(e.is_nan()),
                        Some(x) => {
                            assert_eq!(e.to_bits(), h.entropy(x).to_bits(), "{text:?} {simd:?}")
                        }
                    }
                }
                assert!(sc.h.iter().all(|&c| c == 0), "histogram left dirty");
            }
        }
    }
}
