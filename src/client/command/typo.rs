//! "Did you mean": the nearest known word to a mistyped one.

/// The word of `words` nearest to `typed`, if it is near enough to be a slip of the fingers
/// (at most two edits, and fewer than the word's length).
pub(super) fn closest<'w>(typed: &str, words: &[&'w str]) -> Option<&'w str> {
    words
        .iter()
        .map(|w| (distance(typed, w), *w))
        .filter(|(d, w)| *d <= 2 && *d < w.len().min(typed.len()).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, w)| w)
}

/// Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::command::WORDS;

    #[test]
    fn typos_are_near_and_other_words_are_not() {
        assert_eq!(distance("ls", "ls"), 0);
        assert_eq!(distance("lsa", "ls"), 1);
        assert_eq!(distance("gte", "get"), 1);
        assert_eq!(closest("x", WORDS), None);
        assert_eq!(closest("putt", WORDS), Some("put"));
    }
}
