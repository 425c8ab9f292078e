//! The feed config (`--feeds feeds.toml`):
//!
//! ```toml
//! [allow]                     # wins over every feed
//! domains = ["example.org"]
//! cidrs = ["192.0.2.0/24"]
//! include_reserved = false    # keep private/reserved ranges (default: excluded)
//!
//! [[feed]]
//! name = "maltrail"
//! path = "maltrail/static"    # file, directory or glob; relative to this file
//! format = "list"             # auto | list | csv | hosts | netset | stix | misp
//! kind = "domain"             # when the format does not say
//! column = "dst_ip"           # csv: the indicator column
//! category = "malware"
//! confidence = 70             # 0-100
//! expiry = "30d"              # s, m, h, d, w
//! ```

use crate::feeds::{FeedSpec, Format};
use crate::indicator::Kind;
use crate::matcher::AllowList;
use crate::IntelError;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    allow: RawAllow,
    #[serde(default)]
    feed: Vec<RawFeed>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllow {
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    cidrs: Vec<String>,
    #[serde(default)]
    include_reserved: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    name: Option<String>,
    path: String,
    format: Option<String>,
    kind: Option<String>,
    column: Option<String>,
    category: Option<String>,
    confidence: Option<i64>,
    expiry: Option<String>,
}

/// A parsed feed config.
#[derive(Debug, Clone, Default)]
pub struct FeedConfig {
    pub feeds: Vec<FeedSpec>,
    pub allow: AllowList,
    pub include_reserved: bool,
}

/// `90s`, `15m`, `12h`, `30d`, `2w` to microseconds.
pub fn parse_age(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().ok()?;
    let secs = match unit.trim() {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(secs)?.checked_mul(1_000_000)
}

impl FeedConfig {
    pub fn read(path: &Path) -> Result<FeedConfig, IntelError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| IntelError::Io {
            path: p.clone(),
            err: e,
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        Self::parse(&text, &p, base)
    }

    /// Parse config text; relative feed paths are taken from `base`. Errors name the key.
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<FeedConfig, IntelError> {
        let err = |msg: String| IntelError::Config {
            path: file.to_string(),
            msg,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let mut cfg = FeedConfig {
            include_reserved: raw.allow.include_reserved,
            ..Default::default()
        };
        cfg.allow.domains = raw.allow.domains;
        for (i, c) in raw.allow.cidrs.iter().enumerate() {
            let n = c
                .parse::<ipnet::IpNet>()
                .or_else(|_| c.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| err(format!("allow.cidrs[{i}]: `{c}` is not an IP network")))?;
            cfg.allow.cidrs.push(n);
        }
        if raw.feed.is_empty() {
            return Err(err("no [[feed]] entries".into()));
        }
        for (i, f) in raw.feed.into_iter().enumerate() {
            let key = |k: &str| {
                format!(
                    "feed[{i}]{}.{k}",
                    f.name
                        .as_deref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                )
            };
            let path = if Path::new(&f.path).is_absolute() {
                f.path.clone()
            } else {
                base.join(&f.path).to_string_lossy().into_owned()
            };
            let format = match f.format.as_deref().map(|s| s.trim().to_ascii_lowercase()) {
                None => None,
                Some(s) => match s.as_str() {
                    "auto" => None,
                    "list" | "text" | "plain" => Some(Format::List),
                    "csv" => Some(Format::Csv {
                        column: f.column.clone(),
                    }),
                    "hosts" => Some(Format::Hosts),
                    "netset" | "ipset" => Some(Format::Netset),
                    "stix" | "stix2" | "stix2.1" => Some(Format::Stix),
                    "misp" => Some(Format::Misp),
                    other => {
                        return Err(err(format!(
                        "{}: unknown format `{other}` (auto, list, csv, hosts, netset, stix, misp)",
                        key("format")
                    )))
                    }
                },
            };
            let format = match (format, &f.column) {
                (None, Some(c)) => Some(Format::Csv {
                    column: Some(c.clone()),
                }),
                (Some(fmt), Some(_)) if !matches!(fmt, Format::Csv { .. }) => {
                    return Err(err(format!(
                        "{}: only csv feeds take a column",
                        key("column")
                    )))
                }
                (fmt, _) => fmt,
            };
            let kind = match &f.kind {
                None => None,
                Some(k) => Some(Kind::parse(k).ok_or_else(|| {
                    err(format!("{}: unknown kind `{k}` (ipv4, ipv6, cidr, domain, url, host-port, user-agent)", key("kind")))
                })?),
            };
            let confidence = match f.confidence {
                None => None,
                Some(c) if (0..=100).contains(&c) => Some(c as u8),
                Some(c) => {
                    return Err(err(format!("{}: {c} is not in 0..=100", key("confidence"))))
                }
            };
            let expiry_us = match &f.expiry {
                None => None,
                Some(e) => Some(parse_age(e).ok_or_else(|| {
                    err(format!(
                        "{}: `{e}` is not an age like 30d, 12h, 2w",
                        key("expiry")
                    ))
                })?),
            };
            let name = f
                .name
                .clone()
                .unwrap_or_else(|| crate::feeds::name_from_path(Path::new(&f.path)));
            cfg.feeds.push(FeedSpec {
                name,
                path,
                format,
                kind,
                category: f.category,
                confidence,
                expiry_us,
            });
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key() {
        let e = FeedConfig::parse(
            "[[feed]]\nname='x'\npath='a'\nexpiry='soon'\n",
            "f.toml",
            Path::new(""),
        )
        .unwrap_err();
        assert!(e.to_string().contains("feed[0] (x).expiry"), "{e}");
        let e = FeedConfig::parse(
            "[[feed]]\npath='a'\nformat='xml'\n",
            "f.toml",
            Path::new(""),
        )
        .unwrap_err();
        assert!(e.to_string().contains("feed[0].format"), "{e}");
        let e = FeedConfig::parse(
            "[[feed]]\npath='a'\nconfidence=200\n",
            "f.toml",
            Path::new(""),
        )
        .unwrap_err();
        assert!(e.to_string().contains("confidence"), "{e}");
        let e = FeedConfig::parse("[[feed]]\npath='a'\nbogus=1\n", "f.toml", Path::new(""))
            .unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = FeedConfig::parse(
            "[allow]\ncidrs=['x']\n[[feed]]\npath='a'\n",
            "f.toml",
            Path::new(""),
        )
        .unwrap_err();
        assert!(e.to_string().contains("allow.cidrs[0]"), "{e}");
        let c = FeedConfig::parse(
            "[[feed]]\npath='d/x.csv'\ncolumn='dst_ip'\nexpiry='2w'\n",
            "f.toml",
            Path::new("/base"),
        )
        .unwrap();
        assert_eq!(c.feeds[0].path, "/base/d/x.csv");
        assert_eq!(
            c.feeds[0].format,
            Some(Format::Csv {
                column: Some("dst_ip".into())
            })
        );
        assert_eq!(c.feeds[0].expiry_us, Some(14 * 86_400 * 1_000_000));
    }
}
