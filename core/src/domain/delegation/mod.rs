//! One delegation model (C2–C6, E2): someone (the grantee) may act for a
//! principal — an enterprise (`agent`), another person (`person`, 授权办事)
//! or a relative (`kin`, 亲属码).
//!
//! States: `pending → active → revoked`, `pending → rejected`, and
//! `expired`, which is never stored: an active delegation whose `valid_to`
//! date has passed on the server clock (China time) reads as expired. Every
//! stored transition is one conditional UPDATE on the expected state, so
//! two racing requests (an approval and a revocation from two sessions, on
//! any node) end in one consistent state. Ending a delegation ends, in the
//! same transaction, the grants (refresh and access tokens) issued under it
//! and the sessions that act under it.
pub mod acting;
pub mod agent_password;
pub mod authorisations;
pub mod enterprises;
pub mod kin;
pub mod kin_reports;
pub mod onboarding;
pub mod uscc;
use crate::crypto::random_token;
use crate::store::Store;
use crate::store::entities::{delegation, session, session_acting};
use chrono::NaiveDate;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Agent,
    Person,
    Kin,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Agent => "agent",
            Kind::Person => "person",
            Kind::Kin => "kin",
        }
    }
}

/// The stored state of a delegation. The `state` column keeps the strings
/// of [`DelegationState::as_str`], so rows written before the type existed
/// read the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelegationState {
    Pending,
    Active,
    Rejected,
    Revoked,
}

impl DelegationState {
    pub fn as_str(self) -> &'static str {
        match self {
            DelegationState::Pending => "pending",
            DelegationState::Active => "active",
            DelegationState::Rejected => "rejected",
            DelegationState::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DelegationState::Pending),
            "active" => Some(DelegationState::Active),
            "rejected" => Some(DelegationState::Rejected),
            "revoked" => Some(DelegationState::Revoked),
            _ => None,
        }
    }

    /// The stored state of a row; `None` for a value no version ever wrote.
    pub fn of(d: &delegation::Model) -> Option<Self> {
        Self::parse(&d.state)
    }

    /// Whether the row is in one of `states` (pending-or-active checks read
    /// as one call instead of string comparisons).
    pub fn is_any(d: &delegation::Model, states: &[Self]) -> bool {
        Self::of(d).is_some_and(|s| states.contains(&s))
    }

    /// The states a stored transition to `self` may start from: the only
    /// moves are pending → active, pending → rejected and pending or
    /// active → revoked; nothing leaves rejected or revoked.
    pub fn reachable_from(self) -> &'static [Self] {
        match self {
            DelegationState::Pending => &[],
            DelegationState::Active | DelegationState::Rejected => &[DelegationState::Pending],
            DelegationState::Revoked => &[DelegationState::Pending, DelegationState::Active],
        }
    }
}

/// The state people see: the stored one, with `Expired` for an active
/// delegation past its `valid_to` day (never stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EffectiveState {
    Pending,
    Active,
    Expired,
    Rejected,
    Revoked,
}

impl EffectiveState {
    /// The name pages show and build message keys from
    /// (`delegation_state_<name>`).
    pub fn as_str(self) -> &'static str {
        match self {
            EffectiveState::Pending => "pending",
            EffectiveState::Active => "active",
            EffectiveState::Expired => "expired",
            EffectiveState::Rejected => "rejected",
            EffectiveState::Revoked => "revoked",
        }
    }
}

/// Dates of C6 records are calendar days in China (UTC+8), whatever the
/// server's zone.
pub fn today(now: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp(now + 8 * 3600, 0).map(|d| d.date_naive()).unwrap_or_default()
}

pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

/// The state people see: stored state, or `Expired` past `valid_to`. A
/// value no version wrote reads as revoked: it must never act.
pub fn effective_state(d: &delegation::Model, now: i64) -> EffectiveState {
    match DelegationState::of(d) {
        Some(DelegationState::Active)
            if d.valid_to.as_deref().and_then(parse_date).is_some_and(|to| to < today(now)) =>
        {
            EffectiveState::Expired
        }
        Some(DelegationState::Active) => EffectiveState::Active,
        Some(DelegationState::Pending) => EffectiveState::Pending,
        Some(DelegationState::Rejected) => EffectiveState::Rejected,
        Some(DelegationState::Revoked) | None => EffectiveState::Revoked,
    }
}

/// Whether the grantee may act under it now: active, and today within
/// `valid_from ..= valid_to`.
pub fn in_force(d: &delegation::Model, now: i64) -> bool {
    let day = today(now);
    effective_state(d, now) == EffectiveState::Active
        && d.valid_from.as_deref().and_then(parse_date).is_none_or(|from| from <= day)
}

pub struct NewDelegation {
    pub kind: Kind,
    pub enterprise_id: Option<String>,
    pub principal_user_id: Option<String>,
    pub relative_name: Option<String>,
    pub relative_id_number: Option<String>,
    pub relation: Option<String>,
    pub grantee_user_id: String,
    pub scopes: String,
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
    pub state: DelegationState,
    /// Agent registered through C2: the hash of his enterprise-login password.
    pub agent_password_hash: Option<String>,
}

pub async fn insert<C: ConnectionTrait>(conn: &C, new: NewDelegation, now: i64) -> Result<delegation::Model, DbErr> {
    delegation::ActiveModel {
        id: Set(random_token(18)),
        kind: Set(new.kind.as_str().into()),
        enterprise_id: Set(new.enterprise_id),
        principal_user_id: Set(new.principal_user_id),
        relative_name: Set(new.relative_name),
        relative_id_number: Set(new.relative_id_number),
        relation: Set(new.relation),
        grantee_user_id: Set(new.grantee_user_id),
        scopes: Set(new.scopes),
        valid_from: Set(new.valid_from),
        valid_to: Set(new.valid_to),
        state: Set(new.state.as_str().into()),
        reason: Set(None),
        face_at: Set(None),
        agent_password_hash: Set(new.agent_password_hash),
        created_at: Set(now),
        modified_at: Set(now),
    }
    .insert(conn)
    .await
}

pub async fn find(db: &Store, id: &str) -> Result<Option<delegation::Model>, DbErr> {
    if id.is_empty() || id.len() > 64 {
        return Ok(None);
    }
    delegation::Entity::find_by_id(id.to_owned()).one(db).await
}

/// Who may make a transition: the principal side must match.
#[derive(Debug, Clone)]
pub enum Party<'a> {
    /// The enterprise's representative (agent delegations of it).
    Enterprise(&'a str),
    /// The person who granted (person or kin delegations).
    Principal(&'a str),
    /// The person who received a person delegation (C6: accepting or
    /// declining it). Only person delegations: an agent is the grantee of
    /// his agent delegation too, and must not approve himself (C3).
    Grantee(&'a str),
    /// The guardian of a kin relation (E2: unbinding it).
    Guardian(&'a str),
}

fn party_filter(
    q: sea_orm::UpdateMany<delegation::Entity>,
    party: &Party<'_>,
) -> sea_orm::UpdateMany<delegation::Entity> {
    match party {
        Party::Enterprise(e) => {
            q.filter(delegation::Column::EnterpriseId.eq(*e)).filter(delegation::Column::Kind.eq(Kind::Agent.as_str()))
        }
        Party::Principal(u) => q.filter(delegation::Column::PrincipalUserId.eq(*u)),
        Party::Grantee(u) => q
            .filter(delegation::Column::GranteeUserId.eq(*u))
            .filter(delegation::Column::Kind.eq(Kind::Person.as_str())),
        Party::Guardian(u) => {
            q.filter(delegation::Column::GranteeUserId.eq(*u)).filter(delegation::Column::Kind.eq(Kind::Kin.as_str()))
        }
    }
}

async fn transition<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    party: &Party<'_>,
    to: DelegationState,
    reason: Option<&str>,
    now: i64,
) -> Result<bool, DbErr> {
    let from = to.reachable_from().iter().map(|s| s.as_str());
    let q = delegation::Entity::update_many()
        .col_expr(delegation::Column::State, Expr::value(to.as_str()))
        .col_expr(delegation::Column::ModifiedAt, Expr::value(now))
        .col_expr(delegation::Column::Reason, Expr::value(reason.map(String::from)))
        .filter(delegation::Column::Id.eq(id))
        .filter(delegation::Column::State.is_in(from));
    Ok(party_filter(q, party).exec(conn).await?.rows_affected == 1)
}

/// The audit action of a transition to `to` of a delegation of `kind`:
/// named after what the person did (a C6 grantee accepts, an enterprise
/// approves its agent, a guardian unbinds a relative).
fn action_of(kind: &str, to: DelegationState) -> &'static str {
    use DelegationState::{Active, Rejected};
    match (kind, to) {
        ("person", Active) => "authorisation_accepted",
        ("person", Rejected) => "authorisation_declined",
        ("person", _) => "authorisation_revoked",
        ("agent", Active) => "agent_approved",
        ("agent", Rejected) => "agent_rejected",
        ("agent", _) => "agent_revoked",
        ("kin", Active) => "kin_activated",
        ("kin", Rejected) => "kin_rejected",
        _ => "kin_unbound",
    }
}

/// Audits a transition that took place, in its transaction: the party is
/// the actor, the delegation the subject.
async fn audit_transition<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    party: &Party<'_>,
    to: DelegationState,
    ip: Option<&str>,
    now: i64,
) -> Result<(), DbErr> {
    use crate::domain::audit::{Actor, Event};
    let Some(d) = delegation::Entity::find_by_id(id.to_owned()).one(conn).await? else {
        return Ok(());
    };
    let actor = match party {
        Party::Enterprise(e) => Actor::Enterprise(e),
        Party::Principal(u) | Party::Grantee(u) | Party::Guardian(u) => Actor::User(u),
    };
    let subject = format!("delegation:{id}");
    let mut detail = format!("grantee={}", d.grantee_user_id);
    if let Some(e) = &d.enterprise_id {
        detail.push_str(&format!(" enterprise={e}"));
    }
    if let Some(p) = &d.principal_user_id {
        detail.push_str(&format!(" principal={p}"));
    }
    let e = Event::new(action_of(&d.kind, to), actor, &subject).detail(&detail).ip(ip);
    crate::domain::audit::record(conn, e, now).await
}

/// Pending → active (C3 approval by the representative; C6 acceptance by
/// the grantee). False if it was not pending for this party any more.
pub async fn activate(db: &Store, id: &str, party: &Party<'_>, ip: Option<&str>, now: i64) -> Result<bool, DbErr> {
    let txn = crate::store::begin_write(db).await?;
    if !transition(&txn, id, party, DelegationState::Active, None, now).await? {
        return Ok(false);
    }
    audit_transition(&txn, id, party, DelegationState::Active, ip, now).await?;
    txn.commit().await?;
    Ok(true)
}

/// Pending → rejected, with the reason the applicant sees (C3).
pub async fn reject(
    db: &Store,
    id: &str,
    party: &Party<'_>,
    reason: &str,
    ip: Option<&str>,
    now: i64,
) -> Result<bool, DbErr> {
    let txn = crate::store::begin_write(db).await?;
    if !transition(&txn, id, party, DelegationState::Rejected, Some(reason), now).await? {
        return Ok(false);
    }
    audit_transition(&txn, id, party, DelegationState::Rejected, ip, now).await?;
    txn.commit().await?;
    Ok(true)
}

/// What ending a delegation ended: the sessions acting under it (their
/// clients get back-channel logout tokens from the web layer).
#[derive(Debug, Default)]
pub struct Ended {
    pub sessions: Vec<(String, String)>,
}

impl Ended {
    /// Tells the apps of the ended sessions (back-channel logout through
    /// the notice port), after the change committed; best effort.
    pub async fn tell<N: crate::ports::notify::LogoutNotifier>(self, db: &Store, notices: &N) {
        let mut told = Vec::new();
        for (user_id, sid) in self.sessions {
            match crate::domain::tokens::subjects::of_account(db, &user_id).await {
                Ok(subject) => told.push(crate::ports::notify::EndedSession { sid, subject }),
                Err(e) => tracing::error!("back-channel logout: {e}"),
            }
        }
        notices.sessions_ended(&told).await;
    }
}

/// C3/C6: [`revoke`], then the apps of the sessions it ended are told
/// (back-channel logout). `false` when the delegation changed meanwhile.
pub async fn revoke_and_notify<N: crate::ports::notify::LogoutNotifier>(
    db: &Store,
    notices: &N,
    id: &str,
    party: &Party<'_>,
    ip: Option<&str>,
    now: i64,
) -> Result<bool, DbErr> {
    match revoke(db, id, party, ip, now).await? {
        Some(ended) => {
            ended.tell(db, notices).await;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Pending or active → revoked; in the same transaction every grant issued
/// under it and every session acting under it ends (C3: "revocation ends
/// the agent's sessions and refresh tokens for that enterprise at once").
pub async fn revoke(
    db: &Store,
    id: &str,
    party: &Party<'_>,
    ip: Option<&str>,
    now: i64,
) -> Result<Option<Ended>, DbErr> {
    let txn = crate::store::begin_write(db).await?;
    if !transition(&txn, id, party, DelegationState::Revoked, None, now).await? {
        return Ok(None);
    }
    audit_transition(&txn, id, party, DelegationState::Revoked, ip, now).await?;
    let ended = end_effects(&txn, id, now, None).await?;
    txn.commit().await?;
    Ok(Some(ended))
}

/// Ends the grants issued under a delegation and the sessions acting under
/// it, but `keep` (the session a password change was made in).
pub(crate) async fn end_effects<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    now: i64,
    keep: Option<&str>,
) -> Result<Ended, DbErr> {
    crate::domain::tokens::grants::revoke_for_delegation(conn, id, now).await?;
    let sids: Vec<String> = session_acting::Entity::find()
        .filter(session_acting::Column::DelegationId.eq(id))
        .all(conn)
        .await?
        .into_iter()
        .map(|a| a.sid)
        .filter(|sid| Some(sid.as_str()) != keep)
        .collect();
    let mut ended = Ended::default();
    if sids.is_empty() {
        return Ok(ended);
    }
    let rows = session::Entity::find()
        .filter(session::Column::Sid.is_in(sids.clone()))
        .filter(session::Column::Revoked.eq(false))
        .all(conn)
        .await?;
    session::Entity::update_many()
        .col_expr(session::Column::Revoked, Expr::value(true))
        .filter(session::Column::Sid.is_in(sids.clone()))
        .exec(conn)
        .await?;
    for sid in &sids {
        crate::store::entities::grant::Entity::update_many()
            .col_expr(crate::store::entities::grant::Column::RevokedAt, Expr::value(now))
            .filter(crate::store::entities::grant::Column::Sid.eq(sid.as_str()))
            .filter(crate::store::entities::grant::Column::RevokedAt.is_null())
            .exec(conn)
            .await?;
    }
    ended.sessions = rows.into_iter().map(|s| (s.user_id, s.sid)).collect();
    Ok(ended)
}

/// Records the first-sign-in face check of an agent (C1).
pub async fn mark_face(db: &Store, id: &str, now: i64) -> Result<(), DbErr> {
    delegation::Entity::update_many()
        .col_expr(delegation::Column::FaceAt, Expr::value(now))
        .filter(delegation::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Agent delegations of an enterprise, newest change first (C3 list).
pub async fn agents_of(db: &Store, enterprise_id: &str) -> Result<Vec<delegation::Model>, DbErr> {
    delegation::Entity::find()
        .filter(delegation::Column::EnterpriseId.eq(enterprise_id))
        .filter(delegation::Column::Kind.eq(Kind::Agent.as_str()))
        .order_by_desc(delegation::Column::ModifiedAt)
        .all(db)
        .await
}

/// The agent delegation of `user_id` for an enterprise, most recent first.
pub async fn agent_delegation<C: ConnectionTrait>(
    db: &C,
    enterprise_id: &str,
    user_id: &str,
) -> Result<Option<delegation::Model>, DbErr> {
    delegation::Entity::find()
        .filter(delegation::Column::EnterpriseId.eq(enterprise_id))
        .filter(delegation::Column::GranteeUserId.eq(user_id))
        .filter(delegation::Column::Kind.eq(Kind::Agent.as_str()))
        .order_by_desc(delegation::Column::ModifiedAt)
        .one(db)
        .await
}

/// Delegations of a kind where `user_id` is the principal ("granted") or
/// the grantee ("received"), newest first (C6 lists, E2 list).
pub async fn granted_by(db: &Store, user_id: &str, kind: Kind) -> Result<Vec<delegation::Model>, DbErr> {
    let col = match kind {
        // A kin relation is "granted" by nobody with an account: the
        // guardian (the grantee) lists the relatives they act for.
        Kind::Kin => delegation::Column::GranteeUserId,
        _ => delegation::Column::PrincipalUserId,
    };
    delegation::Entity::find()
        .filter(col.eq(user_id))
        .filter(delegation::Column::Kind.eq(kind.as_str()))
        .order_by_desc(delegation::Column::ModifiedAt)
        .all(db)
        .await
}

pub async fn received_by(db: &Store, user_id: &str, kind: Kind) -> Result<Vec<delegation::Model>, DbErr> {
    delegation::Entity::find()
        .filter(delegation::Column::GranteeUserId.eq(user_id))
        .filter(delegation::Column::Kind.eq(kind.as_str()))
        .order_by_desc(delegation::Column::ModifiedAt)
        .all(db)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(state: DelegationState, from: Option<&str>, to: Option<&str>) -> delegation::Model {
        delegation::Model {
            id: "x".into(),
            kind: "person".into(),
            enterprise_id: None,
            principal_user_id: Some("a".into()),
            relative_name: None,
            relative_id_number: None,
            relation: None,
            grantee_user_id: "b".into(),
            scopes: String::new(),
            valid_from: from.map(String::from),
            valid_to: to.map(String::from),
            state: state.as_str().into(),
            reason: None,
            face_at: None,
            agent_password_hash: None,
            created_at: 0,
            modified_at: 0,
        }
    }

    #[test]
    fn expiry_follows_the_china_date() {
        // 2020-01-01 20:00 UTC is 2020-01-02 04:00 in China.
        let now = chrono::NaiveDate::from_ymd_opt(2020, 1, 1)
            .and_then(|d| d.and_hms_opt(20, 0, 0))
            .map(|t| t.and_utc().timestamp())
            .unwrap_or_default();
        assert_eq!(today(now).to_string(), "2020-01-02");
        let active = DelegationState::Active;
        assert_eq!(effective_state(&d(active, None, Some("2020-01-02")), now), EffectiveState::Active);
        assert_eq!(effective_state(&d(active, None, Some("2020-01-01")), now), EffectiveState::Expired);
        assert!(!in_force(&d(active, Some("2020-01-03"), None), now));
        assert!(in_force(&d(active, Some("2020-01-02"), Some("2020-01-02")), now));
        assert!(!in_force(&d(DelegationState::Pending, None, None), now));
    }

    #[test]
    fn stored_states_keep_their_strings() {
        use DelegationState::*;
        for s in [Pending, Active, Rejected, Revoked] {
            assert_eq!(DelegationState::parse(s.as_str()), Some(s));
        }
        assert_eq!(DelegationState::parse("expired"), None);
        // Nothing leaves rejected or revoked; only pending is approved.
        assert_eq!(Active.reachable_from(), &[Pending]);
        assert_eq!(Revoked.reachable_from(), &[Pending, Active]);
        assert!(Pending.reachable_from().is_empty());
        let unknown = delegation::Model { state: "frozen".into(), ..d(Active, None, None) };
        assert_eq!(effective_state(&unknown, 0), EffectiveState::Revoked);
    }
}
