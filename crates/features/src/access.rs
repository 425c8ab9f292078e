//! Field accessors resolved once per config, so the aggregation loop does a
//! function-pointer call instead of matching the field name per event
//! (`Event::get` compares strings; this is ~10x cheaper in the hot loop).

use palisade_core::{Event, FieldValue};

type FastGet = for<'a> fn(&'a Event) -> Option<FieldValue<'a>>;

/// Reads one field of an event: a direct function for the fields this crate
/// knows at build time, `Event::get` by name for fields added to the core
/// event since (so a new field works at once, just slower).
#[derive(Clone, Copy)]
pub enum Accessor {
    Fast(FastGet),
    Named(&'static str),
}

impl Accessor {
    #[inline]
    pub fn get<'a>(&self, e: &'a Event) -> Option<FieldValue<'a>> {
        match self {
            Accessor::Fast(f) => f(e),
            Accessor::Named(n) => e.get(n),
        }
    }
}

/// The accessor of an ECS field name, `None` when unknown.
pub fn accessor(name: &str) -> Option<Accessor> {
    let name = palisade_core::canonical_field_name(name);
    if let Some(f) = fast(name) {
        return Some(Accessor::Fast(f));
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
    ($( ($name:literal, $field:ident, $kind:ident) ),* $(,)?) => {
        fn fast(name: &str) -> Option<FastGet> {
            match name {
                $( $name => Some(|e: &Event| accessors!(@get e.$field, $kind)), )*
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
    (@get $e:expr, string) => { $e.as_deref().map(FieldValue::Str) };
    (@get $e:expr, int) => { $e.map(|v| FieldValue::Int(v as i64)) };
    (@get $e:expr, ip) => { $e.map(FieldValue::Ip) };
}

accessors! {
    ("@timestamp", timestamp_us, int),
    ("event.kind", event_kind, string),
    ("event.category", event_category, string),
    ("event.action", event_action, string),
    ("event.outcome", event_outcome, string),
    ("event.code", event_code, string),
    ("event.duration", event_duration_ns, int),
    ("event.dataset", event_dataset, string),
    ("source.ip", source_ip, ip),
    ("source.port", source_port, int),
    ("source.bytes", source_bytes, int),
    ("source.packets", source_packets, int),
    ("destination.ip", destination_ip, ip),
    ("destination.port", destination_port, int),
    ("destination.bytes", destination_bytes, int),
    ("destination.packets", destination_packets, int),
    ("destination.domain", destination_domain, string),
    ("source.domain", source_domain, string),
    ("network.transport", network_transport, string),
    ("network.protocol", network_protocol, string),
    ("network.direction", network_direction, string),
    ("network.connection_state", network_connection_state, string),
    ("zeek.session_id", session_id, string),
    ("url.full", url_full, string),
    ("url.domain", url_domain, string),
    ("url.path", url_path, string),
    ("url.query", url_query, string),
    ("url.scheme", url_scheme, string),
    ("http.request.method", http_request_method, string),
    ("http.request.referrer", http_request_referrer, string),
    ("http.response.status_code", http_response_status_code, int),
    ("http.response.mime_type", http_response_mime_type, string),
    ("user_agent.original", user_agent_original, string),
    ("dns.question.name", dns_question_name, string),
    ("dns.question.type", dns_question_type, string),
    ("dns.response_code", dns_response_code, string),
    ("tls.client.server_name", tls_server_name, string),
    ("tls.version", tls_version, string),
    ("user.name", user_name, string),
    ("user.domain", user_domain, string),
    ("host.name", host_name, string),
    ("winlog.event_id", winlog_event_id, int),
    ("winlog.channel", winlog_channel, string),
    ("winlog.record_id", winlog_record_id, int),
    ("winlog.logon.type", winlog_logon_type, int),
    ("winlog.event_data.AuthenticationPackageName", winlog_authentication_package, string),
    ("winlog.event_data.LogonProcessName", winlog_logon_process, string),
    ("winlog.event_data.Status", winlog_status, string),
    ("labels.source_label", source_label, string),
    ("log.file.path", log_file_path, string),
    ("log.offset", log_line, int),
    ("event.original", original, string),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_agree_with_event_get() {
        let mut e = Event::default();
        for (name, ty) in palisade_core::EVENT_FIELDS {
            let text = match ty {
                palisade_core::FieldType::Ip => "10.0.0.1",
                palisade_core::FieldType::Int | palisade_core::FieldType::Timestamp => "42",
                palisade_core::FieldType::Str => "x",
            };
            e.set_text(name, text).unwrap();
        }
        for (name, _) in palisade_core::EVENT_FIELDS {
            let a = accessor(name).unwrap_or_else(|| panic!("no accessor for {name}"));
            assert!(
                matches!(a, Accessor::Fast(_)),
                "{name}: add it to the fast list in access.rs"
            );
            assert_eq!(a.get(&e), e.get(name), "{name}");
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
