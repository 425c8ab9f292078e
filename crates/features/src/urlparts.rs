//! Splitting a URL into the parts the features read, by byte scanning (no
//! allocation; the `url` crate normalises and allocates, and would also
//! reject the malformed URLs attackers send, which we must still measure).

/// The parts of a URL string, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlParts<'a> {
    /// The scheme without `://` (e.g. `https`), if the string has one.
    pub scheme: Option<&'a str>,
    /// Everything after `scheme://` (the whole string when there is no scheme).
    pub rest: &'a str,
    /// The host: authority without user info and port; may be empty.
    pub host: &'a str,
    /// From the first `/` after the authority up to `?` or `#` (empty if none).
    pub path: &'a str,
    /// After the first `?` up to `#`; `None` when there is no `?`.
    pub query: Option<&'a str>,
}

/// Split `s`. A scheme is `[A-Za-z][A-Za-z0-9+.-]*` followed by `://`.
/// A string starting with `/` is a bare request target (Zeek, Apache): no
/// host, all path.
pub fn split_url(s: &str) -> UrlParts<'_> {
    let (scheme, rest) = split_scheme(s);
    split_rest(scheme, rest)
}

/// [`split_url`] with the fastest splitter `simd` allows (the same parts).
#[cfg(test)]
pub(crate) fn split_url_simd(s: &str, simd: crate::scan::Simd) -> UrlParts<'_> {
    split_url_slashes(s, simd).0
}

/// [`split_url`] with the fastest splitter `simd` allows (the same parts),
/// and, when that splitter masked the rest (at most 64 bytes, AVX-512 or
/// AVX2), the mask of its '/' bytes (bit `i` = byte `i` of `rest`): the
/// path and query slash counts and the path depth come from it.
#[inline]
pub(crate) fn split_url_slashes(s: &str, simd: crate::scan::Simd) -> (UrlParts<'_>, Option<u64>) {
    #[cfg(target_arch = "x86_64")]
    if simd == crate::scan::Simd::Avx512 {
        // SAFETY: `Simd::Avx512` comes from `Simd::detect`, which found the
        // features `avx512::split_url` enables.
        return unsafe { avx512::split_url(s) };
    }
    #[cfg(target_arch = "x86_64")]
    if simd == crate::scan::Simd::Avx2 {
        // SAFETY: `Simd::Avx2` comes from `Simd::detect`, which found the
        // features `avx2::split_url` enables.
        return unsafe { avx2::split_url(s) };
    }
    let _ = simd;
    (split_url(s), None)
}

/// The bits of `off..off + len` (`off + len <= 64`).
#[inline]
pub(crate) fn range_mask(off: usize, len: usize) -> u64 {
    u64::MAX
        .checked_shr(64 - len as u32)
        .unwrap_or(0)
        .checked_shl(off as u32)
        .unwrap_or(0)
}

/// (`/` count, [`path_depth`]) of the part of a string at bits `part` of its
/// '/' mask `slash` that starts at bit `off` (see [`path_slashes_depth`]).
#[inline]
pub(crate) fn slashes_depth_masked(slash: u64, part: u64, off: usize) -> (u32, u32) {
    let first = 1u64.checked_shl(off as u32).unwrap_or(0);
    let after_slash = (slash << 1) | first;
    (
        (slash & part).count_ones(),
        (part & !slash & after_slash).count_ones(),
    )
}

/// Whether `b` starts with `http` in any case: one word compare, not
/// `eq_ignore_ascii_case` (its loop was 33 instructions a URL in
/// `split_scheme`, callgrind). Setting bit 5 (0x20) of a byte maps it to
/// 'h', 't' or 'p' only from that letter in either case, as those letters
/// have bit 5 set.
#[inline(always)]
pub(crate) fn starts_with_http(b: &[u8]) -> bool {
    b.first_chunk::<4>()
        .is_some_and(|w| u32::from_le_bytes(*w) | 0x2020_2020 == u32::from_le_bytes(*b"http"))
}

/// (scheme, rest) of `s`: the first step of [`split_url`].
#[inline(always)]
fn split_scheme(s: &str) -> (Option<&str>, &str) {
    let b = s.as_bytes();
    // `http://` and `https://` (any case) first: nearly every URL has one
    let http = b.len() >= 7 && starts_with_http(b);
    if http && b[4..7] == *b"://" {
        return (Some(&s[..4]), &s[7..]);
    }
    if http && b.len() >= 8 && (b[4] | 0x20) == b's' && b[5..8] == *b"://" {
        return (Some(&s[..5]), &s[8..]);
    }
    // The scheme, if any, is the run of scheme bytes at the start followed by
    // `://`: ':' is not a scheme byte, so no earlier `://` can exist.
    if b.first().is_some_and(u8::is_ascii_alphabetic) {
        let n = b
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'+' | b'.' | b'-')))
            .unwrap_or(b.len());
        if b[n..].starts_with(b"://") {
            return (Some(&s[..n]), &s[n + 3..]);
        }
    }
    (None, s)
}

/// The splitter with AVX-512: for the rest of at most 64 bytes (most URLs),
/// one masked load gives the masks of the five delimiters, and the parts
/// are their first bits, without a loop or a data-dependent branch per part.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{parts_from_masks, split_rest, split_scheme, UrlParts};
    use crate::scan::avx512::load_upto64;
    use std::arch::x86_64::{
        _mm512_add_epi8, _mm512_mask_cmpeq_epi8_mask, _mm512_mask_cmple_epu8_mask,
        _mm512_maskz_mov_epi8, _mm512_set1_epi8, _mm512_storeu_si512, _mm512_sub_epi8,
    };

    /// ASCII lower-case of `h` (at most 64 bytes) into the start of `buf`;
    /// returns the mask of its '.' bytes.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,bmi2")]
    pub(super) fn lower64(h: &[u8], buf: &mut [u8; 256]) -> u64 {
        let (x, valid) = load_upto64(h);
        // x - 'A' <= 25 (unsigned) exactly for 'A'..='Z'
        let upper = _mm512_mask_cmple_epu8_mask(
            valid,
            _mm512_sub_epi8(x, _mm512_set1_epi8(b'A' as i8)),
            _mm512_set1_epi8(25),
        );
        let y = _mm512_add_epi8(x, _mm512_maskz_mov_epi8(upper, _mm512_set1_epi8(0x20)));
        // All 64 lanes, the ones past `n` zero (`x`'s are, and `upper`'s):
        // a masked store cannot forward its bytes to the loads that read
        // the host right after (the public-suffix lookup), which then wait
        // for it to reach the cache (perf: the first such load was 16% of
        // `psl_facts_dots`).
        // SAFETY: the store writes bytes 0..64 of the 256 of `buf`.
        unsafe { _mm512_storeu_si512(buf.as_mut_ptr().cast(), y) };
        _mm512_mask_cmpeq_epi8_mask(valid, x, _mm512_set1_epi8(b'.' as i8))
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,popcnt,lzcnt,bmi1,bmi2")]
    pub(super) fn split_url(s: &str) -> (UrlParts<'_>, Option<u64>) {
        let (scheme, rest) = split_scheme(s);
        split_rest_masks(scheme, rest)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,popcnt,lzcnt,bmi1,bmi2")]
    fn split_rest_masks<'a>(scheme: Option<&'a str>, rest: &'a str) -> (UrlParts<'a>, Option<u64>) {
        let rb = rest.as_bytes();
        if rb.len() > 64 {
            return (split_rest(scheme, rest), None);
        }
        let (x, valid) = load_upto64(rb);
        let eq = |c: u8| _mm512_mask_cmpeq_epi8_mask(valid, x, _mm512_set1_epi8(c as i8));
        let slash = eq(b'/');
        let masks = [slash, eq(b'?'), eq(b'#'), eq(b'@'), eq(b':')];
        (parts_from_masks(scheme, rest, masks), Some(slash))
    }
}

/// The splitter with AVX2: as with AVX-512 for a rest of at most 64 bytes,
/// the delimiter masks from at most two 32-byte compares.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{parts_from_masks, split_rest, split_scheme, UrlParts};
    use crate::scan::avx2::masks64;
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi8, _mm256_and_si256, _mm256_castsi256_si128, _mm256_cmpeq_epi8,
        _mm256_extracti128_si256, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_set1_epi8,
        _mm256_set_m128i, _mm256_setzero_si256, _mm256_storeu_si256, _mm256_sub_epi8,
        _mm256_subs_epu8, _mm_loadu_si128, _mm_storeu_si128,
    };

    #[inline]
    #[target_feature(enable = "avx2,popcnt,lzcnt,bmi1")]
    pub(super) fn split_url(s: &str) -> (UrlParts<'_>, Option<u64>) {
        let (scheme, rest) = split_scheme(s);
        let rb = rest.as_bytes();
        if rb.len() > 64 {
            return (split_rest(scheme, rest), None);
        }
        let masks = masks64(rb, |x| {
            let eq = |c: u8| _mm256_movemask_epi8(_mm256_cmpeq_epi8(x, _mm256_set1_epi8(c as i8)));
            [b'/', b'?', b'#', b'@', b':'].map(|c| eq(c) as u32)
        });
        (parts_from_masks(scheme, rest, masks), Some(masks[0]))
    }

    /// ASCII lower-case of `h` (at most 64 bytes) into the start of `buf`;
    /// returns the mask of its '.' bytes.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn lower64(h: &[u8], buf: &mut [u8; 256]) -> u64 {
        let n = h.len();
        debug_assert!(n <= 64);
        // lower-cases `x` and gives the lane mask of its '.' bytes
        let lower = |x: __m256i| {
            // x - 'A' <= 25 (unsigned) exactly for 'A'..='Z'
            let t = _mm256_sub_epi8(x, _mm256_set1_epi8(b'A' as i8));
            let upper = _mm256_cmpeq_epi8(
                _mm256_subs_epu8(t, _mm256_set1_epi8(25)),
                _mm256_setzero_si256(),
            );
            let y = _mm256_add_epi8(x, _mm256_and_si256(upper, _mm256_set1_epi8(0x20)));
            let dot = _mm256_cmpeq_epi8(x, _mm256_set1_epi8(b'.' as i8));
            (y, _mm256_movemask_epi8(dot) as u32 as u64)
        };
        if n >= 32 {
            // SAFETY: the loads read bytes 0..32 and n-32..n of `h`, the
            // stores write bytes 0..32 and n-32..n of `buf` (n <= 64 < 256);
            // no alignment is required. Both write the lower-case of the
            // same bytes where they overlap.
            unsafe {
                let a = _mm256_loadu_si256(h.as_ptr().cast::<__m256i>());
                let b = _mm256_loadu_si256(h.as_ptr().add(n - 32).cast::<__m256i>());
                let ((la, da), (lb, db)) = (lower(a), lower(b));
                _mm256_storeu_si256(buf.as_mut_ptr().cast::<__m256i>(), la);
                _mm256_storeu_si256(buf.as_mut_ptr().add(n - 32).cast::<__m256i>(), lb);
                da | db << (n - 32)
            }
        } else if n >= 16 {
            // SAFETY: as above with 16-byte halves: bytes 0..16 and n-16..n
            // of `h` and of `buf`.
            unsafe {
                let x = _mm256_set_m128i(
                    _mm_loadu_si128(h.as_ptr().add(n - 16).cast()),
                    _mm_loadu_si128(h.as_ptr().cast()),
                );
                let (y, d) = lower(x);
                _mm_storeu_si128(buf.as_mut_ptr().cast(), _mm256_castsi256_si128(y));
                _mm_storeu_si128(
                    buf.as_mut_ptr().add(n - 16).cast(),
                    _mm256_extracti128_si256::<1>(y),
                );
                (d & 0xffff) | (d >> 16) << (n - 16)
            }
        } else {
            // short: copy, then lower-case the first 32 bytes of `buf` in
            // place (the bytes past `n` are left-overs, never read as host)
            buf[..n].copy_from_slice(h);
            // SAFETY: the load and store touch bytes 0..32 of `buf`.
            unsafe {
                let (y, d) = lower(_mm256_loadu_si256(buf.as_ptr().cast::<__m256i>()));
                _mm256_storeu_si256(buf.as_mut_ptr().cast::<__m256i>(), y);
                d & ((1u64 << n) - 1)
            }
        }
    }
}

/// The parts of `rest` (at most 64 bytes) from the masks of its '/', '?',
/// '#', '@' and ':' bytes (bit `i` = byte `i`, no bits past the end): the
/// parts are their first bits, without a loop or a data-dependent branch
/// per part.
#[inline(always)]
fn parts_from_masks<'a>(scheme: Option<&'a str>, rest: &'a str, masks: [u64; 5]) -> UrlParts<'a> {
    let [slash, q, hash, at, colon] = masks;
    let n = rest.len();
    debug_assert!(n <= 64);
    // bits `k..64` (none for `k >= 64`)
    let from = |k: usize| u64::MAX.checked_shl(k as u32).unwrap_or(0);
    // the bits past the end stop every search at `n`
    let end = from(n);
    // authority ends at the first '/', '?' or '#'
    let auth_end = (slash | q | hash | end).trailing_zeros() as usize;
    // the path runs to the first '?' or '#'; the query from that '?' to the next '#'
    let path_end = (((q | hash) & from(auth_end)) | end).trailing_zeros() as usize;
    let query = if q.checked_shr(path_end as u32).unwrap_or(0) & 1 == 1 {
        let start = path_end + 1;
        let q_end = ((hash & from(start)) | end).trailing_zeros() as usize;
        rest.get(start..q_end)
    } else {
        None
    };
    let before = !from(auth_end);
    let auth = rest.get(..auth_end).unwrap_or(rest);
    UrlParts {
        scheme,
        rest,
        host: host_of_authority_masks(auth, at & before, colon & before),
        path: rest.get(auth_end..path_end).unwrap_or(""),
        query,
    }
}

/// The rest of [`split_url`] once the scheme is known.
#[inline]
fn split_rest<'a>(scheme: Option<&'a str>, rest: &'a str) -> UrlParts<'a> {
    let rb = rest.as_bytes();
    // authority ends at the first '/', '?' or '#'
    let auth_end = find3(rb, [b'/', b'?', b'#']);
    let host = host_of_authority(&rest[..auth_end]);
    // the path runs to the first '?' or '#'; the query from that '?' to the next '#'
    let tail = &rb[auth_end..];
    let path_end = find3(tail, [b'?', b'#', b'#']);
    let path = &rest[auth_end..auth_end + path_end];
    let query = match tail.get(path_end) {
        Some(b'?') => {
            let q = &tail[path_end + 1..];
            let q_end = find3(q, [b'#'; 3]);
            let start = auth_end + path_end + 1;
            Some(&rest[start..start + q_end])
        }
        _ => None,
    };
    UrlParts {
        scheme,
        rest,
        host,
        path,
        query,
    }
}

/// Index of the first byte of `s` equal to one of `set`, or `s.len()`.
#[inline]
pub(crate) fn find3(s: &[u8], set: [u8; 3]) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        find3_sse2(s, set)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        find3_plain(s, set)
    }
}

/// The byte-at-a-time [`find3`]: the portable version and the reference.
#[inline]
pub(crate) fn find3_plain(s: &[u8], set: [u8; 3]) -> usize {
    s.iter().position(|c| set.contains(c)).unwrap_or(s.len())
}

/// [`find3`] 16 bytes per step with SSE2 (part of the x86-64 baseline).
#[cfg(target_arch = "x86_64")]
#[inline]
#[allow(unused_unsafe)] // the intrinsics are safe to call from Rust 1.87 on
fn find3_sse2(s: &[u8], set: [u8; 3]) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let hits = |b: &[u8; 16]| -> u32 {
        // SAFETY: `b` is 16 readable bytes and `_mm_loadu_si128` has no
        // alignment requirement; SSE2 is enabled on every x86-64 target.
        unsafe {
            let x = _mm_loadu_si128(b.as_ptr().cast::<__m128i>());
            let e = |c: u8| _mm_cmpeq_epi8(x, _mm_set1_epi8(c as i8));
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(e(set[0]), e(set[1])), e(set[2]))) as u32
        }
    };
    if s.len() < 16 {
        return find3_plain(s, set);
    }
    let blocks = s.chunks_exact(16);
    let tail = blocks.remainder().len();
    for (j, b) in blocks.enumerate() {
        // chunks_exact(16) yields 16-byte slices, so the conversion cannot fail
        if let Ok(b) = b.try_into() {
            let m = hits(b);
            if m != 0 {
                return 16 * j + m.trailing_zeros() as usize;
            }
        }
    }
    // The tail: the last 16 bytes, whose lanes before the tail were already
    // found to hold no hit.
    let at = s.len() - 16;
    match s[at..].try_into() {
        Ok(b) if tail > 0 => {
            let m = hits(b);
            if m != 0 {
                return at + m.trailing_zeros() as usize;
            }
            s.len()
        }
        _ => s.len(),
    }
}

/// Host of an authority: drop `user:pass@`, then `:port` (keeping `[v6]`).
pub fn host_of_authority(a: &str) -> &str {
    match eq_masks(a.as_bytes(), b'@', b':') {
        Some((at, colon)) => host_of_authority_masks(a, at, colon),
        None => host_of_authority_plain(a),
    }
}

/// [`host_of_authority`] of an authority of at most 64 bytes from the masks
/// of its '@' and ':' bytes (bit `i` = byte `i`).
#[inline]
fn host_of_authority_masks(a: &str, at: u64, colon: u64) -> &str {
    // the host starts after the last '@'
    let start = if at == 0 {
        0
    } else {
        64 - at.leading_zeros() as usize
    };
    let h = &a[start..];
    if h.as_bytes().first() == Some(&b'[') {
        return bracketed(h);
    }
    // the ':'s after it: strip a port only when there is exactly one
    let colon = colon.checked_shr(start as u32).unwrap_or(0);
    if colon.count_ones() == 1 {
        strip_port(h, colon.trailing_zeros() as usize)
    } else {
        h
    }
}

/// `[v6]...` → `[v6]` (the whole string when there is no `]`).
fn bracketed(h: &str) -> &str {
    match h.bytes().position(|c| c == b']') {
        Some(i) => &h[..=i],
        None => h,
    }
}

/// `h` without `:port` when the ':' at `i` is followed by digits only.
fn strip_port(h: &str, i: usize) -> &str {
    if h.as_bytes()[i + 1..].iter().all(u8::is_ascii_digit) {
        &h[..i]
    } else {
        h
    }
}

/// [`host_of_authority`] byte by byte: for authorities over 64 bytes, and the
/// reference for the mask version.
pub(crate) fn host_of_authority_plain(a: &str) -> &str {
    let a = match a.bytes().rposition(|c| c == b'@') {
        Some(i) => &a[i + 1..],
        None => a,
    };
    if a.as_bytes().first() == Some(&b'[') {
        return bracketed(a);
    }
    // only strip `:port` when there is exactly one ':' and digits follow it
    // (several colons make a bare IPv6 address)
    let mut colons = 0;
    let mut last = 0;
    for (i, c) in a.bytes().enumerate() {
        if c == b':' {
            colons += 1;
            last = i;
        }
    }
    if colons == 1 {
        strip_port(a, last)
    } else {
        a
    }
}

/// Bit masks of the bytes of `s` equal to `a` and to `b` (bit `i` = byte
/// `i`), when `s` has at most 64 bytes; `None` when longer.
#[inline]
pub(crate) fn eq_masks(s: &[u8], a: u8, b: u8) -> Option<(u64, u64)> {
    if s.len() > 64 {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        Some(eq_masks_sse2(s, a, b))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Some(eq_masks_plain(s, a, b))
    }
}

/// The byte-at-a-time [`eq_masks`] (`s` at most 64 bytes).
pub(crate) fn eq_masks_plain(s: &[u8], a: u8, b: u8) -> (u64, u64) {
    let (mut ma, mut mb) = (0u64, 0u64);
    for (i, &c) in s.iter().enumerate().take(64) {
        ma |= ((c == a) as u64) << i;
        mb |= ((c == b) as u64) << i;
    }
    (ma, mb)
}

/// [`eq_masks`] 16 bytes per step with SSE2 (`s` at most 64 bytes).
#[cfg(target_arch = "x86_64")]
#[inline]
#[allow(unused_unsafe)] // the intrinsics are safe to call from Rust 1.87 on
fn eq_masks_sse2(s: &[u8], a: u8, b: u8) -> (u64, u64) {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    if s.len() < 16 {
        return eq_masks_plain(s, a, b);
    }
    let hits = |blk: &[u8; 16]| -> (u64, u64) {
        // SAFETY: `blk` is 16 readable bytes and `_mm_loadu_si128` has no
        // alignment requirement; SSE2 is enabled on every x86-64 target.
        unsafe {
            let x = _mm_loadu_si128(blk.as_ptr().cast::<__m128i>());
            let e = |c: u8| _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(c as i8))) as u16;
            (e(a) as u64, e(b) as u64)
        }
    };
    let (mut ma, mut mb) = (0u64, 0u64);
    let blocks = s.chunks_exact(16);
    let tail = blocks.remainder().len();
    for (j, blk) in blocks.enumerate().take(4) {
        // chunks_exact(16) yields 16-byte slices, so the conversion cannot fail
        if let Ok(blk) = blk.try_into() {
            let (x, y) = hits(blk);
            ma |= x << (16 * j);
            mb |= y << (16 * j);
        }
    }
    if tail > 0 {
        // the last 16 bytes, shifted so that only the tail's lanes remain
        let at = s.len() - 16;
        if let Ok(blk) = s[at..].try_into() {
            let (x, y) = hits(blk);
            let to = s.len() - tail;
            ma |= (x >> (16 - tail)) << to;
            mb |= (y >> (16 - tail)) << to;
        }
    }
    (ma, mb)
}

/// Whether `host` is an IPv4 or IPv6 literal (brackets allowed).
pub fn is_ip_literal(host: &str) -> bool {
    let h = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if h.is_empty() {
        return false;
    }
    let b = h.as_bytes();
    // quick reject: an IP literal is digits, dots, hex and colons only
    if !b
        .iter()
        .all(|c| c.is_ascii_hexdigit() || *c == b'.' || *c == b':')
    {
        return false;
    }
    h.parse::<std::net::IpAddr>().is_ok()
}

/// Number of `/` bytes in `s`.
#[inline]
pub fn count_byte(s: &str, c: u8) -> u32 {
    s.bytes().filter(|&b| b == c).count() as u32
}

/// Number of non-empty `/`-separated segments of a path.
#[inline]
pub fn path_depth(path: &str) -> u32 {
    path.split('/').filter(|seg| !seg.is_empty()).count() as u32
}

/// (`/` count, [`path_depth`]) of a path in one pass: a segment starts at
/// every non-`/` byte that follows a `/` or the start.
#[inline]
pub fn path_slashes_depth(path: &[u8]) -> (u32, u32) {
    match eq_masks(path, b'/', b'/') {
        Some((slash, _)) => {
            let valid = u64::MAX.checked_shr(64 - path.len() as u32).unwrap_or(0);
            // a segment starts at a non-'/' whose predecessor is '/' or the start
            let after_slash = (slash << 1) | 1;
            (
                slash.count_ones(),
                (valid & !slash & after_slash).count_ones(),
            )
        }
        None => path_slashes_depth_plain(path),
    }
}

/// [`path_slashes_depth`] byte by byte: for paths over 64 bytes, and the
/// reference for the mask version.
pub(crate) fn path_slashes_depth_plain(path: &[u8]) -> (u32, u32) {
    let (mut slashes, mut depth) = (0u32, 0u32);
    let mut prev_slash = true;
    for &b in path {
        let slash = b == b'/';
        slashes += slash as u32;
        depth += (!slash && prev_slash) as u32;
        prev_slash = slash;
    }
    (slashes, depth)
}

/// TLD class codes (see the `tld_class` definition).
pub const TLD_UNKNOWN: f64 = 0.0;
pub const TLD_GENERIC: f64 = 1.0;
pub const TLD_COUNTRY: f64 = 2.0;
pub const TLD_OTHER_ICANN: f64 = 3.0;

/// Legacy generic TLDs (RFC 1591 and the 2000-era additions); the list
/// [`is_legacy_generic`] matches (a test checks the two agree).
#[cfg(test)]
const LEGACY_GENERIC: &[&[u8]] = &[
    b"com", b"net", b"org", b"edu", b"gov", b"mil", b"int", b"info", b"biz", b"arpa",
];

/// Whether `tld` is one of the legacy generic TLDs (com, net, org, edu,
/// gov, mil, int, info, biz, arpa: the test list `LEGACY_GENERIC`); a
/// `match`, which compiles to a switch on the length and a word compare.
#[inline]
fn is_legacy_generic(tld: &[u8]) -> bool {
    matches!(
        tld,
        b"com" | b"net" | b"org" | b"edu" | b"gov" | b"mil" | b"int" | b"info" | b"biz" | b"arpa"
    )
}

/// Host facts from the public suffix list: (subdomain label count, TLD class).
/// `host` must be lower-case, without a trailing dot. NaNs for an IP literal
/// or an empty host.
pub fn psl_facts(host: &[u8]) -> (f64, f64) {
    // the '.' positions, as a mask when the host fits one
    psl_facts_dots(host, eq_masks(host, b'.', b'.').map(|m| m.0))
}

/// [`psl_facts`] given the mask of the '.' bytes of `host` (bit `i` = byte
/// `i`) when it has at most 64 bytes.
#[inline]
pub(crate) fn psl_facts_dots(host: &[u8], dots: Option<u64>) -> (f64, f64) {
    if host.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let count_dots = |from: usize| match dots {
        Some(m) => m.checked_shr(from as u32).unwrap_or(0).count_ones() as usize,
        None => host[from..].iter().filter(|&&c| c == b'.').count(),
    };
    let labels = 1 + count_dots(0);
    // One public-suffix lookup gives both facts: the registrable domain is the
    // suffix plus one label, and the suffix is unknown exactly when the TLD is
    // not in the list (a private suffix always sits under an ICANN TLD).
    let suffix = match dots {
        Some(m) => suffix_by_mask(host, m),
        None => psl::suffix(host).map(|sf| (sf.as_bytes().len(), sf.typ().is_some())),
    };
    let (suffix_labels, known) = match suffix {
        // the suffix is the end of `host`
        Some((len, known)) => (1 + count_dots(host.len().saturating_sub(len)), known),
        None => (1, false),
    };
    let sub = labels.saturating_sub(suffix_labels + 1) as f64;
    let last_dot = match dots {
        Some(0) => None,
        Some(m) => Some(63 - m.leading_zeros() as usize),
        None => host.iter().rposition(|&c| c == b'.'),
    };
    let tld = match last_dot {
        Some(i) => &host[i + 1..],
        None => host,
    };
    (sub, tld_class(tld, known))
}

/// [`psl_facts`] of `host` as written: lower-cased into `buf` (one trailing
/// dot stripped; NaNs when it does not fit), from `memo` where it knows
/// them (the same facts; see [`SuffixMemo`]). `simd`: the lower-casing's
/// level. The memo gets the whole buffer, so that it reads its words with
/// plain loads past the host's end.
#[inline]
pub(crate) fn host_psl_facts(
    host: &str,
    buf: &mut [u8; 256],
    simd: crate::scan::Simd,
    memo: &mut SuffixMemo,
) -> (f64, f64) {
    let Some((len, dots)) = lower_host_dots(host, buf, simd).map(|(lh, dots)| (lh.len(), dots))
    else {
        return (f64::NAN, f64::NAN);
    };
    let lh = &buf[..len];
    match dots {
        Some(m) if !lh.is_empty() => memo.facts(buf, lh, m),
        _ => psl_facts_dots(lh, dots),
    }
}

/// The TLD class of the last label `tld`, `known` when the public suffix
/// list gave its suffix a type.
#[inline]
fn tld_class(tld: &[u8], known: bool) -> f64 {
    if is_legacy_generic(tld) {
        TLD_GENERIC
    } else if !known {
        TLD_UNKNOWN
    } else if tld.len() == 2 && tld.iter().all(|c| c.is_ascii_lowercase()) {
        TLD_COUNTRY
    } else {
        TLD_OTHER_ICANN
    }
}

/// (length, whether the list knows its type) of the public suffix of `host`
/// (at most 64 bytes, '.' mask `dots`): what `psl::suffix` gives, with the
/// labels cut from the mask instead of a byte search per label.
#[inline]
fn suffix_by_mask(host: &[u8], dots: u64) -> Option<(usize, bool)> {
    use psl::Psl;
    debug_assert!(host.len() <= 64);
    // as psl's own `suffix`: a trailing dot is an empty first label, skipped
    let mut labels = LabelsRev {
        host,
        dots,
        end: host.len(),
        done: false,
    };
    let fqdn = host.ends_with(b".");
    if fqdn {
        labels.next();
    }
    let psl::Info { mut len, typ } = psl::List.find(labels);
    if fqdn {
        len += 1;
    }
    (len != 0 && len <= host.len()).then_some((len, typ.is_some()))
}

/// Slots of [`SuffixMemo`] (a power of two; 24 KiB).
const MEMO_SLOTS: usize = 1024;
/// The longest key [`SuffixMemo`] keeps (two words).
const MEMO_KEY_MAX: usize = 16;

/// What the public suffix list answers for a host, kept by the end of the
/// host that decides it.
///
/// Why: the psl crate matches labels by a decision tree of `match`es on
/// their bytes, and on hosts that vary from one to the next (a proxy log,
/// the PhishCrawl URLs) its branches mispredict: taking the lookup out of
/// `url_row` took 65 of its 266 ns/URL on Zen 3 (a scratch build, best of 5
/// runs), though it ran only ~10% of the instructions.
///
/// Why it is exact: the list's walk reads labels from the right, one per
/// level of its tree, and stops at the first label that names no rule below
/// the node it has reached (a node with a wildcard rule excepted: any label
/// takes that). Every label that the list names below its top level is in
/// `psl_filter::PSL_LABELS`, a Bloom filter made from the psl crate's own
/// matcher by `scripts/psl_label_filter.py`: a label outside it names no
/// rule anywhere. So if the labels right of the first such label make the
/// key `K` (the TLD, or e.g. `co.uk`), the walk over the host reads at most
/// `K`'s labels and then one that no rule names, and answers what it answers
/// for `K` followed by `#` (no host name has a '#'); unless that label met a
/// wildcard, whose length is then in the suffix, which asking for `K.##` as
/// well shows. psl is asked those two once per key; the answer is kept here
/// (direct-mapped: a key that lands on another's slot replaces it). A host
/// whose every label may be in the list (asking psl about such short hosts
/// once each and keeping the answer had more mispredicted branches on the
/// PhishCrawl URLs, callgrind), a key over 16 bytes, a wildcard, a one-label
/// or trailing-dot host goes to psl as before.
pub(crate) struct SuffixMemo {
    slots: Box<[SuffixSlot]>,
}

/// One remembered key: its bytes as two zero-padded little-endian words and
/// its length (0: an empty slot), and psl's answer below it.
#[derive(Clone, Copy, Default)]
struct SuffixSlot {
    lo: u64,
    hi: u64,
    len: u8,
    /// No wildcard took the label after the key: the answers below hold.
    plain: bool,
    /// Labels in the public suffix (1 when the TLD is unknown), all inside
    /// the key.
    suffix_labels: u8,
    /// The TLD class (`TLD_*`).
    class: u8,
}

impl Default for SuffixMemo {
    fn default() -> Self {
        SuffixMemo {
            slots: vec![SuffixSlot::default(); MEMO_SLOTS].into_boxed_slice(),
        }
    }
}

impl SuffixMemo {
    /// [`psl_facts_dots`] of `host` (1 to 64 bytes, '.' mask `dots`, at the
    /// start of `buf`), from the memo where it is known to be the same.
    #[inline]
    pub(crate) fn facts(&mut self, buf: &[u8; 256], host: &[u8], dots: u64) -> (f64, f64) {
        debug_assert!(host.len() <= 64 && buf.starts_with(host));
        let Some(last) = 63usize.checked_sub(dots.leading_zeros() as usize) else {
            // one label: psl's walk may ask for a second and get none
            return psl_facts_dots(host, Some(dots));
        };
        let tld_at = last + 1;
        let tld_len = host.len().saturating_sub(tld_at);
        // a trailing dot (an empty top label) and long TLDs: psl
        if tld_len == 0 || tld_len > MEMO_KEY_MAX {
            return psl_facts_dots(host, Some(dots));
        }
        // The labels left of the TLD, right to left, while the filter says
        // the list may name them: they join the key. The first it certainly
        // does not name ends the walk's reading (see the type's doc).
        let mut key_at = tld_at;
        let mut end = last;
        let mut rest = dots & !(1u64 << last);
        loop {
            let at = 64 - rest.leading_zeros() as usize;
            if !may_name_a_rule(label_hash(buf, at, end - at)) {
                break;
            }
            if rest == 0 || host.len() - at > MEMO_KEY_MAX {
                // every label may be named (the walk may run out of them),
                // or the key grew too long: psl
                return psl_facts_dots(host, Some(dots));
            }
            key_at = at;
            end = at - 1;
            rest &= !(1u64 << end);
        }
        let key_len = host.len() - key_at;
        let (lo, hi) = two_words(buf, key_at, key_len);
        let i = ((lo ^ hi.rotate_left(23) ^ key_len as u64).wrapping_mul(LABEL_K1) >> 54) as usize;
        let slot = &mut self.slots[i & (MEMO_SLOTS - 1)];
        if slot.len as usize != key_len || slot.lo != lo || slot.hi != hi {
            *slot = SuffixSlot::ask(&host[key_at..], lo, hi);
        }
        if !slot.plain {
            return psl_facts_dots(host, Some(dots));
        }
        // as `psl_facts_dots` counts them, with the key's part from the slot
        let labels = 1 + dots.count_ones();
        let sub = labels.saturating_sub(slot.suffix_labels as u32 + 1);
        (sub as f64, slot.class as f64)
    }
}

impl SuffixSlot {
    /// Ask psl about `key`'s labels followed by `#`, and by `##`: a label no
    /// rule names; the two answers differ exactly when a wildcard took it.
    #[cold]
    #[inline(never)]
    fn ask(key: &[u8], lo: u64, hi: u64) -> SuffixSlot {
        use psl::Psl;
        let below = |label: &'static [u8]| {
            psl::List.find(key.rsplit(|&c| c == b'.').chain(std::iter::once(label)))
        };
        let (one, two) = (below(b"#"), below(b"##"));
        // what `psl_facts_dots` makes of psl's answer, for the key's end
        let (suffix_labels, known) = match one.len {
            len @ 1.. if len <= key.len() => {
                let suffix = &key[key.len() - len..];
                (
                    1 + suffix.iter().filter(|&&c| c == b'.').count(),
                    one.typ.is_some(),
                )
            }
            _ => (1, false),
        };
        let tld = key.rsplit(|&c| c == b'.').next().unwrap_or(key);
        SuffixSlot {
            lo,
            hi,
            len: key.len() as u8,
            plain: one.len == two.len && one.typ == two.typ,
            suffix_labels: suffix_labels as u8,
            class: tld_class(tld, known) as u8,
        }
    }
}

/// Multipliers of [`label_hash`] (`scripts/psl_label_filter.py` has the same).
const LABEL_K0: u64 = 0x9E37_79B9_7F4A_7C15;
const LABEL_K1: u64 = 0xFF51_AFD7_ED55_8CCD;

/// The hash `scripts/psl_label_filter.py` gives the label of `len` bytes at
/// `at` in `buf` (the two must agree: a test rebuilds the filter): its first
/// 16 bytes as two zero-padded words, each xored in, multiplied and
/// xor-shifted, from the length times a constant. Longer labels that share
/// their first 16 bytes and length share a hash: the filter may then say
/// "maybe" for one it lacks, which only sends the host to psl.
#[inline]
fn label_hash(buf: &[u8; 256], at: usize, len: usize) -> u64 {
    let (w0, w1) = two_words(buf, at, len.min(16));
    let mut h = (len as u64).wrapping_mul(LABEL_K0);
    for w in [w0, w1] {
        h = (h ^ w).wrapping_mul(LABEL_K1);
        h ^= h >> 29;
    }
    h
}

/// Whether a label of hash `h` may be one the public suffix list names
/// below its top level (false: it certainly is not).
#[inline]
fn may_name_a_rule(h: u64) -> bool {
    let bit = |b: u64| crate::psl_filter::PSL_LABELS[(b >> 6) as usize & 1023] >> (b & 63) & 1;
    bit(h >> 48) & bit((h >> 32) & 0xffff) == 1
}

/// The `n` (at most 16) bytes of `buf` from `at` (at most 64) as two
/// little-endian words, zero above them: two plain loads, which stay inside
/// the 256-byte buffer whatever `at` is below 128.
#[inline(always)]
fn two_words(buf: &[u8; 256], at: usize, n: usize) -> (u64, u64) {
    debug_assert!(at <= 64 && n <= 16);
    let word = |at: usize, n: usize| {
        // `at & 127` is `at`; it lets the compiler drop the bounds check
        let w = buf[at & 127..][..8]
            .first_chunk::<8>()
            .map_or(0, |w| u64::from_le_bytes(*w));
        // the low `n` bytes (all 8 from n = 8 on), without a branch
        let keep =
            (1u64 << ((8 * n as u32) & 63)).wrapping_sub(1) | 0u64.wrapping_sub((n >= 8) as u64);
        w & keep
    };
    (word(at, n), word(at + 8, n.saturating_sub(8)))
}

/// The '.'-separated labels of a host of at most 64 bytes from right to
/// left, empty ones included (as `rsplit(|c| *c == b'.')` yields them),
/// from the mask of its dots.
struct LabelsRev<'a> {
    host: &'a [u8],
    dots: u64,
    /// End of the next label.
    end: usize,
    done: bool,
}

impl<'a> Iterator for LabelsRev<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.done {
            return None;
        }
        // the dots before `end` (at most 64)
        let before = self.dots
            & u64::MAX
                .checked_shr(64u32.saturating_sub(self.end as u32))
                .unwrap_or(0);
        if before == 0 {
            self.done = true;
            return self.host.get(..self.end);
        }
        let dot = 63 - before.leading_zeros() as usize;
        let label = self.host.get(dot + 1..self.end);
        self.end = dot;
        label
    }
}

/// Lower-case `host` into `buf` and strip one trailing dot; `None` if it does
/// not fit (DNS names are at most 253 bytes, so a longer "host" is garbage
/// and its PSL facts are unknown).
#[inline]
pub fn lower_host<'b>(host: &str, buf: &'b mut [u8; 256]) -> Option<&'b [u8]> {
    let h = host.strip_suffix('.').unwrap_or(host).as_bytes();
    if h.len() > buf.len() {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    if h.len() >= 16 {
        lower_sse2(h, &mut buf[..h.len()]);
        return Some(&buf[..h.len()]);
    }
    for (d, s) in buf.iter_mut().zip(h) {
        *d = s.to_ascii_lowercase();
    }
    Some(&buf[..h.len()])
}

/// [`lower_host`] and the mask of the '.' bytes of the result (bit `i` =
/// byte `i`) when it has at most 64 bytes, for [`psl_facts_dots`]; with
/// AVX-512 one masked load and store instead of a loop, with AVX2 at most
/// two 32-byte loads and stores (see `avx2::lower64`).
#[inline]
pub(crate) fn lower_host_dots<'b>(
    host: &str,
    buf: &'b mut [u8; 256],
    simd: crate::scan::Simd,
) -> Option<(&'b [u8], Option<u64>)> {
    #[cfg(target_arch = "x86_64")]
    if matches!(simd, crate::scan::Simd::Avx512 | crate::scan::Simd::Avx2) {
        let h = host.strip_suffix('.').unwrap_or(host).as_bytes();
        if h.len() <= 64 {
            // SAFETY: `simd` comes from `Simd::detect`, which found the
            // features the chosen `lower64` enables.
            let dots = unsafe {
                if simd == crate::scan::Simd::Avx512 {
                    avx512::lower64(h, buf)
                } else {
                    avx2::lower64(h, buf)
                }
            };
            return Some((&buf[..h.len()], Some(dots)));
        }
    }
    let _ = simd;
    let lh = lower_host(host, buf)?;
    Some((lh, eq_masks(lh, b'.', b'.').map(|m| m.0)))
}

/// ASCII lower-case of `src` (at least 16 bytes) into `dst` (as long), 16
/// bytes per step with SSE2; the last step re-does the last 16 bytes
/// (lower-casing twice changes nothing).
#[cfg(target_arch = "x86_64")]
#[inline]
#[allow(unused_unsafe)] // the intrinsics are safe to call from Rust 1.87 on
fn lower_sse2(src: &[u8], dst: &mut [u8]) {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi8, _mm_and_si128, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_set1_epi8,
        _mm_setzero_si128, _mm_storeu_si128, _mm_sub_epi8, _mm_subs_epu8,
    };
    let step = |s: &[u8; 16], d: &mut [u8; 16]| {
        // SAFETY: `s` and `d` are 16 bytes each and the unaligned load and
        // store have no alignment requirement; SSE2 is in the x86-64 baseline.
        unsafe {
            let x = _mm_loadu_si128(s.as_ptr().cast::<__m128i>());
            // x - 'A' <= 25 (unsigned) exactly for 'A'..='Z'
            let t = _mm_sub_epi8(x, _mm_set1_epi8(b'A' as i8));
            let upper = _mm_cmpeq_epi8(_mm_subs_epu8(t, _mm_set1_epi8(25)), _mm_setzero_si128());
            let y = _mm_add_epi8(x, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
            _mm_storeu_si128(d.as_mut_ptr().cast::<__m128i>(), y);
        }
    };
    let n = src.len().min(dst.len());
    if n < 16 {
        return;
    }
    let mut i = 0;
    while i + 16 <= n {
        if let (Ok(s), Ok(d)) = (src[i..i + 16].try_into(), (&mut dst[i..i + 16]).try_into()) {
            step(s, d);
        }
        i += 16;
    }
    if i < n {
        if let (Ok(s), Ok(d)) = (src[n - 16..n].try_into(), (&mut dst[n - 16..n]).try_into()) {
            step(s, d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits() {
        let p = split_url("https://user:pw@www.Example.co.uk:8443/a/b/c.php?x=1&y=/2#frag");
        assert_eq!(p.scheme, Some("https"));
        assert_eq!(p.host, "www.Example.co.uk");
        assert_eq!(p.path, "/a/b/c.php");
        assert_eq!(p.query, Some("x=1&y=/2"));
        let p = split_url("/index.html?q");
        assert_eq!(
            (p.scheme, p.host, p.path, p.query),
            (None, "", "/index.html", Some("q"))
        );
        let p = split_url("example.com:443");
        assert_eq!((p.host, p.path, p.query), ("example.com", "", None));
        let p = split_url("http://[2001:db8::1]:80/x");
        assert_eq!(p.host, "[2001:db8::1]");
        let p = split_url("");
        assert_eq!((p.rest, p.host, p.path, p.query), ("", "", "", None));
        // not a scheme: contains '/'
        let p = split_url("a/b://c");
        assert_eq!(p.scheme, None);
        // http and https in any case (a word compare), and near misses
        for (u, scheme, host) in [
            ("HTTP://A.com/x", Some("HTTP"), "A.com"),
            ("HtTpS://b.org", Some("HtTpS"), "b.org"),
            ("http://", Some("http"), ""),
            ("hxtp://c.net", Some("hxtp"), "c.net"),
            ("http:/d.net", None, "http"),
            ("httpx://e.net", Some("httpx"), "e.net"),
            ("(TTP://f", None, "(TTP"),
        ] {
            let p = split_url(u);
            assert_eq!((p.scheme, p.host), (scheme, host), "{u:?}");
            for simd in crate::scan::Simd::levels() {
                assert_eq!(split_url_simd(u, simd), p, "{u:?} {simd:?}");
            }
        }
    }

    #[test]
    fn ip_literals() {
        assert!(is_ip_literal("10.0.0.1"));
        assert!(is_ip_literal("[::1]"));
        assert!(is_ip_literal("2001:db8::1"));
        assert!(!is_ip_literal("10.0.0.1.example.com"));
        assert!(!is_ip_literal("999.1.1.1"));
        assert!(!is_ip_literal(""));
    }

    #[test]
    fn legacy_generic_match_is_the_list() {
        for t in LEGACY_GENERIC {
            assert!(is_legacy_generic(t));
        }
        for t in [&b"co"[..], b"comm", b"", b"xyz", b"uk", b"in", b"or"] {
            assert!(!is_legacy_generic(t));
        }
    }

    /// The straightforward `psl_facts` the mask version must match.
    fn reference_psl_facts(host: &[u8]) -> (f64, f64) {
        if host.is_empty() {
            return (f64::NAN, f64::NAN);
        }
        let labels = 1 + host.iter().filter(|&&c| c == b'.').count();
        let suffix = psl::suffix(host);
        let (suffix_labels, known) = match &suffix {
            Some(sf) => (
                1 + sf.as_bytes().iter().filter(|&&c| c == b'.').count(),
                sf.typ().is_some(),
            ),
            None => (1, false),
        };
        let sub = labels.saturating_sub(suffix_labels + 1) as f64;
        let tld = match host.iter().rposition(|&c| c == b'.') {
            Some(i) => &host[i + 1..],
            None => host,
        };
        let class = if LEGACY_GENERIC.contains(&tld) {
            TLD_GENERIC
        } else if !known {
            TLD_UNKNOWN
        } else if tld.len() == 2 && tld.iter().all(|c| c.is_ascii_lowercase()) {
            TLD_COUNTRY
        } else {
            TLD_OTHER_ICANN
        };
        (sub, class)
    }

    #[test]
    fn psl_facts_match_reference() {
        let mut urls = crate::test_data::dev_urls();
        urls.extend(crate::test_data::EDGE_URLS.iter().map(|u| u.to_string()));
        let mut hosts: Vec<Vec<u8>> = urls
            .iter()
            .map(|u| split_url(u).host.to_ascii_lowercase().into_bytes())
            .collect();
        for h in [
            "a..",
            ".",
            "..",
            "com.",
            "x.y.z.blogspot.com",
            "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.co.uk",
        ] {
            hosts.push(h.as_bytes().to_vec());
        }
        for n in [60, 63, 64, 65, 70] {
            hosts.push(format!("{}.example.co.uk", "a.".repeat(n / 2)).into_bytes()[..n].to_vec());
        }
        let mut buf = [0u8; 256];
        for (h, simd) in hosts
            .iter()
            .flat_map(|h| crate::scan::Simd::levels().into_iter().map(move |l| (h, l)))
        {
            let (got, want) = (psl_facts(h), reference_psl_facts(h));
            let (lh, dots) = match std::str::from_utf8(h) {
                Ok(hs) => lower_host_dots(hs, &mut buf, simd).unwrap_or((b"", None)),
                Err(_) => (&h[..], None),
            };
            let got2 = if lh == &h[..] {
                psl_facts_dots(lh, dots)
            } else {
                got
            };
            let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
            assert!(
                same(got.0, want.0) && same(got.1, want.1),
                "{:?}",
                String::from_utf8_lossy(h)
            );
            assert!(
                same(got2.0, want.0) && same(got2.1, want.1),
                "{:?}",
                String::from_utf8_lossy(h)
            );
        }
    }

    #[test]
    fn lower_host_matches_plain() {
        let mut buf = [0u8; 256];
        let mut x: u64 = 7;
        for n in 0..300 {
            let h: String = (0..n)
                .map(|_| {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    const PAT: &[u8] = b"aZ@[`{AzMm09.-";
                    PAT[(x >> 33) as usize % PAT.len()] as char
                })
                .collect();
            for h in [h.clone(), format!("{h}."), format!("{h}é")] {
                let plain = h.strip_suffix('.').unwrap_or(&h).to_ascii_lowercase();
                let got = lower_host(&h, &mut buf);
                if plain.len() > 256 {
                    assert_eq!(got, None, "{n}");
                } else {
                    assert_eq!(got, Some(plain.as_bytes()), "{h:?}");
                }
                let dots = |b: &[u8]| eq_masks(b, b'.', b'.').map(|m| m.0);
                for simd in crate::scan::Simd::levels() {
                    let got = lower_host_dots(&h, &mut buf, simd).map(|(l, d)| (l.to_vec(), d));
                    if plain.len() > 256 {
                        assert_eq!(got, None, "{n}");
                    } else {
                        let want = (plain.as_bytes().to_vec(), dots(plain.as_bytes()));
                        assert_eq!(got, Some(want), "{h:?} {simd:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn mask_labels_are_rsplit() {
        for h in [
            "",
            ".",
            "..",
            "a",
            "a.",
            ".a",
            "a..b",
            "www.example.co.uk",
            "x.y.z.",
            "...a.b",
        ] {
            let b = h.as_bytes();
            let dots = eq_masks_plain(b, b'.', b'.').0;
            let it = LabelsRev {
                host: b,
                dots,
                end: b.len(),
                done: false,
            };
            assert_eq!(
                it.collect::<Vec<_>>(),
                b.rsplit(|c| *c == b'.').collect::<Vec<_>>(),
                "{h:?}"
            );
        }
        // 64 bytes, a dot at each end
        let h = format!(".{}.", "a".repeat(62));
        let b = h.as_bytes();
        let it = LabelsRev {
            host: b,
            dots: eq_masks_plain(b, b'.', b'.').0,
            end: b.len(),
            done: false,
        };
        assert_eq!(
            it.collect::<Vec<_>>(),
            b.rsplit(|c| *c == b'.').collect::<Vec<_>>()
        );
    }

    /// The psl version in the workspace's Cargo.lock.
    fn locked_psl_version() -> String {
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock"))
                .expect("Cargo.lock");
        let mut lines = lock.lines();
        while let Some(l) = lines.next() {
            if l == "name = \"psl\"" {
                let v = lines.next().expect("version line");
                return v
                    .trim_start_matches("version = \"")
                    .trim_end_matches('"')
                    .to_string();
            }
        }
        panic!("psl is not in Cargo.lock")
    }

    /// The source of psl's generated matcher (src/list.rs) for the locked
    /// version, from cargo's registry (it is there wherever psl was built
    /// from crates.io; `None` elsewhere, e.g. a vendored build).
    fn psl_list_rs() -> Option<String> {
        let home = std::env::var_os("CARGO_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo"))
            })?;
        let dir = format!("psl-{}", locked_psl_version());
        std::fs::read_dir(home.join("registry").join("src"))
            .ok()?
            .flatten()
            .find_map(|e| std::fs::read_to_string(e.path().join(&dir).join("src/list.rs")).ok())
    }

    /// The labels of the byte-string arms of every function of list.rs but
    /// the top-level `lookup` (as scripts/psl_label_filter.py reads them).
    fn labels_below_top(list_rs: &str) -> Vec<Vec<u8>> {
        let top = list_rs
            .find("pub(super) fn lookup<")
            .expect("top-level lookup");
        let end = top + list_rs[top..].find("\n}\n").expect("its end");
        let mut labels: Vec<Vec<u8>> = list_rs[end..]
            .lines()
            .filter_map(|l| {
                let arm = l.trim_start().strip_prefix('[')?;
                let (bytes, rest) = arm.split_once(']')?;
                rest.starts_with(" =>").then_some(())?;
                bytes.split(", ").map(|b| b.parse::<u8>().ok()).collect()
            })
            .collect();
        labels.sort();
        labels.dedup();
        labels
    }

    #[test]
    fn psl_label_filter_is_made_from_the_locked_psl() {
        assert_eq!(
            crate::psl_filter::PSL_VERSION,
            locked_psl_version(),
            "psl changed in Cargo.lock: rerun scripts/psl_label_filter.py"
        );
        let Some(list) = psl_list_rs() else {
            eprintln!("psl's src/list.rs is not in cargo's registry: filter not rebuilt");
            return;
        };
        let labels = labels_below_top(&list);
        assert!(
            labels.len() > 5000,
            "{} labels: list.rs not read right",
            labels.len()
        );
        let mut filter = [0u64; 1024];
        let mut buf = [0u8; 256];
        for l in &labels {
            buf[..l.len()].copy_from_slice(l);
            let h = label_hash(&buf, 0, l.len());
            for bit in [h >> 48, (h >> 32) & 0xffff] {
                filter[(bit >> 6) as usize] |= 1 << (bit & 63);
            }
            assert!(may_name_a_rule(h), "{:?}", String::from_utf8_lossy(l));
        }
        assert!(
            filter == crate::psl_filter::PSL_LABELS,
            "the committed filter is not this list's: rerun scripts/psl_label_filter.py"
        );
    }

    #[test]
    fn suffix_memo_matches_psl() {
        // labels the list names (all of them where cargo has psl's source),
        // put where rules are and where they are not
        let mut labels: Vec<Vec<u8>> =
            psl_list_rs().map_or_else(Vec::new, |l| labels_below_top(&l));
        labels.extend(
            [
                "co",
                "com",
                "blogspot",
                "github",
                "s3",
                "compute",
                "amazonaws",
                "city",
                "www",
                "x",
            ]
            .map(|l| l.as_bytes().to_vec()),
        );
        let mut hosts: Vec<Vec<u8>> = crate::test_data::dev_urls()
            .iter()
            .map(|u| split_url(u).host.to_ascii_lowercase().into_bytes())
            .collect();
        for l in &labels {
            let l = String::from_utf8_lossy(l);
            for h in [
                format!("x.{l}.com"),
                format!("{l}.cn"),
                format!("a.{l}.co.uk"),
                format!("b.{l}.ck"),
                format!("{l}.kawasaki.jp"),
                format!("a.{l}.{l}.xyz"),
                format!("{l}.com.cn"),
            ] {
                hosts.push(h.into_bytes());
            }
        }
        // wildcards (*.ck, *.kawasaki.jp), their exceptions, deep private
        // rules, long keys and labels, empty labels, unknown TLDs
        for h in [
            "www.ck",
            "a.www.ck",
            "x.y.ck",
            "city.kawasaki.jp",
            "a.city.kawasaki.jp",
            "b.a.kawasaki.jp",
            "x.y.compute.amazonaws.com",
            "a.b.s3.dualstack.us-east-1.amazonaws.com",
            "a.verylonglabelofmorethansixteen.com",
            "a.b.verylonglabelofmorethansixteen",
            "x..com",
            ".com",
            "a.b.c",
            "printer.local",
            "a.blogspot.com",
            "a.blogspot.co.uk",
            "co.uk",
            "com",
        ] {
            hosts.push(h.as_bytes().to_vec());
        }
        let mut memo = SuffixMemo::default();
        let mut buf = [0xaau8; 256];
        let mut compared = 0;
        // twice: the second pass finds the keys the first left in the memo
        for h in hosts.iter().chain(&hosts) {
            let Some(dots) = eq_masks(h, b'.', b'.').map(|m| m.0) else {
                continue;
            };
            if h.is_empty() {
                continue;
            }
            // the previous host's bytes stay past this one's end
            buf[..h.len()].copy_from_slice(h);
            let got = memo.facts(&buf, h, dots);
            let want = psl_facts_dots(h, Some(dots));
            let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
            assert!(
                same(got.0, want.0) && same(got.1, want.1),
                "{:?}: {got:?} against psl's {want:?}",
                String::from_utf8_lossy(h)
            );
            compared += 1;
        }
        assert!(compared > 40_000, "{compared}");
    }

    #[test]
    fn psl_classes() {
        assert_eq!(psl_facts(b"www.example.com"), (1.0, TLD_GENERIC));
        assert_eq!(psl_facts(b"a.b.example.co.uk"), (2.0, TLD_COUNTRY));
        assert_eq!(psl_facts(b"example.xyz"), (0.0, TLD_OTHER_ICANN));
        assert_eq!(psl_facts(b"printer.local"), (0.0, TLD_UNKNOWN));
        assert_eq!(psl_facts(b"localhost"), (0.0, TLD_UNKNOWN));
        assert!(psl_facts(b"").0.is_nan());
    }

    /// The straightforward split the fast one must match.
    fn reference_split(s: &str) -> UrlParts<'_> {
        let b = s.as_bytes();
        let mut scheme = None;
        let mut rest = s;
        if let Some(pos) = b.windows(3).position(|w| w == b"://") {
            let cand = &b[..pos];
            if !cand.is_empty()
                && cand[0].is_ascii_alphabetic()
                && cand
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'.' | b'-'))
            {
                scheme = Some(&s[..pos]);
                rest = &s[pos + 3..];
            }
        }
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let host = reference_host(&rest[..auth_end]);
        let tail = &rest[auth_end..];
        let before_frag = &tail[..tail.find('#').unwrap_or(tail.len())];
        let (path, query) = match before_frag.find('?') {
            Some(q) => (&before_frag[..q], Some(&before_frag[q + 1..])),
            None => (before_frag, None),
        };
        UrlParts {
            scheme,
            rest,
            host,
            path,
            query,
        }
    }

    fn reference_host(a: &str) -> &str {
        let a = match a.rfind('@') {
            Some(i) => &a[i + 1..],
            None => a,
        };
        if a.starts_with('[') {
            return match a.find(']') {
                Some(i) => &a[..=i],
                None => a,
            };
        }
        match a.rfind(':') {
            Some(i)
                if a[..i].find(':').is_none() && a[i + 1..].bytes().all(|c| c.is_ascii_digit()) =>
            {
                &a[..i]
            }
            _ => a,
        }
    }

    #[test]
    fn split_matches_reference() {
        let mut urls = crate::test_data::dev_urls();
        urls.extend(crate::test_data::EDGE_URLS.iter().map(|u| u.to_string()));
        // long rests, and every length around the 64-byte mask
        for n in 0..80 {
            for pat in ["a", "/", "?", "#", "@", ":", "a/?#b", "é", "u@h:8/p?q#f"] {
                let body: String = pat.repeat(n).chars().take(n).collect();
                urls.push(format!("http://{body}"));
                urls.push(format!("h.com{body}"));
            }
        }
        let levels = crate::scan::Simd::levels();
        eprintln!("splitters of this CPU: {levels:?}");
        for u in &urls {
            assert_eq!(split_url(u), reference_split(u), "{u:?}");
            for &simd in &levels {
                assert_eq!(
                    split_url_simd(u, simd),
                    reference_split(u),
                    "{u:?} {simd:?}"
                );
            }
            // every suffix too: authorities, ports and schemes cut anywhere
            for (i, _) in u.char_indices().take(40) {
                let want = reference_split(&u[i..]);
                assert_eq!(split_url(&u[i..]), want, "{:?}", &u[i..]);
                for &simd in &levels {
                    let (got, slash) = split_url_slashes(&u[i..], simd);
                    assert_eq!(got, want, "{:?} {simd:?}", &u[i..]);
                    // the '/' mask, when there is one, is that of the rest
                    if let Some(m) = slash {
                        let rb = got.rest.as_bytes();
                        assert_eq!(m, eq_masks_plain(rb, b'/', b'/').0, "{:?}", &u[i..]);
                    }
                }
            }
        }
    }

    #[test]
    fn host_of_authority_matches_plain() {
        let mut cases: Vec<String> = crate::test_data::EDGE_URLS
            .iter()
            .map(|u| {
                split_url(u)
                    .rest
                    .split(['/', '?', '#'])
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        for n in [0, 1, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 80] {
            for pat in ["a", "@", ":", "1", "a:1", "u@h:8", "[::1]:8", ":@"] {
                cases.push(pat.repeat(n).chars().take(n).collect());
                cases.push(format!("{}:443", "x".repeat(n)));
                cases.push(format!("{}@{}", pat.repeat(n), "h:1"));
            }
        }
        for a in &cases {
            assert_eq!(host_of_authority(a), host_of_authority_plain(a), "{a:?}");
            assert_eq!(host_of_authority(a), reference_host(a), "{a:?}");
            let b = a.as_bytes();
            if b.len() <= 64 {
                assert_eq!(eq_masks(b, b'@', b':'), Some(eq_masks_plain(b, b'@', b':')));
            }
        }
    }

    #[test]
    fn find3_matches_plain() {
        let mut s: Vec<u8> = (0..=255u8).collect();
        s.extend((0..=255u8).rev());
        for start in 0..80 {
            for len in 0..80 {
                let h = &s[start..start + len];
                for set in [[b'/', b'?', b'#'], [0, 0, 0], [255, 1, 128], [b'#'; 3]] {
                    assert_eq!(find3(h, set), find3_plain(h, set), "{start} {len} {set:?}");
                }
            }
        }
    }

    #[test]
    fn path_slashes_depth_matches_plain() {
        let mut paths: Vec<String> = [
            "",
            "/",
            "//",
            "/a",
            "a",
            "/a//b/",
            "a/b",
            "/a/b/c.php",
            "///x//",
        ]
        .map(String::from)
        .to_vec();
        for n in [15, 16, 17, 63, 64, 65, 100] {
            for pat in ["/", "a", "/a", "//ab", "a/"] {
                paths.push(pat.repeat(n).chars().take(n).collect());
            }
        }
        paths.extend(
            crate::test_data::dev_urls()
                .iter()
                .map(|u| split_url(u).path.to_string()),
        );
        for p in &paths {
            let want = (count_byte(p, b'/'), path_depth(p));
            assert_eq!(path_slashes_depth(p.as_bytes()), want, "{p:?}");
            assert_eq!(path_slashes_depth_plain(p.as_bytes()), want, "{p:?}");
        }
    }
}
