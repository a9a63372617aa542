//! OData query options: `$filter` (a useful subset), `$select`, `$top`, `$orderby`, `$count`, `$search`.
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Bool(bool),
    Num(f64),
    Null,
}

#[derive(Debug, Clone)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(String, String, Lit),
    Func(String, String, Lit),
    Any(String, String, Box<Expr>),
    In(String, Vec<Lit>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    LP,
    RP,
    Comma,
    Colon,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = vec![];
    while i < c.len() {
        let ch = c[i];
        match ch {
            ' ' | '\t' => i += 1,
            '(' => {
                out.push(Tok::LP);
                i += 1
            }
            ')' => {
                out.push(Tok::RP);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            ':' => {
                out.push(Tok::Colon);
                i += 1
            }
            '\'' => {
                let mut v = String::new();
                i += 1;
                loop {
                    if i >= c.len() {
                        return Err("unterminated string literal".into());
                    }
                    if c[i] == '\'' {
                        if i + 1 < c.len() && c[i + 1] == '\'' {
                            v.push('\'');
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    v.push(c[i]);
                    i += 1;
                }
                out.push(Tok::Str(v));
            }
            d if d.is_ascii_digit() || d == '-' => {
                let st = i;
                while i < c.len()
                    && (c[i].is_ascii_alphanumeric() || c[i] == '.' || c[i] == '-' || c[i] == ':')
                {
                    i += 1;
                }
                let t: String = c[st..i].iter().collect();
                match t.parse::<f64>() {
                    Ok(n) => out.push(Tok::Num(n)),
                    Err(_) => out.push(Tok::Ident(t)),
                }
            }
            _ => {
                let st = i;
                while i < c.len()
                    && (c[i].is_alphanumeric() || matches!(c[i], '_' | '/' | '.' | '@' | '$' | '#'))
                {
                    i += 1;
                }
                if st == i {
                    return Err(format!("unexpected character '{ch}'"));
                }
                out.push(Tok::Ident(c[st..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

struct P {
    t: Vec<Tok>,
    i: usize,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.t.get(self.i).cloned();
        self.i += 1;
        t
    }
    fn expect(&mut self, t: Tok) -> Result<(), String> {
        if self.next() == Some(t.clone()) {
            Ok(())
        } else {
            Err(format!("expected {t:?}"))
        }
    }
    fn kw(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(x)) if x.eq_ignore_ascii_case(k))
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut l = self.and()?;
        while self.kw("or") {
            self.i += 1;
            l = Expr::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut l = self.unary()?;
        while self.kw("and") {
            self.i += 1;
            l = Expr::And(Box::new(l), Box::new(self.unary()?));
        }
        Ok(l)
    }
    fn unary(&mut self) -> Result<Expr, String> {
        if self.kw("not") {
            self.i += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }
    fn lit(&mut self) -> Result<Lit, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Lit::Str(s)),
            Some(Tok::Num(n)) => Ok(Lit::Num(n)),
            Some(Tok::Ident(x)) if x == "true" => Ok(Lit::Bool(true)),
            Some(Tok::Ident(x)) if x == "false" => Ok(Lit::Bool(false)),
            Some(Tok::Ident(x)) if x == "null" => Ok(Lit::Null),
            Some(Tok::Ident(x)) => Ok(Lit::Str(x)),
            t => Err(format!("expected a literal, found {t:?}")),
        }
    }
    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Tok::LP) => {
                let e = self.or()?;
                self.expect(Tok::RP)?;
                Ok(e)
            }
            Some(Tok::Ident(name)) => {
                let lname = name.to_ascii_lowercase();
                if (lname == "startswith" || lname == "endswith" || lname == "contains")
                    && self.peek() == Some(&Tok::LP)
                {
                    self.i += 1;
                    let prop = match self.next() {
                        Some(Tok::Ident(p)) => p,
                        t => return Err(format!("expected a property, found {t:?}")),
                    };
                    self.expect(Tok::Comma)?;
                    let v = self.lit()?;
                    self.expect(Tok::RP)?;
                    return Ok(Expr::Func(lname, prop, v));
                }
                if let Some(coll) = name
                    .strip_suffix("/any")
                    .or_else(|| name.strip_suffix("/all"))
                {
                    self.expect(Tok::LP)?;
                    let var = match self.next() {
                        Some(Tok::Ident(v)) => v,
                        t => return Err(format!("expected a lambda variable, found {t:?}")),
                    };
                    self.expect(Tok::Colon)?;
                    let inner = self.or()?;
                    self.expect(Tok::RP)?;
                    return Ok(Expr::Any(coll.to_string(), var, Box::new(inner)));
                }
                let op = match self.next() {
                    Some(Tok::Ident(o)) => o.to_ascii_lowercase(),
                    t => return Err(format!("expected an operator, found {t:?}")),
                };
                if op == "in" {
                    self.expect(Tok::LP)?;
                    let mut vals = vec![self.lit()?];
                    while self.peek() == Some(&Tok::Comma) {
                        self.i += 1;
                        vals.push(self.lit()?);
                    }
                    self.expect(Tok::RP)?;
                    return Ok(Expr::In(name, vals));
                }
                if !matches!(op.as_str(), "eq" | "ne" | "ge" | "le" | "gt" | "lt") {
                    return Err(format!("unsupported operator '{op}'"));
                }
                Ok(Expr::Cmp(name, op, self.lit()?))
            }
            t => Err(format!("unexpected token {t:?}")),
        }
    }
}

pub fn parse_filter(s: &str) -> Result<Expr, String> {
    let mut p = P { t: lex(s)?, i: 0 };
    let e = p.or()?;
    if p.i != p.t.len() {
        return Err("unexpected trailing input".into());
    }
    Ok(e)
}

/// What makes a filter an "advanced query" (needs ConsistencyLevel: eventual + $count=true).
pub fn advanced_reason(e: &Expr) -> Option<String> {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => advanced_reason(a).or_else(|| advanced_reason(b)),
        Expr::Not(_) => Some("Operator 'not' is not supported because the required parameters might be missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more information".into()),
        Expr::Cmp(_, op, lit) if op == "ne" || (op == "eq" && *lit == Lit::Null) => Some(format!("Operator '{}' is not supported because the required parameters might be missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more information", if op == "ne" { "ne" } else { "eq null" })),
        Expr::Func(f, _, _) if f == "endswith" => Some("Operator 'endsWith' is not supported because the required parameters might be missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more information".into()),
        Expr::Any(_, _, inner) => advanced_reason(inner),
        _ => None,
    }
}

/// Properties referenced at top level (for filterability checks).
pub fn properties(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            properties(a, out);
            properties(b, out);
        }
        Expr::Not(a) => properties(a, out),
        Expr::Cmp(p, _, _) | Expr::Func(_, p, _) | Expr::In(p, _) => out.push(p.clone()),
        Expr::Any(c, _, _) => out.push(c.clone()),
    }
}

fn get_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path.split('/') {
        let o = cur.as_object()?;
        cur = o
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(seg))
            .map(|(_, v)| v)?;
    }
    Some(cur)
}

fn cmp_lit(v: Option<&Value>, op: &str, lit: &Lit) -> bool {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (v, lit) {
        (None | Some(Value::Null), Lit::Null) => Some(Ordering::Equal),
        (None | Some(Value::Null), _) | (_, Lit::Null) => None,
        (Some(Value::String(a)), Lit::Str(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        (Some(Value::Bool(a)), Lit::Bool(b)) => Some(a.cmp(b)),
        (Some(Value::Number(a)), Lit::Num(b)) => a.as_f64().and_then(|a| a.partial_cmp(b)),
        (Some(Value::String(a)), Lit::Num(b)) => Some(a.cmp(&b.to_string())),
        _ => None,
    };
    match op {
        "eq" => ord == Some(Ordering::Equal),
        "ne" => ord != Some(Ordering::Equal),
        "ge" => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
        "le" => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
        "gt" => ord == Some(Ordering::Greater),
        "lt" => ord == Some(Ordering::Less),
        _ => false,
    }
}

fn eval_in(e: &Expr, v: &Value, var: Option<(&str, &Value)>) -> bool {
    let resolve = |p: &str| -> Option<Value> {
        if let Some((name, el)) = var {
            if p == name {
                return Some(el.clone());
            }
            if let Some(rest) = p.strip_prefix(&format!("{name}/")) {
                return get_path(el, rest).cloned();
            }
        }
        get_path(v, p).cloned()
    };
    match e {
        Expr::And(a, b) => eval_in(a, v, var) && eval_in(b, v, var),
        Expr::Or(a, b) => eval_in(a, v, var) || eval_in(b, v, var),
        Expr::Not(a) => !eval_in(a, v, var),
        Expr::Cmp(p, op, lit) => cmp_lit(resolve(p).as_ref(), op, lit),
        Expr::In(p, lits) => lits.iter().any(|l| cmp_lit(resolve(p).as_ref(), "eq", l)),
        Expr::Func(f, p, Lit::Str(x)) => match resolve(p) {
            Some(Value::String(s)) => {
                let (s, x) = (s.to_lowercase(), x.to_lowercase());
                match f.as_str() {
                    "startswith" => s.starts_with(&x),
                    "endswith" => s.ends_with(&x),
                    _ => s.contains(&x),
                }
            }
            _ => false,
        },
        Expr::Func(..) => false,
        Expr::Any(coll, name, inner) => match resolve(coll) {
            Some(Value::Array(items)) => items
                .iter()
                .any(|el| eval_in(inner, v, Some((name.as_str(), el)))),
            _ => false,
        },
    }
}

pub fn eval(e: &Expr, v: &Value) -> bool {
    eval_in(e, v, None)
}

/// How the text inside a delta query's tokens begins (a list's `$skiptoken` is `skip:N`).
pub const DELTA_TOKEN_PREFIX: &str = "delta:";

/// Parsed query options of a list request.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pub filter: Option<String>,
    pub select: Vec<String>,
    pub top: Option<usize>,
    pub skip: usize,
    pub orderby: Option<String>,
    pub count: bool,
    pub search: Option<String>,
    pub expand: Option<String>,
    /// A delta query's `$skiptoken` and `$deltatoken`, as sent (`graph::delta_token`).
    pub delta_skiptoken: Option<String>,
    pub deltatoken: Option<String>,
}

pub fn parse_query(raw: Option<&str>) -> Result<Query, String> {
    let mut q = Query::default();
    let Some(raw) = raw else { return Ok(q) };
    for pair in raw.split('&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_encoding::percent_decode_str(k)
            .decode_utf8_lossy()
            .to_string();
        let v = percent_encoding::percent_decode_str(&v.replace('+', " "))
            .decode_utf8_lossy()
            .to_string();
        match k.trim_start_matches('$').to_ascii_lowercase().as_str() {
            "filter" => q.filter = Some(v),
            "select" => {
                q.select = v
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            }
            "top" => {
                q.top = Some(
                    v.parse()
                        .map_err(|_| format!("Invalid value '{v}' for $top"))?,
                )
            }
            "skiptoken" => {
                let text = crate::crypto::b64_any(&v).and_then(|b| String::from_utf8(b).ok());
                match text.as_deref().and_then(|s| s.strip_prefix("skip:")) {
                    Some(n) => q.skip = n.parse().map_err(|_| "Invalid $skiptoken")?,
                    // A delta query's page token (`graph::delta_token`), read by its handler.
                    None if text
                        .as_deref()
                        .is_some_and(|s| s.starts_with(DELTA_TOKEN_PREFIX)) =>
                    {
                        q.delta_skiptoken = Some(v)
                    }
                    None => return Err("Invalid $skiptoken".into()),
                }
            }
            "deltatoken" => q.deltatoken = Some(v),
            "orderby" => q.orderby = Some(v),
            "count" => q.count = v.eq_ignore_ascii_case("true"),
            "search" => q.search = Some(v),
            "expand" => q.expand = Some(v),
            _ => {}
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_evaluate() {
        let app = json!({"displayName": "Fhir-Server", "appId": "A1", "tags": ["x", "fhir"], "identifierUris": ["api://a"], "description": null, "web": {"redirectUris": ["https://a"]}});
        let t = |f: &str| eval(&parse_filter(f).unwrap(), &app);
        assert!(t("displayName eq 'fhir-server'"));
        assert!(t("startswith(displayName,'Fhir')"));
        assert!(t("tags/any(t:t eq 'fhir') and appId eq 'A1'"));
        assert!(t("identifierUris/any(x:startswith(x,'api://'))"));
        assert!(t("not(displayName eq 'other')"));
        assert!(t("appId in ('B', 'A1')"));
        assert!(t("description eq null"));
        assert!(t("web/redirectUris/any(u:u eq 'https://a')"));
        assert!(!t(
            "displayName ne 'Fhir-Server' or endswith(displayName,'x')"
        ));
        assert!(parse_filter("displayName eq").is_err());
        assert!(parse_filter("displayName eq 'it''s'").is_ok());
    }

    #[test]
    fn advanced_operators_detected() {
        for f in [
            "displayName ne 'a'",
            "not(displayName eq 'a')",
            "endswith(displayName,'a')",
            "description eq null",
            "tags/any(t:t ne 'x')",
        ] {
            assert!(advanced_reason(&parse_filter(f).unwrap()).is_some(), "{f}");
        }
        for f in [
            "displayName eq 'a'",
            "startswith(displayName,'a')",
            "tags/any(t:t eq 'x')",
            "appId eq 'x' and displayName eq 'y'",
        ] {
            assert!(advanced_reason(&parse_filter(f).unwrap()).is_none(), "{f}");
        }
    }

    #[test]
    fn query_options_parse() {
        let q = parse_query(Some(
            "$filter=appId%20eq%20'x'&$select=id,displayName&$top=5&$count=true",
        ))
        .unwrap();
        assert_eq!(q.filter.as_deref(), Some("appId eq 'x'"));
        assert_eq!(q.select, vec!["id", "displayName"]);
        assert_eq!(q.top, Some(5));
        assert!(q.count);
        assert!(parse_query(Some("$top=abc")).is_err());
    }
}
