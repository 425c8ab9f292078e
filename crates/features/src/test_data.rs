//! Real URLs for the equivalence tests of the fast paths.

/// The URLs of ../shared/data/url-phishcrawl/dev.csv (the bench data) when
/// present, else none; tests add their own edge cases either way.
pub(crate) fn dev_urls() -> Vec<String> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/url-phishcrawl/dev.csv");
    std::fs::read_to_string(p)
        .map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|l| {
                    l.rsplit_once(',')
                        .map(|(u, _)| u.trim_matches('"').to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Hand-made URLs that reach the corners of the URL splitting and features.
pub(crate) const EDGE_URLS: &[&str] = &[
    "http://bcdAEx12345.iou/ZZ?k=v&k=v&",
    "",
    "9.9.9.9/a b",
    "é",
    "https://a.b.Example.co.uk",
    "https://user:pw@www.Example.co.uk:8443/a//b/c.php?x=1&y=/2#frag",
    "http://[2001:db8::1]:80/x?",
    "http://[2001:db8::1/x",
    "2001:db8::1",
    "http://a@b@c:12:34/",
    "http://h:/p",
    "/index.html?q=1",
    "example.com:443",
    "http://host./",
    "a/b://c",
    "1http://x/",
    "ht+tp.x-y://x/#a?b",
    "x://",
    "://x",
    "http:/x",
    "http://x?y#z?w",
    "http://x#y/z",
    "HTTP://WWW.EXAMPLE.COM./A",
    "http://192.168.0.1:8080/",
    "http://[::1]/",
    "http://00:00/",
    "HTTPS://X.Y/",
    "httpsx://y/",
    "http:://y/",
    "https:/",
];
