//! STIX 2.1 bundles: `indicator` objects whose pattern compares
//! `ipv4-addr:value`, `ipv6-addr:value`, `domain-name:value` or `url:value`
//! with `=` (or `ISSUBSET` for networks), alone or joined by `OR`.
//!
//! Hand-written rather than a full STIX pattern grammar: only disjunctions of
//! equality comparisons can become indicators that match one observed value;
//! anything with `AND`, `FOLLOWEDBY`, qualifiers or other operators needs the
//! whole observation and is skipped and counted, as is every comparison on an
//! object path we do not match on (`file:hashes.md5`, …).

use crate::feeds::{line_of, parse_time, Meta, Sink};
use crate::indicator::Kind;
use crate::IntelError;

/// One comparison of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub path: String,
    pub op: String,
    pub value: String,
}

/// A pattern as a disjunction of comparisons, or why it is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    AnyOf(Vec<Comparison>),
    Unsupported(String),
}

/// Parse a STIX pattern into an OR of comparisons.
pub fn parse_pattern(p: &str) -> Pattern {
    let mut comps = Vec::new();
    let b = p.as_bytes();
    let mut i = 0;
    let mut expect_cmp = true;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() || c == b'[' || c == b']' || c == b'(' || c == b')' {
            i += 1;
            continue;
        }
        if !expect_cmp {
            // Between comparisons only OR is allowed.
            let word: String = p[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            if word == "OR" {
                i += 2;
                expect_cmp = true;
                continue;
            }
            let shown = if word.is_empty() {
                p[i..].chars().take(12).collect()
            } else {
                word
            };
            return Pattern::Unsupported(format!("operator {shown}"));
        }
        // object-path
        let start = i;
        while i < b.len()
            && !b[i].is_ascii_whitespace()
            && b[i] != b'='
            && b[i] != b'!'
            && b[i] != b'<'
            && b[i] != b'>'
        {
            i += 1;
        }
        let path = p[start..i].to_string();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let op_start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'\'' {
            i += 1;
        }
        let op = p[op_start..i].to_string();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] != b'\'' {
            return Pattern::Unsupported(format!("comparison on {path} without a string value"));
        }
        i += 1;
        let mut value = String::new();
        let mut closed = false;
        while i < b.len() {
            let ch = p[i..].chars().next().unwrap_or('\0');
            if ch == '\\' {
                if let Some(next) = p[i + 1..].chars().next() {
                    value.push(next);
                    i += 1 + next.len_utf8();
                    continue;
                }
            }
            if ch == '\'' {
                closed = true;
                i += 1;
                break;
            }
            value.push(ch);
            i += ch.len_utf8();
        }
        if !closed {
            return Pattern::Unsupported("unterminated string".into());
        }
        comps.push(Comparison { path, op, value });
        expect_cmp = false;
    }
    if comps.is_empty() {
        return Pattern::Unsupported("empty pattern".into());
    }
    Pattern::AnyOf(comps)
}

/// The indicator kind a comparison can become, if any.
fn kind_of(c: &Comparison) -> Option<Kind> {
    let kind = match c.path.as_str() {
        "ipv4-addr:value" | "ipv6-addr:value" => None, // detected: address or network
        "domain-name:value" => Some(Kind::Domain),
        "url:value" => Some(Kind::Url),
        _ => return None,
    };
    match c.op.as_str() {
        "=" => Some(kind.unwrap_or(Kind::Ipv4)),
        "ISSUBSET" if kind.is_none() => Some(Kind::Cidr),
        _ => None,
    }
}

pub(crate) fn read_bundle(
    text: &str,
    file: &str,
    category: Option<&str>,
    sink: &mut Sink,
) -> Result<(), IntelError> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| IntelError::Feed {
        path: file.to_string(),
        msg: format!("not JSON: {e}"),
    })?;
    let objects: Vec<&serde_json::Value> = match v.get("objects").and_then(|o| o.as_array()) {
        Some(a) => a.iter().collect(),
        None if v.get("type").and_then(|t| t.as_str()) == Some("indicator") => vec![&v],
        None => {
            return Err(IntelError::Feed {
                path: file.to_string(),
                msg: "not a STIX bundle (no `objects` array)".into(),
            })
        }
    };
    for o in objects {
        if o.get("type").and_then(|t| t.as_str()) != Some("indicator") {
            continue;
        }
        let id = o.get("id").and_then(|s| s.as_str()).unwrap_or("");
        let line = line_of(text, id);
        if let Some(pt) = o.get("pattern_type").and_then(|s| s.as_str()) {
            if pt != "stix" {
                sink.unsupported(&format!("stix pattern_type {pt}"));
                continue;
            }
        }
        let Some(pattern) = o.get("pattern").and_then(|s| s.as_str()) else {
            sink.malformed(file, line, format!("indicator {id} has no pattern"))?;
            continue;
        };
        let name = o.get("name").and_then(|s| s.as_str());
        let types = o
            .get("indicator_types")
            .and_then(|a| a.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            });
        let cat = category
            .map(str::to_string)
            .or(name.map(str::to_string))
            .or(types);
        let meta = Meta {
            category: cat.as_deref(),
            first_seen: o
                .get("valid_from")
                .and_then(|s| s.as_str())
                .and_then(parse_time),
            last_seen: o
                .get("valid_until")
                .or_else(|| o.get("modified"))
                .and_then(|s| s.as_str())
                .and_then(parse_time),
            confidence: o
                .get("confidence")
                .and_then(|c| c.as_u64())
                .map(|c| c.min(100) as u8),
        };
        match parse_pattern(pattern) {
            Pattern::Unsupported(why) => sink.unsupported(&format!("stix pattern: {why}")),
            Pattern::AnyOf(comps) => {
                for c in comps {
                    match kind_of(&c) {
                        Some(k) => {
                            let hint = matches!(k, Kind::Domain | Kind::Url).then_some(k);
                            sink.token(&c.value, hint, file, line, &meta)?;
                        }
                        None => sink.unsupported(&format!("stix {} {}", c.path, c.op)),
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ors_and_rejects_and() {
        let p = parse_pattern("[domain-name:value = 'a.example' OR ipv4-addr:value = '1.2.3.4']");
        let Pattern::AnyOf(c) = p else {
            panic!("{p:?}")
        };
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[1].path.as_str(), c[1].op.as_str(), c[1].value.as_str()),
            ("ipv4-addr:value", "=", "1.2.3.4")
        );
        assert_eq!(
            parse_pattern(
                "[ipv4-addr:value = '1.1.1.1'] OR [url:value = 'http://x.example/it\\'s']"
            ),
            Pattern::AnyOf(vec![
                Comparison {
                    path: "ipv4-addr:value".into(),
                    op: "=".into(),
                    value: "1.1.1.1".into()
                },
                Comparison {
                    path: "url:value".into(),
                    op: "=".into(),
                    value: "http://x.example/it's".into()
                },
            ])
        );
        assert!(matches!(
            parse_pattern("[x509-certificate:issuer = 'CN=WEBMAIL' AND x509-certificate:serial_number = '4c']"),
            Pattern::Unsupported(w) if w.contains("AND")
        ));
        assert!(matches!(
            parse_pattern("[a:b = 'x'] FOLLOWEDBY [c:d = 'y']"),
            Pattern::Unsupported(_)
        ));
    }
}
