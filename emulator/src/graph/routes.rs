//! The route table: each entry is a method, a path pattern, the operation's name (the call log's
//! and the metrics' `operation`) and the handler, so the name always comes from the entry that
//! dispatched. Entries are tried in order and the first match wins, so within a resource the
//! longer patterns come first; an entry of method `ANY` answers what the resource refuses.
//!
//! Patterns, segment by segment (a request may carry more segments than the pattern; as Graph,
//! they are ignored):
//! - `name`: that segment; `a|b`: either; `prefix.*`: any segment so starting; `*`: any segment
//!   (the last `*` segment is the handler's [`Params::wild`]).
//! - `{p}` after a segment: its key (`applications(appId='…')`) or else the next segment
//!   (`applications/{id}`); `name({p})` only the key form; `name(key={p})` only that key.
use super::errors::{R, bad, method_not_allowed, segment_not_found, unsupported};
use super::lookup::find_parent;
use super::odata::split_key;
use super::pattern::{Params, matches};
use super::req::Req;
use super::{
    add_key, app_policies as pol, applications as apps, assignments, claims_policies as cmp,
    credentials, deleted_items, delta, directory_reads as dir, extensions as ext, federated,
    groups, owners, permission_grants as grants, service_principals as sps, sp_credentials,
};
use crate::state::store::Tenant;
use axum::http::Method;

pub type Handler = fn(&Req, &mut Tenant, &Params) -> R;

/// A route's method, spelled as HTTP spells it so the table reads as one.
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum M {
    GET,
    POST,
    PATCH,
    DELETE,
    ANY,
}
use M::*;

impl M {
    fn accepts(self, m: &Method) -> bool {
        match self {
            GET => m == Method::GET,
            POST => m == Method::POST,
            PATCH => m == Method::PATCH,
            DELETE => m == Method::DELETE,
            ANY => true,
        }
    }
}

pub struct Route {
    pub method: M,
    pub pattern: &'static str,
    pub name: &'static str,
    pub handler: Handler,
}

const fn route(method: M, pattern: &'static str, name: &'static str, handler: Handler) -> Route {
    Route {
        method,
        pattern,
        name,
        handler,
    }
}

/// The operation that may instantiate another tenant's multi-tenant application.
pub const SP_CREATE: &str = "servicePrincipals.create";

#[rustfmt::skip]
pub static ROUTES: &[Route] = &[
    // applications
    route(GET,    "applications/delta|microsoft.graph.delta", "applications.delta", delta::applications),
    route(ANY,    "applications/delta|microsoft.graph.delta", "applications.delta.methodNotAllowed", delta::method_not_allowed),
    route(GET,    "applications/$count", "applications.count", apps::count),
    route(ANY,    "applications/$count", "applications.count.unsupported", unsupported_request),
    route(ANY,    "applications/microsoft.graph.*", "applications.cast.unsupported", unsupported_request),
    route(POST,   "applications/{app}/addPassword|microsoft.graph.addPassword", "applications.addPassword", credentials::add_password),
    route(POST,   "applications/{app}/removePassword|microsoft.graph.removePassword", "applications.removePassword", credentials::remove_password),
    route(POST,   "applications/{app}/addKey|microsoft.graph.addKey", "applications.addKey", add_key::add_key),
    route(POST,   "applications/{app}/removeKey|microsoft.graph.removeKey", "applications.removeKey", credentials::remove_key),
    route(GET,    "applications/{app}/federatedIdentityCredentials/{fic}", "federatedIdentityCredentials.get", federated::get),
    route(PATCH,  "applications/{app}/federatedIdentityCredentials({fic})", "federatedIdentityCredentials.upsert", federated::update),
    route(PATCH,  "applications/{app}/federatedIdentityCredentials/{fic}", "federatedIdentityCredentials.update", federated::update),
    route(DELETE, "applications/{app}/federatedIdentityCredentials/{fic}", "federatedIdentityCredentials.delete", federated::delete),
    route(ANY,    "applications/{app}/federatedIdentityCredentials/{fic}", "federatedIdentityCredentials.item.methodNotAllowed", parent_then_method_not_allowed),
    route(GET,    "applications/{app}/federatedIdentityCredentials", "federatedIdentityCredentials.list", federated::list),
    route(POST,   "applications/{app}/federatedIdentityCredentials", "federatedIdentityCredentials.create", federated::create),
    route(ANY,    "applications/{app}/federatedIdentityCredentials", "federatedIdentityCredentials.methodNotAllowed", parent_then_method_not_allowed),
    route(POST,   "applications/{app}/owners/$ref", "applications.owners.add", owners::app_add),
    route(DELETE, "applications/{app}/owners/*/$ref", "applications.owners.remove", owners::app_remove),
    route(ANY,    "applications/{app}/owners/*", "applications.owners.item.methodNotAllowed", parent_then_method_not_allowed),
    route(GET,    "applications/{app}/owners", "applications.owners.list", owners::app_list),
    route(ANY,    "applications/{app}/owners", "applications.owners.methodNotAllowed", parent_then_method_not_allowed),
    route(POST,   "applications/{app}/appManagementPolicies/$ref", "applications.appManagementPolicies.add", pol::assign),
    route(DELETE, "applications/{app}/appManagementPolicies/*/$ref", "applications.appManagementPolicies.remove", pol::unassign),
    route(ANY,    "applications/{app}/appManagementPolicies/*", "applications.appManagementPolicies.item.methodNotAllowed", parent_then_method_not_allowed),
    route(GET,    "applications/{app}/appManagementPolicies", "applications.appManagementPolicies.list", pol::assigned_list),
    route(ANY,    "applications/{app}/appManagementPolicies", "applications.appManagementPolicies.methodNotAllowed", parent_then_method_not_allowed),
    // directory extensions (Learn application-post-extensionproperty, -list-, extensionproperty-delete; state::extensions)
    route(GET,    "applications/{app}/extensionProperties/{ext}", "applications.extensionProperties.get", ext::get),
    route(DELETE, "applications/{app}/extensionProperties/{ext}", "applications.extensionProperties.delete", ext::delete),
    route(ANY,    "applications/{app}/extensionProperties/{ext}", "applications.extensionProperties.item.methodNotAllowed", parent_then_method_not_allowed),
    route(GET,    "applications/{app}/extensionProperties", "applications.extensionProperties.list", ext::list),
    route(POST,   "applications/{app}/extensionProperties", "applications.extensionProperties.create", ext::create),
    route(ANY,    "applications/{app}/extensionProperties", "applications.extensionProperties.methodNotAllowed", parent_then_method_not_allowed),
    route(ANY,    "applications/{app}/*", "applications.segmentNotFound", parent_then_segment_not_found),
    route(GET,    "applications/{app}", "applications.get", apps::get),
    route(PATCH,  "applications(uniqueName={app})", "applications.upsert", apps::update),
    route(PATCH,  "applications/{app}", "applications.update", apps::update),
    route(DELETE, "applications/{app}", "applications.delete", apps::delete),
    route(ANY,    "applications/{app}", "applications.item.methodNotAllowed", method_not_allowed_request),
    route(GET,    "applications", "applications.list", apps::list),
    route(POST,   "applications", "applications.create", apps::create),
    route(ANY,    "applications", "applications.unsupported", unsupported_request),
    // service principals
    route(GET,    "servicePrincipals/delta|microsoft.graph.delta", "servicePrincipals.delta", delta::service_principals),
    route(ANY,    "servicePrincipals/delta|microsoft.graph.delta", "servicePrincipals.delta.methodNotAllowed", delta::method_not_allowed),
    route(GET,    "servicePrincipals/$count", "servicePrincipals.count", sps::count),
    route(ANY,    "servicePrincipals/$count", "servicePrincipals.count.unsupported", unsupported_request),
    route(GET,    "servicePrincipals/{sp}/appRoleAssignedTo/{assignment}", "appRoleAssignedTo.get", assignments::get_assigned_to),
    route(DELETE, "servicePrincipals/{sp}/appRoleAssignedTo/{assignment}", "appRoleAssignedTo.delete", assignments::delete_assigned_to),
    route(ANY,    "servicePrincipals/{sp}/appRoleAssignedTo/{assignment}", "appRoleAssignedTo.item.methodNotAllowed", parent_then_method_not_allowed),
    route(GET,    "servicePrincipals/{sp}/appRoleAssignedTo", "appRoleAssignedTo.list", assignments::list_assigned_to),
    route(POST,   "servicePrincipals/{sp}/appRoleAssignedTo", "appRoleAssignedTo.create", assignments::create_assigned_to),
    route(ANY,    "servicePrincipals/{sp}/appRoleAssignedTo", "appRoleAssignedTo.methodNotAllowed", parent_then_method_not_allowed),
    route(GET,    "servicePrincipals/{sp}/appRoleAssignments/{assignment}", "appRoleAssignments.get", assignments::get_assignment),
    route(DELETE, "servicePrincipals/{sp}/appRoleAssignments/{assignment}", "appRoleAssignments.delete", assignments::delete_assignment),
    route(ANY,    "servicePrincipals/{sp}/appRoleAssignments/{assignment}", "appRoleAssignments.item.methodNotAllowed", parent_then_method_not_allowed),
    route(GET,    "servicePrincipals/{sp}/appRoleAssignments", "appRoleAssignments.list", assignments::list_assignments),
    route(POST,   "servicePrincipals/{sp}/appRoleAssignments", "appRoleAssignments.create", assignments::create_assignment),
    route(ANY,    "servicePrincipals/{sp}/appRoleAssignments", "appRoleAssignments.methodNotAllowed", parent_then_method_not_allowed),
    route(POST,   "servicePrincipals/{sp}/owners/$ref", "servicePrincipals.owners.add", owners::sp_add),
    route(DELETE, "servicePrincipals/{sp}/owners/*/$ref", "servicePrincipals.owners.remove", owners::sp_remove),
    route(ANY,    "servicePrincipals/{sp}/owners/*", "servicePrincipals.owners.item.methodNotAllowed", parent_then_method_not_allowed),
    route(GET,    "servicePrincipals/{sp}/owners", "servicePrincipals.owners.list", owners::sp_list),
    route(ANY,    "servicePrincipals/{sp}/owners", "servicePrincipals.owners.methodNotAllowed", parent_then_method_not_allowed),
    route(GET,    "servicePrincipals/{sp}/oauth2PermissionGrants", "servicePrincipals.oauth2PermissionGrants.list", sps::permission_grants),
    route(POST,   "servicePrincipals/{sp}/appManagementPolicies/$ref", "servicePrincipals.appManagementPolicies.add", pol::assign),
    route(DELETE, "servicePrincipals/{sp}/appManagementPolicies/*/$ref", "servicePrincipals.appManagementPolicies.remove", pol::unassign),
    route(ANY,    "servicePrincipals/{sp}/appManagementPolicies/*", "servicePrincipals.appManagementPolicies.item.methodNotAllowed", parent_then_method_not_allowed),
    route(GET,    "servicePrincipals/{sp}/appManagementPolicies", "servicePrincipals.appManagementPolicies.list", pol::assigned_list),
    route(ANY,    "servicePrincipals/{sp}/appManagementPolicies", "servicePrincipals.appManagementPolicies.methodNotAllowed", parent_then_method_not_allowed),
    // claims-mapping policies on service principals (Learn serviceprincipal-*-claimsmappingpolicies; state::claims)
    route(POST,   "servicePrincipals/{sp}/claimsMappingPolicies/$ref", "servicePrincipals.claimsMappingPolicies.add", cmp::assign),
    route(DELETE, "servicePrincipals/{sp}/claimsMappingPolicies/*/$ref", "servicePrincipals.claimsMappingPolicies.remove", cmp::unassign),
    route(ANY,    "servicePrincipals/{sp}/claimsMappingPolicies/*", "servicePrincipals.claimsMappingPolicies.item.methodNotAllowed", parent_then_method_not_allowed),
    route(GET,    "servicePrincipals/{sp}/claimsMappingPolicies", "servicePrincipals.claimsMappingPolicies.list", cmp::assigned_list),
    route(POST,   "servicePrincipals/{sp}/claimsMappingPolicies", "servicePrincipals.claimsMappingPolicies.withoutRef", cmp::without_ref),
    route(ANY,    "servicePrincipals/{sp}/claimsMappingPolicies", "servicePrincipals.claimsMappingPolicies.methodNotAllowed", parent_then_method_not_allowed),
    route(POST,   "servicePrincipals/{sp}/addPassword|microsoft.graph.addPassword", "servicePrincipals.addPassword", sp_credentials::add_password),
    route(POST,   "servicePrincipals/{sp}/removePassword|microsoft.graph.removePassword", "servicePrincipals.removePassword", sp_credentials::remove_password),
    route(ANY,    "servicePrincipals/{sp}/*", "servicePrincipals.segmentNotFound", parent_then_segment_not_found),
    route(GET,    "servicePrincipals/{sp}", "servicePrincipals.get", sps::get),
    route(PATCH,  "servicePrincipals/{sp}", "servicePrincipals.update", sps::update),
    route(DELETE, "servicePrincipals/{sp}", "servicePrincipals.delete", sps::delete),
    route(ANY,    "servicePrincipals/{sp}", "servicePrincipals.item.methodNotAllowed", parent_then_method_not_allowed),
    route(GET,    "servicePrincipals", "servicePrincipals.list", sps::list),
    route(POST,   "servicePrincipals", SP_CREATE, sps::create),
    route(ANY,    "servicePrincipals", "servicePrincipals.unsupported", unsupported_request),
    // oauth2PermissionGrants
    route(GET,    "oauth2PermissionGrants/{grant}", "oauth2PermissionGrants.get", grants::get),
    route(PATCH,  "oauth2PermissionGrants/{grant}", "oauth2PermissionGrants.update", grants::update),
    route(DELETE, "oauth2PermissionGrants/{grant}", "oauth2PermissionGrants.delete", grants::delete),
    route(ANY,    "oauth2PermissionGrants/{grant}", "oauth2PermissionGrants.item.methodNotAllowed", method_not_allowed_request),
    route(GET,    "oauth2PermissionGrants", "oauth2PermissionGrants.list", grants::list),
    route(POST,   "oauth2PermissionGrants", "oauth2PermissionGrants.create", grants::create),
    route(ANY,    "oauth2PermissionGrants", "oauth2PermissionGrants.methodNotAllowed", method_not_allowed_request),
    // users (reads; PATCH sets directory extension values and the profile the emulator keeps) and groups
    route(PATCH,  "users/{user}", "users.update", ext::user_update),
    route(GET,    "users/{user}/appRoleAssignments", "users.appRoleAssignments.list", dir::user_assignments),
    route(GET,    "users/{user}/*", "users.item.unsupported", dir::user_unsupported),
    route(GET,    "users/{user}", "users.get", dir::user_get),
    route(GET,    "users", "users.list", dir::users),
    route(GET,    "groups/{group}/members", "groups.members.list", dir::group_members),
    route(GET,    "groups/{group}/*", "groups.item.unsupported", dir::group_unsupported),
    route(GET,    "groups/{group}", "groups.get", dir::group_get),
    route(DELETE, "groups/{group}", "groups.delete", groups::delete),
    route(GET,    "groups", "groups.list", dir::groups),
    route(POST,   "groups", "groups.create", groups::create),
    // deleted items (Learn directory-deleteditems-list, -get, -restore, -delete; state::recycle)
    route(POST,   "directory/deletedItems/{deleted}/restore|microsoft.graph.restore", "deletedItems.restore", deleted_items::restore),
    route(ANY,    "directory/deletedItems/*/*", "deletedItems.item.methodNotAllowed", method_not_allowed_request),
    route(GET,    "directory/deletedItems/microsoft.graph.*", "deletedItems.list", deleted_items::list),
    route(GET,    "directory/deletedItems/{deleted}", "deletedItems.get", deleted_items::get),
    route(DELETE, "directory/deletedItems/{deleted}", "deletedItems.purge", deleted_items::purge),
    route(ANY,    "directory/deletedItems", "deletedItems.methodNotAllowed", method_not_allowed_request),
    // app management policies (Learn tenantappmanagementpolicy-*, appmanagementpolicy-*; state::app_policies)
    route(GET,    "policies/defaultAppManagementPolicy", "defaultAppManagementPolicy.get", pol::default_get),
    route(PATCH,  "policies/defaultAppManagementPolicy", "defaultAppManagementPolicy.update", pol::default_update),
    route(ANY,    "policies/defaultAppManagementPolicy", "defaultAppManagementPolicy.methodNotAllowed", method_not_allowed_request),
    route(GET,    "policies/appManagementPolicies/{policy}/appliesTo", "appManagementPolicies.appliesTo.list", pol::applies_to),
    route(GET,    "policies/appManagementPolicies/{policy}", "appManagementPolicies.get", pol::get),
    route(PATCH,  "policies/appManagementPolicies/{policy}", "appManagementPolicies.update", pol::update),
    route(DELETE, "policies/appManagementPolicies/{policy}", "appManagementPolicies.delete", pol::delete),
    route(ANY,    "policies/appManagementPolicies/{policy}", "appManagementPolicies.item.methodNotAllowed", method_not_allowed_request),
    // claims-mapping policies (Learn claimsmappingpolicy-*; state::claims)
    route(GET,    "policies/claimsMappingPolicies/{policy}/appliesTo", "claimsMappingPolicies.appliesTo.list", cmp::applies_to),
    route(GET,    "policies/claimsMappingPolicies/{policy}", "claimsMappingPolicies.get", cmp::get),
    route(PATCH,  "policies/claimsMappingPolicies/{policy}", "claimsMappingPolicies.update", cmp::update),
    route(DELETE, "policies/claimsMappingPolicies/{policy}", "claimsMappingPolicies.delete", cmp::delete),
    route(ANY,    "policies/claimsMappingPolicies/{policy}", "claimsMappingPolicies.item.methodNotAllowed", method_not_allowed_request),
    route(GET,    "policies/claimsMappingPolicies", "claimsMappingPolicies.list", cmp::list),
    route(POST,   "policies/claimsMappingPolicies", "claimsMappingPolicies.create", cmp::create),
    route(ANY,    "policies/claimsMappingPolicies", "claimsMappingPolicies.methodNotAllowed", method_not_allowed_request),
    route(GET,    "policies/appManagementPolicies", "appManagementPolicies.list", pol::list),
    route(POST,   "policies/appManagementPolicies", "appManagementPolicies.create", pol::create),
    route(ANY,    "policies/appManagementPolicies", "appManagementPolicies.methodNotAllowed", method_not_allowed_request),
];

/// What no entry matches: the root segment is not a resource here.
pub static UNMATCHED: Route = route(ANY, "", "unmatched", unmatched);

fn unmatched(_: &Req, _: &mut Tenant, p: &Params) -> R {
    match &p.root {
        None => Err(bad("Invalid request.")),
        Some(root) => Err(segment_not_found(root)),
    }
}
fn unsupported_request(_: &Req, _: &mut Tenant, _: &Params) -> R {
    Err(unsupported())
}
fn method_not_allowed_request(_: &Req, _: &mut Tenant, _: &Params) -> R {
    Err(method_not_allowed())
}
/// A method a sub-resource does not have.
fn parent_then_method_not_allowed(r: &Req, t: &mut Tenant, p: &Params) -> R {
    find_parent(r, t, p)?;
    Err(method_not_allowed())
}
/// A segment under an application or service principal that is no sub-resource.
fn parent_then_segment_not_found(r: &Req, t: &mut Tenant, p: &Params) -> R {
    find_parent(r, t, p)?;
    Err(segment_not_found(p.wild()))
}

/// The entry for a request (or [`UNMATCHED`]) and what its pattern captured.
pub fn find(method: &Method, segs: &[String]) -> (&'static Route, Params) {
    for r in ROUTES {
        if r.method.accepts(method)
            && let Some(p) = matches(r.pattern, segs)
        {
            return (r, p);
        }
    }
    let root = segs.first().map(|s| split_key(s).0);
    let p = Params::unmatched(root);
    (&UNMATCHED, p)
}

#[cfg(test)]
mod tests {
    use super::super::pattern::{Ident, braced};
    use super::*;

    fn op(m: Method, p: &str) -> String {
        let segs: Vec<String> = p
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        find(&m, &segs).0.name.to_string()
    }

    #[test]
    fn every_route_has_its_own_name() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES.iter().chain([&UNMATCHED]) {
            assert!(seen.insert(r.name), "two routes are named {}", r.name);
        }
    }

    #[test]
    fn every_pattern_parses() {
        for r in ROUTES {
            for p in r.pattern.split('/') {
                if let Some(open) = p.find('(') {
                    assert!(p.ends_with(')'), "{}", r.pattern);
                    let inner = &p[open + 1..p.len() - 1];
                    let pname = inner.split_once('=').map_or(inner, |x| x.1);
                    assert!(braced(pname).is_some(), "{}", r.pattern);
                }
            }
        }
    }

    #[test]
    fn operation_names_are_stable() {
        assert_eq!(op(Method::POST, "applications"), "applications.create");
        assert_eq!(op(Method::GET, "applications"), "applications.list");
        assert_eq!(op(Method::GET, "applications/x"), "applications.get");
        assert_eq!(
            op(Method::GET, "applications(appId='x')"),
            "applications.get"
        );
        assert_eq!(
            op(Method::PATCH, "applications(uniqueName='x')"),
            "applications.upsert"
        );
        assert_eq!(op(Method::PATCH, "applications/x"), "applications.update");
        assert_eq!(op(Method::DELETE, "applications/x"), "applications.delete");
        assert_eq!(
            op(Method::POST, "applications/x/addPassword"),
            "applications.addPassword"
        );
        assert_eq!(
            op(Method::POST, "applications/x/microsoft.graph.addPassword"),
            "applications.addPassword"
        );
        assert_eq!(
            op(Method::POST, "applications(appId='y')/removePassword"),
            "applications.removePassword"
        );
        assert_eq!(
            op(Method::POST, "applications/x/federatedIdentityCredentials"),
            "federatedIdentityCredentials.create"
        );
        assert_eq!(
            op(
                Method::PATCH,
                "applications/x/federatedIdentityCredentials(name='n')"
            ),
            "federatedIdentityCredentials.upsert"
        );
        assert_eq!(
            op(
                Method::DELETE,
                "applications/x/federatedIdentityCredentials/n"
            ),
            "federatedIdentityCredentials.delete"
        );
        assert_eq!(
            op(Method::POST, "servicePrincipals"),
            "servicePrincipals.create"
        );
        assert_eq!(
            op(Method::POST, "servicePrincipals/x/appRoleAssignedTo"),
            "appRoleAssignedTo.create"
        );
        assert_eq!(
            op(Method::DELETE, "servicePrincipals/x/appRoleAssignedTo/a"),
            "appRoleAssignedTo.delete"
        );
        assert_eq!(
            op(Method::POST, "oauth2PermissionGrants"),
            "oauth2PermissionGrants.create"
        );
        assert_eq!(
            op(Method::PATCH, "oauth2PermissionGrants/g"),
            "oauth2PermissionGrants.update"
        );
        assert_eq!(
            op(
                Method::GET,
                "directory/deletedItems/microsoft.graph.application"
            ),
            "deletedItems.list"
        );
        assert_eq!(
            op(
                Method::GET,
                "directory/deletedItems/microsoft.graph.servicePrincipal"
            ),
            "deletedItems.list"
        );
        assert_eq!(
            op(Method::GET, "directory/deletedItems/x"),
            "deletedItems.get"
        );
        assert_eq!(
            op(Method::POST, "directory/deletedItems/x/restore"),
            "deletedItems.restore"
        );
        assert_eq!(
            op(Method::DELETE, "directory/deletedItems/x"),
            "deletedItems.purge"
        );
        assert_eq!(
            op(Method::GET, "applications/x/owners"),
            "applications.owners.list"
        );
        assert_eq!(
            op(Method::POST, "applications/x/addKey"),
            "applications.addKey"
        );
        assert_eq!(
            op(Method::PATCH, "policies/defaultAppManagementPolicy"),
            "defaultAppManagementPolicy.update"
        );
        assert_eq!(
            op(Method::GET, "policies/appManagementPolicies/p/appliesTo"),
            "appManagementPolicies.appliesTo.list"
        );
        assert_eq!(
            op(
                Method::POST,
                "applications(appId='a')/appManagementPolicies/$ref"
            ),
            "applications.appManagementPolicies.add"
        );
        assert_eq!(
            op(
                Method::DELETE,
                "servicePrincipals/s/appManagementPolicies/p/$ref"
            ),
            "servicePrincipals.appManagementPolicies.remove"
        );
    }

    #[test]
    fn delta_takes_every_spelling_the_sdks_send() {
        for path in [
            "applications/delta",
            "applications/delta()",
            "applications/microsoft.graph.delta",
            "applications/microsoft.graph.delta()",
        ] {
            assert_eq!(op(Method::GET, path), "applications.delta", "{path}");
        }
        assert_eq!(
            op(Method::GET, "servicePrincipals/delta()"),
            "servicePrincipals.delta"
        );
        assert_eq!(
            op(Method::POST, "servicePrincipals/delta"),
            "servicePrincipals.delta.methodNotAllowed"
        );
    }

    #[test]
    fn keys_and_segments_are_captured() {
        let segs = |p: &str| -> Vec<String> { p.split('/').map(str::to_string).collect() };
        let (r, p) = find(&Method::PATCH, &segs("applications(uniqueName='u')"));
        assert_eq!(r.name, "applications.upsert");
        assert_eq!(p.id("app"), &Ident::Key("uniqueName".into(), "u".into()));
        let (r, p) = find(&Method::DELETE, &segs("servicePrincipals/s/owners/o/$ref"));
        assert_eq!(r.name, "servicePrincipals.owners.remove");
        assert_eq!((p.id("sp").value(), p.wild()), ("s", "o"));
        let (r, p) = find(&Method::GET, &segs("applications/a/nope"));
        assert_eq!((r.name, p.wild()), ("applications.segmentNotFound", "nope"));
        let (r, _) = find(&Method::GET, &segs("applications/a/owners/x"));
        assert_eq!(r.name, "applications.owners.item.methodNotAllowed");
        let (r, p) = find(&Method::GET, &segs("nothing/here"));
        assert_eq!((r.name, p.root.as_deref()), ("unmatched", Some("nothing")));
    }
}
