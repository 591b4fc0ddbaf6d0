//! The unified social credit code (统一社会信用代码, GB 32100-2015) that
//! identifies a legal person (C1). Eighteen characters from a 31-letter
//! alphabet (digits and capitals without I, O, S, V, Z):
//!
//! | pos | meaning |
//! |-----|---------|
//! | 1   | registration authority (1 机构编制, 5 民政, 9 工商, Y 其他 …) |
//! | 2   | organisation type within that authority |
//! | 3–8 | region code (GB/T 2260) |
//! | 9–17| organisation code (GB 11714, with its own check character) |
//! | 18  | check character (weighted sum mod 31) |
//!
//! Parse, don't validate: a `Uscc` value is always well-formed.
use std::fmt;

const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Uscc(String);

/// Why a string is not a credit code; each maps to a message for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsccError {
    Length,
    Character,
    Authority,
    Region,
    OrganisationCheck,
    Check,
}

impl UsccError {
    /// Locale key of the message shown to people.
    pub fn message_key(self) -> &'static str {
        match self {
            UsccError::Length => "uscc_length",
            UsccError::Character => "uscc_character",
            UsccError::Authority | UsccError::Region => "uscc_structure",
            UsccError::OrganisationCheck | UsccError::Check => "uscc_check",
        }
    }
}

impl fmt::Display for UsccError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            UsccError::Length => "a unified social credit code has 18 characters",
            UsccError::Character => "only digits and capital letters other than I, O, S, V, Z may appear",
            UsccError::Authority => "the first two characters are not a known registration authority and type",
            UsccError::Region => "characters 3–8 must be a region code (six digits)",
            UsccError::OrganisationCheck => "the organisation code (characters 9–17) has a wrong check character",
            UsccError::Check => "the check character (the last one) does not match",
        };
        f.write_str(s)
    }
}

fn value(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).and_then(|p| u32::try_from(p).ok())
}

/// The check character for the first 17 characters (all in the alphabet).
pub fn check_character(first17: &[u8]) -> Option<char> {
    let mut sum = 0u32;
    for (c, w) in first17.iter().zip(WEIGHTS) {
        sum += value(*c)? * w;
    }
    let idx = (31 - sum % 31) % 31;
    ALPHABET.get(idx as usize).map(|b| char::from(*b))
}

/// GB 11714: C9 = 11 − (Σ mod 11), 10 → X, 11 → 0; letters count 10–35.
fn organisation_check(code: &[u8]) -> Option<u8> {
    let mut sum = 0u32;
    for (c, w) in code.iter().zip(ORG_WEIGHTS) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return None,
        };
        sum += v * w;
    }
    Some(match 11 - sum % 11 {
        10 => b'X',
        11 => b'0',
        n => b'0' + u8::try_from(n).ok()?,
    })
}

impl Uscc {
    /// Accepts surrounding spaces and lower case; everything else must be exact.
    pub fn parse(raw: &str) -> Result<Self, UsccError> {
        let s = raw.trim().to_ascii_uppercase();
        let b = s.as_bytes();
        if s.chars().count() != 18 {
            return Err(UsccError::Length);
        }
        if !b.iter().all(|c| value(*c).is_some()) {
            return Err(UsccError::Character);
        }
        // Registration authorities 1–9, A–G, Y; the type is a digit or Y (其他)
        // but 1 is always valid, so check only that the pair is in range.
        if !matches!(b[0], b'1'..=b'9' | b'A'..=b'G' | b'Y') || !(b[1].is_ascii_digit() || b[1] == b'Y') {
            return Err(UsccError::Authority);
        }
        if !b[2..8].iter().all(u8::is_ascii_digit) {
            return Err(UsccError::Region);
        }
        if organisation_check(&b[8..16]) != Some(b[16]) {
            return Err(UsccError::OrganisationCheck);
        }
        if check_character(&b[..17]).map(|c| c as u32) != Some(u32::from(b[17])) {
            return Err(UsccError::Check);
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Characters 3–8: the region of registration.
    pub fn region_code(&self) -> &str {
        &self.0[2..8]
    }

    /// Characters 9–17: the GB 11714 organisation code.
    pub fn organisation_code(&self) -> &str {
        &self.0[8..17]
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Published codes of well-known companies; each passes both checks.
    const REAL: [&str; 5] =
        ["91440300708461136T", "9144030071526726XG", "911100001000044477", "91110108551385082Q", "914403001922038216"];

    #[test]
    fn real_codes_parse() {
        for c in REAL {
            let u = Uscc::parse(c).unwrap_or_else(|e| panic!("{c}: {e}"));
            assert_eq!(u.as_str(), c);
        }
        let u = Uscc::parse(" 91440300708461136t ").unwrap();
        assert_eq!(u.region_code(), "440300");
        assert_eq!(u.organisation_code(), "708461136");
    }

    #[test]
    fn check_character_is_computed() {
        for c in REAL {
            assert_eq!(check_character(&c.as_bytes()[..17]), c.chars().last());
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(Uscc::parse("91440300708461136"), Err(UsccError::Length));
        assert_eq!(Uscc::parse("91440300708461136TT"), Err(UsccError::Length));
        assert_eq!(Uscc::parse("91440300708461136A"), Err(UsccError::Check));
        assert_eq!(Uscc::parse("9144030070846113OT"), Err(UsccError::Character));
        assert_eq!(Uscc::parse("Z1440300708461136T"), Err(UsccError::Character));
        assert_eq!(Uscc::parse("914403007084611X6T"), Err(UsccError::OrganisationCheck));
        assert_eq!(Uscc::parse("914A0300708461136T"), Err(UsccError::Region));
        assert_eq!(Uscc::parse("91440300７08461136T"), Err(UsccError::Character));
    }
}
