//! Authorization requests waiting for the user (sign-in, consent, account
//! choice). Stored in the database so any node can continue them, bound to
//! the browser that started them, and short-lived.
use crate::crypto::random_token;
use crate::domain::tokens::authorize::AuthRequest;
use crate::store::Store;
use crate::store::entities::auth_request;
use sea_orm::{ActiveModelTrait, DbErr, EntityTrait, QueryFilter, Set};

const LIFETIME: i64 = 30 * 60;

pub async fn save(db: &Store, req: &AuthRequest, browser_hash: &str, now: i64) -> Result<String, DbErr> {
    let id = random_token(18);
    auth_request::ActiveModel {
        id: Set(id.clone()),
        client_id: Set(req.client_id.clone()),
        params: Set(serde_json::to_string(req).unwrap_or_default()),
        browser: Set(browser_hash.to_string()),
        expires_at: Set(now + LIFETIME),
    }
    .insert(db)
    .await?;
    Ok(id)
}

/// Loads a pending request if it exists, is live at `now` and belongs to
/// this browser.
pub async fn load(db: &Store, id: &str, browser_hash: &str, now: i64) -> Result<Option<AuthRequest>, DbErr> {
    if id.is_empty() || id.len() > 64 {
        return Ok(None);
    }
    let Some(row) = auth_request::Entity::find_by_id(id.to_owned()).one(db).await? else {
        return Ok(None);
    };
    if row.browser != browser_hash || row.expires_at <= now {
        return Ok(None);
    }
    Ok(serde_json::from_str(&row.params).ok())
}

pub async fn update<C: sea_orm::ConnectionTrait>(db: &C, id: &str, req: &AuthRequest) -> Result<(), DbErr> {
    auth_request::Entity::update_many()
        .col_expr(
            auth_request::Column::Params,
            sea_orm::sea_query::Expr::value(serde_json::to_string(req).unwrap_or_default()),
        )
        .filter(sea_orm::ColumnTrait::eq(&auth_request::Column::Id, id))
        .exec(db)
        .await?;
    Ok(())
}

/// Removes a finished request; returns whether this call removed it, so a
/// request cannot complete twice.
pub async fn finish(db: &Store, id: &str) -> Result<bool, DbErr> {
    Ok(auth_request::Entity::delete_by_id(id.to_owned()).exec(db).await?.rows_affected == 1)
}
