//! The Accelo side: API v0 envelope, OAuth and the calls the bridge makes (accelo-api.md).

pub mod client;
pub mod envelope;

pub use client::{AcceloClient, AcceloCredentials, CachedToken, RateLimit};
pub use envelope::AcceloError;
