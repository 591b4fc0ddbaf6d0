//! The plugins' key-value store: rows in `plugin_kv`, namespaced by plugin,
//! so every node and both database backends see the same data.
use crate::store::Store;
use crate::store::entities::plugin_kv;
use sea_orm::sea_query::{ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

pub const MAX_KEY: usize = 512;
pub const MAX_VALUE: usize = 1024 * 1024;
const MAX_LIST: u64 = 10_000;

pub async fn get(db: &Store, plugin: &str, key: &str, now: i64) -> Result<Option<String>, DbErr> {
    Ok(plugin_kv::Entity::find_by_id((plugin.to_owned(), key.to_owned()))
        .one(db)
        .await?
        .filter(|r| r.expires_at.is_none_or(|e| e > now))
        .map(|r| r.value))
}

pub async fn put(
    db: &Store,
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

pub async fn delete(db: &Store, plugin: &str, key: &str) -> Result<bool, DbErr> {
    let r = plugin_kv::Entity::delete_by_id((plugin.to_owned(), key.to_owned())).exec(db).await?;
    Ok(r.rows_affected > 0)
}

pub async fn list(db: &Store, plugin: &str, prefix: &str, now: i64) -> Result<Vec<(String, String)>, DbErr> {
    let rows = under(plugin, prefix, now).order_by_asc(plugin_kv::Column::Key).limit(MAX_LIST).all(db).await?;
    Ok(rows.into_iter().map(|r| (r.key, r.value)).collect())
}

/// The live rows of `plugin` whose key starts with `prefix`, as a key
/// range (`prefix <= key < successor`) rather than `LIKE`, so both backends
/// walk the primary-key index (SQLite's `LIKE` is case-insensitive and
/// skips it) and `%`/`_` in a prefix are plain characters.
fn under(plugin: &str, prefix: &str, now: i64) -> sea_orm::Select<plugin_kv::Entity> {
    let mut q = plugin_kv::Entity::find()
        .filter(plugin_kv::Column::Plugin.eq(plugin))
        .filter(plugin_kv::Column::Key.gte(prefix))
        .filter(plugin_kv::Column::ExpiresAt.is_null().or(plugin_kv::Column::ExpiresAt.gt(now)));
    if let Some(end) = successor(prefix) {
        q = q.filter(plugin_kv::Column::Key.lt(end));
    }
    q
}

/// The least string greater than every string starting with `prefix`
/// (keys compare by code point — bytes of UTF-8 — on both backends, see
/// migration 000014): the prefix with its last character stepped up,
/// dropping characters that cannot be; None when nothing bounds it.
fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{d7ff}' => Some('\u{e000}'),
            c => char::from_u32(c as u32 + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Largest page a plugin may ask for; a page is one indexed range read.
pub const MAX_PAGE: u64 = 500;

/// One page of `list`: at most `limit` live rows under `prefix` in key
/// order (descending with `desc`), strictly after the `cursor` key in that
/// order, and the cursor of the next page (the last key returned) when
/// more rows follow. One range scan with `LIMIT limit + 1` — the extra
/// row only tells whether there is a next page.
pub async fn page(
    db: &Store,
    plugin: &str,
    prefix: &str,
    cursor: Option<&str>,
    desc: bool,
    limit: u64,
    now: i64,
) -> Result<KvPage, DbErr> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut q = under(plugin, prefix, now);
    q = match (cursor, desc) {
        (Some(c), false) => q.filter(plugin_kv::Column::Key.gt(c)),
        (Some(c), true) => q.filter(plugin_kv::Column::Key.lt(c)),
        (None, _) => q,
    };
    q = if desc { q.order_by_desc(plugin_kv::Column::Key) } else { q.order_by_asc(plugin_kv::Column::Key) };
    let mut rows: Vec<(String, String)> =
        q.limit(limit + 1).all(db).await?.into_iter().map(|r| (r.key, r.value)).collect();
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next = if more { rows.last().map(|(k, _)| k.clone()) } else { None };
    Ok(KvPage { rows, next })
}

#[derive(Debug, serde::Serialize)]
pub struct KvPage {
    pub rows: Vec<(String, String)>,
    pub next: Option<String>,
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
    db: &Store,
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
    db: &Store,
    plugin: &str,
    key: &str,
    by: i64,
    expires_at: Option<i64>,
    now: i64,
) -> Result<i64, DbErr> {
    use sea_orm::sea_query::Expr;
    let txn = crate::store::begin_write(db).await?;
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

#[cfg(test)]
mod tests {
    use super::successor;

    #[test]
    fn successor_bounds_exactly_the_prefix() {
        assert_eq!(successor("log/").as_deref(), Some("log0"));
        assert_eq!(successor("状态/").as_deref(), Some("状态0"));
        assert_eq!(successor("a\u{d7ff}").as_deref(), Some("a\u{e000}"));
        assert_eq!(successor("a\u{10ffff}").as_deref(), Some("b"));
        assert_eq!(successor(""), None);
        for key in ["log/", "log/0001", "log/\u{10ffff}"] {
            assert!(key >= "log/" && key < successor("log/").unwrap().as_str());
        }
        assert!("log0" >= successor("log/").unwrap().as_str());
    }
}
