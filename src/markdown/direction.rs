//! Which languages are written right to left.

/// Languages written right to left in their usual script: Arabic, Hebrew (and its old code
/// `iw`), Persian, Urdu, Pashto, Sindhi, Uyghur, Central Kurdish (Sorani), Kashmiri,
/// Dhivehi, Yiddish, Syriac, Aramaic, Balochi, Mazanderani, N'Ko, Samaritan and Mandaic.
const RIGHT_TO_LEFT_LANGUAGES: &[&str] = &[
    "ar", "he", "iw", "fa", "ur", "ps", "sd", "ug", "ckb", "ks", "dv", "yi", "syr", "arc", "bal",
    "mzn", "nqo", "smp", "mid",
];

/// Scripts written right to left (ISO 15924): Arabic, Hebrew, Syriac, Thaana, N'Ko, Adlam,
/// Hanifi Rohingya, Mandaic, Samaritan.
const RIGHT_TO_LEFT_SCRIPTS: &[&str] = &[
    "arab", "hebr", "syrc", "thaa", "nkoo", "adlm", "rohg", "mand", "samr",
];

/// Whether a letter in language `lang` (a BCP 47 tag such as `ar`, `fa-IR`, `az-Arab`) is set
/// right to left. A script subtag decides when there is one (`az-Arab` is, `ku-Latn` is not);
/// otherwise the language's usual script does.
pub fn is_right_to_left(lang: &str) -> bool {
    let mut subtags = lang.split(['-', '_']).map(str::to_ascii_lowercase);
    let Some(language) = subtags.next() else {
        return false;
    };
    match subtags.find(|s| s.len() == 4 && s.bytes().all(|b| b.is_ascii_alphabetic())) {
        Some(script) => RIGHT_TO_LEFT_SCRIPTS.contains(&script.as_str()),
        None => RIGHT_TO_LEFT_LANGUAGES.contains(&language.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_to_left_by_language_and_by_script() {
        for rtl in [
            "ar", "AR", "ar-SA", "he", "fa-IR", "ur", "ps", "ckb", "az-Arab", "pa-Arab",
        ] {
            assert!(is_right_to_left(rtl), "{rtl}");
        }
        for ltr in [
            "en", "fr-CA", "az", "az-Latn", "ru", "ku-Latn", "uz-Cyrl", "", "a",
        ] {
            assert!(!is_right_to_left(ltr), "{ltr}");
        }
    }
}
