//! Moving an authorization request forward: decide the next step and, when
//! everything is in place, issue the code. Shared by /authorize, its resume
//! point and the interaction pages.
use crate::domain::assurance;
use crate::domain::authn::sessions::SessionInfo;
use crate::domain::error::{DomainError, OAuthError};
use crate::domain::tokens::authorize::{self, AuthRequest, Next, Standing};
use crate::domain::tokens::grants::{self, NewGrant};
use crate::domain::{authn::pending, clients::consents};
use crate::server::AppState;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub enum Outcome {
    /// 303 to this absolute URL (the client, or one of our pages).
    Redirect(String),
    /// An error page with this locale key.
    ErrorPage(StatusCode, &'static str),
}

impl Outcome {
    pub fn into_response_with(self, state: &AppState, locale: &str) -> Response {
        match self {
            Outcome::Redirect(url) => see_other(&url),
            Outcome::ErrorPage(status, key) => crate::kit::pages::error_page(state, status, locale, key),
        }
    }
}

pub fn see_other(url: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(url) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The authorization response URL (RFC 6749 §4.1.2 with RFC 9207 `iss`).
pub fn client_redirect(redirect_uri: &str, pairs: &[(&str, Option<&str>)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in pairs {
                    if let Some(v) = v {
                        q.append_pair(k, v);
                    }
                }
            }
            u.to_string()
        }
        Err(_) => redirect_uri.to_string(),
    }
}

pub fn error_redirect(state: &AppState, redirect_uri: &str, st: Option<&str>, e: &OAuthError) -> String {
    client_redirect(
        redirect_uri,
        &[
            ("error", Some(e.code)),
            ("error_description", Some(e.description.as_str())),
            ("state", st),
            ("iss", Some(state.config.issuer.as_str())),
        ],
    )
}

fn page_url(state: &AppState, path: &str, id: &str) -> String {
    format!("{}{}?req={}", state.config.issuer, path, id)
}

/// Decides and performs the next step for `req`. `pending_id` is the stored
/// request when there is one; it is finished (deleted) exactly once.
pub async fn advance(
    state: &AppState,
    req: AuthRequest,
    pending_id: Option<String>,
    browser_hash: &str,
    session: Option<SessionInfo>,
) -> Result<Outcome, DomainError> {
    let Some(client) = state.clients.find_current(&req.client_id).await?.filter(|c| !c.disabled) else {
        return Ok(Outcome::ErrorPage(StatusCode::BAD_REQUEST, "error_unknown_client"));
    };
    // A first-party app that skips consent never needs the stored consent.
    let consented = match &session {
        Some(s) if !client.skip_consent => {
            consents::covers(&state.store, &s.user_id, &client.client_id, &req.scope, &req.consent_claims()).await?
        }
        _ => false,
    };
    // The proofing level and whom the session acts for, in one read.
    let (proofing, acting) = match &session {
        Some(s) => {
            let st = crate::domain::delegation::acting::standing(&state.store, &s.sid, &s.user_id).await?;
            (st.proofing, st.acting)
        }
        None => (1, None),
    };
    let standing = Standing {
        proofing,
        factors: session.as_ref().map(|s| s.factors.as_slice()).unwrap_or_default(),
        now: state.clock.now(),
        cfg: &state.config.assurance,
    };
    let levels = req.level_request(&state.config.acr_prefix, client.min_level);
    let level = standing.level();
    let next = authorize::decide(&req, session.as_ref(), consented, client.skip_consent, levels, &standing);
    let path = match next {
        Next::Login => "/login",
        Next::SelectAccount => "/select-account",
        Next::StepUp => "/step-up",
        Next::Consent => "/consent",
        Next::Fail(e) => {
            if let Some(id) = &pending_id {
                pending::finish(&state.store, id).await?;
            }
            return Ok(Outcome::Redirect(error_redirect(state, &req.redirect_uri, req.state.as_deref(), &e)));
        }
        Next::Issue => {
            let Some(session) = session else {
                return Err(DomainError::Internal(anyhow::anyhow!("issue without a session")));
            };
            if let Some(id) = &pending_id
                && !pending::finish(&state.store, id).await?
            {
                return Ok(Outcome::ErrorPage(StatusCode::BAD_REQUEST, "error_request_expired"));
            }
            // C4: a session acting for an enterprise makes grants that do too.
            let code = grants::create_with_code(
                &state.store,
                &state.hasher,
                NewGrant {
                    client_id: client.client_id.clone(),
                    user_id: session.user_id.clone(),
                    sid: Some(session.sid.clone()),
                    scope: req.scope.clone(),
                    claims: req.claims.as_ref().map(|c| c.to_string()),
                    nonce: req.nonce.clone(),
                    auth_time: session.auth_time,
                    acr: assurance::acr(&state.config.acr_prefix, level),
                    amr: session.amr(),
                    enterprise_id: acting.as_ref().map(|a| a.enterprise_id.clone()),
                    delegation_id: acting.and_then(|a| a.delegation_id),
                    sector: client.pairwise_sector().map(str::to_string),
                },
                &req.redirect_uri,
                req.code_challenge.clone(),
                req.dpop_jkt.clone(),
                // FAPI 2.0 §5.3.2.1: codes of at most 60 seconds.
                if client.is_fapi2() { state.config.tokens.code_ttl.min(60) } else { state.config.tokens.code_ttl },
                state.config.tokens.refresh_token_ttl,
                state.clock.now(),
            )
            .await?;
            state.session_clients.record(&state.store, &session.sid, &client.client_id).await?;
            return Ok(Outcome::Redirect(client_redirect(
                &req.redirect_uri,
                &[("code", Some(&code)), ("state", req.state.as_deref()), ("iss", Some(&state.config.issuer))],
            )));
        }
    };
    let id = match pending_id {
        Some(id) => id,
        None => pending::save(&state.store, &req, browser_hash, state.clock.now()).await?,
    };
    Ok(Outcome::Redirect(page_url(state, path, &id)))
}
