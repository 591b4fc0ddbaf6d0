//! The plugins' key-value store: rows in `plugin_kv`, namespaced by plugin,
//! so every node and both database backends see the same data.
use crate::store::entities::plugin_kv;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

pub const MAX_KEY: usize = 512;
pub const MAX_VALUE: usize = 1024 * 1024;
const MAX_LIST: u64 = 10_000;

pub async fn get(db: &DatabaseConnection, plugin: &str, key: &str, now: i64) -> Result<Option<String>, DbErr> {
    Ok(plugin_kv::Entity::find_by_id((plugin.to_owned(), key.to_owned()))
        .one(db)
        .await?
        .filter(|r| r.expires_at.is_none_or(|e| e > now))
        .map(|r| r.value))
}

pub async fn put(
    db: &DatabaseConnection,
    plugin: &str,
    key: &str,
    value: &str,
    expires_at: Option<i64>,
    now: i64,
) -> Result<(), DbErr> {
    let row = plugin_kv::ActiveModel {
        plugin: Set(plugin.into()),
        key: Set(key.into()),
        value: Set(value.into()),
        expires_at: Set(expires_at),
        updated_at: Set(now),
    };
    plugin_kv::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([plugin_kv::Column::Plugin, plugin_kv::Column::Key])
                .update_columns([plugin_kv::Column::Value, plugin_kv::Column::ExpiresAt, plugin_kv::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn delete(db: &DatabaseConnection, plugin: &str, key: &str) -> Result<bool, DbErr> {
    let r = plugin_kv::Entity::delete_by_id((plugin.to_owned(), key.to_owned())).exec(db).await?;
    Ok(r.rows_affected > 0)
}

pub async fn list(
    db: &DatabaseConnection,
    plugin: &str,
    prefix: &str,
    now: i64,
) -> Result<Vec<(String, String)>, DbErr> {
    let rows = plugin_kv::Entity::find()
        .filter(plugin_kv::Column::Plugin.eq(plugin))
        .filter(plugin_kv::Column::Key.starts_with(prefix))
        .order_by_asc(plugin_kv::Column::Key)
        .limit(MAX_LIST)
        .all(db)
        .await?;
    // LIKE treats `%` and `_` as wildcards; the prefix test here is exact.
    Ok(rows
        .into_iter()
        .filter(|r| r.key.starts_with(prefix) && r.expires_at.is_none_or(|e| e > now))
        .map(|r| (r.key, r.value))
        .collect())
}
