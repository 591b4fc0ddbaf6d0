//! Multi-step self-service flows (password reset, later phone change and
//! deletion). A flow belongs to one browser, lives 15 minutes, and moves
//! forward one step at a time through a conditional UPDATE — a later step
//! cannot be entered early, and a finished step cannot be replayed.
use crate::crypto::random_token;
use crate::store::Store;
use crate::store::entities::account_flow;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, QueryFilter, Set};

const LIFETIME: i64 = 15 * 60;

pub async fn start(
    db: &Store,
    kind: &str,
    user_id: &str,
    browser_hash: &str,
    req: Option<&str>,
    now: i64,
) -> Result<String, DbErr> {
    let id = random_token(18);
    account_flow::ActiveModel {
        id: Set(id.clone()),
        kind: Set(kind.into()),
        user_id: Set(user_id.into()),
        browser: Set(browser_hash.into()),
        step: Set(1),
        req: Set(req.filter(|r| !r.is_empty()).map(String::from)),
        expires_at: Set(now + LIFETIME),
    }
    .insert(db)
    .await?;
    Ok(id)
}

/// The flow if it is live, of this kind, in this browser and at `step`.
pub async fn at_step(
    db: &Store,
    id: &str,
    kind: &str,
    browser_hash: &str,
    step: i64,
    now: i64,
) -> Result<Option<account_flow::Model>, DbErr> {
    if id.is_empty() || id.len() > 64 {
        return Ok(None);
    }
    Ok(account_flow::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .filter(|f| f.kind == kind && f.browser == browser_hash && f.step == step && f.expires_at > now))
}

/// Moves from `from` to `from + 1`; false if another request already did.
pub async fn advance<C: sea_orm::ConnectionTrait>(db: &C, id: &str, from: i64, now: i64) -> Result<bool, DbErr> {
    let r = account_flow::Entity::update_many()
        .col_expr(account_flow::Column::Step, Expr::value(from + 1))
        .filter(account_flow::Column::Id.eq(id))
        .filter(account_flow::Column::Step.eq(from))
        .filter(account_flow::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(r.rows_affected == 1)
}

/// `150****7931` (002 §1.2.5).
pub fn mask_phone(phone: &str) -> String {
    if phone.len() == 11 && phone.is_ascii() { format!("{}****{}", &phone[..3], &phone[7..]) } else { "****".into() }
}

/// Everything but the last character hidden, as the manual shows accounts.
pub fn mask_account(account: &str) -> String {
    let chars: Vec<char> = account.chars().collect();
    match chars.split_last() {
        Some((last, rest)) => format!("{}{}", "*".repeat(rest.len()), last),
        None => String::new(),
    }
}

/// `*****0013`: the last four of an ID number.
pub fn mask_id_number(id: &str) -> String {
    let n = id.chars().count();
    let tail: String = id.chars().skip(n.saturating_sub(4)).collect();
    format!("{}{}", "*".repeat(n.saturating_sub(4)), tail)
}

/// An ID number on a page before its owner is proven: every character
/// hidden, so the page tells nothing that could be checked elsewhere (A4).
pub fn mask_fully(id: &str) -> String {
    "*".repeat(id.chars().count())
}

/// Forgot password, step 2 (A4, 002 §1.2.5): a real-name account proves
/// its ID number *and* the SMS code sent to its phone, checked together with
/// one answer for any mismatch (docs/security.md: one answer for every failure).
/// A wrong ID number spends a try of the code like a wrong code does, so
/// the ID number cannot be guessed past the code's limit, and nothing can be
/// learnt before a code was sent to the owner's phone. Accounts without a
/// real-name identity prove the SMS code only.
pub async fn prove_reset(
    codes: &crate::domain::authn::sms_codes::SmsCodes,
    u: &crate::store::entities::user::Model,
    id_number: &str,
    sms_code: &str,
) -> Result<bool, DbErr> {
    let purpose = crate::ports::sms::SmsPurpose::ResetPassword;
    let Some(phone) = u.phone.as_deref() else { return Ok(false) };
    let id_ok = match &u.id_number {
        Some(on_record) => crate::domain::identity::documents::DocumentNumber::parse_any(None, id_number)
            .map(|i| i.as_str() == on_record.as_str())
            .unwrap_or(false),
        None => true,
    };
    if !id_ok {
        codes.spend_attempt(phone, purpose.as_str()).await?;
        return Ok(false);
    }
    codes.verify(phone, purpose, sms_code).await
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn masks_match_the_manual() {
        assert_eq!(mask_phone("15012347931"), "150****7931");
        assert_eq!(mask_account("zhangsan1"), "********1");
        assert_eq!(mask_id_number("110105194912310013"), "**************0013");
    }
}
