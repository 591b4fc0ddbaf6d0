//! Person-to-person authorisation (授权办事, C6): a person
//! grants another the right to handle affairs for a date range and scopes;
//! the grantee confirms (待确认 → active); either list shows the state,
//! `expired` once the end date has passed.
use crate::domain::audit::{Actor, Event};
use crate::domain::delegation::{self, DelegationState, Kind, NewDelegation};
use crate::store::Store;
use crate::store::entities::{delegation as delegation_e, user};
use sea_orm::sea_query::ExprTrait;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter};

/// What a person may let another see and use when acting for them, in the
/// order the page lists them (each named by its `scope_<name>` locale key).
/// `openid` is always included: the grantee acts as the principal.
pub const GRANTABLE: &[&str] = &["profile", "phone", "email", "address"];

/// The scopes of a new authorisation: `openid` plus the chosen grantable
/// ones; `None` when nothing grantable was chosen (an unknown scope is
/// never stored: it could widen a later token exchange).
pub fn chosen_scopes(raw: &str) -> Option<String> {
    let asked = crate::domain::clients::scopes::ScopeSet::parse(raw);
    let kept: Vec<&str> = GRANTABLE.iter().copied().filter(|s| asked.contains(s)).collect();
    if kept.is_empty() || asked.iter().any(|s| s != "openid" && !GRANTABLE.contains(&s)) {
        return None;
    }
    Some(std::iter::once("openid").chain(kept).collect::<Vec<_>>().join(" "))
}

pub struct NewAuthorisation<'a> {
    pub principal: &'a user::Model,
    /// The grantee's phone number or ID number.
    pub grantee: &'a str,
    /// Space-separated; only [`GRANTABLE`] ones (and `openid`) are accepted.
    pub scopes: &'a str,
    pub valid_from: &'a str,
    pub valid_to: &'a str,
    /// The principal's browser (its hash): he must have re-verified there.
    pub browser: &'a str,
    /// The client IP, for the audit trail.
    pub ip: Option<&'a str>,
}

/// Refusals as locale keys. Granting lets someone else act as the
/// principal, so like a factor change (A5) it needs a fresh
/// re-verification of the principal in this browser (SMS code, or the
/// no-phone ways) — a stolen or borrowed session alone cannot grant.
pub async fn create(
    db: &Store,
    new: NewAuthorisation<'_>,
    now: i64,
) -> Result<Result<delegation_e::Model, &'static str>, DbErr> {
    if !crate::domain::authn::reverify::recently(db, &new.principal.id, new.browser, now).await? {
        return Ok(Err("authorise_reverify"));
    }
    let (Some(from), Some(to)) = (delegation::parse_date(new.valid_from), delegation::parse_date(new.valid_to)) else {
        return Ok(Err("authorise_bad_dates"));
    };
    if to < from || to < delegation::today(now) {
        return Ok(Err("authorise_bad_dates"));
    }
    let key = new.grantee.trim();
    if key.is_empty() {
        return Ok(Err("authorise_no_grantee"));
    }
    let grantee = user::Entity::find()
        .filter(user::Column::Phone.eq(key).or(user::Column::IdNumber.eq(key.to_ascii_uppercase())))
        .one(db)
        .await?
        .filter(|u| !u.disabled);
    let Some(grantee) = grantee else {
        return Ok(Err("authorise_no_grantee"));
    };
    if grantee.id == new.principal.id {
        return Ok(Err("authorise_self"));
    }
    let Some(scopes) = chosen_scopes(new.scopes) else {
        return Ok(Err("authorise_no_scopes"));
    };
    let txn = crate::store::begin_write(db).await?;
    let d = delegation::insert(
        &txn,
        NewDelegation {
            kind: Kind::Person,
            enterprise_id: None,
            principal_user_id: Some(new.principal.id.clone()),
            relative_name: None,
            relative_id_number: None,
            relation: None,
            grantee_user_id: grantee.id,
            scopes,
            valid_from: Some(from.to_string()),
            valid_to: Some(to.to_string()),
            state: DelegationState::Pending,
            agent_password_hash: None,
        },
        now,
    )
    .await?;
    let subject = format!("delegation:{}", d.id);
    let detail = format!("grantee={} scopes={} from={} to={}", d.grantee_user_id, d.scopes, from, to);
    let event = Event::new("authorisation_created", Actor::User(&new.principal.id), &subject).detail(&detail);
    crate::domain::audit::record(&txn, event.ip(new.ip), now).await?;
    txn.commit().await?;
    Ok(Ok(d))
}

#[cfg(test)]
mod tests {
    use super::chosen_scopes;

    #[test]
    fn only_listed_items_are_granted() {
        assert_eq!(chosen_scopes("profile phone").as_deref(), Some("openid profile phone"));
        assert_eq!(chosen_scopes("openid profile").as_deref(), Some("openid profile"));
        assert_eq!(chosen_scopes("openid"), None);
        assert_eq!(chosen_scopes(""), None);
        assert_eq!(chosen_scopes("profile admin"), None);
    }
}
