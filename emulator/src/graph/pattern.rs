//! Matching a Graph path against a route's pattern (the syntax is described in [`super::routes`]),
//! and what the pattern captured: the ids and alternate keys of the path, the wildcard segment.
use super::odata::split_key;

/// An item's key in the path: `/{id}`, or `(key='value')` (`('value')` is key `id`).
#[derive(Clone, Debug, PartialEq)]
pub enum Ident {
    Id(String),
    Key(String, String),
}

impl Ident {
    /// The id, or the key's value.
    pub fn value(&self) -> &str {
        match self {
            Ident::Id(v) | Ident::Key(_, v) => v,
        }
    }
    /// Whether this is the alternate key `name` (case-insensitive).
    pub fn is_key(&self, name: &str) -> bool {
        matches!(self, Ident::Key(k, _) if k.eq_ignore_ascii_case(name))
    }
}

/// What a pattern captured.
#[derive(Debug, Default)]
pub struct Params {
    ids: Vec<(&'static str, Ident)>,
    wild: Option<String>,
    /// The first segment's name (for the answer to a path nothing matches).
    pub root: Option<String>,
}

impl Params {
    /// What [`super::routes::find`] answers when no pattern matches: only the root segment.
    pub fn unmatched(root: Option<String>) -> Self {
        Params {
            root,
            ..Params::default()
        }
    }
    /// The `{name}` of the route's pattern (a route names only what its pattern has).
    pub fn id(&self, name: &str) -> &Ident {
        self.get(name)
            .unwrap_or_else(|| panic!("route pattern has no {{{name}}}"))
    }
    pub fn get(&self, name: &str) -> Option<&Ident> {
        self.ids.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
    /// The segment the pattern's last `*` matched, as the request spelled it.
    pub fn wild(&self) -> &str {
        self.wild.as_deref().unwrap_or("")
    }
}

pub fn matches(pattern: &'static str, segs: &[String]) -> Option<Params> {
    let mut out = Params::default();
    let mut next = 0;
    // The key of the last segment matched, for a `{p}` that follows.
    let mut key: Option<(String, String)> = None;
    for p in pattern.split('/') {
        if let Some(name) = braced(p) {
            let ident = match key.take() {
                Some((k, v)) => Ident::Key(k, v),
                None => {
                    let s = segs.get(next)?;
                    next += 1;
                    Ident::Id(s.clone())
                }
            };
            out.ids.push((name, ident));
            continue;
        }
        let seg = segs.get(next)?;
        next += 1;
        let (name, seg_key) = split_key(seg);
        let (lit, key_pattern) = match p.find('(') {
            Some(open) => (&p[..open], Some(&p[open + 1..p.len() - 1])),
            None => (p, None),
        };
        if !literal_matches(lit, &name) {
            return None;
        }
        if lit.ends_with('*') {
            out.wild = Some(seg.clone());
        }
        key = None;
        match key_pattern {
            None => key = seg_key,
            Some(kp) => {
                let (k, v) = seg_key?;
                let (want, pname) = match kp.split_once('=') {
                    Some((want, pname)) => (Some(want), pname),
                    None => (None, kp),
                };
                if want.is_some_and(|w| !w.eq_ignore_ascii_case(&k)) {
                    return None;
                }
                out.ids.push((braced(pname)?, Ident::Key(k, v)));
            }
        }
    }
    Some(out)
}

/// `{name}` -> `name`
pub fn braced(p: &'static str) -> Option<&'static str> {
    p.strip_prefix('{')?.strip_suffix('}')
}

fn literal_matches(lit: &str, name: &str) -> bool {
    if lit == "*" {
        return true;
    }
    if let Some(prefix) = lit.strip_suffix('*') {
        return name.starts_with(prefix);
    }
    lit.split('|').any(|alt| alt == name)
}
