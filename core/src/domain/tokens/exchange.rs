//! RFC 8693 token exchange (C4, C6): who may act for whom through an app.
//! An app holding a person's access token obtains a delegated access token
//! for an enterprise that person may act for (`legal_person=<credit code>`)
//! or for a person who authorised him (`delegation=<id>`). The result
//! carries `sub` = the principal and `act` = `{"sub": <the person>}`.
//!
//! Acting for an enterprise follows the same rule as the web sign-in (C1,
//! `delegation::enterprises::act_for`): representative or agent in force,
//! and no first-sign-in face check outstanding.
//!
//! Guard rails (Keycloak CVE-2022-1245): only tokens issued to the calling
//! client are accepted, the new token is for the same client, its scope
//! never exceeds the subject token's (nor the delegation's scopes), an
//! already delegated token cannot be exchanged again, and no refresh token
//! is issued. The new token hangs off a grant tied to the delegation, so
//! ending the delegation ends the token. Each exchange is audited as
//! `token_exchange`.
use crate::domain::audit::{self, Actor, Event};
use crate::domain::clients::Client;
use crate::domain::clients::scopes::ScopeSet;
use crate::domain::delegation::acting;
use crate::domain::error::{DomainError, DomainResult, OAuthError};
use crate::domain::identity::users::UserService;
use crate::domain::tokens::grants::{self, NewGrant};
use crate::domain::tokens::{TokenIssuer, UserContext};
use crate::domain::{delegation, delegation::enterprises};
use crate::store::Store;
use serde_json::Value;

fn invalid_target(d: &str) -> OAuthError {
    OAuthError::new("invalid_target", d)
}

/// Whom the new token acts for: exactly one of the two.
pub enum Principal<'a> {
    /// An enterprise by its unified social credit code.
    LegalPerson(&'a str),
    /// A person-to-person delegation by its id.
    Delegation(&'a str),
    /// Neither or both named (refused once the subject token is checked).
    Unclear,
}

/// An exchange as the calling client asked for it.
pub struct ExchangeRequest<'a> {
    pub subject_token: &'a str,
    pub principal: Principal<'a>,
    /// The scope asked for; the widest allowed when none.
    pub scope: Option<&'a str>,
    pub now: i64,
    /// The thumbprint of the DPoP key the caller proved (RFC 9449): the
    /// issued token is bound to it, and a bound subject token needs it.
    pub jkt: Option<&'a str>,
    /// The thumbprint of the client certificate the caller presented
    /// (RFC 8705), when its tokens are certificate-bound: the same rules.
    pub x5t: Option<&'a str>,
}

/// What the exchange issued.
pub struct Exchanged {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: String,
}

/// The services an exchange needs.
pub struct Deps<'a> {
    pub store: &'a Store,
    pub users: &'a UserService,
    pub tokens: &'a TokenIssuer,
    pub access_token_ttl: i64,
}

/// C4/C6: the person behind `subject_token` acts for the principal through
/// the calling `client`.
pub async fn exchange_token(d: Deps<'_>, client: &Client, r: ExchangeRequest<'_>) -> DomainResult<Exchanged> {
    let now = r.now;
    let claims = d
        .tokens
        .check_access_token(d.store, r.subject_token, now)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the subject token is invalid, expired or revoked"))?;
    let str_claim = |n: &str| claims.get(n).and_then(Value::as_str).map(String::from);
    if str_claim("client_id").as_deref() != Some(client.client_id.as_str()) {
        return Err(OAuthError::invalid_grant("the subject token was issued to another client").into());
    }
    let bound = claims.get("cnf").and_then(|c| c.get("jkt")).and_then(Value::as_str);
    if bound.is_some_and(|b| r.jkt != Some(b)) {
        return Err(OAuthError::invalid_grant("the subject token is bound to another DPoP key").into());
    }
    if crate::domain::clients::mtls::bound_thumbprint(&claims).is_some_and(|b| r.x5t != Some(b)) {
        return Err(OAuthError::invalid_grant("the subject token is bound to another client certificate").into());
    }
    if claims.contains_key("act") {
        return Err(OAuthError::invalid_grant("a delegated token cannot be exchanged again").into());
    }
    let (Some(_), Some(gid)) = (str_claim("sub"), str_claim("gid")) else {
        return Err(OAuthError::invalid_grant("the subject token does not name a person").into());
    };
    let Some(original) = grants::active_grant(d.store, &gid, now).await? else {
        return Err(OAuthError::invalid_grant("the subject token's grant was revoked").into());
    };
    // A token issued acting for someone (an enterprise session's, or a
    // delegated one) never becomes the person's own: checked on the grant,
    // not only on the token's claims.
    if original.enterprise_id.is_some() || original.delegation_id.is_some() {
        return Err(OAuthError::invalid_grant("a delegated token cannot be exchanged again").into());
    }
    // The person is the grant's account; `sub` is a subject (`domain::tokens::subjects`).
    let person = original.user_id.clone();
    let (enterprise_id, delegation) = match r.principal {
        Principal::LegalPerson(uscc) => {
            let e = match crate::domain::delegation::uscc::Uscc::parse(uscc) {
                Ok(u) => enterprises::find_by_uscc(d.store, u.as_str()).await?,
                Err(_) => None,
            }
            .ok_or_else(|| invalid_target("no such enterprise"))?;
            // The same rule as the web sign-in (C1): representative or agent
            // in force, and no first-sign-in face check outstanding.
            let Some(account) = d.users.find(&person).await? else {
                return Err(OAuthError::invalid_grant("the subject token's account is gone").into());
            };
            let Ok(signed) = enterprises::act_for(d.store, e, &account, now).await? else {
                return Err(invalid_target("the person has no active grant to act for this enterprise").into());
            };
            let Ok(s) = signed.face_checked() else {
                return Err(OAuthError::invalid_grant(
                    "the first sign-in for this enterprise awaits its face check (C1): sign in on the web first",
                )
                .into());
            };
            let dl = match &s.delegation_id {
                Some(id) => delegation::find(d.store, id).await?,
                None => None,
            };
            (Some(s.enterprise.id), dl)
        }
        Principal::Delegation(id) => {
            let dl = delegation::find(d.store, id)
                .await?
                .filter(|dl| {
                    dl.kind == delegation::Kind::Person.as_str()
                        && dl.grantee_user_id == person
                        && delegation::in_force(dl, now)
                })
                .ok_or_else(|| invalid_target("the person has no active grant under this delegation"))?;
            (None, Some(dl))
        }
        Principal::Unclear => {
            return Err(OAuthError::invalid_request("name exactly one of legal_person or delegation").into());
        }
    };
    // Never wider than the subject token, nor than the delegation's scopes.
    let mut allowed = ScopeSet::parse(str_claim("scope").as_deref().unwrap_or_default())
        .retain_allowed(&ScopeSet::parse("openid profile email phone address legal_person"))
        .to_string_joined();
    if let Some(dl) = &delegation
        && !dl.scopes.is_empty()
    {
        let limit = ScopeSet::parse(&format!("openid {}", dl.scopes));
        allowed = ScopeSet::parse(&allowed).retain_allowed(&limit).to_string_joined();
    }
    let allowed = ScopeSet::parse(&allowed);
    let scope = match r.scope {
        Some(s) => {
            let req = ScopeSet::parse(s);
            if !req.is_subset_of(&allowed) {
                return Err(OAuthError::invalid_scope("token exchange may not widen the scope").into());
            }
            req
        }
        None => allowed,
    };
    let principal = match (&enterprise_id, &delegation) {
        (Some(e), _) => format!("enterprise:{e}"),
        (None, Some(dl)) => format!("delegation:{}", dl.id),
        (None, None) => String::new(),
    };
    let g = grants::create_direct(
        d.store,
        NewGrant {
            client_id: client.client_id.clone(),
            user_id: person.clone(),
            sid: None,
            scope: scope.to_string_joined(),
            claims: None,
            nonce: None,
            auth_time: original.auth_time,
            acr: original.acr.clone(),
            amr: serde_json::from_str(&original.amr).unwrap_or_default(),
            enterprise_id,
            delegation_id: delegation.map(|dl| dl.id),
            sector: client.pairwise_sector().map(str::to_string),
        },
        d.access_token_ttl,
        now,
    )
    .await?;
    let Ok(Some(acting)) = acting::for_grant(d.store, &g, now).await? else {
        grants::revoke_grant(d.store, &g.id, now).await?;
        return Err(invalid_target("the delegation ended meanwhile").into());
    };
    let scope_joined = scope.to_string_joined();
    let at = d
        .tokens
        .access_token_bound(
            &client.client_id,
            &scope_joined,
            Some(UserContext { grant: &g, acting: Some(&acting) }),
            crate::domain::tokens::Confirmation { jkt: r.jkt, x5t: r.x5t },
        )
        .map_err(|e| DomainError::Internal(anyhow::anyhow!("{e}")))?;
    let detail = format!("client={} scope={scope_joined}", client.client_id);
    let e = Event::new("token_exchange", Actor::User(&person), &principal).detail(&detail);
    audit::record(d.store, e, now).await?;
    Ok(Exchanged { access_token: at.token, expires_in: at.expires_in, scope: scope_joined })
}
