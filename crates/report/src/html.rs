//! The HTML page: sections in the order a reader asks the questions
//! (what was read → what stands out → why → with what).

use crate::plots;
use crate::{Analysis, ReportError, ReportInput, SourceSummary};
use palisade_core::event::format_timestamp_us;
use std::fmt::Write;

/// Escape text for HTML element content and double-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Numbers for people: integers as integers, others to 3 significant digits.
pub(crate) fn num(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "–".to_string()
        } else {
            format!("{x}")
        };
    }
    if x.fract() == 0.0 && x.abs() < 1e12 {
        return group_thousands(x as i64);
    }
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else if a >= 0.001 {
        format!("{x:.3}")
    } else {
        format!("{x:.2e}")
    }
}

fn group_thousands(v: i64) -> String {
    let s = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn ts(us: Option<i64>) -> String {
    // Seconds are enough for a person; the alerts file keeps microseconds.
    us.and_then(|u| format_timestamp_us(u.div_euclid(1_000_000) * 1_000_000))
        .map(|t| format!("{} UTC", t.replace('T', " ").trim_end_matches(".000000Z")))
        .unwrap_or_else(|| "–".into())
}

fn duration_text(us: i64) -> String {
    let s = us as f64 / 1e6;
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else if s < 172_800.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} days", s / 86400.0)
    }
}

const CSS: &str = r#"
:root{--ink:#1d2330;--muted:#5b6472;--line:#e3e6eb;--bg:#f6f7f9;--accent:#0b5cad;--red:#c81e2d;--amber:#b86e00}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:var(--bg)}
header{background:#16213a;color:#fff;padding:28px 40px 22px}
header h1{margin:0 0 4px;font-size:26px;font-weight:650}
header .sub{color:#c7cfdd;font-size:14px}
nav{background:#fff;border-bottom:1px solid var(--line);padding:8px 40px;position:sticky;top:0;z-index:2}
nav a{color:var(--accent);text-decoration:none;margin-right:18px;font-size:14px;white-space:nowrap}
main{max-width:1320px;margin:0 auto;padding:20px 40px 60px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:18px 24px;margin:18px 0}
h2{font-size:20px;margin:0 0 10px}
h3{font-size:16px;margin:18px 0 8px}
p.lead{color:var(--muted);margin:0 0 12px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:4px 0 0}
.card{flex:1 1 160px;background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 16px}
.card .v{font-size:24px;font-weight:650}
.card .k{color:var(--muted);font-size:13px}
.card.alert .v{color:var(--red)}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#f0f2f5;font-weight:600;font-size:13px;color:#3a4250}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
td.nw{white-space:nowrap}
td.ent{min-width:130px;max-width:260px;overflow-wrap:anywhere}
td.intelcol{min-width:240px;max-width:320px}
.wrap{overflow-x:auto}
.small{font-size:12px}
ul.notes{margin:4px 0 0;padding-left:18px;color:var(--muted);font-size:12px}
tr:hover td{background:#fafbfc}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
.chip{display:inline-block;border:1px solid var(--line);border-radius:12px;padding:1px 9px;margin:2px 4px 2px 0;font-size:13px;background:#fbfbfc;white-space:nowrap}
.chip b{font-weight:600}
.chip .up{color:var(--red)} .chip .down{color:var(--accent)}
.intel{display:inline-block;border-radius:12px;padding:1px 9px;margin:2px 4px 2px 0;font-size:13px;background:#fdecee;color:#8a1020;border:1px solid #f5c2c8}
.score{font-weight:650;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:14px}
.grid figure{flex:1 1 420px;margin:0}
figure{margin:0}
figcaption{color:var(--muted);font-size:13px;margin-top:4px}
svg{max-width:100%;height:auto;display:block}
.note{background:#fff8e6;border:1px solid #f1dca6;border-radius:6px;padding:8px 12px;margin:6px 0;font-size:14px}
.muted{color:var(--muted)}
details summary{cursor:pointer;color:var(--accent)}
"#;

pub(crate) fn render(r: &ReportInput) -> Result<String, ReportError> {
    let mut h = String::with_capacity(256 * 1024);
    let title = if r.title.is_empty() {
        "Palisade report"
    } else {
        r.title.as_str()
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{CSS}</style></head><body>\n",
        escape(title)
    );
    let _ = writeln!(
        h,
        "<header><h1>{}</h1><div class=\"sub\">Pipeline <code>{}</code> · generated {}{}</div></header>",
        escape(title),
        escape(&r.pipeline),
        escape(&r.generated_at),
        r.seed.map(|s| format!(" · seed {s}")).unwrap_or_default()
    );
    h.push_str("<nav><a href=\"#read\">What was read</a><a href=\"#alerts\">Top alerts</a>");
    for (i, a) in r.analyses.iter().enumerate() {
        let _ = write!(h, "<a href=\"#analysis-{i}\">{}</a>", escape(&a.name));
    }
    h.push_str(
        "<a href=\"#intel\">Threat intel</a><a href=\"#models\">Models</a><a href=\"#catalog\">Feature catalog</a>\
         <a href=\"#run\">Run</a></nav>\n<main>\n",
    );
    summary_cards(&mut h, r);
    section_in_short(&mut h, r);
    section_read(&mut h, r);
    section_alerts(&mut h, r);
    for (i, a) in r.analyses.iter().enumerate() {
        section_analysis(&mut h, i, a)?;
    }
    section_intel(&mut h, r);
    section_models(&mut h, r);
    section_catalog(&mut h, r);
    section_run(&mut h, r);
    h.push_str("</main></body></html>\n");
    Ok(h)
}

fn summary_cards(h: &mut String, r: &ReportInput) {
    let events: u64 = r.sources.iter().map(|s| s.events).sum();
    let skipped: u64 = r.sources.iter().map(|s| s.skipped).sum();
    let first = r.sources.iter().filter_map(|s| s.first_us).min();
    let last = r.sources.iter().filter_map(|s| s.last_us).max();
    let span = match (first, last) {
        (Some(a), Some(b)) => duration_text(b - a),
        _ => "–".into(),
    };
    let matched: u64 = r.feeds.iter().map(|f| f.matched_events).sum();
    h.push_str("<div class=\"cards\">");
    let mut card = |v: String, k: &str, class: &str| {
        let _ = write!(
            h,
            "<div class=\"card {class}\"><div class=\"v\">{}</div><div class=\"k\">{}</div></div>",
            escape(&v),
            escape(k)
        );
    };
    card(num(events as f64), "events read", "");
    card(num(skipped as f64), "lines skipped (parse errors)", "");
    card(span, "time span", "");
    card(num(matched as f64), "events matching threat intel", "");
    card(
        num(r.alerts_total as f64),
        "alerts above threshold",
        "alert",
    );
    h.push_str("</div>\n");
}

/// The entities behind the top alerts, each once, with its strongest reason:
/// what a reader who stops here should look at first.
fn section_in_short(h: &mut String, r: &ReportInput) {
    struct Who<'a> {
        entity: &'a str,
        analysis: &'a str,
        alerts: usize,
        models: Vec<&'a str>,
        first: &'a crate::AlertRow,
        intel: bool,
    }
    let mut list: Vec<Who> = Vec::new();
    for a in &r.alerts {
        match list
            .iter_mut()
            .find(|w| w.entity == a.entity && w.analysis == a.analysis)
        {
            Some(w) => {
                w.alerts += 1;
                if !w.models.contains(&a.model.as_str()) {
                    w.models.push(&a.model);
                }
                w.intel |= !a.intel.is_empty();
            }
            None => list.push(Who {
                entity: &a.entity,
                analysis: &a.analysis,
                alerts: 1,
                models: vec![&a.model],
                first: a,
                intel: !a.intel.is_empty(),
            }),
        }
    }
    if list.is_empty() {
        return;
    }
    h.push_str(
        "<section id=\"summary\"><h2>In short</h2><p class=\"lead\">Per table, the entities behind its highest \
         alerts, most suspicious first, with the strongest reason the model gives. Details in \
         <a href=\"#alerts\">Top alerts</a>.</p>",
    );
    let mut analyses: Vec<&str> = Vec::new();
    for w in &list {
        if !analyses.contains(&w.analysis) {
            analyses.push(w.analysis);
        }
    }
    for an in analyses {
        let _ = write!(h, "<h3>{}</h3><ol>", escape(an));
        for w in list.iter().filter(|w| w.analysis == an).take(4) {
            let reason = w
                .first
                .top_features
                .first()
                .map(|c| {
                    format!(
                        "{} = {} (typical {})",
                        c.feature,
                        num(c.value),
                        num(c.typical)
                    )
                })
                .unwrap_or_default();
            let _ = write!(
                h,
                "<li><b class=\"mono\">{}</b> — {} alert(s) from {}; {}{}</li>",
                escape(w.entity),
                w.alerts,
                escape(&w.models.join(", ")),
                escape(&reason),
                if w.intel {
                    " <span class=\"intel\">threat-intel match</span>"
                } else {
                    ""
                }
            );
        }
        h.push_str("</ol>");
    }
    h.push_str("</section>\n");
}

fn section_read(h: &mut String, r: &ReportInput) {
    let first = r.sources.iter().filter_map(|s| s.first_us).min();
    let last = r.sources.iter().filter_map(|s| s.last_us).max();
    let _ = write!(
        h,
        "<section id=\"read\"><h2>What was read</h2><p class=\"lead\">{} source(s), events from {} to {}.</p>",
        r.sources.len(),
        escape(&ts(first)),
        escape(&ts(last))
    );
    h.push_str(
        "<table><tr><th>source</th><th>format</th><th>path</th><th class=\"n\">lines</th><th class=\"n\">events</th>\
         <th class=\"n\">skipped</th><th>first event</th><th>last event</th></tr>",
    );
    for s in &r.sources {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(&s.name),
            escape(&s.format),
            escape(&s.path),
            num(s.lines as f64),
            num(s.events as f64),
            num(s.skipped as f64),
            escape(&ts(s.first_us)),
            escape(&ts(s.last_us))
        );
    }
    h.push_str("</table>");
    h.push_str("<h3>Parse errors by reason</h3>");
    if !reason_table(h, r, |s| &s.errors_by_reason) {
        h.push_str("<p class=\"muted\">None: every line was read.</p>");
    }
    if r.sources.iter().any(|s| !s.flagged_by_reason.is_empty()) {
        h.push_str(
            "<h3>Lines kept with a problem</h3><p class=\"muted\">Read as events, with the field named missing.</p>",
        );
        reason_table(h, r, |s| &s.flagged_by_reason);
    }
    h.push_str("</section>\n");
}

/// A table of (source, reason, lines) from each source's `counts`; false,
/// and nothing written, when there are none.
fn reason_table(
    h: &mut String,
    r: &ReportInput,
    counts: impl Fn(&SourceSummary) -> &[(String, u64)],
) -> bool {
    let rows: Vec<(&str, &str, u64)> = r
        .sources
        .iter()
        .flat_map(|s| {
            counts(s)
                .iter()
                .map(move |(why, n)| (s.name.as_str(), why.as_str(), *n))
        })
        .collect();
    if rows.is_empty() {
        return false;
    }
    h.push_str("<table><tr><th>source</th><th>reason</th><th class=\"n\">lines</th></tr>");
    for (src, why, n) in rows {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            escape(src),
            escape(why),
            num(n as f64)
        );
    }
    h.push_str("</table>");
    true
}

fn section_alerts(h: &mut String, r: &ReportInput) {
    let shown = if r.alerts_in_table == 0 {
        &r.alerts[..]
    } else {
        &r.alerts[..r.alerts_in_table.min(r.alerts.len())]
    };
    let _ = write!(
        h,
        "<section id=\"alerts\"><h2>Top alerts</h2><p class=\"lead\">{} of {} alert(s), highest risk first (risk: the score's percentile among the rows its model scored, so \
         models on different scales compare). \
         <b>Why</b> lists the features that contributed most to the score, with this row's value against the \
         typical (median) value over all rows; <b>Intel</b> lists threat-intelligence matches with the feed that \
         supplied them.</p>",
        shown.len(),
        r.alerts_total
    );
    if r.alerts.is_empty() {
        h.push_str("<p class=\"muted\">No row scored above its model's threshold.</p></section>\n");
        return;
    }
    h.push_str(
        "<div class=\"wrap\"><table><tr><th class=\"n\">#</th><th class=\"n\">score</th><th>entity</th><th>window</th><th>model</th>\
         <th>why</th><th>intel</th></tr>",
    );
    for (i, a) in shown.iter().enumerate() {
        let _ = write!(
            h,
            "<tr><td class=\"n\">{}</td><td class=\"n nw\"><span class=\"score\">{}</span><br><span class=\"muted small\">threshold {}</span></td>\
             <td class=\"mono ent\">{}</td><td class=\"nw\">{}<br><span class=\"muted small\">{}</span></td><td class=\"nw\">{}<br><span class=\"muted small\">{}</span></td><td>",
            i + 1,
            num(a.score),
            num(a.threshold),
            escape(&a.entity),
            escape(&a.window),
            escape(a.timestamp.get(..10).unwrap_or("")),
            escape(&a.model),
            escape(&a.analysis)
        );
        for c in &a.top_features {
            let arrow = if c.value > c.typical {
                "<span class=\"up\">▲</span>"
            } else if c.value < c.typical {
                "<span class=\"down\">▼</span>"
            } else {
                ""
            };
            let _ = write!(
                h,
                "<span class=\"chip\">{arrow} <b>{}</b> = {} <span class=\"muted\">(typical {})</span></span>",
                escape(&c.feature),
                num(c.value),
                num(c.typical)
            );
        }
        h.push_str("</td><td class=\"intelcol\">");
        if a.intel.is_empty() {
            h.push_str("<span class=\"muted\">–</span>");
        }
        for m in &a.intel {
            let _ = write!(
                h,
                "<span class=\"intel\" title=\"{}\"><span class=\"mono\">{}</span> · {} · {}{}</span>",
                escape(&format!("matched on {} ({} event(s)){}", m.field, m.count, if m.category.is_empty() { String::new() } else { format!(", category {}", m.category) })),
                escape(&m.indicator),
                escape(&m.feed),
                escape(short_field(&m.field)),
                if m.count > 1 { format!(" ×{}", m.count) } else { String::new() }
            );
        }
        h.push_str("</td></tr>");
    }
    h.push_str("</table></div></section>\n");
}

/// `dns.question.name` → `DNS query`: the matched field in words.
fn short_field(f: &str) -> &str {
    match f {
        "dns.question.name" => "DNS query",
        "tls.client.server_name" => "TLS SNI",
        "url.full" | "url.domain+url.path" => "URL",
        "url.domain" => "HTTP host",
        "destination.domain" => "server name",
        "destination.ip" => "destination IP",
        "source.ip" => "source IP",
        "destination.ip+destination.port" => "destination IP:port",
        "user_agent.original" => "user agent",
        other => other,
    }
}

fn section_analysis(h: &mut String, i: usize, a: &Analysis) -> Result<(), ReportError> {
    let _ = write!(
        h,
        "<section id=\"analysis-{i}\"><h2>{}</h2><p class=\"lead\">One row = {}. {} rows{}.</p>",
        escape(&a.name),
        escape(&a.entity),
        num(a.rows as f64),
        match a.positives {
            Some(p) => format!(
                ", {} labelled positive ({})",
                num(p as f64),
                escape(&a.label_source)
            ),
            None => ", no labels".to_string(),
        }
    );
    if let Some(map) = &a.map {
        let svg = plots::pca_map_svg(map, (1200, 620))?;
        let _ = write!(
            h,
            "<h3>PCA map</h3><figure>{svg}<figcaption>Each dot is one row projected on the first two principal \
             components of the standardised features. Colour: rank of the <b>{}</b> score (dark purple = low, \
             yellow = high). Black circles with names: the {} highest scores. Red rings: rows labelled positive. \
             Points far from the dense cloud are what the outlier detectors flag.</figcaption></figure>",
            escape(&map.coloured_by),
            map.name_top
        );
    }
    if !a.models.is_empty() {
        h.push_str("<h3>Score distributions</h3><div class=\"grid\">");
        for m in &a.models {
            let svg = plots::histogram_svg(m, a.labels.as_deref(), (600, 300))?;
            let _ = write!(
                h,
                "<figure>{svg}<figcaption>{}: {} rows at or above the threshold ({}).</figcaption></figure>",
                escape(&m.name),
                num(m.alerts as f64),
                escape(&m.threshold_rule)
            );
        }
        h.push_str("</div>");
    }
    let with_curves: Vec<&crate::ModelResult> = a
        .models
        .iter()
        .filter(|m| m.roc.is_some() || m.pr.is_some())
        .collect();
    if with_curves.is_empty() {
        h.push_str(
            "<h3>ROC and precision–recall</h3><p class=\"muted\">Not drawn: this table has no labels with both \
             classes present (labels come from threat-intel matches or analyst verdicts).</p>",
        );
    } else {
        let roc = plots::roc_svg(&with_curves, (600, 440))?;
        let pr = plots::pr_svg(&with_curves, (600, 440))?;
        let _ = write!(
            h,
            "<h3>ROC and precision–recall</h3><div class=\"grid\"><figure>{roc}<figcaption>Every model on the same \
             labels. Labels: {}. These are weak labels, so a high score without a label is not necessarily a false \
             positive.</figcaption></figure><figure>{pr}<figcaption>Thin lines: the share of positives (what a \
             random ranking achieves).</figcaption></figure></div>",
            escape(&a.label_source)
        );
    }
    h.push_str("</section>\n");
    Ok(())
}

fn section_intel(h: &mut String, r: &ReportInput) {
    h.push_str(
        "<section id=\"intel\"><h2>Threat intelligence</h2><p class=\"lead\">Feeds loaded, indicators by kind, and \
         how many events each matched. Matches label rows for the curves above and enrich alerts; the matched \
         fields never become model inputs.</p>",
    );
    if r.feeds.is_empty() {
        h.push_str("<p class=\"muted\">No feeds configured.</p></section>\n");
        return;
    }
    h.push_str("<table><tr><th>feed</th><th>path</th><th class=\"n\">indicators</th><th>by kind</th><th class=\"n\">events matched</th></tr>");
    for f in &r.feeds {
        let kinds = f
            .by_kind
            .iter()
            .map(|(k, n)| format!("{} {}", num(*n as f64), k))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"mono\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            escape(&f.name),
            escape(&f.path),
            num(f.indicators as f64),
            escape(&kinds),
            num(f.matched_events as f64)
        );
    }
    h.push_str("</table></section>\n");
}

fn section_models(h: &mut String, r: &ReportInput) {
    h.push_str("<section id=\"models\"><h2>Models</h2><table><tr><th>table</th><th>model</th><th>kind</th><th>provenance</th><th>threshold</th><th>parameters</th></tr>");
    for a in &r.analyses {
        for m in &a.models {
            let params = m
                .params
                .iter()
                .filter(|(k, _)| k != "note")
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(" · ");
            let notes: String = m
                .params
                .iter()
                .filter(|(k, _)| k == "note")
                .map(|(_, v)| format!("<li>{}</li>", escape(v)))
                .collect();
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}<br><span class=\"muted\">{}</span></td><td><span class=\"mono\">{}</span>{}</td></tr>",
                escape(&a.name),
                escape(&m.name),
                escape(&m.kind),
                escape(&m.provenance),
                m.threshold.map(num).unwrap_or_else(|| "–".into()),
                escape(&m.threshold_rule),
                escape(&params),
                if notes.is_empty() { String::new() } else { format!("<ul class=\"notes\">{notes}</ul>") }
            );
        }
    }
    h.push_str("</table></section>\n");
}

fn section_catalog(h: &mut String, r: &ReportInput) {
    let _ = write!(
        h,
        "<section id=\"catalog\"><h2>Feature catalog</h2><p class=\"lead\">The {} features the models read, with \
         their definitions. Identity fields (IPs, domains, host and user names) group rows and make labels; they are \
         never model inputs.</p><table><tr><th>feature</th><th>set</th><th>type</th><th>definition</th><th>reads</th></tr>",
        r.features.len()
    );
    for f in &r.features {
        let _ = write!(
            h,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            escape(&f.name),
            escape(&f.set),
            escape(&format!("{:?}", f.dtype).to_lowercase()),
            escape(&f.description),
            escape(&f.reads.join(", "))
        );
    }
    h.push_str("</table></section>\n");
}

fn section_run(h: &mut String, r: &ReportInput) {
    h.push_str("<section id=\"run\"><h2>Run</h2><h3>Stages</h3><table><tr><th>stage</th><th>what</th><th class=\"n\">count</th><th class=\"n\">seconds</th></tr>");
    for s in &r.stages {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.2}</td></tr>",
            escape(&s.name),
            escape(&s.detail),
            num(s.count as f64),
            s.seconds
        );
    }
    h.push_str("</table>");
    if !r.outputs.is_empty() {
        h.push_str("<h3>Outputs</h3><table><tr><th>file</th><th>what</th></tr>");
        for (p, what) in &r.outputs {
            let _ = write!(
                h,
                "<tr><td class=\"mono\">{}</td><td>{}</td></tr>",
                escape(p),
                escape(what)
            );
        }
        h.push_str("</table>");
    }
    if !r.notes.is_empty() {
        h.push_str("<h3>Notes</h3>");
        for n in &r.notes {
            let _ = write!(h, "<div class=\"note\">{}</div>", escape(n));
        }
    }
    h.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("plain.example.com"), "plain.example.com");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(1234567.0), "1,234,567");
        assert_eq!(num(-1200.0), "-1,200");
        assert_eq!(num(0.12345), "0.123");
        assert_eq!(num(12.345), "12.35");
        assert_eq!(num(f64::NAN), "–");
    }
}
