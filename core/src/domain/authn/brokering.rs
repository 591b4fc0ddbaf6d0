//! Identity brokering (A3 third-party login): sign-ins in flight at an
//! upstream provider and the links between upstream and local accounts.
//!
//! Linking rules: an upstream account is linked to a local one only
//! (a) by the person proving the local account (its password) while holding
//! the verified upstream identity, or (b) when the upstream is configured
//! with `trust_phone` and says the phone number is verified and exactly one
//! active local account has that (verified) phone. Never by e-mail: an
//! e-mail claim proves little about who holds the local account.
use crate::crypto::{random_token, sha256_b64};
use crate::domain::identity::users::PhoneNumber;
use crate::store::Store;
use crate::store::entities::{upstream_flow, upstream_link, user};
use sea_orm::{ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set};

/// How long the browser may take at the upstream provider.
const START_LIFETIME: i64 = 10 * 60;
/// How long a verified but unlinked upstream identity waits for the person
/// to sign in locally or register.
const LINK_LIFETIME: i64 = 15 * 60;

/// What an upstream authorization was started for. The callback acts on
/// this stored purpose only, so a re-verification's answer can never sign
/// anyone in, link or create an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// Third-party login for a pending authorization request, if any.
    SignIn { req: Option<String> },
    /// A signed-in account proves itself again at its linked upstream (A5).
    Reverify(Reverify),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reverify {
    pub user_id: String,
    /// The session that asked: the answer counts only in that session.
    pub sid: String,
    /// A local page (`domain::authn::return_path`), parsed when the flow started.
    pub return_to: String,
}

const REVERIFY: &str = "reverify";

/// What the callback needs back: stored server-side, keyed by the hash of
/// the `state` the browser carries, and bound to the browser.
pub struct Started {
    pub purpose: Purpose,
    pub nonce: String,
    pub verifier: String,
}

pub struct NewStart<'a> {
    pub upstream: &'a str,
    pub browser_hash: &'a str,
    pub purpose: Purpose,
    pub state: &'a str,
    pub nonce: &'a str,
    pub verifier: &'a str,
}

pub async fn save_start(db: &Store, s: NewStart<'_>, now: i64) -> Result<(), DbErr> {
    let (req, purpose, user_id, sid, return_to) = match s.purpose {
        Purpose::SignIn { req } => (req.filter(|r| !r.is_empty()), None, None, None, None),
        Purpose::Reverify(r) => (None, Some(REVERIFY.to_string()), Some(r.user_id), Some(r.sid), Some(r.return_to)),
    };
    upstream_flow::ActiveModel {
        id: Set(sha256_b64(s.state.as_bytes())),
        upstream: Set(s.upstream.into()),
        browser: Set(s.browser_hash.into()),
        req: Set(req),
        nonce: Set(Some(s.nonce.into())),
        verifier: Set(Some(s.verifier.into())),
        issuer: Set(None),
        subject: Set(None),
        expires_at: Set(now + START_LIFETIME),
        purpose: Set(purpose),
        user_id: Set(user_id),
        sid: Set(sid),
        return_to: Set(return_to),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Consumes the authorization started with `state`, if it is live, was
/// started in this browser and for this upstream (the callback path names
/// it, which keeps one upstream's response from being replayed at
/// another's — mix-up). The delete decides: of two callbacks with one
/// state only one wins.
pub async fn take_start(
    db: &Store,
    upstream: &str,
    browser_hash: &str,
    state: &str,
    now: i64,
) -> Result<Option<Started>, DbErr> {
    if state.is_empty() || state.len() > 256 {
        return Ok(None);
    }
    let id = sha256_b64(state.as_bytes());
    let Some(row) = upstream_flow::Entity::find_by_id(id.clone()).one(db).await? else {
        return Ok(None);
    };
    if row.upstream != upstream || row.browser != browser_hash || row.subject.is_some() || row.expires_at <= now {
        return Ok(None);
    }
    if upstream_flow::Entity::delete_by_id(id).exec(db).await?.rows_affected != 1 {
        return Ok(None);
    }
    let purpose = match (row.purpose.as_deref(), row.user_id, row.sid, row.return_to) {
        (None, ..) => Purpose::SignIn { req: row.req },
        (Some(REVERIFY), Some(user_id), Some(sid), Some(return_to)) => {
            Purpose::Reverify(Reverify { user_id, sid, return_to })
        }
        _ => return Ok(None),
    };
    match (row.nonce, row.verifier) {
        (Some(nonce), Some(verifier)) => Ok(Some(Started { purpose, nonce, verifier })),
        _ => Ok(None),
    }
}

/// Whether the upstream account `issuer`/`subject` is the one linked to
/// `user_id` at `upstream` — a re-verification by any other upstream
/// account proves nothing about this one.
pub async fn is_linked_to(
    db: &Store,
    upstream: &str,
    issuer: &str,
    subject: &str,
    user_id: &str,
) -> Result<bool, DbErr> {
    Ok(find_link(db, issuer, subject).await?.is_some_and(|l| l.user_id == user_id && l.upstream == upstream))
}

/// The upstream account as verified by the callback.
pub struct Verified<'a> {
    pub upstream: &'a str,
    pub issuer: &'a str,
    pub subject: &'a str,
    pub verified_phone: Option<&'a str>,
    pub trust_phone: bool,
    pub auto_register: bool,
}

pub enum Resolution {
    /// Already linked: sign this account in.
    Linked(String),
    /// Linked just now by the upstream's verified phone.
    PhoneLinked(String),
    /// A1 mini-program style: a new account made for the verified phone.
    Registered(String),
    /// No link: the person chooses to link to an account or register.
    Unlinked { ticket: String },
    /// Linked to an account that is disabled.
    Disabled,
}

/// The rules that need no person at hand: an existing link, a trusted
/// verified phone, or (with `auto_register`) a new account for it. `None`
/// when the person must choose (the web link page; an app answers
/// `interaction_required`).
pub async fn resolve_known(db: &Store, v: &Verified<'_>, ip: &str, now: i64) -> Result<Option<Resolution>, DbErr> {
    if let Some(link) = find_link(db, v.issuer, v.subject).await? {
        return Ok(Some(match user::Entity::find_by_id(link.user_id.clone()).one(db).await? {
            Some(u) if !u.disabled => Resolution::Linked(u.id),
            _ => Resolution::Disabled,
        }));
    }
    if v.trust_phone
        && let Some(owner) = phone_owner(db, v.verified_phone).await?
        && let Linked::Done = link(db, v, &owner, "phone", ip, now).await?
    {
        return Ok(Some(Resolution::PhoneLinked(owner)));
    }
    if v.auto_register
        && v.trust_phone
        && let Some(phone) = v.verified_phone.and_then(|p| PhoneNumber::parse(p).ok())
        && let Some(user_id) = auto_register(db, &phone, now).await?
        && let Linked::Done = link(db, v, &user_id, "auto_register", ip, now).await?
    {
        return Ok(Some(Resolution::Registered(user_id)));
    }
    Ok(None)
}

pub async fn resolve(
    db: &Store,
    v: Verified<'_>,
    browser_hash: &str,
    req: Option<&str>,
    ip: &str,
    now: i64,
) -> Result<Resolution, DbErr> {
    if let Some(known) = resolve_known(db, &v, ip, now).await? {
        return Ok(known);
    }
    let ticket = random_token(24);
    upstream_flow::ActiveModel {
        id: Set(ticket.clone()),
        upstream: Set(v.upstream.into()),
        browser: Set(browser_hash.into()),
        req: Set(req.filter(|r| !r.is_empty()).map(String::from)),
        nonce: Set(None),
        verifier: Set(None),
        issuer: Set(Some(v.issuer.into())),
        subject: Set(Some(v.subject.into())),
        expires_at: Set(now + LINK_LIFETIME),
        purpose: Set(None),
        user_id: Set(None),
        sid: Set(None),
        return_to: Set(None),
    }
    .insert(db)
    .await?;
    Ok(Resolution::Unlinked { ticket })
}

/// Creates an account for a phone no local account holds, without a
/// password (`accounts::create_without_password`); `None` if the phone was
/// taken meanwhile.
async fn auto_register(db: &Store, phone: &PhoneNumber, now: i64) -> Result<Option<String>, DbErr> {
    Ok(crate::domain::identity::accounts::create_without_password(db, phone, None, now).await?.map(|u| u.id))
}

/// The one active account whose verified phone is this number.
async fn phone_owner(db: &Store, phone: Option<&str>) -> Result<Option<String>, DbErr> {
    let Some(phone) = phone.and_then(|p| PhoneNumber::parse(p).ok()) else {
        return Ok(None);
    };
    let found = user::Entity::find().filter(user::Column::Phone.eq(phone.as_str())).all(db).await?;
    Ok(match found.as_slice() {
        [u] if u.phone_verified && !u.disabled => Some(u.id.clone()),
        _ => None,
    })
}

async fn find_link(db: &Store, issuer: &str, subject: &str) -> Result<Option<upstream_link::Model>, DbErr> {
    upstream_link::Entity::find()
        .filter(upstream_link::Column::Issuer.eq(issuer))
        .filter(upstream_link::Column::Subject.eq(subject))
        .one(db)
        .await
}

pub enum Linked {
    Done,
    /// The local account already has another account at this upstream, or
    /// the upstream account was linked meanwhile.
    Conflict,
}

/// Makes the link and writes it to the audit log. The unique indexes decide
/// races: one upstream account, one local account per upstream.
async fn link(db: &Store, v: &Verified<'_>, user_id: &str, method: &str, ip: &str, now: i64) -> Result<Linked, DbErr> {
    let inserted = upstream_link::ActiveModel {
        id: Set(random_token(18)),
        upstream: Set(v.upstream.into()),
        issuer: Set(v.issuer.into()),
        subject: Set(v.subject.into()),
        user_id: Set(user_id.into()),
        method: Set(method.into()),
        created_at: Set(now),
    }
    .insert(db)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => {
            return Ok(Linked::Conflict);
        }
        Err(e) => return Err(e),
    }
    let detail = format!("upstream {} linked by {method}", v.upstream);
    crate::domain::identity::accounts::audit(db, Some(user_id), "upstream_link", &detail, Some(ip), now).await?;
    Ok(Linked::Done)
}

/// A verified upstream identity waiting to be linked, bound to a browser.
pub struct LinkTicket {
    pub id: String,
    pub upstream: String,
    pub req: Option<String>,
    issuer: String,
    subject: String,
}

impl LinkTicket {
    fn from_row(row: upstream_flow::Model, browser_hash: &str, now: i64) -> Option<Self> {
        if row.browser != browser_hash || row.expires_at <= now {
            return None;
        }
        let (Some(issuer), Some(subject)) = (row.issuer, row.subject) else { return None };
        Some(Self { id: row.id, upstream: row.upstream, req: row.req, issuer, subject })
    }
}

pub async fn load_ticket(db: &Store, id: &str, browser_hash: &str, now: i64) -> Result<Option<LinkTicket>, DbErr> {
    if id.is_empty() || id.len() > 64 {
        return Ok(None);
    }
    let row = upstream_flow::Entity::find_by_id(id.to_owned()).one(db).await?;
    Ok(row.and_then(|r| LinkTicket::from_row(r, browser_hash, now)))
}

/// Links the ticket's upstream account to `user_id` (who has just proved
/// the local account) and uses the ticket up. `None`: the ticket is gone
/// (used by a parallel request, expired).
pub async fn redeem_ticket(
    db: &Store,
    ticket: &LinkTicket,
    user_id: &str,
    method: &str,
    ip: &str,
    now: i64,
) -> Result<Option<Linked>, DbErr> {
    if upstream_flow::Entity::delete_by_id(ticket.id.clone()).exec(db).await?.rows_affected != 1 {
        return Ok(None);
    }
    let v = Verified {
        upstream: &ticket.upstream,
        issuer: &ticket.issuer,
        subject: &ticket.subject,
        verified_phone: None,
        trust_phone: false,
        auto_register: false,
    };
    Ok(Some(link(db, &v, user_id, method, ip, now).await?))
}

pub async fn links_for_user(db: &Store, user_id: &str) -> Result<Vec<upstream_link::Model>, DbErr> {
    upstream_link::Entity::find()
        .filter(upstream_link::Column::UserId.eq(user_id))
        .order_by_asc(upstream_link::Column::CreatedAt)
        .all(db)
        .await
}

/// Removes one of the account's links; false when it is not theirs.
pub async fn unlink(db: &Store, user_id: &str, link_id: &str, ip: &str, now: i64) -> Result<bool, DbErr> {
    let Some(found) = upstream_link::Entity::find_by_id(link_id.to_owned()).one(db).await? else {
        return Ok(false);
    };
    if found.user_id != user_id {
        return Ok(false);
    }
    upstream_link::Entity::delete_by_id(found.id).exec(db).await?;
    let detail = format!("upstream {} unlinked", found.upstream);
    crate::domain::identity::accounts::audit(db, Some(user_id), "upstream_unlink", &detail, Some(ip), now).await?;
    Ok(true)
}

/// How linking by the local password ended.
pub enum PasswordLink {
    /// Linked; the person proved the local password, which is how they
    /// now sign in.
    Linked(Box<crate::store::entities::user::Model>),
    /// The password step did not verify (the same answers as the sign-in
    /// page: missing fields, locked, captcha, wrong).
    NotVerified(crate::domain::authn::sign_in::PasswordOutcome),
    Conflict,
    /// The ticket was used or expired meanwhile.
    Expired,
}

/// A3: links the upstream account of `ticket` to the local account whose
/// password is given, under the same throttle and captcha as the sign-in
/// page (a link page must not be a cheaper password oracle).
pub async fn link_by_password(
    s: crate::domain::authn::sign_in::PasswordServices<'_>,
    a: crate::domain::authn::sign_in::PasswordAttempt<'_>,
    ticket: &LinkTicket,
) -> crate::domain::error::DomainResult<PasswordLink> {
    use crate::domain::authn::sign_in::{PasswordOutcome, password_sign_in};
    let (store, ip, now) = (s.store, a.ip, a.now);
    let user = match password_sign_in(s, a).await? {
        PasswordOutcome::Verified(u) => u,
        other => return Ok(PasswordLink::NotVerified(other)),
    };
    Ok(match redeem_ticket(store, ticket, &user.id, "password", ip, now).await? {
        Some(Linked::Done) => PasswordLink::Linked(user),
        Some(Linked::Conflict) => PasswordLink::Conflict,
        None => PasswordLink::Expired,
    })
}
