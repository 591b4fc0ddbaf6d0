//! The device authorization grant (RFC 8628): a TV or kiosk asks for a
//! device code and a short user code; a signed-in citizen enters the user
//! code at `/device` and approves; the device polls `/token`.
//!
//! Codes are single use in the database: approval and redemption are each
//! one conditional UPDATE, so two polls or two nodes cannot both win.
use crate::crypto::{SecretHasher, random_token};
use crate::domain::error::OAuthError;
use crate::store::Store;
use crate::store::entities::device_code;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, QueryFilter, Set};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
const PURPOSE: &str = "device_code";
/// RFC 8628 §6.1: no vowels, no look-alikes; 20^8 ≈ 2^34.6 codes.
const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
/// How much a too-early poll adds to the interval (RFC 8628 §3.5).
const SLOW_DOWN: i64 = 5;

pub struct Started {
    pub device_code: String,
    /// `XXXX-XXXX`, as shown to the person.
    pub user_code: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// The user code as stored: upper case, letters of the alphabet only.
pub fn normalise(user_code: &str) -> String {
    user_code.chars().filter(|c| c.is_ascii_alphabetic()).map(|c| c.to_ascii_uppercase()).collect()
}

fn user_code() -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    (0..8).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

pub async fn start(
    db: &Store,
    hasher: &SecretHasher,
    client_id: &str,
    scope: &str,
    ttl: i64,
    interval: i64,
    now: i64,
) -> Result<Started, DbErr> {
    let device_code = random_token(32);
    let code = user_code();
    device_code::ActiveModel {
        device_code_hash: Set(hasher.digest(PURPOSE, &device_code)),
        user_code: Set(code.clone()),
        client_id: Set(client_id.into()),
        scope: Set(scope.into()),
        state: Set("pending".into()),
        user_id: Set(None),
        sid: Set(None),
        auth_time: Set(None),
        acr: Set(None),
        amr: Set(None),
        interval_secs: Set(interval),
        last_poll_at: Set(None),
        created_at: Set(now),
        expires_at: Set(now + ttl),
    }
    .insert(db)
    .await?;
    Ok(Started { device_code, user_code: format!("{}-{}", &code[..4], &code[4..]), expires_in: ttl, interval })
}

/// A pending request by its user code, while it can still be approved.
pub async fn pending(db: &Store, user_code: &str, now: i64) -> Result<Option<device_code::Model>, DbErr> {
    device_code::Entity::find()
        .filter(device_code::Column::UserCode.eq(normalise(user_code)))
        .filter(device_code::Column::State.eq("pending"))
        .filter(device_code::Column::ExpiresAt.gt(now))
        .one(db)
        .await
}

/// Who approves, in which session, how strongly signed in.
pub struct Approver<'a> {
    pub user_id: &'a str,
    pub sid: &'a str,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
}

/// The citizen's decision; false when the code is unknown, expired or
/// already decided.
pub async fn decide(db: &Store, user_code: &str, who: Approver<'_>, approve: bool, now: i64) -> Result<bool, DbErr> {
    let (user_id, sid) = (who.user_id, who.sid);
    let res = device_code::Entity::update_many()
        .col_expr(device_code::Column::AuthTime, Expr::value(who.auth_time))
        .col_expr(device_code::Column::Acr, Expr::value(who.acr))
        .col_expr(device_code::Column::Amr, Expr::value(serde_json::to_string(&who.amr).unwrap_or_default()))
        .col_expr(device_code::Column::State, Expr::value(if approve { "approved" } else { "denied" }))
        .col_expr(device_code::Column::UserId, Expr::value(user_id))
        .col_expr(device_code::Column::Sid, Expr::value(sid))
        .filter(device_code::Column::UserCode.eq(normalise(user_code)))
        .filter(device_code::Column::State.eq("pending"))
        .filter(device_code::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// One poll of the device (RFC 8628 §3.4–3.5): the approved request, taken
/// once; or the error the device is to act on.
pub async fn poll(
    db: &Store,
    hasher: &SecretHasher,
    device_code: &str,
    client_id: &str,
    now: i64,
) -> crate::domain::error::DomainResult<device_code::Model> {
    let hash = hasher.digest(PURPOSE, device_code);
    let Some(row) = device_code::Entity::find_by_id(hash.clone()).one(db).await? else {
        return Err(OAuthError::invalid_grant("unknown device code").into());
    };
    if row.client_id != client_id {
        return Err(OAuthError::invalid_grant("the device code was issued to another client").into());
    }
    if row.expires_at <= now || row.state == "used" {
        return Err(OAuthError::new("expired_token", "the device code has expired").into());
    }
    let early = row.last_poll_at.is_some_and(|at| now < at + row.interval_secs);
    let mut update = device_code::Entity::update_many()
        .col_expr(device_code::Column::LastPollAt, Expr::value(now))
        .filter(device_code::Column::DeviceCodeHash.eq(hash.clone()));
    if early {
        update = update.col_expr(device_code::Column::IntervalSecs, Expr::value(row.interval_secs + SLOW_DOWN));
    }
    update.exec(db).await?;
    if early {
        return Err(OAuthError::new("slow_down", "poll less often").into());
    }
    match row.state.as_str() {
        "pending" => Err(OAuthError::new("authorization_pending", "the user has not decided yet").into()),
        "denied" => Err(OAuthError::new("access_denied", "the user refused").into()),
        _ => {
            let taken = device_code::Entity::update_many()
                .col_expr(device_code::Column::State, Expr::value("used"))
                .filter(device_code::Column::DeviceCodeHash.eq(hash))
                .filter(device_code::Column::State.eq("approved"))
                .exec(db)
                .await?;
            if taken.rows_affected != 1 {
                return Err(OAuthError::new("expired_token", "the device code was already used").into());
            }
            Ok(row)
        }
    }
}
