//! The shipped example policy parses and builds a gate.

#[test]
fn example_policy_loads() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/gate/gate.toml");
    // Without the secrets it names the missing variable.
    let e = palisade_gate::Policy::load(&path).unwrap_err().to_string();
    assert!(e.contains("PALISADE_GATE_ADMIN_TOKEN"), "{e}");
    // This test binary is single-threaded at this point; setting env is safe.
    std::env::set_var("PALISADE_GATE_ADMIN_TOKEN", "example-admin-token-123");
    std::env::set_var("PALISADE_GATE_SECRET", "example-secret-0123456789");
    let p = palisade_gate::Policy::load(&path).unwrap();
    assert_eq!(p.limits.len(), 4);
    let tok = p.limits.iter().find(|l| l.name == "api-token").unwrap();
    assert_eq!(tok.overrides["tok_enterprise_123"].burst, 1000);
    let gate = palisade_gate::Gate::new(p, &palisade_gate::Stores::default()).unwrap();
    assert_eq!(gate.scorer_name(), "linear");
}
