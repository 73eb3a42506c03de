//! `text`: a string-heavy pipeline. Generate a text of words (sentences with capitals and
//! punctuation, grown in one `String`), tokenize it into owned lowercase `String`s, count
//! them in a `HashMap<String, u32>`, move the counts into a `Vec` and sort it by count
//! (then word), and build a report `String` of the most frequent words. All of it is
//! dropped at the end of the document.
//!
//! One op = one word. A document has `ws` words (50,000 by default).

use super::{fnv, mix, skewed, vocabulary};
use crate::rng::{Rng, below};
use std::collections::HashMap;
use std::fmt::Write;

const WORDS: usize = 5_000;

/// One document of `n` words; returns its checksum.
pub fn round(seed: u64, index: u64, n: usize) -> u64 {
    let mut rng = Rng::new(seed, 0x5445_5854 ^ index);
    let vocab = vocabulary(&mut rng, WORDS);
    let mut text = String::new();
    let mut start = true;
    for _ in 0..n {
        let r = rng.next_u64();
        let w = &vocab[skewed(r, vocab.len())];
        if start {
            let mut c = w.chars();
            if let Some(f) = c.next() {
                text.extend(f.to_uppercase());
                text.push_str(c.as_str());
            }
        } else {
            text.push_str(w);
        }
        start = false;
        match below(r >> 40, 16) {
            0 => {
                text.push_str(". ");
                start = true;
            }
            1 => text.push_str(", "),
            2 => text.push_str("; "),
            _ => text.push(' '),
        }
    }
    let tokens: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mut counts: HashMap<String, u32> = HashMap::new();
    for t in &tokens {
        match counts.get_mut(t.as_str()) {
            Some(c) => *c += 1,
            None => {
                counts.insert(t.clone(), 1);
            }
        }
    }
    let distinct = counts.len();
    let mut sorted: Vec<(String, u32)> = counts.into_iter().collect();
    sorted.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut report = String::new();
    for (w, c) in sorted.iter().take(100) {
        let _ = writeln!(report, "{w}\t{c}");
    }
    let mut h = mix(text.len() as u64, tokens.len() as u64);
    h = mix(h, distinct as u64);
    mix(h, fnv(report.as_bytes()))
}
