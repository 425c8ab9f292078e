//! iptables / netfilter kernel log lines (`PREFIX IN=eth0 OUT= SRC=.. DST=..
//! PROTO=TCP SPT=.. DPT=..`), bare or behind a syslog header.

use crate::util::{parse_ip, parse_u16, parse_u64, put};
use crate::{LineError, LineReader, Parsed, Reason};
use palisade_core::event::parse_timestamp_us;
use palisade_core::Event;

pub(crate) struct Netfilter;

/// The action word of a log prefix (`INPUT DFLT DROP`, `DA->X ACCEPT`).
fn verdict(prefix: &str) -> Option<&'static str> {
    let up = prefix.to_ascii_uppercase();
    for (w, v) in [
        ("ACCEPT", "accept"),
        ("ALLOW", "accept"),
        ("DROP", "drop"),
        ("REJECT", "reject"),
        ("DENY", "deny"),
        ("BLOCK", "block"),
    ] {
        if up.contains(w) {
            return Some(v);
        }
    }
    None
}

impl LineReader for Netfilter {
    fn sniff(lines: &[&str]) -> bool {
        lines
            .iter()
            .take(3)
            .all(|l| l.contains("IN=") && l.contains(" SRC=") && l.contains(" DST="))
    }

    fn parse_line(&mut self, line: &str, ev: &mut Event) -> Result<Parsed, LineError> {
        let at = if line.starts_with("IN=") {
            0
        } else {
            memchr::memmem::find(line.as_bytes(), b" IN=")
                .map(|i| i + 1)
                .ok_or_else(|| {
                    LineError::new(
                        Reason::Syntax,
                        "no `IN=` field: not a netfilter log line".into(),
                    )
                })?
        };
        crate::reset_event(ev);
        let mut head = &line[..at];
        // A syslog header: RFC 3339 time first (rsyslog), and `kernel: [uptime]`.
        if let Some((first, rest)) = head.split_once(' ') {
            if let Some(ts) = parse_timestamp_us(first) {
                ev.timestamp_us = Some(ts);
                head = rest;
            }
        }
        if let Some(i) = head.find("kernel: ") {
            head = &head[i + 8..];
        }
        let head = head.trim_start();
        let head = match head.strip_prefix('[').and_then(|r| r.split_once(']')) {
            Some((_, rest)) => rest,
            None => head,
        };
        let prefix = head.trim();
        if !prefix.is_empty() {
            put(&mut ev.event_action, prefix);
            if let Some(v) = verdict(prefix) {
                put(&mut ev.network_connection_state, v);
                put(
                    &mut ev.event_outcome,
                    if v == "accept" { "success" } else { "failure" },
                );
            }
        }
        let mut have_len = false;
        for kv in line[at..].split(' ') {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            if v.is_empty() {
                continue;
            }
            let bad = |r: Reason| {
                LineError::new(r, format!("field `{k}`: `{}`", crate::util::excerpt(v, 60)))
            };
            match k {
                "SRC" => ev.source_ip = Some(parse_ip(v).ok_or_else(|| bad(Reason::BadAddress))?),
                "DST" => {
                    ev.destination_ip = Some(parse_ip(v).ok_or_else(|| bad(Reason::BadAddress))?)
                }
                "SPT" => ev.source_port = Some(parse_u16(v).ok_or_else(|| bad(Reason::BadNumber))?),
                "DPT" => {
                    ev.destination_port = Some(parse_u16(v).ok_or_else(|| bad(Reason::BadNumber))?)
                }
                "PROTO" => ev.network_transport = Some(v.to_ascii_lowercase()),
                // The first LEN is the IP packet length (a UDP header repeats LEN).
                "LEN" if !have_len => {
                    ev.source_bytes = Some(parse_u64(v).ok_or_else(|| bad(Reason::BadNumber))?);
                    have_len = true;
                }
                _ => {}
            }
        }
        if ev.source_ip.is_none() || ev.destination_ip.is_none() {
            return Err(LineError::new(
                Reason::MissingField,
                "no SRC= or DST= address".into(),
            ));
        }
        ev.event_dataset = Some("netfilter.log".into());
        ev.event_kind = Some("event".into());
        ev.event_category = Some("network".into());
        Ok(Parsed::Event)
    }
}
