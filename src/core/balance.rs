//! The credit on a pay-as-you-go SIM, read from the network's answer to a balance code ("Your
//! balance is £4.50", "Bal: £0.32", "You have 350p credit", "Your main balance is GBP 4.50") and
//! whether it is low. Read generally, not per network: every amount of money in the text (pounds
//! with `£` or `GBP`, pence with `p`), the one nearest after a word for credit ("balance",
//! "credit", ...) chosen, else the first. Pure: text in, pence out.

/// Words that introduce the SIM's credit; an amount soon after one of them is the balance, not
/// an offer ("top up £10 and get ...").
const CREDIT_WORDS: &[&str] = &[
    "balance",
    "bal",
    "credit",
    "remaining",
    "airtime",
    "account",
    "have",
    "left",
];

/// How far (in characters) after a credit word its amount may start.
const NEAR: usize = 24;

/// An amount of money found in the text, with where it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Found {
    pence: i64,
    at: usize,
    /// Marked as money (£, GBP, p, pence, pounds), not a bare number after a credit word.
    marked: bool,
}

/// The balance in pence the text states, if it states one.
pub fn parse_pence(text: &str) -> Option<i64> {
    let lower = text.to_lowercase();
    let chars: Vec<char> = lower.chars().collect();
    let amounts = amounts(&chars);
    let words = credit_word_ends(&chars);
    // The first amount within reach after a credit word, marked as money before bare.
    let near_word = |marked: bool| {
        words.iter().find_map(|&end| {
            amounts
                .iter()
                .find(|a| a.marked == marked && a.at >= end && a.at - end <= NEAR)
        })
    };
    near_word(true)
        .or_else(|| amounts.iter().find(|a| a.marked))
        .or_else(|| near_word(false))
        .map(|a| a.pence)
}

/// Where each credit word ends (its next character's index).
fn credit_word_ends(chars: &[char]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_alphabetic() && (i == 0 || !chars[i - 1].is_alphabetic()) {
            let start = i;
            while i < chars.len() && chars[i].is_alphabetic() {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if CREDIT_WORDS.contains(&word.as_str()) {
                ends.push(i);
            }
        } else {
            i += 1;
        }
    }
    ends
}

/// Every number in the text, read as money: `£4.50`, `£ 4`, `gbp 4.50`, `4.50 gbp`, `350p`,
/// `350 pence`, `4 pounds`, `-£0.50`, `£1,234.56`; a bare `4.50` (two decimals) as pounds, not
/// marked.
fn amounts(chars: &[char]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // A digit inside a word or a longer token (a phone number's "+44", "x2") is skipped
        // whole, as are dates and times.
        let start = i;
        let mut digits = String::new();
        let mut decimals: Option<String> = None;
        while i < chars.len() {
            let c = chars[i];
            if c.is_ascii_digit() {
                match &mut decimals {
                    Some(d) => d.push(c),
                    None => digits.push(c),
                }
                i += 1;
            } else if c == ','
                && decimals.is_none()
                && chars.get(i + 1..i + 4).is_some_and(|next| {
                    next.iter().all(char::is_ascii_digit)
                        && !chars.get(i + 4).is_some_and(char::is_ascii_digit)
                })
            {
                i += 1; // a thousands separator
            } else if c == '.'
                && decimals.is_none()
                && chars.get(i + 1).is_some_and(char::is_ascii_digit)
            {
                decimals = Some(String::new());
                i += 1;
            } else {
                break;
            }
        }
        let before = prefix(chars, start);
        let after = suffix(chars, i);
        let glued = chars.get(i).is_some_and(|c| {
            c.is_ascii_digit() || matches!(c, '/' | ':') || (c.is_alphabetic() && after.is_none())
        }) || (start > 0
            && chars
                .get(start - 1)
                .is_some_and(|c| c.is_alphabetic() || matches!(c, '/' | ':' | '+'))
            && before.is_none());
        if glued {
            continue;
        }
        let negative = before.is_some_and(|b| b.negative);
        let Ok(whole) = digits.parse::<i64>() else {
            continue;
        };
        let fraction = decimals.as_deref().unwrap_or("");
        let pence = match (before.map(|b| b.pounds), after) {
            (Some(true), _) | (_, Some(Unit::Pounds)) => {
                let fraction: i64 = match fraction.len() {
                    0 => 0,
                    1 => fraction.parse::<i64>().unwrap_or(0) * 10,
                    _ => fraction.get(..2).and_then(|f| f.parse().ok()).unwrap_or(0),
                };
                Some((whole * 100 + fraction, true))
            }
            (_, Some(Unit::Pence)) if fraction.is_empty() => Some((whole, true)),
            (_, Some(Unit::Pence)) => None,
            // A bare amount in pounds and pence: a modem whose character set lost the '£'.
            (_, None) if fraction.len() == 2 => fraction
                .parse::<i64>()
                .ok()
                .map(|fraction| (whole * 100 + fraction, false)),
            _ => None,
        };
        if let Some((pence, marked)) = pence {
            found.push(Found {
                pence: if negative { -pence } else { pence },
                at: before.map_or(start, |b| b.at),
                marked,
            });
        }
    }
    found
}

#[derive(Debug, Clone, Copy)]
struct Before {
    /// A pound mark: `£`, `gbp`, or a '?' where the modem's character set lost the '£'.
    pounds: bool,
    negative: bool,
    at: usize,
}

/// The currency mark (and minus sign) just before a number at `start`, if any: `£4`, `£ 4`,
/// `-£4`, `£-4`, `GBP 4`.
fn prefix(chars: &[char], start: usize) -> Option<Before> {
    let at = |k: usize| chars.get(k).copied();
    let mut j = start;
    while j > 0 && at(j - 1) == Some(' ') {
        j -= 1;
    }
    let mut negative = false;
    if j > 0 && at(j - 1) == Some('-') {
        negative = true;
        j -= 1;
    }
    let mark = if j > 0 && matches!(at(j - 1), Some('£' | '?')) {
        j - 1
    } else if j >= 3 && chars.get(j - 3..j) == Some(&['g', 'b', 'p'][..]) {
        j - 3
    } else {
        return None;
    };
    let mut start_at = mark;
    if mark > 0 && at(mark - 1) == Some('-') {
        negative = true;
        start_at = mark - 1;
    }
    Some(Before {
        pounds: true,
        negative,
        at: start_at,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Pounds,
    Pence,
}

/// The unit written just after a number ending at `end`: `p`, `pence`, `gbp`, `pounds`.
fn suffix(chars: &[char], end: usize) -> Option<Unit> {
    let mut j = end;
    while chars.get(j) == Some(&' ') {
        j += 1;
    }
    let word_end = (j..chars.len())
        .find(|&k| !chars[k].is_alphabetic())
        .unwrap_or(chars.len());
    let word: String = chars.get(j..word_end)?.iter().collect();
    // "350p" must touch its number; "350 p" is not written.
    match word.as_str() {
        "p" if j == end => Some(Unit::Pence),
        "pence" => Some(Unit::Pence),
        "gbp" | "pounds" | "pound" => Some(Unit::Pounds),
        _ => None,
    }
}

/// Pence as pounds, `£4.50`, `-£0.50`.
pub fn format_pence(pence: i64) -> String {
    let sign = if pence < 0 { "-" } else { "" };
    let pence = pence.abs();
    format!("{sign}£{}.{:02}", pence / 100, pence % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replies in the wordings of UK networks (as their customers quote them), and odd ones.
    const CASES: &[(&str, Option<i64>)] = &[
        // EE
        ("Your balance is £4.50", Some(450)),
        (
            "Your balance is £10.00. Top up £20 and get 10GB free!",
            Some(1000),
        ),
        // Vodafone
        ("Balance: £3.20. Reply 1 for more options", Some(320)),
        ("Your current balance is £12.50.", Some(1250)),
        // O2
        (
            "You have £2.50 of credit. Your Bolt On renews on 14/01/27",
            Some(250),
        ),
        ("Bal: £0.32", Some(32)),
        // Three
        ("Credit: £1.20 Data: 500MB", Some(120)),
        ("Your balance is £0.00", Some(0)),
        // giffgaff
        (
            "You have £3.45 credit remaining. Your goodybag renews in 12 days.",
            Some(345),
        ),
        // Tesco Mobile, Asda: pence
        ("You have 350p credit", Some(350)),
        ("Your balance is 250p. Call 4455 to top up.", Some(250)),
        ("Remaining credit 75 pence", Some(75)),
        // Lebara, Lyca: GBP
        ("Your main balance is GBP 4.50.", Some(450)),
        (
            "Your balance is GBP1.00. Your plan expires 02-03-2027",
            Some(100),
        ),
        ("Balance 4.50 GBP valid until 31/12/2026", Some(450)),
        // Negative, thousands, no pence
        ("Your balance is -£0.50", Some(-50)),
        ("Your balance is £-0.50", Some(-50)),
        ("Account balance £1,234.56", Some(123456)),
        ("Your balance is £5", Some(500)),
        ("You have 4 pounds left", Some(400)),
        // A modem whose character set lost the '£'
        ("Your balance is ?4.50", Some(450)),
        ("Balance 2.00", Some(200)),
        // An offer first, the balance after its word
        (
            "Get £5 bonus when you top up! Your balance is £1.10",
            Some(110),
        ),
        // No money in it
        ("You have 2.5GB data left", None),
        ("Service unavailable. Call 150.", None),
        ("Your number is 07700 900123", None),
        ("You have 350pts", None),
        ("", None),
        ("UNKNOWN APPLICATION", None),
    ];

    #[test]
    fn uk_networks_wordings() {
        for (text, pence) in CASES {
            assert_eq!(parse_pence(text), *pence, "{text}");
        }
    }

    #[test]
    fn pence_as_pounds() {
        assert_eq!(format_pence(450), "£4.50");
        assert_eq!(format_pence(5), "£0.05");
        assert_eq!(format_pence(-50), "-£0.50");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC*") {
            let _ = parse_pence(&text);
        }

        #[test]
        fn a_stated_balance_is_read(pounds in 0i64..10_000, pence in 0i64..100) {
            let text = format!("Your balance is £{pounds}.{pence:02}. Thank you");
            proptest::prop_assert_eq!(parse_pence(&text), Some(pounds * 100 + pence));
        }
    }
}
