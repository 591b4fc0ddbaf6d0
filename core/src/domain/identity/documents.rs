//! Identity documents (A2): every document type of the manuals, each number
//! parsed by its own format rule, validity periods with the resident ID
//! card's 5/10/20-year/long-term rule (004), expiry against the server
//! clock. Parse, don't validate: a `Document` cannot hold an invalid value.
use crate::domain::identity::users::IdNumber;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// The document types of 000 and 002 §1.3.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentType {
    /// 中国居民身份证 (GB 11643, 18 characters).
    ResidentId,
    /// 港澳居民来往内地通行证: H/M + 8 digits (older cards: + 10 digits).
    HkMacauTravelPermit,
    /// 台湾居民来往大陆通行证: 8 digits (older cards: 10 digits).
    TaiwanTravelPermit,
    /// 外国人永久居留身份证: 3 letters + 12 digits (2004 card) or 18 digits
    /// starting with 9 and a GB 11643 check character (2023 card).
    ForeignPermanentResidentId,
    /// 护照: 5–17 letters and digits (Chinese: E/G + 8, or E + letter + 7).
    Passport,
    /// 军官证: "X字第" + 6–8 digits + "号", or the digits alone.
    MilitaryOfficerId,
    /// 港澳台居民居住证: 18 characters, prefix 810000/820000/830000, GB 11643.
    HmtResidencePermit,
}

pub const ALL_TYPES: [DocumentType; 7] = [
    DocumentType::ResidentId,
    DocumentType::HkMacauTravelPermit,
    DocumentType::TaiwanTravelPermit,
    DocumentType::ForeignPermanentResidentId,
    DocumentType::Passport,
    DocumentType::MilitaryOfficerId,
    DocumentType::HmtResidencePermit,
];

impl DocumentType {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentType::ResidentId => "resident_id",
            DocumentType::HkMacauTravelPermit => "hk_macau_travel_permit",
            DocumentType::TaiwanTravelPermit => "taiwan_travel_permit",
            DocumentType::ForeignPermanentResidentId => "foreign_permanent_resident_id",
            DocumentType::Passport => "passport",
            DocumentType::MilitaryOfficerId => "military_officer_id",
            DocumentType::HmtResidencePermit => "hmt_residence_permit",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ALL_TYPES.into_iter().find(|t| t.as_str() == s)
    }

    /// Locale key of the type's display name.
    pub fn label_key(self) -> String {
        format!("doc_{}", self.as_str())
    }
}

/// Why a document was refused; each is a locale key the page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("identity_err_type")]
    Type,
    #[error("identity_err_name")]
    Name,
    #[error("identity_err_number_format")]
    NumberFormat,
    #[error("identity_err_check_digit")]
    CheckDigit,
    #[error("identity_err_birth_date")]
    BirthDate,
    #[error("identity_err_region")]
    Region,
    #[error("identity_err_dates")]
    Dates,
    #[error("identity_err_not_yet_valid")]
    NotYetValid,
    #[error("identity_err_expired")]
    Expired,
    #[error("identity_err_term")]
    Term,
}

impl DocumentError {
    pub fn key(self) -> &'static str {
        match self {
            DocumentError::Type => "identity_err_type",
            DocumentError::Name => "identity_err_name",
            DocumentError::NumberFormat => "identity_err_number_format",
            DocumentError::CheckDigit => "identity_err_check_digit",
            DocumentError::BirthDate => "identity_err_birth_date",
            DocumentError::Region => "identity_err_region",
            DocumentError::Dates => "identity_err_dates",
            DocumentError::NotYetValid => "identity_err_not_yet_valid",
            DocumentError::Expired => "identity_err_expired",
            DocumentError::Term => "identity_err_term",
        }
    }
}

/// A person's name as printed on the document: Chinese characters (with
/// the middle dot of minority and foreign names) or Latin letters with
/// spaces, 1–50 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, DocumentError> {
        let normal: String = raw
            .trim()
            .chars()
            .map(|c| match c {
                '•' | '・' | '．' | '.' | '‧' | '∙' => '·',
                c => c,
            })
            .collect();
        let n = normal.chars().count();
        let ok_chars = normal.chars().all(|c| is_han(c) || c.is_ascii_alphabetic() || matches!(c, '·' | ' ' | '-'));
        let starts_ok = normal.chars().next().is_some_and(|c| is_han(c) || c.is_ascii_alphabetic());
        if !(1..=50).contains(&n) || !ok_chars || !starts_ok || normal.contains("  ") || normal.contains("··") {
            return Err(DocumentError::Name);
        }
        Ok(Self(normal))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Characters outside the basic CJK block (extensions A–H, compatibility
    /// ideographs): the authority channel often stores them as symbols and
    /// rejects the name (002 §2.4).
    pub fn has_rare_character(&self) -> bool {
        self.0.chars().any(|c| is_han(c) && !('\u{4E00}'..='\u{9FFF}').contains(&c))
    }
}

fn is_han(c: char) -> bool {
    matches!(c,
        '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2FA1F}' | '\u{30000}'..='\u{3134F}')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
}

/// A document number, normalised (upper case, full-width folded, spaces
/// removed) and valid for its type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DocumentNumber {
    kind: DocumentType,
    value: String,
}

/// Province-level prefixes of GB/T 2260 used in resident ID numbers.
const PROVINCES: [&str; 34] = [
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42", "43", "44",
    "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82",
];

fn fold(raw: &str) -> String {
    raw.trim()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c {
            '０'..='９' | 'Ａ'..='Ｚ' | 'ａ'..='ｚ' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            c => c,
        })
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The GB 11643 checks (shape, check character, real date) with the
/// project's one implementation, `IdNumber`, mapped to document errors.
fn gb11643(value: &str) -> Result<IdNumber, DocumentError> {
    IdNumber::parse(value).map_err(|e| {
        if e.contains("check character") {
            DocumentError::CheckDigit
        } else if e.contains("birth date") {
            DocumentError::BirthDate
        } else {
            DocumentError::NumberFormat
        }
    })
}

impl DocumentNumber {
    pub fn parse(kind: DocumentType, raw: &str) -> Result<Self, DocumentError> {
        let v = fold(raw);
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let ok = match kind {
            DocumentType::ResidentId => {
                let id = gb11643(&v)?;
                if !PROVINCES.contains(&&id.as_str()[..2]) {
                    return Err(DocumentError::Region);
                }
                return Ok(Self { kind, value: id.as_str().to_string() });
            }
            DocumentType::HmtResidencePermit => {
                let id = gb11643(&v)?;
                if !["810000", "820000", "830000"].contains(&&id.as_str()[..6]) {
                    return Err(DocumentError::Region);
                }
                return Ok(Self { kind, value: id.as_str().to_string() });
            }
            DocumentType::ForeignPermanentResidentId if v.len() == 18 => {
                let id = gb11643(&v)?;
                if !id.as_str().starts_with('9') {
                    return Err(DocumentError::NumberFormat);
                }
                return Ok(Self { kind, value: id.as_str().to_string() });
            }
            DocumentType::ForeignPermanentResidentId => {
                // `get`: a multi-byte character across byte 3 is a format error, not a panic.
                v.len() == 15
                    && v.get(..3).is_some_and(|p| p.bytes().all(|b| b.is_ascii_uppercase()))
                    && v.get(3..).is_some_and(digits)
            }
            DocumentType::HkMacauTravelPermit => {
                (v.len() == 9 || v.len() == 11) && (v.starts_with('H') || v.starts_with('M')) && digits(&v[1..])
            }
            DocumentType::TaiwanTravelPermit => (v.len() == 8 || v.len() == 10) && digits(&v),
            DocumentType::Passport => {
                (5..=17).contains(&v.len())
                    && v.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                    && v.bytes().any(|b| b.is_ascii_digit())
            }
            DocumentType::MilitaryOfficerId => {
                let inner = match (v.find("字第"), v.strip_suffix('号')) {
                    (Some(at), Some(body)) => {
                        let prefix = &v[..at];
                        let n = prefix.chars().count();
                        ((1..=2).contains(&n) && prefix.chars().all(is_han)).then(|| &body[at + "字第".len()..])
                    }
                    (None, None) => Some(v.as_str()),
                    _ => None,
                };
                inner.is_some_and(|d| (6..=8).contains(&d.len()) && digits(d))
            }
        };
        if ok { Ok(Self { kind, value: v }) } else { Err(DocumentError::NumberFormat) }
    }

    pub fn kind(&self) -> DocumentType {
        self.kind
    }
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The one rule every path that takes a document number calls (sign-in
    /// by document number, appeals, agent registration, the CLI, staff
    /// search): with a type (`doc_type` as the forms send it) the number
    /// must fit that type; without one (a sign-in box, an old form) the
    /// first of the seven types it fits, GB 11643 numbers first. The stored
    /// value is the same normalised spelling for every type it fits, so a
    /// lookup by `as_str` does not depend on which type was guessed.
    pub fn parse_any(doc_type: Option<&str>, raw: &str) -> Result<Self, DocumentError> {
        match doc_type.map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => Self::parse(DocumentType::parse(t).ok_or(DocumentError::Type)?, raw),
            None => {
                const GUESS: [DocumentType; 7] = [
                    DocumentType::ResidentId,
                    DocumentType::HmtResidencePermit,
                    DocumentType::ForeignPermanentResidentId,
                    DocumentType::HkMacauTravelPermit,
                    DocumentType::MilitaryOfficerId,
                    DocumentType::TaiwanTravelPermit,
                    DocumentType::Passport,
                ];
                let mut first_err = None;
                for kind in GUESS {
                    match Self::parse(kind, raw) {
                        Ok(n) => return Ok(n),
                        Err(e) => {
                            first_err.get_or_insert(e);
                        }
                    }
                }
                Err(first_err.unwrap_or(DocumentError::NumberFormat))
            }
        }
    }

    /// Birth date and sex, for the 18-character GB 11643 numbers.
    pub fn birth_and_sex(&self) -> Option<(NaiveDate, Sex)> {
        if self.value.len() != 18 || !self.value.is_ascii() {
            return None;
        }
        let date = NaiveDate::parse_from_str(&self.value[6..14], "%Y%m%d").ok()?;
        let seq = self.value.as_bytes()[16];
        Some((date, if (seq - b'0') % 2 == 1 { Sex::Male } else { Sex::Female }))
    }
}

/// A GB 11643 number checked by [`IdNumber`] is a resident ID card's
/// number (callers that had only resident ID numbers keep working where a
/// document of any type is taken).
impl From<IdNumber> for DocumentNumber {
    fn from(id: IdNumber) -> Self {
        Self { kind: DocumentType::ResidentId, value: id.as_str().to_string() }
    }
}

/// A validity period: start date and end date, or long-term (长期).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Validity {
    pub start: NaiveDate,
    /// `None` = long-term.
    pub end: Option<NaiveDate>,
}

fn date(raw: &str) -> Result<NaiveDate, DocumentError> {
    let raw = raw.trim().replace(['.', '/'], "-");
    NaiveDate::parse_from_str(&raw, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(&raw, "%Y%m%d"))
        .map_err(|_| DocumentError::Dates)
}

fn add_years(d: NaiveDate, years: i32) -> Option<NaiveDate> {
    d.with_year(d.year() + years).or_else(|| NaiveDate::from_ymd_opt(d.year() + years, 2, 28))
}

fn age_on(birth: NaiveDate, day: NaiveDate) -> i32 {
    let mut age = day.year() - birth.year();
    if (day.month(), day.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

impl Validity {
    /// Parses "start" and "end" (empty end with `long_term`) and checks
    /// the order; expiry is checked against `today` by `Document::parse`.
    pub fn parse(start: &str, end: &str, long_term: bool) -> Result<Self, DocumentError> {
        let start = date(start)?;
        let end = if long_term { None } else { Some(date(end)?) };
        if end.is_some_and(|e| e <= start) {
            return Err(DocumentError::Dates);
        }
        Ok(Self { start, end })
    }

    pub fn expired_on(&self, today: NaiveDate) -> bool {
        self.end.is_some_and(|e| e < today)
    }
}

/// A document as the person declared it: type, number, name, validity —
/// each valid, not expired on the day it was parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Document {
    pub number: DocumentNumber,
    pub name: PersonName,
    pub validity: Validity,
}

/// The raw fields of the document form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DocumentForm {
    #[serde(default)]
    pub doc_type: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub number: String,
    #[serde(default)]
    pub valid_from: String,
    #[serde(default)]
    pub valid_to: String,
    #[serde(default)]
    pub long_term: Option<String>,
}

impl Document {
    pub fn parse(form: &DocumentForm, today: NaiveDate) -> Result<Self, DocumentError> {
        let kind = DocumentType::parse(form.doc_type.trim()).ok_or(DocumentError::Type)?;
        let name = PersonName::parse(&form.name)?;
        let number = DocumentNumber::parse(kind, &form.number)?;
        let long_term = form.long_term.as_deref().is_some_and(|v| !v.is_empty() && v != "0" && v != "false");
        let validity = Validity::parse(&form.valid_from, &form.valid_to, long_term)?;
        Self::new(number, name, validity, today)
    }

    /// Checks the validity period against the document and `today`.
    pub fn new(
        number: DocumentNumber,
        name: PersonName,
        validity: Validity,
        today: NaiveDate,
    ) -> Result<Self, DocumentError> {
        if validity.start > today {
            return Err(DocumentError::NotYetValid);
        }
        if validity.expired_on(today) {
            return Err(DocumentError::Expired);
        }
        if let Some((birth, _)) = number.birth_and_sex()
            && (birth > today || validity.start < birth)
        {
            return Err(DocumentError::BirthDate);
        }
        match number.kind() {
            DocumentType::ResidentId => {
                // 004 / Resident ID Card Law art. 5: under 16 → 5 years,
                // 16–25 → 10, 26–45 → 20, 46 and over → long-term.
                let birth = number.birth_and_sex().map(|(b, _)| b).ok_or(DocumentError::BirthDate)?;
                let years = match age_on(birth, validity.start) {
                    ..16 => Some(5),
                    16..=25 => Some(10),
                    26..=45 => Some(20),
                    _ => None,
                };
                let expected = years.and_then(|y| add_years(validity.start, y));
                if validity.end != expected {
                    return Err(DocumentError::Term);
                }
            }
            _ => {
                // Permits and passports are issued for at most 10 years and
                // never long-term.
                let latest = add_years(validity.start, 10);
                match (validity.end, latest) {
                    (Some(end), Some(latest)) if end <= latest => {}
                    _ => return Err(DocumentError::Term),
                }
            }
        }
        Ok(Self { number, name, validity })
    }

    pub fn kind(&self) -> DocumentType {
        self.number.kind()
    }

    /// Age in whole years on `today`, when the number carries a birth date.
    pub fn age_on(&self, today: NaiveDate) -> Option<i32> {
        self.number.birth_and_sex().map(|(b, _)| age_on(b, today))
    }
}

/// `**秀`: only the last character of a name shows (002 §1.3.3.1).
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    match chars.split_last() {
        Some((last, rest)) => format!("{}{}", "*".repeat(rest.len()), last),
        None => String::new(),
    }
}

/// The first and last character with stars between (`1**************4`)
/// as the personal centre shows a bound document (002 §1.3.3.1 shows the
/// tail only; the head tells the person which document it is).
pub fn mask_number(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 4 {
        return "*".repeat(chars.len());
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{}{}{}", chars[0], "*".repeat(chars.len() - 5), tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn form(t: &str, name: &str, number: &str, from: &str, to: &str) -> DocumentForm {
        DocumentForm {
            doc_type: t.into(),
            name: name.into(),
            number: number.into(),
            valid_from: from.into(),
            valid_to: to.into(),
            long_term: (to.is_empty()).then(|| "on".into()),
        }
    }

    #[test]
    fn resident_id_birth_and_sex() {
        let n = DocumentNumber::parse(DocumentType::ResidentId, "11010519491231002x").unwrap();
        assert_eq!(n.as_str(), "11010519491231002X");
        assert_eq!(n.birth_and_sex(), Some((d("1949-12-31"), Sex::Female)));
        let m = DocumentNumber::parse(DocumentType::ResidentId, "110101199003074514").unwrap();
        assert_eq!(m.birth_and_sex(), Some((d("1990-03-07"), Sex::Male)));
    }

    #[test]
    fn resident_id_errors() {
        let p = |s| DocumentNumber::parse(DocumentType::ResidentId, s);
        assert_eq!(p("110105194912310021"), Err(DocumentError::CheckDigit));
        assert_eq!(p("11010519491231"), Err(DocumentError::NumberFormat));
        assert_eq!(p("110105194913310021"), Err(DocumentError::BirthDate));
        // Valid check digit, unknown province 99.
        assert_eq!(p("990101199003074518"), Err(DocumentError::Region));
    }

    #[test]
    fn id_card_terms() {
        let today = d("2026-11-26");
        // Born 1990: 25 at 2015 → 10 years.
        assert!(
            Document::parse(&form("resident_id", "张三", "110101199003074514", "2015-06-06", "2025-06-06"), today)
                .is_err_and(|e| e == DocumentError::Expired)
        );
        assert!(
            Document::parse(&form("resident_id", "张三", "110101199003074514", "2018-06-06", "2038-06-06"), today)
                .is_ok()
        );
        assert_eq!(
            Document::parse(&form("resident_id", "张三", "110101199003074514", "2018-06-06", "2028-06-06"), today),
            Err(DocumentError::Term)
        );
        // Born 1949 → long-term from 46.
        assert!(Document::parse(&form("resident_id", "李秀", "11010519491231002X", "2010-01-01", ""), today).is_ok());
        assert_eq!(
            Document::parse(&form("resident_id", "张三", "110101199003074514", "2018-06-06", ""), today),
            Err(DocumentError::Term)
        );
        assert_eq!(
            Document::parse(&form("resident_id", "张三", "110101199003074514", "2027-06-06", "2047-06-06"), today),
            Err(DocumentError::NotYetValid)
        );
    }

    #[test]
    fn other_types() {
        let ok = |t, s| DocumentNumber::parse(t, s).is_ok();
        assert!(ok(DocumentType::HkMacauTravelPermit, "H12345678"));
        assert!(ok(DocumentType::HkMacauTravelPermit, "m1234567890"));
        assert!(!ok(DocumentType::HkMacauTravelPermit, "X12345678"));
        assert!(ok(DocumentType::TaiwanTravelPermit, "12345678"));
        assert!(!ok(DocumentType::TaiwanTravelPermit, "1234567"));
        assert!(ok(DocumentType::ForeignPermanentResidentId, "USA110090017001"));
        assert!(!ok(DocumentType::ForeignPermanentResidentId, "US1110090017001"));
        assert!(ok(DocumentType::Passport, "E12345678"));
        assert!(!ok(DocumentType::Passport, "ABCDEFG"));
        assert!(ok(DocumentType::MilitaryOfficerId, "南字第1234567号"));
        assert!(ok(DocumentType::MilitaryOfficerId, "1234567"));
        assert!(!ok(DocumentType::MilitaryOfficerId, "南字第12号"));
        assert_eq!(
            DocumentNumber::parse(DocumentType::HmtResidencePermit, "110101199003074514"),
            Err(DocumentError::Region)
        );
    }

    #[test]
    fn names() {
        assert_eq!(PersonName::parse(" 买买提•艾力 ").unwrap().as_str(), "买买提·艾力");
        assert!(PersonName::parse("John Smith").is_ok());
        assert!(PersonName::parse("张3").is_err());
        assert!(PersonName::parse("").is_err());
        assert!(PersonName::parse("王䶮").unwrap().has_rare_character());
        assert!(!PersonName::parse("王五").unwrap().has_rare_character());
    }

    #[test]
    fn parse_any_accepts_every_type() {
        let any = |raw: &str| DocumentNumber::parse_any(None, raw).map(|n| n.kind());
        assert_eq!(any("11010519491231002x"), Ok(DocumentType::ResidentId));
        assert_eq!(any("e12345678"), Ok(DocumentType::Passport));
        assert_eq!(any("H12345678"), Ok(DocumentType::HkMacauTravelPermit));
        assert_eq!(any("ABC123456789012"), Ok(DocumentType::ForeignPermanentResidentId));
        assert_eq!(any("12345678"), Ok(DocumentType::MilitaryOfficerId));
        assert!(any("110105194912310021").is_err());
        assert_eq!(DocumentNumber::parse_any(Some("passport"), "E12345678").unwrap().as_str(), "E12345678");
        assert!(DocumentNumber::parse_any(Some("resident_id"), "E12345678").is_err());
        assert_eq!(DocumentNumber::parse_any(Some("nope"), "E12345678"), Err(DocumentError::Type));
    }

    #[test]
    fn masks() {
        assert_eq!(mask_name("李秀"), "*秀");
        assert_eq!(mask_number("11010519491231002X"), "1*************002X");
    }
}
