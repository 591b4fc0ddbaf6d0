//! sea-orm entities, one module per table. Timestamps are Unix seconds so the
//! same column type works on SQLite and PostgreSQL.

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}
        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod client {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "clients")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub client_id: String,
        pub name: String,
        pub secret_hash: Option<String>,
        pub auth_method: String,
        pub redirect_uris: String,
        pub post_logout_redirect_uris: String,
        pub grant_types: String,
        pub allowed_scopes: String,
        pub id_token_alg: String,
        pub jwks: Option<String>,
        pub backchannel_logout_uri: Option<String>,
        /// CIBA: `poll` or `ping` (m20261210_000085); none = not a CIBA client.
        pub backchannel_token_delivery_mode: Option<String>,
        pub backchannel_client_notification_endpoint: Option<String>,
        pub skip_consent: bool,
        pub created_at: i64,
        /// The lowest `acr` this client accepts (B6), e.g. `urn:idp:loa:2`.
        pub min_acr: Option<String>,
        /// `fapi2` for the FAPI 2.0 Security Profile; none for plain OIDC.
        pub profile: Option<String>,
        /// Authorization requests only through PAR (RFC 9126 §6).
        pub require_par: bool,
        /// Access tokens only DPoP-bound (RFC 9449 §5.2).
        pub dpop_bound: bool,
        /// Access tokens bound to the client certificate (RFC 8705 §3,
        /// m20261211_000010_mtls).
        pub tls_bound: bool,
        /// Disabled in the console: no authorization, no token.
        pub disabled: bool,
        /// The secret before the last rotation, valid until `old_secret_until`.
        pub old_secret_hash: Option<String>,
        pub old_secret_until: Option<i64>,
        /// `public` or `pairwise` (OIDC Core §8); none = the global default.
        pub subject_type: Option<String>,
        /// The sector identifier host (OIDC Core §8.1), fixed at registration.
        pub sector: Option<String>,
        pub sector_identifier_uri: Option<String>,
        /// Digest of the registration access token (RFC 7592) of a
        /// dynamically registered client; none for an administrator's.
        pub registration_token_hash: Option<String>,
        /// Further registered metadata, a JSON object (RFC 7591 §2).
        pub metadata: Option<String>,
    }
    no_relations!();
}

pub mod user {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub username: String,
        pub phone: Option<String>,
        pub id_number: Option<String>,
        pub email: Option<String>,
        pub email_verified: bool,
        pub phone_verified: bool,
        pub name: Option<String>,
        /// JSON object of further OIDC profile claims (nickname, gender, …).
        pub profile: Option<String>,
        /// JSON object of the OIDC address claim.
        pub address: Option<String>,
        pub password_hash: String,
        pub disabled: bool,
        pub created_at: i64,
        pub updated_at: i64,
        /// How well the identity is proven: 1 none, 2 real-name, 3 real-person, 4 in person.
        pub proofing_level: i32,
    }
    no_relations!();
}

pub mod signing_key {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "signing_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub kid: String,
        pub alg: String,
        pub private_enc: String,
        pub public_jwk: String,
        pub active: bool,
        pub created_at: i64,
        pub retired_at: Option<i64>,
        /// `token` (ID, access and logout tokens) or `plugin` (plugin-signed JWTs).
        pub purpose: String,
    }
    no_relations!();
}

pub mod auth_request {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "auth_requests")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub client_id: String,
        pub params: String,
        /// Hash of the browser-binding cookie: only that browser may finish it.
        pub browser: String,
        pub expires_at: i64,
    }
    no_relations!();
}

pub mod session {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sessions")]
    pub struct Model {
        /// SHA-256 of the cookie value; the cookie itself is never stored.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id_hash: String,
        pub sid: String,
        pub user_id: String,
        pub auth_time: i64,
        pub created_at: i64,
        pub last_seen: i64,
        pub expires_at: i64,
        pub revoked: bool,
        /// "Remember this device for 30 days" (A3): no idle timeout.
        pub remember: bool,
        /// JSON list of `{"f": factor, "t": unix time}`: every factor used in this session.
        pub factors: String,
    }
    no_relations!();
}

pub mod session_client {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "session_clients")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub sid: String,
        pub client_id: String,
    }
    no_relations!();
}

pub mod auth_code {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "auth_codes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub code_hash: String,
        pub client_id: String,
        pub grant_id: String,
        pub redirect_uri: String,
        pub code_challenge: Option<String>,
        pub expires_at: i64,
        pub consumed_at: Option<i64>,
        /// The DPoP key the code is bound to (`dpop_jkt`, RFC 9449 §10).
        pub dpop_jkt: Option<String>,
    }
    no_relations!();
}

pub mod grant {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "grants")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub client_id: String,
        pub user_id: String,
        pub sid: Option<String>,
        pub scope: String,
        pub claims: Option<String>,
        pub nonce: Option<String>,
        pub auth_time: i64,
        pub acr: String,
        pub amr: String,
        pub created_at: i64,
        pub expires_at: i64,
        pub revoked_at: Option<i64>,
        /// The enterprise the user acted for when this grant was made (C4).
        pub enterprise_id: Option<String>,
        /// The delegation the user acted under (agent, person or kin); ending
        /// it revokes the grant.
        pub delegation_id: Option<String>,
        /// The `sub` this grant's tokens carry, fixed when it was made
        /// (`domain::tokens::subjects`); none on grants older than that column.
        pub subject: Option<String>,
        /// The DPoP key thumbprint (RFC 7638) refresh tokens of a public
        /// client are bound to (RFC 9449 §5).
        pub dpop_jkt: Option<String>,
        /// The pairwise sector this grant's subjects are in; none = public.
        pub sector: Option<String>,
        /// The client certificate (`x5t#S256`, RFC 8705 §3) the grant's
        /// tokens are bound to; a refresh needs the same certificate.
        pub cert_x5t: Option<String>,
    }
    no_relations!();
}

pub mod par_request {
    use sea_orm::entity::prelude::*;
    /// A pushed authorization request (RFC 9126): the validated
    /// parameters, single use, for the client that pushed them.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "par_requests")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub client_id: String,
        /// JSON array of `[name, value]` pairs.
        pub params: String,
        pub expires_at: i64,
    }
    no_relations!();
}

pub mod refresh_token {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        pub grant_id: String,
        pub expires_at: i64,
        pub used_at: Option<i64>,
    }
    no_relations!();
}

pub mod consent {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "consents")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: String,
        pub client_id: String,
        pub scope: String,
        pub granted_at: i64,
        /// Claims consented individually (OIDC Core §5.5), space-separated.
        pub claims: String,
    }
    no_relations!();
}

pub mod revoked_token {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "revoked_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub jti: String,
        pub expires_at: i64,
    }
    no_relations!();
}

pub mod rate_counter {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rate_counters")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub count: i64,
        pub window_start: i64,
        pub expires_at: i64,
    }
    no_relations!();
}

/// One counted SMS send under a limit key (A7 rolling windows).
pub mod sms_send {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sms_sends")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub key: String,
        pub at: i64,
        pub expires_at: i64,
    }
    no_relations!();
}

pub mod used_jti {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "used_jtis")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub expires_at: i64,
    }
    no_relations!();
}

pub mod dev_message {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
    #[sea_orm(table_name = "dev_messages")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub channel: String,
        pub recipient: String,
        pub purpose: String,
        pub body: String,
        pub created_at: i64,
    }
    no_relations!();
}

pub mod sms_code {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sms_codes")]
    pub struct Model {
        /// `purpose:phone` — one live code per phone and purpose.
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub code_hash: String,
        pub attempts: i64,
        pub consumed: bool,
        pub created_at: i64,
        pub expires_at: i64,
    }
    no_relations!();
}

pub mod captcha {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "captchas")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub answer_hash: String,
        pub expires_at: i64,
    }
    no_relations!();
}

pub mod audit {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_log")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: Option<String>,
        pub action: String,
        pub detail: String,
        pub ip: Option<String>,
        pub created_at: i64,
        /// Position in the hash chain (`None` for rows older than it).
        pub seq: Option<i64>,
        /// SHA-256 over the previous row's hash and this row (hex).
        pub hash: Option<String>,
    }
    no_relations!();
}

pub mod account_flow {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "account_flows")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub kind: String,
        pub user_id: String,
        pub browser: String,
        pub step: i64,
        pub req: Option<String>,
        pub expires_at: i64,
    }
    no_relations!();
}

/// Plugin key-value storage, namespaced by plugin name.
pub mod plugin_kv {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "plugin_kv")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub plugin: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub value: String,
        pub expires_at: Option<i64>,
        pub updated_at: i64,
    }
    no_relations!();
}

/// Which client may request which plugin scope.
pub mod client_plugin_scope {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "client_plugin_scopes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub client_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub scope: String,
        pub granted_at: i64,
    }
    no_relations!();
}

/// A plugin's administrative state, shared by every node.
pub mod plugin_state {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "plugin_states")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub enabled: bool,
        pub healthy: bool,
        pub last_error: Option<String>,
        pub updated_at: i64,
    }
    no_relations!();
}

pub mod appeal {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
    #[sea_orm(table_name = "appeals")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// `phone`, `id_number` or `name`.
        pub kind: String,
        pub claimed_value: String,
        pub name: String,
        pub id_number: String,
        pub contact_phone: String,
        pub details: String,
        pub appellant_user_id: Option<String>,
        /// `pending`, `approved` or `rejected`.
        pub status: String,
        pub reason: Option<String>,
        pub decided_by: Option<String>,
        pub created_at: i64,
        pub decided_at: Option<i64>,
    }
    no_relations!();
}

/// An upstream account linked to a local account (A3 identity brokering).
pub mod upstream_link {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "upstream_links")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// The configured upstream name (`upstreams.<name>`).
        pub upstream: String,
        pub issuer: String,
        pub subject: String,
        pub user_id: String,
        /// How the link was made: `password` or `phone`.
        pub method: String,
        pub created_at: i64,
    }
    no_relations!();
}

/// A sign-in in flight at an upstream provider: first the state, nonce and
/// PKCE verifier (keyed by the state's hash); after the callback, when no
/// link exists yet, the verified upstream identity waiting to be linked.
pub mod upstream_flow {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "upstream_flows")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub upstream: String,
        pub browser: String,
        pub req: Option<String>,
        pub nonce: Option<String>,
        pub verifier: Option<String>,
        pub issuer: Option<String>,
        pub subject: Option<String>,
        pub expires_at: i64,
        /// `reverify` for a re-verification; none for a sign-in.
        pub purpose: Option<String>,
        /// A re-verification's account, session and page to return to.
        pub user_id: Option<String>,
        pub sid: Option<String>,
        pub return_to: Option<String>,
    }
    no_relations!();
}

/// The real-name identity bound to an account (B2–B5). Unique per
/// (doc_type, doc_number): one holder at a time.
pub mod identity {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "identities")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub doc_type: String,
        pub doc_number: String,
        pub name: String,
        pub birth_date: Option<String>,
        pub sex: Option<String>,
        pub valid_from: String,
        /// `None` = long-term.
        pub valid_to: Option<String>,
        /// Proofing level this identity was established at (2, 3 or 4).
        pub level: i32,
        /// `id_check`, `face`, `bank_card`, `in_person` or `counter`.
        pub method: String,
        pub bound_at: i64,
        pub updated_at: i64,
    }
    no_relations!();
}

/// An identity held by another account that this account may take over
/// after an L3 face check (B5); the document as verified, as JSON.
pub mod identity_takeover {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "identity_takeovers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: String,
        pub document: String,
        pub holder_user_id: Option<String>,
        pub created_at: i64,
        pub expires_at: i64,
    }
    no_relations!();
}

/// Every verification attempt: who, what (masked), result, the provider's
/// reference. Never a face sample.
pub mod verification {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
    #[sea_orm(table_name = "verifications")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: Option<String>,
        /// `id`, `face`, `bank_card`, `in_person` or `counter`.
        pub kind: String,
        pub subject: String,
        /// An `Outcome`, or `timeout` / `unavailable`.
        pub outcome: String,
        pub reference: Option<String>,
        pub detail: Option<String>,
        pub created_at: i64,
    }
    no_relations!();
}

/// Accounts allowed to record counter verifications (L4) — with their own
/// session at L4.
pub mod operator {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "operators")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub granted_by: String,
        pub granted_at: i64,
    }
    no_relations!();
}

/// A scan-to-login / app-mediated check ticket (D1, D2).
pub mod scan_ticket {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "scan_tickets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub purpose: String,
        pub status: String,
        pub browser: String,
        pub browser_ip: String,
        pub req: Option<String>,
        pub client_id: Option<String>,
        pub subject_user_id: Option<String>,
        pub detail: Option<String>,
        pub app_user_id: Option<String>,
        pub app_client_id: Option<String>,
        pub app_grant: Option<String>,
        pub app_acr: Option<String>,
        pub app_amr: Option<String>,
        pub face_result: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
        pub expires_at: i64,
        /// The face gate this ticket opens (m20261201_000012), if any.
        pub gate_id: Option<String>,
        /// Confirming needs the verifier's face pass (m20261210_000085).
        pub face_required: bool,
    }
    no_relations!();
}

pub mod totp_factor {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "totp_factors")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        /// The shared secret, AES-256-GCM under a key derived from the master key.
        pub secret_enc: String,
        /// False while the enrolment waits for its first code.
        pub confirmed: bool,
        /// The last accepted time-step (RFC 6238 §5.2: a code is accepted once).
        pub last_step: i64,
        pub created_at: i64,
        pub last_used_at: Option<i64>,
    }
    no_relations!();
}

pub mod recovery_code {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "recovery_codes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: String,
        pub code_hash: String,
        pub used_at: Option<i64>,
        pub created_at: i64,
    }
    no_relations!();
}

pub mod passkey {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "passkeys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: String,
        /// base64url credential id, unique across accounts.
        pub cred_id: String,
        pub name: String,
        pub credential: String,
        pub created_at: i64,
        pub last_used_at: Option<i64>,
    }
    no_relations!();
}

pub mod webauthn_ceremony {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webauthn_ceremonies")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// `register`, `login` or `step_up`.
        pub kind: String,
        pub browser: String,
        pub user_id: Option<String>,
        /// webauthn-rs ceremony state as JSON.
        pub state: String,
        pub expires_at: i64,
    }
    no_relations!();
}

pub mod enterprise {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "enterprises")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub uscc: String,
        pub name: String,
        pub region: String,
        pub representative_name: String,
        pub representative_id_number: String,
        pub representative_phone: String,
        /// The natural-person account whose real-name identity matches the
        /// representative on record, once linked.
        pub representative_user_id: Option<String>,
        pub password_hash: String,
        /// When the representative passed the first-sign-in face check.
        pub representative_face_at: Option<i64>,
        pub created_at: i64,
        pub updated_at: i64,
    }
    no_relations!();
}

pub mod delegation {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "delegations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// `agent`, `person` or `kin`.
        pub kind: String,
        /// Agent: the enterprise acted for.
        pub enterprise_id: Option<String>,
        /// Person: the account that granted the right.
        pub principal_user_id: Option<String>,
        /// Kin: the relative (a minor or elder, usually without an account).
        pub relative_name: Option<String>,
        pub relative_id_number: Option<String>,
        pub relation: Option<String>,
        /// The person who acts (agent, grantee, guardian).
        pub grantee_user_id: String,
        /// Space-separated scopes a delegated token may carry (empty: any the
        /// subject token has).
        pub scopes: String,
        /// Inclusive dates `YYYY-MM-DD` (C6).
        pub valid_from: Option<String>,
        pub valid_to: Option<String>,
        /// `pending`, `active`, `rejected`, `revoked`; `expired` is computed.
        pub state: String,
        pub reason: Option<String>,
        /// Agent: when the agent passed the first-sign-in face check.
        pub face_at: Option<i64>,
        /// Agent registered through C2: the argon2id hash of the password he
        /// set there, checked at the enterprise login instead of his own
        /// account's password. Never shown or logged.
        pub agent_password_hash: Option<String>,
        pub created_at: i64,
        pub modified_at: i64,
    }
    no_relations!();
}

pub mod delegation_lock {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "delegation_locks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub n: i64,
    }
    no_relations!();
}

pub mod face_gate {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "face_gates")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub purpose: String,
        pub browser: String,
        pub id_number: String,
        /// JSON: what to do once the face check passed.
        pub payload: String,
        pub confirmed_at: Option<i64>,
        pub consumed_at: Option<i64>,
        pub expires_at: i64,
    }
    no_relations!();
}

pub mod representative_change {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
    #[sea_orm(table_name = "representative_changes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub enterprise_id: String,
        /// `phone` or `representative`.
        pub kind: String,
        pub new_name: String,
        pub new_id_number: String,
        pub new_phone: String,
        /// `pending`, `approved`, `rejected`.
        pub status: String,
        pub reason: Option<String>,
        pub decided_by: Option<String>,
        pub created_at: i64,
        pub decided_at: Option<i64>,
    }
    no_relations!();
}

pub mod session_acting {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "session_acting")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub sid: String,
        pub enterprise_id: String,
        pub delegation_id: Option<String>,
    }
    no_relations!();
}

/// The subject of an account whose `sub` is not its own id: it took over a
/// real-name identity (and its subject) or lost one (B5, `domain::tokens::subjects`).
pub mod account_subject {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "account_subjects")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub subject: String,
        pub updated_at: i64,
    }
    no_relations!();
}

/// The commitment (承诺书) a guardian accepted for one kin binding, with the
/// verifier's reference for the relative's name + ID number check.
pub mod kin_commitment {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "kin_commitments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub delegation_id: String,
        /// The guardian who accepted it.
        pub user_id: String,
        pub text_version: String,
        pub accepted_at: i64,
        pub verifier_reference: String,
        pub created_at: i64,
    }
    no_relations!();
}

/// A report of a malicious kin binding by another guardian of the same
/// relative or by the relative; an operator decides it.
pub mod kin_report {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
    #[sea_orm(table_name = "kin_reports")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub delegation_id: String,
        pub relative_id_number: String,
        pub reporter_user_id: String,
        pub reason: String,
        /// `pending`, `removed` or `dismissed`.
        pub status: String,
        pub created_at: i64,
        pub decided_at: Option<i64>,
        pub decided_by: Option<String>,
    }
    no_relations!();
}

/// A staff role of an account (issue 15): `platform_admin`, `app_admin`
/// (one row per app, `app_id` set), `reviewer`, `auditor`,
/// `counter_operator`.
pub mod staff_role {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
    #[sea_orm(table_name = "staff_roles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: String,
        pub role: String,
        /// Empty unless the role is `app_admin`.
        pub app_id: String,
        pub granted_by: String,
        pub granted_at: i64,
    }
    no_relations!();
}

pub mod second_step_pref {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "second_step_prefs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub required: bool,
        pub updated_at: i64,
    }
    no_relations!();
}

pub mod sign_in_hold {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sign_in_holds")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: String,
        pub browser: String,
        pub data: String,
        pub expires_at: i64,
    }
    no_relations!();
}

/// One pairwise `sub` (OIDC Core §8.1): random, per sector and person
/// subject (`domain::tokens::subjects`).
pub mod pairwise_subject {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pairwise_subjects")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub subject: String,
        pub sector: String,
        pub person: String,
        pub created_at: i64,
    }
    no_relations!();
}

/// A device authorization request (RFC 8628): the device code only as its
/// keyed digest; `state` pending / approved / denied / used.
pub mod device_code {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "device_codes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub device_code_hash: String,
        pub user_code: String,
        pub client_id: String,
        pub scope: String,
        pub state: String,
        pub user_id: Option<String>,
        pub sid: Option<String>,
        pub auth_time: Option<i64>,
        pub acr: Option<String>,
        /// JSON array of the session's methods at approval.
        pub amr: Option<String>,
        pub interval_secs: i64,
        pub last_poll_at: Option<i64>,
        pub created_at: i64,
        pub expires_at: i64,
    }
    no_relations!();
}

/// An image attached to an appeal as evidence (A8): JPEG or PNG by its
/// magic bytes, at most 3 per appeal of at most 2 MiB each. `expires_at`
/// is set by the decision; the purge deletes the image after it.
pub mod appeal_evidence {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "appeal_evidence")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub appeal_id: String,
        /// `image/jpeg` or `image/png`, from the sniffed bytes.
        pub content_type: String,
        pub size: i64,
        #[sea_orm(column_type = "Blob")]
        pub data: Vec<u8>,
        pub created_at: i64,
        pub expires_at: Option<i64>,
    }
    no_relations!();
}

/// An appeal's review promise (A8: one working day): when it is due and
/// when the reviewers were reminded that it is overdue (once).
pub mod appeal_due {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
    #[sea_orm(table_name = "appeal_due")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub appeal_id: String,
        pub due_at: i64,
        pub reminded_at: Option<i64>,
    }
    no_relations!();
}

/// What an agent's C2 registration form collected besides the delegation
/// itself (his document, its validity, gender, ethnicity, the region and
/// the representative's phone), shown to the representative on the agent
/// list. One row per registered agent delegation.
pub mod agent_registration {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "agent_registrations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub delegation_id: String,
        pub region: String,
        pub doc_type: String,
        pub valid_from: String,
        /// `None` = long-term.
        pub valid_to: Option<String>,
        /// `male` or `female`.
        pub gender: String,
        pub ethnicity: String,
        pub phone: String,
        pub rep_phone: String,
        pub created_at: i64,
    }
    no_relations!();
}

/// The document of a bound relative (E2) when it is not a resident ID
/// card: its type and the birth date declared with it (a passport or
/// permit number carries none), from which the relative's age is counted.
pub mod kin_document {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "kin_documents")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub delegation_id: String,
        pub doc_type: String,
        /// `YYYY-MM-DD`.
        pub birth_date: String,
        pub created_at: i64,
    }
    no_relations!();
}

/// The audit hash chain's head (one row, `id = "head"`).
pub mod audit_chain {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_chain")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub seq: i64,
        pub hash: String,
        pub legacy_rows: i64,
        pub updated_at: i64,
    }
    no_relations!();
}

/// Daily statistics counters (`key` = `day|metric|dim`).
pub mod stat_counter {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "stat_counters")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub day: i64,
        pub metric: String,
        pub dim: String,
        pub count: i64,
    }
    no_relations!();
}

pub mod console_session {
    use sea_orm::entity::prelude::*;
    /// A staff member's console session (issue 15): made by the console's
    /// OIDC callback, keyed by the SHA-256 of its cookie.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "console_sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id_hash: String,
        pub user_id: String,
        /// The provider SSO session the console signed in through.
        pub sid: String,
        /// When the strong factor (passkey or authenticator app) was last used.
        pub strong_at: i64,
        pub created_at: i64,
        pub expires_at: i64,
    }
    no_relations!();
}

pub mod faq_category {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
    #[sea_orm(table_name = "faq_categories")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub position: i64,
        pub updated_at: i64,
    }
    no_relations!();
}

pub mod faq_item {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
    #[sea_orm(table_name = "faq_items")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub category_id: String,
        pub question: String,
        pub answer: String,
        pub position: i64,
        pub updated_at: i64,
    }
    no_relations!();
}

pub mod feedback {
    use sea_orm::entity::prelude::*;
    /// A citizen's feedback or error report (G3) and the staff answer.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
    #[sea_orm(table_name = "feedback")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: String,
        /// `feedback` or `error_report` (纠错).
        pub kind: String,
        /// The local page the citizen came from.
        pub page: String,
        pub body: String,
        /// `pending` or `answered`.
        pub status: String,
        pub answer: Option<String>,
        pub answered_by: Option<String>,
        pub created_at: i64,
        pub answered_at: Option<i64>,
    }
    no_relations!();
}

pub mod initial_access_token {
    use sea_orm::entity::prelude::*;
    /// An initial access token for dynamic client registration (RFC 7591
    /// §3), issued by an administrator; only its keyed digest is stored.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "initial_access_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub token_hash: String,
        pub label: String,
        pub uses_left: i64,
        pub expires_at: i64,
        pub created_at: i64,
    }
    no_relations!();
}

/// A CIBA backchannel authentication request (m20261210_000085).
pub mod ciba_request {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ciba_requests")]
    pub struct Model {
        /// Keyed digest of the `auth_req_id`; the id itself is never stored in clear.
        #[sea_orm(primary_key, auto_increment = false)]
        pub auth_req_hash: String,
        /// The scan ticket the citizen app decides.
        pub ticket_id: String,
        pub client_id: String,
        pub user_id: String,
        pub scope: String,
        /// `poll` or `ping`.
        pub mode: String,
        pub notification_endpoint: Option<String>,
        pub ping_sealed: Option<String>,
        pub interval_secs: i64,
        pub last_poll_at: Option<i64>,
        pub notified_at: Option<i64>,
        pub created_at: i64,
        pub expires_at: i64,
    }
    no_relations!();
}
