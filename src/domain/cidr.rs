//! An IP address range in CIDR notation ("192.0.2.0/24", "2001:db8::/32", or one address), for
//! the `[[sip]] allow` list.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address with a prefix length; the bits past the prefix are ignored when matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a text is not a CIDR range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error(
        "{0:?} is not an IP address or range (e.g. \"192.0.2.10\", \"192.0.2.0/24\", \"2001:db8::/32\")"
    )]
    Address(String),
    #[error("{text:?}: the prefix length must be 0 to {max}")]
    Prefix { text: String, max: u8 },
}

impl Cidr {
    /// The range of one address.
    pub fn host(address: IpAddr) -> Cidr {
        let prefix = if address.is_ipv4() { 32 } else { 128 };
        Cidr {
            network: address,
            prefix,
        }
    }

    /// Whether `address` is in the range. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, as a
    /// dual-stack socket reports IPv4 peers) matches as its IPv4 address.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        match (self.network, address) {
            (IpAddr::V4(net), IpAddr::V4(addr)) => {
                let mask = mask(self.prefix, 32) as u32;
                u32::from(net) & mask == u32::from(addr) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(addr)) => {
                let mask = mask(self.prefix, 128);
                u128::from(net) & mask == u128::from(addr) & mask
            }
            _ => false,
        }
    }
}

/// The top `prefix` bits of a `width`-bit number set.
fn mask(prefix: u8, width: u32) -> u128 {
    let prefix = u32::from(prefix).min(width);
    if prefix == 0 {
        0
    } else {
        (u128::MAX << (128 - prefix)) >> (128 - width)
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Cidr, CidrError> {
        let trimmed = text.trim();
        let (address, prefix) = match trimmed.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (trimmed, None),
        };
        let address: IpAddr = address
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| CidrError::Address(text.to_string()))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(prefix) => match prefix.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => {
                    return Err(CidrError::Prefix {
                        text: text.to_string(),
                        max,
                    });
                }
            },
        };
        Ok(Cidr {
            network: address,
            prefix,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_match_their_addresses_only() {
        assert!(cidr("192.0.2.0/24").contains(ip("192.0.2.200")));
        assert!(!cidr("192.0.2.0/24").contains(ip("192.0.3.1")));
        assert!(cidr("192.0.2.7").contains(ip("192.0.2.7")));
        assert!(!cidr("192.0.2.7").contains(ip("192.0.2.8")));
        assert!(cidr("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(cidr("2001:db8::/32").contains(ip("2001:db8:1::5")));
        assert!(!cidr("2001:db8::/32").contains(ip("2001:db9::5")));
        assert!(cidr("::1").contains(ip("::1")));
        assert!(
            !cidr("::/0").contains(ip("192.0.2.1")),
            "families never mix"
        );
    }

    #[test]
    fn mapped_ipv4_matches_as_ipv4() {
        assert!(cidr("192.0.2.0/24").contains(ip("::ffff:192.0.2.1")));
    }

    #[test]
    fn bad_ranges_say_what_is_wrong() {
        assert!(matches!(
            "192.0.2.0/33".parse::<Cidr>(),
            Err(CidrError::Prefix { max: 32, .. })
        ));
        assert!(matches!(
            "example.com".parse::<Cidr>(),
            Err(CidrError::Address(_))
        ));
        assert!("10.0.0.0/x".parse::<Cidr>().is_err());
    }
}
