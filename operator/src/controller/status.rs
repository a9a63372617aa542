//! The status step of both reconcilers: an apply result becomes conditions, one status write (only
//! when something changed), an Event for a new Stalled reason, the reconcile metric's result, and the
//! controller's next action.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::{Context, Error, FIELD_MANAGER};
use crate::api::AppStatus;
use crate::desired::conditions::{Phase, conditions};

/// Result of the Apply step before conditions are set.
pub enum Outcome {
    Ready {
        message: String,
        requeue: Duration,
    },
    Waiting {
        reason: String,
        message: String,
        requeue: Duration,
    },
}

/// How a reconcile ended, for `fhir_operator_reconciles_total{result}`: `ok`, `waiting` (for a
/// dependency), `stalled` (needs a person) or `error` (retried). Set by [`finish`], read once the
/// reconcile returns.
#[derive(Default)]
pub struct Verdict(std::sync::OnceLock<&'static str>);

impl Verdict {
    fn set(&self, v: &'static str) {
        let _ = self.0.set(v);
    }

    /// The result label of a reconcile that returned `res`.
    pub fn result<T, E>(&self, res: &Result<T, E>) -> &'static str {
        match res {
            Err(_) => "error",
            Ok(_) => self.0.get().copied().unwrap_or("ok"),
        }
    }
}

/// Turns an apply result into conditions + status write + controller action (the only status writer).
pub async fn finish<K>(
    ctx: &Context,
    api: &Api<K>,
    obj: &K,
    old: Option<&AppStatus>,
    mut status: AppStatus,
    result: Result<Outcome, Error>,
    verdict: &Verdict,
) -> Result<kube::runtime::controller::Action, Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    use kube::runtime::controller::Action;
    let kind = K::kind(&()).to_string();
    let generation = obj.meta().generation;
    let result = result.map_err(|e| e.in_cloud(&ctx.config.endpoints().graph_url));
    let (phase, out) = match result {
        Ok(Outcome::Ready { message, requeue }) => {
            verdict.set("ok");
            (Phase::Ready { message }, Ok(Action::requeue(requeue)))
        }
        Ok(Outcome::Waiting {
            reason,
            message,
            requeue,
        }) => {
            verdict.set("waiting");
            (
                Phase::Progressing { reason, message },
                Ok(Action::requeue(requeue)),
            )
        }
        Err(e) if e.is_permanent() => {
            verdict.set("stalled");
            let message = e.summary();
            let phase = Phase::Stalled {
                reason: e.category().to_string(),
                message: message.clone(),
            };
            if old
                .and_then(|o| o.conditions.iter().find(|c| c.type_ == "Stalled"))
                .is_none_or(|c| c.status != "True" || c.message != message)
            {
                ctx.event(obj, true, e.category(), message).await;
            }
            ctx.metrics.error(&kind, e.category());
            tracing::warn!(kind, name = %obj.meta().name.as_deref().unwrap_or_default(), category = e.category(), error = %e, "stalled");
            let wait = e.requeue_after(ctx.config.stalled_retry);
            (phase, Ok(Action::requeue(wait)))
        }
        Err(e) => (
            Phase::Progressing {
                reason: e.category().to_string(),
                message: e.summary(),
            },
            Err(e),
        ),
    };
    let key = format!(
        "{}/{}",
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default()
    );
    let stalled_reason = match &phase {
        Phase::Stalled { reason, .. } => Some(reason.as_str()),
        _ => None,
    };
    ctx.metrics.set_stalled(&kind, &key, stalled_reason);
    let old_conds = old.map(|o| o.conditions.clone()).unwrap_or_default();
    let others = crate::desired::conditions::others(&status.conditions);
    status.conditions = conditions(&old_conds, &phase, generation, Time(jiff::Timestamp::now()));
    status.conditions.extend(others);
    status.observed_generation = generation;
    if old != Some(&status) {
        let patch = json!({ "apiVersion": K::api_version(&()), "kind": kind, "status": status });
        api.patch_status(
            &obj.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    }
    out
}

/// Error policy shared by both controllers: back off, honour Retry-After.
/// Permanent errors (e.g. a cleanup that lacks a permission) wait `stalled_retry`, never a hot loop.
pub fn backoff(err: &Error, ctx: &Context, kind: &str) -> kube::runtime::controller::Action {
    ctx.metrics.error(kind, err.category());
    tracing::warn!(kind, category = err.category(), error = %err, "reconcile failed; will retry");
    kube::runtime::controller::Action::requeue(err.requeue_after(ctx.config.stalled_retry))
}
