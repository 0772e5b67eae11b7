//! Readability of Spanish letters: the Fernández-Huerta score (the Flesch reading ease
//! adapted to Spanish), `206.84 − 0.60 × P − 1.02 × F`, where P is syllables per 100
//! words and F words per sentence (as in Flesch's formula it adapts; some sources misquote
//! F as sentences per 100 words, which would reward long sentences). Higher is easier: 60–70 is plain ("normal") Spanish, what a
//! letter to the public should reach; `check` warns below [`MIN_SCORE`].

use super::lint::Readability;

/// The lowest Fernández-Huerta score `check` accepts without a warning.
pub const MIN_SCORE: f64 = 60.0;

/// Syllables in one Spanish word: each group of vowels is one syllable (a weak vowel
/// `i`, `u`, `ü` joins its neighbour in a diphthong) plus one for each pair of strong
/// vowels side by side (`a`, `e`, `o` and accented ones: a hiatus, "le-er", "dí-a");
/// digits and the like count one.
pub fn syllables(word: &str) -> usize {
    let letters: Vec<char> = word
        .chars()
        .filter(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect();
    let strong = |c: char| "aeoáéíóú".contains(c);
    let vowel = |c: char| strong(c) || "iuü".contains(c);
    let mut count = 0;
    let mut previous: Option<char> = None;
    for &c in &letters {
        if vowel(c) {
            match previous {
                Some(p) if strong(p) && strong(c) => count += 1,
                Some(_) => {}
                None => count += 1,
            }
            previous = Some(c);
        } else {
            previous = None;
        }
    }
    count.max(1)
}

/// The Fernández-Huerta score of a letter's body text (100 for no words).
pub fn score(text: &str) -> f64 {
    let r = Readability::of_with(text, syllables);
    if r.words == 0 {
        return 100.0;
    }
    let syllables_per_100 = 100.0 * r.syllables as f64 / r.words as f64;
    let words_per_sentence = r.words as f64 / r.sentences.max(1) as f64;
    206.84 - 0.60 * syllables_per_100 - 1.02 * words_per_sentence
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_spanish_syllables() {
        for (word, n) in [
            ("usted", 2),
            ("reembolso", 4),
            ("día", 2),
            ("leer", 2),
            ("cuenta", 2),
            ("compensación", 4),
            ("impuesto", 3),
            ("federal", 3),
            ("$1,234.56", 1),
        ] {
            assert_eq!(syllables(word), n, "{word}");
        }
    }

    #[test]
    fn plain_text_scores_higher_than_hard_text() {
        let plain = score("Usted debe dinero. Pague hoy. Llame si tiene preguntas.");
        let hard = score(
            "La administración tributaria estatal procederá consecuentemente a la compensación \
             automatizada de cualesquiera reembolsos federales correspondientes al contribuyente \
             conforme a la normativa interinstitucional vigente.",
        );
        assert!(plain > MIN_SCORE, "{plain}");
        assert!(hard < MIN_SCORE, "{hard}");
    }
}
