//! The audit trail of sensitive use cases. Each use case records its own
//! event here — inside its transaction where it has one — so every entry
//! path (page, OAuth endpoint, app API, CLI) is audited alike and none can
//! forget to. Handlers pass the client IP in as data when they know it.
//!
//! The row keeps the acting person in `user_id` (so a person's own events
//! can be listed and removed with the account) and a fixed, parseable
//! prefix in `detail`: `outcome=… actor=… subject=…`, then free text.
//! Nothing secret goes in: no passwords, codes or tokens.
use sea_orm::{ConnectionTrait, DbErr};

/// How the attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// Refused before it was tried: the throttle holds the account or IP.
    Locked,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Locked => "locked",
        }
    }
}

/// Who did it.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// A person with an account (its id).
    User(&'a str),
    /// An enterprise acting through its representative (its id).
    Enterprise(&'a str),
    /// A back-office operator at the command line (the name given).
    Operator(&'a str),
    /// A staff member in the operator console (their account id).
    Staff(&'a str),
    /// Nobody identified yet (a failed sign-in names only what was typed).
    Anonymous,
}

impl Actor<'_> {
    fn user_id(&self) -> Option<&str> {
        match self {
            Actor::User(id) => Some(id),
            _ => None,
        }
    }

    fn label(&self) -> String {
        match self {
            Actor::User(id) => format!("user:{id}"),
            Actor::Enterprise(id) => format!("enterprise:{id}"),
            Actor::Operator(name) => format!("operator:{name}"),
            Actor::Staff(id) => format!("staff:{id}"),
            Actor::Anonymous => "anonymous".into(),
        }
    }
}

/// One audited event. `action` is a stable snake_case name (the list is in
/// docs/security.md); `subject` names what the action was done to, as
/// `kind:id`.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub action: &'a str,
    pub actor: Actor<'a>,
    pub subject: &'a str,
    pub outcome: Outcome,
    pub detail: &'a str,
    pub ip: Option<&'a str>,
}

impl<'a> Event<'a> {
    /// A successful `action` by `actor` on `subject`, without detail or IP.
    pub fn new(action: &'a str, actor: Actor<'a>, subject: &'a str) -> Self {
        Event { action, actor, subject, outcome: Outcome::Success, detail: "", ip: None }
    }
    pub fn outcome(self, outcome: Outcome) -> Self {
        Event { outcome, ..self }
    }
    pub fn detail(self, detail: &'a str) -> Self {
        Event { detail, ..self }
    }
    pub fn ip(self, ip: Option<&'a str>) -> Self {
        Event { ip, ..self }
    }
}

/// The `detail` column of an event: the fixed prefix, then the free text.
pub fn detail_of(e: &Event<'_>) -> String {
    let mut out = format!("outcome={} actor={} subject={}", e.outcome.as_str(), e.actor.label(), e.subject);
    if !e.detail.is_empty() {
        out.push(' ');
        out.push_str(e.detail);
    }
    out
}

/// Records `e` at `now` (the injected clock) on any connection, so a use
/// case audits in its own transaction and the event commits or rolls back
/// with it.
pub async fn record<C: ConnectionTrait>(conn: &C, e: Event<'_>, now: i64) -> Result<(), DbErr> {
    crate::domain::identity::accounts::audit(conn, e.actor.user_id(), e.action, &detail_of(&e), e.ip, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_has_a_fixed_prefix() {
        let e = Event::new("consent_granted", Actor::User("u1"), "client:app").detail("scope=openid");
        assert_eq!(detail_of(&e), "outcome=success actor=user:u1 subject=client:app scope=openid");
        let e = Event::new("sign_in", Actor::Anonymous, "login:name:bob").outcome(Outcome::Locked);
        assert_eq!(detail_of(&e), "outcome=locked actor=anonymous subject=login:name:bob");
        assert_eq!(e.actor.user_id(), None);
    }
}
