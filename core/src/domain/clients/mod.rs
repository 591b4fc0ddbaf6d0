//! Relying-party registrations: creation (with a high-entropy secret stored
//! only as a keyed digest), lookup and client authentication at the token,
//! revocation and introspection endpoints.
pub mod admin;
pub mod app_access;
pub mod branding;
pub mod consents;
pub mod mtls;
pub mod registration;
pub mod scopes;
use crate::clock::Clock;
use crate::crypto::{SecretHasher, jws, random_token};
use crate::domain::audit::{Actor, Event};
use crate::domain::clients::scopes::ScopeSet;
use crate::domain::error::{DomainError, DomainResult, OAuthError};
use crate::net::Traced;
use crate::store::Store;
use crate::store::entities::client;
use sea_orm::{ActiveModelTrait, EntityTrait, QueryOrder, Set};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    /// RFC 8705 §2.1: a certificate with the registered subject DN or SAN.
    TlsClientAuth,
    /// RFC 8705 §2.2: a certificate whose key is in the client's JWKS.
    SelfSignedTlsClientAuth,
    None,
}

impl AuthMethod {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "client_secret_basic" => Self::ClientSecretBasic,
            "client_secret_post" => Self::ClientSecretPost,
            "private_key_jwt" => Self::PrivateKeyJwt,
            "tls_client_auth" => Self::TlsClientAuth,
            "self_signed_tls_client_auth" => Self::SelfSignedTlsClientAuth,
            "none" => Self::None,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::TlsClientAuth => "tls_client_auth",
            Self::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
            Self::None => "none",
        }
    }
    /// The mutual-TLS methods (RFC 8705 §2).
    pub fn is_mtls(self) -> bool {
        matches!(self, Self::TlsClientAuth | Self::SelfSignedTlsClientAuth)
    }
    /// The methods a FAPI 2.0 client may use (FAPI 2.0 §5.3.2.1).
    pub fn fapi2_allowed(self) -> bool {
        self == Self::PrivateKeyJwt || self.is_mtls()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    pub auth_method: AuthMethod,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub allowed_scopes: String,
    pub id_token_alg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// CIBA (`backchannel_token_delivery_mode`): `poll` or `ping`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_token_delivery_mode: Option<String>,
    /// CIBA ping mode: where the provider tells the client a request is decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_client_notification_endpoint: Option<String>,
    pub skip_consent: bool,
    /// The lowest assurance level (1–4) this client accepts (B6): every
    /// request is treated as requiring at least this level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_level: Option<u8>,
    /// `fapi2`: the FAPI 2.0 Security Profile (PAR, PKCE S256,
    /// private_key_jwt, DPoP-bound tokens, codes of at most 60 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Authorization requests only through `/par` (RFC 9126 §6).
    pub require_pushed_authorization_requests: bool,
    /// Access tokens only DPoP-bound (RFC 9449 §5.2, `dpop_bound_access_tokens`).
    pub dpop_bound_access_tokens: bool,
    /// Access tokens bound to the client certificate (RFC 8705 §3,
    /// `tls_client_certificate_bound_access_tokens`).
    pub tls_client_certificate_bound_access_tokens: bool,
    /// Disabled in the console: `/authorize` and every client
    /// authentication refuse it.
    pub disabled: bool,
    /// Until when the secret before the last rotation still works.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_secret_until: Option<i64>,
    /// `public` or `pairwise` (OIDC Core §8), the global default applied.
    pub subject_type: String,
    /// The sector identifier host of a pairwise client (OIDC Core §8.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sector: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sector_identifier_uri: Option<String>,
    /// Where the client publishes its keys (RFC 7591 §2), instead of `jwks`;
    /// fetched and cached when a signature must be checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Userinfo as a signed JWT (`userinfo_signed_response_alg`, OIDC
    /// Registration §2); none = plain JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userinfo_alg: Option<String>,
    /// Introspection answers as a signed JWT (RFC 9701 §6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspection_alg: Option<String>,
    /// The logo on the sign-in and consent pages (`branding`): https or a
    /// path on this server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// Display names by language tag (`client_name#en` …); `name` is the
    /// name in the default language.
    pub display_names: BTreeMap<String, String>,
    /// Registered through `/oauth/register` (RFC 7591): managed with its
    /// registration access token.
    pub dynamic: bool,
    /// Further registered metadata (RFC 7591 §2), as registered.
    #[serde(skip)]
    pub metadata: serde_json::Map<String, Value>,
    #[serde(skip)]
    pub secret_hash: Option<String>,
    #[serde(skip)]
    pub old_secret_hash: Option<String>,
    #[serde(skip)]
    pub registration_token_hash: Option<String>,
}

/// The profile name of the FAPI 2.0 Security Profile.
pub const FAPI2: &str = "fapi2";

impl Client {
    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None
    }
    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }
    pub fn scopes(&self) -> ScopeSet {
        ScopeSet::parse(&self.allowed_scopes)
    }
    /// Widens the allowed scopes for one request (plugin scopes the
    /// administrator permitted); never stored.
    pub fn allow_scopes(&mut self, extra: &[String]) {
        for s in extra {
            self.allowed_scopes.push(' ');
            self.allowed_scopes.push_str(s);
        }
    }
    pub fn is_fapi2(&self) -> bool {
        self.profile.as_deref() == Some(FAPI2)
    }
    /// Whether `/authorize` takes this client's requests only by `request_uri` from `/par`.
    pub fn requires_par(&self) -> bool {
        self.require_pushed_authorization_requests || self.is_fapi2()
    }
    /// Whether the token endpoint requires a DPoP proof and issues only
    /// bound tokens. A FAPI 2.0 client may use mutual TLS instead.
    pub fn requires_dpop(&self) -> bool {
        self.dpop_bound_access_tokens || (self.is_fapi2() && !self.tls_client_certificate_bound_access_tokens)
    }
    /// Whether tokens are bound to the client certificate (RFC 8705 §3),
    /// which the token endpoint then requires.
    pub fn requires_certificate(&self) -> bool {
        self.tls_client_certificate_bound_access_tokens
    }
    /// The sector this client's subjects are drawn in; none = public `sub`.
    pub fn pairwise_sector(&self) -> Option<&str> {
        (self.subject_type == crate::domain::tokens::subjects::PAIRWISE).then_some(self.sector.as_deref()).flatten()
    }
    /// The registered keys of this client (`jwks`), as JWKs.
    pub fn keys(&self) -> Vec<Value> {
        self.jwks.as_ref().and_then(|j| j.get("keys")).and_then(Value::as_array).cloned().unwrap_or_default()
    }
    /// Whether a registered key (matching `kid` when both name one) signed
    /// this JWS with the algorithm its header names. `none` never verifies.
    pub fn verify_jws(&self, parsed: &jws::Parsed<'_>) -> bool {
        if jws::Alg::parse(&parsed.header.alg).is_none() {
            return false;
        }
        self.keys().iter().any(|k| {
            let kid_ok = match (&parsed.header.kid, k.get("kid").and_then(Value::as_str)) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            };
            kid_ok && jws::PublicKey::jwk_verifies(k, parsed)
        })
    }
    pub fn signing_alg(&self) -> jws::Alg {
        jws::Alg::parse(&self.id_token_alg).unwrap_or(jws::Alg::Es256)
    }

    /// Exact match (RFC 9700 §4.1.3). Only loopback redirect URIs of native
    /// apps may differ in port (RFC 8252 §7.3).
    pub fn matches_redirect_uri(&self, candidate: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == candidate || loopback_port_variant(r, candidate))
    }

    pub fn matches_post_logout_uri(&self, candidate: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|r| r == candidate)
    }

    fn from_model(m: client::Model) -> Self {
        let list = |s: &str| serde_json::from_str::<Vec<String>>(s).unwrap_or_default();
        let metadata = match m.metadata.as_deref().and_then(|j| serde_json::from_str::<Value>(j).ok()) {
            Some(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        let meta = |k: &str| metadata.get(k).and_then(Value::as_str).map(str::to_string);
        Client {
            jwks_uri: meta("jwks_uri"),
            userinfo_alg: meta("userinfo_signed_response_alg"),
            introspection_alg: meta("introspection_signed_response_alg"),
            logo_uri: branding::logo_in(&metadata),
            display_names: branding::names_in(&metadata),
            dynamic: m.registration_token_hash.is_some(),
            registration_token_hash: m.registration_token_hash,
            metadata,
            auth_method: AuthMethod::parse(&m.auth_method).unwrap_or(AuthMethod::ClientSecretBasic),
            redirect_uris: list(&m.redirect_uris),
            post_logout_redirect_uris: list(&m.post_logout_redirect_uris),
            grant_types: list(&m.grant_types),
            jwks: m.jwks.as_deref().and_then(|j| serde_json::from_str(j).ok()),
            client_id: m.client_id,
            name: m.name,
            allowed_scopes: m.allowed_scopes,
            id_token_alg: m.id_token_alg,
            backchannel_logout_uri: m.backchannel_logout_uri,
            backchannel_token_delivery_mode: m.backchannel_token_delivery_mode,
            backchannel_client_notification_endpoint: m.backchannel_client_notification_endpoint,
            skip_consent: m.skip_consent,
            min_level: m.min_acr.as_deref().and_then(|l| l.parse::<u8>().ok()).filter(|l| (1..=4).contains(l)),
            secret_hash: m.secret_hash,
            disabled: m.disabled,
            old_secret_hash: m.old_secret_hash,
            old_secret_until: m.old_secret_until,
            profile: m.profile,
            require_pushed_authorization_requests: m.require_par,
            dpop_bound_access_tokens: m.dpop_bound,
            tls_client_certificate_bound_access_tokens: m.tls_bound,
            subject_type: m.subject_type.unwrap_or_default(),
            sector: m.sector,
            sector_identifier_uri: m.sector_identifier_uri,
        }
    }
}

fn loopback_port_variant(registered: &str, candidate: &str) -> bool {
    let (Ok(r), Ok(c)) = (url::Url::parse(registered), url::Url::parse(candidate)) else {
        return false;
    };
    let loopback = |u: &url::Url| u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]"));
    loopback(&r)
        && loopback(&c)
        && r.host_str() == c.host_str()
        && r.path() == c.path()
        && r.query() == c.query()
        && c.fragment().is_none()
        && c.username().is_empty()
        && c.password().is_none()
}

/// Validates a redirect URI at registration: absolute, no fragment, no
/// userinfo, https — or http only on loopback (RFC 8252) — or a private-use
/// scheme for native apps; never javascript:/data:.
pub fn validate_redirect_uri(uri: &str) -> Result<(), String> {
    let u = url::Url::parse(uri).map_err(|e| format!("`{uri}` is not an absolute URL: {e}"))?;
    if u.fragment().is_some() {
        return Err(format!("`{uri}` must not contain a fragment"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!("`{uri}` must not contain user information"));
    }
    match u.scheme() {
        "https" => Ok(()),
        "http" if matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]") | Some("localhost")) => Ok(()),
        "http" => Err(format!("`{uri}`: plain http is allowed only on loopback")),
        "javascript" | "data" | "vbscript" | "file" => Err(format!("`{uri}`: scheme not allowed")),
        s if s.contains('.') => Ok(()), // private-use scheme, e.g. cn.gov.app:/cb
        _ => Err(format!("`{uri}`: use https, loopback http or a reverse-domain private scheme")),
    }
}

/// The sector of a new client (OIDC Core §8.1): the host of its
/// `sector_identifier_uri` — fetched, and required to list every redirect
/// URI — or else the one host all its redirect URIs share. A pairwise
/// client needs one; a public client may have none.
async fn sector_of(new: &NewClient) -> Result<Option<String>, String> {
    use crate::domain::tokens::subjects;
    let pairwise = match new.subject_type.as_deref() {
        None => false,
        Some(subjects::PAIRWISE) => true,
        Some(subjects::PUBLIC) => false,
        Some(other) => return Err(format!("subject_type `{other}`: use public or pairwise")),
    };
    if let Some(uri) = &new.sector_identifier_uri {
        let u = url::Url::parse(uri).map_err(|e| format!("sector_identifier_uri `{uri}`: {e}"))?;
        let loopback = matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]") | Some("localhost"));
        if !(u.scheme() == "https" || (u.scheme() == "http" && loopback)) {
            return Err(format!("sector_identifier_uri `{uri}` must use https"));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let listed: Vec<String> =
            async { http.get(uri.as_str()).traced().send().await?.error_for_status()?.json().await }
                .await
                .map_err(|e: reqwest::Error| format!("sector_identifier_uri `{uri}`: {e}"))?;
        if let Some(missing) = new.redirect_uris.iter().find(|r| !listed.contains(r)) {
            return Err(format!("sector_identifier_uri `{uri}` does not list the redirect URI `{missing}`"));
        }
        return Ok(u.host_str().map(str::to_string));
    }
    let mut hosts: Vec<String> = new
        .redirect_uris
        .iter()
        .filter_map(|r| url::Url::parse(r).ok().and_then(|u| u.host_str().map(str::to_string)))
        .collect();
    hosts.sort();
    hosts.dedup();
    match hosts.as_slice() {
        [one] => Ok(Some(one.clone())),
        _ if pairwise => {
            Err("a pairwise client with redirect URIs on several hosts needs a sector_identifier_uri".into())
        }
        _ => Ok(None),
    }
}

#[derive(Debug, Clone, Default)]
pub struct NewClient {
    pub name: String,
    pub client_id: Option<String>,
    pub public: bool,
    pub auth_method: Option<AuthMethod>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Option<Vec<String>>,
    pub scopes: Option<String>,
    pub id_token_alg: Option<String>,
    pub jwks: Option<Value>,
    pub backchannel_logout_uri: Option<String>,
    /// CIBA: `poll` (the default for a client registered for the CIBA
    /// grant) or `ping`, which needs the notification endpoint.
    pub backchannel_token_delivery_mode: Option<String>,
    pub backchannel_client_notification_endpoint: Option<String>,
    pub skip_consent: bool,
    pub min_level: Option<u8>,
    /// `fapi2` or none.
    pub profile: Option<String>,
    pub require_par: bool,
    pub dpop_bound: bool,
    /// Certificate-bound tokens (RFC 8705 §3). The `tls_client_auth_*`
    /// settings of RFC 8705 §2.1.2 go in `metadata`.
    pub tls_bound: bool,
    /// `public` or `pairwise`; none = the global default (`protocol.subject_type`).
    pub subject_type: Option<String>,
    /// OIDC Core §8.1: a JSON array of URIs holding every redirect URI; its
    /// host is the sector. Without it the redirect URIs must share one host.
    pub sector_identifier_uri: Option<String>,
    /// Further metadata kept as registered (`jwks_uri`,
    /// `userinfo_signed_response_alg`, `introspection_signed_response_alg`,
    /// `client_uri`, `contacts` …), a JSON object.
    pub metadata: Option<serde_json::Map<String, Value>>,
}

/// A validated registration, not yet stored.
pub(crate) struct Prepared {
    pub client_id: String,
    pub model: client::ActiveModel,
    pub secret: Option<String>,
    pub method: AuthMethod,
    pub grant_types: Vec<String>,
}

/// An `https` URL, or `http` on loopback (development).
pub(crate) fn https_or_loopback(uri: &str) -> Result<(), String> {
    let u = url::Url::parse(uri).map_err(|e| format!("`{uri}`: {e}"))?;
    let loopback = matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]") | Some("localhost"));
    if u.scheme() == "https" || (u.scheme() == "http" && loopback) {
        Ok(())
    } else {
        Err(format!("`{uri}` must use https"))
    }
}

#[derive(Debug, Serialize)]
pub struct CreatedClient {
    #[serde(flatten)]
    pub client: Client,
    /// Shown once; only its digest is stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

#[derive(Clone)]
pub struct ClientService {
    db: Store,
    hasher: SecretHasher,
    /// Client assertion `exp`/`nbf` and registration times; the cache
    /// below ages on real time (it only paces database reads).
    clock: Clock,
    cache: Arc<RwLock<HashMap<String, (Instant, Client)>>>,
    ttl: Duration,
    /// Keys fetched from clients' `jwks_uri`, by URI.
    remote_keys: Arc<RwLock<HashMap<String, (Instant, Value)>>>,
    /// Global switches (`protocol.*`) applied to every client as it is read.
    global_par: bool,
    global_fapi2: bool,
    global_pairwise: bool,
}

/// How long client authentication may use a cached registration. A change
/// made by another process on the same SQLite file takes effect within this
/// time; on this node it takes effect at once.
const CACHE_TTL: Duration = Duration::from_secs(5);
/// The same on PostgreSQL, where every node follows the bus and forgets a
/// changed registration at once: only a safety net for a lost notice.
pub const CROSS_NODE_TTL: Duration = Duration::from_secs(300);
const CACHE_MAX: usize = 10_000;
/// How long keys fetched from a `jwks_uri` are used before fetching again.
const REMOTE_KEYS_TTL: Duration = Duration::from_secs(300);

pub const SECRET_PURPOSE: &str = "client_secret";

/// Who registers and deletes clients: the administrator (the `idp client`
/// commands, which take no operator name).
const ADMIN: Actor<'static> = Actor::Operator("admin");

/// The grant type of RFC 8693 token exchange, as a client registers it.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

impl ClientService {
    pub fn new(db: Store, hasher: SecretHasher, clock: Clock) -> Self {
        Self {
            db,
            hasher,
            clock,
            cache: Arc::default(),
            ttl: CACHE_TTL,
            remote_keys: Arc::default(),
            global_par: false,
            global_fapi2: false,
            global_pairwise: false,
        }
    }

    /// Applies the global protocol switches: with `fapi2` every client is
    /// read as a FAPI 2.0 client, with PAR required every client must push.
    pub fn with_protocol(mut self, cfg: &crate::config::ProtocolConfig) -> Self {
        self.global_par = cfg.require_pushed_authorization_requests;
        self.global_fapi2 = cfg.fapi2;
        self.global_pairwise = cfg.subject_type == crate::domain::tokens::subjects::PAIRWISE;
        self
    }

    fn effective(&self, mut c: Client) -> Client {
        // The console signs in through the provider in-process: the global
        // FAPI / PAR switches (meant for relying apps) leave it as it is.
        let console = c.client_id == crate::domain::staff::console_sign_in::CLIENT_ID;
        if self.global_fapi2 && !console {
            c.profile = Some(FAPI2.into());
        }
        c.require_pushed_authorization_requests |= self.global_par && !console;
        if c.subject_type.is_empty() {
            // The global default reaches only clients with one sector.
            let pairwise = self.global_pairwise && c.sector.is_some();
            use crate::domain::tokens::subjects;
            c.subject_type = if pairwise { subjects::PAIRWISE } else { subjects::PUBLIC }.into();
        }
        c
    }

    /// The registration as the hot paths (authorize, token, userinfo) see
    /// it: one database read per client every few seconds instead of one per
    /// request. Every change made through [`Clients`] forgets it on this node
    /// at once and, through the bus, on every other node; only a change
    /// made outside a running server on SQLite waits for the expiry.
    pub async fn find_current(&self, client_id: &str) -> DomainResult<Option<Client>> {
        if let Ok(cache) = self.cache.read()
            && let Some((at, client)) = cache.get(client_id)
            && at.elapsed() < self.ttl
        {
            return Ok(Some(client.clone()));
        }
        let found = self.find(client_id).await?;
        if let (Some(c), Ok(mut cache)) = (&found, self.cache.write()) {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(client_id.to_string(), (Instant::now(), c.clone()));
        }
        Ok(found)
    }

    /// Drops the cached registration on this node.
    pub fn forget(&self, client_id: &str) {
        if let Ok(mut cache) = self.cache.write() {
            cache.remove(client_id);
        }
    }

    /// Drops every cached registration on this node.
    pub fn forget_all(&self) {
        if let Ok(mut cache) = self.cache.write() {
            cache.clear();
        }
    }

    /// A registration changed: this node forgets it at once and every other
    /// node hears it through the bus.
    async fn changed(&self, client_id: &str) {
        self.forget(client_id);
        crate::store::bus::notify(&self.db, crate::store::bus::Topic::Client, client_id).await;
    }

    /// Follows the bus (PostgreSQL): a registration changed through any
    /// node or the CLI is forgotten here at once. Runs for the life of the
    /// server; cached entries then live longer ([`CROSS_NODE_TTL`]).
    pub async fn follow(self, mut notices: tokio::sync::broadcast::Receiver<crate::store::bus::Notice>) {
        use crate::store::bus::{Notice, Topic};
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match notices.recv().await {
                Ok(Notice::Changed(Topic::Client, id)) => self.forget(&id),
                Ok(Notice::Changed(..)) => {}
                Ok(Notice::Resync) | Err(RecvError::Lagged(_)) => self.forget_all(),
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// Cached registrations live [`CROSS_NODE_TTL`]: the caller follows the
    /// bus, which forgets changed ones at once.
    pub fn following_bus(mut self) -> Self {
        self.ttl = CROSS_NODE_TTL;
        self
    }

    pub async fn create(&self, new: NewClient) -> Result<CreatedClient, DomainError> {
        let prepared = self.prepare(&new).await.map_err(|m| DomainError::Internal(anyhow::anyhow!(m)))?;
        let Prepared { model, secret, method, grant_types, client_id } = prepared;
        // The registration and its audit record commit together; the
        // secret itself is never recorded.
        let txn = crate::store::begin_write(&self.db).await?;
        let inserted = model.insert(&txn).await?;
        let subject = format!("client:{client_id}");
        let detail = format!("auth_method={} grant_types={}", method.as_str(), grant_types.join(","));
        let event = Event::new("client_created", ADMIN, &subject).detail(&detail);
        crate::domain::audit::record(&txn, event, self.clock.now()).await?;
        txn.commit().await?;
        Ok(CreatedClient { client: self.effective(Client::from_model(inserted)), client_secret: secret })
    }

    /// Validates a new registration and builds its row (with a fresh
    /// secret for the secret methods); nothing is stored. The error is
    /// what to fix, in words.
    pub(crate) async fn prepare(&self, new: &NewClient) -> Result<Prepared, String> {
        if new.name.trim().is_empty() {
            return Err("client name must not be empty".into());
        }
        for uri in new.redirect_uris.iter().chain(new.post_logout_redirect_uris.iter()) {
            validate_redirect_uri(uri)?;
        }
        if let Some(uri) = &new.backchannel_logout_uri {
            validate_redirect_uri(uri)?;
        }
        let ciba_mode = crate::domain::tokens::ciba::registration(new)?;
        let method = match (new.public, new.auth_method) {
            (true, None | Some(AuthMethod::None)) => AuthMethod::None,
            (true, Some(_)) => return Err("a public client authenticates with `none`".into()),
            (false, Some(m)) => m,
            (false, None) => AuthMethod::ClientSecretBasic,
        };
        let meta = new.metadata.clone().unwrap_or_default();
        let jwks_uri = meta.get("jwks_uri").and_then(Value::as_str);
        if let Some(uri) = jwks_uri {
            https_or_loopback(uri).map_err(|e| format!("jwks_uri: {e}"))?;
            if new.jwks.is_some() {
                return Err("use jwks or jwks_uri, not both".into());
            }
        }
        if let Some(jwks) = &new.jwks {
            // The same rule as the console's (`admin::jwks_rule`).
            admin::jwks_rule(jwks).map_err(|key| match key {
                "admin_app_jwks_private" => "jwks must not contain private keys".to_string(),
                "admin_app_jwks_alg" => "jwks: a key's alg must be ES256, PS256 or RS256".to_string(),
                _ => "jwks must be {\"keys\": [...]} of public EC P-256 or RSA (≥ 2048 bits) keys".to_string(),
            })?;
        }
        // Logo and localized names: the same rule as the console's.
        branding::from_metadata(&meta)?;
        if method == AuthMethod::PrivateKeyJwt && new.jwks.is_none() && jwks_uri.is_none() {
            return Err("private_key_jwt needs jwks (or jwks_uri) with at least one EC P-256 or RSA key".into());
        }
        if method == AuthMethod::SelfSignedTlsClientAuth && new.jwks.is_none() && jwks_uri.is_none() {
            return Err("self_signed_tls_client_auth needs jwks (or jwks_uri) holding the certificate's key".into());
        }
        mtls::check_registration(method == AuthMethod::TlsClientAuth, &meta)?;
        if new.dpop_bound && new.tls_bound {
            return Err("choose one sender constraint: DPoP or certificate-bound tokens".into());
        }
        match new.profile.as_deref() {
            None => {}
            Some(FAPI2) if method.fapi2_allowed() => {}
            Some(FAPI2) => {
                return Err(
                    "the fapi2 profile needs private_key_jwt, tls_client_auth or self_signed_tls_client_auth".into()
                );
            }
            Some(p) => return Err(format!("profile `{p}`: allowed fapi2")),
        }
        let alg = new.id_token_alg.clone().unwrap_or_else(|| "ES256".into());
        if jws::Alg::parse(&alg).is_none() {
            return Err(format!("id_token_signed_response_alg `{alg}`: allowed ES256, PS256, RS256"));
        }
        for key in ["userinfo_signed_response_alg", "introspection_signed_response_alg"] {
            match meta.get(key) {
                None => {}
                Some(Value::String(a)) if jws::Alg::parse(a).is_some() => {}
                Some(other) => return Err(format!("{key} `{other}`: allowed ES256, PS256, RS256")),
            }
        }
        let default_grants: Vec<String> = if method == AuthMethod::None {
            vec!["authorization_code".into(), "refresh_token".into()]
        } else {
            vec!["authorization_code".into(), "refresh_token".into(), "client_credentials".into()]
        };
        let grant_types = new.grant_types.clone().unwrap_or(default_grants);
        for g in &grant_types {
            if !matches!(g.as_str(), "authorization_code" | "refresh_token" | "client_credentials")
                && g != TOKEN_EXCHANGE_GRANT
                && g != crate::domain::tokens::device::GRANT_TYPE
                && g != crate::domain::tokens::ciba::GRANT_TYPE
            {
                return Err(format!(
                    "grant type `{g}`: allowed authorization_code, refresh_token, client_credentials, {}",
                    TOKEN_EXCHANGE_GRANT
                ));
            }
            if g == "client_credentials" && method == AuthMethod::None {
                return Err("a public client cannot use client_credentials".into());
            }
            if g == crate::domain::tokens::ciba::GRANT_TYPE && method == AuthMethod::None {
                return Err("CIBA is for confidential clients (CIBA Core §4)".into());
            }
        }
        let sector = sector_of(new).await?;
        let client_id = new.client_id.clone().unwrap_or_else(|| random_token(16));
        let secret =
            matches!(method, AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost).then(|| random_token(32));
        let scopes = new.scopes.clone().unwrap_or_else(|| crate::domain::clients::scopes::SUPPORTED.join(" "));
        let model = client::ActiveModel {
            client_id: Set(client_id.clone()),
            name: Set(new.name.clone()),
            secret_hash: Set(secret.as_ref().map(|s| self.hasher.digest(SECRET_PURPOSE, s))),
            auth_method: Set(method.as_str().into()),
            redirect_uris: Set(serde_json::to_string(&new.redirect_uris).unwrap_or_default()),
            post_logout_redirect_uris: Set(serde_json::to_string(&new.post_logout_redirect_uris).unwrap_or_default()),
            grant_types: Set(serde_json::to_string(&grant_types).unwrap_or_default()),
            allowed_scopes: Set(scopes),
            id_token_alg: Set(alg),
            jwks: Set(new.jwks.as_ref().map(|j| j.to_string())),
            backchannel_logout_uri: Set(new.backchannel_logout_uri.clone()),
            backchannel_token_delivery_mode: Set(
                ciba_mode.filter(|_| grant_types.iter().any(|g| g == crate::domain::tokens::ciba::GRANT_TYPE))
            ),
            backchannel_client_notification_endpoint: Set(new.backchannel_client_notification_endpoint.clone()),
            skip_consent: Set(new.skip_consent),
            created_at: Set(self.clock.now()),
            min_acr: Set(new.min_level.map(|l| l.to_string())),
            profile: Set(new.profile.clone()),
            require_par: Set(new.require_par),
            dpop_bound: Set(new.dpop_bound),
            tls_bound: Set(new.tls_bound),
            disabled: Set(false),
            old_secret_hash: Set(None),
            old_secret_until: Set(None),
            subject_type: Set(new.subject_type.clone()),
            sector: Set(sector),
            sector_identifier_uri: Set(new.sector_identifier_uri.clone()),
            registration_token_hash: Set(None),
            metadata: Set(new
                .metadata
                .as_ref()
                .filter(|m| !m.is_empty())
                .map(|m| Value::Object(m.clone()).to_string())),
        };
        Ok(Prepared { model, secret, method, grant_types, client_id })
    }

    pub async fn find(&self, client_id: &str) -> DomainResult<Option<Client>> {
        if client_id.is_empty() || client_id.len() > 128 {
            return Ok(None);
        }
        let found = client::Entity::find_by_id(client_id.to_owned())
            .one(&self.db)
            .await?
            .map(|m| self.effective(Client::from_model(m)));
        Ok(match found {
            Some(c) => Some(self.with_remote_keys(c).await),
            None => None,
        })
    }

    /// Fills `jwks` of a client that registered a `jwks_uri`: fetched (no
    /// redirects, 5 s) and kept for five minutes; a failed fetch leaves no
    /// keys, so nothing it would have verified does.
    async fn with_remote_keys(&self, mut c: Client) -> Client {
        let Some(uri) = c.jwks_uri.clone().filter(|_| c.jwks.is_none()) else {
            return c;
        };
        if let Ok(cache) = self.remote_keys.read()
            && let Some((at, keys)) = cache.get(&uri)
            && at.elapsed() < REMOTE_KEYS_TTL
        {
            c.jwks = Some(keys.clone());
            return c;
        }
        let fetched: Result<Value, String> = async {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| e.to_string())?;
            let res = http.get(uri.as_str()).send().await.map_err(|e| e.to_string())?;
            res.error_for_status().map_err(|e| e.to_string())?.json::<Value>().await.map_err(|e| e.to_string())
        }
        .await;
        match fetched {
            Ok(keys) if keys.get("keys").is_some_and(Value::is_array) => {
                if let Ok(mut cache) = self.remote_keys.write() {
                    if cache.len() >= CACHE_MAX {
                        cache.clear();
                    }
                    cache.insert(uri, (Instant::now(), keys.clone()));
                }
                c.jwks = Some(keys);
            }
            Ok(_) => tracing::warn!(client_id = %c.client_id, "jwks_uri did not answer a JWK set"),
            Err(e) => tracing::warn!(client_id = %c.client_id, "jwks_uri fetch failed: {e}"),
        }
        c
    }

    pub async fn list(&self) -> DomainResult<Vec<Client>> {
        Ok(client::Entity::find()
            .order_by_asc(client::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| self.effective(Client::from_model(m)))
            .collect())
    }

    pub async fn delete(&self, client_id: &str) -> DomainResult<bool> {
        self.delete_as(client_id, ADMIN, "").await
    }

    /// Deletes a registration, audited as done by `actor`.
    pub(crate) async fn delete_as(&self, client_id: &str, actor: Actor<'_>, detail: &str) -> DomainResult<bool> {
        self.forget(client_id);
        let txn = crate::store::begin_write(&self.db).await?;
        let r = client::Entity::delete_by_id(client_id.to_owned()).exec(&txn).await?;
        crate::domain::plugins::plugin_access::forget_client(&txn, client_id).await?;
        if r.rows_affected == 1 {
            let subject = format!("client:{client_id}");
            let event = Event::new("client_deleted", actor, &subject).detail(detail);
            crate::domain::audit::record(&txn, event, self.clock.now()).await?;
        }
        txn.commit().await?;
        self.changed(client_id).await;
        Ok(r.rows_affected == 1)
    }

    /// Authenticates a client from what the request presented. Exactly one
    /// method may be used, and it must be the one registered.
    pub async fn authenticate(
        &self,
        presented: &PresentedCredentials,
        token_endpoint: &str,
        issuer: &str,
    ) -> DomainResult<Client> {
        let fail = || DomainError::OAuth(OAuthError::invalid_client("client authentication failed"));
        let methods = [presented.basic.is_some(), presented.post_secret.is_some(), presented.assertion.is_some()];
        if methods.iter().filter(|m| **m).count() > 1 {
            return Err(OAuthError::invalid_request("use exactly one client authentication method").into());
        }
        if let Some((id, secret)) = &presented.basic {
            if presented.client_id.as_deref().is_some_and(|c| c != id) {
                return Err(OAuthError::invalid_request("client_id does not match the Authorization header").into());
            }
            let client = self.find_current(id).await?.ok_or_else(fail)?;
            return self.check_secret(client, secret, AuthMethod::ClientSecretBasic);
        }
        if let Some(secret) = &presented.post_secret {
            let id = presented.client_id.as_deref().ok_or_else(fail)?;
            let client = self.find_current(id).await?.ok_or_else(fail)?;
            return self.check_secret(client, secret, AuthMethod::ClientSecretPost);
        }
        if let Some(assertion) = &presented.assertion {
            return self.check_assertion(assertion, presented.client_id.as_deref(), token_endpoint, issuer).await;
        }
        let id = presented.client_id.as_deref().ok_or_else(fail)?;
        let client = self.find_current(id).await?.ok_or_else(fail)?;
        if client.disabled {
            return Err(fail());
        }
        match client.auth_method {
            AuthMethod::None => Ok(client),
            // RFC 8705 §2: the certificate the proxy passed, checked against
            // the registration.
            m if m.is_mtls() => match &presented.certificate {
                Some(cert) if mtls::authenticates(m, cert, &client.metadata, &client.keys(), self.clock.now()) => {
                    Ok(client)
                }
                _ => Err(fail()),
            },
            _ => Err(fail()),
        }
    }

    fn check_secret(&self, client: Client, secret: &str, used: AuthMethod) -> DomainResult<Client> {
        let fail = || DomainError::OAuth(OAuthError::invalid_client("client authentication failed"));
        let Some(stored) = client.secret_hash.as_deref() else {
            return Err(fail());
        };
        // The previous secret, during the grace period after a rotation.
        let old = client
            .old_secret_hash
            .as_deref()
            .filter(|_| client.old_secret_until.is_some_and(|until| self.clock.now() < until));
        let matches = self.hasher.verify(SECRET_PURPOSE, secret, stored)
            || old.is_some_and(|h| self.hasher.verify(SECRET_PURPOSE, secret, h));
        if client.auth_method != used || !matches || client.disabled {
            return Err(fail());
        }
        Ok(client)
    }

    /// `private_key_jwt` (OIDC Core §9, RFC 7523): signature by a registered
    /// key, iss = sub = client_id, our issuer or token endpoint in `aud`, a
    /// short-lived `exp`, and a `jti` never seen before.
    async fn check_assertion(
        &self,
        assertion: &str,
        claimed_id: Option<&str>,
        token_endpoint: &str,
        issuer: &str,
    ) -> DomainResult<Client> {
        let fail =
            |why: &str| DomainError::OAuth(OAuthError::invalid_client(format!("client assertion rejected: {why}")));
        let parsed = jws::parse(assertion).ok_or_else(|| fail("malformed JWT"))?;
        let claims = &parsed.payload;
        let iss = claims.get("iss").and_then(Value::as_str).ok_or_else(|| fail("no iss"))?;
        if claims.get("sub").and_then(Value::as_str) != Some(iss) {
            return Err(fail("sub must equal iss"));
        }
        if claimed_id.is_some_and(|c| c != iss) {
            return Err(fail("client_id does not match iss"));
        }
        let client = self.find_current(iss).await?.ok_or_else(|| fail("unknown client"))?;
        if client.auth_method != AuthMethod::PrivateKeyJwt {
            return Err(fail("client is not registered for private_key_jwt"));
        }
        if client.disabled {
            return Err(fail("client disabled"));
        }
        jws::Alg::parse(&parsed.header.alg).ok_or_else(|| fail("unsupported alg"))?;
        if !client.verify_jws(&parsed) {
            return Err(fail("bad signature"));
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => a == token_endpoint || a == issuer,
            Some(Value::Array(list)) => {
                list.iter().any(|a| a.as_str() == Some(token_endpoint) || a.as_str() == Some(issuer))
            }
            _ => false,
        };
        if !aud_ok {
            return Err(fail("aud must be the issuer or the token endpoint"));
        }
        let now = self.clock.now();
        let exp = claims.get("exp").and_then(Value::as_i64).ok_or_else(|| fail("no exp"))?;
        if exp <= now - 5 {
            return Err(fail("expired"));
        }
        if exp > now + 600 {
            return Err(fail("exp too far in the future (max 10 minutes)"));
        }
        if claims.get("nbf").and_then(Value::as_i64).is_some_and(|nbf| nbf > now + 5) {
            return Err(fail("not yet valid"));
        }
        let jti = claims.get("jti").and_then(Value::as_str).ok_or_else(|| fail("no jti"))?;
        if jti.is_empty() || jti.len() > 256 {
            return Err(fail("bad jti"));
        }
        let key = format!("assertion:{}:{}", client.client_id, jti);
        if !crate::store::record_once(&self.db, &key, exp + 60).await? {
            return Err(fail("jti already used"));
        }
        Ok(client)
    }
}

/// What a request offered to authenticate a client, already extracted from
/// the Authorization header and the form body.
#[derive(Debug, Default)]
pub struct PresentedCredentials {
    pub client_id: Option<String>,
    pub basic: Option<(String, String)>,
    pub post_secret: Option<String>,
    pub assertion: Option<String>,
    /// The client certificate a trusted proxy passed (RFC 8705).
    pub certificate: Option<mtls::ClientCertificate>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_registration_rules() {
        assert!(validate_redirect_uri("https://rp.example.org/cb").is_ok());
        assert!(validate_redirect_uri("http://127.0.0.1:9/cb").is_ok());
        assert!(validate_redirect_uri("http://rp.example.org/cb").is_err());
        assert!(validate_redirect_uri("https://rp.example.org/cb#x").is_err());
        assert!(validate_redirect_uri("JavaScript:alert(1)").is_err());
        assert!(validate_redirect_uri("https://a@evil.example/cb").is_err());
        assert!(validate_redirect_uri("cn.gov.app:/cb").is_ok());
    }

    #[test]
    fn loopback_may_vary_port_only() {
        assert!(loopback_port_variant("http://127.0.0.1/cb", "http://127.0.0.1:5000/cb"));
        assert!(!loopback_port_variant("http://127.0.0.1/cb", "http://127.0.0.1:5000/cb/x"));
        assert!(!loopback_port_variant("https://rp.example/cb", "https://rp.example:444/cb"));
    }
}
