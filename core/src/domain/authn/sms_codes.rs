//! One-time SMS codes (A1, A3, A4, A7): 6 random digits, stored as a keyed
//! digest, valid 5 minutes, single use, 5 wrong tries at most — and a resend
//! does not reset the tries. Sending is limited to 5 per phone per hour and
//! 10 per 24 hours across all nodes (counters in the shared database).
use crate::clock::Clock;
use crate::crypto::SecretHasher;
use crate::ports::sms::{SmsGateway, SmsMessage, SmsPurpose};
use crate::store;
use crate::store::Store;
use crate::store::entities::sms_code;
use crate::telemetry::{self, Count};
use rand::Rng;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, Set};

pub const LIFETIME: i64 = 300;
pub const MAX_ATTEMPTS: i64 = 5;
pub const PER_HOUR: i64 = 5;
pub const PER_DAY: i64 = 10;
pub const PER_IP_HOUR: i64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// A7: past the hourly or daily limit; retry after this many seconds.
    #[error("too many SMS; retry in {0} s")]
    TooFrequent(i64),
    #[error("gateway: {0}")]
    Gateway(String),
    #[error(transparent)]
    Store(#[from] DbErr),
}

#[derive(Clone)]
pub struct SmsCodes {
    db: Store,
    hasher: SecretHasher,
    gateway: SmsGateway,
    clock: Clock,
}

impl SmsCodes {
    pub fn new(db: Store, hasher: SecretHasher, gateway: SmsGateway, clock: Clock) -> Self {
        Self { db, hasher, gateway, clock }
    }

    pub fn gateway(&self) -> &SmsGateway {
        &self.gateway
    }

    /// Counts a send against the phone's and the IP's limits, each a
    /// rolling window (A7: 5 in any hour, 10 in any 24 hours): the sends
    /// of the last `window` seconds are counted, under a per-key lock so
    /// racing sends on any node are counted one after the other. Over a
    /// limit nothing is recorded and the wait until the oldest counted send
    /// leaves the window is reported.
    async fn reserve(&self, phone: &str, ip: &str) -> Result<(), SendError> {
        use crate::store::entities::sms_send;
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set};
        let now = self.clock.now();
        let limits = [
            (format!("sms:hour:{phone}"), 3600, PER_HOUR),
            (format!("sms:day:{phone}"), 86400, PER_DAY),
            (format!("sms:ip:{ip}"), 3600, PER_IP_HOUR),
        ];
        let txn = store::begin_write(&self.db).await?;
        for (key, window, limit) in &limits {
            store::lock(&txn, key).await?;
            let in_window = || {
                sms_send::Entity::find()
                    .filter(sms_send::Column::Key.eq(key.as_str()))
                    .filter(sms_send::Column::At.gt(now - window))
            };
            if in_window().count(&txn).await? as i64 >= *limit {
                let oldest = in_window().order_by_asc(sms_send::Column::At).one(&txn).await?;
                let wait = oldest.map_or(*window, |s| s.at + window - now);
                crate::domain::staff::stats::bump(&txn, "sms_refused", "", now).await?;
                txn.commit().await?;
                return Err(SendError::TooFrequent(std::cmp::max(wait, 1)));
            }
        }
        for (key, _, _) in &limits {
            sms_send::Entity::insert(sms_send::ActiveModel {
                id: Set(crate::crypto::random_token(12)),
                key: Set(key.clone()),
                at: Set(now),
                expires_at: Set(now + 86400),
            })
            .exec_without_returning(&txn)
            .await?;
        }
        crate::domain::staff::stats::bump(&txn, "sms_sent", "", now).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Generates and sends a code. `text` renders the message for a code.
    pub async fn send(
        &self,
        phone: &str,
        purpose: SmsPurpose,
        ip: &str,
        text: impl Fn(&str) -> String,
    ) -> Result<(), SendError> {
        self.send_keyed(phone, purpose, purpose.as_str(), ip, text).await
    }

    /// As `send`, the code stored under `key` (`verify_for(phone, key, …)`
    /// checks it): a code bound to more than its phone and purpose.
    pub async fn send_keyed(
        &self,
        phone: &str,
        purpose: SmsPurpose,
        key: &str,
        ip: &str,
        text: impl Fn(&str) -> String,
    ) -> Result<(), SendError> {
        let sent = self.deliver(phone, purpose, key, ip, text).await;
        let outcome = match &sent {
            Ok(()) => "sent",
            Err(SendError::TooFrequent(_)) => "refused_limit",
            Err(_) => "failed",
        };
        telemetry::count(Count::Sms { outcome });
        sent
    }

    async fn deliver(
        &self,
        phone: &str,
        purpose: SmsPurpose,
        key: &str,
        ip: &str,
        text: impl Fn(&str) -> String,
    ) -> Result<(), SendError> {
        let code = self.issue(phone, key, ip).await?;
        let now = self.clock.now();
        let msg = SmsMessage {
            phone: phone.to_string(),
            purpose,
            params: serde_json::json!({ "code": code, "minutes": LIFETIME / 60 }),
            text: text(&code),
        };
        self.gateway.send(&msg, now).await.map_err(|e| match e {
            // The vendor's own per-phone limit: nothing went out; the person
            // is told to wait as for ours.
            crate::ports::sms::SmsError::RateLimited(_) => SendError::TooFrequent(60),
            e => SendError::Gateway(e.to_string()),
        })
    }

    /// Counts a send that is not made (nobody to send to) against the same
    /// limits, so the answer — "too frequent" included — does not tell.
    pub async fn count_unsent(&self, phone: &str, ip: &str) -> Result<(), SendError> {
        let counted = self.reserve(phone, ip).await;
        if let Err(SendError::TooFrequent(_)) = counted {
            telemetry::count(Count::Sms { outcome: "refused_limit" });
        }
        counted
    }

    /// Counts the send against the recipient's limits and stores a fresh
    /// code for (purpose, recipient); returns the code for the caller to
    /// deliver over whichever channel (SMS, mail).
    pub async fn issue(&self, recipient: &str, purpose: &str, ip: &str) -> Result<String, SendError> {
        self.reserve(recipient, ip).await?;
        let now = self.clock.now();
        let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32));
        let k = format!("{purpose}:{recipient}");
        let hash = self.hasher.digest("sms", &format!("{k}:{code}"));
        let fresh = sms_code::ActiveModel {
            key: Set(k.clone()),
            code_hash: Set(hash.clone()),
            attempts: Set(0),
            consumed: Set(false),
            created_at: Set(now),
            expires_at: Set(now + LIFETIME),
        };
        // Replace the previous code; keep its wrong-try count unless it had
        // already expired (a resend does not reset the counter).
        let expired = Expr::col((sms_code::Entity, sms_code::Column::ExpiresAt)).lte(now);
        sms_code::Entity::insert(fresh)
            .on_conflict(
                OnConflict::column(sms_code::Column::Key)
                    .values([
                        (sms_code::Column::CodeHash, Expr::value(hash)),
                        (sms_code::Column::Consumed, Expr::value(false)),
                        (sms_code::Column::CreatedAt, Expr::value(now)),
                        (sms_code::Column::ExpiresAt, Expr::value(now + LIFETIME)),
                        (
                            sms_code::Column::Attempts,
                            Expr::case(expired, 0i64)
                                .finally(Expr::col((sms_code::Entity, sms_code::Column::Attempts)))
                                .into(),
                        ),
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(code)
    }

    /// Checks and consumes a code. Every try counts first (atomically), so
    /// parallel guesses cannot exceed the limit; only one caller can consume
    /// a right code.
    pub async fn verify(&self, phone: &str, purpose: SmsPurpose, code: &str) -> Result<bool, DbErr> {
        self.verify_for(phone, purpose.as_str(), code).await
    }

    /// Counts one wrong try against the live code for (recipient, purpose)
    /// without checking anything: for a form whose other secret (an ID
    /// number) was wrong, so guessing that secret is bounded by the code's
    /// tries as a wrong code is. No live code, nothing to count — and then
    /// the form cannot succeed anyway.
    pub async fn spend_attempt(&self, recipient: &str, purpose: &str) -> Result<(), DbErr> {
        let now = self.clock.now();
        sms_code::Entity::update_many()
            .col_expr(sms_code::Column::Attempts, Expr::col(sms_code::Column::Attempts).add(1i64))
            .filter(sms_code::Column::Key.eq(format!("{purpose}:{recipient}")))
            .filter(sms_code::Column::Consumed.eq(false))
            .filter(sms_code::Column::ExpiresAt.gt(now))
            .filter(sms_code::Column::Attempts.lt(MAX_ATTEMPTS))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// As `verify`, for any (recipient, purpose) pair `issue` stored.
    pub async fn verify_for(&self, recipient: &str, purpose: &str, code: &str) -> Result<bool, DbErr> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(false);
        }
        let now = self.clock.now();
        let k = format!("{purpose}:{recipient}");
        let counted = sms_code::Entity::update_many()
            .col_expr(sms_code::Column::Attempts, Expr::col(sms_code::Column::Attempts).add(1i64))
            .filter(sms_code::Column::Key.eq(k.clone()))
            .filter(sms_code::Column::Consumed.eq(false))
            .filter(sms_code::Column::ExpiresAt.gt(now))
            .filter(sms_code::Column::Attempts.lt(MAX_ATTEMPTS))
            .exec(&self.db)
            .await?;
        if counted.rows_affected != 1 {
            return Ok(false);
        }
        let Some(row) = sms_code::Entity::find_by_id(k.clone()).one(&self.db).await? else { return Ok(false) };
        if !self.hasher.verify("sms", &format!("{k}:{code}"), &row.code_hash) {
            return Ok(false);
        }
        let won = sms_code::Entity::update_many()
            .col_expr(sms_code::Column::Consumed, Expr::value(true))
            .filter(sms_code::Column::Key.eq(k))
            .filter(sms_code::Column::Consumed.eq(false))
            .filter(sms_code::Column::CodeHash.eq(row.code_hash))
            .exec(&self.db)
            .await?;
        Ok(won.rows_affected == 1)
    }
}
