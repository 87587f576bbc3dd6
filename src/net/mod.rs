//! Transports: the event loops that read requests and write answers. They call `api`.

pub mod server;
pub mod tls;
pub mod udp;
