//! The single Continuum adapter: all knowledge of Continuum's wire format (field names and their
//! aliases, datetime forms, callback body shapes) lives in this folder, so that it can be corrected
//! against a live Continuum without touching the rest of the bridge. The contract it implements is
//! continuum-protocol.md; everything here is plain Rust, tested natively.

pub mod datetime;
pub mod fields;
pub mod inbound;
pub mod ticket;
pub mod outbound;
pub mod reply;

#[cfg(test)]
mod hostile_input_tests;
