//! What the core counts for operators. The rules that decide a sign-in or
//! call the identity verifier live here, so they count here too, once, for
//! every entry that reaches them (page, app API, OAuth endpoint, CLI). The
//! entry serving `/metrics` installs a [`Sink`] at start; until then (the
//! CLI, unit tests) counting costs one atomic load.
use crate::domain::assurance::Factor;
use std::sync::OnceLock;

/// One counted event, its label values from fixed vocabularies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// A sign-in that ended: `level` is the session's assurance level
    /// (0 when no session was made).
    SignIn { method: Factor, level: u8, outcome: SignInOutcome },
    /// A call to the identity verifier (B2–B4).
    VerifierCall { check: Check, outcome: &'static str },
    /// An SMS code: `sent`, `refused_limit` (A7 limits or the vendor's
    /// own) or `failed` (the gateway did not take it).
    Sms { outcome: &'static str },
}

/// How a sign-in ended, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInOutcome {
    Success,
    /// Wrong password or SMS code, or no such account.
    Failed,
    /// The throttle held the account or the address.
    Locked,
    /// The captcha a risky sign-in needs was missing or wrong.
    CaptchaWrong,
    /// The secret was right but the account is suspended.
    Suspended,
}

impl SignInOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            SignInOutcome::Success => "success",
            SignInOutcome::Failed => "failed",
            SignInOutcome::Locked => "locked",
            SignInOutcome::CaptchaWrong => "captcha_wrong",
            SignInOutcome::Suspended => "suspended",
        }
    }
}

/// Which check the verifier was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Id,
    Face,
    BankCard,
    InPerson,
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Id => "id",
            Check::Face => "face",
            Check::BankCard => "bank_card",
            Check::InPerson => "in_person",
        }
    }
}

/// Where counted events go.
pub trait Sink: Send + Sync {
    fn count(&self, event: Count);
}

static SINK: OnceLock<Box<dyn Sink>> = OnceLock::new();

/// Installs the process's sink; later calls keep the first (several
/// servers in one test process share one set of counters).
pub fn install(sink: Box<dyn Sink>) {
    let _ = SINK.set(sink);
}

pub(crate) fn count(event: Count) {
    if let Some(sink) = SINK.get() {
        sink.count(event);
    }
}
