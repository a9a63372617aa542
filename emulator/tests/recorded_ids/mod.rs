//! Recorded id -> emulator id, learned from each pair of bodies (recorded response, emulator response).
//!
//! Elements of a collection are paired by what they are, not where they stand: Graph returns some
//! collections in an order of its own (password credentials newest first, for one), so pairing the n-th
//! recorded element with the n-th emulator element would map an id to another object's id.
use serde_json::Value;
use std::collections::HashMap;

/// Properties whose GUID value the emulator chooses (so it differs from the recorded one).
const ID_KEYS: &[&str] = &[
    "id",
    "appId",
    "keyId",
    "resourceAppId",
    "resourceId",
    "principalId",
    "clientId",
];
/// Properties that name an element of a collection in the client's own words.
const NATURAL_KEYS: &[&str] = &[
    "displayName",
    "value",
    "name",
    "uniqueName",
    "mailNickname",
    "userPrincipalName",
    "scope",
];

pub fn is_guid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok()
}

/// Learn recorded-id -> emulator-id pairs from two bodies of the same shape.
pub fn learn_ids(rec: &Value, ours: &Value, map: &mut HashMap<String, String>) {
    match (rec, ours) {
        (Value::Object(r), Value::Object(o)) => {
            for (k, rv) in r {
                if let Some(ov) = o.get(k) {
                    learn_ids(rv, ov, map);
                }
            }
        }
        (Value::Array(r), Value::Array(o)) => {
            for (rv, ov) in pair_elements(r, o, map) {
                learn_ids(rv, ov, map);
            }
        }
        (Value::String(r), Value::String(o)) if is_guid(r) && is_guid(o) && r != o => {
            map.entry(r.to_ascii_lowercase())
                .or_insert_with(|| o.clone());
        }
        _ => {}
    }
}

/// Pairs each recorded element with the emulator element that stands for the same thing: first by an
/// id already learned, then by a natural key that names exactly one element on each side. What is left
/// (scalars, objects nothing identifies) pairs in order when as many are left on each side.
fn pair_elements<'a>(
    rec: &'a [Value],
    ours: &'a [Value],
    map: &HashMap<String, String>,
) -> Vec<(&'a Value, &'a Value)> {
    let mut taken = vec![false; ours.len()];
    let mut pairs = vec![];
    let mut unpaired = vec![];
    for (i, r) in rec.iter().enumerate() {
        match counterpart(r, rec, ours, &taken, map) {
            Some(j) => {
                taken[j] = true;
                pairs.push((r, &ours[j]));
            }
            None => unpaired.push(i),
        }
    }
    let free: Vec<usize> = (0..ours.len()).filter(|j| !taken[*j]).collect();
    if free.len() == unpaired.len() {
        for (i, j) in unpaired.into_iter().zip(free) {
            pairs.push((&rec[i], &ours[j]));
        }
    }
    pairs
}

fn counterpart(
    r: &Value,
    rec: &[Value],
    ours: &[Value],
    taken: &[bool],
    map: &HashMap<String, String>,
) -> Option<usize> {
    let free = |j: &usize| !taken[*j];
    for k in ID_KEYS {
        if let Some(mapped) = r[*k]
            .as_str()
            .and_then(|v| map.get(&v.to_ascii_lowercase()))
        {
            let found = (0..ours.len())
                .filter(free)
                .find(|&j| ours[j][*k].as_str() == Some(mapped.as_str()));
            if found.is_some() {
                return found;
            }
        }
    }
    for k in NATURAL_KEYS {
        let Some(v) = r[*k].as_str().filter(|v| !is_guid(v)) else {
            continue;
        };
        let named = |list: &[Value]| list.iter().filter(|e| e[*k].as_str() == Some(v)).count();
        if named(rec) != 1 || named(ours) != 1 {
            continue;
        }
        return (0..ours.len())
            .filter(free)
            .find(|&j| ours[j][*k].as_str() == Some(v));
    }
    None
}

pub fn substitute(s: &str, map: &HashMap<String, String>) -> String {
    let mut out = s.to_string();
    for (k, v) in map {
        out = out.replace(k.as_str(), v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const R1: &str = "11111111-1111-1111-1111-111111111111";
    const R2: &str = "22222222-2222-2222-2222-222222222222";
    const O1: &str = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";
    const O2: &str = "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb";

    #[test]
    fn reordered_elements_pair_by_natural_key() {
        let rec = json!({"appRoles": [{"id": R1, "value": "read"}, {"id": R2, "value": "write"}]});
        let ours = json!({"appRoles": [{"id": O2, "value": "write"}, {"id": O1, "value": "read"}]});
        let mut map = HashMap::new();
        learn_ids(&rec, &ours, &mut map);
        assert_eq!(map.get(R1).map(String::as_str), Some(O1));
        assert_eq!(map.get(R2).map(String::as_str), Some(O2));
    }

    #[test]
    fn reordered_elements_pair_by_an_id_already_learned() {
        let mut map = HashMap::from([(R1.to_string(), O1.to_string())]);
        let rec = json!([{"keyId": R1, "hint": "a"}, {"keyId": R2, "hint": "b"}]);
        let ours = json!([{"keyId": O2, "hint": "b"}, {"keyId": O1, "hint": "a"}]);
        learn_ids(&rec, &ours, &mut map);
        assert_eq!(map.get(R2).map(String::as_str), Some(O2));
    }

    #[test]
    fn unnamed_elements_of_lists_of_other_lengths_are_not_paired() {
        let rec = json!([{"id": R1}, {"id": R2}]);
        let ours = json!([{"id": O1}]);
        let mut map = HashMap::new();
        learn_ids(&rec, &ours, &mut map);
        assert!(map.is_empty());
    }
}
