//! ARM's route table. A role assignment or definition lives at any scope
//! (`{scope}/providers/Microsoft.Authorization/roleAssignments/{name}`), which the listener's
//! router cannot match, so ARM's requests come here whole: the resource type is found at the last
//! `/providers/Microsoft.Authorization/…` of the path (assignments before definitions), then the
//! row for the method and the item/collection form names the operation (the call log's) and
//! answers it. Before the row runs, ARM's own order of checks: resource type, `api-version`, token.
use super::{Call, arm_error, assignments as a, missing_api_version, query_param, verify};
use crate::request::OpInfo;
use crate::state::Shared;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{Method, StatusCode};
use std::sync::Arc;

/// The resource types served, by the lower-cased path literal that ends their scope.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Assignments,
    Definitions,
}
use Kind::*;

const KINDS: &[(&str, Kind)] = &[
    (
        "/providers/microsoft.authorization/roleassignments",
        Assignments,
    ),
    (
        "/providers/microsoft.authorization/roledefinitions",
        Definitions,
    ),
];

/// `/{kind}/{name}` or the collection `/{kind}`.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Form {
    Item,
    Collection,
}
use Form::*;

type Handler = fn(&Shared, &Call) -> Response;

struct Route {
    method: Method,
    kind: Kind,
    form: Form,
    name: &'static str,
    handler: Handler,
}

#[rustfmt::skip]
fn routes() -> [Route; 6] {
    let r = |method, kind, form, name, handler| Route { method, kind, form, name, handler };
    [
        r(Method::GET,    Definitions, Item,       "arm.roleDefinitions.get",  a::definition),
        r(Method::GET,    Definitions, Collection, "arm.roleDefinitions.list", a::definitions),
        r(Method::PUT,    Assignments, Item,       "arm.roleAssignments.put",    a::put),
        r(Method::GET,    Assignments, Item,       "arm.roleAssignments.get",    a::get),
        r(Method::DELETE, Assignments, Item,       "arm.roleAssignments.delete", a::delete),
        r(Method::GET,    Assignments, Collection, "arm.roleAssignments.list",   a::list),
    ]
}

/// The resource type of `path`, where its literal starts, and the item after it (if any).
fn resource_of(path: &str) -> Option<(Kind, usize, Option<String>)> {
    let lower = path.to_ascii_lowercase();
    let (kind, at) = KINDS
        .iter()
        .find_map(|(lit, kind)| lower.rfind(lit).map(|i| (*kind, i)))?;
    let item = path[at..]
        .splitn(5, '/')
        .nth(4)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Some((kind, at, item))
}

/// Every ARM request (`/subscriptions/…`, `/providers/…`).
pub async fn handle(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();
    let headers = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let Some((kind, at, item)) = resource_of(&path) else {
        let r = arm_error(
            StatusCode::NOT_FOUND,
            "InvalidResourceType",
            "The resource type could not be found in the namespace of this emulator.",
        );
        return OpInfo::named("arm.unknown", "", "").on(r);
    };
    if super::api_version(&query).is_none() {
        return OpInfo::named("arm.noApiVersion", "", "").on(missing_api_version());
    }
    let caller = match verify(&sh, &headers, super::ARM_AUDIENCES) {
        Ok(c) => c,
        Err((code, message)) => {
            let mut r = arm_error(StatusCode::UNAUTHORIZED, code, &message);
            r.headers_mut().insert(
                "WWW-Authenticate",
                http::HeaderValue::from_static("Bearer authorization_uri=\"https://login.windows.net/\", error=\"invalid_token\""),
            );
            return OpInfo::named("arm.unauthorized", "", "").on(r);
        }
    };
    let form = if item.is_some() { Item } else { Collection };
    let call = Call {
        caller: &caller,
        scope: path[..at].trim_end_matches('/').to_string(),
        item,
        filter: query_param(&query, "$filter"),
        body: &body,
    };
    let found = routes()
        .into_iter()
        .find(|r| r.kind == kind && r.form == form && r.method == method);
    let (op, resp) = match found {
        Some(route) => (route.name, (route.handler)(&sh, &call)),
        None => (
            "arm.unsupported",
            arm_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "HttpMethodNotAllowed",
                &format!("The HTTP method '{method}' is not supported at '{path}'."),
            ),
        ),
    };
    OpInfo::named(op, &caller.tenant, &caller.app_id).on(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_type_is_found_at_any_scope() {
        let p = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/w/providers/Microsoft.Authorization/roleAssignments/n1";
        let (kind, at, item) = resource_of(p).unwrap();
        assert_eq!(kind, Assignments);
        assert_eq!(
            &p[..at],
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/w"
        );
        assert_eq!(item.as_deref(), Some("n1"));
        let (kind, _, item) =
            resource_of("/providers/Microsoft.Authorization/roleDefinitions").unwrap();
        assert_eq!((kind, item), (Definitions, None));
        assert!(resource_of("/subscriptions/s/resourceGroups/rg").is_none());
    }
}
