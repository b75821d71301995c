//! Continuum ⇄ Accelo bridge. Everything but `edge` is plain Rust, tested natively; `edge` owns
//! every `worker::` call and is compiled only for wasm32. See ARCHITECTURE.md.

pub mod continuum;
pub mod accelo;
pub mod mappings;
pub mod ports;
pub mod sync;
pub mod store;
pub mod engine;
pub mod retry;
pub mod auth;

#[cfg(target_arch = "wasm32")]
mod edge;
pub mod admin_page;
pub mod suggest;
