//! `[[sip]]`: the accounts, their checks (config/sip.rs) and the ports they share.

use super::*;

pub(super) fn sip_accounts(
    check: &mut Checker,
    raw: &[RawSipAccount],
    known: &Known<'_>,
) -> Vec<SipAccount> {
    let mut sip_accounts = Vec::new();
    for (i, account) in raw.iter().enumerate() {
        let path = |key: &str| format!("sip[{i}].{key}");
        for (key, value) in [
            ("name", &account.name),
            ("registrar", &account.registrar),
            ("username", &account.username),
            ("password", &account.password),
        ] {
            if value.trim().is_empty() {
                check.error(path(key), "is empty");
            }
        }
        if account.registrar.contains("://") || account.registrar.contains(' ') {
            check.error(
                path("registrar"),
                format!("{:?} should be a host name or address, with an optional :port (e.g. \"sip.example.net\")", account.registrar),
            );
        }
        let profile = known.profile(check, path("profile"), &account.profile);
        let sip = super::super::sip::check_account(account_view(account), &path);
        for (key, message) in sip.errors {
            check.error(key, message);
        }
        sip_accounts.push(SipAccount {
            name: account.name.clone(),
            registrar: account.registrar.clone(),
            username: account.username.clone(),
            password: Secret::new(account.password.clone()),
            domain: account.domain.clone(),
            local_port: account.local_port,
            profile,
            listen: sip.listen,
            register: account.register,
            transport: sip.transport,
            outbound_proxy: account.outbound_proxy.clone(),
            auth_username: account.auth_username.clone(),
            contact_user: account.contact_user.clone().unwrap_or_else(|| {
                sip_contact_user(&account.name, &account.username, &account.password)
            }),
            expires: account.expires,
            keepalive: sip.keepalive,
            keepalive_interval: std::time::Duration::from_secs(account.keepalive_seconds.into()),
            allow: sip.allow,
            max_ring: std::time::Duration::from_secs(account.max_ring_seconds.into()),
            final_response: sip.final_response,
            max_requests_per_second: account.max_requests_per_second,
            max_invites_per_second: account.max_invites_per_second,
            max_ringing_calls: usize::try_from(account.max_ringing_calls).unwrap_or(usize::MAX),
        });
    }
    for (key, message) in super::super::sip::check_ports(&sip_accounts) {
        check.error(key, message);
    }

    sip_accounts
}
