//! `arena`: a request loop, the shape of a server handler. Each request allocates its own
//! set of buffers and frees all of them when it ends: a `Vec` of 4..=16 header pairs
//! (owned `String`s), a body `Vec<u8>` grown by appends to 256 B..32 KiB (reallocs), 2..=9
//! scratch buffers of 16 B..4 KiB, a parsed list of fields (`String`s) and a response
//! `String` grown by pushes; then everything is dropped at once.
//!
//! One op = one request.

use super::{fnv, mix};
use crate::measure::{Probe, Timer};
use crate::rng::{Rng, below};
use crate::workloads::{Outcome, Params};
use std::fmt::Write;

const HEADER_NAMES: [&str; 8] = [
    "host",
    "user-agent",
    "accept",
    "content-type",
    "x-request-id",
    "cookie",
    "authorization",
    "cache-control",
];

/// One request; returns its checksum.
fn request(rng: &mut Rng, id: u64) -> u64 {
    let r = rng.next_u64();
    let nh = 4 + below(r, 13) as usize;
    let mut headers: Vec<(String, String)> = Vec::new();
    for k in 0..nh {
        let v = rng.next_u64();
        let name = HEADER_NAMES[k % HEADER_NAMES.len()].to_string();
        let value = format!("{:x}-{}", v, "v".repeat(below(v >> 32, 48) as usize));
        headers.push((name, value));
    }
    let body_len = 256 + below(r >> 32, 32 * 1024 - 256) as usize;
    let mut body: Vec<u8> = Vec::new();
    let mut c = 0u8;
    while body.len() < body_len {
        let chunk = (body_len - body.len()).min(512);
        body.extend((0..chunk).map(|_| {
            c = c.wrapping_add(31);
            if c.is_multiple_of(9) {
                b','
            } else {
                b'a' + c % 26
            }
        }));
    }
    let nscratch = 2 + below(r >> 20, 8) as usize;
    let scratch: Vec<Vec<u8>> = (0..nscratch)
        .map(|k| {
            let size = 16 + below(rng.next_u64(), 4096 - 16) as usize;
            vec![(k as u8) ^ (id as u8); size]
        })
        .collect();
    let fields: Vec<String> = body
        .split(|&b| b == b',')
        .take(64)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    let mut response = String::new();
    let _ = write!(response, "HTTP/1.1 200 OK\r\nx-request-id: {id}\r\n");
    for (n, v) in &headers {
        if n.len() % 2 == 0 {
            let _ = write!(response, "x-echo-{n}: {}\r\n", v.len());
        }
    }
    for f in fields.iter().take(16) {
        response.push_str(f);
        response.push('\n');
    }
    let scratch_sum: u64 = scratch
        .iter()
        .map(|s| s.len() as u64 + u64::from(s[0]))
        .sum();
    mix(fnv(response.as_bytes()), body.len() as u64 ^ scratch_sum)
}

/// Runs `p.ops` requests; looks at the time cap every 64.
pub fn run(p: &Params, probe: Probe) -> Outcome {
    let mut rng = Rng::new(p.seed, 0x4152_454E);
    let deadline = p.deadline();
    let t = Timer::start(probe);
    let mut h = 0u64;
    let mut done = 0u64;
    while done < p.ops {
        h = h.wrapping_add(request(&mut rng, done));
        done += 1;
        if done.is_multiple_of(64) && deadline.passed() {
            break;
        }
    }
    let elapsed = t.stop();
    Outcome {
        ops: done,
        checksum: Some(h),
        elapsed,
        ..Outcome::default()
    }
}
