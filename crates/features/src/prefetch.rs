//! Asking the CPU for memory before it is read: upcoming events' fields
//! (an `Event` is about 1 KiB, and a large log's events do not fit in any
//! cache) and other scattered state. The feature loops do long serial work
//! per event, so the out-of-order core overlaps few events' misses on its
//! own; these hints let it.

use crate::access::field_span;
use palisade_core::Event;

/// The byte offsets of an [`Event`] to prefetch so that every cache line
/// holding one of the fields `names` is asked for, whatever the event's
/// alignment (a `Vec<Event>` aligns events to 8 bytes, not 64): within each
/// run of read bytes, one offset every 64 bytes and the run's last byte. A
/// field without a known place means the whole event.
pub(crate) fn prefetch_offsets<'a>(names: impl Iterator<Item = &'a str>) -> Vec<usize> {
    let size = std::mem::size_of::<Event>();
    let mut spans = Vec::new();
    for name in names {
        match field_span(name) {
            Some(span) => spans.push(span),
            None => {
                spans = vec![(0, size)];
                break;
            }
        }
    }
    spans.sort_unstable();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (off, len) in spans {
        match runs.last_mut() {
            Some(run) if off <= run.1 => run.1 = run.1.max(off + len),
            _ => runs.push((off, off + len)),
        }
    }
    let mut offsets = Vec::new();
    for (start, end) in runs {
        offsets.extend((start..end).step_by(64));
        offsets.push(end - 1);
    }
    offsets.dedup();
    offsets
}

/// Asks the CPU to load the cache lines of `e` that hold the fields a feature
/// set reads (`offsets`, from [`prefetch_offsets`]; an `Event` is about 1 KiB).
/// Why: the loop's work per event is long and serial (cond bits, hash
/// lookups, row updates), so the out-of-order core overlaps few events'
/// misses on its own; the accessors' first touches of an event were the
/// largest single cost (perf). Measured on the flow set (400k events),
/// sixth session: prefetching the whole event took the event loop from
/// 136–149 ms to 115–120 ms; 4 or 8 events ahead alike, 16 and 32 worse.
/// Seventh session (Zen 4, criterion, alternating builds): only the lines
/// read (8 of 17 for the flow set) instead of all, flow set +4–7%, host
/// set +1–3%. Prefetching the text fields' bytes too (read through their
/// pointers) gained nothing.
#[inline]
pub(crate) fn prefetch_event(e: &Event, offsets: &[usize]) {
    let p = e as *const Event as *const i8;
    for &off in offsets {
        prefetch_line(p.wrapping_add(off));
    }
}

/// Asks the CPU to load the `len` bytes at `p` (a hint: nothing is read).
#[inline]
pub(crate) fn prefetch_bytes(p: *const i8, len: usize) {
    for off in (0..len).step_by(64).chain([len.saturating_sub(1)]) {
        prefetch_line(p.wrapping_add(off));
    }
}

/// Asks the CPU to load the cache line holding `p`.
#[inline]
pub(crate) fn prefetch_line(p: *const i8) {
    // SAFETY: a prefetch is a hint: it reads nothing the program sees and
    // cannot fault, whatever the address.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
