//! Citizen self-service (A1, A3, A6): registration by phone with an SMS
//! code, account deletion, ending an account's sessions, and the audit log
//! every sensitive change writes to.
use crate::crypto::password::PasswordService;
use crate::domain::identity::users::{PhoneNumber, UserSummary, Username};
use crate::ports::notify::{EndedSession, Notices};
use crate::store::Store;
use crate::store::entities::user;
use crate::{domain::authn::sessions, domain::tokens::grants};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

/// A1 password rules: 8–20 characters of letters, digits and symbols, with
/// at least two of those three kinds.
pub fn check_citizen_password(password: &str) -> Result<(), &'static str> {
    let n = password.chars().count();
    if !(8..=20).contains(&n) {
        return Err("password_length");
    }
    if !password.chars().all(|c| c.is_ascii_graphic()) {
        return Err("password_chars");
    }
    let kinds = [
        password.chars().any(|c| c.is_ascii_alphabetic()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| c.is_ascii_punctuation()),
    ];
    if kinds.iter().filter(|k| **k).count() < 2 {
        return Err("password_kinds");
    }
    Ok(())
}

/// A rough strength for the hint beside the password field.
pub fn password_strength(password: &str) -> u8 {
    let kinds = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| c.is_ascii_punctuation()),
    ]
    .iter()
    .filter(|k| **k)
    .count();
    match (kinds, password.len()) {
        (0..=1, _) => 1,
        (2, _) | (3, 0..=9) => 2,
        _ => 3,
    }
}

#[derive(Debug, Default, Clone)]
pub struct RegistrationForm {
    pub username: String,
    pub phone: String,
    pub password: String,
    pub password2: String,
    pub agreed: bool,
}

/// A field problem, named by the locale key of its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: &'static str,
}

/// Checks everything that needs no database, in the order the form shows.
pub fn validate(form: &RegistrationForm) -> Result<(Username, PhoneNumber), FieldError> {
    let username = Username::parse(form.username.trim())
        .map_err(|_| FieldError { field: "username", message: "register_username_rule" })?;
    let phone =
        PhoneNumber::parse(&form.phone).map_err(|_| FieldError { field: "phone", message: "register_phone_rule" })?;
    check_citizen_password(&form.password).map_err(|m| FieldError {
        field: "password",
        message: match m {
            "password_length" => "register_password_length",
            "password_chars" => "register_password_chars",
            _ => "register_password_kinds",
        },
    })?;
    if form.password != form.password2 {
        return Err(FieldError { field: "password2", message: "register_password_mismatch" });
    }
    if !form.agreed {
        return Err(FieldError { field: "agree", message: "register_agree_required" });
    }
    Ok((username, phone))
}

pub async fn phone_taken(db: &Store, phone: &PhoneNumber) -> Result<bool, DbErr> {
    Ok(user::Entity::find().filter(user::Column::Phone.eq(phone.as_str())).one(db).await?.is_some())
}

pub enum Created {
    Ok(UserSummary),
    /// A unique field is already registered (locale key of the message).
    Taken(&'static str),
}

/// Creates the account. Uniqueness is enforced by the database, so two
/// racing registrations of one phone or username produce one account.
pub async fn create_citizen(
    db: &Store,
    passwords: &PasswordService,
    username: &Username,
    phone: &PhoneNumber,
    password: &str,
    now: i64,
) -> Result<Created, crate::domain::DomainError> {
    let hash = passwords.hash(password.to_string()).await?;
    let model = user::ActiveModel {
        id: Set(uuid::Uuid::new_v4().to_string()),
        username: Set(username.as_str().to_string()),
        phone: Set(Some(phone.as_str().to_string())),
        id_number: Set(None),
        email: Set(None),
        email_verified: Set(false),
        phone_verified: Set(true),
        name: Set(None),
        profile: Set(None),
        address: Set(None),
        password_hash: Set(hash),
        disabled: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        proofing_level: Set(1),
    };
    match model.insert(db).await {
        Ok(u) => Ok(Created::Ok(UserSummary::from(&u))),
        Err(e) => match e.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(detail)) => {
                let phone_clash = detail.contains("phone")
                    || user::Entity::find()
                        .filter(user::Column::Phone.eq(phone.as_str()))
                        .one(db)
                        .await
                        .ok()
                        .flatten()
                        .is_some();
                Ok(Created::Taken(if phone_clash { "register_phone_taken" } else { "register_username_taken" }))
            }
            _ => Err(e.into()),
        },
    }
}

/// Creates an account for a phone no account holds, inside the caller's
/// transaction if it likes (upstream auto-registration A3, the agent's
/// account at C2 registration). It has no password (the stored hash never
/// verifies) until the person sets one through "forgot password"; its
/// username is generated; `profile` is the profile JSON (gender,
/// ethnicity …). `None` when a unique field (the phone) was taken
/// meanwhile — the database decides, so two racing creations of one phone
/// make one account.
pub async fn create_without_password<C: ConnectionTrait>(
    conn: &C,
    phone: &PhoneNumber,
    profile: Option<String>,
    now: i64,
) -> Result<Option<user::Model>, DbErr> {
    let username = format!("m{}", crate::crypto::random_token(12).to_ascii_lowercase().replace(['-', '_'], "0"));
    let model = user::ActiveModel {
        id: Set(uuid::Uuid::new_v4().to_string()),
        username: Set(username.chars().take(20).collect()),
        phone: Set(Some(phone.as_str().to_string())),
        id_number: Set(None),
        email: Set(None),
        email_verified: Set(false),
        phone_verified: Set(true),
        name: Set(None),
        profile: Set(profile),
        address: Set(None),
        password_hash: Set(crate::domain::identity::users::NO_PASSWORD.into()),
        disabled: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        proofing_level: Set(1),
    };
    match model.insert(conn).await {
        Ok(u) => Ok(Some(u)),
        Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Appends to the audit log. Details never hold secrets. Any connection,
/// so a use case can audit inside its own transaction.
pub async fn audit<C: sea_orm::ConnectionTrait>(
    db: &C,
    user_id: Option<&str>,
    action: &str,
    detail: &str,
    ip: Option<&str>,
    now: i64,
) -> Result<(), DbErr> {
    // One writer for every audit row: the hash chain and counters (G2).
    crate::domain::audit::append(db, user_id, action, detail, ip, now).await
}

/// Ends the account's live sessions except `keep`, with the grants issued
/// in them (their refresh and access tokens die too), inside the caller's
/// transaction. The ended sessions come back under `subject`, the `sub`
/// their apps knew, for back-channel logout once the caller has committed:
/// an app must never hear of a logout that was rolled back.
pub async fn end_sessions<C: ConnectionTrait>(
    conn: &C,
    user_id: &str,
    keep: Option<&str>,
    subject: &str,
    now: i64,
) -> Result<Vec<EndedSession>, DbErr> {
    let mut ended = Vec::new();
    for s in sessions::live_for_user(conn, user_id, now).await? {
        if Some(s.sid.as_str()) == keep {
            continue;
        }
        sessions::revoke_by_sid(conn, &s.sid).await?;
        grants::revoke_by_sid(conn, &s.sid, now).await?;
        ended.push(EndedSession { sid: s.sid, subject: subject.to_string() });
    }
    Ok(ended)
}

/// Account deletion (A6), after the handler checked the confirmation and
/// the SMS code. One transaction ends every session (including
/// `current_sid`, the browser asking), revokes every grant and refresh
/// token, erases the personal data — which releases the phone, username
/// and identity for a new registration — and writes the audit row; a
/// failure leaves the account whole. Only then are the relying apps told
/// (back-channel logout) and the phone gets its notice.
pub async fn delete_account<N: Notices>(
    db: &Store,
    notices: &N,
    u: &user::Model,
    current_sid: &str,
    ip: &str,
    now: i64,
) -> Result<(), DbErr> {
    let txn = crate::store::begin_write(db).await?;
    // Read before the erasure forgets it: the apps know the person by it.
    let subject = crate::domain::tokens::subjects::of_account(&txn, &u.id).await?;
    let mut ended = end_sessions(&txn, &u.id, None, &subject, now).await?;
    if !ended.iter().any(|s| s.sid == current_sid) {
        sessions::revoke_by_sid(&txn, current_sid).await?;
        grants::revoke_by_sid(&txn, current_sid, now).await?;
        ended.push(EndedSession { sid: current_sid.to_string(), subject: subject.clone() });
    }
    grants::revoke_all_for_user(&txn, &u.id, now).await?;
    crate::domain::identity::profile::erase(&txn, &u.id).await?;
    audit(&txn, Some(&u.id), "account_deleted", "personal data removed", Some(ip), now).await?;
    txn.commit().await?;
    notices.sessions_ended(&ended).await;
    if let Some(phone) = &u.phone {
        notices.notify_phone(phone, "sms_account_deleted", now).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citizen_password_rules() {
        assert_eq!(check_citizen_password("short1!"), Err("password_length"));
        assert_eq!(check_citizen_password("abcdefghijklmnopqrstu1"), Err("password_length"));
        assert_eq!(check_citizen_password("onlyletters"), Err("password_kinds"));
        assert_eq!(check_citizen_password("密码密码密码12ab"), Err("password_chars"));
        assert!(check_citizen_password("letters123").is_ok());
        assert!(check_citizen_password("a-b-c-d-e").is_ok());
    }
}
