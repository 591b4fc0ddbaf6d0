//! Enterprise registration from the web (seed 004 §2, C1) and the legal
//! representative's enterprise password (C1, C5).
//!
//! Registration: the representative — a signed-in citizen whose real-name
//! identity on record (bound after the authority's check through the
//! verifier port) names the same person and document as the form — gives
//! the credit code (GB 32100), the enterprise's name and region and his
//! phone (proved by an SMS code); his face check through the app opens the
//! gate; then the enterprise is created in one transaction, the credit
//! code unique (two racing registrations: one winner), audited. Its
//! password is unset ([`PASSWORD_UNSET`], nothing signs in) until the
//! representative sets it (step 3 of the manual), C1's rule, argon2id.
//!
//! The password: changed by the representative signed in as the
//! enterprise with the current one (a wrong guess counts in the sign-in
//! throttle of the credit code), or reset by an SMS code sent to the
//! representative's phone on record (the code bound to that enterprise).
//! Either ends, in the same transaction, every representative session of
//! the enterprise (but the one the change was made in) and the grants
//! issued to them; their apps are told, the phone gets a notice.
use crate::crypto::password::PasswordService;
use crate::domain::assurance::face_gate::RegisterEnterpriseGate;
use crate::domain::audit::{Actor, Event};
use crate::domain::delegation::Ended;
use crate::domain::delegation::enterprises::{
    EnterpriseError, Founding, Refusal, ThrottleKeys, check_enterprise_password, find_by_uscc, release_attempt,
    reserve_attempt,
};
use crate::domain::delegation::uscc::Uscc;
use crate::domain::identity::documents::{DocumentNumber, PersonName};
use crate::domain::identity::users::PhoneNumber;
use crate::store::Store;
use crate::store::entities::{enterprise, grant, identity, session, session_acting};
use chrono::NaiveDate;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

/// Not an argon2 PHC string: no password verifies against it.
pub const PASSWORD_UNSET: &str = "!unset";

/// The registration form as typed.
#[derive(Debug, Clone, Default)]
pub struct RegistrationForm<'a> {
    pub uscc: &'a str,
    pub name: &'a str,
    pub region: &'a str,
    pub rep_name: &'a str,
    pub rep_doc_type: &'a str,
    pub rep_number: &'a str,
    pub rep_phone: &'a str,
}

/// A registration whose fields each passed their rule.
#[derive(Debug, Clone)]
pub struct Registration {
    pub uscc: Uscc,
    pub name: String,
    pub region: String,
    pub rep_name: PersonName,
    pub rep_number: DocumentNumber,
    pub rep_phone: PhoneNumber,
}

/// The form's rules; a refusal is the locale key of the first field wrong.
pub fn parse(f: &RegistrationForm<'_>) -> Result<Registration, Refusal> {
    let uscc = Uscc::parse(f.uscc).map_err(|e| e.message_key())?;
    let name = f.name.trim();
    if !(2..=100).contains(&name.chars().count()) {
        return Err("enterprise_register_name_rule");
    }
    let region = f.region.trim();
    if region.is_empty() || region.chars().count() > 60 {
        return Err("enterprise_register_region_rule");
    }
    let rep_name = PersonName::parse(f.rep_name).map_err(|e| e.key())?;
    let rep_number = DocumentNumber::parse_any(Some(f.rep_doc_type), f.rep_number).map_err(|e| e.key())?;
    let rep_phone = PhoneNumber::parse(f.rep_phone).map_err(|_| "register_phone_rule")?;
    Ok(Registration { uscc, name: name.into(), region: region.into(), rep_name, rep_number, rep_phone })
}

/// The representative named on the form must be the signed-in citizen: the
/// real-name identity on record for `user_id` (verified by the authority
/// when it was bound) has the same name, document type and number, and
/// the document has not expired. The credit code must be free.
pub async fn check_applicant(
    db: &Store,
    user_id: &str,
    reg: &Registration,
    today: NaiveDate,
) -> Result<Result<(), Refusal>, DbErr> {
    let Some(id) = identity::Entity::find_by_id(user_id.to_owned()).one(db).await? else {
        return Ok(Err("enterprise_register_no_identity"));
    };
    if id.name != reg.rep_name.as_str()
        || id.doc_number != reg.rep_number.as_str()
        || id.doc_type != reg.rep_number.kind().as_str()
    {
        return Ok(Err("enterprise_register_rep_mismatch"));
    }
    let expired =
        id.valid_to.as_deref().and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()).is_some_and(|to| to < today);
    if expired {
        return Ok(Err("identity_err_expired"));
    }
    if find_by_uscc(db, reg.uscc.as_str()).await?.is_some() {
        return Ok(Err("enterprise_exists"));
    }
    Ok(Ok(()))
}

/// What waits in the face gate for `user_id`'s face check.
pub fn gate_of(user_id: &str, reg: &Registration) -> RegisterEnterpriseGate {
    RegisterEnterpriseGate {
        user: user_id.into(),
        uscc: reg.uscc.as_str().into(),
        name: reg.name.clone(),
        region: reg.region.clone(),
        rep_name: reg.rep_name.as_str().into(),
        rep_doc_type: reg.rep_number.kind().as_str().into(),
        rep_number: reg.rep_number.as_str().into(),
        rep_phone: reg.rep_phone.as_str().into(),
    }
}

/// After the representative's face check: the enterprise is created by the
/// same `enterprises::found` as `idp enterprise create` — its
/// representative linked and his face check recorded (it was just made),
/// its password unset, the credit code unique (of two registrations
/// racing, one wins; the other reads `enterprise_exists`), audited as
/// `enterprise_registered` in the same transaction.
pub async fn register(
    db: &Store,
    g: &RegisterEnterpriseGate,
    now: i64,
) -> Result<Result<enterprise::Model, Refusal>, DbErr> {
    // The gate's fields were checked before it opened; parsed again so a
    // payload read back empty is refused, never stored.
    let form = RegistrationForm {
        uscc: &g.uscc,
        name: &g.name,
        region: &g.region,
        rep_name: &g.rep_name,
        rep_doc_type: &g.rep_doc_type,
        rep_number: &g.rep_number,
        rep_phone: &g.rep_phone,
    };
    let reg = match parse(&form) {
        Ok(r) if !g.user.is_empty() => r,
        Ok(_) => return Ok(Err("error_request_expired")),
        Err(k) => return Ok(Err(k)),
    };
    let founding = Founding {
        uscc: &reg.uscc,
        name: &reg.name,
        region: &reg.region,
        representative_name: reg.rep_name.as_str(),
        representative_id_number: &reg.rep_number,
        representative_phone: &reg.rep_phone,
        password_hash: PASSWORD_UNSET.into(),
        registrant: Some(&g.user),
        operator: "",
    };
    crate::domain::delegation::enterprises::found(db, founding, now).await
}

/// The enterprise registered by `user_id` whose password is still unset
/// (the page of step 3), if any.
pub async fn awaiting_password(
    db: &Store,
    enterprise_id: &str,
    user_id: &str,
) -> Result<Option<enterprise::Model>, DbErr> {
    Ok(crate::domain::delegation::enterprises::find(db, enterprise_id)
        .await?
        .filter(|e| e.password_hash == PASSWORD_UNSET && e.representative_user_id.as_deref() == Some(user_id)))
}

/// Step 3: the representative who registered the enterprise sets its
/// password, once (a conditional UPDATE on the unset value); audited.
pub async fn set_first_password(
    db: &Store,
    passwords: &PasswordService,
    enterprise_id: &str,
    user_id: &str,
    password: &str,
    now: i64,
) -> Result<Result<(), Refusal>, EnterpriseError> {
    check_enterprise_password(password).map_err(EnterpriseError::Invalid)?;
    let hash = passwords.hash(password.to_string()).await?;
    let txn = crate::store::begin_write(db).await?;
    let r = enterprise::Entity::update_many()
        .col_expr(enterprise::Column::PasswordHash, Expr::value(hash))
        .col_expr(enterprise::Column::UpdatedAt, Expr::value(now))
        .filter(enterprise::Column::Id.eq(enterprise_id))
        .filter(enterprise::Column::PasswordHash.eq(PASSWORD_UNSET))
        .filter(enterprise::Column::RepresentativeUserId.eq(user_id))
        .exec(&txn)
        .await?;
    if r.rows_affected != 1 {
        return Ok(Err("enterprise_password_already_set"));
    }
    let subject = format!("enterprise:{enterprise_id}");
    crate::domain::audit::record(&txn, Event::new("enterprise_password_set", Actor::User(user_id), &subject), now)
        .await?;
    txn.commit().await?;
    Ok(Ok(()))
}

/// Ends every representative session of the enterprise (but `keep`) and
/// the grants issued to representative sign-ins of it (agents' sessions
/// and grants are theirs: their passwords did not change).
async fn end_representative_sessions<C: ConnectionTrait>(
    conn: &C,
    enterprise_id: &str,
    now: i64,
    keep: Option<&str>,
) -> Result<Ended, DbErr> {
    let mut grants = grant::Entity::update_many()
        .col_expr(grant::Column::RevokedAt, Expr::value(now))
        .filter(grant::Column::EnterpriseId.eq(enterprise_id))
        .filter(grant::Column::DelegationId.is_null())
        .filter(grant::Column::RevokedAt.is_null());
    if let Some(k) = keep {
        grants = grants.filter(Condition::any().add(grant::Column::Sid.is_null()).add(grant::Column::Sid.ne(k)));
    }
    grants.exec(conn).await?;
    let sids: Vec<String> = session_acting::Entity::find()
        .filter(session_acting::Column::EnterpriseId.eq(enterprise_id))
        .filter(session_acting::Column::DelegationId.is_null())
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
        .filter(session::Column::Sid.is_in(sids))
        .exec(conn)
        .await?;
    ended.sessions = rows.into_iter().map(|s| (s.user_id, s.sid)).collect();
    Ok(ended)
}

/// Replaces the password only if it is still `old`; ends the
/// representative sessions (but `keep`) and records `event` — all in one
/// transaction. `None` when it changed meanwhile.
async fn replace(
    db: &Store,
    enterprise_id: &str,
    old: &str,
    new_hash: &str,
    keep: Option<&str>,
    event: Event<'_>,
    now: i64,
) -> Result<Option<Ended>, DbErr> {
    let txn = crate::store::begin_write(db).await?;
    let r = enterprise::Entity::update_many()
        .col_expr(enterprise::Column::PasswordHash, Expr::value(new_hash))
        .col_expr(enterprise::Column::UpdatedAt, Expr::value(now))
        .filter(enterprise::Column::Id.eq(enterprise_id))
        .filter(enterprise::Column::PasswordHash.eq(old))
        .exec(&txn)
        .await?;
    if r.rows_affected != 1 {
        return Ok(None);
    }
    let ended = end_representative_sessions(&txn, enterprise_id, now, keep).await?;
    crate::domain::audit::record(&txn, event, now).await?;
    txn.commit().await?;
    Ok(Some(ended))
}

/// A password change by the representative signed in as the enterprise.
pub struct RepChange<'a> {
    pub enterprise_id: &'a str,
    /// The representative's account.
    pub user_id: &'a str,
    pub current: &'a str,
    pub new: &'a str,
    /// The session the change is made in: it stays signed in.
    pub sid: &'a str,
    pub ip: &'a str,
    pub now: i64,
}

/// The representative changes the enterprise password: the current one
/// must verify (a wrong guess keeps its slot in the credit code's sign-in
/// throttle: `enterprise_locked` once locked); the new one follows C1's
/// rule and differs. His other sessions for the enterprise end; their apps
/// are told; the representative's phone gets a notice.
pub async fn change_password<N: crate::ports::notify::Notices>(
    db: &Store,
    passwords: &PasswordService,
    notices: &N,
    throttle: &crate::config::ThrottleConfig,
    c: RepChange<'_>,
) -> Result<Result<(), Refusal>, EnterpriseError> {
    check_enterprise_password(c.new).map_err(EnterpriseError::Invalid)?;
    let Some(e) = crate::domain::delegation::enterprises::find(db, c.enterprise_id)
        .await?
        .filter(|e| e.representative_user_id.as_deref() == Some(c.user_id))
    else {
        return Ok(Err("agents_not_representative"));
    };
    let keys = ThrottleKeys { enterprise: format!("enterprise:{}", e.uscc), citizen: None };
    let Some(held) = reserve_attempt(db, throttle, &keys, c.ip, c.now).await? else {
        return Ok(Err("enterprise_locked"));
    };
    let hash = Some(e.password_hash.clone()).filter(|h| h != PASSWORD_UNSET);
    if !passwords.verify(c.current.to_string(), hash).await? {
        // A wrong guess keeps its throttle slot.
        return Ok(Err("enterprise_password_current_wrong"));
    }
    release_attempt(db, held).await?;
    if c.new == c.current {
        return Ok(Err("enterprise_password_same"));
    }
    let new_hash = passwords.hash(c.new.to_string()).await?;
    let subject = format!("enterprise:{}", e.id);
    let event = Event::new("enterprise_change_password", Actor::Enterprise(&e.id), &subject).ip(Some(c.ip));
    let Some(ended) = replace(db, &e.id, &e.password_hash, &new_hash, Some(c.sid), event, c.now).await? else {
        return Ok(Err("agents_changed_meanwhile"));
    };
    ended.tell(db, notices).await;
    notices.notify_phone(&e.representative_phone, "sms_enterprise_password_changed", c.now).await;
    Ok(Ok(()))
}

/// The SMS-code purpose of a representative's reset: bound to the
/// enterprise, so a code sent for one enterprise (or an agent's or a
/// citizen's reset) opens nothing else.
pub fn reset_purpose(uscc: &Uscc) -> String {
    format!("enterprise_reset:{}", uscc.as_str())
}

/// The enterprise a reset by (credit code, phone) is for: the phone must
/// be the representative's phone on record.
pub async fn reset_target(db: &Store, uscc: &Uscc, phone: &PhoneNumber) -> Result<Option<enterprise::Model>, DbErr> {
    Ok(find_by_uscc(db, uscc.as_str()).await?.filter(|e| e.representative_phone == phone.as_str()))
}

/// Sets a new password after the SMS code to the representative's phone
/// was consumed: every representative session of the enterprise ends.
/// `false` when the password changed meanwhile (another reset won).
pub async fn reset_password<N: crate::ports::notify::Notices>(
    db: &Store,
    passwords: &PasswordService,
    notices: &N,
    e: &enterprise::Model,
    new: &str,
    ip: Option<&str>,
    now: i64,
) -> Result<bool, EnterpriseError> {
    check_enterprise_password(new).map_err(EnterpriseError::Invalid)?;
    let hash = passwords.hash(new.to_string()).await?;
    let subject = format!("enterprise:{}", e.id);
    let event = Event::new("enterprise_reset_password", Actor::Enterprise(&e.id), &subject).ip(ip);
    let Some(ended) = replace(db, &e.id, &e.password_hash, &hash, None, event, now).await? else {
        return Ok(false);
    };
    ended.tell(db, notices).await;
    notices.notify_phone(&e.representative_phone, "sms_enterprise_password_changed", now).await;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_rules() {
        let ok = RegistrationForm {
            uscc: "91440300708461136T",
            name: "示例科技有限公司",
            region: "拉萨市城关区",
            rep_name: "周游",
            rep_doc_type: "passport",
            rep_number: "ea1234567",
            rep_phone: "13900000001",
        };
        let reg = parse(&ok).map_err(|k| k.to_string());
        assert_eq!(reg.map(|r| r.rep_number.as_str().to_string()), Ok("EA1234567".to_string()));
        assert_eq!(parse(&RegistrationForm { uscc: "91440300708461136A", ..ok.clone() }).err(), Some("uscc_check"));
        assert_eq!(parse(&RegistrationForm { name: "", ..ok.clone() }).err(), Some("enterprise_register_name_rule"));
        assert_eq!(
            parse(&RegistrationForm { rep_doc_type: "resident_id", ..ok.clone() }).err(),
            Some("identity_err_number_format")
        );
        assert!(!crate::crypto::password::verify_blocking("", PASSWORD_UNSET));
    }
}
