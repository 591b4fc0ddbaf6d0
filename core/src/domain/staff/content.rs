//! FAQ and feedback (G3). Citizens read the FAQ (categories and questions,
//! with search) and send feedback or error reports (纠错) from any page,
//! naming the page they came from; staff who maintain content (platform
//! admins and reviewers) edit the FAQ and answer feedback — each answer
//! given once (one conditional UPDATE), audited; the citizen reads it in
//! the personal centre.
use super::{Permission, Staff, StaffError};
use crate::crypto::random_token;
use crate::domain::audit::{Actor, Event};
use crate::store::Store;
use crate::store::entities::{faq_category, faq_item, feedback};
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set};
use serde::Serialize;

pub const PENDING: &str = "pending";
pub const ANSWERED: &str = "answered";
pub const KINDS: [&str; 2] = ["feedback", "error_report"];
const MAX_TEXT: usize = 2000;
const MAX_TITLE: usize = 200;
/// Unanswered messages one person may have waiting at once.
const MAX_PENDING: u64 = 10;

/// A category with its questions, in order.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub category: faq_category::Model,
    pub items: Vec<faq_item::Model>,
}

/// The FAQ, every category with its questions; with a search text only the
/// questions whose question or answer contains it (case-insensitive), and
/// only categories with a match.
pub async fn faq(db: &Store, search: &str) -> Result<Vec<Section>, DbErr> {
    let cats = faq_category::Entity::find()
        .order_by_asc(faq_category::Column::Position)
        .order_by_asc(faq_category::Column::Name)
        .all(db)
        .await?;
    let items = faq_item::Entity::find().order_by_asc(faq_item::Column::Position).all(db).await?;
    let needle = search.trim().to_lowercase();
    let hit = |i: &faq_item::Model| {
        needle.is_empty() || i.question.to_lowercase().contains(&needle) || i.answer.to_lowercase().contains(&needle)
    };
    Ok(cats
        .into_iter()
        .map(|c| {
            let items = items.iter().filter(|i| i.category_id == c.id && hit(i)).cloned().collect();
            Section { category: c, items }
        })
        .filter(|s| needle.is_empty() || !s.items.is_empty())
        .collect())
}

fn text_ok(s: &str, max: usize) -> bool {
    let n = s.trim().chars().count();
    n > 0 && n <= max
}

/// Creates (`id` None) or renames a category.
pub async fn save_category(
    db: &Store,
    staff: &Staff,
    id: Option<&str>,
    name: &str,
    position: i64,
    now: i64,
) -> Result<String, StaffError> {
    staff.require(Permission::ManageContent)?;
    if !text_ok(name, MAX_TITLE) {
        return Err(StaffError::Invalid("admin_faq_name_rule"));
    }
    let txn = crate::store::begin_write(db).await?;
    let id = match id {
        Some(id) => {
            let row = faq_category::Entity::find_by_id(id.to_string()).one(&txn).await?.ok_or(StaffError::NotFound)?;
            let mut m: faq_category::ActiveModel = row.into();
            m.name = Set(name.trim().into());
            m.position = Set(position);
            m.updated_at = Set(now);
            m.update(&txn).await?;
            id.to_string()
        }
        None => {
            let id = random_token(9);
            faq_category::ActiveModel {
                id: Set(id.clone()),
                name: Set(name.trim().into()),
                position: Set(position),
                updated_at: Set(now),
            }
            .insert(&txn)
            .await?;
            id
        }
    };
    let subject = format!("faq_category:{id}");
    crate::domain::audit::record(&txn, Event::new("faq_category_saved", staff.actor(), &subject), now).await?;
    txn.commit().await?;
    Ok(id)
}

/// Deletes a category and its questions.
pub async fn delete_category(db: &Store, staff: &Staff, id: &str, now: i64) -> Result<(), StaffError> {
    staff.require(Permission::ManageContent)?;
    let txn = crate::store::begin_write(db).await?;
    let gone = faq_category::Entity::delete_by_id(id.to_string()).exec(&txn).await?.rows_affected;
    if gone == 0 {
        return Err(StaffError::NotFound);
    }
    let items = faq_item::Entity::delete_many().filter(faq_item::Column::CategoryId.eq(id)).exec(&txn).await?;
    let subject = format!("faq_category:{id}");
    let detail = format!("questions={}", items.rows_affected);
    let event = Event::new("faq_category_deleted", staff.actor(), &subject).detail(&detail);
    crate::domain::audit::record(&txn, event, now).await?;
    txn.commit().await?;
    Ok(())
}

/// A question as typed in the console.
pub struct Question<'a> {
    pub category_id: &'a str,
    pub question: &'a str,
    pub answer: &'a str,
    pub position: i64,
}

/// Creates (`id` None) or edits a question.
pub async fn save_item(
    db: &Store,
    staff: &Staff,
    id: Option<&str>,
    q: &Question<'_>,
    now: i64,
) -> Result<String, StaffError> {
    staff.require(Permission::ManageContent)?;
    if !text_ok(q.question, MAX_TITLE) {
        return Err(StaffError::Invalid("admin_faq_question_rule"));
    }
    if !text_ok(q.answer, MAX_TEXT) {
        return Err(StaffError::Invalid("admin_faq_answer_rule"));
    }
    let txn = crate::store::begin_write(db).await?;
    if faq_category::Entity::find_by_id(q.category_id.to_string()).one(&txn).await?.is_none() {
        return Err(StaffError::Invalid("admin_faq_category_rule"));
    }
    let id = match id {
        Some(id) => {
            let row = faq_item::Entity::find_by_id(id.to_string()).one(&txn).await?.ok_or(StaffError::NotFound)?;
            let mut m: faq_item::ActiveModel = row.into();
            m.category_id = Set(q.category_id.into());
            m.question = Set(q.question.trim().into());
            m.answer = Set(q.answer.trim().into());
            m.position = Set(q.position);
            m.updated_at = Set(now);
            m.update(&txn).await?;
            id.to_string()
        }
        None => {
            let id = random_token(9);
            faq_item::ActiveModel {
                id: Set(id.clone()),
                category_id: Set(q.category_id.into()),
                question: Set(q.question.trim().into()),
                answer: Set(q.answer.trim().into()),
                position: Set(q.position),
                updated_at: Set(now),
            }
            .insert(&txn)
            .await?;
            id
        }
    };
    let subject = format!("faq_item:{id}");
    crate::domain::audit::record(&txn, Event::new("faq_item_saved", staff.actor(), &subject), now).await?;
    txn.commit().await?;
    Ok(id)
}

pub async fn delete_item(db: &Store, staff: &Staff, id: &str, now: i64) -> Result<(), StaffError> {
    staff.require(Permission::ManageContent)?;
    let txn = crate::store::begin_write(db).await?;
    if faq_item::Entity::delete_by_id(id.to_string()).exec(&txn).await?.rows_affected == 0 {
        return Err(StaffError::NotFound);
    }
    let subject = format!("faq_item:{id}");
    crate::domain::audit::record(&txn, Event::new("faq_item_deleted", staff.actor(), &subject), now).await?;
    txn.commit().await?;
    Ok(())
}

/// A local page to remember as where feedback came from (else `/`).
fn page_of(page: &str) -> String {
    let ok = page.starts_with('/')
        && !page.starts_with("//")
        && page.len() <= 512
        && page.chars().all(|c| c.is_ascii_graphic() && c != '\\');
    if ok { page.to_string() } else { "/".into() }
}

/// A citizen's feedback or error report from `page`. Refusals name the
/// locale key of the message shown at the field.
pub async fn submit(
    db: &Store,
    user_id: &str,
    kind: &str,
    page: &str,
    body: &str,
    ip: Option<&str>,
    now: i64,
) -> Result<String, StaffError> {
    if !KINDS.contains(&kind) {
        return Err(StaffError::Invalid("feedback_kind_rule"));
    }
    if !text_ok(body, MAX_TEXT) {
        return Err(StaffError::Invalid("feedback_body_rule"));
    }
    let txn = crate::store::begin_write(db).await?;
    crate::store::lock(&txn, &format!("feedback:{user_id}")).await?;
    let waiting = feedback::Entity::find()
        .filter(feedback::Column::UserId.eq(user_id))
        .filter(feedback::Column::Status.eq(PENDING))
        .count(&txn)
        .await?;
    if waiting >= MAX_PENDING {
        return Err(StaffError::Invalid("feedback_too_many"));
    }
    let id = random_token(9);
    feedback::ActiveModel {
        id: Set(id.clone()),
        user_id: Set(user_id.into()),
        kind: Set(kind.into()),
        page: Set(page_of(page)),
        body: Set(body.trim().into()),
        status: Set(PENDING.into()),
        answer: Set(None),
        answered_by: Set(None),
        created_at: Set(now),
        answered_at: Set(None),
    }
    .insert(&txn)
    .await?;
    let subject = format!("feedback:{id}");
    let detail = format!("kind={kind}");
    let event = Event::new("feedback_sent", Actor::User(user_id), &subject).detail(&detail).ip(ip);
    crate::domain::audit::record(&txn, event, now).await?;
    txn.commit().await?;
    Ok(id)
}

/// A person's own feedback, newest first (the personal centre).
pub async fn mine(db: &Store, user_id: &str) -> Result<Vec<feedback::Model>, DbErr> {
    feedback::Entity::find()
        .filter(feedback::Column::UserId.eq(user_id))
        .order_by_desc(feedback::Column::CreatedAt)
        .all(db)
        .await
}

/// Feedback for staff with `status` (`pending` by default; `all`), oldest first.
pub async fn queue(db: &Store, staff: &Staff, status: &str) -> Result<Vec<feedback::Model>, StaffError> {
    staff.require(Permission::ManageContent)?;
    let status = if status.is_empty() { PENDING } else { status };
    let mut q = feedback::Entity::find().order_by_asc(feedback::Column::CreatedAt);
    if status != "all" {
        q = q.filter(feedback::Column::Status.eq(status));
    }
    Ok(q.all(db).await?)
}

/// Answers pending feedback, once: one conditional UPDATE, so two staff
/// answering at once cannot both win (the second gets `NotFound`).
pub async fn answer(db: &Store, staff: &Staff, id: &str, text: &str, now: i64) -> Result<(), StaffError> {
    staff.require(Permission::ManageContent)?;
    if !text_ok(text, MAX_TEXT) {
        return Err(StaffError::Invalid("admin_feedback_answer_rule"));
    }
    let txn = crate::store::begin_write(db).await?;
    let won = feedback::Entity::update_many()
        .col_expr(feedback::Column::Status, Expr::value(ANSWERED))
        .col_expr(feedback::Column::Answer, SimpleExpr::from(Expr::value(Some(text.trim().to_string()))))
        .col_expr(feedback::Column::AnsweredBy, SimpleExpr::from(Expr::value(Some(staff.actor().label()))))
        .col_expr(feedback::Column::AnsweredAt, SimpleExpr::from(Expr::value(Some(now))))
        .filter(feedback::Column::Id.eq(id))
        .filter(feedback::Column::Status.eq(PENDING))
        .exec(&txn)
        .await?;
    if won.rows_affected != 1 {
        return Err(StaffError::NotFound);
    }
    let subject = format!("feedback:{id}");
    crate::domain::audit::record(&txn, Event::new("feedback_answered", staff.actor(), &subject), now).await?;
    txn.commit().await?;
    Ok(())
}
