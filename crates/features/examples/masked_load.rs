//! Why `scan::avx512::load_upto64` reads an empty text from a static buffer:
//! an AVX-512 masked load whose every lane is masked off still costs a
//! fault-suppression assist when its address lies on an unmapped page, and
//! an empty slice's pointer often does (`b""` and `String::new()` point at
//! 0x1). This times a loop of such loads at 0x1, at a mapped address with
//! the same empty mask, and at a mapped address with 20 lanes, and prints
//! ns per load for each (twenty-fifth session, Zen 5: 73–80 ns against
//! 0.7–1.6).
//!
//! Run: `cargo run --release -p palisade-features --example masked_load`

#[cfg(target_arch = "x86_64")]
fn main() {
    use std::hint::black_box;
    use std::time::Instant;
    let avx512 = std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("bmi2");
    if !avx512 {
        eprintln!("masked_load: this CPU lacks AVX-512BW or BMI2; nothing to measure");
        return;
    }
    let buf = vec![b'a'; 4096];
    let n = 1_000_000;
    let cases: [(&str, *const u8, usize); 3] = [
        (
            "empty mask at 0x1 (an empty slice's pointer)",
            b"".as_ptr(),
            0,
        ),
        ("empty mask at a mapped address", buf.as_ptr(), 0),
        ("20 lanes at a mapped address", buf.as_ptr(), 20),
    ];
    for (what, p, lanes) in cases {
        let ptrs = vec![p; n];
        let lens = vec![lanes; n];
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            // SAFETY: AVX-512F/BW and BMI2 were detected; each load reads only its
            // `lanes` lanes, which lie inside `buf` (none at 0x1).
            black_box(unsafe { loads(black_box(&ptrs), black_box(&lens)) });
            best = best.min(t.elapsed().as_nanos() as f64 / n as f64);
        }
        println!("{what} ({p:p}): {best:.1} ns/load");
    }
}

/// One masked load per pointer, of as many lanes as its length; the count
/// of 'a' bytes loaded (so that the loads are used).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,bmi2")]
#[inline(never)]
unsafe fn loads(ptrs: &[*const u8], lens: &[usize]) -> u64 {
    use std::arch::x86_64::*;
    let mut acc = 0u64;
    for (&p, &n) in ptrs.iter().zip(lens) {
        let valid = _bzhi_u64(u64::MAX, n as u32);
        // SAFETY: the caller's: the `valid` lanes lie inside mapped memory.
        let x = unsafe { _mm512_maskz_loadu_epi8(valid, p.cast::<i8>()) };
        acc = acc.wrapping_add(
            _mm512_cmpeq_epi8_mask(x, _mm512_set1_epi8(b'a' as i8)).count_ones() as u64,
        );
    }
    acc
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    eprintln!("masked_load: x86-64 only");
}
