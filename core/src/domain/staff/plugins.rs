//! Plugins in the console (platform admins): enable / disable a loaded
//! plugin on every node, and the record of a staff member opening a
//! plugin's admin pages — both audited with the staff member as actor.
use super::{Permission, Staff, StaffError};
use crate::domain::audit::Event;
use crate::domain::plugins::plugin_access;
use crate::store::Store;

/// Enables or disables the plugin `name`; `loaded` says whether the host
/// has such a plugin (anything else is not found).
pub async fn set_enabled(
    db: &Store,
    staff: &Staff,
    name: &str,
    loaded: bool,
    enabled: bool,
    now: i64,
) -> Result<(), StaffError> {
    staff.require(Permission::ManagePlugins)?;
    if !loaded {
        return Err(StaffError::NotFound);
    }
    plugin_access::set_enabled_as(db, staff.actor(), name, enabled, now).await?;
    Ok(())
}

/// Records that a staff member called a plugin's admin route (the plugin
/// itself only sees the request); GETs too, since they show data.
pub async fn admin_call(
    db: &Store,
    staff: &Staff,
    name: &str,
    method: &str,
    path: &str,
    now: i64,
) -> Result<(), StaffError> {
    staff.require(Permission::ManagePlugins)?;
    let subject = format!("plugin:{name}");
    let detail = format!("method={method} path={}", path.chars().take(200).collect::<String>());
    crate::domain::audit::record(db, Event::new("plugin_admin_call", staff.actor(), &subject).detail(&detail), now)
        .await?;
    Ok(())
}
