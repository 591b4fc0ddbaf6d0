//! Acting for someone else (C4, C6): which enterprise a session acts for,
//! and the claims a token carries when its grant was made acting for an
//! enterprise or under a delegation.
//!
//! Claim shape (docs/legal-persons.md, "Claims"): RFC 8693 §4.1 —
//! `sub` is the principal the token speaks for (the enterprise's id, or the
//! granting person's `sub`), `act` is `{"sub": <the acting person's sub>}`.
//! With the `legal_person` scope the enterprise is described under
//! `legal_person: {uscc, name, region, role}`. The acting person's own
//! profile claims are never released under the principal's `sub`.
use crate::domain::authn::sessions::SessionInfo;
use crate::domain::clients::scopes::ScopeSet;
use crate::domain::delegation::{self, Kind};
use crate::store::Store;
use crate::store::entities::{enterprise, grant, session_acting};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, Set};
use serde_json::{Map, Value, json};

pub const LEGAL_PERSON_SCOPE: &str = "legal_person";

/// Records that the session `sid` acts for an enterprise (as representative
/// when `delegation_id` is none, else as that agent).
pub async fn set<C: sea_orm::ConnectionTrait>(
    db: &C,
    sid: &str,
    enterprise_id: &str,
    delegation_id: Option<&str>,
) -> Result<(), DbErr> {
    let model = session_acting::ActiveModel {
        sid: Set(sid.into()),
        enterprise_id: Set(enterprise_id.into()),
        delegation_id: Set(delegation_id.map(String::from)),
    };
    session_acting::Entity::insert(model)
        .on_conflict(
            OnConflict::column(session_acting::Column::Sid)
                .update_columns([session_acting::Column::EnterpriseId, session_acting::Column::DelegationId])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// A citizen sign-in in the same session stops acting for the enterprise.
pub async fn clear<C: sea_orm::ConnectionTrait>(db: &C, sid: &str) -> Result<(), DbErr> {
    session_acting::Entity::delete_many().filter(session_acting::Column::Sid.eq(sid)).exec(db).await?;
    Ok(())
}

pub async fn of_session(db: &Store, sid: &str) -> Result<Option<session_acting::Model>, DbErr> {
    session_acting::Entity::find_by_id(sid.to_owned()).one(db).await
}

/// What the authorization flow needs of a signed-in session beyond the
/// session row: the account's proofing level and whom the session acts
/// for, read together in one statement (the code flow's hot path).
#[derive(Debug, Clone)]
pub struct Standing {
    pub proofing: u8,
    pub acting: Option<session_acting::Model>,
}

pub async fn standing(db: &Store, sid: &str, user_id: &str) -> Result<Standing, DbErr> {
    use crate::store::entities::user;
    use sea_orm::ConnectionTrait;
    use sea_orm::sea_query::{Expr, ExprTrait, JoinType, Query};
    let query = Query::select()
        .column((user::Entity, user::Column::ProofingLevel))
        .column((session_acting::Entity, session_acting::Column::EnterpriseId))
        .column((session_acting::Entity, session_acting::Column::DelegationId))
        .from(user::Entity)
        .join(
            JoinType::LeftJoin,
            session_acting::Entity,
            Expr::col((session_acting::Entity, session_acting::Column::Sid)).eq(sid),
        )
        .and_where(Expr::col((user::Entity, user::Column::Id)).eq(user_id))
        .to_owned();
    let Some(row) = db.query_one(&query).await? else {
        return Ok(Standing { proofing: 1, acting: None });
    };
    let proofing = crate::domain::assurance::proofing_from(row.try_get("", "proofing_level")?);
    let enterprise: Option<String> = row.try_get("", "enterprise_id")?;
    let delegation_id: Option<String> = row.try_get("", "delegation_id")?;
    let acting =
        enterprise.map(|enterprise_id| session_acting::Model { sid: sid.to_string(), enterprise_id, delegation_id });
    Ok(Standing { proofing, acting })
}

/// The session acts for an enterprise, so it is not the person's own.
#[derive(Debug, Clone)]
pub struct ForEnterprise {
    pub enterprise_id: String,
    /// `None` for the representative, else the agent delegation.
    pub delegation_id: Option<String>,
}

/// C1: a session made from an enterprise credential (the enterprise
/// password, or an agent's enterprise login) is an enterprise session: it
/// reaches that enterprise's pages and the apps it signs in to, never the
/// person's own account, identity, factors or person-to-person delegation.
/// Every personal entry (pages, plugin user pages, step-up from the
/// personal centre) asks this one question; a citizen sign-in in the same
/// browser ends the acting (`clear`) and makes the session personal again.
pub async fn personal(db: &Store, session: SessionInfo) -> Result<Result<SessionInfo, ForEnterprise>, DbErr> {
    Ok(match of_session(db, &session.sid).await? {
        Some(a) => Err(ForEnterprise { enterprise_id: a.enterprise_id, delegation_id: a.delegation_id }),
        None => Ok(session),
    })
}

/// What a delegated token says beyond a person's own token.
#[derive(Debug, Clone)]
pub struct Acting {
    /// The principal: the enterprise's id or the granting person's `sub`.
    pub subject: String,
    /// The acting person's `sub`.
    pub actor: String,
    pub legal_person: Option<Value>,
    pub delegation: Option<Value>,
}

impl Acting {
    /// Sets `sub` and `act`, and the scope-gated descriptions.
    pub fn apply(&self, claims: &mut Map<String, Value>, scope: &ScopeSet) {
        claims.insert("sub".into(), self.subject.clone().into());
        claims.insert("act".into(), json!({ "sub": self.actor }));
        if scope.contains(LEGAL_PERSON_SCOPE)
            && let Some(lp) = &self.legal_person
        {
            claims.insert(LEGAL_PERSON_SCOPE.into(), lp.clone());
        }
        if let Some(d) = &self.delegation {
            claims.insert("delegation".into(), d.clone());
        }
    }
}

pub fn legal_person_claim(e: &enterprise::Model, role: &str) -> Value {
    json!({ "uscc": e.uscc, "name": e.name, "region": e.region, "role": role })
}

/// Why a grant made acting for someone no longer yields tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotInForce;

/// The `sub` a client knew the tokens of session `sid` by when they were
/// issued acting for someone (the enterprise, or the granting person), as
/// of its latest grant there; `None` when that session's tokens speak for
/// the signed-in person. Read without checking the delegation is still in
/// force: a logout after a revocation must still name the principal.
pub async fn principal_in_session(db: &Store, sid: &str, client_id: &str) -> Result<Option<String>, DbErr> {
    use sea_orm::QueryOrder;
    let Some(g) = grant::Entity::find()
        .filter(grant::Column::Sid.eq(sid))
        .filter(grant::Column::ClientId.eq(client_id))
        .order_by_desc(grant::Column::CreatedAt)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if let Some(eid) = g.enterprise_id {
        return Ok(Some(eid));
    }
    match g.delegation_id {
        Some(id) => match delegation::find(db, &id).await?.and_then(|d| d.principal_user_id) {
            Some(principal) => {
                Ok(Some(crate::domain::tokens::subjects::of_account_in(db, g.sector.as_deref(), &principal).await?))
            }
            None => Ok(None),
        },
        None => Ok(None),
    }
}

/// The acting claims of a grant, checked against the current state: the
/// delegation still in force, the representative still the one on record.
/// People in it are named by the `sub` the grant's app knows (pairwise
/// subjects in the grant's sector).
pub async fn for_grant(db: &Store, g: &grant::Model, now: i64) -> Result<Result<Option<Acting>, NotInForce>, DbErr> {
    let mut acting = resolve(db, &g.user_id, g.enterprise_id.as_deref(), g.delegation_id.as_deref(), now).await?;
    if let (Some(sector), Ok(Some(a))) = (g.sector.as_deref(), &mut acting) {
        use crate::domain::tokens::subjects::in_sector;
        a.actor = in_sector(db, Some(sector), &a.actor).await?;
        if a.legal_person.is_none() {
            a.subject = in_sector(db, Some(sector), &a.subject).await?;
        }
    }
    Ok(acting)
}

pub async fn resolve(
    db: &Store,
    actor: &str,
    enterprise_id: Option<&str>,
    delegation_id: Option<&str>,
    now: i64,
) -> Result<Result<Option<Acting>, NotInForce>, DbErr> {
    let d = match delegation_id {
        Some(id) => match delegation::find(db, id).await? {
            Some(d) if d.grantee_user_id == actor && delegation::in_force(&d, now) => Some(d),
            _ => return Ok(Err(NotInForce)),
        },
        None => None,
    };
    if let Some(eid) = enterprise_id {
        let Some(e) = crate::domain::delegation::enterprises::find(db, eid).await? else {
            return Ok(Err(NotInForce));
        };
        let role = match &d {
            Some(d) if d.kind == Kind::Agent.as_str() && d.enterprise_id.as_deref() == Some(eid) => "agent",
            None if e.representative_user_id.as_deref() == Some(actor) => "representative",
            _ => return Ok(Err(NotInForce)),
        };
        return Ok(Ok(Some(Acting {
            subject: e.id.clone(),
            actor: crate::domain::tokens::subjects::of_account(db, actor).await?,
            legal_person: Some(legal_person_claim(&e, role)),
            delegation: None,
        })));
    }
    match d {
        Some(d) if d.kind == Kind::Person.as_str() => {
            let Some(principal) = d.principal_user_id.clone() else {
                return Ok(Err(NotInForce));
            };
            Ok(Ok(Some(Acting {
                subject: crate::domain::tokens::subjects::of_account(db, &principal).await?,
                actor: crate::domain::tokens::subjects::of_account(db, actor).await?,
                legal_person: None,
                delegation: Some(json!({ "id": d.id, "kind": d.kind, "valid_to": d.valid_to })),
            })))
        }
        Some(_) => Ok(Err(NotInForce)),
        None => Ok(Ok(None)),
    }
}
