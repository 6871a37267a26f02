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

#[cfg(test)]
mod tests {
    use super::plural;

    #[test]
    fn one_is_singular_and_every_other_count_takes_an_s() {
        assert_eq!(plural(1, "letter"), "1 letter");
        assert_eq!(plural(0, "letter"), "0 letters");
        assert_eq!(plural(2, "row"), "2 rows");
    }
}
