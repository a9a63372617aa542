//! Free loopback ports.

use std::sync::atomic::{AtomicU16, Ordering};

/// A loopback port free now, for a server that binds it later: the control plane's etcd and API
/// server, the operator's HTTP server, a FHIR server, a redirect URI a consumer or Chromium listens on.
///
/// Taken below Linux's ephemeral range (32768-60999), so that no port-0 listener (MSAL's own loopback
/// server, say) takes it meanwhile; each process starts at its own offset and never hands out the
/// same port twice.
pub fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = 20000 + (std::process::id() % 5000) as u16;
    loop {
        let p = start + NEXT.fetch_add(1, Ordering::Relaxed) % 7000;
        // Chromium tries ::1 first for localhost: nothing may listen there either (if IPv6 exists).
        let v6_free = !matches!(std::net::TcpListener::bind(("::1", p)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse);
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() && v6_free {
            return p;
        }
    }
}
