//! Where things go: which business (profile) a missed call belongs to, and which modem a new
//! conversation's texts leave from. Pure: the shell gathers the facts (the config's profiles,
//! modems and SIP accounts; each modem's state and queue) and asks.

use crate::domain::{E164, ModemId, ProfileId};

/// Who owns what, as the config says.
#[derive(Debug, Clone, Copy)]
pub struct Directory<'a> {
    /// Each modem with the profile it serves, where it has one.
    pub modems: &'a [(ModemId, Option<ProfileId>)],
    /// Each profile's own numbers.
    pub numbers: &'a [(E164, ProfileId)],
    /// Each SIP account (by name) with its profile, where it has one.
    pub accounts: &'a [(String, Option<ProfileId>)],
    /// The profile for everything else.
    pub default: &'a ProfileId,
}

/// The profile a missed call belongs to: a SIM's call to its modem's profile; a SIP call to the
/// profile listing the number called, else to its account's profile; anything else to the
/// default profile.
pub fn profile_for_call(
    directory: &Directory<'_>,
    modem: Option<&ModemId>,
    called: Option<&E164>,
    account: Option<&str>,
) -> ProfileId {
    let of_modem = modem.and_then(|modem| {
        directory
            .modems
            .iter()
            .find(|(id, _)| id == modem)
            .and_then(|(_, profile)| profile.clone())
    });
    let listed = called.and_then(|number| {
        directory
            .numbers
            .iter()
            .find(|(own, _)| own == number)
            .map(|(_, profile)| profile.clone())
    });
    let of_account = account.and_then(|name| {
        directory
            .accounts
            .iter()
            .find(|(account, _)| account == name)
            .and_then(|(_, profile)| profile.clone())
    });
    of_modem
        .or(listed)
        .or(of_account)
        .unwrap_or_else(|| directory.default.clone())
}

/// A modem as the choice of one sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: ModemId,
    /// It serves the profile (`modem.profile`).
    pub serves: bool,
    /// Set up and on the network now.
    pub usable: bool,
    /// Texts waiting in its outbox.
    pub queued: i64,
}

/// The modem a new conversation's texts leave from (its replies come back to that SIM, so the
/// conversation stays on it):
/// 1. the profile's own modem (`pinned`, from `profile.modem`), whatever its state: the business
///    wants its callers texted from that number;
/// 2. the SIM the call rang, when it is usable: the caller dialled that number;
/// 3. a usable modem serving the profile, else any usable modem, the one with the fewest texts
///    waiting first (the order given breaks ties);
/// 4. with none usable: the SIM that rang, else one serving the profile, else the first; the
///    text waits there for it to come back.
///
/// `None` only when there are no modems at all.
pub fn choose_modem(
    pinned: Option<&ModemId>,
    rang: Option<&ModemId>,
    modems: &[Candidate],
) -> Option<ModemId> {
    if let Some(pinned) = pinned {
        return Some(pinned.clone());
    }
    if let Some(rang) = rang
        && modems.iter().any(|m| &m.id == rang && m.usable)
    {
        return Some(rang.clone());
    }
    let best = modems
        .iter()
        .filter(|m| m.usable)
        .min_by_key(|m| (!m.serves, m.queued));
    if let Some(best) = best {
        return Some(best.id.clone());
    }
    rang.cloned()
        .or_else(|| modems.iter().find(|m| m.serves).map(|m| m.id.clone()))
        .or_else(|| modems.first().map(|m| m.id.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modem(id: &str) -> ModemId {
        ModemId::parse(id).unwrap()
    }

    fn profile(id: &str) -> ProfileId {
        ProfileId::parse(id).unwrap()
    }

    #[test]
    fn a_call_belongs_to_its_sim_then_its_number_then_its_account() {
        let modems = [
            (modem("sim1"), Some(profile("plumbing"))),
            (modem("sim2"), None),
        ];
        let numbers = [(E164::parse("01632 960123").unwrap(), profile("electrics"))];
        let accounts = [("trunk".to_string(), Some(profile("roofing")))];
        let default = profile("plumbing");
        let directory = Directory {
            modems: &modems,
            numbers: &numbers,
            accounts: &accounts,
            default: &default,
        };
        let called = E164::parse("01632 960123").unwrap();
        let other = E164::parse("01632 960999").unwrap();
        // The SIM's own profile, whatever number was called.
        assert_eq!(
            profile_for_call(&directory, Some(&modem("sim1")), Some(&called), None),
            profile("plumbing")
        );
        // A modem with no profile: the number called decides.
        assert_eq!(
            profile_for_call(&directory, Some(&modem("sim2")), Some(&called), None),
            profile("electrics")
        );
        // SIP: the number listed, else the account's profile, else the default.
        assert_eq!(
            profile_for_call(&directory, None, Some(&called), Some("trunk")),
            profile("electrics")
        );
        assert_eq!(
            profile_for_call(&directory, None, Some(&other), Some("trunk")),
            profile("roofing")
        );
        assert_eq!(
            profile_for_call(&directory, None, Some(&other), Some("unknown")),
            profile("plumbing")
        );
        assert_eq!(
            profile_for_call(&directory, None, None, None),
            profile("plumbing")
        );
    }

    #[test]
    fn texts_leave_from_the_pinned_modem_the_sim_that_rang_or_the_shortest_queue() {
        let candidate = |id: &str, serves: bool, usable: bool, queued: i64| Candidate {
            id: modem(id),
            serves,
            usable,
            queued,
        };
        let modems = [
            candidate("a", false, true, 0),
            candidate("b", true, true, 5),
            candidate("c", true, true, 2),
            candidate("d", true, false, 0),
        ];
        assert_eq!(
            choose_modem(Some(&modem("d")), None, &modems),
            Some(modem("d"))
        );
        assert_eq!(
            choose_modem(None, Some(&modem("a")), &modems),
            Some(modem("a"))
        );
        // The SIM that rang is out of service: a serving modem with the shortest queue.
        assert_eq!(
            choose_modem(None, Some(&modem("d")), &modems),
            Some(modem("c"))
        );
        assert_eq!(choose_modem(None, None, &modems), Some(modem("c")));
        // Nothing usable: the SIM that rang, else one serving the profile, else the first.
        let down = [
            candidate("x", false, false, 0),
            candidate("y", true, false, 0),
        ];
        assert_eq!(
            choose_modem(None, Some(&modem("x")), &down),
            Some(modem("x"))
        );
        assert_eq!(choose_modem(None, None, &down), Some(modem("y")));
        let none_serving = [candidate("x", false, false, 0)];
        assert_eq!(choose_modem(None, None, &none_serving), Some(modem("x")));
        assert_eq!(choose_modem(None, None, &[]), None);
    }
}
