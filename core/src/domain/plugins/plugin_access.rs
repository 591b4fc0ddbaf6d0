//! Who may use plugins, decided by the administrator and shared by every
//! node through the database: which client may request which plugin scope
//! (G1) and whether a plugin is enabled.
//! Read on every authorization, token, userinfo and plugin API request, so
//! a revoked permission or a disabled plugin takes effect at once.
use crate::domain::audit::{Actor, Event};
use crate::store::Store;
use crate::store::entities::{client_plugin_scope, plugin_state};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set};

/// Who changes plugin access: the administrator at the command line (the
/// only entry path; the plugin commands take no operator name).
const ADMIN: Actor<'static> = Actor::Operator("admin");

/// Audits a permission change on `client_id`, in the change's transaction.
async fn audit_scope<C: ConnectionTrait>(
    conn: &C,
    by: Actor<'_>,
    action: &str,
    client_id: &str,
    scope: &str,
    now: i64,
) -> Result<(), DbErr> {
    let subject = format!("client:{client_id}");
    let detail = format!("scope={scope}");
    crate::domain::audit::record(conn, Event::new(action, by, &subject).detail(&detail), now).await
}
use serde::Serialize;

/// Lets the client request the scope, as granted at `now`.
pub async fn allow(db: &Store, client_id: &str, scope: &str, now: i64) -> Result<(), DbErr> {
    allow_as(db, ADMIN, client_id, scope, now).await
}

/// [`allow`], audited with `by` as actor (a staff member in the console).
pub async fn allow_as(db: &Store, by: Actor<'_>, client_id: &str, scope: &str, now: i64) -> Result<(), DbErr> {
    let txn = crate::store::begin_write(db).await?;
    let row = client_plugin_scope::ActiveModel {
        client_id: Set(client_id.into()),
        scope: Set(scope.into()),
        granted_at: Set(now),
    };
    client_plugin_scope::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([client_plugin_scope::Column::ClientId, client_plugin_scope::Column::Scope])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    audit_scope(&txn, by, "client_scope_allowed", client_id, scope, now).await?;
    txn.commit().await
}

/// Returns whether a permission was removed (audited when one was).
pub async fn deny(db: &Store, client_id: &str, scope: &str, now: i64) -> Result<bool, DbErr> {
    deny_as(db, ADMIN, client_id, scope, now).await
}

/// [`deny`], audited with `by` as actor.
pub async fn deny_as(db: &Store, by: Actor<'_>, client_id: &str, scope: &str, now: i64) -> Result<bool, DbErr> {
    let txn = crate::store::begin_write(db).await?;
    let r = client_plugin_scope::Entity::delete_many()
        .filter(client_plugin_scope::Column::ClientId.eq(client_id))
        .filter(client_plugin_scope::Column::Scope.eq(scope))
        .exec(&txn)
        .await?;
    if r.rows_affected > 0 {
        audit_scope(&txn, by, "client_scope_denied", client_id, scope, now).await?;
    }
    txn.commit().await?;
    Ok(r.rows_affected > 0)
}

/// Forgets every permission of a deleted client, so a client registered
/// later under the same id does not inherit them.
pub async fn forget_client<C: ConnectionTrait>(db: &C, client_id: &str) -> Result<(), DbErr> {
    client_plugin_scope::Entity::delete_many()
        .filter(client_plugin_scope::Column::ClientId.eq(client_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Plugin scopes the client may request.
pub async fn permitted(db: &Store, client_id: &str) -> Result<Vec<String>, DbErr> {
    Ok(client_plugin_scope::Entity::find()
        .filter(client_plugin_scope::Column::ClientId.eq(client_id))
        .order_by_asc(client_plugin_scope::Column::Scope)
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.scope)
        .collect())
}

#[derive(Debug, Clone, Serialize)]
pub struct PluginState {
    pub enabled: bool,
    pub healthy: bool,
    pub last_error: Option<String>,
    pub updated_at: i64,
}

impl Default for PluginState {
    fn default() -> Self {
        Self { enabled: true, healthy: true, last_error: None, updated_at: 0 }
    }
}

/// A plugin's shared state; plugins never touched are enabled and healthy.
pub async fn state(db: &Store, name: &str) -> Result<PluginState, DbErr> {
    Ok(plugin_state::Entity::find_by_id(name.to_owned())
        .one(db)
        .await?
        .map(|r| PluginState {
            enabled: r.enabled,
            healthy: r.healthy,
            last_error: r.last_error,
            updated_at: r.updated_at,
        })
        .unwrap_or_default())
}

async fn upsert<C: ConnectionTrait>(
    db: &C,
    name: &str,
    row: PluginState,
    columns: &[plugin_state::Column],
    now: i64,
) -> Result<(), DbErr> {
    let model = plugin_state::ActiveModel {
        name: Set(name.into()),
        enabled: Set(row.enabled),
        healthy: Set(row.healthy),
        last_error: Set(row.last_error),
        updated_at: Set(now),
    };
    let mut update: Vec<plugin_state::Column> = columns.to_vec();
    update.push(plugin_state::Column::UpdatedAt);
    plugin_state::Entity::insert(model)
        .on_conflict(OnConflict::column(plugin_state::Column::Name).update_columns(update).to_owned())
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Enables or disables a plugin on every node, audited as
/// `plugin_enabled` / `plugin_disabled`.
pub async fn set_enabled(db: &Store, name: &str, enabled: bool, now: i64) -> Result<(), DbErr> {
    set_enabled_as(db, ADMIN, name, enabled, now).await
}

/// [`set_enabled`], audited with `by` as actor (a staff member in the console).
pub async fn set_enabled_as(db: &Store, by: Actor<'_>, name: &str, enabled: bool, now: i64) -> Result<(), DbErr> {
    let txn = crate::store::begin_write(db).await?;
    upsert(&txn, name, PluginState { enabled, ..Default::default() }, &[plugin_state::Column::Enabled], now).await?;
    let action = if enabled { "plugin_enabled" } else { "plugin_disabled" };
    let subject = format!("plugin:{name}");
    crate::domain::audit::record(&txn, Event::new(action, by, &subject), now).await?;
    txn.commit().await
}

/// Records a health change so `idp plugin list` and other nodes see it.
pub async fn record_health(
    db: &Store,
    name: &str,
    healthy: bool,
    last_error: Option<String>,
    now: i64,
) -> Result<(), DbErr> {
    let row = PluginState { healthy, last_error, ..Default::default() };
    upsert(db, name, row, &[plugin_state::Column::Healthy, plugin_state::Column::LastError], now).await
}
