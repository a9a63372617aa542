//! Owners of an application or a service principal: list, add (`POST …/owners/$ref`), remove
//! (`DELETE …/owners/{id}/$ref`). Owners are service principals here.
use super::errors::{GErr, R, bad, denied, not_found};
use super::lookup::find_app;
use super::lookup::find_sp;
use super::odata::{list_response, no_content, with_context_type};
use super::pattern::Params;
use super::req::Req;
use crate::state::store::Tenant;
use serde_json::Value;

#[derive(Clone, Copy)]
enum Owned {
    App(usize),
    Sp(usize),
}

impl Owned {
    fn list(self, t: &mut Tenant) -> &mut Vec<String> {
        match self {
            Owned::App(i) => &mut t.apps[i].owners,
            Owned::Sp(i) => &mut t.sps[i].owners,
        }
    }
}

fn app(r: &Req, t: &Tenant, p: &Params) -> Result<Owned, GErr> {
    find_app(r, t, p.id("app"), false).map(Owned::App)
}
fn sp(r: &Req, t: &Tenant, p: &Params) -> Result<Owned, GErr> {
    find_sp(r, t, p.id("sp")).map(Owned::Sp)
}

pub fn app_list(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let o = app(r, t, p)?;
    list(r, t, o)
}
pub fn app_add(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let o = app(r, t, p)?;
    add(r, t, o)
}
pub fn app_remove(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let o = app(r, t, p)?;
    remove(r, t, o, p.wild())
}
pub fn sp_list(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let o = sp(r, t, p)?;
    list(r, t, o)
}
pub fn sp_add(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let o = sp(r, t, p)?;
    add(r, t, o)
}
pub fn sp_remove(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let o = sp(r, t, p)?;
    remove(r, t, o, p.wild())
}

fn list(r: &Req, t: &mut Tenant, o: Owned) -> R {
    if !r.can_read() {
        return Err(denied());
    }
    let owners = o.list(t).clone();
    let items: Vec<Value> = owners
        .iter()
        .filter_map(|id| {
            t.sp_idx(id)
                .map(|j| with_context_type("#microsoft.graph.servicePrincipal", &t.sps[j].body))
        })
        .collect();
    list_response(r, "directoryObjects", items, &["id"])
}

/// `{"@odata.id": "…/directoryObjects/{id}"}`: the service principal becomes an owner.
fn add(r: &Req, t: &mut Tenant, o: Owned) -> R {
    if !r.all() {
        return Err(denied());
    }
    let target = r
        .body
        .get("@odata.id")
        .and_then(Value::as_str)
        .unwrap_or("");
    let id = target
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string();
    if t.sp_idx(&id).is_none() {
        return Err(not_found(&id));
    }
    let owners = o.list(t);
    if owners.contains(&id) {
        return Err(bad(
            "One or more added object references already exist for the following modified properties: 'owners'.",
        ));
    }
    owners.push(id);
    Ok(no_content())
}

fn remove(r: &Req, t: &mut Tenant, o: Owned, id: &str) -> R {
    if !r.all() {
        return Err(denied());
    }
    let owners = o.list(t);
    if !owners.iter().any(|x| x == id) {
        return Err(not_found(id));
    }
    owners.retain(|x| x != id);
    Ok(no_content())
}
