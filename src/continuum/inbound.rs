//! Parser for Continuum's callback bodies (continuum-protocol.md section 1): content type and
//! size checks, JSON and XML shapes (one ticket, a batch, a wrapped batch), field aliases,
//! datetimes, comments and "notify" deliveries. Pure: no I/O, no storage decisions.
//!
//! Both formats are first read into a small format-neutral tree ([`Raw`]) so that the ticket
//! rules exist once.

use std::collections::BTreeMap;

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::Reader;
use serde_json::Value;

use super::datetime::parse_datetime;
use super::fields::{CommentField, Field};
use super::ticket::{TicketComment, TicketSnapshot};

/// Larger bodies are refused with `413` before anything is parsed.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// XML nesting limit: the tree is built without recursion, but converting unknown nested
/// elements to JSON recurses, so a pathological body must not get that far.
const MAX_XML_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BodyFormat {
    Json,
    Xml,
}

// Unboxed on purpose: entries are few per request and short-lived; matching stays simple.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum TicketEntry {
    /// A ticket carrying more than its id.
    Snapshot(TicketSnapshot),
    /// Only a ticket id: "this ticket changed", the bridge pulls it with `GET /tickets/{id}`.
    Notify { ticket_id: String },
    /// A ticket that cannot be used; `index` is its position in the delivery (0-based).
    Invalid { index: usize, ticket_id: Option<String>, reason: String },
}

impl TicketEntry {
    pub fn ticket_id(&self) -> Option<&str> {
        match self {
            TicketEntry::Snapshot(t) => Some(&t.ticket_id),
            TicketEntry::Notify { ticket_id } => Some(ticket_id),
            TicketEntry::Invalid { ticket_id, .. } => ticket_id.as_deref(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub format: BodyFormat,
    /// In delivery order. May be empty (`[]`, `<Tickets/>`): the caller decides what that means.
    pub entries: Vec<TicketEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    #[error("body larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("unsupported content type: send application/json or application/xml")]
    UnsupportedMedia,
    #[error("XML with a DOCTYPE or entity declarations is not accepted")]
    ForbiddenDtd,
    #[error("malformed body: {0}")]
    Malformed(String),
}

impl InboundError {
    pub fn http_status(&self) -> u16 {
        match self {
            InboundError::TooLarge => 413,
            InboundError::UnsupportedMedia => 415,
            InboundError::ForbiddenDtd | InboundError::Malformed(_) => 400,
        }
    }
}

fn malformed(msg: impl Into<String>) -> InboundError {
    InboundError::Malformed(msg.into())
}

/// Parses one callback body. Order of checks: size, declared content type, emptiness, sniffing.
pub fn parse_delivery(content_type: Option<&str>, body: &[u8]) -> Result<Delivery, InboundError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(InboundError::TooLarge);
    }
    let declared = declared_format(content_type)?;
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let Some(&first) = body.iter().find(|b| !b.is_ascii_whitespace()) else {
        return Err(malformed("empty body"));
    };
    let format = match (declared, first) {
        (Some(f), _) => f,
        (None, b'<') => BodyFormat::Xml,
        (None, b'{' | b'[') => BodyFormat::Json,
        (None, _) => return Err(InboundError::UnsupportedMedia),
    };
    let tickets = match format {
        BodyFormat::Json => json_tickets(body)?,
        BodyFormat::Xml => xml_tickets(body)?,
    };
    let entries = tickets.into_iter().enumerate().map(|(i, raw)| parse_ticket(i, raw)).collect();
    Ok(Delivery { format, entries })
}

/// `Ok(None)` = missing or generic content type: sniff the body.
fn declared_format(content_type: Option<&str>) -> Result<Option<BodyFormat>, InboundError> {
    let Some(ct) = content_type else { return Ok(None) };
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        // Generic types; form-urlencoded is what `curl -d` and many HTTP clients send by default.
        "" | "*/*" | "text/plain" | "application/octet-stream"
        | "application/x-www-form-urlencoded" => Ok(None),
        "application/json" => Ok(Some(BodyFormat::Json)),
        "application/xml" | "text/xml" => Ok(Some(BodyFormat::Xml)),
        m if m.ends_with("+json") => Ok(Some(BodyFormat::Json)),
        m if m.ends_with("+xml") => Ok(Some(BodyFormat::Xml)),
        _ => Err(InboundError::UnsupportedMedia),
    }
}

/// `GET /continuum/{user}?TicketID=123`: the ticket id of a notify callback, if any
/// (any TicketID alias, names case-insensitive, url-decoded, blank = none).
pub fn notify_from_query(query: &str) -> Option<String> {
    let decode = |s: &str| urlencoding::decode(&s.replace('+', " ")).ok().map(|c| c.into_owned());
    query.trim_start_matches('?').split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        if Field::from_name(&decode(name)?) != Some(Field::TicketId) {
            return None;
        }
        let value = decode(value)?;
        let value = value.trim();
        (!value.is_empty()).then(|| value.to_string())
    })
}

// ---------------------------------------------------------------------------------------------
// Format-neutral tree

/// A delivered value, with map entries in delivery order (XML) and repeated names kept.
#[derive(Debug, Clone, PartialEq)]
enum Raw {
    Null,
    /// JSON string or XML text content (untrimmed).
    Text(String),
    /// JSON number or boolean, kept as such for `unknown_fields`.
    Scalar(Value),
    Map(Vec<(String, Raw)>),
    List(Vec<Raw>),
}

impl Raw {
    fn from_json(v: Value) -> Raw {
        match v {
            Value::Null => Raw::Null,
            Value::String(s) => Raw::Text(s),
            Value::Array(a) => Raw::List(a.into_iter().map(Raw::from_json).collect()),
            Value::Object(o) => {
                Raw::Map(o.into_iter().map(|(k, v)| (k, Raw::from_json(v))).collect())
            }
            scalar => Raw::Scalar(scalar),
        }
    }

    /// Absent per the contract: null, blank text, an empty list or element.
    fn is_absent(&self) -> bool {
        match self {
            Raw::Null => true,
            Raw::Text(s) => s.trim().is_empty(),
            Raw::Map(m) => m.is_empty(),
            Raw::List(l) => l.is_empty(),
            Raw::Scalar(_) => false,
        }
    }

    /// A scalar's trimmed text (numeric ids become strings); `Err` for lists and maps.
    fn text(&self) -> Result<Option<String>, ()> {
        match self {
            r if r.is_absent() => Ok(None),
            Raw::Text(s) => Ok(Some(s.trim().to_string())),
            Raw::Scalar(v) => Ok(Some(v.to_string())),
            _ => Err(()),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Raw::Null => Value::Null,
            Raw::Text(s) => Value::String(s.trim().to_string()),
            Raw::Scalar(v) => v.clone(),
            Raw::List(l) => Value::Array(l.iter().map(Raw::to_json).collect()),
            Raw::Map(m) => {
                let mut o = serde_json::Map::new();
                for (k, v) in m {
                    match o.get_mut(k) {
                        Some(old) => push_repeated(old, v.to_json()),
                        None => {
                            o.insert(k.clone(), v.to_json());
                        }
                    }
                }
                Value::Object(o)
            }
        }
    }

    /// How a value is quoted in an error reason.
    fn display(&self) -> String {
        match self {
            Raw::Text(s) => s.trim().to_string(),
            other => other.to_json().to_string(),
        }
    }
}

/// A name delivered twice (repeated XML element): keep every value, as an array.
fn push_repeated(old: &mut Value, v: Value) {
    match old {
        Value::Array(a) => a.push(v),
        _ => *old = Value::Array(vec![old.take(), v]),
    }
}

fn keep_unknown(unknown: &mut BTreeMap<String, Value>, name: String, v: Value) {
    match unknown.get_mut(&name) {
        Some(old) => push_repeated(old, v),
        None => {
            unknown.insert(name, v);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shapes: one ticket, a batch, a wrapped batch

/// `Some(true)` for batch wrappers, `Some(false)` for single-ticket wrappers.
fn wrapper_kind(name: &str) -> Option<bool> {
    let n = name.trim();
    if ["Tickets", "Tasks"].iter().any(|w| w.eq_ignore_ascii_case(n)) {
        Some(true)
    } else if ["Ticket", "Task"].iter().any(|w| w.eq_ignore_ascii_case(n)) {
        Some(false)
    } else {
        None
    }
}

/// A map is a wrapper when it has a wrapper key and no ticket field (so a ticket with an
/// unknown `Ticket` field stays a ticket).
fn is_wrapper(pairs: &[(String, Raw)]) -> bool {
    pairs.iter().all(|(k, _)| Field::from_name(k).is_none())
        && pairs.iter().any(|(k, _)| wrapper_kind(k).is_some())
}

/// Flattens wrappers and lists into the list of ticket values, in delivery order.
fn collect_tickets(raw: Raw, depth: usize, out: &mut Vec<Raw>) -> Result<(), InboundError> {
    if depth > 4 {
        return Err(malformed("tickets wrapped too deeply"));
    }
    match raw {
        Raw::List(items) => {
            for item in items {
                match item {
                    Raw::Map(p) if is_wrapper(&p) => collect_tickets(Raw::Map(p), depth + 1, out)?,
                    other => out.push(other),
                }
            }
        }
        Raw::Map(pairs) if is_wrapper(&pairs) => {
            for (k, v) in pairs {
                // Non-wrapper keys next to a wrapper (a count, a timestamp) are envelope metadata.
                let Some(batch) = wrapper_kind(&k) else { continue };
                match v {
                    Raw::Map(_) | Raw::List(_) => collect_tickets(v, depth + 1, out)?,
                    v if v.is_absent() && batch => {}
                    _ if batch => return Err(malformed(format!("'{k}' is not a list of tickets"))),
                    v => out.push(v), // `<Ticket/>`: a ticket without an id, reported as such
                }
            }
        }
        other => out.push(other),
    }
    Ok(())
}

fn json_tickets(body: &[u8]) -> Result<Vec<Raw>, InboundError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| malformed(format!("invalid JSON: {e}")))?;
    let raw = Raw::from_json(v);
    if !matches!(raw, Raw::Map(_) | Raw::List(_)) {
        return Err(malformed("expected a JSON object or an array of objects"));
    }
    let mut out = Vec::new();
    collect_tickets(raw, 0, &mut out)?;
    Ok(out)
}

fn xml_tickets(body: &[u8]) -> Result<Vec<Raw>, InboundError> {
    if declares_dtd(body) {
        return Err(InboundError::ForbiddenDtd);
    }
    let (name, raw) = xml_tree(body)?;
    if wrapper_kind(&name).is_none() {
        // Any other root (`<TaskInfo>`, ...) is taken to be the ticket itself.
        return Ok(vec![raw]);
    }
    let mut out = Vec::new();
    collect_tickets(Raw::Map(vec![(name, raw)]), 0, &mut out)?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// XML

/// `<!DOCTYPE` or `<!ENTITY` outside CDATA sections and comments. Checked on the raw bytes
/// before parsing, so nothing declared in a DTD is ever read, let alone expanded. (CDATA is
/// skipped because alert descriptions may legitimately quote HTML documents.)
fn declares_dtd(body: &[u8]) -> bool {
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let starts_ci = |s: &[u8], p: &[u8]| s.len() >= p.len() && s[..p.len()].eq_ignore_ascii_case(p);
    let mut i = 0;
    while let Some(off) = body[i..].iter().position(|&b| b == b'<') {
        let at = i + off;
        let rest = &body[at..];
        let skip_past =
            |open: usize, close: &[u8]| find(&rest[open..], close).map(|p| at + open + p + close.len());
        let next = if rest.starts_with(b"<![CDATA[") {
            skip_past(9, b"]]>")
        } else if rest.starts_with(b"<!--") {
            skip_past(4, b"-->")
        } else if starts_ci(rest, b"<!DOCTYPE") || starts_ci(rest, b"<!ENTITY") {
            return true;
        } else {
            Some(at + 1)
        };
        match next {
            Some(n) => i = n,
            None => return false, // unterminated section: the parser rejects it
        }
    }
    false
}

struct Frame {
    name: String,
    children: Vec<(String, Raw)>,
    text: String,
}

/// Reads the document into (root name, value). Elements with child elements become maps
/// (their stray text is ignored), others text; attributes are ignored; names lose any prefix.
fn xml_tree(body: &[u8]) -> Result<(String, Raw), InboundError> {
    let mut reader = Reader::from_reader(body);
    let mut buf = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<(String, Raw)> = None;
    let enc = |e: quick_xml::encoding::EncodingError| malformed(format!("invalid XML text: {e}"));

    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| {
            malformed(format!("invalid XML at byte {}: {e}", reader.error_position()))
        })?;
        let text = match event {
            // Unreachable after `declares_dtd`, but refused here too should that scan miss one.
            Event::DocType(_) => return Err(InboundError::ForbiddenDtd),
            Event::Start(e) => {
                if root.is_some() {
                    return Err(malformed("more than one root element"));
                }
                if stack.len() >= MAX_XML_DEPTH {
                    return Err(malformed("XML nested too deeply"));
                }
                let name = local_name(&e)?;
                stack.push(Frame { name, children: Vec::new(), text: String::new() });
                None
            }
            Event::Empty(e) => {
                close(&mut stack, &mut root, local_name(&e)?, Raw::Text(String::new()))?;
                None
            }
            Event::End(_) => {
                let f = stack.pop().ok_or_else(|| malformed("unexpected closing tag"))?;
                let raw =
                    if f.children.is_empty() { Raw::Text(f.text) } else { Raw::Map(f.children) };
                close(&mut stack, &mut root, f.name, raw)?;
                None
            }
            Event::Text(t) => Some(t.xml_content().map_err(enc)?.into_owned()),
            Event::CData(c) => Some(c.xml_content().map_err(enc)?.into_owned()),
            Event::GeneralRef(r) => Some(resolve_ref(&r)?),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => None,
            Event::Eof => break,
        };
        if let Some(t) = text {
            match stack.last_mut() {
                Some(f) => f.text.push_str(&t),
                None if t.trim().is_empty() => {}
                None => return Err(malformed("text outside the root element")),
            }
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err(malformed("unexpected end of XML (unclosed element)"));
    }
    root.ok_or_else(|| malformed("no XML element"))
}

fn close(
    stack: &mut [Frame],
    root: &mut Option<(String, Raw)>,
    name: String,
    raw: Raw,
) -> Result<(), InboundError> {
    match stack.last_mut() {
        Some(parent) => parent.children.push((name, raw)),
        None if root.is_some() => return Err(malformed("more than one root element")),
        None => *root = Some((name, raw)),
    }
    Ok(())
}

fn local_name(e: &BytesStart) -> Result<String, InboundError> {
    std::str::from_utf8(e.local_name().as_ref())
        .map(str::to_string)
        .map_err(|_| malformed("element name is not UTF-8"))
}

/// Character references and the five predefined entities; anything else (`&xxe;`) is refused:
/// without a DTD it cannot have a meaning.
fn resolve_ref(r: &BytesRef) -> Result<String, InboundError> {
    let char_ref = r.resolve_char_ref();
    if let Some(c) = char_ref.map_err(|e| malformed(format!("bad character reference: {e}")))? {
        return Ok(c.to_string());
    }
    let name = r.decode().map_err(|e| malformed(format!("bad entity reference: {e}")))?;
    quick_xml::escape::resolve_predefined_entity(&name)
        .map(str::to_string)
        .ok_or_else(|| malformed(format!("unknown entity '&{name};'")))
}

// ---------------------------------------------------------------------------------------------
// One ticket

fn cannot_parse(name: &str, value: &str) -> String {
    format!("{}: cannot parse '{}'", name.trim(), value)
}

/// Sets a first-delivered value; a later *different* value for the same field (two aliases, a
/// repeated element) is not silently lost: the caller keeps it as an unknown field.
fn set_first<T: PartialEq>(slot: &mut Option<T>, v: T) -> bool {
    match slot {
        None => {
            *slot = Some(v);
            true
        }
        Some(old) => *old == v,
    }
}

fn parse_ticket(index: usize, raw: Raw) -> TicketEntry {
    let pairs = match raw {
        Raw::Map(p) => p,
        r if r.is_absent() => Vec::new(),
        _ => {
            let reason = "ticket is not an object".into();
            return TicketEntry::Invalid { index, ticket_id: None, reason };
        }
    };
    let mut t = TicketSnapshot::default();
    let mut id = None;
    let mut errors = Vec::new();
    for (name, value) in pairs {
        let Some(field) = Field::from_name(&name) else {
            if !value.is_absent() {
                keep_unknown(&mut t.unknown_fields, name, value.to_json());
            }
            continue;
        };
        if field == Field::Comments {
            parse_comments(&name, &value, &mut t, &mut errors);
            continue;
        }
        let text = match value.text() {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(()) => {
                errors.push(cannot_parse(&name, &value.display()));
                continue;
            }
        };
        let kept = if field.is_datetime() {
            let slot = if field == Field::CreatedDate { &mut t.created } else { &mut t.updated };
            match parse_datetime(&text) {
                Ok(d) => set_first(slot, d),
                Err(_) => {
                    errors.push(cannot_parse(&name, &text));
                    true
                }
            }
        } else {
            let slot = match field {
                Field::TicketId => &mut id,
                Field::Subject => &mut t.subject,
                Field::Description => &mut t.description,
                Field::Status => &mut t.status,
                Field::Priority => &mut t.priority,
                Field::TicketType => &mut t.ticket_type,
                Field::AssignTo => &mut t.assign_to,
                Field::SiteCode => &mut t.site_code,
                Field::SiteName => &mut t.site_name,
                Field::MemberCode => &mut t.member_code,
                Field::Device => &mut t.device,
                Field::RegId => &mut t.reg_id,
                Field::Event => &mut t.event,
                Field::CreatedDate | Field::UpdatedDate | Field::Comments => {
                    unreachable!("handled above")
                }
            };
            set_first(slot, text)
        };
        if !kept {
            keep_unknown(&mut t.unknown_fields, name, value.to_json());
        }
    }
    let Some(ticket_id) = id else {
        errors.insert(0, "TicketID missing".into());
        return TicketEntry::Invalid { index, ticket_id: None, reason: errors.join("; ") };
    };
    if !errors.is_empty() {
        let reason = errors.join("; ");
        return TicketEntry::Invalid { index, ticket_id: Some(ticket_id), reason };
    }
    t.ticket_id = ticket_id;
    // Notify: nothing but the id carries a value (null and blank fields count as absent).
    if t == (TicketSnapshot { ticket_id: t.ticket_id.clone(), ..Default::default() }) {
        return TicketEntry::Notify { ticket_id: t.ticket_id };
    }
    TicketEntry::Snapshot(t)
}

// ---------------------------------------------------------------------------------------------
// Comments

/// Flattens `Comments` into comment values: a list, a single comment object, a wrapper such as
/// XML's `<Comments><Comment>…</Comment></Comments>` (any child names), or plain text (a body).
fn collect_comments<'a>(value: &'a Raw, out: &mut Vec<&'a Raw>) -> Result<(), ()> {
    match value {
        v if v.is_absent() => {}
        Raw::Text(_) => out.push(value),
        Raw::Scalar(_) => return Err(()),
        Raw::List(items) => items.iter().try_for_each(|i| collect_comments(i, out))?,
        // One comment has a scalar comment field; otherwise the map wraps comments. `Comment` is
        // both a Body alias and XML's item name, so on its own it does not make a comment:
        // `<Comments><Comment>a</Comment><Comment>b</Comment></Comments>` is two comments.
        Raw::Map(pairs)
            if pairs.iter().any(|(k, v)| {
                CommentField::from_name(k).is_some()
                    && !k.trim().eq_ignore_ascii_case("Comment")
                    && !matches!(v, Raw::Map(_) | Raw::List(_))
            }) =>
        {
            out.push(value)
        }
        Raw::Map(pairs) => pairs.iter().try_for_each(|(_, v)| collect_comments(v, out))?,
        Raw::Null => {}
    }
    Ok(())
}

fn parse_flag(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" => Some(true),
        "false" | "0" | "no" | "n" => Some(false),
        _ => None,
    }
}

fn parse_comments(key: &str, value: &Raw, t: &mut TicketSnapshot, errors: &mut Vec<String>) {
    let mut items = Vec::new();
    if collect_comments(value, &mut items).is_err() {
        errors.push(cannot_parse(key, &value.display()));
        return;
    }
    for (i, item) in items.into_iter().enumerate() {
        // Names used in reasons and for unknown comment fields, e.g. `Notes[1].Foo`.
        let label = |name: &str| format!("{}[{i}].{}", key.trim(), name.trim());
        let pairs: Vec<(String, Raw)> = match item {
            Raw::Text(s) => vec![("Body".into(), Raw::Text(s.clone()))],
            Raw::Map(p) => p.clone(),
            _ => continue,
        };
        let (mut c, mut body) = (TicketComment::default(), None);
        let (mut errs, mut unknown) = (Vec::new(), Vec::new());
        for (name, v) in pairs {
            let Some(field) = CommentField::from_name(&name) else {
                if !v.is_absent() {
                    unknown.push((label(&name), v.to_json()));
                }
                continue;
            };
            let text = match v.text() {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                Err(()) => {
                    errs.push(cannot_parse(&label(&name), &v.display()));
                    continue;
                }
            };
            let kept = match field {
                CommentField::CommentId => set_first(&mut c.comment_id, text),
                CommentField::Body => set_first(&mut body, text),
                CommentField::Author => set_first(&mut c.author, text),
                CommentField::CreatedDate => match parse_datetime(&text) {
                    Ok(d) => set_first(&mut c.created, d),
                    Err(_) => {
                        errs.push(cannot_parse(&label(&name), &text));
                        true
                    }
                },
                CommentField::Internal => match parse_flag(&text) {
                    Some(b) => {
                        c.internal |= b;
                        true
                    }
                    None => {
                        errs.push(cannot_parse(&label(&name), &text));
                        true
                    }
                },
            };
            if !kept {
                unknown.push((label(&name), v.to_json()));
            }
        }
        // A comment without a body has nothing to sync: dropped with whatever else it had.
        let Some(body) = body else { continue };
        c.body = body;
        errors.extend(errs);
        for (k, v) in unknown {
            keep_unknown(&mut t.unknown_fields, k, v);
        }
        t.comments.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn json(body: &str) -> Delivery {
        parse_delivery(Some("application/json"), body.as_bytes()).unwrap()
    }
    fn xml(body: &str) -> Delivery {
        parse_delivery(Some("application/xml"), body.as_bytes()).unwrap()
    }
    fn one(d: Delivery) -> TicketEntry {
        assert_eq!(d.entries.len(), 1, "{d:?}");
        d.entries.into_iter().next().unwrap()
    }
    fn snap(e: TicketEntry) -> TicketSnapshot {
        match e {
            TicketEntry::Snapshot(t) => t,
            other => panic!("expected a snapshot, got {other:?}"),
        }
    }
    fn invalid_reason(e: &TicketEntry) -> &str {
        match e {
            TicketEntry::Invalid { reason, .. } => reason,
            other => panic!("expected invalid, got {other:?}"),
        }
    }
    fn err(ct: Option<&str>, body: &str) -> InboundError {
        parse_delivery(ct, body.as_bytes()).unwrap_err()
    }

    /// Every (alias, value, accessor) triple: the alias carries a value that shows up in the
    /// canonical field.
    type Getter = fn(&TicketSnapshot) -> Option<String>;
    fn alias_cases() -> Vec<(&'static str, Getter)> {
        fn s(o: &Option<String>) -> Option<String> {
            o.clone()
        }
        vec![
            ("Subject", |t| s(&t.subject)), ("TaskSubject", |t| s(&t.subject)),
            ("Title", |t| s(&t.subject)),
            ("Description", |t| s(&t.description)), ("TaskDesc", |t| s(&t.description)),
            ("TaskDescription", |t| s(&t.description)),
            ("Status", |t| s(&t.status)), ("StatusName", |t| s(&t.status)),
            ("IncidentStatus", |t| s(&t.status)),
            ("Priority", |t| s(&t.priority)), ("PriorityName", |t| s(&t.priority)),
            ("TicketType", |t| s(&t.ticket_type)), ("Type", |t| s(&t.ticket_type)),
            ("IncidentType", |t| s(&t.ticket_type)),
            ("AssignTo", |t| s(&t.assign_to)), ("AssignedTo", |t| s(&t.assign_to)),
            ("AssignTaskTo", |t| s(&t.assign_to)),
            ("SiteCode", |t| s(&t.site_code)), ("SiteName", |t| s(&t.site_name)),
            ("MemberCode", |t| s(&t.member_code)), ("PartnerCode", |t| s(&t.member_code)),
            ("Device", |t| s(&t.device)), ("ResourceName", |t| s(&t.device)),
            ("MachineName", |t| s(&t.device)), ("ResFriendlyName", |t| s(&t.device)),
            ("RegID", |t| s(&t.reg_id)),
            ("Event", |t| s(&t.event)), ("Action", |t| s(&t.event)),
            ("CreatedDate", |t| t.created.map(|d| d.to_rfc3339())),
            ("CreatedOn", |t| t.created.map(|d| d.to_rfc3339())),
            ("TaskDateTime", |t| t.created.map(|d| d.to_rfc3339())),
            ("UpdatedDate", |t| t.updated.map(|d| d.to_rfc3339())),
            ("UpdatedOn", |t| t.updated.map(|d| d.to_rfc3339())),
            ("LastModified", |t| t.updated.map(|d| d.to_rfc3339())),
        ]
    }

    fn value_for(alias: &str) -> &'static str {
        if alias.contains("Date") || alias.ends_with("On") || alias == "LastModified" {
            "2026-12-04T09:15:00Z"
        } else {
            "some value"
        }
    }
    fn expected_for(alias: &str) -> String {
        if value_for(alias).starts_with("2026") { "2026-12-04T09:15:00+00:00".into() } else { "some value".into() }
    }

    #[test]
    fn every_alias_in_json() {
        for (alias, get) in alias_cases() {
            for name in [alias.to_string(), alias.to_lowercase(), alias.to_uppercase()] {
                let body = serde_json::json!({ "TicketID": "1", name.clone(): value_for(alias) });
                let t = snap(one(json(&body.to_string())));
                assert_eq!(get(&t), Some(expected_for(alias)), "{name}");
                assert!(t.unknown_fields.is_empty(), "{name}");
            }
        }
    }

    #[test]
    fn every_alias_in_xml() {
        for (alias, get) in alias_cases() {
            for name in [alias.to_string(), alias.to_lowercase(), alias.to_uppercase()] {
                let body = format!("<Ticket><TicketID>1</TicketID><{name}>{}</{name}></Ticket>", value_for(alias));
                let t = snap(one(xml(&body)));
                assert_eq!(get(&t), Some(expected_for(alias)), "{name}");
                assert!(t.unknown_fields.is_empty(), "{name}");
            }
        }
    }

    #[test]
    fn every_ticket_id_alias() {
        for alias in ["TicketID", "TaskID", "TicketNumber", "ID", "ticketid", "TASKID", "id", " TicketId "] {
            let j = serde_json::json!({ alias: "77", "Subject": "s" }).to_string();
            assert_eq!(snap(one(json(&j))).ticket_id, "77", "{alias}");
            let tag = alias.trim();
            let x = format!("<Ticket><{tag}> 77 </{tag}><Subject>s</Subject></Ticket>");
            assert_eq!(snap(one(xml(&x))).ticket_id, "77", "{alias}");
        }
    }

    #[test]
    fn full_ticket_json() {
        let body = r#"{
            "TaskID": "T-100", "TaskSubject": "  Disk C: low  ", "TaskDesc": "Free space 2%",
            "CreatedOn": "12/04/2026 09:15:00 AM", "UpdatedOn": "2026-12-04T10:15:00+01:00",
            "Status": "New", "Priority": "High", "IncidentType": "Alert", "AssignedTo": "NOC Team",
            "SiteCode": "S100", "SiteName": "Acme Dental", "PartnerCode": "P1",
            "MachineName": "ACME-DC01", "RegID": 998877, "Action": "Created", "PSATicketID": 5
        }"#;
        let t = snap(one(json(body)));
        assert_eq!(t.ticket_id, "T-100");
        assert_eq!(t.subject.as_deref(), Some("Disk C: low"));
        assert_eq!(t.description.as_deref(), Some("Free space 2%"));
        assert_eq!(t.created, Some(Utc.with_ymd_and_hms(2026, 12, 4, 9, 15, 0).unwrap()));
        assert_eq!(t.updated, Some(Utc.with_ymd_and_hms(2026, 12, 4, 9, 15, 0).unwrap()));
        assert_eq!(t.status.as_deref(), Some("New"));
        assert_eq!(t.priority.as_deref(), Some("High"));
        assert_eq!(t.ticket_type.as_deref(), Some("Alert"));
        assert_eq!(t.assign_to.as_deref(), Some("NOC Team"));
        assert_eq!(t.site_code.as_deref(), Some("S100"));
        assert_eq!(t.site_name.as_deref(), Some("Acme Dental"));
        assert_eq!(t.member_code.as_deref(), Some("P1"));
        assert_eq!(t.device.as_deref(), Some("ACME-DC01"));
        assert_eq!(t.reg_id.as_deref(), Some("998877"));
        assert_eq!(t.event.as_deref(), Some("Created"));
        assert_eq!(t.unknown_fields.get("PSATicketID"), Some(&serde_json::json!(5)));
    }

    #[test]
    fn full_ticket_xml_with_escapes_and_cdata() {
        let body = r#"<?xml version="1.0" encoding="utf-8"?>
            <!-- sent by Continuum -->
            <Ticket version="2">
              <TicketID>
                 42
              </TicketID>
              <Subject>Ping &amp; RDP down &lt;DC01&gt; &#x263A;&#65;</Subject>
              <Description><![CDATA[<b>raw</b> & "quoted"]]></Description>
              <UpdatedDate>12/04/2026 12:00:00 PM</UpdatedDate>
              <AssignTo>Service Desk</AssignTo>
              <SiteCode/>
              <Status></Status>
            </Ticket>"#;
        let t = snap(one(xml(body)));
        assert_eq!(t.ticket_id, "42");
        assert_eq!(t.subject.as_deref(), Some("Ping & RDP down <DC01> \u{263A}A"));
        assert_eq!(t.description.as_deref(), Some(r#"<b>raw</b> & "quoted""#));
        assert_eq!(t.updated, Some(Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap()));
        assert_eq!(t.assign_to.as_deref(), Some("Service Desk"));
        assert_eq!(t.site_code, None, "empty element = absent");
        assert_eq!(t.status, None);
    }

    #[test]
    fn xml_namespace_prefixes_are_ignored() {
        let body = r#"<c:Ticket xmlns:c="urn:x"><c:TicketID>9</c:TicketID><c:Subject>s</c:Subject></c:Ticket>"#;
        let t = snap(one(xml(body)));
        assert_eq!((t.ticket_id.as_str(), t.subject.as_deref()), ("9", Some("s")));
    }

    #[test]
    fn json_shapes() {
        let single = json(r#"{"TicketID":"1","Subject":"a"}"#);
        assert_eq!(single.format, BodyFormat::Json);
        assert_eq!(single.entries.len(), 1);
        let arr = json(r#"[{"TicketID":"1","Subject":"a"},{"TicketID":"2","Subject":"b"}]"#);
        assert_eq!(arr.entries.iter().map(|e| e.ticket_id().unwrap()).collect::<Vec<_>>(), ["1", "2"]);
        for body in [
            r#"{"Tickets":[{"TicketID":"1","Subject":"a"},{"TicketID":"2","Subject":"b"}]}"#,
            r#"{"tickets":[{"TicketID":"1","Subject":"a"},{"TicketID":"2","Subject":"b"}],"Count":2}"#,
            r#"{"TICKETS":{"Ticket":[{"TicketID":"1","Subject":"a"},{"TicketID":"2","Subject":"b"}]}}"#,
            r#"[{"Ticket":{"TicketID":"1","Subject":"a"}},{"TicketID":"2","Subject":"b"}]"#,
        ] {
            let d = json(body);
            assert_eq!(d.entries.iter().map(|e| e.ticket_id().unwrap()).collect::<Vec<_>>(), ["1", "2"], "{body}");
        }
        let wrapped = json(r#"{"ticket":{"TicketID":"3","Subject":"c"}}"#);
        assert_eq!(snap(one(wrapped)).ticket_id, "3");
        assert!(json("[]").entries.is_empty());
        assert!(json(r#"{"Tickets":[]}"#).entries.is_empty());
        assert!(json(r#"{"Tickets":null}"#).entries.is_empty());
    }

    #[test]
    fn xml_shapes() {
        let d = xml("<Tickets><Ticket><TicketID>1</TicketID><Subject>a</Subject></Ticket>\
                     <Ticket><TicketID>2</TicketID><Subject>b</Subject></Ticket></Tickets>");
        assert_eq!(d.format, BodyFormat::Xml);
        assert_eq!(d.entries.iter().map(|e| e.ticket_id().unwrap()).collect::<Vec<_>>(), ["1", "2"]);
        // Case-insensitive roots, a single ticket in a batch, envelope metadata ignored.
        let d = xml("<tickets><Count>1</Count><TICKET><TicketID>1</TicketID><Subject>a</Subject></TICKET></tickets>");
        assert_eq!(snap(one(d)).ticket_id, "1");
        let d = xml("<ticket><TicketID>5</TicketID><Subject>a</Subject></ticket>");
        assert_eq!(snap(one(d)).ticket_id, "5");
        // Continuum's own naming, and any other root holding ticket fields.
        let d = xml("<Tasks><Task><TaskID>1</TaskID><Title>a</Title></Task><Task><TaskID>2</TaskID><Title>b</Title></Task></Tasks>");
        assert_eq!(d.entries.len(), 2);
        let d = xml("<TaskInfo><TaskID>8</TaskID><TaskSubject>a</TaskSubject></TaskInfo>");
        assert_eq!(snap(one(d)).ticket_id, "8");
        assert!(xml("<Tickets/>").entries.is_empty());
        assert!(xml("<Tickets>  </Tickets>").entries.is_empty());
        assert_eq!(invalid_reason(&one(xml("<Ticket/>"))), "TicketID missing");
    }

    #[test]
    fn mixed_valid_and_invalid_batch() {
        let d = json(r#"[
            {"TicketID":"1","Subject":"ok"},
            {"Subject":"no id"},
            {"TicketID":"  ","Subject":"blank id"},
            {"TicketID":"4","UpdatedDate":"x"},
            {"TicketID":"5"},
            7
        ]"#);
        assert_eq!(d.entries.len(), 6);
        assert_eq!(snap(d.entries[0].clone()).ticket_id, "1");
        assert_eq!(d.entries[1], TicketEntry::Invalid { index: 1, ticket_id: None, reason: "TicketID missing".into() });
        assert_eq!(d.entries[2], TicketEntry::Invalid { index: 2, ticket_id: None, reason: "TicketID missing".into() });
        assert_eq!(
            d.entries[3],
            TicketEntry::Invalid { index: 3, ticket_id: Some("4".into()), reason: "UpdatedDate: cannot parse 'x'".into() }
        );
        assert_eq!(d.entries[4], TicketEntry::Notify { ticket_id: "5".into() });
        assert_eq!(d.entries[5], TicketEntry::Invalid { index: 5, ticket_id: None, reason: "ticket is not an object".into() });

        let d = xml("<Tickets><Ticket><TicketID>1</TicketID><Status>New</Status></Ticket>\
                     <Ticket><Subject>x</Subject><CreatedOn>soon</CreatedOn></Ticket></Tickets>");
        assert!(matches!(d.entries[0], TicketEntry::Snapshot(_)));
        assert_eq!(
            d.entries[1],
            TicketEntry::Invalid { index: 1, ticket_id: None, reason: "TicketID missing; CreatedOn: cannot parse 'soon'".into() }
        );
    }

    #[test]
    fn field_errors_name_the_delivered_field() {
        let e = one(json(r#"{"TicketID":"1","LastModified":"13/45/2026 99:00:00 PM","CreatedDate":"nope"}"#));
        let reason = invalid_reason(&e);
        assert!(reason.contains("LastModified: cannot parse '13/45/2026 99:00:00 PM'"), "{reason}");
        assert!(reason.contains("CreatedDate: cannot parse 'nope'"), "{reason}");
        // A string field delivered as an object is a field error too.
        let e = one(json(r#"{"TicketID":"1","Status":{"Name":"New"}}"#));
        assert_eq!(invalid_reason(&e), r#"Status: cannot parse '{"Name":"New"}'"#);
    }

    #[test]
    fn notify_detection() {
        assert_eq!(one(json(r#"{"TicketID":"5"}"#)), TicketEntry::Notify { ticket_id: "5".into() });
        assert_eq!(one(json(r#"{"taskid":5}"#)), TicketEntry::Notify { ticket_id: "5".into() });
        assert_eq!(one(json(r#"{"TicketID":"5","Subject":null,"Status":"  "}"#)), TicketEntry::Notify { ticket_id: "5".into() });
        assert_eq!(one(xml("<Ticket><TaskID>5</TaskID></Ticket>")), TicketEntry::Notify { ticket_id: "5".into() });
        assert_eq!(one(xml("<Ticket><TaskID>5</TaskID><Subject/></Ticket>")), TicketEntry::Notify { ticket_id: "5".into() });
        // Anything else next to the id makes it a snapshot, even informative fields.
        assert!(matches!(one(json(r#"{"TicketID":"5","Event":"Updated"}"#)), TicketEntry::Snapshot(_)));
        assert!(matches!(one(json(r#"{"TicketID":"5","Foo":"bar"}"#)), TicketEntry::Snapshot(_)));
        assert!(matches!(one(json(r#"{"TicketID":"5","Notes":[{"Body":"x"}]}"#)), TicketEntry::Snapshot(_)));
        // Subject is not required here: whether the ticket is new is the store's business.
        assert!(matches!(one(json(r#"{"TicketID":"5","Status":"Closed"}"#)), TicketEntry::Snapshot(_)));
    }

    #[test]
    fn notify_from_query_string() {
        assert_eq!(notify_from_query("TicketID=123"), Some("123".into()));
        assert_eq!(notify_from_query("?ticketid=123"), Some("123".into()));
        assert_eq!(notify_from_query("foo=1&TASKID=%20T%2D9%20"), Some("T-9".into()));
        assert_eq!(notify_from_query("Ticket%49D=7"), Some("7".into()));
        assert_eq!(notify_from_query("TicketNumber=a+b"), Some("a b".into()));
        assert_eq!(notify_from_query("ID=4"), Some("4".into()));
        assert_eq!(notify_from_query("TicketID=&TaskID=8"), Some("8".into()));
        assert_eq!(notify_from_query("TicketID="), None);
        assert_eq!(notify_from_query("TicketID"), None);
        assert_eq!(notify_from_query("Subject=1"), None);
        assert_eq!(notify_from_query(""), None);
    }

    #[test]
    fn unknown_fields_are_kept() {
        let t = snap(one(json(r#"{"TicketID":"1","PSATicketID":"A-1","Extra":{"a":[1,2]},"Flag":true,"Nothing":null,"Blank":""}"#)));
        assert_eq!(t.unknown_fields.get("PSATicketID"), Some(&serde_json::json!("A-1")));
        assert_eq!(t.unknown_fields.get("Extra"), Some(&serde_json::json!({"a":[1,2]})));
        assert_eq!(t.unknown_fields.get("Flag"), Some(&serde_json::json!(true)));
        assert!(!t.unknown_fields.contains_key("Nothing") && !t.unknown_fields.contains_key("Blank"));

        let t = snap(one(xml("<Ticket><TicketID>1</TicketID><PSATicketID> A-1 </PSATicketID>\
            <Custom><Key>k</Key><Val>1</Val><Val>2</Val></Custom><Tag>a</Tag><Tag>b</Tag><Empty/></Ticket>")));
        assert_eq!(t.unknown_fields.get("PSATicketID"), Some(&serde_json::json!("A-1")));
        assert_eq!(t.unknown_fields.get("Custom"), Some(&serde_json::json!({"Key":"k","Val":["1","2"]})));
        assert_eq!(t.unknown_fields.get("Tag"), Some(&serde_json::json!(["a", "b"])));
        assert!(!t.unknown_fields.contains_key("Empty"));
    }

    #[test]
    fn conflicting_duplicates_are_not_lost() {
        let t = snap(one(xml("<Ticket><TicketID>1</TicketID><Status>New</Status><StatusName>Open</StatusName><Status>New</Status></Ticket>")));
        assert_eq!(t.status.as_deref(), Some("New"));
        assert_eq!(t.unknown_fields.get("StatusName"), Some(&serde_json::json!("Open")));
        assert_eq!(t.unknown_fields.len(), 1, "an identical repeat is not a conflict");
    }

    #[test]
    fn numeric_ids_and_values() {
        let t = snap(one(json(r#"{"TicketID":12345,"Priority":1,"RegID":-3,"Comments":[{"CommentID":9,"Body":"x"}]}"#)));
        assert_eq!(t.ticket_id, "12345");
        assert_eq!(t.priority.as_deref(), Some("1"));
        assert_eq!(t.reg_id.as_deref(), Some("-3"));
        assert_eq!(t.comments[0].comment_id.as_deref(), Some("9"));
    }

    #[test]
    fn comments_json() {
        let t = snap(one(json(r#"{"TicketID":"1","Comments":[
            {"CommentID":"c1","Body":" first ","Author":"jane","CreatedDate":"2026-12-04T09:15:00Z","Internal":true},
            {"NoteID":"c2","Details":"second","CreatedBy":"bob","CreatedAt":"12/04/2026 9:16:00 AM","InternalFlag":"0"},
            {"Comment":"third","InternalFlag":"YES"},
            {"Body":"   ","CommentID":"dropped"},
            {"Author":"no body"},
            "fourth",
            null
        ]}"#)));
        let bodies: Vec<_> = t.comments.iter().map(|c| c.body.as_str()).collect();
        assert_eq!(bodies, ["first", "second", "third", "fourth"]);
        let c = &t.comments[0];
        assert_eq!(c.comment_id.as_deref(), Some("c1"));
        assert_eq!(c.author.as_deref(), Some("jane"));
        assert_eq!(c.created, Some(Utc.with_ymd_and_hms(2026, 12, 4, 9, 15, 0).unwrap()));
        assert!(c.internal);
        let c = &t.comments[1];
        assert_eq!((c.comment_id.as_deref(), c.author.as_deref(), c.internal), (Some("c2"), Some("bob"), false));
        assert_eq!(c.created, Some(Utc.with_ymd_and_hms(2026, 12, 4, 9, 16, 0).unwrap()));
        assert!(t.comments[2].internal);
        // Without a CommentID the sync key falls back to the hash of author, date and body.
        assert!(t.comments[2].sync_key().starts_with("hash:"));
        assert_eq!(t.comments[0].sync_key(), "id:c1");
    }

    #[test]
    fn comments_json_single_object_and_wrapper_and_notes_alias() {
        let t = snap(one(json(r#"{"TicketID":"1","notes":{"Details":"only one"}}"#)));
        assert_eq!(t.comments.len(), 1);
        assert_eq!(t.comments[0].body, "only one");
        let t = snap(one(json(r#"{"TicketID":"1","Comments":{"Comment":[{"Body":"a"},{"Body":"b"}]}}"#)));
        assert_eq!(t.comments.iter().map(|c| c.body.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn internal_flag_forms() {
        for (v, want) in [
            ("true", true), ("\"true\"", true), ("\"TRUE\"", true), ("\"1\"", true), ("1", true),
            ("\"yes\"", true), ("false", false), ("\"false\"", false), ("\"0\"", false), ("0", false),
            ("\"no\"", false), ("null", false),
        ] {
            let body = format!(r#"{{"TicketID":"1","Comments":[{{"Body":"b","Internal":{v}}}]}}"#);
            assert_eq!(snap(one(json(&body))).comments[0].internal, want, "{v}");
        }
        let e = one(json(r#"{"TicketID":"1","Comments":[{"Body":"b","Internal":"maybe"}]}"#));
        assert_eq!(invalid_reason(&e), "Comments[0].Internal: cannot parse 'maybe'");
    }

    #[test]
    fn comment_errors_and_unknown_comment_fields() {
        let e = one(json(r#"{"TicketID":"1","Notes":[{"Body":"b"},{"Body":"c","CreatedAt":"later"}]}"#));
        assert_eq!(invalid_reason(&e), "Notes[1].CreatedAt: cannot parse 'later'");
        let e = one(json(r#"{"TicketID":"1","Comments":5}"#));
        assert_eq!(invalid_reason(&e), "Comments: cannot parse '5'");
        let t = snap(one(json(r#"{"TicketID":"1","Comments":[{"Body":"b","Visibility":"all"}]}"#)));
        assert_eq!(t.unknown_fields.get("Comments[0].Visibility"), Some(&serde_json::json!("all")));
    }

    #[test]
    fn comments_xml() {
        let t = snap(one(xml("<Ticket><TicketID>1</TicketID>\
            <Comments>\
              <Comment><CommentID>c1</CommentID><Body>first &amp; best</Body><Author>jane</Author>\
                <CreatedDate>12/04/2026 01:00:00 PM</CreatedDate><Internal>true</Internal></Comment>\
              <Comment><Details><![CDATA[second]]></Details><CreatedBy>bob</CreatedBy><InternalFlag>0</InternalFlag></Comment>\
              <Comment><Body/></Comment>\
            </Comments>\
            <Notes><Note><NoteID>n1</NoteID><Comment>a note</Comment></Note></Notes>\
            </Ticket>")));
        let bodies: Vec<_> = t.comments.iter().map(|c| c.body.as_str()).collect();
        assert_eq!(bodies, ["first & best", "second", "a note"]);
        let c = &t.comments[0];
        assert_eq!(c.comment_id.as_deref(), Some("c1"));
        assert_eq!(c.author.as_deref(), Some("jane"));
        assert_eq!(c.created, Some(Utc.with_ymd_and_hms(2026, 12, 4, 13, 0, 0).unwrap()));
        assert!(c.internal);
        let c = &t.comments[1];
        assert_eq!((c.comment_id.as_deref(), c.author.as_deref(), c.internal), (None, Some("bob"), false));
        assert!(c.sync_key().starts_with("hash:"));
        assert_eq!(t.comments[2].sync_key(), "id:n1");
        // `<Comment>` holding text is a body-only comment (Comment is also a Body alias).
        let t = snap(one(xml("<Ticket><TicketID>1</TicketID><Comments><Comment> hi </Comment><Comment>yo</Comment></Comments></Ticket>")));
        assert_eq!(t.comments.iter().map(|c| c.body.as_str()).collect::<Vec<_>>(), ["hi", "yo"]);
        // A single comment, and an empty list.
        let t = snap(one(xml("<Ticket><TicketID>1</TicketID><Comments><Comment><Body>x</Body></Comment></Comments></Ticket>")));
        assert_eq!(t.comments.len(), 1);
        assert_eq!(one(xml("<Ticket><TicketID>1</TicketID><Comments/></Ticket>")), TicketEntry::Notify { ticket_id: "1".into() });
    }

    #[test]
    fn content_types() {
        let body = r#"{"TicketID":"1","Subject":"a"}"#;
        for ct in ["application/json", "Application/JSON; charset=utf-8", "application/vnd.continuum+json"] {
            assert_eq!(parse_delivery(Some(ct), body.as_bytes()).unwrap().format, BodyFormat::Json, "{ct}");
        }
        let xbody = "<Ticket><TicketID>1</TicketID></Ticket>";
        for ct in ["application/xml", "text/xml; charset=\"utf-8\"", "TEXT/XML", "application/soap+xml"] {
            assert_eq!(parse_delivery(Some(ct), xbody.as_bytes()).unwrap().format, BodyFormat::Xml, "{ct}");
        }
        // Missing or generic: sniffed.
        for ct in [None, Some(""), Some("*/*"), Some("text/plain; charset=utf-8"), Some("application/octet-stream"),
                   Some("application/x-www-form-urlencoded")] {
            assert_eq!(parse_delivery(ct, b"  \r\n[{\"TicketID\":\"1\"}]").unwrap().format, BodyFormat::Json, "{ct:?}");
            assert_eq!(parse_delivery(ct, b"\n\t<Ticket><TicketID>1</TicketID></Ticket>").unwrap().format, BodyFormat::Xml, "{ct:?}");
            assert_eq!(parse_delivery(ct, b"TicketID=1").unwrap_err(), InboundError::UnsupportedMedia, "{ct:?}");
        }
        // Any other explicit type: 415, whatever the body.
        for ct in ["text/html", "multipart/form-data; boundary=x", "text/json", "application/yaml"] {
            let e = err(Some(ct), body);
            assert_eq!(e, InboundError::UnsupportedMedia, "{ct}");
            assert_eq!(e.http_status(), 415);
        }
    }

    #[test]
    fn declared_type_wins_over_sniffing() {
        assert!(matches!(err(Some("application/json"), "<Ticket/>"), InboundError::Malformed(_)));
        assert!(matches!(err(Some("text/xml"), r#"{"TicketID":"1"}"#), InboundError::Malformed(_)));
    }

    #[test]
    fn size_limit_is_checked_first() {
        let mut big = br#"{"TicketID":"1","Description":""#.to_vec();
        big.resize(MAX_BODY_BYTES + 1, b'a');
        let e = parse_delivery(Some("text/html"), &big).unwrap_err();
        assert_eq!(e, InboundError::TooLarge);
        assert_eq!(e.http_status(), 413);
        // Exactly the limit is fine.
        let prefix = br#"{"TicketID":"1","Description":""#;
        let mut ok = prefix.to_vec();
        ok.resize(MAX_BODY_BYTES - 2, b'a');
        ok.extend_from_slice(b"\"}");
        let t = snap(one(parse_delivery(None, &ok).unwrap()));
        assert_eq!(t.description.unwrap().len(), MAX_BODY_BYTES - 2 - prefix.len());
    }

    #[test]
    fn empty_bodies_are_malformed() {
        for body in ["", "   \n", "\u{feff}", "\u{feff}  "] {
            for ct in [None, Some("application/json"), Some("text/xml")] {
                let e = err(ct, body);
                assert_eq!(e, InboundError::Malformed("empty body".into()), "{body:?} {ct:?}");
                assert_eq!(e.http_status(), 400);
            }
        }
    }

    #[test]
    fn utf8_bom_is_tolerated() {
        let t = snap(one(parse_delivery(None, "\u{feff}{\"TicketID\":\"1\",\"Subject\":\"é\"}".as_bytes()).unwrap()));
        assert_eq!(t.subject.as_deref(), Some("é"));
        let t = snap(one(parse_delivery(Some("application/json"), "\u{feff}{\"TicketID\":\"1\",\"Subject\":\"a\"}".as_bytes()).unwrap()));
        assert_eq!(t.ticket_id, "1");
        let d = parse_delivery(None, "\u{feff}<?xml version=\"1.0\"?><Ticket><TicketID>2</TicketID><Subject>b</Subject></Ticket>".as_bytes()).unwrap();
        assert_eq!(snap(one(d)).ticket_id, "2");
    }

    #[test]
    fn dtd_is_refused_never_expanded() {
        let billion_laughs = r#"<?xml version="1.0"?>
            <!DOCTYPE lolz [
              <!ENTITY lol "lol">
              <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
              <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
            ]>
            <Ticket><TicketID>1</TicketID><Subject>&lol3;</Subject></Ticket>"#;
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE Ticket [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
            <Ticket><TicketID>1</TicketID><Subject>&xxe;</Subject></Ticket>"#;
        let external_dtd = r#"<!DOCTYPE Ticket SYSTEM "http://evil.example/t.dtd"><Ticket><TicketID>1</TicketID></Ticket>"#;
        let lower = "<!doctype ticket><Ticket><TicketID>1</TicketID></Ticket>";
        let stray_entity = r#"<Ticket><!ENTITY x "y"><TicketID>1</TicketID></Ticket>"#;
        for body in [billion_laughs, xxe, external_dtd, lower, stray_entity] {
            for ct in [Some("application/xml"), None] {
                let e = err(ct, body);
                assert_eq!(e, InboundError::ForbiddenDtd, "{body}");
                assert_eq!(e.http_status(), 400);
            }
        }
    }

    #[test]
    fn dtd_text_inside_cdata_or_comments_is_just_text() {
        let t = snap(one(xml("<!-- <!DOCTYPE x> --><Ticket><TicketID>1</TicketID>\
            <Description><![CDATA[<!DOCTYPE html><html></html>]]></Description></Ticket>")));
        assert_eq!(t.description.as_deref(), Some("<!DOCTYPE html><html></html>"));
        assert!(!declares_dtd(b"<a>&lt;!DOCTYPE x&gt;</a>"));
        assert!(declares_dtd(b"<![CDATA[x]]><!DOCTYPE a>"));
    }

    #[test]
    fn unknown_entity_is_malformed() {
        let e = err(Some("application/xml"), "<Ticket><TicketID>1</TicketID><Subject>&xxe;</Subject></Ticket>");
        assert_eq!(e, InboundError::Malformed("unknown entity '&xxe;'".into()));
    }

    #[test]
    fn malformed_json() {
        for body in [r#"{"TicketID":"1""#, "[1,", "{TicketID: 1}", r#""just a string""#, "42", "null", "{} extra"] {
            let e = err(Some("application/json"), body);
            assert!(matches!(e, InboundError::Malformed(_)), "{body}: {e:?}");
            assert_eq!(e.http_status(), 400);
        }
        assert!(matches!(err(None, r#"{"Tickets":"x"}"#), InboundError::Malformed(_)));
    }

    #[test]
    fn malformed_xml() {
        for body in [
            "<Ticket><TicketID>1</TicketID>",
            "<Ticket><TicketID>1</TaskID></Ticket>",
            "<Ticket>a & b</Ticket>",
            "<Ticket/><Ticket/>",
            "<Ticket></Ticket><Ticket></Ticket>",
            "<Ticket></Ticket> trailing",
            "<?xml version=\"1.0\"?>",
            "<Ticket><TicketID>&#0;</TicketID></Ticket>",
            "<Ticket",
        ] {
            let e = err(Some("text/xml"), body);
            assert!(matches!(e, InboundError::Malformed(_)), "{body}: {e:?}");
        }
        let deep = format!("{}{}", "<a>".repeat(200), "</a>".repeat(200));
        assert_eq!(err(None, &deep), InboundError::Malformed("XML nested too deeply".into()));
    }

    #[test]
    fn error_statuses() {
        assert_eq!(InboundError::TooLarge.http_status(), 413);
        assert_eq!(InboundError::UnsupportedMedia.http_status(), 415);
        assert_eq!(InboundError::ForbiddenDtd.http_status(), 400);
        assert_eq!(InboundError::Malformed("x".into()).http_status(), 400);
        assert_eq!(InboundError::Malformed("x".into()).to_string(), "malformed body: x");
    }
}
