//! The lexical (character-level) features of Franc et al., computed in one
//! pass over the bytes of a string, without allocation.
//!
//! Character classes (ASCII only; every byte of a multi-byte UTF-8 character
//! is a non-ASCII byte and belongs to none of the letter/digit classes):
//! - digit: `0-9`
//! - lower-case: `a-z`; upper-case: `A-Z`
//! - vowel: `a e i o u` and `A E I O U` (`y` is a consonant)
//! - consonant: every other ASCII letter (`b-d f-h j-n p-t v-z`, both cases)
//! - base64: the RFC 4648 standard alphabet `A-Z a-z 0-9 + / =`
//! - special: any byte RFC 3986 does not allow unescaped in a URL, i.e. any byte
//!   that is not `A-Z a-z 0-9` and not one of `- . _ ~ : / ? # [ ] @ ! $ & ' ( ) * + , ; = %`
//!   (so space, `" < > \ ^ ` { | }`, control bytes and every non-ASCII byte).
//!
//! Lengths count bytes of the UTF-8 text. Hand-written rather than built on a
//! crate because it is the product core and the hot loop: a 256-entry class
//! table and one pass keep it near 100 ns for a typical URL.

pub(crate) const DIGIT: u8 = 1;
pub(crate) const LOWER: u8 = 2;
pub(crate) const UPPER: u8 = 4;
pub(crate) const VOWEL: u8 = 8;
pub(crate) const CONSONANT: u8 = 16;
pub(crate) const BASE64: u8 = 32;
pub(crate) const SPECIAL: u8 = 64;

const fn build_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0usize;
    while i < 256 {
        let b = i as u8;
        let mut c = 0u8;
        if b.is_ascii_digit() {
            c |= DIGIT | BASE64;
        } else if b.is_ascii_lowercase() {
            c |= LOWER | BASE64;
        } else if b.is_ascii_uppercase() {
            c |= UPPER | BASE64;
        }
        if b.is_ascii_alphabetic() {
            let l = b.to_ascii_lowercase();
            if l == b'a' || l == b'e' || l == b'i' || l == b'o' || l == b'u' {
                c |= VOWEL;
            } else {
                c |= CONSONANT;
            }
        }
        if b == b'+' || b == b'/' || b == b'=' {
            c |= BASE64;
        }
        let url_ok = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b':'
                    | b'/'
                    | b'?'
                    | b'#'
                    | b'['
                    | b']'
                    | b'@'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b'%'
            );
        if !url_ok {
            c |= SPECIAL;
        }
        t[i] = c;
        i += 1;
    }
    t
}

/// Class bits of every byte value.
pub(crate) static CLASS: [u8; 256] = build_table();

/// Size of the `log2` table: entropy needs no `log2` call per byte for
/// counts below it.
pub(crate) const LOG2_N: usize = 4096;
/// `log2 n` for `n < LOG2_N`, bit-identical to `(n as f64).log2()` (a
/// fixed-size array, so that indexing with a masked count needs no bounds check).
pub(crate) static LOG2: std::sync::LazyLock<Box<[f64; LOG2_N]>> =
    std::sync::LazyLock::new(|| Box::new(std::array::from_fn(|n| (n as f64).log2())));

/// `GROWTH[c] = c log2 c − (c − 1) log2 (c − 1)` for `2 <= c < LOG2_N`, and
/// 0 for `c` of 0 and 1: how much `Σ c log2 c` grows when a value's count
/// reaches `c`. Summing it as each byte is counted gives the entropy's sum
/// in the counting pass itself (see [`sum4`]).
pub(crate) static GROWTH: std::sync::LazyLock<Box<[f64; LOG2_N]>> =
    std::sync::LazyLock::new(|| Box::new(std::array::from_fn(growth)));

/// One entry of [`GROWTH`] (also for counts past the table).
fn growth(c: usize) -> f64 {
    if c < 2 {
        return 0.0;
    }
    let (c, p) = (c as f64, (c - 1) as f64);
    c * c.log2() - p * p.log2()
}

/// The sum `Σ c log2 c` of entropy, here and in the fast path
/// ([`crate::scan`]) alike: taken position by position as the bytes are
/// counted, as `Σ_i GROWTH[c_i(s[i])]` where `c_i(b)` is the count of `b` in
/// `s[..=i]` (a byte value that occurs `c` times adds `GROWTH[1..=c]`, whose
/// sum is `c log2 c`), with term `i` into accumulator `i mod 4`, then
/// `(a0 + a1) + (a2 + a3)`.
///
/// Why per position, and in the counting pass: a per-value sum must visit
/// each value once, which means clearing its count at its first occurrence
/// or keeping a list of the distinct values; the sixteenth session's
/// growth terms need no pass after the counting one (the fourteenth
/// session's `log2` of each byte's final count did: a second pass of loads).
/// Why four accumulators: with one, every term waits for the add before
/// it (3 cycles on Zen 4), a chain as long as the string. Together, with
/// the histogram's field per segment (see [`crate::scan`]), on the
/// PhishCrawl URLs (Zen 4, `examples/url_rows url`): 215 → 205 ns/URL.
///
/// The terms come from `term(i, s[i])`, called in order of `i` (a term may
/// count its byte: the next term sees that count). Why whole groups of four
/// over `chunks_exact`: an iterator asked for one term at a time tested the
/// string's end at every term (callgrind on `url_rows request`: about 4
/// instructions per byte of that bookkeeping).
#[inline(always)]
pub(crate) fn sum4(s: &[u8], mut term: impl FnMut(usize, u8) -> f64) -> f64 {
    let (mut a0, mut a1, mut a2, mut a3) = (0.0, 0.0, 0.0, 0.0);
    let mut quads = s.chunks_exact(4);
    let mut i = 0;
    for q in &mut quads {
        a0 += term(i, q[0]);
        a1 += term(i + 1, q[1]);
        a2 += term(i + 2, q[2]);
        a3 += term(i + 3, q[3]);
        i += 4;
    }
    let mut acc = [0.0; 3];
    for (k, &b) in quads.remainder().iter().enumerate() {
        acc[k] = term(i + k, b);
    }
    a0 += acc[0];
    a1 += acc[1];
    a2 += acc[2];
    (a0 + a1) + (a2 + a3)
}

#[inline]
fn growth_of_count(table: &[f64], c: u32) -> f64 {
    match table.get(c as usize) {
        Some(v) => *v,
        None => growth(c as usize),
    }
}

/// Counts of one pass over a string.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LexStats {
    pub len: u32,
    pub digits: u32,
    pub lower: u32,
    pub upper: u32,
    pub vowels: u32,
    pub consonants: u32,
    /// Adjacent byte pairs where one is a vowel and the other a consonant.
    pub vowel_changes: u32,
    pub amps: u32,
    pub equals: u32,
    pub non_base64: u32,
    pub specials: u32,
    pub first_is_digit: bool,
    pub max_consonant_run: u32,
    pub max_vowel_run: u32,
    pub max_lower_run: u32,
    pub max_upper_run: u32,
    pub max_digit_run: u32,
    /// Occurrences of the most frequent byte.
    pub max_byte_count: u32,
}

/// A reusable byte histogram (kept zeroed between uses, so no per-string memset).
pub struct Histogram {
    counts: [u32; 256],
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: [0; 256] }
    }
}

impl Histogram {
    /// Shannon entropy in bits per byte of `s` (0 for an empty string).
    /// Leaves the histogram zeroed.
    #[inline]
    pub fn entropy(&mut self, s: &[u8]) -> f64 {
        if s.is_empty() {
            return 0.0;
        }
        let table: &[f64] = &GROWTH[..];
        let counts = &mut self.counts;
        let acc = sum4(s, |_, b| {
            let c = counts[b as usize] + 1;
            counts[b as usize] = c;
            growth_of_count(table, c)
        });
        for &b in s {
            self.counts[b as usize] = 0;
        }
        let n = s.len() as f64;
        // H = log2 n - (1/n) Σ c log2 c ; clamp the rounding error below 0.
        ((n.log2()) - acc / n).max(0.0)
    }

    /// The single pass. Leaves the histogram zeroed.
    #[inline]
    pub fn lex(&mut self, s: &[u8]) -> LexStats {
        let mut st = LexStats {
            len: s.len() as u32,
            ..Default::default()
        };
        st.first_is_digit = s.first().is_some_and(|b| b.is_ascii_digit());
        let (mut rc, mut rv, mut rl, mut ru, mut rd) = (0u32, 0u32, 0u32, 0u32, 0u32);
        let mut prev = 0u8;
        for &b in s {
            let c = CLASS[b as usize];
            self.counts[b as usize] += 1;
            let is = |bit: u8| ((c & bit) != 0) as u32;
            st.digits += is(DIGIT);
            st.lower += is(LOWER);
            st.upper += is(UPPER);
            st.vowels += is(VOWEL);
            st.consonants += is(CONSONANT);
            st.non_base64 += 1 - is(BASE64);
            st.specials += is(SPECIAL);
            st.vowel_changes += (((prev & VOWEL) != 0 && (c & CONSONANT) != 0)
                || ((prev & CONSONANT) != 0 && (c & VOWEL) != 0))
                as u32;
            rc = (rc + 1) * is(CONSONANT);
            rv = (rv + 1) * is(VOWEL);
            rl = (rl + 1) * is(LOWER);
            ru = (ru + 1) * is(UPPER);
            rd = (rd + 1) * is(DIGIT);
            st.max_consonant_run = st.max_consonant_run.max(rc);
            st.max_vowel_run = st.max_vowel_run.max(rv);
            st.max_lower_run = st.max_lower_run.max(rl);
            st.max_upper_run = st.max_upper_run.max(ru);
            st.max_digit_run = st.max_digit_run.max(rd);
            prev = c;
        }
        st.amps = self.counts[b'&' as usize];
        st.equals = self.counts[b'=' as usize];
        for &b in s {
            let c = self.counts[b as usize];
            st.max_byte_count = st.max_byte_count.max(c);
            self.counts[b as usize] = 0;
        }
        st
    }
}

/// The 14 lexical features of Franc et al. in catalog order.
pub const LEX_COUNT: usize = 14;

#[inline]
fn ratio(a: u32, n: u32) -> f64 {
    if n == 0 {
        f64::NAN
    } else {
        a as f64 / n as f64
    }
}

impl LexStats {
    /// The 14 lexical features, in the catalog's order (`lexical_specs`).
    #[inline]
    pub fn features(&self) -> [f64; LEX_COUNT] {
        let n = self.len;
        [
            ratio(self.digits, n),
            ratio(self.lower, n),
            ratio(self.upper, n),
            ratio(self.vowel_changes, n),
            (self.amps >= 2 && self.equals >= 2) as u8 as f64,
            self.first_is_digit as u8 as f64,
            self.non_base64 as f64,
            (self.specials > 0) as u8 as f64,
            self.max_consonant_run as f64,
            self.max_vowel_run as f64,
            self.max_lower_run as f64,
            self.max_upper_run as f64,
            self.max_digit_run as f64,
            ratio(self.max_byte_count, n),
        ]
    }
}

/// (name, type, definition) of the 14 lexical features; `what` names the
/// string they are computed on.
pub(crate) fn lexical_specs(what: &str) -> Vec<(String, palisade_core::FeatureType, String)> {
    use palisade_core::FeatureType::{Bool, Float, Int};
    let classes = "Classes are ASCII-only and byte-based (see the set's notes): digits 0-9; lower-case a-z; upper-case A-Z; vowels a,e,i,o,u in either case (y is a consonant); consonants the other ASCII letters; non-ASCII bytes belong to none of these.";
    let e = "NaN when the string is empty (0/0) or absent.";
    vec![
        ("digit_ratio".into(), Float, format!("Number of ASCII digits 0-9 in {what} divided by its length in bytes. {e}")),
        ("lower_ratio".into(), Float, format!("Number of lower-case ASCII letters a-z in {what} divided by its length in bytes. {e}")),
        ("upper_ratio".into(), Float, format!("Number of upper-case ASCII letters A-Z in {what} divided by its length in bytes. {e}")),
        ("vowel_change_ratio".into(), Float, format!("Number of adjacent byte pairs in {what} where one is a vowel (a,e,i,o,u, either case) and the other a consonant (any other ASCII letter, y included), divided by the length in bytes. {e}")),
        ("has_amp_eq_repetition".into(), Bool, format!("1 when {what} contains '&' at least twice and '=' at least twice (several key=value parameters), else 0. NaN when absent.")),
        ("starts_with_digit".into(), Bool, format!("1 when the first byte of {what} is an ASCII digit 0-9, else 0 (0 for an empty string). NaN when absent.")),
        ("non_base64_count".into(), Int, format!("Number of bytes of {what} outside the RFC 4648 standard base64 alphabet A-Z a-z 0-9 + / = (so '.', '-', '_', '?', '&', '%', ':' and every non-ASCII byte count). NaN when absent.")),
        ("has_special".into(), Bool, format!("1 when {what} contains a byte RFC 3986 does not allow unescaped in a URL: anything but A-Z a-z 0-9 and - . _ ~ : / ? # [ ] @ ! $ & ' ( ) * + , ; = % (so space, \" < > \\ ^ ` {{ | }}, control bytes and every non-ASCII byte); else 0. NaN when absent.")),
        ("max_consonant_stream".into(), Int, format!("Length of the longest run of consecutive consonants in {what}. {classes} NaN when absent.")),
        ("max_vowel_stream".into(), Int, format!("Length of the longest run of consecutive vowels in {what}. NaN when absent.")),
        ("max_lower_stream".into(), Int, format!("Length of the longest run of consecutive lower-case ASCII letters in {what}. NaN when absent.")),
        ("max_upper_stream".into(), Int, format!("Length of the longest run of consecutive upper-case ASCII letters in {what}. NaN when absent.")),
        ("max_digit_stream".into(), Int, format!("Length of the longest run of consecutive ASCII digits in {what}. NaN when absent.")),
        ("max_char_ratio".into(), Float, format!("Occurrences of the most frequent byte value in {what} divided by its length in bytes. {e}")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_table_is_as_documented() {
        for b in b"aeiouAEIOU" {
            assert!(CLASS[*b as usize] & VOWEL != 0);
        }
        for b in b"yYbzBZ" {
            assert!(CLASS[*b as usize] & CONSONANT != 0);
        }
        for b in b"+/=09azAZ" {
            assert!(CLASS[*b as usize] & BASE64 != 0);
        }
        for b in b".-_?&%" {
            assert!(CLASS[*b as usize] & BASE64 == 0);
        }
        for b in [
            b' ', b'"', b'<', b'>', b'\\', b'^', b'`', b'{', b'|', b'}', 0u8, 0x7f, 0xc3,
        ] {
            assert!(CLASS[b as usize] & SPECIAL != 0, "{b}");
        }
        for b in b"-._~:/?#[]@!$&'()*+,;=%aZ9" {
            assert!(CLASS[*b as usize] & SPECIAL == 0, "{b}");
        }
    }

    /// `Scanner::take_total` clears only the histogram entries of
    /// `0x20..0x80` after a text without a special byte: every byte outside
    /// `0x21..=0x7e` must be special.
    #[test]
    fn every_byte_outside_printable_ascii_is_special() {
        for b in (0..=255u8).filter(|b| !(0x21..=0x7e).contains(b)) {
            assert!(CLASS[b as usize] & SPECIAL != 0, "{b:#x}");
        }
    }

    #[test]
    fn entropy_hand_values() {
        let mut h = Histogram::default();
        assert_eq!(h.entropy(b""), 0.0);
        assert_eq!(h.entropy(b"aaaa"), 0.0);
        assert!((h.entropy(b"ab") - 1.0).abs() < 1e-12);
        assert!((h.entropy(b"abcd") - 2.0).abs() < 1e-12);
        // aab: -(2/3 log2 2/3 + 1/3 log2 1/3) = 0.9182958340544896
        assert!((h.entropy(b"aab") - 0.918_295_834_054_489_6).abs() < 1e-12);
        // histogram left clean
        assert!(h.counts.iter().all(|&c| c == 0));
    }

    /// The growth terms sum to the textbook `-Σ p log2 p` over the byte
    /// histogram (up to rounding): on every URL of the bench data, and on
    /// strings whose counts pass the table's end (`growth` computed).
    #[test]
    fn entropy_from_growth_terms_is_the_textbook_entropy() {
        fn textbook(s: &[u8]) -> f64 {
            let mut c = [0usize; 256];
            for &b in s {
                c[b as usize] += 1;
            }
            let n = s.len() as f64;
            -c.iter()
                .filter(|&&k| k > 0)
                .map(|&k| k as f64 / n * (k as f64 / n).log2())
                .sum::<f64>()
        }
        let mut h = Histogram::default();
        let long: Vec<u8> = (0..20_000u32).map(|i| b"aab/c"[i as usize % 5]).collect();
        let mut texts: Vec<Vec<u8>> = crate::test_data::dev_urls()
            .into_iter()
            .map(String::into_bytes)
            .collect();
        texts.push(long);
        texts.push(vec![b'x'; LOG2_N + 7]);
        for t in &texts {
            let (got, want) = (h.entropy(t), textbook(t).max(0.0));
            assert!(
                (got - want).abs() < 1e-9,
                "{got} vs {want}: {:?}",
                String::from_utf8_lossy(t)
            );
        }
        assert_eq!(GROWTH[0], 0.0);
        assert_eq!(GROWTH[1], 0.0);
        assert_eq!(GROWTH[2], 2.0);
    }
}
