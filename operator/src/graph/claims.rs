//! Directory extensions of an application and claims-mapping policies with their assignments to
//! service principals (docs/entra-facts/claims-and-delta.md §A1, §A2).
//!
//! Permissions: extension properties need `Application.ReadWrite.OwnedBy` on the owner application
//! (Learn `application-post-extensionproperty`); claims-mapping policies need
//! `Policy.ReadWrite.ApplicationConfiguration` to write and `Policy.Read.All` or that one to read
//! (`claimsmappingpolicy-post-claimsmappingpolicies`, `-list`); assigning one to a service principal
//! needs the policy permission and `Application.ReadWrite.OwnedBy` on an owned service principal
//! (`serviceprincipal-post-claimsmappingpolicies`, `-delete-`). A 403 is
//! [`GraphError::PermissionDenied`].

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::call::{Lag, decode, empty_body, ignore_not_found};
use super::client::GraphClient;
use super::error::GraphError;

const POLICIES: &str = "/policies/claimsMappingPolicies";

/// A directory extension definition (`extensionProperty`).
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ExtensionProperty {
    pub id: String,
    /// The full name, `extension_{appId without hyphens}_{name}`.
    pub name: String,
}

/// A claims-mapping policy: its definition is a collection holding one JSON string.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ClaimsMappingPolicy {
    pub id: String,
    pub display_name: String,
    pub definition: Vec<String>,
}

/// A directory object a policy applies to (a service principal here).
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct DirectoryObject {
    pub id: String,
}

impl GraphClient {
    /// `GET /applications/{id}/extensionProperties`.
    pub async fn extension_properties(
        &self,
        app_object_id: &str,
    ) -> Result<Vec<ExtensionProperty>, GraphError> {
        let path = format!("/applications/{app_object_id}/extensionProperties");
        self.list_all("listExtensionProperties", &path, Lag::Retry)
            .await
    }

    /// `POST /applications/{id}/extensionProperties` with `body`: 201 with the definition.
    pub async fn create_extension_property(
        &self,
        app_object_id: &str,
        body: &Value,
    ) -> Result<ExtensionProperty, GraphError> {
        let op = "createExtensionProperty";
        let path = format!("/applications/{app_object_id}/extensionProperties");
        let v = self
            .send(op, Method::POST, &path, Some(body), &[], Lag::Retry)
            .await?;
        decode(op, v.ok_or_else(|| empty_body(op))?)
    }

    /// `DELETE /applications/{id}/extensionProperties/{extId}`: 204, or already gone.
    pub async fn delete_extension_property(
        &self,
        app_object_id: &str,
        id: &str,
    ) -> Result<(), GraphError> {
        let path = format!("/applications/{app_object_id}/extensionProperties/{id}");
        self.delete("deleteExtensionProperty", &path).await
    }

    /// `GET /policies/claimsMappingPolicies`: every claims-mapping policy of the tenant (few).
    pub async fn claims_mapping_policies(&self) -> Result<Vec<ClaimsMappingPolicy>, GraphError> {
        self.list_all("listClaimsMappingPolicies", POLICIES, Lag::NoRetry)
            .await
    }

    /// `POST /policies/claimsMappingPolicies`: 201 with the policy.
    pub async fn create_claims_mapping_policy(
        &self,
        display_name: &str,
        definition: &str,
    ) -> Result<ClaimsMappingPolicy, GraphError> {
        let op = "createClaimsMappingPolicy";
        let body = json!({"displayName": display_name, "definition": [definition]});
        let v = self
            .send(op, Method::POST, POLICIES, Some(&body), &[], Lag::NoRetry)
            .await?;
        decode(op, v.ok_or_else(|| empty_body(op))?)
    }

    /// `PATCH /policies/claimsMappingPolicies/{id}` with a new definition: 204.
    pub async fn set_claims_mapping_definition(
        &self,
        id: &str,
        definition: &str,
    ) -> Result<(), GraphError> {
        let body = json!({"definition": [definition]});
        let path = format!("{POLICIES}/{id}");
        self.write("updateClaimsMappingPolicy", Method::PATCH, &path, &body)
            .await
    }

    /// `DELETE /policies/claimsMappingPolicies/{id}`: 204, or already gone.
    pub async fn delete_claims_mapping_policy(&self, id: &str) -> Result<(), GraphError> {
        self.delete("deleteClaimsMappingPolicy", &format!("{POLICIES}/{id}"))
            .await
    }

    /// `GET /policies/claimsMappingPolicies/{id}/appliesTo`: the service principals it is
    /// assigned to (empty when the policy is gone).
    pub async fn claims_mapping_applies_to(
        &self,
        id: &str,
    ) -> Result<Vec<DirectoryObject>, GraphError> {
        let path = format!("{POLICIES}/{id}/appliesTo");
        match self
            .list_all("listClaimsMappingAppliesTo", &path, Lag::NoRetry)
            .await
        {
            Err(GraphError::NotFound { .. }) => Ok(Vec::new()),
            other => other,
        }
    }

    /// `GET /servicePrincipals/{id}/claimsMappingPolicies`: the policy assigned (Entra holds one).
    pub async fn claims_mapping_policies_of(
        &self,
        sp_object_id: &str,
    ) -> Result<Vec<ClaimsMappingPolicy>, GraphError> {
        let path = format!("/servicePrincipals/{sp_object_id}/claimsMappingPolicies");
        self.list_all(
            "listServicePrincipalClaimsMappingPolicies",
            &path,
            Lag::Retry,
        )
        .await
    }

    /// `POST /servicePrincipals/{id}/claimsMappingPolicies/$ref`: 204.
    pub async fn assign_claims_mapping_policy(
        &self,
        sp_object_id: &str,
        policy_id: &str,
    ) -> Result<(), GraphError> {
        let body =
            json!({"@odata.id": format!("{}{POLICIES}/{policy_id}", self.endpoints.graph_url)});
        let path = format!("/servicePrincipals/{sp_object_id}/claimsMappingPolicies/$ref");
        self.write("assignClaimsMappingPolicy", Method::POST, &path, &body)
            .await
    }

    /// `DELETE /servicePrincipals/{id}/claimsMappingPolicies/{policyId}/$ref`: 204, or not assigned.
    pub async fn unassign_claims_mapping_policy(
        &self,
        sp_object_id: &str,
        policy_id: &str,
    ) -> Result<(), GraphError> {
        let path =
            format!("/servicePrincipals/{sp_object_id}/claimsMappingPolicies/{policy_id}/$ref");
        ignore_not_found(
            self.send(
                "unassignClaimsMappingPolicy",
                Method::DELETE,
                &path,
                None,
                &[],
                Lag::NoRetry,
            )
            .await,
        )
    }
}
