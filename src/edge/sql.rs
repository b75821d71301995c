//! The [`Sql`] port over Durable Object SQLite storage.

use worker::{SqlStorage, SqlStorageValue};

use crate::ports::{Sql, SqlValue};

pub struct DoSql(pub SqlStorage);

impl Sql for DoSql {
    fn exec(&self, query: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, String> {
        let bindings: Vec<SqlStorageValue> = params
            .iter()
            .map(|p| match p {
                SqlValue::Null => SqlStorageValue::Null,
                SqlValue::Integer(i) => SqlStorageValue::Integer(*i),
                SqlValue::Real(f) => SqlStorageValue::Float(*f),
                SqlValue::Text(s) => SqlStorageValue::String(s.clone()),
            })
            .collect();
        let cursor = self.0.exec(query, bindings).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for row in cursor.raw() {
            let row = row.map_err(|e| e.to_string())?;
            out.push(
                row.into_iter()
                    .map(|v| match v {
                        SqlStorageValue::Null => SqlValue::Null,
                        SqlStorageValue::Boolean(b) => SqlValue::Integer(b as i64),
                        SqlStorageValue::Integer(i) => SqlValue::Integer(i),
                        SqlStorageValue::Float(f) => SqlValue::Real(f),
                        SqlStorageValue::String(s) => SqlValue::Text(s),
                        SqlStorageValue::Blob(b) => SqlValue::Text(String::from_utf8_lossy(&b).into_owned()),
                    })
                    .collect(),
            );
        }
        Ok(out)
    }
}
