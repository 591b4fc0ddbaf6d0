//! Graphic captcha before every SMS send and on risky password sign-ins
//! (A1, A3, A7). The answer is stored as a keyed digest, lives 5 minutes
//! and is single use: checking it deletes it, right or wrong.
use crate::clock::Clock;
use crate::crypto::{SecretHasher, random_token};
use crate::store::Store;
use crate::store::entities::captcha as row;
use sea_orm::{ActiveModelTrait, DbErr, EntityTrait, Set};

const LIFETIME: i64 = 300;

#[derive(Clone)]
pub struct CaptchaService {
    db: Store,
    hasher: SecretHasher,
    clock: Clock,
    /// In development the answer is also written to the message sink, so
    /// automated tests and local testers can read it.
    record_answers: bool,
}

pub struct Challenge {
    pub id: String,
    /// `data:image/png;base64,…` for an `<img>`.
    pub image: String,
}

fn normalise(answer: &str) -> String {
    answer.trim().to_ascii_lowercase()
}

impl CaptchaService {
    pub fn new(db: Store, hasher: SecretHasher, clock: Clock, record_answers: bool) -> Self {
        Self { db, hasher, clock, record_answers }
    }

    pub async fn create(&self) -> anyhow::Result<Challenge> {
        let (answer, png) = tokio::task::spawn_blocking(|| {
            let mut c = ::captcha::Captcha::new();
            c.add_chars(5)
                .apply_filter(::captcha::filters::Noise::new(0.2))
                .apply_filter(::captcha::filters::Wave::new(2.0, 12.0))
                .view(180, 60);
            (c.chars_as_string(), c.as_png())
        })
        .await?;
        let png = png.ok_or_else(|| anyhow::anyhow!("captcha image could not be encoded"))?;
        let id = random_token(18);
        row::ActiveModel {
            id: Set(id.clone()),
            answer_hash: Set(self.hasher.digest("captcha", &format!("{id}:{}", normalise(&answer)))),
            expires_at: Set(self.clock.now() + LIFETIME),
        }
        .insert(&self.db)
        .await?;
        if self.record_answers {
            crate::ports::sms::record(&self.db, "captcha", &id, "captcha", &answer, self.clock.now()).await?;
        }
        use base64::Engine;
        let image = format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(&png));
        Ok(Challenge { id, image })
    }

    /// True when `answer` solves challenge `id`. The challenge is consumed
    /// either way, so each answer gets exactly one try.
    pub async fn check(&self, id: &str, answer: &str) -> Result<bool, DbErr> {
        if id.is_empty() || id.len() > 64 || answer.len() > 32 {
            return Ok(false);
        }
        let Some(found) = row::Entity::delete_by_id(id.to_owned()).exec_with_returning(&self.db).await? else {
            return Ok(false);
        };
        if found.expires_at <= self.clock.now() {
            return Ok(false);
        }
        Ok(self.hasher.verify("captcha", &format!("{id}:{}", normalise(answer)), &found.answer_hash))
    }
}
