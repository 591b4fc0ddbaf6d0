//! Steps that need a fresh face check done through the app (C1 first
//! enterprise sign-in, C2 agent registration, C3 approval, E2 kin binding):
//! the browser's step waits in a gate naming whose face must be checked
//! (an ID number); the app's face check confirms the gate, and the browser
//! then takes it — once — to finish the step. Gates are bound to the
//! browser and live ten minutes; each transition is a conditional UPDATE.
//!
//! The gate page shows a scan ticket linked to the gate (`ticket_request`
//! says which purpose, for whom, and what the app shows). `confirm` is the
//! single seam that opens a gate: `scan::decide` calls it, in the same
//! transaction as the ticket's confirmation, with the app user's real-name
//! ID number — only the person the gate waits for opens it.
use crate::crypto::random_token;
use crate::domain::flows::mask_id_number;
use crate::domain::kin::mask_name;
use crate::domain::scan::Purpose;
use crate::store::entities::{delegation, enterprise, face_gate, identity, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
};
use serde_json::{Value, json};

pub const LIFETIME: i64 = 10 * 60;

/// C1: the first enterprise sign-in of the representative or an agent.
pub const LOGIN: &str = "enterprise_login";
/// C3: the representative approves a pending agent.
pub const APPROVE: &str = "approve_agent";
/// C2: the agent's own face check at registration.
pub const REGISTER: &str = "register_agent";
/// E2: binding a relative older than six.
pub const KIN: &str = "kin_bind";

pub async fn open(
    db: &DatabaseConnection,
    purpose: &str,
    browser_hash: &str,
    id_number: &str,
    payload: &serde_json::Value,
    now: i64,
) -> Result<String, DbErr> {
    let id = random_token(18);
    face_gate::ActiveModel {
        id: Set(id.clone()),
        purpose: Set(purpose.into()),
        browser: Set(browser_hash.into()),
        id_number: Set(id_number.into()),
        payload: Set(payload.to_string()),
        confirmed_at: Set(None),
        consumed_at: Set(None),
        expires_at: Set(now + LIFETIME),
    }
    .insert(db)
    .await?;
    Ok(id)
}

/// The open gate of this browser, if live (for showing its page).
pub async fn find(
    db: &DatabaseConnection,
    id: &str,
    browser_hash: &str,
    now: i64,
) -> Result<Option<face_gate::Model>, DbErr> {
    if id.is_empty() || id.len() > 64 {
        return Ok(None);
    }
    Ok(face_gate::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .filter(|g| g.browser == browser_hash && g.expires_at > now && g.consumed_at.is_none()))
}

/// The app reports a passed face check of the person with `id_number`.
/// False when the gate is gone, expired, or waits for someone else.
pub async fn confirm<C: ConnectionTrait>(db: &C, id: &str, id_number: &str, now: i64) -> Result<bool, DbErr> {
    let r = face_gate::Entity::update_many()
        .col_expr(face_gate::Column::ConfirmedAt, Expr::value(now))
        .filter(face_gate::Column::Id.eq(id))
        .filter(face_gate::Column::IdNumber.eq(id_number))
        .filter(face_gate::Column::ConfirmedAt.is_null())
        .filter(face_gate::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Takes a confirmed gate of this browser and purpose exactly once and
/// returns its payload.
pub async fn take(
    db: &DatabaseConnection,
    id: &str,
    purpose: &str,
    browser_hash: &str,
    now: i64,
) -> Result<Option<serde_json::Value>, DbErr> {
    let Some(g) = find(db, id, browser_hash, now).await? else {
        return Ok(None);
    };
    if g.purpose != purpose || g.confirmed_at.is_none() {
        return Ok(None);
    }
    let r = face_gate::Entity::update_many()
        .col_expr(face_gate::Column::ConsumedAt, Expr::value(now))
        .filter(face_gate::Column::Id.eq(id))
        .filter(face_gate::Column::ConsumedAt.is_null())
        .exec(db)
        .await?;
    Ok((r.rows_affected == 1).then(|| serde_json::from_str(&g.payload).unwrap_or_default()))
}

/// The gate's row, live or not (for the app side's checks).
pub async fn load(db: &DatabaseConnection, id: &str) -> Result<Option<face_gate::Model>, DbErr> {
    if id.is_empty() || id.len() > 64 {
        return Ok(None);
    }
    face_gate::Entity::find_by_id(id.to_owned()).one(db).await
}

/// The real-name ID number of an account: its bound identity's number, the
/// one the verifier checks the face against.
pub async fn real_name_number(db: &DatabaseConnection, user_id: &str) -> Result<Option<String>, DbErr> {
    Ok(identity::Entity::find_by_id(user_id.to_owned()).one(db).await?.map(|i| i.doc_number))
}

/// What a gate's scan ticket asks of the app: the purpose (`approval` for
/// C3, `face` otherwise), whose app may take it (the account holding the
/// real-name identity the gate waits for; `None` when no account does, so
/// no app can), and what the app shows — masked, never the payload itself
/// (which may hold a password hash).
pub struct GateRequest {
    pub purpose: Purpose,
    pub subject_user_id: Option<String>,
    pub detail: Value,
}

pub async fn ticket_request(db: &DatabaseConnection, gate: &face_gate::Model) -> Result<GateRequest, DbErr> {
    let subject = identity::Entity::find()
        .filter(identity::Column::DocNumber.eq(gate.id_number.as_str()))
        .one(db)
        .await?
        .map(|i| i.user_id);
    let payload: Value = serde_json::from_str(&gate.payload).unwrap_or_default();
    let s = |k: &str| payload.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let ent = match payload.get("enterprise").and_then(Value::as_str) {
        Some(id) => enterprise::Entity::find_by_id(id.to_owned()).one(db).await?,
        None => None,
    };
    let mut detail = json!({ "action": gate.purpose, "person": mask_id_number(&gate.id_number) });
    if gate.purpose != KIN {
        let (name, uscc) = ent.as_ref().map(|e| (e.name.as_str(), e.uscc.as_str())).unwrap_or_default();
        detail["enterprise"] = json!({ "name": name, "uscc": uscc });
    }
    let purpose = match gate.purpose.as_str() {
        APPROVE => {
            let agent = match delegation::Entity::find_by_id(s("delegation")).one(db).await? {
                Some(d) => user::Entity::find_by_id(d.grantee_user_id).one(db).await?,
                None => None,
            };
            detail["agent"] = json!({
                "name": agent.as_ref().and_then(|u| u.name.as_deref()).map(mask_name).unwrap_or_default(),
                "id_number": agent.as_ref().and_then(|u| u.id_number.as_deref()).map(mask_id_number).unwrap_or_default(),
            });
            Purpose::Approval
        }
        LOGIN => {
            detail["role"] = json!(s("role"));
            Purpose::Face
        }
        KIN => {
            let guardian = user::Entity::find_by_id(s("user")).one(db).await?;
            detail["guardian"] = json!(guardian.and_then(|u| u.name).as_deref().map(mask_name).unwrap_or_default());
            detail["relation"] = json!(s("relation"));
            Purpose::Face
        }
        _ => Purpose::Face,
    };
    Ok(GateRequest { purpose, subject_user_id: subject, detail })
}
