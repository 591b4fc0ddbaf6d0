//! Pushed authorization requests (RFC 9126). The client pushes its request
//! (authenticated) and gets a `request_uri` that is bound to it, short-lived
//! and redeemable once; `/authorize` then uses only the pushed parameters.
//! This module also resolves what `/authorize` received into the
//! parameters to validate: a pushed request, a signed request object
//! (RFC 9101), or the plain query.
use crate::crypto::random_token;
use crate::domain::clients::Client;
use crate::domain::error::{DomainResult, OAuthError};
use crate::domain::tokens::authorize::{self, ErrorRedirect, PageError, RequestError};
use crate::domain::tokens::request_object;
use crate::store::Store;
use crate::store::entities::par_request;
use sea_orm::{ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, QueryFilter, Set};

pub const URN_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

type Params = Vec<(String, String)>;

fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

/// Stores an authenticated client's request after validating it as
/// `/authorize` would; returns the `request_uri`. `proof_jkt` is the key of
/// a DPoP proof sent with the push (RFC 9449 §10.1): it binds the code as
/// `dpop_jkt` does, and a `dpop_jkt` naming another key is refused.
pub async fn push(
    db: &Store,
    client: &Client,
    params: Params,
    proof_jkt: Option<&str>,
    issuer: &str,
    ttl: i64,
    now: i64,
) -> DomainResult<String> {
    if get(&params, "request_uri").is_some() {
        return Err(OAuthError::invalid_request("request_uri must not be pushed").into());
    }
    if get(&params, "client_id").is_some_and(|c| c != client.client_id) {
        return Err(OAuthError::invalid_request("client_id does not match the authenticated client").into());
    }
    let mut params = match get(&params, "request") {
        Some(object) => request_object::verify(object, client, &params, issuer, now)?,
        None => params,
    };
    params.retain(|(k, _)| k != "client_id");
    params.push(("client_id".into(), client.client_id.clone()));
    if let Some(jkt) = proof_jkt {
        match get(&params, "dpop_jkt") {
            Some(named) if named != jkt => {
                return Err(OAuthError::new("invalid_dpop_proof", "dpop_jkt does not name the DPoP proof's key").into());
            }
            Some(_) => {}
            None => params.push(("dpop_jkt".into(), jkt.to_string())),
        }
    }
    // The same checks as at /authorize, answered here as JSON errors.
    let redirect_uri = authorize::redirect_target(&params, Some(client))
        .map_err(|e| OAuthError::invalid_request(format!("redirect_uri: {}", e.message_key())))?;
    match authorize::parse(&params, client, redirect_uri, |_| Some(String::new()), now) {
        Ok(_) => {}
        Err(RequestError::Redirect(r)) => return Err(r.error.into()),
        Err(RequestError::Page(e)) => return Err(OAuthError::invalid_request(e.message_key()).into()),
    }
    let id = random_token(24);
    par_request::ActiveModel {
        id: Set(id.clone()),
        client_id: Set(client.client_id.clone()),
        params: Set(serde_json::to_string(&params).unwrap_or_default()),
        expires_at: Set(now + ttl),
    }
    .insert(db)
    .await?;
    Ok(format!("{URN_PREFIX}{id}"))
}

/// Redeems a `request_uri` once, for the client it was pushed by, before it
/// expires. The delete decides the winner, so two redemptions on any nodes
/// cannot both succeed.
pub async fn take(db: &Store, request_uri: &str, client_id: &str, now: i64) -> Result<Option<Params>, DbErr> {
    let Some(id) = request_uri.strip_prefix(URN_PREFIX).filter(|id| !id.is_empty() && id.len() <= 128) else {
        return Ok(None);
    };
    let Some(row) = par_request::Entity::find_by_id(id.to_owned()).one(db).await? else {
        return Ok(None);
    };
    if row.client_id != client_id || row.expires_at <= now {
        return Ok(None);
    }
    let won = par_request::Entity::delete_many()
        .filter(par_request::Column::Id.eq(id))
        .filter(par_request::Column::ClientId.eq(client_id))
        .exec(db)
        .await?;
    if won.rows_affected != 1 {
        return Ok(None);
    }
    Ok(serde_json::from_str(&row.params).ok())
}

/// The parameters `/authorize` validates for `client`: the pushed ones
/// for a `request_uri`, those of a verified request object, or the query as
/// sent. A client that must push (per client, globally or by the FAPI 2.0
/// profile) is refused anything else. A refusal is redirected only when the
/// query itself names a redirect URI registered for the client (as OIDC
/// clients send beside a request object); otherwise it is a page.
pub async fn resolve(
    db: &Store,
    client: &Client,
    params: Params,
    issuer: &str,
    now: i64,
) -> DomainResult<Result<Params, RequestError>> {
    let refuse = |page: PageError, error: OAuthError| match authorize::redirect_target(&params, Some(client)) {
        Ok(uri) => RequestError::Redirect(ErrorRedirect {
            redirect_uri: uri.to_string(),
            state: get(&params, "state").map(String::from),
            error,
        }),
        Err(_) => RequestError::Page(page),
    };
    if let Some(uri) = get(&params, "request_uri") {
        return Ok(match take(db, uri, &client.client_id, now).await? {
            Some(pushed) => Ok(pushed),
            None => Err(refuse(
                PageError::RequestUriInvalid,
                OAuthError::new("invalid_request_uri", "the request_uri is unknown, expired or already used"),
            )),
        });
    }
    if client.requires_par() {
        return Ok(Err(refuse(
            PageError::PushRequired,
            OAuthError::invalid_request("this client must use pushed authorization requests"),
        )));
    }
    match get(&params, "request") {
        Some(object) => Ok(request_object::verify(object, client, &params, issuer, now)
            .map_err(|e| refuse(PageError::RequestObjectInvalid, e))),
        None => Ok(Ok(params)),
    }
}
