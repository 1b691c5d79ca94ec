//! Display names people can trust (the bitchat audit's BCH-01-003).
//!
//! A name is a claim, never proof of who someone is: the app shows a
//! verified mark or a short fingerprint beside every name. What this module
//! stops is the text that would make one name pass for another or for a
//! mark of the app itself:
//! - invisible and direction-changing characters (controls, format
//!   characters such as zero-width joiners and bidi overrides, line and
//!   paragraph separators, blank-looking letters such as the Hangul filler);
//! - stacks of combining marks ("Zalgo" text that paints over its neighbours);
//! - claims of verification ("✓", "✔", "Verified", ...), which only the app
//!   may show;
//! - whitespace other than single inner spaces.
//!
//! These are protocol rules: a profile whose name breaks them is refused by
//! every node (`envelope_bad_body`), so such a name never reaches anyone.
//! [`skeleton`] is what names are compared by when the app flags a name
//! that looks like mine, a verified contact's or another visible peer's.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Longest display name, in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 48;
/// Combining marks allowed on one base character: enough for any script's
/// real accents (Vietnamese stacks two), not for marks that paint over lines.
const MAX_MARKS_PER_CHAR: usize = 2;

/// Why a name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    #[error("is empty")]
    Empty,
    #[error("is longer than {MAX_NAME_BYTES} bytes")]
    TooLong,
    #[error("has invisible or control characters")]
    Invisible,
    #[error("has spaces at its ends or several in a row")]
    Spacing,
    #[error("stacks too many accents on one letter")]
    Marks,
    #[error("claims to be verified (only the app shows that)")]
    ClaimsVerified,
}

/// Letters that render as nothing (they are `Lo`, so no category rule
/// catches them): Hangul fillers, the Braille blank, the Khmer inherent vowels.
const BLANK_LETTERS: &[char] =
    &['\u{115F}', '\u{1160}', '\u{3164}', '\u{FFA0}', '\u{2800}', '\u{17B4}', '\u{17B5}', '\u{180E}'];

/// Check marks and ballot boxes: the app's own verified mark looks like these.
const CHECK_MARKS: &[char] =
    &['\u{2713}', '\u{2714}', '\u{2611}', '\u{2705}', '\u{1F5F8}', '\u{1F5F9}', '\u{221A}', '\u{10003}', '\u{10004}'];

/// Words that claim what only in-person verification gives, compared by
/// skeleton so "Vérified" or "VER1FIED" count too.
const CLAIM_WORDS: &[&str] = &["verified", "verifie", "official"];

fn invisible(c: char) -> bool {
    use GeneralCategory::*;
    matches!(
        c.general_category(),
        Control | Format | Surrogate | PrivateUse | Unassigned | LineSeparator | ParagraphSeparator
    ) || BLANK_LETTERS.contains(&c)
        // Variation selectors pick an emoji's look; the supplementary ones
        // (and tags) can hide data in a name.
        || ('\u{E0000}'..='\u{E0FFF}').contains(&c)
}

/// Check a display name against the protocol's rules.
pub fn check_name(name: &str) -> Result<(), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameProblem::TooLong);
    }
    let mut marks = 0;
    let mut prev_space = true; // no space first
    for c in name.chars() {
        if invisible(c) {
            return Err(NameProblem::Invisible);
        }
        if c.is_whitespace() {
            if c != ' ' {
                return Err(NameProblem::Invisible);
            }
            if prev_space {
                return Err(NameProblem::Spacing);
            }
            prev_space = true;
            marks = 0;
            continue;
        }
        prev_space = false;
        if matches!(c.general_category(), GeneralCategory::NonspacingMark | GeneralCategory::EnclosingMark) {
            marks += 1;
            if marks > MAX_MARKS_PER_CHAR {
                return Err(NameProblem::Marks);
            }
        } else {
            marks = 0;
        }
        if CHECK_MARKS.contains(&c) {
            return Err(NameProblem::ClaimsVerified);
        }
    }
    if prev_space {
        return Err(NameProblem::Spacing);
    }
    let flat = skeleton(name);
    if CLAIM_WORDS.iter().any(|w| flat.contains(&skeleton(w))) {
        return Err(NameProblem::ClaimsVerified);
    }
    Ok(())
}

/// A name as a reader would confuse it: Unicode's confusable skeleton
/// (UTS #39: "аna" in Cyrillic and "ana" agree), lowercased, without
/// spaces, punctuation and combining marks, with the digits people use for
/// letters read as those letters. Two names with one skeleton look alike.
pub fn skeleton(name: &str) -> String {
    let confusable: String = unicode_security::skeleton(name).collect();
    confusable
        .chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .filter(|c| !matches!(c.general_category(), GeneralCategory::NonspacingMark | GeneralCategory::EnclosingMark))
        .map(|c| match c {
            '0' => 'o',
            '1' | 'i' | '|' => 'l',
            '3' => 'e',
            '4' => 'a',
            '5' => 's',
            '7' => 't',
            '8' => 'b',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_of_every_script_pass() {
        for n in ["Ana", "Zoë", "José María", "Nguyễn Văn", "Jürgen-Ö", "山田 太郎", "Ольга", "أحمد", "DJ 🎧 Max"]
        {
            assert_eq!(check_name(n), Ok(()), "{n}");
        }
    }

    #[test]
    fn invisible_direction_and_blank_characters_are_refused() {
        for n in [
            "Ana\u{200B}",   // zero-width space
            "A\u{200D}na",   // zero-width joiner
            "\u{202E}anA",   // right-to-left override
            "Ana\u{2066}x",  // isolate
            "An\u{00AD}a",   // soft hyphen
            "Ana\u{0007}",   // bell
            "Ana\u{2028}Bo", // line separator
            "\u{3164}",      // Hangul filler
            "Ana\u{E0041}",  // tag character
            "Ana\u{FEFF}",   // byte order mark
            "Ana\tBo",       // tab
            "Ana\u{00A0}Bo", // no-break space
            "\u{E000}",      // private use
        ] {
            assert_eq!(check_name(n), Err(NameProblem::Invisible), "{n:?}");
        }
    }

    #[test]
    fn spacing_marks_and_claims_are_refused() {
        assert_eq!(check_name(" Ana"), Err(NameProblem::Spacing));
        assert_eq!(check_name("Ana "), Err(NameProblem::Spacing));
        assert_eq!(check_name("Ana  Bo"), Err(NameProblem::Spacing));
        assert_eq!(check_name(""), Err(NameProblem::Empty));
        assert_eq!(check_name(&"a".repeat(49)), Err(NameProblem::TooLong));
        assert_eq!(check_name("A\u{0301}\u{0301}\u{0301}na"), Err(NameProblem::Marks));
        for n in ["Ana ✓", "✔ Ana", "Ana Verified", "VER1FIED Ana", "Ana (official)", "Vérified"] {
            assert_eq!(check_name(n), Err(NameProblem::ClaimsVerified), "{n}");
        }
    }

    #[test]
    fn lookalike_names_share_a_skeleton() {
        assert_eq!(skeleton("Ana"), skeleton("аna")); // Cyrillic a
        assert_eq!(skeleton("Ana"), skeleton("ANA"));
        assert_eq!(skeleton("Ana"), skeleton("A n a"));
        assert_eq!(skeleton("Bob"), skeleton("B0b"));
        assert_eq!(skeleton("Lili"), skeleton("L1l1"));
        assert_ne!(skeleton("Ana"), skeleton("Anna"));
    }
}
