//! Notices a use case sends after its transaction commits: back-channel
//! logout to the relying apps of the sessions it ended, and a short SMS to
//! the account's phone. Both are best effort and carried out by the
//! delivery layer (tokens, HTTP, message texts), so the core names what to
//! tell and never how.
use std::future::Future;

/// A session a use case ended, with the `sub` its relying apps knew it by
/// (read before the change, which may move or forget the subject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedSession {
    pub sid: String,
    pub subject: String,
}

/// Back-channel logout (OIDC Back-Channel Logout 1.0) for ended sessions.
pub trait LogoutNotifier: Send + Sync {
    /// Tells every app of each session, best effort; never fails the use
    /// case, whose effects have already committed.
    fn sessions_ended(&self, ended: &[EndedSession]) -> impl Future<Output = ()> + Send;
}

/// A notice on the phone of the account a change touched.
pub trait PhoneNotifier: Send + Sync {
    /// Sends the message named by its locale key, best effort.
    fn notify_phone(&self, phone: &str, key: &str, now: i64) -> impl Future<Output = ()> + Send;
}

/// Everything a security-relevant use case may need to tell.
pub trait Notices: LogoutNotifier + PhoneNotifier {}

impl<T: LogoutNotifier + PhoneNotifier> Notices for T {}
