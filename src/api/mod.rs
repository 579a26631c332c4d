//! What both faces share: the tool/route argument types ([`args`]), the REST surface as a
//! table ([`endpoints`]), problem documents ([`problem`]), who a credential is
//! ([`whoami`]), CORS allow-lists ([`cors`]), how an HTTP request names its caller or
//! is refused ([`caller`]) and what the server knows about the network in front of it
//! ([`edge`]).
//!
//! `mcp` and `http` both build on this module and never on each other, so a change to
//! one face cannot reach into the other.

pub mod args;
pub mod caller;
mod campaign_args;
pub mod chart;
pub mod cors;
pub mod edge;
pub mod endpoints;
pub mod problem;
pub mod whoami;
