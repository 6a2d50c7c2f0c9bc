//! `[box]`: this box's name among several.

use super::*;

/// The longest box name: a DNS label's length.
const MAX_BOX_NAME: usize = 63;

/// `box.name`, or the host name: 1 to 63 ASCII letters, digits, '.', '-' and '_', so that it can
/// stand as it is in an idempotency key, a JSON payload and a Prometheus label.
pub(super) fn box_name(check: &mut Checker, name: Option<String>) -> String {
    let (name, from_host) = match name {
        Some(name) => (name, false),
        None => match defaults::box_name() {
            Some(host) => (host, true),
            None => {
                check.error(
                    "box.name",
                    "not set, and this system's host name cannot be read: set box.name (e.g. \"shop-1\")",
                );
                return String::new();
            }
        },
    };
    let valid = !name.is_empty()
        && name.len() <= MAX_BOX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !valid {
        let what = if from_host {
            format!("not set, and the host name {name:?} cannot name this box")
        } else {
            format!("{name:?} cannot name this box")
        };
        check.error(
            "box.name",
            format!(
                "{what}: use 1 to {MAX_BOX_NAME} letters, digits, '.', '-' or '_' (e.g. \"shop-1\")"
            ),
        );
    }
    name
}
