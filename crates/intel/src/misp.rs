//! MISP events in feed / export form: `{"Event": {...}}`, a list of those, or a
//! `{"response": [...]}` search result. Attributes of the event and of its
//! objects become indicators when their type is a network indicator; every
//! other type (hashes, file names, registry keys, links to reports) is counted
//! as unsupported by type.

use crate::feeds::{line_of, Meta, Sink};
use crate::indicator::Kind;
use crate::IntelError;
use serde_json::Value;

/// How a MISP attribute type maps to indicators: one kind per `|`-separated part
/// (`None` for a part that is no indicator, such as the port of `ip-dst|port`,
/// which is folded into a host:port).
fn parts_of(t: &str) -> Option<&'static [Option<Kind>]> {
    Some(match t {
        "ip-src" | "ip-dst" => &[None],
        "domain" | "hostname" => &[Some(Kind::Domain)],
        "url" | "uri" => &[Some(Kind::Url)],
        "user-agent" => &[Some(Kind::UserAgent)],
        "domain|ip" => &[Some(Kind::Domain), None],
        "ip-src|port" | "ip-dst|port" | "hostname|port" => &[Some(Kind::HostPort)],
        _ => return None,
    })
}

pub(crate) fn read_events(
    text: &str,
    file: &str,
    category: Option<&str>,
    sink: &mut Sink,
) -> Result<(), IntelError> {
    let v: Value = serde_json::from_str(text).map_err(|e| IntelError::Feed {
        path: file.to_string(),
        msg: format!("not JSON: {e}"),
    })?;
    let mut events: Vec<&Value> = Vec::new();
    collect_events(&v, &mut events);
    if events.is_empty() {
        return Err(IntelError::Feed {
            path: file.to_string(),
            msg: "no MISP `Event` object found".into(),
        });
    }
    for ev in events {
        let info = ev.get("info").and_then(|s| s.as_str());
        let cat = category.or(info);
        let mut attrs: Vec<&Value> = ev
            .get("Attribute")
            .and_then(|a| a.as_array())
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        if let Some(objs) = ev.get("Object").and_then(|a| a.as_array()) {
            for o in objs {
                if let Some(a) = o.get("Attribute").and_then(|a| a.as_array()) {
                    attrs.extend(a.iter());
                }
            }
        }
        for a in attrs {
            let t = a.get("type").and_then(|s| s.as_str()).unwrap_or("");
            let value = a.get("value").and_then(|s| s.as_str()).unwrap_or("");
            let uuid = a.get("uuid").and_then(|s| s.as_str()).unwrap_or(value);
            let line = line_of(text, uuid);
            let Some(parts) = parts_of(t) else {
                sink.unsupported(&format!("misp attribute type {t}"));
                continue;
            };
            let ts = |k: &str| {
                a.get(k).and_then(|x| {
                    x.as_str()
                        .and_then(|s| {
                            s.parse::<i64>()
                                .ok()
                                .map(|s| s * 1_000_000)
                                .or_else(|| crate::feeds::parse_time(s))
                        })
                        .or_else(|| x.as_i64().map(|s| s * 1_000_000))
                })
            };
            let meta = Meta {
                category: cat,
                first_seen: ts("first_seen").or_else(|| ts("timestamp")),
                last_seen: ts("last_seen").or_else(|| ts("timestamp")),
                confidence: None,
            };
            if parts.len() == 1 && parts[0] == Some(Kind::HostPort) {
                // `1.2.3.4|443` → `1.2.3.4:443`; IPv6 hosts need brackets.
                let Some((h, p)) = value.split_once('|') else {
                    sink.malformed(file, line, format!("{t} value `{value}` has no `|`"))?;
                    continue;
                };
                let hp = if h.contains(':') {
                    format!("[{h}]:{p}")
                } else {
                    format!("{h}:{p}")
                };
                sink.token(&hp, Some(Kind::HostPort), file, line, &meta)?;
                continue;
            }
            let values: Vec<&str> = if parts.len() > 1 {
                value.split('|').collect()
            } else {
                vec![value]
            };
            if values.len() != parts.len() {
                sink.malformed(
                    file,
                    line,
                    format!("{t} value `{value}` does not have {} parts", parts.len()),
                )?;
                continue;
            }
            for (v, k) in values.into_iter().zip(parts.iter()) {
                sink.token(v, *k, file, line, &meta)?;
            }
        }
    }
    Ok(())
}

fn collect_events<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| collect_events(x, out)),
        Value::Object(o) => {
            if let Some(ev) = o.get("Event") {
                out.push(ev);
            } else if let Some(r) = o.get("response") {
                collect_events(r, out);
            } else if o.contains_key("Attribute") {
                out.push(v);
            }
        }
        _ => {}
    }
}
