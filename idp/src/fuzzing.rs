//! Fuzz harnesses ("no input panics the server"): one
//! function per parser that feeds it arbitrary bytes and asserts what it
//! can about the answer. The cargo-fuzz targets in `fuzz/` call these under
//! libFuzzer (feature `fuzzing`); the `tests` module below runs the same
//! functions on a few thousand seeded pseudo-random and mutated inputs in
//! every `cargo test`, so a regression shows in CI without libFuzzer.
//!
//! Multi-field inputs are split at `0xFF` (never part of UTF-8 text), so a
//! mutation can move bytes between fields.
use crate::clock::Clock;
use crate::config::{Config, TokenConfig};
use crate::crypto::jws::{self, Alg, PublicKey};
use crate::crypto::keys::KeyRing;
use crate::domain::authn::return_path::ReturnPath;
use crate::domain::clients::{AuthMethod, Client};
use crate::domain::identity::documents::{
    self, ALL_TYPES, Document, DocumentForm, DocumentNumber, PersonName, Validity,
};
use crate::domain::identity::users::{IdNumber, PhoneNumber};
use crate::domain::tokens::authorize::{self, RequestError};
use crate::domain::{delegation::uscc::Uscc, tokens::TokenIssuer, tokens::grants};
use crate::net::{RegionTable, TrustedProxies};
use crate::oidc::form;
use axum::http::{HeaderMap, HeaderValue, header};
use chrono::NaiveDate;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::sync::OnceLock;

const ISSUER: &str = "https://id.example.org";

/// The input as text fields split at `0xFF`, always at least `n` of them.
fn fields(data: &[u8], n: usize) -> Vec<String> {
    let mut out: Vec<String> = data.split(|b| *b == 0xFF).map(|f| String::from_utf8_lossy(f).into_owned()).collect();
    while out.len() < n {
        out.push(String::new());
    }
    out
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

fn issuer() -> &'static TokenIssuer {
    static ISSUER_KEYS: OnceLock<TokenIssuer> = OnceLock::new();
    ISSUER_KEYS.get_or_init(|| {
        let keys = KeyRing::ephemeral().unwrap_or_else(|e| unreachable!("in-memory key generation: {e}"));
        TokenIssuer { issuer: ISSUER.into(), keys, cfg: TokenConfig::default(), clock: Clock::default() }
    })
}

/// The token types the provider verifies its own JWTs as.
const OWN_TYPES: [&str; 4] = ["JWT", "at+jwt", "logout+jwt", crate::plugins::PLUGIN_JWT_TYP];

/// Compact JWS parsing and key parsing (client `jwks`, plugin-registered
/// JWK or PEM keys), then verification of the token under the key.
pub fn jws(data: &[u8]) {
    let f = fields(data, 3);
    let token = f[0].as_str();
    if let Some(p) = jws::parse(token) {
        assert!(token.len() <= 16 * 1024);
        assert!(p.payload.is_object());
        assert!(token.starts_with(p.signing_input));
        assert_eq!(p.signing_input.matches('.').count(), 1);
    }
    let key = serde_json::from_str::<Value>(&f[1]).ok().and_then(|jwk| PublicKey::from_jwk(&jwk));
    for key in key.into_iter().chain(PublicKey::from_pem(&f[2])) {
        if let Some(p) = jws::parse(token) {
            let _ = key.alg() == Alg::parse(&p.header.alg).unwrap_or(Alg::Es256)
                && key.verify(p.signing_input.as_bytes(), &p.signature);
        }
        let _ = key.verify(f[0].as_bytes(), f[1].as_bytes());
    }
}

/// Our own tokens (access, ID, logout, plugin-signed): what verifies is
/// ours; a token we signed over fuzzed claims verifies to exactly those
/// claims, and any one-byte change of it does not verify.
pub fn own_token(data: &[u8]) {
    let t = issuer();
    let f = fields(data, 2);
    for typ in OWN_TYPES {
        if let Some(c) = t.verify_own(&f[0], typ, true) {
            assert_eq!(c.get("iss").and_then(Value::as_str), Some(ISSUER));
        }
    }
    let mut claims = match serde_json::from_str::<Value>(&f[1]) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::from_iter([("x".to_string(), Value::from(f[1].clone()))]),
    };
    claims.insert("iss".into(), ISSUER.into());
    claims.insert("exp".into(), (t.clock.now() + 600).into());
    let at = data.first().copied().unwrap_or(0);
    let alg = if at % 2 == 0 { Alg::Es256 } else { Alg::Rs256 };
    let typ = OWN_TYPES[usize::from(at / 2) % OWN_TYPES.len()];
    let keys = t.keys.snapshot();
    let Some(key) = keys.signer(alg) else { unreachable!("the ephemeral ring has both algorithms") };
    let token = key.sign_jwt(typ, &Value::Object(claims.clone()));
    // Keys, not values: serde_json's float parsing may move a float by one ulp.
    let back = t.verify_own(&token, typ, false);
    assert!(back.is_some_and(|c| c.keys().eq(claims.keys())), "our own token did not verify");
    let mut bytes = token.into_bytes();
    let i = data.len() % bytes.len();
    bytes[i] ^= (data.get(1).copied().unwrap_or(1) & 0x7F).max(1);
    if let Ok(mutated) = String::from_utf8(bytes) {
        assert!(t.verify_own(&mutated, typ, true).is_none(), "a changed token verified");
    }
}

/// In-person assertions of an ID-chip reader (B4) against a fixed key.
pub fn in_person(data: &[u8]) {
    use crate::ports::verifier::assertion;
    // A fixed throw-away reader key (the scalar 1…1), made in code so no
    // key file ships: the harness needs a stable key, not a secret one.
    static KEY: OnceLock<Option<(crate::crypto::jws::PrivateKey, PublicKey)>> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        let d = p256::ecdsa::SigningKey::from_slice(&[1u8; 32]).ok()?;
        let public = PublicKey::Es256(*d.verifying_key());
        Some((crate::crypto::jws::PrivateKey::Es256(d), public))
    });
    let f = fields(data, 2);
    if let Some((_, key)) = key {
        let _ = assertion::verify(&f[0], key, "r", 1000);
    }
    let _ = assertion::public_key(&f[1]);
    if let (Ok(Value::Object(claims)), Some((signer, key))) = (serde_json::from_str::<Value>(&f[1]), key) {
        let _ = assertion::verify(&assertion::sign(signer, &Value::Object(claims)), key, "r", 1000);
    }
}

/// Resident ID numbers, phone numbers, credit codes and the document
/// numbers of all seven types: a parsed value re-parses to itself.
pub fn identifiers(data: &[u8]) {
    let s = text(data);
    if let Ok(id) = IdNumber::parse(&s) {
        assert_eq!(id.as_str().len(), 18);
        assert_eq!(IdNumber::parse(id.as_str()).as_ref(), Ok(&id));
        let _ = crate::domain::authn::flows::mask_id_number(id.as_str());
    }
    if let Ok(p) = PhoneNumber::parse(&s) {
        assert_eq!(PhoneNumber::parse(p.as_str()).as_ref(), Ok(&p));
    }
    let _ = crate::domain::authn::flows::mask_phone(&s);
    let _ = crate::domain::authn::flows::mask_account(&s);
    if let Ok(u) = Uscc::parse(&s) {
        assert_eq!(Uscc::parse(u.as_str()).as_ref(), Ok(&u));
        assert_eq!(u.region_code().len() + u.organisation_code().len(), 15);
    }
    for kind in ALL_TYPES {
        if let Ok(n) = DocumentNumber::parse(kind, &s) {
            assert_eq!(DocumentNumber::parse(kind, n.as_str()).as_ref(), Ok(&n));
            let _ = n.birth_and_sex();
        }
    }
    if let Ok(n) = PersonName::parse(&s) {
        assert_eq!(PersonName::parse(n.as_str()).as_ref(), Ok(&n));
        let _ = n.has_rare_character();
    }
    let _ = (documents::mask_name(&s), documents::mask_number(&s));
}

/// The whole document form (type, name, number, validity) on a fixed day.
pub fn document_form(data: &[u8]) {
    let f = fields(data, 6);
    let form = DocumentForm {
        doc_type: f[0].clone(),
        name: f[1].clone(),
        number: f[2].clone(),
        valid_from: f[3].clone(),
        valid_to: f[4].clone(),
        long_term: (!f[5].is_empty()).then(|| f[5].clone()),
    };
    let Some(today) = NaiveDate::from_ymd_opt(2026, 5, 1) else { return };
    if let Ok(doc) = Document::parse(&form, today) {
        assert!(doc.validity.start <= today && !doc.validity.expired_on(today));
        let _ = doc.age_on(today);
    }
    let _ = Validity::parse(&f[3], &f[4], f[5].is_empty());
}

/// A client like the ones the authorize and token tests register.
fn client(public: bool) -> Client {
    Client {
        client_id: "rp".into(),
        name: "RP".into(),
        auth_method: if public { AuthMethod::None } else { AuthMethod::ClientSecretBasic },
        redirect_uris: vec!["https://rp.example/cb".into(), "http://127.0.0.1:8000/cb?x=1".into()],
        post_logout_redirect_uris: vec!["https://rp.example/bye".into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        allowed_scopes: "openid profile email phone".into(),
        id_token_alg: "ES256".into(),
        jwks: None,
        backchannel_logout_uri: None,
        backchannel_token_delivery_mode: None,
        backchannel_client_notification_endpoint: None,
        skip_consent: false,
        min_level: None,
        profile: None,
        require_pushed_authorization_requests: false,
        dpop_bound_access_tokens: false,
        tls_client_certificate_bound_access_tokens: false,
        disabled: false,
        old_secret_until: None,
        subject_type: "public".into(),
        sector: None,
        sector_identifier_uri: None,
        secret_hash: None,
        old_secret_hash: None,
        jwks_uri: None,
        userinfo_alg: None,
        introspection_alg: None,
        logo_uri: None,
        display_names: Default::default(),
        dynamic: false,
        metadata: Default::default(),
        registration_token_hash: None,
    }
}

/// The authorization request: query string → client and redirect URI
/// (page errors) → request or a redirected OAuth error.
pub fn authorize_query(data: &[u8]) {
    let query = text(data);
    let params = form::parse_query(Some(&query));
    let _ = authorize::client_id_param(&params);
    let public = data.len() % 2 == 1;
    let client = client(public);
    let Ok(uri) = authorize::redirect_target(&params, Some(&client)) else { return };
    assert!(client.matches_redirect_uri(uri));
    let hint = |hint: &str| issuer().verify_own(hint, "JWT", true).map(|_| "s".into());
    match authorize::parse(&params, &client, uri, hint, issuer().clock.now()) {
        Ok(req) => {
            assert_eq!(req.redirect_uri, uri);
            assert!(!req.scope.is_empty() && req.scope.split(' ').all(|s| client.scopes().contains(s)));
            assert!(req.state.as_ref().is_none_or(|s| s.len() <= 2048));
            assert!(req.code_challenge.as_ref().is_none_or(|c| c.len() == 43));
            assert!(!public || req.code_challenge.is_some());
        }
        Err(RequestError::Redirect(r)) => assert_eq!(r.redirect_uri, uri),
        Err(RequestError::Page(_)) => unreachable!("page errors come from redirect_target only"),
    }
}

/// The token request form body and client credentials (Basic header,
/// post secret, client assertion), and the PKCE verifier check.
pub fn token_form(data: &[u8]) {
    let f = fields(data, 3);
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
    if let Ok(v) = HeaderValue::from_str(&f[0]) {
        headers.insert(header::AUTHORIZATION, v);
    }
    if let Ok(params) = form::parse_body(&headers, f[1].as_bytes()) {
        for name in ["grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope"] {
            if let Ok(Some(v)) = form::one(&params, name) {
                assert!(!v.is_empty());
            }
        }
        let _ = form::no_duplicates(&params);
        let _ = form::credentials(&headers, &params);
    }
    let v = f[2].as_str();
    if grants::valid_verifier(v) {
        assert!((43..=128).contains(&v.len()) && v.is_ascii());
        assert_eq!(crate::crypto::pkce_s256(v).len(), 43);
    }
}

/// `return_path`: what it yields is one of our own local pages, never
/// something a browser could read as another origin.
pub fn return_path(data: &[u8]) {
    let s = text(data);
    if let Some(p) = ReturnPath::parse(&s) {
        let p = p.as_str();
        assert!(p.starts_with('/') && !p.starts_with("//"), "{p:?}");
        assert!(!p.contains('\\') && !p.contains(':') && !p.contains('%') && !p.contains('#'), "{p:?}");
        assert!(p.starts_with("/account") || p.starts_with("/plugins/"), "{p:?}");
        assert!(!p.split('?').next().unwrap_or_default().split('/').any(|seg| seg == ".."), "{p:?}");
        let base = url::Url::parse("https://id.example.org/x");
        if let Ok(base) = base {
            let joined = base.join(p).map(|u| u.origin() == base.origin());
            assert!(joined.unwrap_or(false), "{p:?} leaves the origin");
        }
    }
}

/// Redirect-URI matching: exact, or a loopback URI differing in port only.
pub fn redirect_uri(data: &[u8]) {
    let s = text(data);
    let c = client(false);
    if c.matches_redirect_uri(&s) && !c.redirect_uris.contains(&s) {
        let Ok(u) = url::Url::parse(&s) else { unreachable!("a loopback variant is a URL: {s:?}") };
        assert_eq!(u.scheme(), "http");
        assert_eq!(u.host_str(), Some("127.0.0.1"));
        assert_eq!((u.path(), u.query(), u.fragment()), ("/cb", Some("x=1"), None));
    }
    assert!(!c.matches_post_logout_uri(&s) || c.post_logout_redirect_uris.contains(&s));
}

/// `X-Forwarded-For` behind trusted proxies, and the region table.
pub fn forwarded(data: &[u8]) {
    let f = fields(data, 3);
    let proxies: Vec<String> = f[0].split(',').map(str::to_string).collect();
    let trusted = TrustedProxies::parse(&proxies).unwrap_or_default();
    let headers: Vec<&str> = f[1].split('\n').collect();
    let peer: IpAddr = f[2].trim().parse().unwrap_or(IpAddr::from([10, 0, 0, 1]));
    let client = trusted.client(peer, &headers);
    let untrusted = TrustedProxies::default().client(peer, &headers);
    assert_eq!(untrusted, peer, "an untrusted peer picked its own address");
    if let Ok(table) = RegionTable::parse(&f[0].replace(';', "\n")) {
        let _ = table.locate(&f[2]);
        let _ = table.locate(&client.to_string());
    }
    let _ = RegionTable::parse(&f[1]);
}

/// Config loading from TOML text (with `IDP_*` style overrides).
pub fn config(data: &[u8]) {
    let f = fields(data, 3);
    let _ = Config::from_toml(&f[0], &[]);
    let env = [(format!("IDP_{}", f[1]), f[2].clone())];
    let _ = Config::from_toml(&f[0], &env);
}

pub type Harness = fn(&[u8]);

/// Every harness, by name: the fuzz targets and the in-suite check share it.
pub const HARNESSES: [(&str, Harness); 11] = [
    ("jws", jws),
    ("own_token", own_token),
    ("in_person", in_person),
    ("identifiers", identifiers),
    ("document_form", document_form),
    ("authorize_query", authorize_query),
    ("token_form", token_form),
    ("return_path", return_path),
    ("redirect_uri", redirect_uri),
    ("forwarded", forwarded),
    ("config", config),
];

/// Valid and near-valid inputs per harness, the starting points of the
/// mutations (and of the fuzz corpora).
pub fn seeds(harness: &str) -> Vec<Vec<u8>> {
    let own = || {
        let keys = issuer().keys.snapshot();
        keys.signer(Alg::Es256).map(|k| k.sign_jwt("JWT", &json!({"iss": ISSUER, "sub": "s"}))).unwrap_or_default()
    };
    let s: Vec<String> = match harness {
        "jws" => vec![
            format!("{}\u{FF}{{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"Z6teDpBBRNiHfMrIvoRklQ6Rhbfu73XDofvybkv6k-s\",\"y\":\"XbyLhk3QunxlxgZ0UkIpOQk7fY5Aa02iCn7JP9n3_Pc\"}}", own()),
            "eyJhbGciOiJub25lIn0.e30.\u{FF}{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}".into(),
            "a.b.c\u{FF}\u{FF}-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----".into(),
        ],
        "own_token" => vec![own(), format!("{}\u{FF}{{\"sub\":\"s\",\"aud\":[\"rp\"]}}", own()), "x.y.z\u{FF}[]".into()],
        "in_person" => vec![
            "e30.e30.e30\u{FF}{\"iss\":\"r\",\"jti\":\"1\",\"iat\":900,\"exp\":1100,\"doc_type\":\"resident_id\",\"number\":\"11010519491231002X\",\"name\":\"李秀\",\"valid_from\":\"2010-01-01\",\"place\":\"东城区\"}".into(),
            "\u{FF}{\"iss\":\"r\",\"jti\":\"1\",\"iat\":-9223372036854775808,\"exp\":2000}".into(),
        ],
        "identifiers" => vec![
            "11010519491231002X".into(),
            "１１０１０５１９４９１２３１００２ｘ".into(),
            "91350100M000100Y43".into(),
            "+86 13800138000".into(),
            "H12345678".into(),
            "ABC123456789012".into(),
            "AAé12345678901".into(),
            "南字第123456号".into(),
            "E12345678".into(),
            "810000199001010012".into(),
            "李·秀".into(),
        ],
        "document_form" => vec![
            "resident_id\u{FF}李秀\u{FF}11010519491231002X\u{FF}2010-01-01\u{FF}\u{FF}1".into(),
            "passport\u{FF}LI XIU\u{FF}E12345678\u{FF}2020.01.01\u{FF}2030/01/01\u{FF}".into(),
            "foreign_permanent_resident_id\u{FF}Anna\u{FF}ABC123456789012\u{FF}20200101\u{FF}20300101\u{FF}0".into(),
        ],
        "authorize_query" => vec![
            "client_id=rp&redirect_uri=https%3A%2F%2Frp.example%2Fcb&response_type=code&scope=openid%20profile&state=s&nonce=n".into(),
            "client_id=rp&redirect_uri=http%3A%2F%2F127.0.0.1%3A5%2Fcb%3Fx%3D1&response_type=code&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&prompt=login%20consent&max_age=0&claims=%7B%7D".into(),
            format!("client_id=rp&redirect_uri=https://rp.example/cb&response_type=code&scope=openid&id_token_hint={}&acr_values=3", own()),
            "client_id=rp&client_id=rp&redirect_uri=https://rp.example/cb&response_type=token&request=x".into(),
        ],
        "token_form" => vec![
            "Basic cnA6c2VjcmV0\u{FF}grant_type=authorization_code&code=c&redirect_uri=https%3A%2F%2Frp.example%2Fcb\u{FF}dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
            "Basic %%%\u{FF}client_id=rp&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c\u{FF}short".into(),
            "basic OnJw\u{FF}code=a&code=b\u{FF}".into(),
        ],
        "return_path" => vec![
            "/account/security".into(),
            "/plugins/health-code/show?x=1&y=2".into(),
            "//evil.example/account".into(),
            "/account/../admin".into(),
            "/plugins//x".into(),
        ],
        "redirect_uri" => vec![
            "https://rp.example/cb".into(),
            "http://127.0.0.1:9/cb?x=1".into(),
            "http://127.0.0.1:9/cb?x=1#f".into(),
            "http://u@127.0.0.1/cb?x=1".into(),
        ],
        "forwarded" => vec![
            "10.0.0.0/8,127.0.0.1\u{FF}198.51.100.66, 203.0.113.7, 10.0.0.5\u{FF}10.0.0.1".into(),
            "::1;203.0.113.0/24,深圳\u{FF}[2001:db8::1]:443\n203.0.113.9:80\u{FF}::1".into(),
        ],
        "config" => vec![
            "issuer = \"https://id.example.org\"\nlisten = \"127.0.0.1:8080\"\n[tokens]\naccess_token_ttl = 300\n\u{FF}TOKENS__ID_TOKEN_TTL\u{FF}60".into(),
            "trusted_proxies = [\"10.0.0.0/8\", \"x\"]\n[upstreams.gov]\nclient_id = 1\n\u{FF}LISTEN\u{FF}nope".into(),
        ],
        _ => Vec::new(),
    };
    s.into_iter().map(|x| x.replace('\u{FF}', "\u{0}").into_bytes()).map(separators).collect()
}

/// Seeds are written with NUL for the field separator; the harnesses split at 0xFF.
fn separators(mut b: Vec<u8>) -> Vec<u8> {
    for x in &mut b {
        if *x == 0 {
            *x = 0xFF;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*: deterministic, so a failure reproduces from its seed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Bytes that matter to these parsers: separators, delimiters, multi-byte
    /// and full-width characters, and a field split.
    const INTERESTING: &[&[u8]] = &[
        b".",
        b"/",
        b"//",
        b"%",
        b"&",
        b"=",
        b"?",
        b"#",
        b":",
        b",",
        b"[",
        b"]",
        b"\\",
        b" ",
        b"\n",
        b"\0",
        b"\xFF",
        "中".as_bytes(),
        "é".as_bytes(),
        "０".as_bytes(),
        "字第".as_bytes(),
        "号".as_bytes(),
        b"\xC3",
        b"9",
        b"X",
        b"-",
        b"+86",
        b"{}",
        b"\"",
        b"e30",
        b"..",
        b"%2F",
        b"=x&x=",
    ];

    fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
        let mut b = seed.to_vec();
        for _ in 0..=rng.below(4) {
            let at = rng.below(b.len() + 1);
            match rng.below(5) {
                0 if !b.is_empty() => {
                    let i = rng.below(b.len());
                    b[i] = rng.next() as u8;
                }
                1 if !b.is_empty() => {
                    let end = (at + rng.below(8)).min(b.len());
                    b.drain(at.min(end)..end);
                }
                2 => {
                    let piece = INTERESTING[rng.below(INTERESTING.len())];
                    b.splice(at..at, piece.iter().copied());
                }
                3 if !b.is_empty() => {
                    let from = rng.below(b.len());
                    let end = (from + rng.below(16)).min(b.len());
                    let copy = b[from..end].to_vec();
                    b.splice(at..at, copy);
                }
                _ => b.insert(at, rng.next() as u8),
            }
        }
        b
    }

    fn random(rng: &mut Rng) -> Vec<u8> {
        let n = rng.below(64);
        (0..n)
            .map(|_| {
                let r = rng.next() as u8;
                if r < 128 { r } else { INTERESTING[usize::from(r) % INTERESTING.len()][0] }
            })
            .collect()
    }

    /// Each harness on its seeds, 2000 mutations of them and 500 random inputs
    /// (150 and 37 for the two that sign a token per input).
    #[test]
    fn parsers_survive_seeded_random_and_mutated_input() {
        for (name, run) in HARNESSES {
            let seeds = seeds(name);
            assert!(!seeds.is_empty(), "{name} has no seeds");
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
            for s in &seeds {
                run(s);
            }
            // Signing per input is slow in a debug build: fewer rounds there.
            let rounds = if matches!(name, "own_token" | "in_person") { 150 } else { 2000 };
            for _ in 0..rounds {
                let pick = rng.below(seeds.len());
                let input = mutate(&mut rng, &seeds[pick]);
                run(&input);
            }
            for _ in 0..rounds / 4 {
                run(&random(&mut rng));
            }
        }
    }

    /// Writes the seeds as the fuzz corpora (`fuzz/corpus/<target>/seed-N`):
    /// `IDP_FUZZ_CORPUS=$PWD/fuzz/corpus cargo test -p idp --lib write_fuzz_corpus -- --ignored`.
    #[test]
    #[ignore = "writes files; run by hand"]
    fn write_fuzz_corpus() {
        let Ok(dir) = std::env::var("IDP_FUZZ_CORPUS") else { return };
        for (name, _) in HARNESSES {
            let dir = std::path::Path::new(&dir).join(name);
            std::fs::create_dir_all(&dir).unwrap();
            for (i, s) in seeds(name).iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i}")), s).unwrap();
            }
        }
    }

    /// Crashes the fuzzers found, kept as plain regression checks.
    #[test]
    fn regressions_found_while_fuzzing() {
        use crate::domain::identity::documents::{DocumentError, DocumentType};
        // A two-byte character across byte 3 of a 15-byte foreign permanent
        // resident number sliced a `str` off a character boundary.
        let r = DocumentNumber::parse(DocumentType::ForeignPermanentResidentId, "AAé12345678901");
        assert_eq!(r, Err(DocumentError::NumberFormat));
        // A phone of 11 bytes that are not 11 characters.
        assert_eq!(crate::domain::authn::flows::mask_phone("中中中13"), "****");
        // An in-person assertion with `iat` = i64::MIN overflowed `exp - iat`
        // (a panic in debug builds, a wrapped lifetime check in release).
        use crate::ports::verifier::assertion;
        let d = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let key = crate::crypto::jws::PublicKey::Es256(*d.verifying_key());
        let signer = crate::crypto::jws::PrivateKey::Es256(d);
        let claims = json!({"iss": "r", "jti": "1", "iat": i64::MIN, "exp": 2000, "doc_type": "resident_id",
            "number": "11010519491231002X", "name": "李秀", "valid_from": "2010-01-01", "place": "东城区"});
        assert!(assertion::verify(&assertion::sign(&signer, &claims), &key, "r", 1000).is_err());
    }
}
