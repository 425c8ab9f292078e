//! Field accessors resolved once per config, so the aggregation loop reads a
//! field in place instead of matching the field name per event (`Event::get`
//! compares strings; this is ~10x cheaper in the hot loop).

use palisade_core::{Event, FieldValue};
use std::net::IpAddr;

/// Reads one field of an event: in place, for the fields this crate knows
/// at build time, or `Event::get` by name for fields added to the core
/// event since (so a new field works at once, just slower).
#[derive(Clone, Copy)]
pub enum Accessor {
    Field(FieldRef),
    Named(&'static str),
}

/// Where a field lies in an [`Event`] and what type it has. Why not a
/// function pointer per field (as before): the entity engine reads ~17
/// fields an event, each through an indirect call whose value came back
/// through memory. Testing the host set's conditions a second time per
/// event (an experiment) cost 16 ms of its ~96 ms on the throughput
/// bench's 400k Zeek events with the calls, 7 ms with this read at an
/// offset and `match` on the type, which inline into the loop. Paired runs
/// (twentieth session, Intel Xeon VM, AVX-512): flow set 0.96, real-log flow
/// set 0.92, host set 0.99, the count-only set 1.04 (its one key read).
#[derive(Clone, Copy)]
pub struct FieldRef {
    offset: u32,
    kind: Kind,
}

/// The type of a field, as [`FieldKind`] gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Str,
    I64,
    U64,
    U32,
    U16,
    Ip,
}

/// The field types an [`Event`] has, each with its [`Kind`]: a field of
/// another type does not compile into the table below.
trait FieldKind {
    const KIND: Kind;
}

impl FieldKind for Option<String> {
    const KIND: Kind = Kind::Str;
}
impl FieldKind for Option<i64> {
    const KIND: Kind = Kind::I64;
}
impl FieldKind for Option<u64> {
    const KIND: Kind = Kind::U64;
}
impl FieldKind for Option<u32> {
    const KIND: Kind = Kind::U32;
}
impl FieldKind for Option<u16> {
    const KIND: Kind = Kind::U16;
}
impl FieldKind for Option<IpAddr> {
    const KIND: Kind = Kind::Ip;
}

/// The kind of the field that `field` borrows (the closure is never called:
/// it names the field so that its type is inferred).
fn kind_of<T: FieldKind>(_field: fn(&Event) -> &T) -> Kind {
    T::KIND
}

impl FieldRef {
    #[inline]
    fn get(self, e: &Event) -> Option<FieldValue<'_>> {
        let p = (e as *const Event)
            .cast::<u8>()
            .wrapping_add(self.offset as usize);
        // SAFETY: every `FieldRef` is made by `field_ref` below, whose
        // offset is `offset_of!` a field of `Event` and whose kind is that
        // field's own type (`kind_of`, by inference): `p` points at an
        // initialised, aligned value of the type read, inside `*e`, and the
        // borrow of `*e` outlives the value returned.
        unsafe {
            match self.kind {
                Kind::Str => (*p.cast::<Option<String>>())
                    .as_deref()
                    .map(FieldValue::Str),
                Kind::I64 => (*p.cast::<Option<i64>>()).map(FieldValue::Int),
                Kind::U64 => (*p.cast::<Option<u64>>()).map(|v| FieldValue::Int(v as i64)),
                Kind::U32 => (*p.cast::<Option<u32>>()).map(|v| FieldValue::Int(v as i64)),
                Kind::U16 => (*p.cast::<Option<u16>>()).map(|v| FieldValue::Int(v as i64)),
                Kind::Ip => (*p.cast::<Option<IpAddr>>()).map(FieldValue::Ip),
            }
        }
    }
}

impl Accessor {
    #[inline]
    pub fn get<'a>(&self, e: &'a Event) -> Option<FieldValue<'a>> {
        match self {
            Accessor::Field(f) => f.get(e),
            Accessor::Named(n) => e.get(n),
        }
    }
}

/// An accessor with its field's type fixed when compiling: a loop that
/// matches on this once, outside it, reads each event's value without the
/// two matches of [`Accessor::get`] (on the accessor, then on the type) and
/// without wrapping it in a [`FieldValue`]. Why: the flow set reads five
/// fields an event that way in its per-feature loops, and the reads through
/// `get` were ~14 instructions each: typed, its instructions fell from
/// 460 M to 412 M (callgrind). (The conditions' reads typed the same way,
/// `FieldConds::eval`, made the host and flow sets 1–3% more instructions:
/// left as they are.)
#[derive(Clone, Copy)]
pub(crate) enum Typed {
    Str(TypedRef<String>),
    I64(TypedRef<i64>),
    U64(TypedRef<u64>),
    U32(TypedRef<u32>),
    U16(TypedRef<u16>),
    Ip(TypedRef<IpAddr>),
    /// A field without a fast accessor: [`Accessor::get`].
    Named,
}

/// An `Option<T>` field of [`Event`] at a known offset; made only by
/// [`Accessor::typed`], from a [`FieldRef`] of that type.
pub(crate) struct TypedRef<T> {
    offset: u32,
    _type: std::marker::PhantomData<fn() -> T>,
}

// (derived, these would ask `T: Clone`)
impl<T> Clone for TypedRef<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for TypedRef<T> {}

impl<T> TypedRef<T> {
    fn new(offset: u32) -> TypedRef<T> {
        TypedRef {
            offset,
            _type: std::marker::PhantomData,
        }
    }

    #[inline(always)]
    pub(crate) fn get(self, e: &Event) -> Option<&T> {
        let p = (e as *const Event)
            .cast::<u8>()
            .wrapping_add(self.offset as usize);
        // SAFETY: `Accessor::typed` makes a `TypedRef<T>` only from a
        // `FieldRef` whose kind is `Option<T>`'s (the kinds and the types
        // are one to one, see `FieldKind`), so as for `FieldRef::get`: `p`
        // points at an initialised, aligned `Option<T>` inside `*e`, and
        // the borrow of `*e` outlives the reference returned.
        unsafe { (*p.cast::<Option<T>>()).as_ref() }
    }
}

impl Accessor {
    /// This accessor as a [`Typed`] one.
    pub(crate) fn typed(self) -> Typed {
        let Accessor::Field(f) = self else {
            return Typed::Named;
        };
        match f.kind {
            Kind::Str => Typed::Str(TypedRef::new(f.offset)),
            Kind::I64 => Typed::I64(TypedRef::new(f.offset)),
            Kind::U64 => Typed::U64(TypedRef::new(f.offset)),
            Kind::U32 => Typed::U32(TypedRef::new(f.offset)),
            Kind::U16 => Typed::U16(TypedRef::new(f.offset)),
            Kind::Ip => Typed::Ip(TypedRef::new(f.offset)),
        }
    }
}

/// The accessor of an ECS field name, `None` when unknown.
pub fn accessor(name: &str) -> Option<Accessor> {
    let name = palisade_core::canonical_field_name(name);
    if let Some(f) = field_ref(name) {
        return Some(Accessor::Field(f));
    }
    palisade_core::EVENT_FIELDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, _)| Accessor::Named(n))
}

/// Where the field `name` lies in an [`Event`]: (byte offset, size), `None`
/// for a field without a fast accessor. The entity engine asks the CPU for
/// just these bytes of upcoming events (see `prefetch::prefetch_event`).
pub fn field_span(name: &str) -> Option<(usize, usize)> {
    span(palisade_core::canonical_field_name(name))
}

fn size_of_field<T>(_: fn(&Event) -> &T) -> usize {
    std::mem::size_of::<T>()
}

macro_rules! accessors {
    ($( ($name:literal, $field:ident) ),* $(,)?) => {
        fn field_ref(name: &str) -> Option<FieldRef> {
            match name {
                $( $name => Some(FieldRef {
                    offset: std::mem::offset_of!(Event, $field) as u32,
                    kind: kind_of(|e: &Event| &e.$field),
                }), )*
                _ => None,
            }
        }
        fn span(name: &str) -> Option<(usize, usize)> {
            match name {
                $( $name => Some((
                    std::mem::offset_of!(Event, $field),
                    size_of_field(|e: &Event| &e.$field),
                )), )*
                _ => None,
            }
        }
    };
}

accessors! {
    ("@timestamp", timestamp_us),
    ("event.kind", event_kind),
    ("event.category", event_category),
    ("event.action", event_action),
    ("event.outcome", event_outcome),
    ("event.code", event_code),
    ("event.duration", event_duration_ns),
    ("event.dataset", event_dataset),
    ("source.ip", source_ip),
    ("source.port", source_port),
    ("source.bytes", source_bytes),
    ("source.packets", source_packets),
    ("destination.ip", destination_ip),
    ("destination.port", destination_port),
    ("destination.bytes", destination_bytes),
    ("destination.packets", destination_packets),
    ("destination.domain", destination_domain),
    ("source.domain", source_domain),
    ("network.transport", network_transport),
    ("network.protocol", network_protocol),
    ("network.direction", network_direction),
    ("network.connection_state", network_connection_state),
    ("zeek.session_id", session_id),
    ("url.full", url_full),
    ("url.domain", url_domain),
    ("url.path", url_path),
    ("url.query", url_query),
    ("url.scheme", url_scheme),
    ("http.request.method", http_request_method),
    ("http.request.referrer", http_request_referrer),
    ("http.response.status_code", http_response_status_code),
    ("http.response.mime_type", http_response_mime_type),
    ("user_agent.original", user_agent_original),
    ("dns.question.name", dns_question_name),
    ("dns.question.type", dns_question_type),
    ("dns.response_code", dns_response_code),
    ("tls.client.server_name", tls_server_name),
    ("tls.version", tls_version),
    ("user.name", user_name),
    ("user.domain", user_domain),
    ("host.name", host_name),
    ("winlog.event_id", winlog_event_id),
    ("winlog.channel", winlog_channel),
    ("winlog.record_id", winlog_record_id),
    ("winlog.logon.type", winlog_logon_type),
    ("winlog.event_data.AuthenticationPackageName", winlog_authentication_package),
    ("winlog.event_data.LogonProcessName", winlog_logon_process),
    ("winlog.event_data.Status", winlog_status),
    ("labels.source_label", source_label),
    ("log.file.path", log_file_path),
    ("log.offset", log_line),
    ("event.original", original),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A typed read, as `Accessor::get` gives it.
    fn typed_get(t: Typed, e: &Event) -> Option<FieldValue<'_>> {
        match t {
            Typed::Str(t) => t.get(e).map(|s| FieldValue::Str(s)),
            Typed::I64(t) => t.get(e).map(|&v| FieldValue::Int(v)),
            Typed::U64(t) => t.get(e).map(|&v| FieldValue::Int(v as i64)),
            Typed::U32(t) => t.get(e).map(|&v| FieldValue::Int(v.into())),
            Typed::U16(t) => t.get(e).map(|&v| FieldValue::Int(v.into())),
            Typed::Ip(t) => t.get(e).map(|&ip| FieldValue::Ip(ip)),
            Typed::Named => panic!("a field without a fast accessor"),
        }
    }

    #[test]
    fn accessors_agree_with_event_get() {
        // every field a value of its own (a read at another field's offset
        // must not pass)
        let mut e = Event::default();
        for (i, (name, ty)) in palisade_core::EVENT_FIELDS.iter().enumerate() {
            let text = match ty {
                palisade_core::FieldType::Ip => format!("10.0.0.{i}"),
                palisade_core::FieldType::Int | palisade_core::FieldType::Timestamp => {
                    format!("{}", 1000 + i)
                }
                palisade_core::FieldType::Str => format!("value of {name}"),
            };
            e.set_text(name, &text).unwrap();
        }
        for (name, _) in palisade_core::EVENT_FIELDS {
            let a = accessor(name).unwrap_or_else(|| panic!("no accessor for {name}"));
            assert!(
                matches!(a, Accessor::Field(_)),
                "{name}: add it to the fast list in access.rs"
            );
            assert_eq!(a.get(&e), e.get(name), "{name}");
            assert_eq!(typed_get(a.typed(), &e), e.get(name), "{name}, typed");
            assert_eq!(
                typed_get(a.typed(), &Event::default()),
                None,
                "{name}, typed"
            );
        }
        assert!(accessor("nope").is_none());
        assert!(field_span("nope").is_none());
        let size = std::mem::size_of::<Event>();
        for (name, _) in palisade_core::EVENT_FIELDS {
            let (off, len) = field_span(name).unwrap_or_else(|| panic!("no span for {name}"));
            assert!(
                len > 0 && off + len <= size,
                "{name}: {off}+{len} outside {size}"
            );
        }
        assert_eq!(
            field_span("@timestamp").map(|s| s.1),
            Some(std::mem::size_of::<Option<i64>>())
        );
    }
}
