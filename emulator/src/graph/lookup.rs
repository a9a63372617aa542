//! Finding the application or service principal a route's `{app}` or `{sp}` names — by id or an
//! alternate key, and only once it is visible to other requests (replication lag) — with Graph's
//! 404 otherwise.
use super::errors::{GErr, bad, not_found};
use super::pattern::{Ident, Params};
use super::req::Req;
use crate::state::store::{Tenant, s};

/// Index of an application for this request; `authoritative` ignores replication lag.
pub fn find_app(r: &Req, t: &Tenant, a: &Ident, authoritative: bool) -> Result<usize, GErr> {
    let idx = match a {
        Ident::Id(id) => t.app_idx(id),
        Ident::Key(_, v) if a.is_key("appId") => t.app_idx_by_app_id(v),
        Ident::Key(_, v) if a.is_key("uniqueName") => t.app_idx_by_unique_name(v),
        Ident::Key(_, v) if a.is_key("id") => t.app_idx(v),
        Ident::Key(k, _) => {
            return Err(bad(format!("Invalid alternate key '{k}'.")));
        }
    };
    match idx {
        Some(i) if authoritative || r.visible(t.apps[i].visible_from_ms) => Ok(i),
        _ => Err(not_found(a.value())),
    }
}

/// Index of a (replicated) service principal: by id, or `(appId='…')`.
pub fn find_sp(r: &Req, t: &Tenant, sp: &Ident) -> Result<usize, GErr> {
    let (idx, shown) = match sp {
        Ident::Id(id) => (t.sp_idx(id), id.clone()),
        Ident::Key(_, v) => {
            let idx = if sp.is_key("appId") {
                t.sp_idx_by_app_id(v)
            } else {
                t.sp_idx(v)
            };
            (
                idx,
                idx.map(|i| s(&t.sps[i].body, "id")).unwrap_or(v.clone()),
            )
        }
    };
    match idx {
        Some(i) if r.visible(t.sps[i].visible_from_ms) => Ok(i),
        _ => Err(not_found(&shown)),
    }
}

/// The application or service principal of the path must exist (404) before anything else.
pub fn find_parent(r: &Req, t: &Tenant, p: &Params) -> Result<(), GErr> {
    if let Some(a) = p.get("app") {
        find_app(r, t, a, false)?;
    }
    if let Some(sp) = p.get("sp") {
        find_sp(r, t, sp)?;
    }
    Ok(())
}
