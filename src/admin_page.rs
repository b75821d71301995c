//! `GET /admin`: the status answer as a small HTML page, for a browser.

use quick_xml::escape::escape;
use serde_json::Value;

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => escape(s.as_str()).into_owned(),
        other => escape(other.to_string().as_str()).into_owned(),
    }
}

pub fn render(status: &Value) -> String {
    let mut rows = String::new();
    for key in ["pending", "synced", "skipped", "waiting", "retrying", "dead_letters", "rejected", "tickets", "comments_synced", "last_reconcile"] {
        rows.push_str(&format!("<tr><th>{key}</th><td>{}</td></tr>", cell(&status[key])));
    }
    let mut problems = String::new();
    for e in status["config_errors"].as_array().into_iter().flatten() {
        problems.push_str(&format!("<li><b>{}</b>: {}</li>", cell(&e["key"]), cell(&e["reason"])));
    }
    if problems.is_empty() {
        problems.push_str("<li>none</li>");
    }
    let attention = escape(serde_json::to_string_pretty(&status["attention"]).unwrap_or_default().as_str()).into_owned();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Continuum ⇄ Accelo bridge</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2rem}}th{{text-align:left;padding-right:1rem}}pre{{background:#f4f4f4;padding:1rem}}</style>\
         </head><body><h1>Continuum ⇄ Accelo bridge</h1><table>{rows}</table>\
         <h2>Config errors</h2><ul>{problems}</ul><h2>Needs attention</h2><pre>{attention}</pre></body></html>"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_counts_and_escapes() {
        let html = super::render(&serde_json::json!({"pending": 2, "config_errors": [{"key": "sites", "reason": "<bad>"}]}));
        assert!(html.contains("<th>pending</th><td>2</td>"));
        assert!(html.contains("&lt;bad&gt;"));
    }
}
