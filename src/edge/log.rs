//! One JSON object per line (operator-surface.md, "Logs"). Callers never pass secrets.

use crate::engine::LogLine;

pub fn line(level: &str, event: &str, ticket: Option<&str>, issue: Option<&str>, msg: &str) {
    let ts = chrono::DateTime::from_timestamp_millis(worker::Date::now().as_millis() as i64)
        .map(|d| d.to_rfc3339())
        .unwrap_or_default();
    let v = serde_json::json!({"ts": ts, "level": level, "event": event, "ticket": ticket, "issue": issue, "msg": msg});
    worker::console_log!("{}", v);
}

pub fn engine(lines: Vec<LogLine>) {
    for l in lines {
        line(l.level, &l.event, l.ticket.as_deref(), l.issue.as_deref(), &l.msg);
    }
}
