//! `[dashboard]` and `[storage]`.

use std::net::{IpAddr, SocketAddr};

use super::*;

/// The dashboard's address, its public URL and the reverse proxy it trusts.
pub(super) fn dashboard(
    check: &mut Checker,
    raw: &RawDashboard,
) -> (Option<SocketAddr>, String, Option<IpAddr>) {
    let listen = match raw.listen.parse::<SocketAddr>() {
        Ok(address) => Some(address),
        Err(_) => {
            check.error(
                "dashboard.listen",
                format!(
                    "{:?} is not an address and port (e.g. \"127.0.0.1:8080\", or \"0.0.0.0:8080\" for the LAN)",
                    raw.listen
                ),
            );
            None
        }
    };
    let public_url = match &raw.public_url {
        Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
            check.error(
                "dashboard.public_url",
                format!("{url:?} must start with http:// or https://"),
            );
            url.clone()
        }
        Some(url) => url.trim_end_matches('/').to_string(),
        None => format!("http://{}", raw.listen),
    };

    let trusted_proxy = match raw.trusted_proxy.as_deref().map(str::trim) {
        None => None,
        Some(text) => match text.parse::<IpAddr>() {
            Ok(address) if address.is_unspecified() => {
                check.error(
                    "dashboard.trusted_proxy",
                    format!(
                        "{text:?} is any address, so anyone could say who they are: give the proxy's own address (\"127.0.0.1\" for a proxy on this box)"
                    ),
                );
                None
            }
            Ok(address) => Some(address),
            Err(_) => {
                check.error(
                    "dashboard.trusted_proxy",
                    format!(
                        "{text:?} is not an IP address: give the reverse proxy's address as the dashboard sees it (\"127.0.0.1\" for a proxy on this box), or remove the key"
                    ),
                );
                None
            }
        },
    };
    (listen, public_url, trusted_proxy)
}

/// Where the database lives and how long what it holds is kept.
pub(super) fn storage(check: &mut Checker, raw: &RawStorage) {
    if !(7..=3650).contains(&raw.retention_days) {
        check.error(
            "storage.retention_days",
            format!("{} is out of range: 7 to 3650 days", raw.retention_days),
        );
    }
    if !raw.database.is_absolute() {
        check.error(
            "storage.database",
            format!(
                "{:?} is not an absolute path (e.g. /var/lib/textback/textback.db)",
                raw.database
            ),
        );
    } else if !raw.database.starts_with("/var/lib/textback") {
        check.warn(
            "storage.database",
            format!(
                "{} is outside /var/lib/textback: systemd/textback.service (ProtectSystem=strict) only lets textback write there",
                raw.database.display()
            ),
        );
    }
}
