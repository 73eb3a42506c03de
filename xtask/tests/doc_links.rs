//! Every relative link in the repository's Markdown resolves to a file or directory.
//!
//! Walks every `*.md` file of the checkout (not `target/`, not hidden directories), finds
//! the inline links and images `[text](dest)` and `![alt](dest)` and the reference
//! definitions `[label]: dest` outside code (fenced blocks and `inline code`), and checks
//! that each relative destination (not `http:`, `mailto:`, ..., not a bare `#anchor`)
//! exists relative to the file, its `#fragment` left off. Anchors are not checked.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(Result::ok) {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if p.is_dir() {
            markdown_files(&p, out);
        } else if name.ends_with(".md") {
            out.push(p);
        }
    }
}

/// The text with fenced code blocks and inline code spans blanked out.
fn without_code(text: &str) -> String {
    let mut out = String::new();
    let mut fence: Option<String> = None;
    for line in text.lines() {
        let t = line.trim_start();
        let marker: String = t.chars().take_while(|&c| c == '`' || c == '~').collect();
        if marker.len() >= 3 {
            match &fence {
                None => {
                    fence = Some(marker);
                    out.push('\n');
                    continue;
                }
                Some(f) if marker.starts_with(f.as_str()) => {
                    fence = None;
                    out.push('\n');
                    continue;
                }
                _ => {}
            }
        }
        if fence.is_some() {
            out.push('\n');
            continue;
        }
        // Inline code: a run of N backticks up to the next run of exactly N.
        let b = line.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'`' {
                let n = b[i..].iter().take_while(|&&c| c == b'`').count();
                let close = (i + n..b.len()).find(|&j| {
                    b[j..].iter().take_while(|&&c| c == b'`').count() == n
                        && (j == 0 || b[j - 1] != b'`')
                });
                if let Some(j) = close {
                    out.push_str(&" ".repeat(j + n - i));
                    i = j + n;
                    continue;
                }
            }
            let ch = line[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
        }
        out.push('\n');
    }
    out
}

/// The link destinations of Markdown `text` (code left out).
fn links(text: &str) -> Vec<String> {
    let t = without_code(text);
    let mut v = Vec::new();
    // Inline: `](dest)` or `](dest "title")`; `<dest>` allowed.
    let mut rest = t.as_str();
    while let Some(k) = rest.find("](") {
        rest = &rest[k + 2..];
        let dest = match rest.strip_prefix('<') {
            Some(r) => &r[..r.find('>').unwrap_or(r.len())],
            None => &rest[..rest.find([')', ' ', '\n']).unwrap_or(rest.len())],
        };
        v.push(dest.to_string());
    }
    // Reference definitions: `[label]: dest` at the start of a line.
    for line in t.lines() {
        let l = line.trim_start();
        if l.starts_with('[')
            && let Some(k) = l.find("]:")
            && !l[..k].contains("](")
            && let Some(dest) = l[k + 2..].split_whitespace().next()
        {
            v.push(dest.trim_matches(['<', '>']).to_string());
        }
    }
    v
}

fn relative(dest: &str) -> Option<&str> {
    let scheme = dest.split_once(':').is_some_and(|(s, _)| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    });
    if dest.is_empty() || dest.starts_with('#') || scheme {
        return None;
    }
    let path = dest.split('#').next().unwrap_or("");
    (!path.is_empty()).then_some(path)
}

#[test]
fn the_link_parser_finds_links_outside_code() {
    let md = "see [a](docs/a.md) and ![b](b.svg \"t\") [c](<c d.md>)\n\
              `[x](inline.md)` and ``[y](`y`.md)``\n\
              ```sh\n[z](fenced.md)\n```\n\
              [ref]: docs/ref.md\n[web](https://example.com) [top](#top) [s](a.md#sec)\n";
    let l = links(md);
    assert_eq!(
        l,
        [
            "docs/a.md",
            "b.svg",
            "c d.md",
            "https://example.com",
            "#top",
            "a.md#sec",
            "docs/ref.md"
        ]
    );
    let rel: Vec<&str> = l.iter().filter_map(|d| relative(d)).collect();
    assert_eq!(rel, ["docs/a.md", "b.svg", "c d.md", "a.md", "docs/ref.md"]);
}

#[test]
fn every_relative_link_in_the_markdown_resolves() {
    let root = root();
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    files.sort();
    assert!(
        files.iter().any(|f| f.ends_with("docs/soak.md")),
        "no docs found under {}",
        root.display()
    );
    let mut broken = Vec::new();
    let mut checked = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).expect("readable");
        for dest in links(&text) {
            let Some(path) = relative(&dest) else {
                continue;
            };
            checked += 1;
            let target = f.parent().expect("a file has a directory").join(path);
            if !target.exists() {
                broken.push(format!(
                    "{}: ({dest})",
                    f.strip_prefix(&root).unwrap_or(f).display()
                ));
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} links found: is the parser broken?"
    );
    assert!(
        broken.is_empty(),
        "{} broken relative link(s):\n{}",
        broken.len(),
        broken.join("\n")
    );
}
