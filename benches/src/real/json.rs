//! `json`: build a document of JSON records (`serde_json::Value`: objects, arrays, owned
//! strings), serialize it to a `String`, drop it, parse the text back, and aggregate the
//! parsed records: tag counts in a `BTreeMap<String, u64>`, word counts in a
//! `HashMap<String, u64>`, both keyed by owned `String`s. Everything (text, parsed
//! document, maps) is dropped at the end of the document and rebuilt for the next one.
//!
//! One op = one record. A document has `ws` records (20,000 by default).

use super::{fnv, mix, skewed, vocabulary};
use crate::rng::{Rng, below};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

const TAGS: usize = 64;
const WORDS: usize = 2_000;

fn record(i: usize, rng: &mut Rng, tags: &[String], words: &[String]) -> Value {
    let r = rng.next_u64();
    let mut user = Map::new();
    let first = &words[skewed(r, words.len())];
    let last = &words[skewed(r.rotate_left(17), words.len())];
    user.insert("name".into(), Value::String(format!("{first} {last}")));
    user.insert(
        "email".into(),
        Value::String(format!("{first}.{i}@example.org")),
    );
    user.insert("age".into(), Value::from(18 + below(r >> 7, 70)));
    let ntags = 1 + below(rng.next_u64(), 5) as usize;
    let tag_list: Vec<Value> = (0..ntags)
        .map(|_| Value::String(tags[skewed(rng.next_u64(), tags.len())].clone()))
        .collect();
    let nwords = 5 + below(rng.next_u64(), 26) as usize;
    let mut text = String::new();
    for k in 0..nwords {
        if k > 0 {
            text.push(' ');
        }
        text.push_str(&words[skewed(rng.next_u64(), words.len())]);
    }
    let nhist = below(rng.next_u64(), 9) as usize;
    let history: Vec<Value> = (0..nhist)
        .map(|_| Value::from(below(rng.next_u64(), 1_000_000)))
        .collect();
    let mut rec = Map::new();
    rec.insert("id".into(), Value::from(i as u64));
    rec.insert("user".into(), Value::Object(user));
    rec.insert("tags".into(), Value::Array(tag_list));
    rec.insert("text".into(), Value::String(text));
    rec.insert("score".into(), Value::from(below(r >> 20, 10_000)));
    rec.insert("active".into(), Value::Bool(r & 1 == 1));
    rec.insert("history".into(), Value::Array(history));
    Value::Object(rec)
}

/// One document of `n` records; returns its checksum.
pub fn round(seed: u64, index: u64, n: usize) -> u64 {
    let mut rng = Rng::new(seed, 0x4A53_4F4E ^ index);
    let tags: Vec<String> = vocabulary(&mut rng, TAGS)
        .into_iter()
        .map(|w| format!("#{w}"))
        .collect();
    let words = vocabulary(&mut rng, WORDS);
    let doc = Value::Array((0..n).map(|i| record(i, &mut rng, &tags, &words)).collect());
    let text = serde_json::to_string(&doc).expect("a Value serializes");
    drop(doc);
    let parsed: Value = serde_json::from_str(&text).expect("our own JSON parses");
    let mut by_tag: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_word: HashMap<String, u64> = HashMap::new();
    let (mut score, mut active, mut hist) = (0u64, 0u64, 0u64);
    for rec in parsed.as_array().expect("an array") {
        for t in rec["tags"].as_array().expect("tags") {
            *by_tag
                .entry(t.as_str().expect("a tag").to_owned())
                .or_insert(0) += 1;
        }
        for w in rec["text"].as_str().expect("text").split(' ') {
            *by_word.entry(w.to_owned()).or_insert(0) += 1;
        }
        score += rec["score"].as_u64().expect("score");
        active += u64::from(rec["active"].as_bool().expect("active"));
        hist += rec["history"].as_array().expect("history").len() as u64;
    }
    let mut h = mix(text.len() as u64, score);
    h = mix(h, active);
    h = mix(h, hist);
    for (t, c) in &by_tag {
        h = mix(h, fnv(t.as_bytes()) ^ c);
    }
    // HashMap order differs from process to process: an order-free sum.
    let words_sum = by_word.iter().fold(0u64, |a, (w, c)| {
        a.wrapping_add(fnv(w.as_bytes()).wrapping_mul(*c))
    });
    mix(mix(h, words_sum), by_word.len() as u64)
}
