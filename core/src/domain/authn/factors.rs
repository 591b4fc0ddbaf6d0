//! Authenticator apps (TOTP, RFC 6238) and recovery codes — the strong
//! second factors besides passkeys (B6).
//!
//! - The TOTP seed is stored encrypted (AES-256-GCM under a sub-key of the
//!   master key, bound to the account id as associated data).
//! - RFC 6238 §5.2: a code is accepted once. The last accepted time-step is
//!   stored and only moves forward through a conditional UPDATE, so a code
//!   replayed later — or sent by two racing requests — passes at most once.
//! - Recovery codes are random, stored as keyed digests and consumed by a
//!   conditional UPDATE (single use under races too).
//! - Wrong codes are counted per account in the shared database; after
//!   `MAX_FAILURES` in `FAILURE_WINDOW` seconds further tries are refused
//!   until the window passes (it never locks the account for good).
use crate::crypto::keys::KeyVault;
use crate::crypto::{SecretHasher, random_token};
use crate::domain::authn::passkeys::{PasskeyError, PasskeyService};
use crate::domain::identity::accounts::audit;
use crate::ports::notify::PhoneNotifier;
use crate::store::Store;
use crate::store::entities::{passkey, recovery_code, totp_factor, user};
use rand::Rng;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, Set};

pub const RECOVERY_CODES: usize = 10;
const MAX_FAILURES: i64 = 5;
const FAILURE_WINDOW: i64 = 15 * 60;
/// Crockford-style alphabet without look-alikes (no i, l, o, u).
const CODE_ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// What an authenticator app needs to be set up.
pub struct Enrolment {
    /// Base32 seed, shown as text beside the QR code (accessibility, manual entry).
    pub secret: String,
    /// `otpauth://totp/…` (Key Uri Format), drawn as the QR code.
    pub url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Wrong,
    /// The code was right but its time-step was already used.
    Replayed,
    /// Too many wrong codes lately; try again after the window.
    Locked,
}

#[derive(Clone)]
pub struct TotpService {
    db: Store,
    vault: KeyVault,
    hasher: SecretHasher,
    /// Issuer label in authenticator apps (the issuer URL's host).
    label: String,
}

fn totp(seed: Vec<u8>, label: &str, account: &str) -> anyhow::Result<totp_rs::Totp> {
    totp_rs::Builder::new()
        .with_secret(seed)
        .with_issuer(Some(label.replace(':', "")))
        .with_account_name(account.replace(':', ""))
        .build()
        .map_err(|e| anyhow::anyhow!("totp: {e:?}"))
}

/// Normalises a typed recovery code: case, spaces and dashes do not matter.
fn normalise(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

fn new_recovery_code() -> String {
    let mut rng = rand::rngs::OsRng;
    let chars: String = (0..10).map(|_| CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char).collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

impl TotpService {
    pub fn new(db: Store, master: &[u8; 32], hasher: SecretHasher, issuer: &str) -> Self {
        let label = url::Url::parse(issuer).ok().and_then(|u| u.host_str().map(String::from)).unwrap_or_default();
        Self { db, vault: KeyVault::for_purpose(master, b"idp totp seed v1"), hasher, label }
    }

    fn open(&self, row: &totp_factor::Model, account: &str) -> anyhow::Result<totp_rs::Totp> {
        let seed = self.vault.open(&row.secret_enc, row.user_id.as_bytes())?;
        totp(seed, &self.label, account)
    }

    async fn row(&self, user_id: &str) -> Result<Option<totp_factor::Model>, DbErr> {
        totp_factor::Entity::find_by_id(user_id.to_owned()).one(&self.db).await
    }

    /// Whether the account has a confirmed authenticator app.
    pub async fn enrolled(&self, user_id: &str) -> Result<bool, DbErr> {
        Ok(self.row(user_id).await?.is_some_and(|r| r.confirmed))
    }

    /// Starts (or restarts) an enrolment with a fresh seed. `None` when an
    /// app is already confirmed: it must be removed before another is added.
    pub async fn start(&self, user_id: &str, account: &str, now: i64) -> anyhow::Result<Option<Enrolment>> {
        if self.enrolled(user_id).await? {
            return Ok(None);
        }
        totp_factor::Entity::delete_many()
            .filter(totp_factor::Column::UserId.eq(user_id))
            .filter(totp_factor::Column::Confirmed.eq(false))
            .exec(&self.db)
            .await?;
        let mut seed = vec![0u8; 20];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
        let secret_enc = self.vault.seal(&seed, user_id.as_bytes())?;
        let inserted = totp_factor::ActiveModel {
            user_id: Set(user_id.into()),
            secret_enc: Set(secret_enc),
            confirmed: Set(false),
            last_step: Set(-1),
            created_at: Set(now),
            last_used_at: Set(None),
        }
        .insert(&self.db)
        .await;
        match inserted {
            Ok(_) => {}
            // A racing request confirmed or restarted first.
            Err(e) if e.sql_err().is_some() => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        self.pending(user_id, account).await
    }

    /// The enrolment waiting for its first code (to show the QR again).
    pub async fn pending(&self, user_id: &str, account: &str) -> anyhow::Result<Option<Enrolment>> {
        let Some(row) = self.row(user_id).await?.filter(|r| !r.confirmed) else {
            return Ok(None);
        };
        let t = self.open(&row, account)?;
        Ok(Some(Enrolment { secret: t.secret().to_base32(), url: t.to_url().map_err(|e| anyhow::anyhow!("{e:?}"))? }))
    }

    /// Confirms a pending enrolment with a code from the app. Returns the
    /// fresh recovery codes (shown once) on success.
    pub async fn confirm(
        &self,
        user_id: &str,
        account: &str,
        code: &str,
        now: i64,
    ) -> anyhow::Result<Option<Vec<String>>> {
        let Some(row) = self.row(user_id).await?.filter(|r| !r.confirmed) else {
            return Ok(None);
        };
        let Some(step) = self.open(&row, account)?.check(code.trim(), now.max(0) as u64) else {
            return Ok(None);
        };
        let r = totp_factor::Entity::update_many()
            .col_expr(totp_factor::Column::Confirmed, Expr::value(true))
            .col_expr(totp_factor::Column::LastStep, Expr::value(step as i64))
            .col_expr(totp_factor::Column::LastUsedAt, Expr::value(now))
            .filter(totp_factor::Column::UserId.eq(user_id))
            .filter(totp_factor::Column::Confirmed.eq(false))
            .filter(totp_factor::Column::SecretEnc.eq(row.secret_enc))
            .exec(&self.db)
            .await?;
        if r.rows_affected != 1 {
            return Ok(None);
        }
        Ok(Some(self.new_recovery_codes(user_id, now).await?))
    }

    /// Checks a code from the app (step-up, second factor).
    pub async fn verify(&self, user_id: &str, account: &str, code: &str, now: i64) -> anyhow::Result<Verdict> {
        if self.locked(user_id, now).await? {
            return Ok(Verdict::Locked);
        }
        let Some(row) = self.row(user_id).await?.filter(|r| r.confirmed) else {
            self.failed(user_id, now).await?;
            return Ok(Verdict::Wrong);
        };
        let Some(step) = self.open(&row, account)?.check(code.trim(), now.max(0) as u64) else {
            self.failed(user_id, now).await?;
            return Ok(Verdict::Wrong);
        };
        let step = step as i64;
        // RFC 6238 §5.2: only a later step than the last accepted one passes.
        let r = totp_factor::Entity::update_many()
            .col_expr(totp_factor::Column::LastStep, Expr::value(step))
            .col_expr(totp_factor::Column::LastUsedAt, Expr::value(now))
            .filter(totp_factor::Column::UserId.eq(user_id))
            .filter(totp_factor::Column::Confirmed.eq(true))
            .filter(totp_factor::Column::LastStep.lt(step))
            .exec(&self.db)
            .await?;
        if r.rows_affected == 1 {
            Ok(Verdict::Accepted)
        } else {
            self.failed(user_id, now).await?;
            Ok(Verdict::Replayed)
        }
    }

    /// Consumes one recovery code.
    pub async fn use_recovery_code(&self, user_id: &str, code: &str, now: i64) -> Result<Verdict, DbErr> {
        if self.locked(user_id, now).await? {
            return Ok(Verdict::Locked);
        }
        let digest = self.hasher.digest(&format!("recovery code\0{user_id}"), &normalise(code));
        let r = recovery_code::Entity::update_many()
            .col_expr(recovery_code::Column::UsedAt, Expr::value(now))
            .filter(recovery_code::Column::UserId.eq(user_id))
            .filter(recovery_code::Column::CodeHash.eq(digest))
            .filter(recovery_code::Column::UsedAt.is_null())
            .exec(&self.db)
            .await?;
        if r.rows_affected == 1 {
            Ok(Verdict::Accepted)
        } else {
            self.failed(user_id, now).await?;
            Ok(Verdict::Wrong)
        }
    }

    /// Replaces every recovery code of the account with ten new ones.
    pub async fn new_recovery_codes(&self, user_id: &str, now: i64) -> Result<Vec<String>, DbErr> {
        recovery_code::Entity::delete_many().filter(recovery_code::Column::UserId.eq(user_id)).exec(&self.db).await?;
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
        let rows = codes.iter().map(|c| recovery_code::ActiveModel {
            id: Set(random_token(12)),
            user_id: Set(user_id.into()),
            code_hash: Set(self.hasher.digest(&format!("recovery code\0{user_id}"), &normalise(c))),
            used_at: Set(None),
            created_at: Set(now),
        });
        recovery_code::Entity::insert_many(rows).exec(&self.db).await?;
        Ok(codes)
    }

    pub async fn remaining_recovery_codes(&self, user_id: &str) -> Result<u64, DbErr> {
        recovery_code::Entity::find()
            .filter(recovery_code::Column::UserId.eq(user_id))
            .filter(recovery_code::Column::UsedAt.is_null())
            .count(&self.db)
            .await
    }

    /// When the app was last used (listing), if enrolled.
    pub async fn summary(&self, user_id: &str) -> Result<Option<(i64, Option<i64>)>, DbErr> {
        Ok(self.row(user_id).await?.filter(|r| r.confirmed).map(|r| (r.created_at, r.last_used_at)))
    }

    async fn locked(&self, user_id: &str, now: i64) -> Result<bool, DbErr> {
        let key = format!("mfa_fail:{user_id}");
        Ok(crate::store::read_counter(&self.db, &key, now).await?.is_some_and(|(n, _)| n >= MAX_FAILURES))
    }

    async fn failed(&self, user_id: &str, now: i64) -> Result<(), DbErr> {
        crate::store::bump_counter(&self.db, &format!("mfa_fail:{user_id}"), FAILURE_WINDOW, now).await.map(|_| ())
    }
}

// Factor management (personal centre, "安全设置"). Every change needs a
// fresh re-verification ([`Reverified`]), is audited, and is announced on
// the account's phone; the page only parses the form and shows the result.

/// Proof that the person re-verified in this browser (SMS code, password,
/// app code, passkey or a fresh upstream sign-in) within the re-verification
/// flow's lifetime. Only [`reverified`] makes one, and every use case that
/// changes factors asks for it, so no entry path can skip the step.
#[derive(Debug)]
pub struct Reverified {
    user_id: String,
}

impl Reverified {
    pub fn user_id(&self) -> &str {
        &self.user_id
    }
}

/// The re-verification proof when `flow` is a live re-verification flow of
/// `user_id`, opened in the browser whose hash is `browser`.
pub async fn reverified(
    db: &Store,
    flow: &str,
    browser: &str,
    user_id: &str,
    now: i64,
) -> Result<Option<Reverified>, DbErr> {
    if flow.is_empty() {
        return Ok(None);
    }
    let found =
        crate::domain::authn::flows::at_step(db, flow, crate::domain::authn::reverify::FLOW, browser, 1, now).await?;
    Ok(found.filter(|f| f.user_id == user_id).map(|f| Reverified { user_id: f.user_id }))
}

/// Which strong factor to remove.
#[derive(Debug, Clone, Copy)]
pub enum FactorRef<'a> {
    App,
    Passkey(&'a str),
}

/// What a factor change needs to know about the request.
pub struct Change<'a> {
    pub proof: &'a Reverified,
    pub user: &'a user::Model,
    pub ip: &'a str,
    pub now: i64,
}

impl Change<'_> {
    /// The proof must be the account's own: a flow opened by another
    /// account changes nothing here.
    fn owner(&self) -> Option<&str> {
        (self.proof.user_id == self.user.id).then_some(self.user.id.as_str())
    }
}

async fn tell<N: PhoneNotifier>(notices: &N, u: &user::Model, key: &str, now: i64) {
    if let Some(phone) = &u.phone {
        notices.notify_phone(phone, key, now).await;
    }
}

/// Confirms the pending authenticator app with its first code. Returns the
/// fresh recovery codes (shown once), or `None` when the code was wrong or
/// nothing was pending.
pub async fn enrol_app<N: PhoneNotifier>(
    db: &Store,
    totp: &TotpService,
    notices: &N,
    c: Change<'_>,
    code: &str,
) -> anyhow::Result<Option<Vec<String>>> {
    let Some(user_id) = c.owner() else { return Ok(None) };
    let Some(codes) = totp.confirm(user_id, &c.user.username, code, c.now).await? else {
        return Ok(None);
    };
    audit(db, Some(user_id), "factor_added", "authenticator app", Some(c.ip), c.now).await?;
    tell(notices, c.user, "sms_factor_added", c.now).await;
    Ok(Some(codes))
}

/// Completes a passkey registration ceremony started in this browser.
#[allow(clippy::too_many_arguments)]
pub async fn enrol_passkey<N: PhoneNotifier>(
    db: &Store,
    passkeys: &PasskeyService,
    notices: &N,
    c: Change<'_>,
    ceremony: &str,
    browser: &str,
    name: &str,
    credential: &str,
) -> Result<passkey::Model, PasskeyError> {
    let Some(user_id) = c.owner() else { return Err(PasskeyError::NoCeremony) };
    let pk = passkeys.finish_registration(ceremony, browser, user_id, name, credential, c.now).await?;
    audit(db, Some(user_id), "factor_added", &format!("passkey {}", pk.name), Some(c.ip), c.now).await?;
    tell(notices, c.user, "sms_factor_added", c.now).await;
    Ok(pk)
}

/// Replaces the recovery codes. `None` when the account has no strong
/// factor: recovery codes only ever stand in for one.
pub async fn renew_recovery_codes<N: PhoneNotifier>(
    db: &Store,
    totp: &TotpService,
    passkeys: &PasskeyService,
    notices: &N,
    c: Change<'_>,
) -> Result<Option<Vec<String>>, DbErr> {
    let Some(user_id) = c.owner() else { return Ok(None) };
    if !(totp.enrolled(user_id).await? || passkeys.count(user_id).await? > 0) {
        return Ok(None);
    }
    let codes = totp.new_recovery_codes(user_id, c.now).await?;
    audit(db, Some(user_id), "recovery_codes_renewed", "", Some(c.ip), c.now).await?;
    tell(notices, c.user, "sms_factor_added", c.now).await;
    Ok(Some(codes))
}

/// Removes a strong factor. In one transaction: the factor goes, the
/// recovery codes go with the last strong factor (they stand in for one;
/// none left, none kept), and the audit row is written. The phone is told
/// after commit. Returns what was removed, `None` when there was nothing
/// of this account's to remove.
pub async fn remove_factor<N: PhoneNotifier>(
    db: &Store,
    notices: &N,
    c: Change<'_>,
    which: FactorRef<'_>,
) -> Result<Option<String>, DbErr> {
    let Some(user_id) = c.owner() else { return Ok(None) };
    let txn = crate::store::begin_write(db).await?;
    let what = match which {
        FactorRef::App => {
            let r =
                totp_factor::Entity::delete_many().filter(totp_factor::Column::UserId.eq(user_id)).exec(&txn).await?;
            (r.rows_affected > 0).then(|| "authenticator app".to_string())
        }
        FactorRef::Passkey(id) => {
            let r = passkey::Entity::find_by_id(id.to_owned()).one(&txn).await?.filter(|r| r.user_id == user_id);
            match r {
                Some(row) => {
                    let gone = passkey::Entity::delete_many()
                        .filter(passkey::Column::Id.eq(id))
                        .filter(passkey::Column::UserId.eq(user_id))
                        .exec(&txn)
                        .await?;
                    (gone.rows_affected == 1).then(|| format!("passkey {}", row.name))
                }
                None => None,
            }
        }
    };
    let Some(what) = what else {
        txn.rollback().await?;
        return Ok(None);
    };
    if !has_strong_factor(&txn, user_id).await? {
        recovery_code::Entity::delete_many().filter(recovery_code::Column::UserId.eq(user_id)).exec(&txn).await?;
    }
    audit(&txn, Some(user_id), "factor_removed", &what, Some(c.ip), c.now).await?;
    txn.commit().await?;
    tell(notices, c.user, "sms_factor_removed", c.now).await;
    Ok(Some(what))
}

/// A confirmed authenticator app or at least one passkey.
pub(crate) async fn has_strong_factor<C: ConnectionTrait>(conn: &C, user_id: &str) -> Result<bool, DbErr> {
    let app = totp_factor::Entity::find()
        .filter(totp_factor::Column::UserId.eq(user_id))
        .filter(totp_factor::Column::Confirmed.eq(true))
        .count(conn)
        .await?;
    let keys = passkey::Entity::find().filter(passkey::Column::UserId.eq(user_id)).count(conn).await?;
    Ok(app > 0 || keys > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_readable_and_normalised() {
        let c = new_recovery_code();
        assert_eq!(c.len(), 11);
        assert_eq!(normalise(&c.to_uppercase().replace('-', " ")), c.replace('-', ""));
    }

    #[test]
    fn codes_match_rfc_6238_steps() {
        let t = totp(b"12345678901234567890".to_vec(), "idp.example", "alice").unwrap();
        // RFC 6238 appendix B, T = 59 (SHA-1, last six digits of 94287082).
        assert_eq!(t.check("287082", 59), Some(1));
        assert!(t.to_url().unwrap().starts_with("otpauth://totp/idp.example:alice?"));
    }
}
