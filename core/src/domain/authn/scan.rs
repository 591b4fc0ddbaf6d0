//! Scan tickets (D1 scan-to-login, D2 app-mediated checks): a browser shows
//! a QR code naming a ticket; the citizen app, signed in with the
//! administrator-granted `scan_login` scope, reads it and confirms or denies.
//!
//! Lifecycle: `pending → scanned → confirmed | denied`, then `consumed` when
//! the browser that created it finishes. A ticket is bound to the creating
//! browser (the hash of its binding cookie, which never leaves that browser),
//! to the one app grant (device) that scanned it, and lives two minutes.
//! Every transition is one conditional UPDATE, so of two racing requests —
//! on any node — exactly one wins.
//!
//! A ticket may belong to a face gate (`face_gate`: C1 first enterprise
//! sign-in, C2 agent registration, C3 approval, E2 kin binding). Confirming
//! such a ticket needs the verifier's face pass and opens the gate in the
//! same transaction, with the app user's real-name ID number — for a kin
//! gate, a pass of the relative recorded through the guardian's app; for an
//! agent-registration gate, a pass of the agent recorded through the app
//! holding the ticket (`face_gate::gate_face_check`).
use crate::crypto::random_token;
use crate::domain::assurance::face_gate;
use crate::domain::identity;
use crate::store::Store;
use crate::store::entities::scan_ticket;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect, Set};

/// How long a QR code may wait to be scanned.
pub const LIFETIME: i64 = 120;
/// After a scan, how long the person has to decide in the app.
const DECIDE_WINDOW: i64 = 120;
/// After a confirmation, how long the browser has to pick it up.
const CONSUME_WINDOW: i64 = 60;

/// What the app is asked to confirm. Stored as text so new purposes need no
/// schema change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// D1: sign the browser in as the app's user.
    Login,
    /// D2 / B3: a face check in the app raises the browser session.
    Face,
    /// D2 / C3: approve an object (e.g. an agent grant); the `detail` says what.
    Approval,
    /// CIBA: a relying app asks, from its server, that the person approve a
    /// sign-in in the app (`domain::tokens::ciba`); the `detail` carries the
    /// binding message and the data asked for. No browser is involved: the
    /// ticket is "the browser's" only in that its `browser` is the keyed
    /// digest of the `auth_req_id`, which the client presents to take it.
    Backchannel,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Login => "login",
            Purpose::Face => "face",
            Purpose::Approval => "approval",
            Purpose::Backchannel => "ciba",
        }
    }
    /// The ticket keeps the deadline it was created with: a CIBA request
    /// lives as long as the client asked (`requested_expiry`), whatever the
    /// app does, instead of the QR code's short scan and decide windows.
    pub fn keeps_deadline(self) -> bool {
        self == Purpose::Backchannel
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "login" => Some(Purpose::Login),
            "face" => Some(Purpose::Face),
            "approval" => Some(Purpose::Approval),
            "ciba" => Some(Purpose::Backchannel),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Scanned,
    Confirmed,
    Denied,
    Consumed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Scanned => "scanned",
            Status::Confirmed => "confirmed",
            Status::Denied => "denied",
            Status::Consumed => "consumed",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "scanned" => Status::Scanned,
            "confirmed" => Status::Confirmed,
            "denied" => Status::Denied,
            "consumed" => Status::Consumed,
            _ => Status::Pending,
        }
    }
}

/// What the waiting browser is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Scanned,
    Confirmed,
    Denied,
    Expired,
    Used,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::Scanned => "scanned",
            Phase::Confirmed => "confirmed",
            Phase::Denied => "denied",
            Phase::Expired => "expired",
            Phase::Used => "used",
        }
    }
    /// Nothing more will happen to the ticket.
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Confirmed | Phase::Denied | Phase::Expired | Phase::Used)
    }
}

#[derive(Debug, Clone)]
pub struct ScanTicket {
    pub id: String,
    pub purpose: Purpose,
    pub status: Status,
    pub req: Option<String>,
    pub client_id: Option<String>,
    pub browser_ip: String,
    pub subject_user_id: Option<String>,
    pub detail: Option<String>,
    pub app_user_id: Option<String>,
    pub app_acr: Option<String>,
    pub app_amr: Vec<String>,
    pub face_passed: bool,
    pub created_at: i64,
    /// When it last changed (for a decided ticket: when the person decided).
    pub updated_at: i64,
    pub expires_at: i64,
    /// The face gate this ticket opens, if any.
    pub gate_id: Option<String>,
    /// Confirming needs the verifier's face pass whatever the purpose (a
    /// CIBA request for a level only a face check reaches).
    pub face_required: bool,
}

impl ScanTicket {
    fn from_row(m: scan_ticket::Model) -> Option<Self> {
        Some(Self {
            purpose: Purpose::parse(&m.purpose)?,
            status: Status::parse(&m.status),
            app_amr: m.app_amr.as_deref().and_then(|a| serde_json::from_str(a).ok()).unwrap_or_default(),
            face_passed: m.face_result.as_deref() == Some("passed"),
            id: m.id,
            req: m.req,
            client_id: m.client_id,
            browser_ip: m.browser_ip,
            subject_user_id: m.subject_user_id,
            detail: m.detail,
            app_user_id: m.app_user_id,
            app_acr: m.app_acr,
            created_at: m.created_at,
            updated_at: m.updated_at,
            expires_at: m.expires_at,
            gate_id: m.gate_id,
            face_required: m.face_required,
        })
    }

    /// Confirming needs the verifier's face pass in the app: face checks
    /// and every gate (approvals included: C3 needs the representative's face).
    pub fn needs_face(&self) -> bool {
        self.purpose == Purpose::Face || self.gate_id.is_some() || self.face_required
    }

    pub fn phase(&self, now: i64) -> Phase {
        match self.status {
            Status::Consumed => Phase::Used,
            Status::Denied => Phase::Denied,
            _ if self.expires_at <= now => Phase::Expired,
            Status::Pending => Phase::Pending,
            Status::Scanned => Phase::Scanned,
            Status::Confirmed => Phase::Confirmed,
        }
    }
}

/// A ticket id as it appears in the QR URL: 192 random bits, base64url.
fn well_formed(id: &str) -> bool {
    (16..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub struct NewTicket<'a> {
    pub purpose: Purpose,
    pub browser_hash: &'a str,
    pub browser_ip: &'a str,
    pub req: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub subject_user_id: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub gate_id: Option<&'a str>,
}

pub async fn create(db: &Store, t: NewTicket<'_>, now: i64) -> Result<ScanTicket, DbErr> {
    insert(db, t, false, now + LIFETIME, now).await
}

/// A ticket with its own deadline and face requirement, inside the caller's
/// transaction (a CIBA request: `domain::tokens::ciba::start`).
pub async fn create_in<C: ConnectionTrait>(
    conn: &C,
    t: NewTicket<'_>,
    face_required: bool,
    expires_at: i64,
    now: i64,
) -> Result<ScanTicket, DbErr> {
    insert(conn, t, face_required, expires_at, now).await
}

async fn insert<C: ConnectionTrait>(
    conn: &C,
    t: NewTicket<'_>,
    face_required: bool,
    expires_at: i64,
    now: i64,
) -> Result<ScanTicket, DbErr> {
    let row = scan_ticket::ActiveModel {
        id: Set(random_token(24)),
        purpose: Set(t.purpose.as_str().into()),
        status: Set(Status::Pending.as_str().into()),
        browser: Set(t.browser_hash.into()),
        browser_ip: Set(t.browser_ip.into()),
        req: Set(t.req.filter(|r| !r.is_empty()).map(String::from)),
        client_id: Set(t.client_id.map(String::from)),
        subject_user_id: Set(t.subject_user_id.map(String::from)),
        detail: Set(t.detail.map(String::from)),
        app_user_id: Set(None),
        app_client_id: Set(None),
        app_grant: Set(None),
        app_acr: Set(None),
        app_amr: Set(None),
        face_result: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        expires_at: Set(expires_at),
        gate_id: Set(t.gate_id.map(String::from)),
        face_required: Set(face_required),
    }
    .insert(conn)
    .await?;
    ScanTicket::from_row(row).ok_or_else(|| DbErr::Custom("scan ticket with an unknown purpose".into()))
}

/// The person's tickets that wait for them in the app without a QR code
/// (CIBA requests), newest first: the app lists them and decides each
/// through the same read / confirm / deny calls as a scanned ticket.
pub async fn waiting_for(db: &Store, user_id: &str, now: i64) -> Result<Vec<ScanTicket>, DbErr> {
    use sea_orm::QueryOrder;
    Ok(scan_ticket::Entity::find()
        .filter(scan_ticket::Column::Purpose.eq(Purpose::Backchannel.as_str()))
        .filter(scan_ticket::Column::SubjectUserId.eq(user_id))
        .filter(scan_ticket::Column::Status.is_in([Status::Pending.as_str(), Status::Scanned.as_str()]))
        .filter(scan_ticket::Column::ExpiresAt.gt(now))
        .order_by_desc(scan_ticket::Column::CreatedAt)
        .limit(20)
        .all(db)
        .await?
        .into_iter()
        .filter_map(ScanTicket::from_row)
        .collect())
}

async fn load(db: &Store, id: &str) -> Result<Option<scan_ticket::Model>, DbErr> {
    if !well_formed(id) {
        return Ok(None);
    }
    scan_ticket::Entity::find_by_id(id.to_owned()).one(db).await
}

/// The ticket, only for the browser that created it.
pub async fn for_browser(db: &Store, id: &str, browser_hash: &str) -> Result<Option<ScanTicket>, DbErr> {
    Ok(load(db, id).await?.filter(|t| t.browser == browser_hash).and_then(ScanTicket::from_row))
}

/// The signed-in app calling the API: who, from which client and grant
/// (one grant = one device), and how strongly the app session was made.
#[derive(Debug, Clone)]
pub struct AppCaller {
    pub user_id: String,
    pub client_id: String,
    pub grant_id: String,
    pub acr: String,
    pub amr: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("no such ticket")]
    NotFound,
    #[error("the ticket has expired")]
    Expired,
    /// Scanned by another device, already decided, or already used.
    #[error("the ticket is no longer available")]
    Taken,
    /// A face check or approval for another account than the app's.
    #[error("the ticket belongs to another account")]
    WrongAccount,
    #[error("a face check ticket needs the app's face verification result")]
    FaceResultMissing,
    /// The gate behind the ticket waits for another person's face (the app
    /// user's real-name identity is not the one on record).
    #[error("the face check is for another person")]
    WrongPerson,
    /// No verifier pass recorded moments ago for the face this ticket
    /// needs (the app's own, or for a kin gate the relative's).
    #[error("no face check passed recently for this person")]
    FaceCheckRequired,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The app reads the ticket: `pending → scanned` by this device, atomically.
/// Reading again from the same device is fine (the app may redisplay); a
/// second device gets `Taken`.
pub async fn scan(db: &Store, id: &str, app: &AppCaller, now: i64) -> Result<ScanTicket, ScanError> {
    let row = load(db, id).await?.ok_or(ScanError::NotFound)?;
    if row.purpose != Purpose::Login.as_str()
        && row.subject_user_id.as_deref() != Some(app.user_id.as_str())
        && !face_gate::any_app_may_scan(db, &row).await?
    {
        return Err(ScanError::WrongAccount);
    }
    let keeps = Purpose::parse(&row.purpose).is_some_and(Purpose::keeps_deadline);
    let deadline = if keeps { row.expires_at } else { now + DECIDE_WINDOW };
    let r = scan_ticket::Entity::update_many()
        .col_expr(scan_ticket::Column::Status, Expr::value(Status::Scanned.as_str()))
        .col_expr(scan_ticket::Column::AppUserId, Expr::value(app.user_id.clone()))
        .col_expr(scan_ticket::Column::AppClientId, Expr::value(app.client_id.clone()))
        .col_expr(scan_ticket::Column::AppGrant, Expr::value(app.grant_id.clone()))
        .col_expr(scan_ticket::Column::AppAcr, Expr::value(app.acr.clone()))
        .col_expr(scan_ticket::Column::AppAmr, Expr::value(serde_json::to_string(&app.amr).unwrap_or_default()))
        .col_expr(scan_ticket::Column::UpdatedAt, Expr::value(now))
        .col_expr(scan_ticket::Column::ExpiresAt, Expr::value(deadline))
        .filter(scan_ticket::Column::Id.eq(id))
        .filter(scan_ticket::Column::Status.eq(Status::Pending.as_str()))
        .filter(scan_ticket::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    if r.rows_affected == 1 {
        crate::store::bus::notify(db, crate::store::bus::Topic::ScanTicket, id).await;
    }
    let row = load(db, id).await?.ok_or(ScanError::NotFound)?;
    let mine = row.status == Status::Scanned.as_str() && row.app_grant.as_deref() == Some(app.grant_id.as_str());
    if r.rows_affected == 1 || mine {
        if row.expires_at <= now {
            return Err(ScanError::Expired);
        }
        return ScanTicket::from_row(row).ok_or(ScanError::NotFound);
    }
    if row.status == Status::Pending.as_str() && row.expires_at <= now {
        return Err(ScanError::Expired);
    }
    Err(ScanError::Taken)
}

/// How the face a gate waits for must have been checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FaceProof {
    /// The app user's own face pass (his real-name identity is the gate's).
    Own,
    /// A pass of the person the gate names, run through this app for this
    /// gate (`face_gate::gate_face_check`).
    ThroughApp,
    /// Either (the agent registering through his own account's app).
    Either,
}

/// The person's answer in the app. `face_passed` is the app's face check
/// result: required for a face ticket, optional (raises the level) for login.
#[derive(Debug, Clone, Copy)]
pub enum Decision {
    Confirm { face_passed: Option<bool> },
    Deny,
}

/// `scanned → confirmed | denied`, only by the device that scanned it and
/// only before it expires. Confirm and deny racing: one UPDATE wins.
pub async fn decide(
    db: &Store,
    id: &str,
    app: &AppCaller,
    decision: Decision,
    now: i64,
) -> Result<ScanTicket, ScanError> {
    let row = load(db, id).await?.ok_or(ScanError::NotFound)?;
    let mut update = scan_ticket::Entity::update_many().col_expr(scan_ticket::Column::UpdatedAt, Expr::value(now));
    // A gate opens only for the person it waits for: the app user's
    // real-name ID number must be the gate's (checked here, and again by
    // the gate's conditional UPDATE inside the transaction).
    let mut gate_opening = None;
    match decision {
        Decision::Confirm { face_passed } => {
            let needs_face = row.purpose == Purpose::Face.as_str() || row.gate_id.is_some() || row.face_required;
            if needs_face && face_passed != Some(true) {
                return Err(ScanError::FaceResultMissing);
            }
            if let Some(gate_id) = &row.gate_id {
                // Whose face opens the gate, and how it was checked: the
                // app user's own (his real-name identity is the gate's), or
                // the person the gate names checked through this app (a
                // kin gate's relative; an agent registering, who may have
                // no account or not be the app's) — looked up inside the
                // transaction below.
                let gate = face_gate::load(db, gate_id).await?.ok_or(ScanError::NotFound)?;
                let own = face_gate::real_name_number(db, &app.user_id).await?;
                let is_own = own.as_deref() == Some(gate.id_number.as_str());
                let proof = match face_gate::GatePurpose::of(&gate) {
                    Some(face_gate::GatePurpose::KinBind) => FaceProof::ThroughApp,
                    Some(face_gate::GatePurpose::RegisterAgent) if is_own => FaceProof::Either,
                    Some(face_gate::GatePurpose::RegisterAgent) => FaceProof::ThroughApp,
                    _ => FaceProof::Own,
                };
                if gate.expires_at <= now {
                    return Err(ScanError::Expired);
                }
                if proof == FaceProof::Own && !is_own {
                    return Err(ScanError::WrongPerson);
                }
                if gate.confirmed_at.is_some() {
                    return Err(ScanError::Taken);
                }
                gate_opening = Some((gate.id, gate.id_number, proof));
            } else if face_passed == Some(true) && !identity::recent_face_pass(db, &app.user_id, now).await? {
                // The app's word alone is not enough: the verifier must have
                // recorded a pass of this person moments ago.
                return Err(ScanError::FaceCheckRequired);
            }
            update = update.col_expr(scan_ticket::Column::Status, Expr::value(Status::Confirmed.as_str()));
            if !Purpose::parse(&row.purpose).is_some_and(Purpose::keeps_deadline) {
                update = update.col_expr(scan_ticket::Column::ExpiresAt, Expr::value(now + CONSUME_WINDOW));
            }
            if let Some(passed) = face_passed {
                let result = if passed { "passed" } else { "failed" };
                update = update.col_expr(scan_ticket::Column::FaceResult, Expr::value(result));
            }
        }
        Decision::Deny => {
            update = update.col_expr(scan_ticket::Column::Status, Expr::value(Status::Denied.as_str()));
        }
    }
    // The ticket's transition and the gate's opening commit together: a
    // gate that closed meanwhile (expired, opened by another ticket) leaves
    // the ticket scanned, never confirmed for nothing.
    let txn = crate::store::begin_write(db).await?;
    let r = update
        .filter(scan_ticket::Column::Id.eq(id))
        .filter(scan_ticket::Column::Status.eq(Status::Scanned.as_str()))
        .filter(scan_ticket::Column::AppGrant.eq(app.grant_id.clone()))
        .filter(scan_ticket::Column::AppUserId.eq(app.user_id.clone()))
        .filter(scan_ticket::Column::ExpiresAt.gt(now))
        .exec(&txn)
        .await?;
    if r.rows_affected == 1 {
        if let Some((gate_id, number, proof)) = &gate_opening {
            let through_app = || face_gate::gate_face_passed(&txn, &app.user_id, gate_id, now);
            let own = || identity::recent_face_pass(&txn, &app.user_id, now);
            let face_ok = match proof {
                FaceProof::Own => own().await?,
                FaceProof::ThroughApp => through_app().await?,
                FaceProof::Either => through_app().await? || own().await?,
            };
            if !face_ok {
                txn.rollback().await?;
                return Err(ScanError::FaceCheckRequired);
            }
            if !face_gate::confirm(&txn, gate_id, number, now).await? {
                txn.rollback().await?;
                return Err(ScanError::Taken);
            }
        }
        crate::store::bus::notify(&txn, crate::store::bus::Topic::ScanTicket, id).await;
        txn.commit().await?;
        let row = load(db, id).await?.ok_or(ScanError::NotFound)?;
        return ScanTicket::from_row(row).ok_or(ScanError::NotFound);
    }
    txn.rollback().await?;
    if row.expires_at <= now && matches!(row.status.as_str(), "pending" | "scanned") {
        return Err(ScanError::Expired);
    }
    Err(ScanError::Taken)
}

/// The creating browser takes a confirmed ticket, once: `confirmed →
/// consumed`. Another browser, a replay or a late pick-up gets `None`.
pub async fn consume(db: &Store, id: &str, browser_hash: &str, now: i64) -> Result<Option<ScanTicket>, DbErr> {
    if !well_formed(id) {
        return Ok(None);
    }
    let r = scan_ticket::Entity::update_many()
        .col_expr(scan_ticket::Column::Status, Expr::value(Status::Consumed.as_str()))
        .col_expr(scan_ticket::Column::UpdatedAt, Expr::value(now))
        .filter(scan_ticket::Column::Id.eq(id))
        .filter(scan_ticket::Column::Browser.eq(browser_hash))
        .filter(scan_ticket::Column::Status.eq(Status::Confirmed.as_str()))
        .filter(scan_ticket::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    if r.rows_affected != 1 {
        return Ok(None);
    }
    Ok(load(db, id).await?.and_then(ScanTicket::from_row))
}

/// Ids of tickets changed at or after `since` (by any node): one indexed
/// range query per tick, however many browsers are waiting.
pub async fn changed_since(db: &Store, since: i64) -> Result<Vec<String>, DbErr> {
    scan_ticket::Entity::find()
        .select_only()
        .column(scan_ticket::Column::Id)
        .filter(scan_ticket::Column::UpdatedAt.gte(since))
        .into_tuple::<String>()
        .all(db)
        .await
}

/// Whom a consumed sign-in ticket signs in (D1).
pub enum TicketUser {
    /// The app's user, with an active account.
    Active(String),
    /// The ticket was never taken by an app user.
    Nobody,
    /// The app's user has no active account (deleted or suspended).
    Inactive,
}

/// D1: the account a confirmed sign-in ticket signs the browser in as.
pub async fn signed_in_user(
    users: &crate::domain::identity::users::UserService,
    ticket: &ScanTicket,
) -> crate::domain::error::DomainResult<TicketUser> {
    let Some(user_id) = ticket.app_user_id.as_deref() else { return Ok(TicketUser::Nobody) };
    Ok(match users.find(user_id).await? {
        Some(u) if !u.disabled => TicketUser::Active(user_id.to_string()),
        _ => TicketUser::Inactive,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_follow_status_and_time() {
        let t = ScanTicket {
            id: "x".into(),
            purpose: Purpose::Login,
            status: Status::Scanned,
            req: None,
            client_id: None,
            browser_ip: String::new(),
            subject_user_id: None,
            detail: None,
            app_user_id: None,
            app_acr: None,
            app_amr: Vec::new(),
            face_passed: false,
            created_at: 0,
            updated_at: 0,
            expires_at: 100,
            gate_id: None,
            face_required: false,
        };
        assert_eq!(t.phase(99), Phase::Scanned);
        assert_eq!(t.phase(100), Phase::Expired);
        assert_eq!(ScanTicket { status: Status::Consumed, ..t.clone() }.phase(500), Phase::Used);
        assert_eq!(ScanTicket { status: Status::Denied, ..t }.phase(500), Phase::Denied);
    }

    #[test]
    fn ticket_ids_are_checked_before_any_lookup() {
        assert!(well_formed(&random_token(24)));
        assert!(!well_formed("short"));
        assert!(!well_formed("has spaces in it and more chars"));
        assert!(!well_formed(&"a".repeat(65)));
    }
}
