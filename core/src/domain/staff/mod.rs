//! The operator console's use cases (issue 15): staff roles, the console
//! gate, and what each role may do. Every console action is one function
//! here (or in the submodules) that checks the role itself, runs in its own
//! transaction where it reads then writes, and audits with the staff
//! account as actor. The `idp staff` CLI grants the first role.
//!
//! Roles: `platform_admin` (everything), `app_admin` (only the apps
//! assigned), `reviewer` (appeals and other queues), `auditor` (read only:
//! people, apps, audit, statistics), `counter_operator` (in-person L4, B4;
//! granting it also admits the account to the counter page).
pub mod apps;
pub mod audit_view;
pub mod console_sign_in;
pub mod content;
pub mod people;
pub mod plugins;
pub mod reviews;
pub mod stats;

use crate::domain::assurance::{self, AssuranceConfig, Factor};
use crate::domain::audit::{Actor, Event};
use crate::domain::authn::sessions::SessionInfo;
use crate::store::Store;
use crate::store::entities::{operator, staff_role, user};
use sea_orm::{ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    PlatformAdmin,
    AppAdmin,
    Reviewer,
    Auditor,
    CounterOperator,
}

impl Role {
    pub const ALL: [Role; 5] =
        [Role::PlatformAdmin, Role::AppAdmin, Role::Reviewer, Role::Auditor, Role::CounterOperator];

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "platform_admin",
            Role::AppAdmin => "app_admin",
            Role::Reviewer => "reviewer",
            Role::Auditor => "auditor",
            Role::CounterOperator => "counter_operator",
        }
    }
}

/// What a console action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission<'a> {
    /// Search people and read an account (masked).
    ViewPeople,
    /// Suspend, restore, sign out, see unmasked data.
    ManagePeople,
    /// List apps (an app admin sees only theirs).
    ViewApps,
    /// Register a new app.
    CreateApps,
    /// Change one app.
    ManageApp(&'a str),
    /// Read the audit trail and statistics.
    ViewAudit,
    /// Decide appeals and other queues.
    Review,
    /// Grant and revoke staff roles.
    GrantRoles,
    /// Enable / disable plugins and open their admin pages.
    ManagePlugins,
    /// Maintain the FAQ and answer citizens' feedback (G3).
    ManageContent,
}

/// A signed-in staff member and their roles.
#[derive(Debug, Clone, Serialize)]
pub struct Staff {
    pub user_id: String,
    pub username: String,
    pub roles: Vec<Role>,
    /// The apps of an app admin.
    pub apps: Vec<String>,
}

impl Staff {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn can(&self, p: Permission<'_>) -> bool {
        // The console's own client is kept by the provider: nobody edits
        // or disables it from the console (that would lock staff out).
        if p == Permission::ManageApp(console_sign_in::CLIENT_ID) {
            return false;
        }
        if self.has(Role::PlatformAdmin) {
            return true;
        }
        match p {
            Permission::ViewPeople => self.has(Role::Auditor) || self.has(Role::Reviewer),
            Permission::ManagePeople | Permission::CreateApps | Permission::GrantRoles | Permission::ManagePlugins => {
                false
            }
            Permission::ViewApps => self.has(Role::Auditor) || self.has(Role::AppAdmin),
            Permission::ManageApp(id) => self.has(Role::AppAdmin) && self.apps.iter().any(|a| a == id),
            Permission::ViewAudit => self.has(Role::Auditor),
            Permission::Review | Permission::ManageContent => self.has(Role::Reviewer),
        }
    }

    /// The audit actor of this staff member.
    pub fn actor(&self) -> Actor<'_> {
        Actor::Staff(&self.user_id)
    }

    /// Refuses unless the role allows `p`.
    pub fn require(&self, p: Permission<'_>) -> Result<(), StaffError> {
        if self.can(p) { Ok(()) } else { Err(StaffError::Forbidden) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    #[error("not allowed for this role")]
    Forbidden,
    #[error("not found")]
    NotFound,
    /// A refused input, named by the locale key of its message.
    #[error("invalid: {0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Domain(#[from] crate::domain::DomainError),
}

/// The staff member behind an account, or `None` when it holds no role or
/// is suspended.
pub async fn load(db: &Store, user_id: &str) -> Result<Option<Staff>, DbErr> {
    let Some(u) = user::Entity::find_by_id(user_id.to_string()).one(db).await? else {
        return Ok(None);
    };
    if u.disabled {
        return Ok(None);
    }
    let rows = staff_role::Entity::find().filter(staff_role::Column::UserId.eq(user_id)).all(db).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut roles = Vec::new();
    let mut apps = Vec::new();
    for r in rows {
        if let Some(role) = Role::parse(&r.role) {
            if !roles.contains(&role) {
                roles.push(role);
            }
            if role == Role::AppAdmin && !r.app_id.is_empty() {
                apps.push(r.app_id);
            }
        }
    }
    Ok(Some(Staff { user_id: u.id, username: u.username, roles, apps }))
}

/// How long a strong factor counts for a sensitive console action
/// (suspend, grant, rotate a secret, unmask): it must be this fresh.
pub const SENSITIVE_MAX_AGE: i64 = 5 * 60;

/// Why the console turns a staff session away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Allowed.
    Open,
    /// The account's proofing is below L3: nothing in the browser helps.
    Proofing,
    /// A fresh passkey or authenticator-app code is needed (step-up).
    StrongFactor,
}

/// The console's entry rule: the session reaches L3 and used a strong
/// factor (passkey or TOTP) within `max_age` — the L3 max age to enter,
/// [`SENSITIVE_MAX_AGE`] for sensitive actions.
pub fn gate(proofing: u8, session: &SessionInfo, now: i64, cfg: &AssuranceConfig, max_age: i64) -> Gate {
    if proofing < 3 {
        return Gate::Proofing;
    }
    let strong =
        session.factors.iter().any(|e| matches!(e.factor, Factor::Passkey | Factor::Totp) && now - e.at <= max_age);
    if strong && assurance::level(proofing, &session.factors, now, cfg) >= 3 { Gate::Open } else { Gate::StrongFactor }
}

/// One role row for lists.
#[derive(Debug, Clone, Serialize)]
pub struct Grant {
    pub user_id: String,
    pub username: String,
    pub role: String,
    pub app_id: String,
    pub granted_by: String,
    pub granted_at: i64,
}

/// Every role held, by account.
pub async fn list(db: &Store) -> Result<Vec<Grant>, DbErr> {
    let rows = staff_role::Entity::find().order_by_asc(staff_role::Column::GrantedAt).all(db).await?;
    let mut out = Vec::new();
    for r in rows {
        let username =
            user::Entity::find_by_id(r.user_id.clone()).one(db).await?.map(|u| u.username).unwrap_or_default();
        out.push(Grant {
            user_id: r.user_id,
            username,
            role: r.role,
            app_id: r.app_id,
            granted_by: r.granted_by,
            granted_at: r.granted_at,
        });
    }
    Ok(out)
}

/// Who grants: a staff member in the console (a platform admin), or the
/// operator at the command line.
pub enum Granter<'a> {
    Staff(&'a Staff),
    Cli(&'a str),
}

impl Granter<'_> {
    fn actor(&self) -> Actor<'_> {
        match self {
            Granter::Staff(s) => s.actor(),
            Granter::Cli(name) => Actor::Operator(name),
        }
    }
    fn label(&self) -> String {
        self.actor().label()
    }
}

/// Grants `role` (for `app` when it is `app_admin`) to the account `login`.
/// Granting a role held already changes nothing. Returns the account id.
pub async fn grant(
    db: &Store,
    users: &crate::domain::identity::users::UserService,
    by: Granter<'_>,
    login: &str,
    role: Role,
    app: Option<&str>,
    now: i64,
) -> Result<String, StaffError> {
    if let Granter::Staff(s) = &by {
        s.require(Permission::GrantRoles)?;
    }
    let app_id = match (role, app.map(str::trim).filter(|a| !a.is_empty())) {
        (Role::AppAdmin, Some(a)) => a.to_string(),
        (Role::AppAdmin, None) => return Err(StaffError::Invalid("admin_staff_app_required")),
        (_, _) => String::new(),
    };
    let u = users.find_by_login(login).await?.ok_or(StaffError::NotFound)?;
    let txn = crate::store::begin_write(db).await?;
    crate::store::lock(&txn, &format!("staff:{}", u.id)).await?;
    let held = staff_role::Entity::find()
        .filter(staff_role::Column::UserId.eq(u.id.as_str()))
        .filter(staff_role::Column::Role.eq(role.as_str()))
        .filter(staff_role::Column::AppId.eq(app_id.as_str()))
        .one(&txn)
        .await?;
    if held.is_none() {
        staff_role::ActiveModel {
            id: Set(crate::crypto::random_token(12)),
            user_id: Set(u.id.clone()),
            role: Set(role.as_str().into()),
            app_id: Set(app_id.clone()),
            granted_by: Set(by.label()),
            granted_at: Set(now),
        }
        .insert(&txn)
        .await?;
        if role == Role::CounterOperator && operator::Entity::find_by_id(u.id.clone()).one(&txn).await?.is_none() {
            operator::ActiveModel { user_id: Set(u.id.clone()), granted_by: Set(by.label()), granted_at: Set(now) }
                .insert(&txn)
                .await?;
        }
        let subject = format!("user:{}", u.id);
        let detail = format!("role={} app={app_id}", role.as_str());
        crate::domain::audit::record(&txn, Event::new("staff_granted", by.actor(), &subject).detail(&detail), now)
            .await?;
    }
    txn.commit().await?;
    Ok(u.id)
}

/// Revokes `role` (all apps of `app_admin` unless `app` names one).
/// Returns whether anything was held.
pub async fn revoke(
    db: &Store,
    users: &crate::domain::identity::users::UserService,
    by: Granter<'_>,
    login: &str,
    role: Role,
    app: Option<&str>,
    now: i64,
) -> Result<bool, StaffError> {
    if let Granter::Staff(s) = &by {
        s.require(Permission::GrantRoles)?;
    }
    let u = users.find_by_login(login).await?.ok_or(StaffError::NotFound)?;
    let txn = crate::store::begin_write(db).await?;
    let mut q = staff_role::Entity::delete_many()
        .filter(staff_role::Column::UserId.eq(u.id.as_str()))
        .filter(staff_role::Column::Role.eq(role.as_str()));
    if let Some(a) = app.map(str::trim).filter(|a| !a.is_empty()) {
        q = q.filter(staff_role::Column::AppId.eq(a));
    }
    let removed = q.exec(&txn).await?.rows_affected > 0;
    if removed {
        if role == Role::CounterOperator {
            operator::Entity::delete_by_id(u.id.clone()).exec(&txn).await?;
        }
        let subject = format!("user:{}", u.id);
        let detail = format!("role={} app={}", role.as_str(), app.unwrap_or(""));
        crate::domain::audit::record(&txn, Event::new("staff_revoked", by.actor(), &subject).detail(&detail), now)
            .await?;
    }
    txn.commit().await?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff(roles: &[Role], apps: &[&str]) -> Staff {
        Staff {
            user_id: "u".into(),
            username: "u".into(),
            roles: roles.to_vec(),
            apps: apps.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn roles_allow_only_their_part() {
        let app_admin = staff(&[Role::AppAdmin], &["a1"]);
        assert!(app_admin.can(Permission::ManageApp("a1")));
        assert!(!app_admin.can(Permission::ManageApp("a2")));
        assert!(!app_admin.can(Permission::CreateApps));
        let auditor = staff(&[Role::Auditor], &[]);
        assert!(auditor.can(Permission::ViewAudit) && auditor.can(Permission::ViewPeople));
        assert!(!auditor.can(Permission::ManagePeople) && !auditor.can(Permission::ManageApp("a1")));
        let reviewer = staff(&[Role::Reviewer], &[]);
        assert!(reviewer.can(Permission::Review) && !reviewer.can(Permission::GrantRoles));
        assert!(staff(&[Role::PlatformAdmin], &[]).can(Permission::GrantRoles));
        assert_eq!(Role::parse("app_admin"), Some(Role::AppAdmin));
    }
}
