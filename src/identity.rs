//! Normalised identities of applicants: one spelling per phone and email, so that the same
//! person writing by SMS and answering on a job board is recognised as one contact.

use crate::store::IdentityKey;

/// Kinds an identity may have.
pub const KINDS: &[&str] = &["phone", "email", "hh", "telegram"];

/// A phone number in E.164 (`+` and 8–15 digits). Russian (`8 9xx…`, `9xx…` ten digits,
/// `7…`) and Belarusian (`80 29…` domestic, `375…`) spellings are recognised.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let plus = trimmed.starts_with('+');
    if trimmed.chars().any(|c| c.is_alphabetic()) {
        return None;
    }
    let digits: String = trimmed.chars().filter(|c| c.is_ascii_digit()).collect();
    let international = if plus {
        digits
    } else if digits.len() == 11
        && digits.starts_with("80")
        && matches!(&digits[2..4], "25" | "29" | "33" | "44" | "17")
    {
        // Belarus, domestic: 80 + operator code + number.
        format!("375{}", &digits[2..])
    } else if digits.len() == 11 && digits.starts_with('8') {
        // Russia, domestic trunk prefix 8.
        format!("7{}", &digits[1..])
    } else if digits.len() == 10 && digits.starts_with('9') {
        // Russian mobile without the country code.
        format!("7{digits}")
    } else {
        digits
    };
    (8..=15)
        .contains(&international.len())
        .then(|| format!("+{international}"))
}

/// An email in lower case, when it looks like one.
pub fn normalize_email(raw: &str) -> Option<String> {
    let e = raw.trim().to_lowercase();
    let (local, domain) = e.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.contains(char::is_whitespace)
        && e.len() <= 254;
    ok.then_some(e)
}

/// Checks and normalises an identity; the error says what is wrong.
pub fn normalize(kind: &str, value: &str) -> Result<IdentityKey, String> {
    let kind = kind.trim().to_lowercase();
    let value = match kind.as_str() {
        "phone" => {
            normalize_phone(value).ok_or_else(|| format!("{value:?} is not a phone number"))?
        }
        "email" => {
            normalize_email(value).ok_or_else(|| format!("{value:?} is not an email address"))?
        }
        "hh" | "telegram" => {
            let v = value.trim();
            if v.is_empty() || v.len() > 100 || v.chars().any(char::is_whitespace) {
                return Err(format!("{value:?} is not a valid {kind} id"));
            }
            // Board ids are digits; messenger user names are case-insensitive.
            v.to_lowercase()
        }
        _ => {
            return Err(format!(
                "unknown identity kind {kind:?} (one of {})",
                KINDS.join(", ")
            ))
        }
    };
    Ok(IdentityKey { kind, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn russian_spellings_of_one_phone_are_one_number() {
        for raw in [
            "+7 (916) 123-45-67",
            "8 916 123 45 67",
            "89161234567",
            "9161234567",
            "7-916-123-45-67",
        ] {
            assert_eq!(
                normalize_phone(raw).as_deref(),
                Some("+79161234567"),
                "{raw}"
            );
        }
    }

    #[test]
    fn belarusian_spellings_of_one_phone_are_one_number() {
        for raw in [
            "+375 29 123-45-67",
            "80291234567",
            "8 (029) 123-45-67",
            "375291234567",
        ] {
            assert_eq!(
                normalize_phone(raw).as_deref(),
                Some("+375291234567"),
                "{raw}"
            );
        }
    }

    #[test]
    fn garbage_is_not_a_phone() {
        for raw in ["", "12345", "call me", "+1234567890123456", "8-800-SUPPORT"] {
            assert_eq!(normalize_phone(raw), None, "{raw}");
        }
    }

    #[test]
    fn emails_are_trimmed_and_lower_case() {
        assert_eq!(
            normalize_email("  Anna.Petrova@Mail.RU ").as_deref(),
            Some("anna.petrova@mail.ru")
        );
        assert_eq!(normalize_email("no-at-sign"), None);
        assert_eq!(normalize_email("a@b"), None);
    }

    #[test]
    fn unknown_kinds_and_bad_ids_are_refused() {
        assert!(normalize("fax", "1").is_err());
        assert!(normalize("hh", "with space").is_err());
        assert_eq!(
            normalize("HH", " 12345 ").unwrap(),
            IdentityKey {
                kind: "hh".into(),
                value: "12345".into()
            }
        );
    }
}
