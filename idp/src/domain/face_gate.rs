//! Steps that need a fresh face check done through the app (C1 first
//! enterprise sign-in, C2 agent registration, C3 approval, E2 kin binding):
//! the browser's step waits in a gate naming whose face must be checked
//! (an ID number); the app's face check confirms the gate, and the browser
//! then takes it — once — to finish the step. Gates are bound to the
//! browser and live ten minutes; each transition is a conditional UPDATE.
//!
//! `confirm` is the single seam the app side calls: a scan ticket of
//! purpose `face`/`approval` confirmed in the app by the person whose
//! real-name identity has this ID number.
use crate::crypto::random_token;
use crate::store::entities::face_gate;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set};

pub const LIFETIME: i64 = 10 * 60;

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
pub async fn confirm(db: &DatabaseConnection, id: &str, id_number: &str, now: i64) -> Result<bool, DbErr> {
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
