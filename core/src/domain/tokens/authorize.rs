//! The authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1):
//! parsing, validation and the decision of what happens next. Until the
//! client and redirect URI are known good, errors are shown as a page and
//! never redirected (RFC 6749 §4.1.2.1, RFC 9700 §4.1).
use crate::domain::assurance;
use crate::domain::authn::sessions::SessionInfo;
use crate::domain::clients::Client;
use crate::domain::clients::scopes::ScopeSet;
use crate::domain::error::OAuthError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why no redirect can be made: shown to the user as an error page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageError {
    MissingClient,
    UnknownClient,
    MissingRedirectUri,
    UnregisteredRedirectUri,
    DuplicateParameter,
    /// The client must push its request (RFC 9126 §5).
    PushRequired,
    /// A `request_uri` unknown, expired, used or of another client.
    RequestUriInvalid,
    /// A request object unsigned or not verifiable (RFC 9101).
    RequestObjectInvalid,
}

impl PageError {
    /// Locale key of the message shown.
    pub fn message_key(self) -> &'static str {
        match self {
            PageError::MissingClient => "error_missing_client",
            PageError::UnknownClient => "error_unknown_client",
            PageError::MissingRedirectUri => "error_missing_redirect_uri",
            PageError::UnregisteredRedirectUri => "error_unregistered_redirect_uri",
            PageError::DuplicateParameter => "error_duplicate_parameter",
            PageError::PushRequired => "error_par_required",
            PageError::RequestUriInvalid => "error_request_uri_invalid",
            PageError::RequestObjectInvalid => "error_request_object_invalid",
        }
    }
}

/// A validated authorization request, stored while the user signs in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub ui_locales: Option<String>,
    /// The `sub` of `id_token_hint`; the handler replaces it with the account
    /// that subject names (`domain::tokens::subjects::account_for`), empty if none.
    pub id_token_hint_sub: Option<String>,
    pub acr_values: Vec<String>,
    pub claims: Option<Value>,
    pub created_at: i64,
    /// Progress through the interaction, set as the user completes steps.
    #[serde(default)]
    pub account_chosen: bool,
    /// The user signed in during this request (satisfies prompt=login, max_age).
    #[serde(default)]
    pub login_done: bool,
    #[serde(default)]
    pub consent_given: bool,
    /// The user chose to go on below a level asked for only voluntarily
    /// (`acr_values`); a required level can never be declined.
    #[serde(default)]
    pub step_up_declined: bool,
    /// RFC 9449 §10: the thumbprint of the DPoP key the code is bound to.
    #[serde(default)]
    pub dpop_jkt: Option<String>,
}

/// Where to send the error: the validated redirect URI and the state.
#[derive(Debug, Clone)]
pub struct ErrorRedirect {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub error: OAuthError,
}

#[derive(Debug)]
pub enum RequestError {
    Page(PageError),
    Redirect(ErrorRedirect),
}

fn single<'a>(params: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, ()> {
    let mut found = None;
    for (k, v) in params {
        if k == name {
            if found.is_some() {
                return Err(());
            }
            found = Some(v.as_str());
        }
    }
    Ok(found.filter(|v| !v.is_empty()))
}

/// The first step: client and redirect URI, the only errors that must not
/// be redirected.
pub fn redirect_target<'a>(params: &'a [(String, String)], client: Option<&Client>) -> Result<&'a str, PageError> {
    let client = client.ok_or(PageError::UnknownClient)?;
    let uri = single(params, "redirect_uri").map_err(|_| PageError::DuplicateParameter)?;
    let uri = uri.ok_or(PageError::MissingRedirectUri)?;
    if !client.matches_redirect_uri(uri) {
        return Err(PageError::UnregisteredRedirectUri);
    }
    Ok(uri)
}

pub fn client_id_param(params: &[(String, String)]) -> Result<&str, PageError> {
    single(params, "client_id").map_err(|_| PageError::DuplicateParameter)?.ok_or(PageError::MissingClient)
}

/// The rest of the validation, once errors can be redirected.
/// `id_token_hint` is checked by the caller and passed as its subject.
pub fn parse(
    params: &[(String, String)],
    client: &Client,
    redirect_uri: &str,
    hint_sub: impl FnOnce(&str) -> Option<String>,
    now: i64,
) -> Result<AuthRequest, RequestError> {
    // `state` is echoed even on a duplicate-parameter error when it is single.
    let state = single(params, "state").ok().flatten().map(str::to_string);
    let fail = |error: OAuthError| {
        RequestError::Redirect(ErrorRedirect { redirect_uri: redirect_uri.to_string(), state: state.clone(), error })
    };
    let mut seen = std::collections::HashSet::new();
    for (k, _) in params {
        if !seen.insert(k.as_str()) {
            return Err(fail(OAuthError::invalid_request(format!("parameter `{k}` is repeated"))));
        }
    }
    let get = |name: &str| single(params, name).ok().flatten();
    if get("request").is_some() {
        return Err(fail(OAuthError::new("request_not_supported", "request objects are not supported")));
    }
    if get("request_uri").is_some() {
        return Err(fail(OAuthError::new("request_uri_not_supported", "request_uri is not supported")));
    }
    match get("response_type") {
        None => {
            return Err(fail(OAuthError::invalid_request("response_type is required")));
        }
        Some("code") => {}
        Some(_) => {
            return Err(fail(OAuthError::new("unsupported_response_type", "only response_type=code is supported")));
        }
    }
    if let Some(mode) = get("response_mode")
        && mode != "query"
    {
        return Err(fail(OAuthError::invalid_request("only response_mode=query is supported")));
    }
    if !client.allows_grant("authorization_code") {
        return Err(fail(OAuthError::unauthorized_client("this client may not use the authorization code flow")));
    }
    let requested = ScopeSet::parse(get("scope").unwrap_or(""));
    let openid = requested.contains("openid");
    for oidc_only in ["nonce", "prompt", "max_age", "id_token_hint", "claims", "acr_values"] {
        if !openid && get(oidc_only).is_some() {
            return Err(fail(OAuthError::invalid_request(format!("`{oidc_only}` requires the openid scope"))));
        }
    }
    let scope = requested.retain_allowed(&client.scopes());
    if scope.is_empty() {
        return Err(fail(OAuthError::invalid_scope("no requested scope is available to this client")));
    }

    let code_challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (Some(c), Some("S256")) => Some(c),
        (Some(_), Some(_)) => {
            return Err(fail(OAuthError::invalid_request("code_challenge_method must be S256")));
        }
        (Some(_), None) => {
            return Err(fail(OAuthError::invalid_request("code_challenge_method=S256 is required")));
        }
        (None, Some(_)) => {
            return Err(fail(OAuthError::invalid_request("code_challenge is missing")));
        }
        (None, None) => None,
    };
    if let Some(c) = code_challenge
        && (c.len() != 43 || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err(fail(OAuthError::invalid_request("code_challenge must be a base64url SHA-256 (43 characters)")));
    }
    if (client.is_public() || client.is_fapi2()) && code_challenge.is_none() {
        return Err(fail(OAuthError::invalid_request(
            "PKCE (code_challenge with S256) is required for public clients",
        )));
    }

    let prompt: Vec<String> =
        get("prompt").unwrap_or("").split(' ').filter(|p| !p.is_empty()).map(String::from).collect();
    for p in &prompt {
        if !matches!(p.as_str(), "none" | "login" | "consent" | "select_account") {
            return Err(fail(OAuthError::invalid_request(format!("unsupported prompt value `{p}`"))));
        }
    }
    if prompt.iter().any(|p| p == "none") && prompt.len() > 1 {
        return Err(fail(OAuthError::invalid_request("prompt=none cannot be combined with other values")));
    }
    let max_age = match get("max_age") {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                return Err(fail(OAuthError::invalid_request("max_age must be a non-negative integer")));
            }
        },
    };
    let claims = match get("claims") {
        None => None,
        Some(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(requested)) => Some(Value::Object(kept_claims(requested, &client.scopes()))),
            _ => {
                return Err(fail(OAuthError::invalid_request("claims must be a JSON object")));
            }
        },
    };
    let id_token_hint_sub = match get("id_token_hint") {
        None => None,
        Some(hint) => match hint_sub(hint) {
            Some(sub) => Some(sub),
            None => {
                return Err(fail(OAuthError::invalid_request("id_token_hint is not an ID token issued by us")));
            }
        },
    };
    if let Some(n) = get("nonce")
        && n.len() > 512
    {
        return Err(fail(OAuthError::invalid_request("nonce is too long")));
    }
    if state.as_ref().is_some_and(|s| s.len() > 2048) {
        return Err(fail(OAuthError::invalid_request("state is too long")));
    }
    // A JWK SHA-256 thumbprint: 43 base64url characters (RFC 7638).
    let dpop_jkt = get("dpop_jkt");
    if let Some(j) = dpop_jkt
        && (j.len() != 43 || !j.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err(fail(OAuthError::invalid_request("dpop_jkt must be a JWK SHA-256 thumbprint (RFC 7638)")));
    }
    Ok(AuthRequest {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_string(),
        scope: scope.to_string_joined(),
        state: state.clone(),
        nonce: get("nonce").map(String::from),
        code_challenge: code_challenge.map(String::from),
        prompt,
        max_age,
        login_hint: get("login_hint").map(|h| h.chars().take(64).collect()),
        ui_locales: get("ui_locales").map(String::from),
        id_token_hint_sub,
        acr_values: get("acr_values").unwrap_or("").split(' ').filter(|a| !a.is_empty()).map(String::from).collect(),
        claims,
        created_at: now,
        account_chosen: false,
        login_done: false,
        consent_given: false,
        step_up_declined: false,
        dpop_jkt: dpop_jkt.map(String::from),
    })
}

/// OIDC Core §5.5: of a `claims` request, only the members for the ID
/// token and userinfo are kept, and in them only claims the client's
/// allowed scopes can release (`scopes::releasable`) plus `acr`, whose
/// essential values are an authentication requirement (B6), not data about
/// the person. Unknown claims are ignored, so they are never stored,
/// shown for consent or looked up in the profile.
fn kept_claims(requested: serde_json::Map<String, Value>, allowed: &ScopeSet) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for (target, members) in requested {
        if !matches!(target.as_str(), "id_token" | "userinfo") {
            continue;
        }
        let Value::Object(members) = members else {
            continue;
        };
        let kept: serde_json::Map<String, Value> = members
            .into_iter()
            .filter(|(claim, _)| claim == "acr" || crate::domain::clients::scopes::releasable(claim, allowed))
            .collect();
        out.insert(target, Value::Object(kept));
    }
    out
}

impl AuthRequest {
    /// The claims asked for individually that need the user's consent
    /// (every kept one but `acr`), each named once.
    pub fn consent_claims(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for target in ["id_token", "userinfo"] {
            for c in self.requested_claims(target) {
                if c != "acr" && !out.contains(&c) {
                    out.push(c);
                }
            }
        }
        out
    }

    pub fn has_prompt(&self, p: &str) -> bool {
        self.prompt.iter().any(|x| x == p)
    }

    /// Names of claims asked for individually, for a target
    /// (`id_token` or `userinfo`).
    pub fn requested_claims(&self, target: &str) -> Vec<String> {
        self.claims
            .as_ref()
            .and_then(|c| c.get(target))
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The acr values that must be met: `claims.*.acr` marked essential.
    pub fn essential_acr(&self) -> Option<Vec<String>> {
        for target in ["id_token", "userinfo"] {
            let Some(acr) = self.claims.as_ref().and_then(|c| c.get(target)).and_then(|t| t.get("acr")) else {
                continue;
            };
            if acr.get("essential").and_then(Value::as_bool) != Some(true) {
                continue;
            }
            let mut values: Vec<String> = acr
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
                .unwrap_or_default();
            if let Some(v) = acr.get("value").and_then(Value::as_str) {
                values.push(v.to_string());
            }
            return Some(values);
        }
        None
    }
}

/// The assurance levels a request asks for (B6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LevelRequest {
    /// Must be met: an essential `acr` claim, or the client's minimum.
    /// `Some(u8::MAX)` when the essential values name no level we know.
    pub required: Option<u8>,
    /// Asked for with `acr_values`: met when the user can, else declined.
    pub voluntary: Option<u8>,
}

impl AuthRequest {
    /// The lowest level among acceptable values is what satisfies the
    /// request (any listed value is acceptable).
    pub fn level_request(&self, prefix: &str, client_min: Option<u8>) -> LevelRequest {
        let lowest = |values: &[String]| values.iter().filter_map(|v| assurance::parse_acr(prefix, v)).min();
        let essential = match self.essential_acr() {
            Some(values) if !values.is_empty() => Some(lowest(&values).unwrap_or(u8::MAX)),
            _ => None,
        };
        LevelRequest { required: essential.max(client_min), voluntary: lowest(&self.acr_values) }
    }
}

/// Where a signed-in user stands: the account's proofing and the session's
/// factors, evaluated at `now`.
pub struct Standing<'a> {
    pub proofing: u8,
    pub factors: &'a [assurance::FactorEvent],
    pub now: i64,
    pub cfg: &'a assurance::AssuranceConfig,
}

impl Standing<'_> {
    pub fn level(&self) -> u8 {
        assurance::level(self.proofing, self.factors, self.now, self.cfg)
    }
    fn reachable(&self, target: u8) -> bool {
        target <= assurance::MAX_LEVEL
            && assurance::gap(target, self.proofing, self.factors, self.now, self.cfg).reachable(self.cfg)
    }
}

/// What the provider does next for this request.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Login,
    SelectAccount,
    /// The user must verify identity or use a further factor first.
    StepUp,
    Consent,
    Issue,
    Fail(OAuthError),
}

/// The decision, given the browser's session and whether the user already
/// consented to these scopes for this client. A sign-in completed during
/// this request is "fresh": it satisfies `prompt=login` and `max_age`.
pub fn decide(
    req: &AuthRequest,
    session: Option<&SessionInfo>,
    consented: bool,
    skip_consent: bool,
    levels: LevelRequest,
    standing: &Standing<'_>,
) -> Next {
    let now = standing.now;
    let none = req.has_prompt("none");
    let interaction = |e: OAuthError| if none { Next::Fail(e) } else { Next::Login };
    let Some(s) = session else {
        return interaction(OAuthError::new("login_required", "the user is not signed in"));
    };
    let fresh = req.login_done;
    if req.has_prompt("login") && !fresh {
        return Next::Login;
    }
    if let Some(max_age) = req.max_age
        && now - s.auth_time > max_age
        && !fresh
    {
        return interaction(OAuthError::new("login_required", "max_age requires a new sign-in"));
    }
    if let Some(hint) = &req.id_token_hint_sub
        && hint != &s.user_id
    {
        return interaction(OAuthError::new("login_required", "the signed-in user is not the one in id_token_hint"));
    }
    if req.has_prompt("select_account") && !req.account_chosen && !fresh {
        return Next::SelectAccount;
    }
    // B6: a level the request needs is reached by step-up when the user can
    // reach it here; a required one that cannot be reached fails, never
    // yielding a weaker token; a voluntary one is skipped.
    let level = standing.level();
    if let Some(target) = levels.required
        && level < target
    {
        if !standing.reachable(target) {
            return Next::Fail(OAuthError::new(
                "unmet_authentication_requirements",
                "the requested authentication context cannot be met by this account",
            ));
        }
        if none {
            return Next::Fail(OAuthError::new("interaction_required", "a step-up authentication is needed"));
        }
        return Next::StepUp;
    }
    if let Some(target) = levels.voluntary
        && level < target
        && !req.step_up_declined
        && !none
        && standing.reachable(target)
    {
        return Next::StepUp;
    }
    let needs_consent = !skip_consent && !req.consent_given && (!consented || req.has_prompt("consent"));
    if needs_consent {
        if none {
            return Next::Fail(OAuthError::new("consent_required", "the user has not consented"));
        }
        return Next::Consent;
    }
    Next::Issue
}

/// The person's answer on the consent page.
pub enum ConsentOutcome {
    /// Consent recorded (and audited); the request continues.
    Allowed,
    /// The request is over; the app hears `access_denied` at this request's
    /// redirect URI.
    Denied(Box<AuthRequest>),
}

/// A3: the signed-in person allows or denies what the waiting request
/// `req_id` asks for. Allowing records the consent (scopes and claims
/// merged with earlier ones, audited as `consent_granted`) and marks the
/// request; denying ends the request.
pub async fn decide_consent(
    store: &crate::store::Store,
    req_id: &str,
    mut req: AuthRequest,
    user_id: &str,
    allow: bool,
    ip: Option<&str>,
    now: i64,
) -> Result<ConsentOutcome, sea_orm::DbErr> {
    use crate::domain::{authn::pending, clients::consents};
    if !allow {
        pending::finish(store, req_id).await?;
        return Ok(ConsentOutcome::Denied(Box::new(req)));
    }
    let claims = req.consent_claims();
    consents::grant(store, user_id, &req.client_id, &req.scope, &claims, ip, now).await?;
    req.consent_given = true;
    pending::update(store, req_id, &req).await?;
    Ok(ConsentOutcome::Allowed)
}

/// `prompt=select_account`: the browser's waiting request `req_id` has had
/// its account chosen (continue, or sign in as someone else). `false` when
/// the request is gone.
pub async fn choose_account(
    store: &crate::store::Store,
    req_id: &str,
    browser_hash: &str,
    now: i64,
) -> Result<bool, sea_orm::DbErr> {
    use crate::domain::authn::pending;
    let Some(mut req) = pending::load(store, req_id, browser_hash, now).await? else { return Ok(false) };
    req.account_chosen = true;
    pending::update(store, req_id, &req).await?;
    Ok(true)
}

/// B6: "continue without" a level asked for voluntarily. The request
/// decides again; a required level still leads back to the step-up page.
pub async fn decline_step_up(
    store: &crate::store::Store,
    req_id: &str,
    mut req: AuthRequest,
) -> Result<(), sea_orm::DbErr> {
    req.step_up_declined = true;
    crate::domain::authn::pending::update(store, req_id, &req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_claims_drop_unknown_and_unallowed_but_keep_acr() {
        let requested = serde_json::json!({
            "userinfo": {"email": null, "phone_number": null, "ethnicity": null, "nonsense": null},
            "id_token": {"acr": {"essential": true, "values": ["urn:idp:loa:2"]}, "name": null},
            "other": {"email": null},
        });
        let Value::Object(requested) = requested else { unreachable!("an object literal") };
        let kept = kept_claims(requested, &ScopeSet::parse("openid email"));
        let keys = |t: &str| kept[t].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(keys("userinfo"), vec!["email".to_string()]);
        assert_eq!(keys("id_token"), vec!["acr".to_string()]);
        assert!(!kept.contains_key("other"));
    }
}
