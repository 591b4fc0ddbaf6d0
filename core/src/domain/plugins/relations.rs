//! A person's relations as plugins see them (the health-code plugin, E2/E3):
//! the relatives they are bound to act for under the kin rules, and the
//! enterprises they represent or are an agent of, in force today. Only the
//! person's own relations — the host asks for the current call's subject.
use crate::domain::delegation::enterprises;
use crate::domain::delegation::kin::{self, Relative};
use crate::domain::delegation::{self, Kind};
use crate::store::Store;
use sea_orm::DbErr;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct EnterpriseRelation {
    pub uscc: String,
    pub name: String,
    /// `representative` or `agent`.
    pub role: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Relations {
    pub relatives: Vec<Relative>,
    pub enterprises: Vec<EnterpriseRelation>,
}

pub async fn of_subject(db: &Store, user_id: &str, now: i64) -> Result<Relations, DbErr> {
    let relatives = kin::relatives_of(db, user_id, now).await?;
    let mut out: Vec<EnterpriseRelation> = enterprises::represented_by(db, user_id)
        .await?
        .into_iter()
        .map(|e| EnterpriseRelation { uscc: e.uscc, name: e.name, role: enterprises::Role::Representative.as_str() })
        .collect();
    for d in delegation::received_by(db, user_id, Kind::Agent).await? {
        if !delegation::in_force(&d, now) {
            continue;
        }
        let Some(eid) = d.enterprise_id.as_deref() else { continue };
        if let Some(e) = enterprises::find(db, eid).await?
            && !out.iter().any(|o| o.uscc == e.uscc)
        {
            out.push(EnterpriseRelation { uscc: e.uscc, name: e.name, role: enterprises::Role::Agent.as_str() });
        }
    }
    Ok(Relations { relatives, enterprises: out })
}
