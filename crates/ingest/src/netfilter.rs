//! iptables / netfilter kernel log lines (`PREFIX IN=eth0 OUT= SRC=.. DST=..
//! PROTO=TCP SPT=.. DPT=..`, UFW's `[UFW BLOCK] IN=..`), bare or behind a
//! syslog header.
//!
//! # Syslog header
//! - RFC 3339 time first (rsyslog's high-precision format):
//!   `2024-01-10T12:34:57.123456+01:00 fw01 kernel: ...`.
//! - classic BSD syslog time, `Jan 10 12:34:56 fw01 kernel: ...` (the day may
//!   be space-padded, `Jan  5`). It has no year, and no other reader in this
//!   crate has a convention for one, so the year is the **current UTC year**
//!   (taken once, when the reader is made), or the year before when that
//!   would put the time more than a day in the future (a December log read in
//!   January). The time is taken as UTC: BSD syslog says nothing of the zone.
//! - an optional `<PRI>` before either.
//!
//! After `kernel: `, a bracket that holds a number (`[123456.789012]`, the
//! kernel uptime) is dropped; any other bracket (`[UFW BLOCK]`) is part of the
//! log prefix, which gives `event.action` and the verdict.
//!
//! A timestamp that is there but does not parse (`Feb 30 ..`,
//! `2024-13-01T..`), or a syslog header (text before `kernel:`) without a
//! recognisable one, does not lose the line: the event is kept without
//! `@timestamp` and the line is counted as `bad_timestamp` in
//! [`crate::FileSummary::flagged`] (and listed among the examples).

use crate::util::{hms_to_secs, month_abbrev, parse_ip, parse_u16, parse_u64, put};
use crate::{LineError, LineReader, Parsed, Reason};
use chrono::Datelike;
use palisade_core::event::parse_timestamp_us;
use palisade_core::Event;

pub(crate) struct Netfilter {
    /// "Now" in microseconds since the epoch, UTC: the year of yearless
    /// BSD syslog times is inferred from it.
    now_us: i64,
    /// The problem with the last line, when it still gave an event.
    warning: Option<LineError>,
}

impl Netfilter {
    pub(crate) fn new() -> Self {
        Netfilter::at(chrono::Utc::now().timestamp_micros())
    }

    /// A reader that infers BSD syslog years as if it were `now_us`.
    pub(crate) fn at(now_us: i64) -> Self {
        Netfilter {
            now_us,
            warning: None,
        }
    }

    /// `Mmm d HH:MM:SS[.f]` at the start of `h`: the time in microseconds and
    /// the text after it. `Ok(None)` when `h` does not start like one;
    /// `Err(detail)` when it does but is not a valid time.
    fn bsd_time<'a>(&self, h: &'a str) -> Result<Option<(i64, &'a str)>, String> {
        let Some(mon) = h.get(..3).and_then(|m| month_abbrev(m.as_bytes())) else {
            return Ok(None);
        };
        let rest = &h[3..];
        let after_mon = rest.trim_start_matches(' ');
        if after_mon.len() == rest.len() || !after_mon.starts_with(|c: char| c.is_ascii_digit()) {
            return Ok(None);
        }
        let (day, rest) = after_mon.split_once(' ').unwrap_or((after_mon, ""));
        let rest = rest.trim_start_matches(' ');
        let (time, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let shown = || {
            let n = h.len() - rest.len();
            format!("BSD syslog time `{}`", h[..n].trim_end())
        };
        let day = crate::util::digits(day.as_bytes())
            .filter(|_| day.len() <= 2)
            .ok_or_else(shown)?;
        let (secs, us) = hms_to_secs(time.as_bytes()).ok_or_else(shown)?;
        let at = |year: i32| -> Option<i64> {
            let date = chrono::NaiveDate::from_ymd_opt(year, mon, day)?;
            let days = i64::from(date.num_days_from_ce() - 719_163);
            Some((days * 86_400 + secs) * 1_000_000 + us)
        };
        let year = chrono::DateTime::from_timestamp_micros(self.now_us).map_or(1970, |d| d.year());
        let ts = match at(year) {
            Some(t) if t > self.now_us + 86_400_000_000 => at(year - 1).unwrap_or(t),
            Some(t) => t,
            // Feb 29 of a year that is not a leap year: the log is older
            None => at(year - 1).ok_or_else(shown)?,
        };
        Ok(Some((ts, rest)))
    }
}

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

/// Whether the text of a bracket is a kernel uptime (`123456.789012`).
fn is_uptime(s: &str) -> bool {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

impl LineReader for Netfilter {
    fn take_warning(&mut self) -> Option<LineError> {
        self.warning.take()
    }

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
        self.warning = None;
        let mut head = &line[..at];
        let kernel = head.find("kernel: ");
        // A syslog header: an optional `<PRI>`, the time (RFC 3339 or BSD), and
        // `kernel: [uptime]`.
        let h = match head.strip_prefix('<').and_then(|r| r.split_once('>')) {
            Some((pri, rest)) if !pri.is_empty() && pri.bytes().all(|b| b.is_ascii_digit()) => rest,
            _ => head,
        };
        let mut problem = None;
        let mut found = false;
        let (first, after_first) = h.split_once(' ').unwrap_or((h, ""));
        let b = first.as_bytes();
        if b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
            found = true;
            match parse_timestamp_us(first) {
                Some(ts) => ev.timestamp_us = Some(ts),
                None => {
                    problem = Some(format!("syslog time `{}`", crate::util::excerpt(first, 40)))
                }
            }
            head = after_first;
        } else {
            match self.bsd_time(h) {
                Ok(Some((ts, rest))) => {
                    found = true;
                    ev.timestamp_us = Some(ts);
                    head = rest;
                }
                Ok(None) => {}
                Err(detail) => {
                    found = true;
                    problem = Some(detail);
                }
            }
        }
        if let Some(i) = kernel {
            let before = h.len().saturating_sub(line[..at].len() - i);
            if !found && !h[..before].trim().is_empty() {
                problem = Some(format!(
                    "no timestamp in the syslog header `{}`",
                    crate::util::excerpt(h[..before].trim(), 40)
                ));
            }
            head = &line[i + 8..at];
        }
        if let Some(p) = problem {
            self.warning = Some(LineError::new(
                Reason::BadTimestamp,
                format!("{p}; event kept without @timestamp"),
            ));
        }
        let head = head.trim_start();
        // `[123456.789012]` (dmesg pads it: `[    5.123]`) is the kernel
        // uptime; any other bracket (`[UFW BLOCK]`) belongs to the prefix.
        let head = match head.strip_prefix('[').and_then(|r| r.split_once(']')) {
            Some((up, rest)) if is_uptime(up) => rest,
            _ => head,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn us(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        chrono::NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_opt(h, mi, s))
            .unwrap()
            .and_utc()
            .timestamp_micros()
    }

    fn time_of(r: &mut Netfilter, line: &str) -> (Option<i64>, Option<LineError>) {
        let mut ev = Event::default();
        assert_eq!(r.parse_line(line, &mut ev), Ok(Parsed::Event), "{line}");
        (ev.timestamp_us, r.take_warning())
    }

    const TAIL: &str = "fw01 kernel: [1.0] [UFW BLOCK] IN=eth0 OUT= SRC=10.0.0.1 DST=10.0.0.2 PROTO=TCP SPT=1 DPT=2";

    #[test]
    fn bsd_syslog_year_is_inferred_from_now() {
        let mut r = Netfilter::at(us(2025, 6, 1, 0, 0, 0));
        let (t, w) = time_of(&mut r, &format!("Jan 10 12:34:56.25 {TAIL}"));
        assert_eq!(t, Some(us(2025, 1, 10, 12, 34, 56) + 250_000));
        assert_eq!(w, None);
        // a December line read in early January is last year's
        let mut r = Netfilter::at(us(2025, 1, 2, 0, 0, 0));
        let (t, _) = time_of(&mut r, &format!("Dec 31 23:59:59 {TAIL}"));
        assert_eq!(t, Some(us(2024, 12, 31, 23, 59, 59)));
        // Feb 29 in a year that has none: the last year that had one before it
        let mut r = Netfilter::at(us(2025, 3, 1, 0, 0, 0));
        let (t, _) = time_of(&mut r, &format!("Feb 29 00:00:00 {TAIL}"));
        assert_eq!(t, Some(us(2024, 2, 29, 0, 0, 0)));
    }

    #[test]
    fn bad_times_are_warnings() {
        let mut r = Netfilter::at(us(2025, 6, 1, 0, 0, 0));
        for bad in [
            "Jan 32 00:00:00",
            "Jan 10 25:00:00",
            "Jan 10 noon",
            "2024-01-10Tx",
        ] {
            let (t, w) = time_of(&mut r, &format!("{bad} {TAIL}"));
            assert_eq!(t, None, "{bad}");
            let w = w.expect(bad);
            assert_eq!(w.reason, Reason::BadTimestamp);
            assert!(w.detail.contains(bad.split(' ').next().unwrap()), "{w}");
        }
        // the warning is not carried over to the next line
        let (_, w) = time_of(&mut r, &format!("Jan 10 00:00:00 {TAIL}"));
        assert_eq!(w, None);
    }

    #[test]
    fn uptime_brackets() {
        assert!(is_uptime("123456.789012"));
        assert!(is_uptime("    5.123"));
        assert!(is_uptime("12"));
        assert!(!is_uptime("UFW BLOCK"));
        assert!(!is_uptime(""));
        assert!(!is_uptime("."));
    }
}
