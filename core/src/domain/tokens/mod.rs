//! Minting and checking the tokens we sign: RFC 9068 JWT access tokens, ID
//! tokens (OIDC Core §2) and back-channel logout tokens.
pub mod authorize;
pub mod ciba;
pub mod device;
pub mod dpop;
pub mod exchange;
pub mod grants;
pub mod par;
pub mod request_object;
pub mod subjects;
use crate::clock::Clock;
use crate::config::TokenConfig;
use crate::crypto::jws::{self, Alg};
use crate::crypto::keys::{KeyPurpose, KeyRing};
use crate::crypto::{at_hash, random_token};
use crate::domain::clients::Client;
use crate::store::Store;
use crate::store::entities::{grant, revoked_token};
use sea_orm::{DbErr, EntityTrait};
use serde_json::{Map, Value, json};

#[derive(Clone)]
pub struct TokenIssuer {
    pub issuer: String,
    pub keys: KeyRing,
    pub cfg: TokenConfig,
    /// `iat` and `exp` of what we mint, and expiry of what we verify.
    pub clock: Clock,
}

/// Who a user token speaks for, copied from the grant.
/// What a token is bound to (its `cnf` claim): the thumbprint of a DPoP
/// key (RFC 9449) and/or of a client certificate (RFC 8705).
#[derive(Debug, Clone, Copy, Default)]
pub struct Confirmation<'a> {
    pub jkt: Option<&'a str>,
    pub x5t: Option<&'a str>,
}

impl Confirmation<'_> {
    fn claim(&self) -> Option<Value> {
        let mut cnf = Map::new();
        if let Some(jkt) = self.jkt {
            cnf.insert("jkt".into(), jkt.into());
        }
        if let Some(x5t) = self.x5t {
            cnf.insert(crate::domain::clients::mtls::CNF_MEMBER.into(), x5t.into());
        }
        (!cnf.is_empty()).then_some(Value::Object(cnf))
    }
}

pub struct UserContext<'a> {
    pub grant: &'a grant::Model,
    /// Set when the grant acts for an enterprise or another person (C4).
    pub acting: Option<&'a crate::domain::delegation::acting::Acting>,
}

pub struct AccessToken {
    pub token: String,
    pub expires_in: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("no active signing key for {0}")]
    NoKey(&'static str),
}

impl TokenIssuer {
    fn sign(&self, alg: Alg, typ: &str, claims: &Value) -> Result<String, SignError> {
        let keys = self.keys.snapshot();
        let key = keys.signer(alg).ok_or(SignError::NoKey(alg.name()))?;
        Ok(key.sign_jwt(typ, claims))
    }

    /// RFC 9068 access token. `aud` is the issuer: the userinfo endpoint is
    /// the resource server for these tokens. `gid` ties the token to its
    /// grant so revoking the grant revokes the token.
    pub fn access_token(
        &self,
        client_id: &str,
        scope: &str,
        user: Option<UserContext<'_>>,
    ) -> Result<AccessToken, SignError> {
        self.access_token_bound(client_id, scope, user, Confirmation::default())
    }

    /// `access_token`, bound to a DPoP key (`cnf.jkt`, RFC 9449 §6) and/or
    /// a client certificate (`cnf.x5t#S256`, RFC 8705 §3) when given.
    pub fn access_token_bound(
        &self,
        client_id: &str,
        scope: &str,
        user: Option<UserContext<'_>>,
        bound: Confirmation<'_>,
    ) -> Result<AccessToken, SignError> {
        let now = self.clock.now();
        let ttl = self.cfg.access_token_ttl;
        let mut claims = json!({
            "iss": self.issuer,
            "aud": self.issuer,
            "client_id": client_id,
            "iat": now,
            "exp": now + ttl,
            "jti": random_token(16),
            "scope": scope,
        });
        if let (Some(ctx), Some(map)) = (user, claims.as_object_mut()) {
            map.insert("sub".into(), crate::domain::tokens::subjects::of_grant(ctx.grant).into());
            map.insert("gid".into(), ctx.grant.id.clone().into());
            map.insert("auth_time".into(), ctx.grant.auth_time.into());
            map.insert("acr".into(), ctx.grant.acr.clone().into());
            map.insert("amr".into(), serde_json::from_str::<Value>(&ctx.grant.amr).unwrap_or(json!([])));
            if let Some(sid) = &ctx.grant.sid {
                map.insert("sid".into(), sid.clone().into());
            }
            if let Some(acting) = ctx.acting {
                acting.apply(map, &crate::domain::clients::scopes::ScopeSet::parse(scope));
            }
        } else if let Some(map) = claims.as_object_mut() {
            map.insert("sub".into(), client_id.into());
        }
        if let (Some(cnf), Some(map)) = (bound.claim(), claims.as_object_mut()) {
            map.insert("cnf".into(), cnf);
        }
        Ok(AccessToken { token: self.sign(Alg::Es256, "at+jwt", &claims)?, expires_in: ttl })
    }

    /// ID token for a grant; `extra` carries claims requested through the
    /// `claims` parameter. The nonce is included only on the code exchange.
    pub fn id_token(
        &self,
        client: &Client,
        g: &grant::Model,
        access_token: Option<&str>,
        include_nonce: bool,
        extra: Map<String, Value>,
        acting: Option<&crate::domain::delegation::acting::Acting>,
    ) -> Result<String, SignError> {
        let now = self.clock.now();
        let mut claims = extra;
        let fixed = json!({
            "iss": self.issuer,
            "sub": crate::domain::tokens::subjects::of_grant(g),
            "aud": client.client_id,
            "azp": client.client_id,
            "exp": now + self.cfg.id_token_ttl,
            "iat": now,
            "auth_time": g.auth_time,
            "acr": g.acr,
            "amr": serde_json::from_str::<Value>(&g.amr).unwrap_or(json!([])),
        });
        if let Value::Object(map) = fixed {
            claims.extend(map);
        }
        if let Some(sid) = &g.sid {
            claims.insert("sid".into(), sid.clone().into());
        }
        if include_nonce && let Some(nonce) = &g.nonce {
            claims.insert("nonce".into(), nonce.clone().into());
        }
        if let Some(at) = access_token {
            claims.insert("at_hash".into(), at_hash(at).into());
        }
        if let Some(acting) = acting {
            acting.apply(&mut claims, &crate::domain::clients::scopes::ScopeSet::parse(&g.scope));
        }
        self.sign(client.signing_alg(), "JWT", &Value::Object(claims))
    }

    /// Userinfo as a signed JWT (OIDC Core §5.3.2), for a client that
    /// registered `userinfo_signed_response_alg`: the claims with `iss` and
    /// `aud` (the client) added.
    pub fn userinfo_jwt(&self, client: &Client, alg: Alg, mut claims: Map<String, Value>) -> Result<String, SignError> {
        claims.insert("iss".into(), self.issuer.clone().into());
        claims.insert("aud".into(), client.client_id.clone().into());
        claims.insert("iat".into(), self.clock.now().into());
        self.sign(alg, "JWT", &Value::Object(claims))
    }

    /// An introspection answer as a JWT (RFC 9701 §5): the RFC 7662
    /// response under `token_introspection`, for the client that asked.
    pub fn introspection_jwt(&self, client_id: &str, alg: Alg, response: Value) -> Result<String, SignError> {
        let claims = json!({
            "iss": self.issuer,
            "aud": client_id,
            "iat": self.clock.now(),
            "token_introspection": response,
        });
        self.sign(alg, "token-introspection+jwt", &claims)
    }

    /// OIDC Back-Channel Logout 1.0 §2.4 logout token.
    pub fn logout_token(&self, client: &Client, sub: &str, sid: &str) -> Result<String, SignError> {
        let now = self.clock.now();
        let claims = json!({
            "iss": self.issuer,
            "aud": client.client_id,
            "iat": now,
            "exp": now + 120,
            "jti": random_token(16),
            "sub": sub,
            "sid": sid,
            "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
        });
        self.sign(client.signing_alg(), "logout+jwt", &claims)
    }

    /// Verifies a JWT we signed: known kid, matching alg, our issuer, the
    /// expected `typ`; expiry is checked unless `allow_expired`.
    pub fn verify_own(&self, token: &str, typ: &str, allow_expired: bool) -> Option<Map<String, Value>> {
        self.verify_own_at(token, typ, (!allow_expired).then(|| self.clock.now()))
    }

    /// `verify_own`, checking expiry at `live_at` when given.
    fn verify_own_at(&self, token: &str, typ: &str, live_at: Option<i64>) -> Option<Map<String, Value>> {
        let parsed = jws::parse(token)?;
        let keys = self.keys.snapshot();
        // Only token keys: a plugin-signed JWT names a plugin key.
        let key = keys.verifier(parsed.header.kid.as_deref()?, KeyPurpose::Token)?;
        if parsed.header.alg != key.alg.name() || parsed.header.typ.as_deref() != Some(typ) {
            return None;
        }
        if !key.public.verify(parsed.signing_input.as_bytes(), &parsed.signature) {
            return None;
        }
        let Value::Object(claims) = parsed.payload else {
            return None;
        };
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return None;
        }
        if let Some(now) = live_at
            && claims.get("exp").and_then(Value::as_i64).is_none_or(|e| e <= now)
        {
            return None;
        }
        Some(claims)
    }

    /// Full validation of an access token presented to us: signature,
    /// expiry, that neither it nor its grant was revoked, and — for a token
    /// acting for an enterprise or a person (C4, C6) — that the delegation
    /// is still in force at `now` (an expired one ends its tokens as a
    /// revoked one does). Every resource path (userinfo, introspection,
    /// token exchange, the scan, face and plugin APIs) calls this.
    pub async fn check_access_token(
        &self,
        db: &Store,
        token: &str,
        now: i64,
    ) -> Result<Option<Map<String, Value>>, DbErr> {
        Ok(self.check_access_token_grant(db, token, now).await?.map(|(claims, _)| claims))
    }

    /// [`Self::check_access_token`], also handing back the grant a user's
    /// token was issued under (read for the check anyway), so a caller such
    /// as userinfo does not read it a second time.
    pub async fn check_access_token_grant(
        &self,
        db: &Store,
        token: &str,
        now: i64,
    ) -> Result<Option<(Map<String, Value>, Option<crate::store::entities::grant::Model>)>, DbErr> {
        let Some(claims) = self.verify_own_at(token, "at+jwt", Some(now)) else {
            return Ok(None);
        };
        let Some(jti) = claims.get("jti").and_then(Value::as_str) else {
            return Ok(None);
        };
        let mut grant = None;
        if let Some(gid) = claims.get("gid").and_then(Value::as_str) {
            // A user's token: its grant and whether the token was revoked, in one read.
            let Some(g) = grants::live_grant_of_token(db, gid, jti, now).await? else {
                return Ok(None);
            };
            if (g.enterprise_id.is_some() || g.delegation_id.is_some())
                && crate::domain::delegation::acting::for_grant(db, &g, now).await?.is_err()
            {
                return Ok(None);
            }
            grant = Some(g);
        } else if revoked_token::Entity::find_by_id(jti.to_owned()).one(db).await?.is_some() {
            return Ok(None);
        }
        Ok(Some((claims, grant)))
    }

    /// Revokes one access token until it would have expired anyway.
    pub async fn revoke_access_token(&self, db: &Store, claims: &Map<String, Value>) -> Result<(), DbErr> {
        use sea_orm::sea_query::OnConflict;
        let (Some(jti), Some(exp)) =
            (claims.get("jti").and_then(Value::as_str), claims.get("exp").and_then(Value::as_i64))
        else {
            return Ok(());
        };
        let model = revoked_token::ActiveModel { jti: sea_orm::Set(jti.to_string()), expires_at: sea_orm::Set(exp) };
        revoked_token::Entity::insert(model)
            .on_conflict(OnConflict::column(revoked_token::Column::Jti).do_nothing().to_owned())
            .exec_without_returning(db)
            .await?;
        Ok(())
    }
}
