//! Challenges: hashcash-style proof of work and image CAPTCHA, with
//! stateless HMAC-signed tokens, and the signed pass cookie a solved
//! challenge earns.
//!
//! Token: `c1.<kind>.<difficulty>.<expires>.<id>.<bind>.<answer-tag>.<mac>`
//! - `bind` = first 16 hex of SHA-256(client IP prefix, user agent): a token
//!   or pass used from another client does not verify;
//! - `answer-tag` (CAPTCHA only) = HMAC of the answer, so the server keeps no
//!   per-challenge state until it is used;
//! - `mac` = HMAC-SHA256 of everything before it (128 bits, hex).
//!
//! Proof of work: find a `nonce` such that SHA-256(`token` ":" `nonce`) has
//! at least `difficulty` leading zero bits. Each token is usable once
//! (seen-set until its expiry: in memory, or in Redis for a fleet).

use crate::policy::ChallengeKind;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

type HmacSha256 = Hmac<Sha256>;

const MAC_HEX: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChallengeError {
    #[error("malformed challenge token")]
    Malformed,
    #[error("challenge token signature is invalid")]
    BadSignature,
    #[error("challenge token expired")]
    Expired,
    #[error("challenge token was issued to a different client")]
    WrongClient,
    #[error("challenge already used")]
    Replayed,
    #[error("wrong answer")]
    WrongAnswer,
    #[error("challenge kind mismatch")]
    WrongKind,
    #[error("replay store unavailable, try again")]
    ReplayStoreFull,
}

/// A parsed, signature-checked token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: ChallengeKind,
    pub difficulty: u8,
    pub expires: u64,
    pub id: String,
    pub bind: String,
    answer_tag: String,
}

/// Signs and checks tokens and passes.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

fn kind_str(k: ChallengeKind) -> &'static str {
    match k {
        ChallengeKind::Pow => "pow",
        ChallengeKind::Captcha => "cap",
    }
}

impl Signer {
    pub fn new(key: &[u8]) -> Self {
        Signer { key: key.to_vec() }
    }

    fn mac_hex(&self, domain: &str, data: &str) -> String {
        // new_from_slice accepts keys of any length for HMAC.
        let mut m = HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        m.update(domain.as_bytes());
        m.update(b"\0");
        m.update(data.as_bytes());
        hex::encode(&m.finalize().into_bytes()[..MAC_HEX / 2])
    }

    fn verify_mac(&self, domain: &str, data: &str, mac_hex: &str) -> bool {
        let Ok(given) = hex::decode(mac_hex) else {
            return false;
        };
        if given.len() != MAC_HEX / 2 {
            return false;
        }
        let mut m = HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        m.update(domain.as_bytes());
        m.update(b"\0");
        m.update(data.as_bytes());
        // Constant-time comparison of the truncated tag.
        m.verify_truncated_left(&given).is_ok()
    }

    /// The client binding: IP prefix and (optionally) user agent.
    pub fn bind(ip_prefix: &str, user_agent: Option<&str>) -> String {
        let mut h = Sha256::new();
        h.update(ip_prefix.as_bytes());
        h.update(b"\n");
        h.update(user_agent.unwrap_or("").as_bytes());
        hex::encode(&h.finalize()[..8])
    }

    fn answer_tag(&self, id: &str, answer: &str) -> String {
        self.mac_hex("answer", &format!("{id}|{}", normalise_answer(answer)))
    }

    /// Issue a challenge token. `answer` is the CAPTCHA text (None for PoW).
    pub fn issue(
        &self,
        kind: ChallengeKind,
        difficulty: u8,
        expires: u64,
        bind: &str,
        answer: Option<&str>,
    ) -> String {
        let id = hex::encode(rand::random::<[u8; 12]>());
        let tag = answer
            .map(|a| self.answer_tag(&id, a))
            .unwrap_or_else(|| "-".into());
        let body = format!(
            "c1.{}.{difficulty}.{expires}.{id}.{bind}.{tag}",
            kind_str(kind)
        );
        let mac = self.mac_hex("challenge", &body);
        format!("{body}.{mac}")
    }

    /// Parse a token and check signature, expiry and binding (not replay).
    pub fn open(&self, token: &str, now: u64, bind: &str) -> Result<Token, ChallengeError> {
        if token.len() > 512 {
            return Err(ChallengeError::Malformed);
        }
        let (body, mac) = token.rsplit_once('.').ok_or(ChallengeError::Malformed)?;
        let parts: Vec<&str> = body.split('.').collect();
        let [ver, kind, diff, exp, id, tbind, tag] = parts.as_slice() else {
            return Err(ChallengeError::Malformed);
        };
        if *ver != "c1" {
            return Err(ChallengeError::Malformed);
        }
        if !self.verify_mac("challenge", body, mac) {
            return Err(ChallengeError::BadSignature);
        }
        let kind = match *kind {
            "pow" => ChallengeKind::Pow,
            "cap" => ChallengeKind::Captcha,
            _ => return Err(ChallengeError::Malformed),
        };
        let difficulty: u8 = diff.parse().map_err(|_| ChallengeError::Malformed)?;
        let expires: u64 = exp.parse().map_err(|_| ChallengeError::Malformed)?;
        if now >= expires {
            return Err(ChallengeError::Expired);
        }
        if *tbind != bind {
            return Err(ChallengeError::WrongClient);
        }
        Ok(Token {
            kind,
            difficulty,
            expires,
            id: id.to_string(),
            bind: tbind.to_string(),
            answer_tag: tag.to_string(),
        })
    }

    /// Check a proof-of-work solution against an opened token.
    pub fn check_pow(&self, raw_token: &str, t: &Token, nonce: &str) -> Result<(), ChallengeError> {
        if t.kind != ChallengeKind::Pow {
            return Err(ChallengeError::WrongKind);
        }
        if nonce.is_empty() || nonce.len() > 64 {
            return Err(ChallengeError::WrongAnswer);
        }
        if leading_zero_bits(&pow_hash(raw_token, nonce)) >= t.difficulty as u32 {
            Ok(())
        } else {
            Err(ChallengeError::WrongAnswer)
        }
    }

    /// Check a CAPTCHA answer against an opened token.
    pub fn check_captcha(&self, t: &Token, answer: &str) -> Result<(), ChallengeError> {
        if t.kind != ChallengeKind::Captcha {
            return Err(ChallengeError::WrongKind);
        }
        if answer.len() > 32 {
            return Err(ChallengeError::WrongAnswer);
        }
        let want = self.answer_tag(&t.id, answer);
        // Constant-time: compare MACs of both.
        if self.verify_mac("tag", &want, &self.mac_hex("tag", &t.answer_tag)) {
            Ok(())
        } else {
            Err(ChallengeError::WrongAnswer)
        }
    }

    /// A pass: `p1.<expires>.<bind>.<mac>`.
    pub fn issue_pass(&self, expires: u64, bind: &str) -> String {
        let body = format!("p1.{expires}.{bind}");
        let mac = self.mac_hex("pass", &body);
        format!("{body}.{mac}")
    }

    /// Whether a pass is genuine, unexpired and for this client.
    pub fn check_pass(&self, pass: &str, now: u64, bind: &str) -> bool {
        if pass.len() > 128 {
            return false;
        }
        let Some((body, mac)) = pass.rsplit_once('.') else {
            return false;
        };
        let mut it = body.split('.');
        let (Some("p1"), Some(exp), Some(b), None) = (it.next(), it.next(), it.next(), it.next())
        else {
            return false;
        };
        let Ok(exp) = exp.parse::<u64>() else {
            return false;
        };
        now < exp && b == bind && self.verify_mac("pass", body, mac)
    }
}

fn normalise_answer(a: &str) -> String {
    a.trim().to_ascii_lowercase()
}

pub fn pow_hash(token: &str, nonce: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(token.as_bytes());
    h.update(b":");
    h.update(nonce.as_bytes());
    h.finalize().into()
}

pub fn leading_zero_bits(h: &[u8]) -> u32 {
    let mut n = 0;
    for &b in h {
        if b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

/// Solve a PoW token (what the browser's script does; used by tests and the bench).
pub fn solve_pow(token: &str, difficulty: u8) -> String {
    let mut i: u64 = 0;
    loop {
        let nonce = i.to_string();
        if leading_zero_bits(&pow_hash(token, &nonce)) >= difficulty as u32 {
            return nonce;
        }
        i += 1;
    }
}

/// Difficulty for a risk score: linear from `min` at the challenge threshold
/// to `max` at the deny threshold.
pub fn difficulty_for(risk: f32, challenge_at: f32, deny_at: f32, min: u8, max: u8) -> u8 {
    let span = (deny_at - challenge_at).max(1e-6);
    let x = ((risk - challenge_at) / span).clamp(0.0, 1.0);
    min + ((max - min) as f32 * x).round() as u8
}

/// A CAPTCHA image and its answer.
pub fn make_captcha() -> Option<(String, Vec<u8>)> {
    captcha::generate(captcha::Difficulty::Medium).as_tuple()
}

/// In-memory seen-set of used challenge ids, each kept until its token expires.
pub struct SeenSet {
    map: Mutex<HashMap<String, u64>>,
    cap: usize,
}

impl SeenSet {
    pub fn new(cap: usize) -> Self {
        SeenSet {
            map: Mutex::new(HashMap::new()),
            cap: cap.max(1),
        }
    }

    /// Record `id` as used; false if it was already used (a replay). When
    /// full even after dropping expired ids, refuses (fails closed) rather
    /// than forgetting ids that could then be replayed.
    pub fn first_use(&self, id: &str, expires: u64, now: u64) -> Result<bool, ChallengeError> {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&exp) = m.get(id) {
            if exp > now {
                return Ok(false);
            }
        }
        if m.len() >= self.cap {
            m.retain(|_, e| *e > now);
            if m.len() >= self.cap {
                return Err(ChallengeError::ReplayStoreFull);
            }
        }
        m.insert(id.to_string(), expires);
        Ok(true)
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer::new(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn pow_round_trip() {
        let s = signer();
        let bind = Signer::bind("192.0.2.1/32", Some("ua"));
        let tok = s.issue(ChallengeKind::Pow, 8, 1_000, &bind, None);
        let t = s.open(&tok, 500, &bind).unwrap();
        assert_eq!(t.difficulty, 8);
        let nonce = solve_pow(&tok, 8);
        s.check_pow(&tok, &t, &nonce).unwrap();
        // A nonce that does not meet the difficulty fails (find one).
        let bad = (0u64..)
            .map(|i| i.to_string())
            .find(|n| leading_zero_bits(&pow_hash(&tok, n)) < 8)
            .unwrap();
        assert_eq!(
            s.check_pow(&tok, &t, &bad),
            Err(ChallengeError::WrongAnswer)
        );
    }

    #[test]
    fn forged_expired_misbound() {
        let s = signer();
        let bind = Signer::bind("192.0.2.1/32", Some("ua"));
        let tok = s.issue(ChallengeKind::Pow, 20, 1_000, &bind, None);
        // Lowering the difficulty breaks the signature.
        let forged = tok.replacen(".20.", ".1.", 1);
        assert_eq!(
            s.open(&forged, 500, &bind),
            Err(ChallengeError::BadSignature)
        );
        // Another key's token.
        let other = Signer::new(b"another-secret-key-xxxxxxxxxxxx").issue(
            ChallengeKind::Pow,
            1,
            1_000,
            &bind,
            None,
        );
        assert_eq!(
            s.open(&other, 500, &bind),
            Err(ChallengeError::BadSignature)
        );
        assert_eq!(s.open(&tok, 1_000, &bind), Err(ChallengeError::Expired));
        let elsewhere = Signer::bind("198.51.100.0/32", Some("ua"));
        assert_eq!(
            s.open(&tok, 500, &elsewhere),
            Err(ChallengeError::WrongClient)
        );
        assert_eq!(
            s.open("garbage", 500, &bind),
            Err(ChallengeError::Malformed)
        );
        assert_eq!(
            s.open("a.b.c.d.e.f.g.h", 500, &bind),
            Err(ChallengeError::Malformed)
        );
    }

    #[test]
    fn captcha_answers() {
        let s = signer();
        let bind = Signer::bind("x", None);
        let tok = s.issue(ChallengeKind::Captcha, 0, 1_000, &bind, Some("AbC12"));
        let t = s.open(&tok, 1, &bind).unwrap();
        assert!(s.check_captcha(&t, " abc12 ").is_ok());
        assert_eq!(
            s.check_captcha(&t, "abc13"),
            Err(ChallengeError::WrongAnswer)
        );
        assert_eq!(s.check_pow(&tok, &t, "1"), Err(ChallengeError::WrongKind));
    }

    #[test]
    fn captcha_image_generated() {
        let (answer, png) = make_captcha().unwrap();
        assert!((4..=6).contains(&answer.len()), "{answer}");
        assert_eq!(&png[1..4], b"PNG");
    }

    #[test]
    fn passes() {
        let s = signer();
        let bind = Signer::bind("192.0.2.1/32", Some("ua"));
        let p = s.issue_pass(100, &bind);
        assert!(s.check_pass(&p, 99, &bind));
        assert!(!s.check_pass(&p, 100, &bind));
        assert!(!s.check_pass(&p, 1, &Signer::bind("192.0.2.2/32", Some("ua"))));
        assert!(!s.check_pass(&p.replace("p1.100.", "p1.999."), 1, &bind));
        assert!(!s.check_pass("p1.5", 1, &bind));
    }

    #[test]
    fn seen_set_replay_and_bound() {
        let set = SeenSet::new(2);
        assert_eq!(set.first_use("a", 10, 0), Ok(true));
        assert_eq!(set.first_use("a", 10, 1), Ok(false));
        assert_eq!(set.first_use("b", 20, 1), Ok(true));
        assert_eq!(
            set.first_use("c", 20, 2),
            Err(ChallengeError::ReplayStoreFull)
        );
        // After a's expiry there is room, and a's id cannot be replayed
        // anyway because its token has expired.
        assert_eq!(set.first_use("c", 20, 11), Ok(true));
    }

    #[test]
    fn difficulty_scales_with_risk() {
        assert_eq!(difficulty_for(0.6, 0.6, 0.9, 10, 20), 10);
        assert_eq!(difficulty_for(0.9, 0.6, 0.9, 10, 20), 20);
        assert_eq!(difficulty_for(0.75, 0.6, 0.9, 10, 20), 15);
        assert_eq!(difficulty_for(2.0, 0.6, 0.9, 10, 20), 20);
    }
}
