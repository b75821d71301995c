//! Accelo `_filters` (string grammar and JSON form), `_search` and `_fields`.

use crate::common::{vstr, Obj};
use serde_json::Value;
use std::cmp::Ordering;

#[derive(Debug, Clone)]
pub enum FVal {
    Atom(String),
    /// `type(id,...)` inside an object filter such as `against(company(3))`.
    Obj(String, Vec<String>),
}

#[derive(Debug, Clone)]
pub enum Clause {
    Leaf(String, Vec<FVal>),
    Or(Vec<Clause>),
    And(Vec<Clause>),
}

/// Which filters an endpoint accepts ("only the filters listed for an endpoint work there").
pub struct FilterSpec {
    pub basic: &'static [&'static str],
    pub date: &'static [&'static str],
    pub order: &'static [&'static str],
    pub range: &'static [&'static str],
    pub object: &'static [&'static str],
}

// ---------- string grammar ----------

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!(
                "expected '{}' at position {} of _filters",
                c as char, self.i
            ))
        }
    }
    fn token(&mut self) -> String {
        self.ws();
        let start = self.i;
        while self.i < self.s.len() && !b",()".contains(&self.s[self.i]) {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i])
            .trim()
            .to_string()
    }
    fn clauses(&mut self, nested: bool) -> Result<Vec<Clause>, String> {
        let mut out = Vec::new();
        loop {
            out.push(self.clause()?);
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b')') if nested => return Ok(out),
                None if !nested => return Ok(out),
                _ => {
                    return Err(format!(
                        "unexpected character at position {} of _filters",
                        self.i
                    ))
                }
            }
        }
    }
    fn clause(&mut self) -> Result<Clause, String> {
        let name = self.token();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad filter name '{name}'"));
        }
        self.expect(b'(')?;
        let c = match name.to_ascii_uppercase().as_str() {
            "_OR" => Clause::Or(self.clauses(true)?),
            "_AND" => Clause::And(self.clauses(true)?),
            _ => Clause::Leaf(name, self.values()?),
        };
        self.expect(b')')?;
        Ok(c)
    }
    fn values(&mut self) -> Result<Vec<FVal>, String> {
        let mut out = Vec::new();
        if self.peek() == Some(b')') {
            return Ok(out);
        }
        loop {
            let tok = self.token();
            if self.peek() == Some(b'(') {
                self.i += 1;
                let mut ids = Vec::new();
                if self.peek() != Some(b')') {
                    loop {
                        ids.push(self.token());
                        if self.peek() == Some(b',') {
                            self.i += 1;
                        } else {
                            break;
                        }
                    }
                }
                self.expect(b')')?;
                out.push(FVal::Obj(tok, ids));
            } else {
                out.push(FVal::Atom(tok));
            }
            if self.peek() == Some(b',') {
                self.i += 1;
            } else {
                return Ok(out);
            }
        }
    }
}

pub fn parse_str(s: &str) -> Result<Vec<Clause>, String> {
    if s.trim().is_empty() {
        return Ok(vec![]);
    }
    Parser {
        s: s.as_bytes(),
        i: 0,
    }
    .clauses(false)
}

/// JSON form: `{"name": [values], "against": [{"company": [39]}]}`; a string falls back to the grammar.
pub fn parse_json(v: &Value) -> Result<Vec<Clause>, String> {
    let m = match v {
        Value::String(s) => return parse_str(s),
        Value::Object(m) => m,
        Value::Null => return Ok(vec![]),
        _ => return Err("_filters must be an object or a string".into()),
    };
    let mut out = Vec::new();
    for (k, v) in m {
        let upper = k.to_ascii_uppercase();
        if upper == "_OR" || upper == "_AND" {
            let mut inner = Vec::new();
            for x in crate::common::one_or_many(v.clone()) {
                inner.extend(parse_json(&x)?);
            }
            out.push(if upper == "_OR" {
                Clause::Or(inner)
            } else {
                Clause::And(inner)
            });
            continue;
        }
        let mut vals = Vec::new();
        for x in crate::common::one_or_many(v.clone()) {
            match x {
                Value::Object(o) => {
                    for (t, ids) in o {
                        let ids = crate::common::one_or_many(ids)
                            .iter()
                            .filter_map(vstr)
                            .collect();
                        vals.push(FVal::Obj(t, ids));
                    }
                }
                other => vals.push(FVal::Atom(
                    vstr(&other).ok_or(format!("bad value for filter {k}"))?,
                )),
            }
        }
        out.push(Clause::Leaf(k.clone(), vals));
    }
    Ok(out)
}

// ---------- compile & evaluate ----------

#[derive(Debug, Clone, Copy)]
pub enum Op {
    Gt,
    Lt,
    Ge,
    Le,
}

#[derive(Debug, Clone)]
pub enum Test {
    Eq(String, Vec<String>),
    Cmp(String, Op, Vec<i64>),
    Empty(Vec<String>),
    Search(Vec<String>),
    Object(String, Vec<(String, Vec<String>)>),
}

#[derive(Debug, Clone)]
pub enum Compiled {
    Test(Test, bool),
    Or(Vec<Compiled>),
    And(Vec<Compiled>),
}

/// Compiled filters plus the sort order (`order_by_*`, top level only).
pub struct Query {
    pub tests: Vec<Compiled>,
    pub order: Vec<(String, bool)>,
}

fn atoms(name: &str, vals: &[FVal]) -> Result<Vec<String>, String> {
    vals.iter()
        .map(|v| match v {
            FVal::Atom(a) => Ok(a.clone()),
            FVal::Obj(..) => Err(format!("filter {name} takes plain values")),
        })
        .collect()
}

/// A filter repeated within one list keeps only its last instance.
fn last_wins(cs: &[Clause]) -> Vec<&Clause> {
    let mut out: Vec<&Clause> = Vec::new();
    for c in cs {
        if let Clause::Leaf(n, _) = c {
            out.retain(|o| !matches!(o, Clause::Leaf(m, _) if m == n));
        }
        out.push(c);
    }
    out
}

pub fn compile(cs: &[Clause], spec: &FilterSpec) -> Result<Query, String> {
    let mut q = Query {
        tests: vec![],
        order: vec![],
    };
    for c in last_wins(cs) {
        if let Clause::Leaf(n, v) = c {
            if n == "order_by_asc" || n == "order_by_desc" {
                for f in atoms(n, v)? {
                    if !spec.order.contains(&f.as_str()) {
                        return Err(format!("Cannot order by '{f}'"));
                    }
                    q.order.push((f, n == "order_by_asc"));
                }
                continue;
            }
        }
        q.tests.push(compile_one(c, spec, false)?);
    }
    Ok(q)
}

fn compile_one(c: &Clause, spec: &FilterSpec, in_or: bool) -> Result<Compiled, String> {
    match c {
        Clause::Or(cs) if in_or => Err(format!(
            "Nested _OR is not supported ({} clauses)",
            cs.len()
        )),
        Clause::Or(cs) => Ok(Compiled::Or(
            last_wins(cs)
                .into_iter()
                .map(|c| compile_one(c, spec, true))
                .collect::<Result<_, _>>()?,
        )),
        Clause::And(cs) => Ok(Compiled::And(
            last_wins(cs)
                .into_iter()
                .map(|c| compile_one(c, spec, in_or))
                .collect::<Result<_, _>>()?,
        )),
        Clause::Leaf(name, vals) => {
            let (base, neg) = match name.strip_suffix("_not") {
                Some(b) => (b, true),
                None => (name.as_str(), false),
            };
            let nums = || -> Result<Vec<i64>, String> {
                atoms(name, vals)?
                    .iter()
                    .map(|a| {
                        a.parse::<i64>()
                            .map_err(|_| format!("filter {name} needs numbers, got '{a}'"))
                    })
                    .collect()
            };
            if base == "search" {
                return Ok(Compiled::Test(Test::Search(atoms(name, vals)?), neg));
            }
            if base == "empty" {
                return Ok(Compiled::Test(Test::Empty(atoms(name, vals)?), neg));
            }
            if spec.object.contains(&base) {
                let mut objs = Vec::new();
                for v in vals {
                    match v {
                        FVal::Obj(t, ids) => objs.push((t.clone(), ids.clone())),
                        FVal::Atom(a) => {
                            return Err(format!("filter {name} needs type(id) values, got '{a}'"))
                        }
                    }
                }
                return Ok(Compiled::Test(Test::Object(base.into(), objs), neg));
            }
            for (suffix, op) in [("_after", Op::Gt), ("_before", Op::Lt)] {
                if let Some(f) = base.strip_suffix(suffix) {
                    if spec.date.contains(&f) {
                        return Ok(Compiled::Test(Test::Cmp(f.into(), op, nums()?), neg));
                    }
                }
            }
            for (suffix, op) in [
                ("_greater_than_or_equal", Op::Ge),
                ("_less_than_or_equal", Op::Le),
                ("_greater_than", Op::Gt),
                ("_less_than", Op::Lt),
            ] {
                if let Some(f) = base.strip_suffix(suffix) {
                    if spec.range.contains(&f) {
                        return Ok(Compiled::Test(Test::Cmp(f.into(), op, nums()?), neg));
                    }
                }
            }
            if spec.basic.contains(&base) {
                return Ok(Compiled::Test(
                    Test::Eq(base.into(), atoms(name, vals)?),
                    neg,
                ));
            }
            Err(format!("Unknown filter '{name}' for this endpoint"))
        }
    }
}

fn field(rec: &Obj, f: &str) -> Option<String> {
    rec.get(f).and_then(vstr)
}

/// Case-insensitive: every term (split on space/comma) appears in one of `fields`.
pub fn search_match(rec: &Obj, fields: &[&str], terms: &[String]) -> bool {
    let hay: Vec<String> = fields
        .iter()
        .filter_map(|f| field(rec, f))
        .map(|s| s.to_lowercase())
        .collect();
    terms
        .iter()
        .flat_map(|t| t.split([' ', ',']))
        .filter(|t| !t.is_empty())
        .all(|t| hay.iter().any(|h| h.contains(&t.to_lowercase())))
}

fn eval(c: &Compiled, rec: &Obj, search_fields: &[&str]) -> bool {
    match c {
        Compiled::Or(cs) => cs.iter().any(|c| eval(c, rec, search_fields)),
        Compiled::And(cs) => cs.iter().all(|c| eval(c, rec, search_fields)),
        Compiled::Test(t, neg) => {
            let hit = match t {
                Test::Eq(f, vals) => field(rec, f).is_some_and(|v| vals.contains(&v)),
                Test::Cmp(f, op, nums) => field(rec, f)
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| {
                        nums.iter().any(|n| match op {
                            Op::Gt => v > *n,
                            Op::Lt => v < *n,
                            Op::Ge => v >= *n,
                            Op::Le => v <= *n,
                        })
                    }),
                Test::Empty(fs) => fs
                    .iter()
                    .any(|f| matches!(field(rec, f).as_deref(), None | Some("") | Some("0"))),
                Test::Search(terms) => search_match(rec, search_fields, terms),
                Test::Object(name, objs) => {
                    let ty = field(rec, &format!("{name}_type"));
                    let id = field(rec, &format!("{name}_id"));
                    objs.iter().any(|(t, ids)| {
                        ty.as_deref() == Some(t) && id.as_ref().is_some_and(|i| ids.contains(i))
                    })
                }
            };
            hit != *neg
        }
    }
}

impl Query {
    pub fn matches(&self, rec: &Obj, search_fields: &[&str]) -> bool {
        self.tests.iter().all(|c| eval(c, rec, search_fields))
    }

    /// Sorts by the `order_by_*` fields, then id ascending (the default order).
    pub fn sort(&self, recs: &mut [Obj]) {
        let cmp_field = |a: &Obj, b: &Obj, f: &str| -> Ordering {
            match (field(a, f), field(b, f)) {
                (None, None) => Ordering::Equal,
                (None, _) => Ordering::Less,
                (_, None) => Ordering::Greater,
                (Some(x), Some(y)) => match (x.parse::<f64>(), y.parse::<f64>()) {
                    (Ok(p), Ok(q)) => p.partial_cmp(&q).unwrap_or(Ordering::Equal),
                    _ => x.to_lowercase().cmp(&y.to_lowercase()),
                },
            }
        };
        recs.sort_by(|a, b| {
            for (f, asc) in &self.order {
                let o = cmp_field(a, b, f);
                if o != Ordering::Equal {
                    return if *asc { o } else { o.reverse() };
                }
            }
            cmp_field(a, b, "id")
        });
    }
}

// ---------- _fields ----------

#[derive(Debug, Clone)]
pub struct FieldReq {
    pub name: String,
    /// `Some` when written `name(...)`: a nested object is wanted.
    pub sub: Option<Vec<FieldReq>>,
}

pub fn parse_fields(s: &str) -> Result<Vec<FieldReq>, String> {
    fn list(p: &mut Parser, nested: bool) -> Result<Vec<FieldReq>, String> {
        let mut out = Vec::new();
        loop {
            match p.peek() {
                None if !nested => return Ok(out),
                Some(b')') if nested => return Ok(out),
                Some(b',') => {
                    p.i += 1;
                    continue;
                }
                _ => {}
            }
            let name = p.token();
            if name.is_empty() {
                return Err("bad _fields".into());
            }
            let sub = if p.peek() == Some(b'(') {
                p.i += 1;
                let s = list(p, true)?;
                p.expect(b')')?;
                Some(s)
            } else {
                None
            };
            out.push(FieldReq { name, sub });
        }
    }
    list(
        &mut Parser {
            s: s.as_bytes(),
            i: 0,
        },
        false,
    )
}
