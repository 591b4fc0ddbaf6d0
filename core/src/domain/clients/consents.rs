//! Remembered consent: which scopes a user granted a client.
use crate::crypto::sha256_b64;
use crate::domain::audit::{Actor, Event};
use crate::domain::clients::scopes::ScopeSet;
use crate::store::Store;
use crate::store::entities::consent;
use sea_orm::sea_query::OnConflict;
use sea_orm::{DbErr, EntityTrait, Set};

fn id(user_id: &str, client_id: &str) -> String {
    sha256_b64(format!("{user_id}\0{client_id}").as_bytes())
}

/// Whether the user already consented to `scope` and to each claim asked
/// for individually (OIDC Core §5.5): a claim is covered when it was
/// consented by name or a consented scope releases it.
pub async fn covers(db: &Store, user_id: &str, client_id: &str, scope: &str, claims: &[String]) -> Result<bool, DbErr> {
    let Some(row) = consent::Entity::find_by_id(id(user_id, client_id)).one(db).await? else {
        return Ok(false);
    };
    let scopes = ScopeSet::parse(&row.scope);
    let named = ScopeSet::parse(&row.claims);
    Ok(ScopeSet::parse(scope).is_subset_of(&scopes)
        && claims.iter().all(|c| named.contains(c) || crate::domain::clients::scopes::releasable(c, &scopes)))
}

/// Records consent to `scope` and to the claims asked for individually,
/// adding to what was granted before, as granted at `now`, and audits it
/// (`consent_granted`) in the same transaction.
pub async fn grant(
    db: &Store,
    user_id: &str,
    client_id: &str,
    scope: &str,
    claims: &[String],
    ip: Option<&str>,
    now: i64,
) -> Result<(), DbErr> {
    let key = id(user_id, client_id);
    let txn = crate::store::begin_write(db).await?;
    let before = consent::Entity::find_by_id(key.clone()).one(&txn).await?;
    let merge =
        |old: Option<&str>, new: &str| ScopeSet::parse(&format!("{} {new}", old.unwrap_or(""))).to_string_joined();
    let merged = merge(before.as_ref().map(|r| r.scope.as_str()), scope);
    let merged_claims = merge(before.as_ref().map(|r| r.claims.as_str()), &claims.join(" "));
    let model = consent::ActiveModel {
        id: Set(key),
        user_id: Set(user_id.into()),
        client_id: Set(client_id.into()),
        scope: Set(merged),
        granted_at: Set(now),
        claims: Set(merged_claims),
    };
    consent::Entity::insert(model)
        .on_conflict(
            OnConflict::column(consent::Column::Id)
                .update_columns([consent::Column::Scope, consent::Column::Claims, consent::Column::GrantedAt])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    let subject = format!("client:{client_id}");
    let mut detail = format!("scope={}", ScopeSet::parse(scope).to_string_joined());
    if !claims.is_empty() {
        detail.push_str(&format!(" claims={}", claims.join(",")));
    }
    let event = Event::new("consent_granted", Actor::User(user_id), &subject).detail(&detail).ip(ip);
    crate::domain::audit::record(&txn, event, now).await?;
    txn.commit().await
}
