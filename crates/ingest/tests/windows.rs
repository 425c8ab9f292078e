//! Windows readers: EVTX-ATTACK-SAMPLES (.evtx and its python-evtx JSON export;
//! GPL-3.0, read from ../shared/data) and OTRF Security-Datasets (MIT).

mod common;
use common::*;
use palisade_core::Event;
use palisade_ingest::Format;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const LOGON_IDS: [u32; 12] = [
    4624, 4625, 4634, 4648, 4672, 4768, 4769, 4771, 4776, 4778, 4779, 5156,
];

fn files_under(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

/// The facts about a logon event both encodings must agree on.
type Key = (
    Option<u64>,
    Option<u32>,
    Option<u32>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<u16>,
);

fn key(e: &Event) -> Key {
    (
        e.winlog_record_id,
        e.winlog_event_id,
        e.winlog_logon_type,
        e.winlog_authentication_package.clone(),
        e.source_ip.map(|i| i.to_string()),
        e.user_name.clone(),
        e.host_name.clone(),
        e.source_port,
    )
}

#[test]
fn evtx_and_its_json_export_give_the_same_logon_events() {
    let Some(root) = data("windows-evtx-attack-samples/evtx") else {
        return;
    };
    let mut evtx_files = Vec::new();
    files_under(&root, "evtx", &mut evtx_files);
    assert_eq!(evtx_files.len(), 103);
    let mut compared = 0usize;
    let mut per_id: BTreeMap<u32, usize> = BTreeMap::new();
    for f in &evtx_files {
        let rel = f.strip_prefix(&root).expect("under root");
        let json = data_dir()
            .join("windows-evtx-attack-samples/jsonl")
            .join(rel.with_extension("jsonl"));
        let (a, sa) = read(f, None);
        assert_eq!(sa.format, Some(Format::Evtx));
        let (b, sb) = read(&json, None);
        assert_eq!(sb.format, Some(Format::WindowsJson), "{}", json.display());
        assert_eq!(sb.skipped_total(), 0, "{sb}");
        let pick = |v: &[Event]| -> Vec<Key> {
            let mut k: Vec<Key> = v
                .iter()
                .filter(|e| {
                    e.winlog_event_id.is_some_and(|id| LOGON_IDS.contains(&id))
                        && e.winlog_channel.as_deref() == Some("Security")
                })
                .map(key)
                .collect();
            k.sort();
            k
        };
        let (ka, kb) = (pick(&a), pick(&b));
        // python-evtx converts FILETIME through floats: times agree to a few µs
        for e in b
            .iter()
            .filter(|e| e.winlog_event_id.is_some_and(|id| LOGON_IDS.contains(&id)))
        {
            let twin = a
                .iter()
                .find(|x| x.winlog_record_id == e.winlog_record_id)
                .expect("same record in .evtx");
            let (ta, tb) = (
                twin.timestamp_us.unwrap_or(0),
                e.timestamp_us.unwrap_or(i64::MAX),
            );
            assert!(
                (ta - tb).abs() <= 10,
                "{}: record {:?} times {ta} vs {tb}",
                rel.display(),
                e.winlog_record_id
            );
        }
        // python-evtx skips records it cannot parse; the evtx crate may read more
        for k in &kb {
            assert!(
                ka.contains(k),
                "{}: JSON logon event {k:?} not found in the .evtx reading",
                rel.display()
            );
        }
        compared += kb.len();
        for k in &kb {
            *per_id.entry(k.1.unwrap_or(0)).or_default() += 1;
        }
    }
    // counts from the dataset's SOURCE.md
    assert_eq!(per_id.get(&4624), Some(&87));
    assert_eq!(per_id.get(&4648), Some(&7));
    assert_eq!(per_id.get(&4768), Some(&11));
    assert_eq!(per_id.get(&4776), Some(&12));
    assert!(compared > 140, "{compared}");
}

#[test]
fn evtx_logon_field_values() {
    let Some(p) =
        data("windows-evtx-attack-samples/evtx/Command and Control/DE_RDP_Tunneling_4624.evtx")
    else {
        return;
    };
    let (ev, _) = read(&p, None);
    let first = ev
        .iter()
        .find(|e| e.winlog_event_id == Some(4624))
        .expect("a 4624");
    assert_eq!(first.winlog_logon_type, Some(5));
    assert_eq!(
        first.winlog_authentication_package.as_deref(),
        Some("Negotiate")
    );
    assert_eq!(first.user_name.as_deref(), Some("SYSTEM"));
    assert_eq!(first.user_domain.as_deref(), Some("NT AUTHORITY"));
    assert_eq!(first.host_name.as_deref(), Some("PC02.example.corp"));
    assert_eq!(first.event_outcome.as_deref(), Some("success"));
    assert_eq!(first.event_dataset.as_deref(), Some("windows.security"));
    assert_eq!(first.winlog_record_id, Some(5278), "EventRecordID");
    assert_eq!(first.source_ip, None, "`-` is unset");
    // RDP tunnelling: a type-10 logon from loopback
    let rdp = ev
        .iter()
        .find(|e| e.winlog_logon_type == Some(10))
        .expect("an RDP logon");
    assert!(rdp.source_ip.is_some(), "{rdp:?}");
    // WorkstationName, the client's name for itself, is source.domain
    // (the file's 18 records: PC02 4 times, PC01 twice, `-` once)
    let named = |n: &str| {
        ev.iter()
            .filter(|e| e.source_domain.as_deref() == Some(n))
            .count()
    };
    assert_eq!((named("PC02"), named("PC01")), (4, 2));
    assert_eq!(ev.iter().filter(|e| e.source_domain.is_some()).count(), 6);
    assert!(ev
        .iter()
        .all(|e| e.host_name.as_deref() == Some("PC02.example.corp")));
}

#[test]
fn sysmon_3_and_wfp_5156() {
    let Some(p) = data("windows-evtx-attack-samples/evtx/Lateral Movement/LM_sysmon_3_DCOM_ShellBrowserWindow_ShellWindows.evtx") else { return };
    let (ev, _) = read(&p, None);
    let s3 = ev
        .iter()
        .find(|e| {
            e.winlog_event_id == Some(3) && e.event_dataset.as_deref() == Some("windows.sysmon")
        })
        .expect("Sysmon 3");
    assert_eq!(s3.source_ip, "10.0.2.16".parse().ok());
    assert_eq!(s3.source_port, Some(49158));
    assert_eq!(s3.destination_ip, "10.0.2.17".parse().ok());
    assert_eq!(s3.destination_port, Some(58172));
    assert_eq!(s3.network_transport.as_deref(), Some("tcp"));
    assert_eq!(s3.network_direction.as_deref(), Some("ingress"));
    assert_eq!(s3.user_name.as_deref(), Some("IEUser"));
    assert_eq!(s3.user_domain.as_deref(), Some("IEWIN7"));

    let Some(p) =
        data("windows-evtx-attack-samples/jsonl/Command and Control/DE_RDP_Tunnel_5156.jsonl")
    else {
        return;
    };
    let (ev, _) = read(&p, None);
    let c = ev
        .iter()
        .find(|e| e.winlog_event_id == Some(5156))
        .expect("5156");
    assert_eq!(c.source_ip, "fe80::80ac:4126:fa58:1b81".parse().ok());
    assert_eq!(c.destination_port, Some(547));
    assert_eq!(c.network_transport.as_deref(), Some("udp"));
    assert_eq!(c.network_direction.as_deref(), Some("egress"));
    assert_eq!(c.event_outcome.as_deref(), Some("success"));
}

/// Every Sysmon event with a `User` names it (process creation here), not
/// only network connections (event 3).
#[test]
fn sysmon_process_creation_names_the_user() {
    let Some(p) = data("windows-evtx-attack-samples/jsonl/Lateral Movement/LM_impacket_docmexec_mmc_sysmon_01.jsonl") else { return };
    let (ev, _) = read(&p, None);
    let created: Vec<_> = ev
        .iter()
        .filter(|e| {
            e.winlog_event_id == Some(1) && e.event_dataset.as_deref() == Some("windows.sysmon")
        })
        .collect();
    assert!(!created.is_empty(), "Sysmon 1 events");
    assert_eq!(created[0].user_name.as_deref(), Some("IEUser"));
    assert_eq!(created[0].user_domain.as_deref(), Some("IEWIN7"));
}

#[test]
fn otrf_winlogbeat_style_json() {
    let Some(p) = data("windows-otrf-security-datasets/lateral_movement/host/covenant_sharpsc_query_dcerpc_smb_svcctl.jsonl") else { return };
    let (ev, s) = read(&p, None);
    assert_eq!(s.format, Some(Format::WindowsJson));
    assert_eq!(s.skipped_total(), 0, "{s}");
    let count = |id: u32| {
        ev.iter()
            .filter(|e| {
                e.winlog_event_id == Some(id) && e.winlog_channel.as_deref() == Some("Security")
            })
            .count()
    };
    assert_eq!(count(4624), 5);
    assert_eq!(count(5156), 53);
    assert_eq!(count(5157), 5);
    let wfp = ev
        .iter()
        .find(|e| e.winlog_event_id == Some(5156))
        .expect("5156");
    assert!(
        wfp.source_ip.is_some() && wfp.destination_ip.is_some() && wfp.destination_port.is_some(),
        "{wfp:?}"
    );
    assert_eq!(wfp.network_transport.as_deref(), Some("tcp"));
    assert!(wfp.timestamp_us.is_some());
    assert_eq!(
        wfp.host_name.as_deref(),
        Some("WORKSTATION5.theshire.local")
    );
    let logon = ev
        .iter()
        .find(|e| e.winlog_event_id == Some(4624))
        .expect("4624");
    assert!(logon.winlog_logon_type.is_some());
    assert!(logon.winlog_authentication_package.is_some());
    let sysmon3 = ev
        .iter()
        .filter(|e| {
            e.winlog_event_id == Some(3) && e.event_dataset.as_deref() == Some("windows.sysmon")
        })
        .count();
    assert_eq!(sysmon3, 12);
}

#[test]
fn winlogbeat_ecs_shape() {
    let line = r#"{"@timestamp":"2024-05-01T10:00:00.123Z","host":{"name":"dc01"},"winlog":{"channel":"Security","event_id":4625,"computer_name":"dc01.corp.local","event_data":{"TargetUserName":"bob","TargetDomainName":"CORP","LogonType":"3","AuthenticationPackageName":"NTLM","IpAddress":"::ffff:192.0.2.7","IpPort":"51515","Status":"0xc000006d"}}}"#;
    let (ev, s) = read_text("winlogbeat.json", line, None);
    assert_eq!(s.format, Some(Format::WindowsJson));
    let e = &ev[0];
    assert_eq!(e.winlog_event_id, Some(4625));
    assert_eq!(e.event_outcome.as_deref(), Some("failure"));
    assert_eq!(e.winlog_logon_type, Some(3));
    assert_eq!(e.winlog_authentication_package.as_deref(), Some("NTLM"));
    assert_eq!(e.source_ip, "192.0.2.7".parse().ok());
    assert_eq!(e.source_port, Some(51515));
    assert_eq!(e.user_name.as_deref(), Some("bob"));
    assert_eq!(e.host_name.as_deref(), Some("dc01.corp.local"));
    assert_eq!(e.winlog_status.as_deref(), Some("0xc000006d"));
    assert_eq!(e.timestamp_us, Some(1_714_557_600_123_000));
}
