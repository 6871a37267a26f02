//! Small wording helpers shared by the messages of several commands and of the recipients check.

/// "1 letter", "2 letters", "0 letters": English plural by a trailing "s", enough for the nouns
/// envoi counts (letter, row, attachment, ...).
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The candidate a mistyped `wanted` most likely meant, for a "did you mean" hint: the same
/// name in other letter case, or one close by spelling (a typo or two, a swapped pair of
/// letters, a shortened word). `None` when nothing is close, so a hint is never a wild guess.
pub fn nearest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wanted = wanted.to_lowercase();
    let length = wanted.chars().count();
    candidates
        .into_iter()
        .filter_map(|candidate| {
            let lower = candidate.to_lowercase();
            // A swapped pair counts as one edit: `titel` is one step from `title`.
            let edits = strsim::osa_distance(&wanted, &lower);
            let likeness = strsim::jaro_winkler(&wanted, &lower);
            // Two edits in a name of three letters is a different name, not a typo.
            let close = edits == 0 || (edits <= 2 && edits * 3 <= length) || likeness >= 0.85;
            close.then_some((edits, likeness, candidate))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(_, _, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::{nearest, plural};

    #[test]
    fn the_nearest_name_is_a_typo_away_or_none() {
        let columns = ["email", "organisation", "title", "name"];
        assert_eq!(nearest("titel", columns), Some("title"));
        assert_eq!(nearest("Organization", columns), Some("organisation"));
        assert_eq!(nearest("EMAIL", columns), Some("email"));
        assert_eq!(nearest("emial", columns), Some("email"));
        assert_eq!(nearest("country", columns), None);
        assert_eq!(nearest("id", columns), None);
        assert_eq!(nearest("x", Vec::<&str>::new()), None);
    }

    #[test]
    fn one_is_singular_and_every_other_count_takes_an_s() {
        assert_eq!(plural(1, "letter"), "1 letter");
        assert_eq!(plural(0, "letter"), "0 letters");
        assert_eq!(plural(2, "row"), "2 rows");
    }
}
