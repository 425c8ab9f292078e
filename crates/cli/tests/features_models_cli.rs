//! `palisade features …` and `palisade train / score / eval` end to end, as a
//! user's script calls them: the commands, flags and output fields named in
//! the features and outlier-detection issues.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn palisade() -> Command {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ingest/tests/fixtures")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    palisade().args(args).output().expect("run palisade")
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "palisade {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A CSV file as a header and rows of cells (no quoting in what we read).
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).expect("read csv");
    let mut lines = text.lines();
    let header = lines
        .next()
        .expect("header")
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn cell<'a>(header: &[String], row: &'a [String], name: &str) -> &'a str {
    let j = header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    &row[j]
}

fn num(header: &[String], row: &[String], name: &str) -> f64 {
    cell(header, row, name)
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number"))
}

#[test]
fn features_list_json_documents_both_published_sets() {
    let out = ok(&["features", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let list = list.as_array().expect("an array");
    let in_set = |set: &str| -> Vec<&serde_json::Value> {
        list.iter().filter(|f| f["set"] == set).collect()
    };
    // Siddiqui et al.: 23 per-host counts; Franc et al.: 28 + 7 beyond the paper.
    assert_eq!(in_set("host").len(), 23);
    assert_eq!(in_set("request").len(), 35);
    for f in list {
        let d = f["description"].as_str().unwrap_or_default();
        assert!(d.len() > 20, "{} has no real definition", f["name"]);
    }
    // every per-request and per-host feature names the event fields it reads
    for f in in_set("request").into_iter().chain(in_set("host")) {
        assert!(f["reads"].as_array().is_some_and(|r| !r.is_empty()), "{f}");
    }
    for name in [
        "SuccessfulLogonRDPPortCount",
        "NtlmCount",
        "DistinctSourceIPCount",
    ] {
        assert!(in_set("host").iter().any(|f| f["name"] == name), "{name}");
    }
    // Identity fields never become features.
    for f in list {
        let n = f["name"].as_str().unwrap_or_default();
        assert!(!["source.ip", "url.domain", "user_agent.original"].contains(&n));
    }
}

#[test]
fn features_request_on_a_url_column_carries_the_label_and_computes_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("urls.csv");
    std::fs::write(
        &input,
        "url,label\nhttp://example.com/a1b2,0\nhttps://192.168.1.1/login.php?user=admin&pw=x&go=1,1\n",
    )
    .expect("write");
    let out = dir.path().join("features.csv");
    ok(&[
        "features",
        "request",
        "--in",
        input.to_str().unwrap_or_default(),
        "--column",
        "url",
        "--out",
        out.to_str().unwrap_or_default(),
    ]);
    let (h, rows) = read_csv(&out);
    assert_eq!(rows.len(), 2);
    assert!(h.iter().any(|c| c == "label"));
    // A URL column gives the URL-only part of the request set: no
    // transaction features are made up for it.
    assert!(!h.iter().any(|c| c == "http_status" || c == "bytes_up"));
    // "example.com/a1b2": 16 bytes, 2 digits
    assert!((num(&h, &rows[0], "digit_ratio") - 2.0 / 16.0).abs() < 1e-9);
    assert_eq!(num(&h, &rows[0], "url_length"), 16.0);
    assert_eq!(num(&h, &rows[0], "sld_is_ip"), 0.0);
    assert_eq!(num(&h, &rows[1], "sld_is_ip"), 1.0);
    // '&' twice and '=' three times: several key=value parameters
    assert_eq!(num(&h, &rows[1], "has_amp_eq_repetition"), 1.0);
    assert_eq!(num(&h, &rows[0], "has_amp_eq_repetition"), 0.0);
    assert_eq!(cell(&h, &rows[1], "label"), "1");
}

#[test]
fn features_host_on_windows_events_counts_logons_and_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("hosts.csv");
    ok(&[
        "features",
        "host",
        "--in",
        fixture("otrf_covenant_excerpt.jsonl")
            .to_str()
            .unwrap_or_default(),
        "--format",
        "windows-json",
        "--out",
        out.to_str().unwrap_or_default(),
    ]);
    let (h, rows) = read_csv(&out);
    assert!(!rows.is_empty());
    for id in ["entity", "window_start", "window_end"] {
        assert!(h.iter().any(|c| c == id), "identity column {id}");
    }
    // The excerpt: two 4624 logons, three 5156 allowed and one 5157 blocked
    // connections, on its hosts; every count is a whole number ≥ 0.
    let total = |name: &str| -> f64 { rows.iter().map(|r| num(&h, r, name)).sum() };
    let logons: f64 = h
        .iter()
        .filter(|c| c.starts_with("SuccessfulLogonType"))
        .map(|c| total(c))
        .sum();
    assert_eq!(logons, 2.0);
    assert!(total("DistinctDestinationIPCount") >= 1.0);
}

#[test]
fn features_read_a_raw_json_log_without_format() {
    // A `.jsonl` that is a Windows JSON log, not `palisade ingest` output: it
    // was read as events with no known field, and gave no rows at all.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("hosts.csv");
    let input = fixture("otrf_covenant_excerpt.jsonl");
    let o = run(&[
        "features",
        "host",
        "--in",
        input.to_str().unwrap_or_default(),
        "--out",
        out.to_str().unwrap_or_default(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("windows-json"));
    let (h, rows) = read_csv(&out);
    let logons: f64 = h
        .iter()
        .filter(|c| c.starts_with("SuccessfulLogonType"))
        .map(|c| rows.iter().map(|r| num(&h, r, c)).sum::<f64>())
        .sum();
    assert_eq!(logons, 2.0);
}

#[test]
fn features_request_on_a_zeek_json_ssl_log() {
    let log = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/zeek-wrccdc-2018/json/ssl.json.gz");
    if !log.exists() {
        eprintln!("SKIPPED: {} absent", log.display());
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("ssl.csv");
    ok(&[
        "features",
        "request",
        "--in",
        log.to_str().unwrap_or_default(),
        "--out",
        out.to_str().unwrap_or_default(),
    ]);
    let (h, rows) = read_csv(&out);
    assert_eq!(rows.len(), 49_474, "one row per ssl.log line");
    // TLS seen by SNI alone: the host is the server name, the URL is encrypted
    let with_sni: Vec<_> = rows
        .iter()
        .filter(|r| !cell(&h, r, "host").is_empty())
        .collect();
    assert!(with_sni.len() > 10_000, "{} rows with SNI", with_sni.len());
    for r in &with_sni {
        assert_eq!(num(&h, r, "url_encrypted"), 1.0);
        assert!(num(&h, r, "host_entropy") > 0.0);
    }
    assert!(rows.iter().all(|r| !cell(&h, r, "source.ip").is_empty()));

    // events are read 4,096 at a time; a chunk (row group) of 17 × 256 rows
    // cuts batches in two: every row still comes once, in order
    let chunked = dir.path().join("ssl-chunked.csv");
    let o = palisade()
        .args(["features", "request", "--in"])
        .arg(&log)
        .arg("--out")
        .arg(&chunked)
        .env("PALISADE_FEATURES_CHUNK", "4352")
        .output()
        .expect("run palisade");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (hc, rc) = read_csv(&chunked);
    // (a chunked table keeps its empty label column)
    let j = hc.iter().position(|c| c == "labels.source_label");
    assert!(j.is_some() && !h.contains(&"labels.source_label".to_string()));
    let rc: Vec<Vec<String>> = rc
        .into_iter()
        .map(|mut r| {
            if let Some(j) = j {
                assert!(r.remove(j).is_empty(), "labels made up");
            }
            r
        })
        .collect();
    assert_eq!(rc.len(), rows.len());
    assert!(rc == rows, "chunked rows differ");
}

#[test]
fn features_refuse_json_that_is_neither_events_nor_a_known_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("odd.jsonl");
    std::fs::write(&input, "{\"foo\": 1}\n").expect("write");
    let o = run(&[
        "features",
        "request",
        "--in",
        input.to_str().unwrap_or_default(),
        "--out",
        dir.path().join("o.csv").to_str().unwrap_or_default(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("odd.jsonl") && err.contains("line 1"), "{err}");
    assert!(!dir.path().join("o.csv").exists());
}

#[test]
fn train_score_eval_round_trip_with_explanations_and_json_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = dir.path().join("t.csv");
    // An interface test, not an accuracy claim: a dense blob and 10 far
    // points, labelled; an identity column that must not become a feature.
    let mut csv = String::from("host,a,b,c,label\n");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..600 {
        let mut r = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 1000) as f64 / 1000.0
        };
        let far = i % 60 == 7;
        let k = if far { 8.0 } else { 0.0 };
        csv.push_str(&format!(
            "h{i},{},{},{},{}\n",
            r() + k,
            r() - k,
            r(),
            u8::from(far)
        ));
    }
    std::fs::write(&table, csv).expect("write");
    let t = table.to_str().unwrap_or_default();
    for kind in ["iforest", "pca", "autoencoder", "ensemble"] {
        let model = dir.path().join(format!("{kind}.json"));
        let m = model.to_str().unwrap_or_default();
        let o = run(&[
            "train", "--model", kind, "--in", t, "--out", m, "--seed", "3",
        ]);
        assert!(
            o.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        // says which columns were left out; the `label` column is the label
        // without --label-col (never a feature)
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("host"), "{kind}: {err}");
        assert!(err.contains("label (label)"), "{kind}: {err}");
        let scores = dir.path().join(format!("{kind}.scores.csv"));
        ok(&[
            "score",
            "--model",
            m,
            "--in",
            t,
            "--out",
            scores.to_str().unwrap_or_default(),
            "--explain",
            "2",
        ]);
        let (h, rows) = read_csv(&scores);
        assert_eq!(rows.len(), 600);
        let top1 = cell(&h, &rows[7], "top1_feature");
        assert!(
            ["a", "b"].contains(&top1),
            "{kind}: far point explained by {top1}"
        );
        let json = ok(&["eval", "--model", m, "--in", t, "--json"]);
        let v: serde_json::Value = serde_json::from_str(&json).expect("eval JSON");
        let auc = v["roc_auc"].as_f64().expect("roc_auc");
        assert!(v["pr_auc"].as_f64().is_some());
        assert!(auc > 0.95, "{kind}: {auc}");
    }
    // A table without a feature the model was trained on: a clear error.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "host,a,b,label\nh1,0.1,0.2,0\n").expect("write");
    let o = run(&[
        "score",
        "--model",
        dir.path().join("iforest.json").to_str().unwrap_or_default(),
        "--in",
        bad.to_str().unwrap_or_default(),
        "--out",
        dir.path().join("x.csv").to_str().unwrap_or_default(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    // names the table and the missing column (a bare `contains('c')` could
    // not fail: almost any message has a `c`)
    assert!(err.contains("bad.csv"), "{err}");
    assert!(err.contains("the model was trained on: c"), "{err}");
}

/// The quickstart's real Zeek logs (in the repository).
fn quickstart_logs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart/logs")
}

/// `palisade features` reads a long input a chunk of events at a time and
/// writes the table chunk by chunk; `PALISADE_FEATURES_CHUNK` makes the
/// chunks small here. On the quickstart's real Zeek logs (3,060 ssl, 3,195
/// dns, 290 rdp records) the chunked table must equal the one-chunk table row
/// for row, for the per-event sets and the windowed ones, from a raw log
/// and from event files (JSON lines, Parquet). Only difference allowed: a
/// chunked request table keeps the label column even when it is empty (its
/// columns cannot wait for the last chunk).
#[test]
fn features_chunked_equal_features_whole_on_real_logs() {
    let logs = quickstart_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let ssl = logs.join("ssl.log.gz");
    let mut event_files = Vec::new();
    for ext in ["jsonl", "parquet"] {
        let out = dir.path().join(format!("ssl-events.{ext}"));
        ok(&[
            "ingest",
            ssl.to_str().unwrap_or_default(),
            "--out",
            out.to_str().unwrap_or_default(),
        ]);
        event_files.push(out);
    }
    let s = |p: &Path| p.to_str().unwrap_or_default().to_string();
    let cases: Vec<(&str, String, Vec<&str>, usize)> = vec![
        ("request", s(&ssl), vec![], 3_060),
        ("request", s(&event_files[0]), vec![], 3_060),
        ("request", s(&event_files[1]), vec![], 3_060),
        ("domain", s(&logs.join("dns.log.gz")), vec![], 3_195),
        ("host", s(&logs.join("rdp.log.gz")), vec![], 0),
        ("entity", s(&ssl), vec!["--set", "flow"], 0),
    ];
    for (i, (set, input, extra, want_rows)) in cases.iter().enumerate() {
        let whole = dir.path().join(format!("{i}-whole.csv"));
        let chunked = dir.path().join(format!("{i}-chunked.csv"));
        for (out, chunk) in [(&whole, None), (&chunked, Some("256"))] {
            let mut cmd = palisade();
            cmd.args(["features", set, "--in", input, "--out"])
                .arg(out)
                .args(extra);
            if let Some(c) = chunk {
                cmd.env("PALISADE_FEATURES_CHUNK", c);
            }
            let o = cmd.output().expect("run palisade features");
            assert!(
                o.status.success(),
                "{set} {input}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let (hw, rw) = read_csv(&whole);
        let (mut hc, mut rc) = read_csv(&chunked);
        if let Some(j) = hc.iter().position(|h| h == "labels.source_label") {
            if !hw.contains(&hc[j]) {
                assert!(rc.iter().all(|r| r[j].is_empty()), "{set}: labels made up");
                hc.remove(j);
                rc.iter_mut().for_each(|r| {
                    r.remove(j);
                });
            }
        }
        assert_eq!(hc, hw, "{set} {input}: columns");
        if *want_rows > 0 {
            assert_eq!(rw.len(), *want_rows, "{set} {input}: one row per line");
        } else {
            assert!(!rw.is_empty(), "{set} {input}: no rows");
        }
        assert_eq!(rc.len(), rw.len(), "{set} {input}: rows");
        for (k, (a, b)) in rc.iter().zip(&rw).enumerate() {
            assert_eq!(a, b, "{set} {input}: row {k}");
        }
    }
}

#[test]
fn features_refuse_a_chunk_size_the_engine_cannot_take() {
    let logs = quickstart_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x.csv");
    let o = palisade()
        .args(["features", "request", "--in"])
        .arg(logs.join("ssl.log.gz"))
        .arg("--out")
        .arg(&out)
        .env("PALISADE_FEATURES_CHUNK", "100")
        .output()
        .expect("run palisade");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("PALISADE_FEATURES_CHUNK=100"), "{err}");
    assert!(!out.exists(), "no half-written output");
}

/// `train --help` states the autoencoder's defaults; they must be the ones
/// its trainer uses (the help once said 64 / 50 / 256 / 200000 where the
/// trainer used 64,32 / 10 / 32 / 10000).
#[test]
fn train_help_states_the_autoencoder_defaults_the_trainer_uses() {
    use palisade_models::autoencoder as ae;
    let help = ok(&["train", "--help"]);
    let hidden = ae::DEFAULT_HIDDEN.map(|w| w.to_string()).join(",");
    for (what, default) in [
        ("autoencoder: hidden widths", hidden),
        (
            "autoencoder: maximum epochs",
            ae::DEFAULT_EPOCHS.to_string(),
        ),
        (
            "autoencoder: mini-batch size",
            ae::DEFAULT_BATCH_SIZE.to_string(),
        ),
        (
            "autoencoder: early-stopping patience",
            ae::DEFAULT_PATIENCE.to_string(),
        ),
        (
            "autoencoder: train on at most",
            ae::DEFAULT_MAX_TRAIN.to_string(),
        ),
    ] {
        let line = help
            .lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("`{what}` not in train --help:\n{help}"));
        assert!(
            line.contains(&format!("({default})")),
            "{line}: default {default}"
        );
    }
}

/// `features entity --set request` names the entity sets there are (it once
/// listed `request` among them while refusing it).
#[test]
fn features_entity_refuses_a_per_request_set_and_names_the_entity_sets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("f.csv");
    let o = run(&[
        "features",
        "entity",
        "--set",
        "request",
        "--in",
        fixture("apache_combined.log").to_str().expect("utf-8 path"),
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("unknown entity feature set `request`"),
        "{err}"
    );
    assert!(err.contains("built in: host, flow;"), "{err}");
    assert!(err.contains("palisade features request"), "{err}");
}

/// `features domain` on a log without domain names says so (it once wrote
/// rows of missing values without a word).
#[test]
fn features_domain_warns_when_no_event_has_the_fields_it_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("d.csv");
    let o = run(&[
        "features",
        "domain",
        "--in",
        fixture("apache_combined.log").to_str().expect("utf-8 path"),
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    let (_, rows) = read_csv(&out);
    assert!(!rows.is_empty());
    assert!(
        err.contains(&format!(
            "warning: {n} of {n} rows have no value in any feature column",
            n = rows.len()
        )),
        "{err}"
    );
}

/// Without a threshold flag, the supervised kinds take a 1% false-positive
/// rate on their held-out rows and the outlier detectors the top 1% of
/// training scores (gbt once took the latter too: on PhishCrawl, 45%
/// positive, it flagged 2% of the phishing URLs).
#[test]
fn train_chooses_a_threshold_rule_by_kind_when_none_is_asked_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = dir.path().join("t.csv");
    let mut csv = String::from("a,b,label\n");
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..400 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let pos = i % 3 == 0;
        let a = (x % 1000) as f64 / 1000.0 + if pos { 0.6 } else { 0.0 };
        csv.push_str(&format!("{a},{},{}\n", (x >> 20) % 7, u8::from(pos)));
    }
    std::fs::write(&table, csv).expect("write");
    let t = table.to_str().unwrap_or_default();
    for (kind, rule) in [("gbt", "fpr<=0.01"), ("iforest", "contamination=0.01")] {
        let model = dir.path().join(format!("{kind}.json"));
        let o = run(&[
            "train",
            "--model",
            kind,
            "--in",
            t,
            "--out",
            model.to_str().unwrap_or_default(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{kind}: {err}");
        let line = err
            .lines()
            .find(|l| l.starts_with("threshold:"))
            .unwrap_or_default();
        assert!(line.contains(rule), "{kind}: {line}\n{err}");
    }
}

/// A flag the command does not use is refused, naming it, instead of being
/// accepted and ignored (`features request --window 1h` wrote the same
/// table as without it).
#[test]
fn features_refuse_flags_they_do_not_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("t.csv");
    let log = fixture("apache_combined.log");
    let (log, out) = (log.to_string_lossy(), out.to_string_lossy());
    for (cmd, extra, flag) in [
        ("request", vec!["--window", "1h"], "--window"),
        ("domain", vec!["--set", "flow"], "--set"),
        ("host", vec!["--config", "x.toml"], "--config"),
        (
            "entity",
            vec!["--set", "flow", "--column", "url"],
            "--column",
        ),
        ("request", vec!["--label", "label"], "--label"),
    ] {
        let mut args = vec!["features", cmd, "--in", &log, "--out", &out];
        args.extend(&extra);
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(
            err.contains(&format!("features {cmd}` takes no {flag}")),
            "{args:?}: {err}"
        );
    }
    // the flags each command does use still work
    ok(&[
        "features", "entity", "--set", "flow", "--window", "10m", "--in", &log, "--out", &out,
    ]);
}

/// A feed's malformed lines are reported once, with the first one's file
/// and line (they were reported twice: palisade-intel's warning and a
/// line of the command's own).
#[test]
fn intel_stats_reports_a_feeds_malformed_lines_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let feed = dir.path().join("ips.txt");
    std::fs::write(
        &feed,
        "198.51.100.7\nnot an indicator at all\n203.0.113.9\n",
    )
    .expect("write feed");
    let o = run(&["intel", "stats", "--feed", &feed.to_string_lossy()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(err.matches("malformed lines skipped").count(), 1, "{err}");
    assert!(err.contains("ips.txt:2"), "names the first: {err}");
}
