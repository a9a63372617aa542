//! The order in which Graph lists an application's collections on a read.
//!
//! Recorded in azure-cli's `test_app_scenario.yaml` (commit 2b2fc6d8, 2022-06-09; in
//! `emulator/tests/recordings/azure-cli/`): an application created with two `appRoles` (Writer,
//! ConsumerApps), two `requiredResourceAccess` entries, and two `web` and two `publicClient`
//! redirect URIs was answered (201) with each collection in the order sent, and every later read
//! (`GET /applications/{id}`, `GET /applications?$filter=…`) listed each of these four collections
//! in the reverse order; the same after a PATCH that sent them. In the same reads the
//! `resourceAccess` inside an entry, the optional claims and `identifierUris` kept the order sent.
//! Passwords, added one by one, are listed newest first (credentials.rs, sp_credentials.rs),
//! which is the same rule. With two elements a reversal cannot be told from some other fixed order
//! of Graph's; the emulator reverses, which is right for both recorded cases.
use serde_json::Value;

/// Collections listed in the reverse of the order they were written, by path.
const REVERSED_ON_READ: &[&[&str]] = &[
    &["appRoles"],
    &["requiredResourceAccess"],
    &["web", "redirectUris"],
    &["publicClient", "redirectUris"],
];

/// An application as a read shows it (the create's answer keeps the order sent).
pub fn app_as_read(mut app: Value) -> Value {
    for path in REVERSED_ON_READ {
        let mut at = Some(&mut app);
        for seg in *path {
            at = at.and_then(|v| v.get_mut(*seg));
        }
        if let Some(list) = at.and_then(Value::as_array_mut) {
            list.reverse();
        }
    }
    app
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_recorded_collections_come_back_reversed_and_the_others_as_sent() {
        let sent = json!({"appRoles": [{"value": "Writer"}, {"value": "Consumer"}],
            "requiredResourceAccess": [{"resourceAppId": "a", "resourceAccess": [{"id": "x"}, {"id": "y"}]}, {"resourceAppId": "b"}],
            "web": {"redirectUris": ["w1", "w2"]}, "publicClient": {"redirectUris": ["p1", "p2"]},
            "spa": {"redirectUris": []}, "identifierUris": ["u1", "u2"]});
        let read = app_as_read(sent);
        assert_eq!(read["appRoles"][0]["value"], "Consumer");
        assert_eq!(read["requiredResourceAccess"][0]["resourceAppId"], "b");
        assert_eq!(
            read["requiredResourceAccess"][1]["resourceAccess"][0]["id"],
            "x"
        );
        assert_eq!(read["web"]["redirectUris"], json!(["w2", "w1"]));
        assert_eq!(read["publicClient"]["redirectUris"], json!(["p2", "p1"]));
        assert_eq!(read["identifierUris"], json!(["u1", "u2"]));
    }
}
