//! Hostile and mangled callback bodies: the parser answers every one with a delivery or a typed
//! refusal, never a panic. Deterministic mutations of the fixture tickets (no extra crates).

use super::inbound::{parse_delivery, InboundError};

const SEEDS: [&str; 4] = [
    include_str!("../../fixtures/tickets/new-ticket.json"),
    include_str!("../../fixtures/tickets/new-ticket.xml"),
    include_str!("../../fixtures/tickets/batch.json"),
    include_str!("../../fixtures/tickets/notify.json"),
];

/// xorshift64*: a fixed sequence, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[&[u8]] = &[
    b"<", b">", b"&", b"&amp;", b"&xxe;", b"<!DOCTYPE a>", b"<![CDATA[x]]>", b"<!-- c -->", b"\"", b"{", b"}",
    b"[", b"]", b",", b":", b"\\u0000", b"\xff", b"\xef\xbb\xbf", b"null", b"1e999", b"-0", b"</Ticket>",
    b"<Comments>", b"\"Comments\":", b"13/45/2026 99:99:99 XM",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(4) {
            0 if !out.is_empty() => {
                let end = (at + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            1 => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                out.splice(at..at, piece.iter().copied());
            }
            2 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] = rng.next() as u8;
            }
            _ => out.truncate(at),
        }
    }
    out
}

#[test]
fn mangled_bodies_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut refused = 0;
    for i in 0..20_000 {
        let seed = SEEDS[i % SEEDS.len()].as_bytes();
        let body = mutate(&mut rng, seed);
        let ct = [None, Some("application/json"), Some("application/xml"), Some("text/plain")][rng.below(4)];
        match parse_delivery(ct, &body) {
            Ok(d) => assert!(d.entries.len() <= 2, "entries come only from the seed's tickets"),
            Err(e) => {
                refused += 1;
                assert!(matches!(e.http_status(), 400 | 413 | 415), "{e:?}");
            }
        }
    }
    assert!(refused > 1_000, "the mutations do break bodies ({refused} refused)");
}

#[test]
fn deep_nesting_and_entity_floods_are_refused_cheaply() {
    let deep = format!("{}{}", "<a>".repeat(10_000), "</a>".repeat(10_000));
    assert!(matches!(parse_delivery(Some("application/xml"), deep.as_bytes()), Err(InboundError::Malformed(_))));
    let deep_json = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(parse_delivery(Some("application/json"), deep_json.as_bytes()).is_err());
    let laughs = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">{}]><Ticket><TicketID>&lol9;</TicketID></Ticket>",
        (1..10).map(|i| format!("<!ENTITY lol{i} \"{}\">", format!("&lol{};", i - 1).repeat(10))).collect::<String>()
    );
    assert_eq!(parse_delivery(Some("application/xml"), laughs.as_bytes()).unwrap_err().http_status(), 400);
}
