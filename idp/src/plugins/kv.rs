//! The plugins' key-value store: rows in `plugin_kv`, namespaced by plugin,
//! so every node and both database backends see the same data.
use crate::store::entities::plugin_kv;
use sea_orm::sea_query::{ExprTrait, OnConflict};
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
    let row = new_row(plugin, key, value, expires_at, now);
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

/// A row that has expired counts as absent, for the conditional writes.
fn expired(now: i64) -> sea_orm::sea_query::Expr {
    use sea_orm::sea_query::Expr;
    Expr::col((plugin_kv::Entity, plugin_kv::Column::ExpiresAt))
        .is_not_null()
        .and(Expr::col((plugin_kv::Entity, plugin_kv::Column::ExpiresAt)).lte(now))
}

/// Compare-and-swap in one statement, so two requests or two nodes racing
/// on a key cannot both win: with `expected` None the value is written only
/// if the key is absent (or expired) — an insert whose conflict branch
/// updates only an expired row; otherwise only if the live value is exactly
/// `expected` — a conditional UPDATE. Returns whether this write won.
pub async fn put_if(
    db: &DatabaseConnection,
    plugin: &str,
    key: &str,
    expected: Option<&str>,
    value: &str,
    expires_at: Option<i64>,
    now: i64,
) -> Result<bool, DbErr> {
    use sea_orm::sea_query::Expr;
    let Some(expected) = expected else {
        let row = new_row(plugin, key, value, expires_at, now);
        let n = plugin_kv::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([plugin_kv::Column::Plugin, plugin_kv::Column::Key])
                    .update_columns([
                        plugin_kv::Column::Value,
                        plugin_kv::Column::ExpiresAt,
                        plugin_kv::Column::UpdatedAt,
                    ])
                    .action_and_where(expired(now))
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
        return Ok(n > 0);
    };
    let r = plugin_kv::Entity::update_many()
        .col_expr(plugin_kv::Column::Value, Expr::value(value))
        .col_expr(plugin_kv::Column::ExpiresAt, Expr::value(expires_at))
        .col_expr(plugin_kv::Column::UpdatedAt, Expr::value(now))
        .filter(plugin_kv::Column::Plugin.eq(plugin))
        .filter(plugin_kv::Column::Key.eq(key))
        .filter(plugin_kv::Column::Value.eq(expected))
        .filter(plugin_kv::Column::ExpiresAt.is_null().or(plugin_kv::Column::ExpiresAt.gt(now)))
        .exec(db)
        .await?;
    Ok(r.rows_affected > 0)
}

/// Adds `by` to the integer stored under `key` (absent or expired counts
/// as 0) and returns the new value: one upsert whose update
/// does the arithmetic in the database, then the read of the row this
/// transaction holds locked — so parallel increments on any node each get
/// a distinct value and none is lost. `expires_at` applies to a new row.
pub async fn incr(
    db: &DatabaseConnection,
    plugin: &str,
    key: &str,
    by: i64,
    expires_at: Option<i64>,
    now: i64,
) -> Result<i64, DbErr> {
    use sea_orm::TransactionTrait;
    use sea_orm::sea_query::Expr;
    let txn = db.begin().await?;
    let row = new_row(plugin, key, &by.to_string(), expires_at, now);
    // Integers only ever get here through this function, so the cast sees
    // digits (and a sign); an expired row starts over. Placeholders are the
    // backend's own (`?` or `$n`), in order of appearance.
    let pg = db.get_database_backend() == sea_orm::DbBackend::Postgres;
    let sql = |parts: &[&str]| -> String {
        let mut out = String::from(parts[0]);
        for (i, p) in parts[1..].iter().enumerate() {
            out.push_str(&if pg { format!("${}", i + 1) } else { "?".into() });
            out.push_str(p);
        }
        out
    };
    let is_expired = "CASE WHEN \"plugin_kv\".\"expires_at\" IS NOT NULL AND \"plugin_kv\".\"expires_at\" <= ";
    let sum = Expr::cust_with_values(
        sql(&[
            is_expired,
            " THEN CAST(",
            " AS TEXT) ELSE CAST(CAST(\"plugin_kv\".\"value\" AS BIGINT) + ",
            " AS TEXT) END",
        ]),
        [sea_orm::Value::from(now), sea_orm::Value::from(by), sea_orm::Value::from(by)],
    );
    let expiry = Expr::cust_with_values(
        sql(&[is_expired, " THEN ", " ELSE \"plugin_kv\".\"expires_at\" END"]),
        [sea_orm::Value::from(now), sea_orm::Value::from(expires_at)],
    );
    plugin_kv::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([plugin_kv::Column::Plugin, plugin_kv::Column::Key])
                .value(plugin_kv::Column::Value, sum)
                .value(plugin_kv::Column::ExpiresAt, expiry)
                .value(plugin_kv::Column::UpdatedAt, now)
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    let value = plugin_kv::Entity::find_by_id((plugin.to_owned(), key.to_owned()))
        .one(&txn)
        .await?
        .and_then(|r| r.value.parse::<i64>().ok())
        .ok_or_else(|| DbErr::Custom("counter is not a number".into()))?;
    txn.commit().await?;
    Ok(value)
}

/// A row of `plugin`'s namespace, as every write stores it.
fn new_row(plugin: &str, key: &str, value: &str, expires_at: Option<i64>, now: i64) -> plugin_kv::ActiveModel {
    plugin_kv::ActiveModel {
        plugin: Set(plugin.into()),
        key: Set(key.into()),
        value: Set(value.into()),
        expires_at: Set(expires_at),
        updated_at: Set(now),
    }
}
