//! Remembered consent: which scopes a user granted a client.
use super::scopes::ScopeSet;
use crate::crypto::sha256_b64;
use crate::store::entities::consent;
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, Set};

fn id(user_id: &str, client_id: &str) -> String {
    sha256_b64(format!("{user_id}\0{client_id}").as_bytes())
}

pub async fn covers(db: &DatabaseConnection, user_id: &str, client_id: &str, scope: &str) -> Result<bool, DbErr> {
    let Some(row) = consent::Entity::find_by_id(id(user_id, client_id)).one(db).await? else {
        return Ok(false);
    };
    Ok(ScopeSet::parse(scope).is_subset_of(&ScopeSet::parse(&row.scope)))
}

/// Records consent to `scope`, adding to what was granted before.
pub async fn grant(db: &DatabaseConnection, user_id: &str, client_id: &str, scope: &str) -> Result<(), DbErr> {
    let key = id(user_id, client_id);
    let mut merged = match consent::Entity::find_by_id(key.clone()).one(db).await? {
        Some(row) => ScopeSet::parse(&row.scope).to_string_joined(),
        None => String::new(),
    };
    merged.push(' ');
    merged.push_str(scope);
    let merged = ScopeSet::parse(&merged).to_string_joined();
    let model = consent::ActiveModel {
        id: Set(key),
        user_id: Set(user_id.into()),
        client_id: Set(client_id.into()),
        scope: Set(merged),
        granted_at: Set(crate::now()),
    };
    consent::Entity::insert(model)
        .on_conflict(
            OnConflict::column(consent::Column::Id)
                .update_columns([consent::Column::Scope, consent::Column::GrantedAt])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}
