//! The synthetic Zeek conn events of the entity benchmarks (shared by the
//! throughput bench and the `entity_phases` example).

use palisade_core::Event;

/// A count-only feature set: the engine's floor.
pub const COUNT_ONLY: &str = "name = \"c\"\nkey = \"source.ip\"\nwindow = \"1h\"\n[[feature]]\nname = \"n\"\nagg = \"count\"\ndescription = \"events per source\"\n";

/// Synthetic: 2,000 sources, 5,000 destinations, 8 ports, events spread over one day.
pub fn flow_events(n: usize) -> Vec<Event> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let ports = [22u16, 53, 80, 443, 445, 3389, 8080, 51234];
    let states = ["SF", "S0", "REJ", "SF", "SF", "RSTO"];
    (0..n)
        .map(|i| {
            let r = next();
            Event {
                timestamp_us: Some(
                    1_521_849_600_000_000 + (i as i64) * (86_400_000_000 / n as i64),
                ),
                source_ip: Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
                    0x0a00_0000 + (r % 2000) as u32,
                ))),
                destination_ip: Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
                    0xc0a8_0000 + ((r >> 16) % 5000) as u32,
                ))),
                destination_port: Some(ports[((r >> 32) % ports.len() as u64) as usize]),
                source_bytes: Some((r >> 40) % 10_000),
                destination_bytes: Some((r >> 20) % 100_000),
                event_duration_ns: Some(((r >> 8) % 10_000_000) as i64),
                network_connection_state: Some(
                    states[((r >> 48) % states.len() as u64) as usize].to_string(),
                ),
                event_dataset: Some("zeek.conn".into()),
                ..Default::default()
            }
        })
        .collect()
}
