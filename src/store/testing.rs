//! [`Sql`] over an in-memory rusqlite database: the same SQLite dialect as the Durable Object.

use rusqlite::types::{Value as RValue, ValueRef};

use crate::ports::{Sql, SqlValue};

pub struct MemorySql(pub rusqlite::Connection);

impl MemorySql {
    pub fn new() -> Self {
        MemorySql(rusqlite::Connection::open_in_memory().unwrap())
    }
}

impl Default for MemorySql {
    fn default() -> Self {
        Self::new()
    }
}

impl Sql for MemorySql {
    fn exec(&self, query: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, String> {
        let mut stmt = self.0.prepare(query).map_err(|e| e.to_string())?;
        let bound: Vec<RValue> = params
            .iter()
            .map(|p| match p {
                SqlValue::Null => RValue::Null,
                SqlValue::Integer(i) => RValue::Integer(*i),
                SqlValue::Real(f) => RValue::Real(*f),
                SqlValue::Text(s) => RValue::Text(s.clone()),
            })
            .collect();
        let cols = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(bound)).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(|e| e.to_string())? {
            let mut row = Vec::with_capacity(cols);
            for i in 0..cols {
                row.push(match r.get_ref(i).map_err(|e| e.to_string())? {
                    ValueRef::Null => SqlValue::Null,
                    ValueRef::Integer(i) => SqlValue::Integer(i),
                    ValueRef::Real(f) => SqlValue::Real(f),
                    ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => SqlValue::Text(String::from_utf8_lossy(b).into_owned()),
                });
            }
            out.push(row);
        }
        Ok(out)
    }
}
