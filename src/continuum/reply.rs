//! The callback's answer, in the format the request came in (continuum-protocol.md, "Answer").

use quick_xml::escape::escape;
use serde_json::json;

use super::inbound::BodyFormat;
use crate::store::EntryOutcome;

const JSON: &str = "application/json";
const XML: &str = "application/xml; charset=utf-8";

/// `200` with the accepted count (and any refused tickets), or `400` when none was accepted.
pub fn accepted(format: BodyFormat, outcomes: &[EntryOutcome]) -> (u16, String, &'static str) {
    let accepted = outcomes.iter().filter(|o| o.accepted()).count();
    let rejected: Vec<(usize, Option<&str>, &str)> = outcomes
        .iter()
        .filter_map(|o| match o {
            EntryOutcome::Invalid { index, ticket_id, reason } => Some((*index, ticket_id.as_deref(), reason.as_str())),
            _ => None,
        })
        .collect();
    let status = if accepted == 0 { 400 } else { 200 };
    match format {
        BodyFormat::Json => {
            let mut v = json!({ "accepted": accepted });
            if !rejected.is_empty() {
                v["rejected"] = rejected
                    .iter()
                    .map(|(i, id, reason)| json!({"index": i, "TicketID": id, "reason": reason}))
                    .collect();
            }
            if accepted == 0 {
                v["error"] = json!("no ticket in the request could be accepted");
            }
            (status, v.to_string(), JSON)
        }
        BodyFormat::Xml => {
            let mut s = format!("<Result><Accepted>{accepted}</Accepted>");
            if !rejected.is_empty() {
                s.push_str("<Rejected>");
                for (i, id, reason) in &rejected {
                    let id = id.map(|x| format!(" TicketID=\"{}\"", escape(x))).unwrap_or_default();
                    s.push_str(&format!("<Ticket index=\"{i}\"{id}><Reason>{}</Reason></Ticket>", escape(*reason)));
                }
                s.push_str("</Rejected>");
            }
            s.push_str("</Result>");
            (status, s, XML)
        }
    }
}

/// A request refused as a whole (malformed, DOCTYPE, no ticket id...).
pub fn refused(format: BodyFormat, reason: &str) -> (String, &'static str) {
    match format {
        BodyFormat::Json => (json!({ "accepted": 0, "error": reason }).to_string(), JSON),
        BodyFormat::Xml => (format!("<Result><Accepted>0</Accepted><Error>{}</Error></Result>", escape(reason)), XML),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_xml_answers() {
        let ok = EntryOutcome::Stored { ticket_id: "1".into() };
        let bad = EntryOutcome::Invalid { index: 1, ticket_id: None, reason: "TicketID missing".into() };
        let (s, b, _) = accepted(BodyFormat::Json, std::slice::from_ref(&ok));
        assert_eq!((s, b.as_str()), (200, r#"{"accepted":1}"#));
        let (s, b, _) = accepted(BodyFormat::Xml, std::slice::from_ref(&ok));
        assert_eq!((s, b.as_str()), (200, "<Result><Accepted>1</Accepted></Result>"));
        let (s, b, _) = accepted(BodyFormat::Json, &[ok, bad.clone()]);
        assert_eq!(s, 200);
        assert!(b.contains("TicketID missing"));
        let (s, b, _) = accepted(BodyFormat::Xml, &[bad]);
        assert_eq!(s, 400);
        assert!(b.contains("<Accepted>0</Accepted>") && b.contains("<Reason>TicketID missing</Reason>"));
    }

    #[test]
    fn refusals_escape_the_reason() {
        let (b, _) = refused(BodyFormat::Xml, "<bad> & worse");
        assert!(b.contains("&lt;bad&gt; &amp; worse"));
    }
}
