//! A1 "signed in and registered at once" from a mini-program inside WeChat,
//! Alipay or Baidu: the app sends the vendor's login code (and, for WeChat,
//! the phone code) to `POST /api/miniprogram/{upstream}/login`; the verified
//! upstream account is resolved by the same linking rules as the web path
//! (`brokering::resolve_known`: linked; a trusted verified phone links; with
//! `auto_register` a new account is made), and a grant is made directly for
//! the mini-program's own public client — there is no browser to send
//! anywhere. An account that cannot be resolved this way is answered
//! `interaction_required` (the person links on the web first).
use crate::domain::assurance::{self, AssuranceConfig, Factor, FactorEvent};
use crate::domain::audit::{self, Actor, Event};
use crate::domain::authn::brokering::{self, Resolution, Verified};
use crate::domain::clients::Client;
use crate::domain::clients::scopes::ScopeSet;
use crate::domain::error::{DomainResult, OAuthError};
use crate::domain::tokens::grants::{self, NewGrant};
use crate::store::Store;
use crate::store::entities::{grant, user};
use sea_orm::EntityTrait;

/// What the mini-program asked for, and where from.
pub struct AppLogin<'a> {
    pub verified: Verified<'a>,
    /// The scope asked for; `openid` when none. Never wider than the client's.
    pub scope: Option<&'a str>,
    pub ip: &'a str,
    pub now: i64,
}

/// The policy the grant is made under.
pub struct Policy<'a> {
    pub assurance: &'a AssuranceConfig,
    pub acr_prefix: &'a str,
    pub grant_ttl: i64,
}

/// Signs the person in for `client`: the grant to issue tokens from, or the
/// OAuth error to answer.
pub async fn sign_in(db: &Store, client: &Client, p: Policy<'_>, a: AppLogin<'_>) -> DomainResult<grant::Model> {
    let scope = match a.scope.filter(|s| !s.trim().is_empty()) {
        Some(s) => {
            let asked = ScopeSet::parse(s);
            if !asked.is_subset_of(&client.scopes()) {
                return Err(OAuthError::invalid_scope("the scope exceeds the mini-program client's").into());
            }
            asked
        }
        None => ScopeSet::parse("openid"),
    };
    let upstream = a.verified.upstream.to_string();
    let user_id = match brokering::resolve_known(db, &a.verified, a.ip, a.now).await? {
        Some(Resolution::Linked(u) | Resolution::PhoneLinked(u) | Resolution::Registered(u)) => u,
        Some(_) => return Err(OAuthError::invalid_grant("the linked account is disabled").into()),
        None => {
            return Err(OAuthError::new(
                "interaction_required",
                "this upstream account is linked to no account: sign in on the web once to link it",
            )
            .into());
        }
    };
    // Two-step sign-in is on: the upstream alone is one step, and an app
    // API has no page to ask for the second — the person signs in on the web.
    if crate::domain::authn::second_step::needed(db, &user_id, &[Factor::Federated]).await? {
        return Err(OAuthError::new(
            "interaction_required",
            "two-step sign-in is on for this account: sign in on the web, where the second step is asked",
        )
        .into());
    }
    let proofing = user::Entity::find_by_id(user_id.clone()).one(db).await?.map_or(1, |u| u.proofing_level);
    let events = [FactorEvent { factor: Factor::Federated, at: a.now }];
    let level = assurance::level(u8::try_from(proofing).unwrap_or(1), &events, a.now, p.assurance);
    let g = grants::create_direct(
        db,
        NewGrant {
            client_id: client.client_id.clone(),
            user_id: user_id.clone(),
            sid: None,
            scope: scope.to_string_joined(),
            claims: None,
            nonce: None,
            auth_time: a.now,
            acr: assurance::acr(p.acr_prefix, level),
            amr: assurance::amr(&events),
            enterprise_id: None,
            delegation_id: None,
            sector: client.pairwise_sector().map(str::to_owned),
        },
        p.grant_ttl,
        a.now,
    )
    .await?;
    let detail = format!("upstream={upstream} client={}", client.client_id);
    let e = Event::new("mini_program_login", Actor::User(&user_id), &user_id).detail(&detail).ip(Some(a.ip));
    audit::record(db, e, a.now).await?;
    Ok(g)
}
