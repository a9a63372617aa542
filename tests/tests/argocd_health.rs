//! The Argo CD health check (deploy/argocd/health.lua) run by a real Lua 5.1 interpreter (`lua5.1`,
//! Debian package `lua5.1`; Argo CD runs it in gopher-lua, also Lua 5.1) against the status fixtures
//! in deploy/argocd/testdata, as listed with their expected results in deploy/argocd/health_test.yaml
//! (Argo CD's own test format). Needs no cluster.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn lua_binary() -> String {
    let lua = std::env::var("LUA").unwrap_or_else(|_| "lua5.1".into());
    let ok = Command::new(&lua)
        .arg("-v")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{lua} -v` failed: install Lua 5.1 (`apt-get install -y lua5.1`) or set LUA=<interpreter>"
    );
    lua
}

/// A Lua string literal (decimal escapes for anything that is not printable ASCII).
fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// A Lua table constructor equal to what Argo CD hands the script as `obj` (JSON null → nil).
fn lua_literal(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(items) => format!(
            "{{{}}}",
            items.iter().map(lua_literal).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Runs `script` with `obj` bound to `fixture`, in an environment holding only Lua's base functions
/// (what Argo CD gives a check without `useOpenLibs`). Returns (status, message).
fn run_health(lua: &str, script: &Path, fixture: &Value) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let driver = dir.path().join("driver.lua");
    let program = format!(
        r#"local obj = {obj}
local chunk = assert(loadfile({script}))
setfenv(chunk, {{ obj = obj, ipairs = ipairs, pairs = pairs, tostring = tostring, tonumber = tonumber, type = type, next = next, error = error, pcall = pcall }})
local hs = chunk()
assert(type(hs) == "table", "the check must return a table")
assert(type(hs.status) == "string", "hs.status must be a string")
io.write(hs.status, "\0", tostring(hs.message or ""))
"#,
        obj = lua_literal(fixture),
        script = lua_string(script.to_str().unwrap()),
    );
    std::fs::write(&driver, program).unwrap();
    let out = Command::new(lua).arg(&driver).output().expect("run lua");
    assert!(
        out.status.success(),
        "lua failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (status, message) = text.split_once('\0').expect("status, NUL, message");
    (status.to_string(), message.to_string())
}

#[test]
fn lua_literal_round_trips_through_lua() {
    let lua = lua_binary();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("echo.lua");
    std::fs::write(
        &script,
        "return { status = obj.s .. '|' .. tostring(obj.n) .. '|' .. tostring(#obj.a) .. '|' .. tostring(obj.missing), message = obj.a[2].k }",
    )
    .unwrap();
    let v = serde_json::json!({"s": "quote \" backslash \\ newline \n é", "n": 3, "a": [1, {"k": "v"}], "missing": null});
    let (status, message) = run_health(&lua, &script, &v);
    assert_eq!(status, "quote \" backslash \\ newline \n é|3|2|nil");
    assert_eq!(message, "v");
}

#[test]
fn health_check_matches_every_fixture() {
    let lua = lua_binary();
    let base = repo().join("deploy/argocd");
    let tests: Value =
        serde_yaml::from_str(&std::fs::read_to_string(base.join("health_test.yaml")).unwrap())
            .unwrap();
    let cases = tests["tests"].as_array().expect("tests: list");
    assert!(
        cases.len() >= 10,
        "expected the full fixture set, got {}",
        cases.len()
    );
    let mut statuses = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for case in cases {
        let input = case["inputPath"].as_str().unwrap();
        let fixture: Value =
            serde_yaml::from_str(&std::fs::read_to_string(base.join(input)).unwrap()).unwrap();
        let want = (
            case["healthStatus"]["status"].as_str().unwrap().to_string(),
            case["healthStatus"]["message"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        let got = run_health(&lua, &base.join("health.lua"), &fixture);
        println!("{input}: {} — {}", got.0, got.1);
        statuses.insert(got.0.clone());
        if got != want {
            failures.push(format!("{input}: want {want:?}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "health check mismatches:\n{}",
        failures.join("\n")
    );
    for s in ["Healthy", "Progressing", "Degraded"] {
        assert!(statuses.contains(s), "no fixture yields {s}");
    }
}

#[test]
fn every_fixture_is_listed_in_health_test_yaml() {
    let base = repo().join("deploy/argocd");
    let listed = std::fs::read_to_string(base.join("health_test.yaml")).unwrap();
    for entry in std::fs::read_dir(base.join("testdata")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            listed.contains(&format!("testdata/{name}")),
            "testdata/{name} is not in health_test.yaml"
        );
    }
}

#[test]
fn argocd_cm_snippet_carries_the_script_for_both_kinds() {
    let base = repo().join("deploy/argocd");
    let script = std::fs::read_to_string(base.join("health.lua")).unwrap();
    let cm: Value =
        serde_yaml::from_str(&std::fs::read_to_string(base.join("argocd-cm-health.yaml")).unwrap())
            .unwrap();
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "argocd-cm");
    for kind in ["FhirResourceApp", "FhirClientApp"] {
        let key = format!("resource.customizations.health.fhirapps.io_{kind}");
        assert_eq!(
            cm["data"][&key].as_str(),
            Some(script.as_str()),
            "{key} differs from health.lua"
        );
    }
    // The docs show the same snippet.
    let docs = std::fs::read_to_string(repo().join("docs/argocd.md")).unwrap();
    assert!(docs.contains("resource.customizations.health.fhirapps.io_FhirClientApp"));
    assert!(
        docs.contains(
            script
                .lines()
                .find(|l| l.contains("Stalled=True"))
                .unwrap()
                .trim()
        )
    );
}
