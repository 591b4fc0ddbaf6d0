//! Assurance levels L1–L4 (B1–B7). Two things decide the `acr` asserted:
//!
//! - the account's **proofing level**: 1 none, 2 real-name (document checked
//!   with the authority), 3 real-person (face or bank card), 4 in person;
//! - the session's **authentication strength**: which factors were used and
//!   when. Each level above 2 asks for stronger, fresher factors.
//!
//! The asserted level is the highest `n` such that the account's proofing is
//! at least `n` and the session meets level `n`'s factor rule within its max
//! age. The level is computed when a code is issued, so a session that was
//! L3 an hour ago may yield L2 now. The table in docs/assurance.md is this
//! module in prose; keep them in step.
pub mod face_gate;
use crate::store::entities::user;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};

/// How a user proved who they are in a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    Password,
    Sms,
    Totp,
    RecoveryCode,
    Passkey,
    Face,
    /// Confirmed in the signed-in mobile app by scanning a QR code (D1).
    Scan,
    /// Signed in at an upstream identity provider (A3 brokering).
    Federated,
}

/// What kind of evidence a factor is; two different kinds make two factors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Knowledge,
    Possession,
    Inherence,
    /// Possession of a key unlocked by the user: counts as two kinds and
    /// resists phishing (a WebAuthn passkey).
    KeyWithUserVerification,
    /// Another provider's sign-in: we cannot tell what it was.
    External,
}

impl Factor {
    pub const ALL: [Factor; 8] = [
        Factor::Password,
        Factor::Sms,
        Factor::Totp,
        Factor::RecoveryCode,
        Factor::Passkey,
        Factor::Face,
        Factor::Scan,
        Factor::Federated,
    ];

    /// RFC 8176 `amr` values for this factor (`fed` is ours: no registered
    /// value says "an upstream provider authenticated the user").
    pub fn amr(self) -> &'static [&'static str] {
        match self {
            Factor::Password => &["pwd"],
            Factor::Sms => &["sms"],
            Factor::Totp | Factor::RecoveryCode => &["otp"],
            Factor::Passkey => &["swk", "user"],
            Factor::Face => &["face"],
            Factor::Scan => &["mca", "swk"],
            Factor::Federated => &["fed"],
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Factor::Password => Kind::Knowledge,
            Factor::Sms | Factor::Totp | Factor::RecoveryCode | Factor::Scan => Kind::Possession,
            Factor::Passkey => Kind::KeyWithUserVerification,
            Factor::Face => Kind::Inherence,
            Factor::Federated => Kind::External,
        }
    }
}

/// One use of a factor in a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorEvent {
    #[serde(rename = "f")]
    pub factor: Factor,
    #[serde(rename = "t")]
    pub at: i64,
}

/// Adds a factor use to a session's list, keeping the latest use of each.
pub fn with_event(mut events: Vec<FactorEvent>, factor: Factor, at: i64) -> Vec<FactorEvent> {
    events.retain(|e| e.factor != factor);
    events.push(FactorEvent { factor, at });
    events
}

/// The `amr` claim for a session: every method used, plus `mfa` when two
/// kinds of evidence were presented.
pub fn amr(events: &[FactorEvent]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in events {
        for v in e.factor.amr() {
            if !out.iter().any(|o| o == v) {
                out.push((*v).to_string());
            }
        }
    }
    if multi_factor(events.iter().map(|e| e.factor)) && !out.iter().any(|o| o == "mfa") {
        out.push("mfa".into());
    }
    out
}

fn multi_factor(factors: impl Iterator<Item = Factor> + Clone) -> bool {
    let kinds: Vec<Kind> = factors.map(Factor::kind).filter(|k| *k != Kind::External).collect();
    kinds.contains(&Kind::KeyWithUserVerification) || kinds.iter().any(|a| kinds.iter().any(|b| a != b))
}

/// Per-level freshness: how long a session's factors count towards a level.
/// 0 means "as long as the session lives".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AssuranceConfig {
    pub l2_max_age: i64,
    pub l3_max_age: i64,
    pub l4_max_age: i64,
    /// Whether an account can reach L4 proofing in the middle of a sign-in
    /// (an ID-chip reader or certificate at hand). When false, L4 proofing
    /// happens at a counter beforehand and a request that requires L4 from
    /// an account without it fails at once.
    pub in_person_online: bool,
}

impl Default for AssuranceConfig {
    fn default() -> Self {
        AssuranceConfig { l2_max_age: 0, l3_max_age: 30 * 60, l4_max_age: 15 * 60, in_person_online: false }
    }
}

impl AssuranceConfig {
    fn max_age(&self, level: u8) -> i64 {
        match level {
            0..=1 => 0,
            2 => self.l2_max_age,
            3 => self.l3_max_age,
            _ => self.l4_max_age,
        }
    }
}

pub const MAX_LEVEL: u8 = 4;

/// Whether the session's factors meet level `level`'s rule now:
/// L1, L2 any factor; L3 two kinds of evidence, a passkey or a face check;
/// L4 a passkey or a face check — each within the level's max age.
pub fn authentication_meets(level: u8, events: &[FactorEvent], now: i64, cfg: &AssuranceConfig) -> bool {
    let max_age = cfg.max_age(level);
    let fresh = events.iter().filter(|e| max_age == 0 || now - e.at <= max_age).map(|e| e.factor);
    match level {
        0..=2 => fresh.clone().next().is_some(),
        3 => fresh.clone().any(|f| matches!(f, Factor::Passkey | Factor::Face)) || multi_factor(fresh),
        _ => fresh.clone().any(|f| matches!(f, Factor::Passkey | Factor::Face)),
    }
}

/// The level asserted for an account with `proofing` and these session factors.
pub fn level(proofing: u8, events: &[FactorEvent], now: i64, cfg: &AssuranceConfig) -> u8 {
    (2..=MAX_LEVEL.min(proofing)).rev().find(|&n| authentication_meets(n, events, now, cfg)).unwrap_or(1)
}

/// What a session lacks to reach a level: the proofing to obtain and/or a
/// fresh strong factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Gap {
    /// The proofing level the account must reach first, if higher than now.
    pub proofing: Option<u8>,
    /// A factor meeting the level's rule must be used now.
    pub authentication: bool,
}

impl Gap {
    pub fn is_empty(&self) -> bool {
        self.proofing.is_none() && !self.authentication
    }

    /// Whether the user can close this gap during a sign-in: real-name and
    /// real-person proofing can be done online, in-person proofing only when
    /// configured; any missing factor can be supplied.
    pub fn reachable(&self, cfg: &AssuranceConfig) -> bool {
        match self.proofing {
            Some(4) => cfg.in_person_online,
            Some(n) => n <= MAX_LEVEL,
            None => true,
        }
    }
}

pub fn gap(target: u8, proofing: u8, events: &[FactorEvent], now: i64, cfg: &AssuranceConfig) -> Gap {
    Gap {
        proofing: (proofing < target).then_some(target),
        // After proofing, the factors still have to meet the level's rule
        // (a face check done for proofing also counts as a fresh factor).
        authentication: !authentication_meets(target, events, now, cfg),
    }
}

/// The level named by an `acr` value under `prefix` (`urn:idp:loa:3` → 3).
pub fn parse_acr(prefix: &str, value: &str) -> Option<u8> {
    value.strip_prefix(prefix)?.parse::<u8>().ok().filter(|n| (1..=MAX_LEVEL).contains(n))
}

pub fn acr(prefix: &str, level: u8) -> String {
    format!("{prefix}{level}")
}

/// Sets an account's proofing level. Call it inside the transaction that
/// records the evidence, so both commit together.
pub async fn set_proofing_level<C: ConnectionTrait>(conn: &C, user_id: &str, level: u8) -> Result<(), DbErr> {
    let level = level.clamp(1, MAX_LEVEL);
    user::Entity::update_many()
        .col_expr(user::Column::ProofingLevel, Expr::value(i32::from(level)))
        .filter(user::Column::Id.eq(user_id))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn proofing_level<C: ConnectionTrait>(conn: &C, user_id: &str) -> Result<u8, DbErr> {
    let row = user::Entity::find_by_id(user_id.to_string()).one(conn).await?;
    Ok(row.map(|u| proofing_from(u.proofing_level)).unwrap_or(1))
}

/// The proofing level as stored, within L1–L4.
pub fn proofing_from(stored: i32) -> u8 {
    u8::try_from(stored).unwrap_or(1).clamp(1, MAX_LEVEL)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(factor: Factor, at: i64) -> FactorEvent {
        FactorEvent { factor, at }
    }

    #[test]
    fn level_is_capped_by_proofing() {
        let cfg = AssuranceConfig::default();
        let events = [ev(Factor::Passkey, 1000)];
        assert_eq!(level(1, &events, 1000, &cfg), 1);
        assert_eq!(level(2, &events, 1000, &cfg), 2);
        assert_eq!(level(4, &events, 1000, &cfg), 4);
    }

    #[test]
    fn l3_needs_two_kinds_or_strong_factor() {
        let cfg = AssuranceConfig::default();
        assert_eq!(level(3, &[ev(Factor::Password, 0)], 10, &cfg), 2);
        assert_eq!(level(3, &[ev(Factor::Password, 0), ev(Factor::Sms, 5)], 10, &cfg), 3);
        // Two possession factors are still one kind of evidence.
        assert_eq!(level(3, &[ev(Factor::Sms, 0), ev(Factor::Totp, 5)], 10, &cfg), 2);
        assert_eq!(level(3, &[ev(Factor::Face, 0)], 10, &cfg), 3);
        // A federated sign-in adds no kind we can vouch for.
        assert_eq!(level(3, &[ev(Factor::Federated, 0), ev(Factor::Sms, 0)], 10, &cfg), 2);
    }

    #[test]
    fn max_age_lowers_the_level() {
        let cfg = AssuranceConfig::default();
        let events = [ev(Factor::Password, 0), ev(Factor::Face, 100)];
        assert_eq!(level(4, &events, 100 + 15 * 60, &cfg), 4);
        assert_eq!(level(4, &events, 101 + 15 * 60, &cfg), 3);
        assert_eq!(level(4, &events, 101 + 30 * 60, &cfg), 2);
    }

    #[test]
    fn amr_lists_methods_and_mfa() {
        assert_eq!(amr(&[ev(Factor::Password, 0)]), vec!["pwd"]);
        assert_eq!(amr(&[ev(Factor::Password, 0), ev(Factor::Totp, 1)]), vec!["pwd", "otp", "mfa"]);
        assert_eq!(amr(&[ev(Factor::Passkey, 0)]), vec!["swk", "user", "mfa"]);
    }

    #[test]
    fn gaps() {
        let cfg = AssuranceConfig::default();
        let pwd = [ev(Factor::Password, 0)];
        assert_eq!(gap(3, 2, &pwd, 0, &cfg), Gap { proofing: Some(3), authentication: true });
        assert!(gap(3, 2, &pwd, 0, &cfg).reachable(&cfg));
        assert!(!gap(4, 3, &pwd, 0, &cfg).reachable(&cfg));
        assert!(gap(2, 2, &pwd, 0, &cfg).is_empty());
        assert_eq!(parse_acr("urn:idp:loa:", "urn:idp:loa:3"), Some(3));
        assert_eq!(parse_acr("urn:idp:loa:", "urn:idp:loa:9"), None);
    }
}
