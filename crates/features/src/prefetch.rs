//! Asking the CPU for memory before it is read: upcoming events' fields
//! (an `Event` is about 1 KiB, and a large log's events do not fit in any
//! cache) and other scattered state. The feature loops do long serial work
//! per event, so the out-of-order core overlaps few events' misses on its
//! own; these hints let it.

use crate::access::field_span;
use palisade_core::Event;

/// How many events ahead the per-event loops (`UrlFeaturizer::request_rows`,
/// `DomainTableBuilder::push`) ask for an event's fields, and for its text
/// fields' bytes (their addresses are in the event, so that must wait for
/// the event's lines).
pub(crate) const EVENT_AHEAD: usize = 8;
pub(crate) const TEXT_AHEAD: usize = 4;
/// At most this many bytes of a text field are asked for early (a URL's
/// features read it all, but a long one is rare and streams well).
pub(crate) const MAX_TEXT_PREFETCH: usize = 256;

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
/// pointers) gained nothing there, on the synthetic bench events (their
/// strings allocated one after another); on parsed real logs it does (see
/// [`prefetch_event_text`]).
#[inline]
pub(crate) fn prefetch_event(e: &Event, offsets: &[usize]) {
    let p = e as *const Event as *const i8;
    for &off in offsets {
        prefetch_line(p.wrapping_add(off));
    }
}

/// The text fields of [`Event`]'s second group (the text the host and flow
/// sets test, laid out together), in the order of the bits of
/// [`prefetch_event_text`]'s mask.
const HOT_TEXT: [&str; 8] = [
    "event.dataset",
    "network.connection_state",
    "event.outcome",
    "network.direction",
    "host.name",
    "winlog.channel",
    "winlog.event_data.AuthenticationPackageName",
    "zeek.session_id",
];

/// The mask of [`prefetch_event_text`] for a feature set reading the fields
/// `names` (those of them in [`HOT_TEXT`]).
pub(crate) fn text_prefetch_mask<'a>(names: impl Iterator<Item = &'a str>) -> u8 {
    names
        .filter_map(|n| {
            let n = palisade_core::canonical_field_name(n);
            HOT_TEXT.iter().position(|h| *h == n)
        })
        .fold(0, |m, i| m | 1 << i)
}

/// Asks the CPU for the first bytes of `e`'s text fields that `mask` names
/// (bit i for `HOT_TEXT[i]`), read through the pointers in the event's own
/// lines (so those should have been asked for a while before). Why: a
/// parsed log's strings lie all over the heap, and reading a field's bytes
/// was the host set's largest single cost on real logs (perf: a fifth of
/// its time, on `event.dataset`). Thirteenth session (Zen 3), the 132k
/// events of the throughput bench's real logs: host set 3.5–4.2 → 5.8–6.2
/// M events/s end to end (criterion, alternated). The fields are read
/// directly, not through their accessors: seven calls per event cost the
/// host set 8% more instructions (15% on the real logs) for the same effect.
#[inline]
pub(crate) fn prefetch_event_text(e: &Event, mask: u8) {
    for (i, f) in hot_text(e).into_iter().enumerate() {
        if let (true, Some(t)) = (mask & 1 << i != 0, f) {
            prefetch_line(t.as_ptr().cast());
        }
    }
}

/// `e`'s fields named by [`HOT_TEXT`], in its order.
#[inline]
fn hot_text(e: &Event) -> [&Option<String>; 8] {
    [
        &e.event_dataset,
        &e.network_connection_state,
        &e.event_outcome,
        &e.network_direction,
        &e.host_name,
        &e.winlog_channel,
        &e.winlog_authentication_package,
        &e.session_id,
    ]
}

/// Asks the CPU to load the `len` bytes at `p` (a hint: nothing is read).
///
/// A plain loop, not an iterator: `(0..len).step_by(64).chain([len − 1])`
/// was ~20 instructions for the one or two lines of a distinct set (the
/// flow set asks for two per event; callgrind), and for a length known
/// when compiling, up to 64 bytes, this is two prefetches and nothing else.
#[inline]
pub(crate) fn prefetch_bytes(p: *const i8, len: usize) {
    let mut off = 0;
    while off + 64 < len {
        prefetch_line(p.wrapping_add(off));
        off += 64;
    }
    prefetch_line(p.wrapping_add(off));
    prefetch_line(p.wrapping_add(len.saturating_sub(1)));
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

/// Asserts that `offsets` (from [`prefetch_offsets`]) ask for every cache
/// line of each field `names` (each one with a known place: an unknown one
/// would mean the whole event), wherever the event lies, and for fewer
/// lines than the whole event.
#[cfg(test)]
pub(crate) fn assert_covers(offsets: &[usize], names: &[&str]) {
    let size = std::mem::size_of::<Event>();
    let whole = prefetch_offsets(["no.such.field"].into_iter());
    assert_eq!(
        whole.len(),
        size.div_ceil(64) + 1,
        "an unknown field: every line"
    );
    assert!(offsets.len() < whole.len(), "{offsets:?}");
    for name in names {
        let (off, len) = field_span(name).unwrap_or_else(|| panic!("{name}: no known place"));
        // each line of the field holds an asked-for byte, whatever the
        // event's alignment: a chain of asked-for offsets from one at or
        // within 63 bytes before its first byte to one at or within 63 bytes
        // after its last, none more than 64 apart
        let asked: Vec<usize> = offsets
            .iter()
            .copied()
            .filter(|&o| o + 64 > off && o < off + len + 63)
            .collect();
        assert!(
            asked.first().is_some_and(|&o| o <= off),
            "{name}: {offsets:?}"
        );
        assert!(
            asked.last().is_some_and(|&o| o + 1 >= off + len),
            "{name}: {offsets:?}"
        );
        assert!(
            asked.windows(2).all(|w| w[1] - w[0] <= 64),
            "{name}: {offsets:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `HOT_TEXT[i]` names the field `hot_text` gives at i, and the mask
    /// has bit i for it (an alias too), none for other fields.
    #[test]
    fn hot_text_names_its_fields_in_order() {
        let mut e = Event::default();
        for (i, name) in HOT_TEXT.iter().enumerate() {
            e.set_text(name, &format!("v{i}")).unwrap();
        }
        for (i, (name, field)) in HOT_TEXT.iter().zip(hot_text(&e)).enumerate() {
            assert_eq!(field.as_deref(), Some(format!("v{i}").as_str()), "{name}");
            assert_eq!(text_prefetch_mask([*name].into_iter()), 1 << i);
        }
        assert_eq!(
            text_prefetch_mask(["network.community_id"].into_iter()),
            1 << 7
        );
        assert_eq!(
            text_prefetch_mask(["source.ip", "url.full", "@timestamp"].into_iter()),
            0
        );
        assert_eq!(text_prefetch_mask(HOT_TEXT.into_iter()), u8::MAX);
    }
}
