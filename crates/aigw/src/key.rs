//! `aigw key`: makes consumer keys and their hashes. The gateway file keeps
//! only the hash; the key itself is shown once and goes to the consumer.

use std::io::{Read, Write};

use aigw_core::apikey::{KeyHash, KEY_PREFIX, MIN_KEY_LEN};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Random characters in a made key: 40 of 62, about 238 bits.
const KEY_CHARS: usize = 40;

pub const USAGE: &str = "\
Usage:
  aigw key create [--name NAME]   make a new consumer key; print it and its hash
  aigw key hash [KEY]             print the hash of a key (read from stdin when
                                  not given, so it stays out of shell history)
";

pub fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("create") => {
            let name = match &args[1..] {
                [] => None,
                [flag, name] if flag == "--name" => Some(name.as_str()),
                _ => return Err(format!("unexpected arguments\n\n{USAGE}")),
            };
            create(name)
        }
        Some("hash") => {
            let key = match &args[1..] {
                [] => read_stdin()?,
                [key] => key.clone(),
                _ => return Err(format!("unexpected arguments\n\n{USAGE}")),
            };
            let key = key.trim();
            if key.len() < MIN_KEY_LEN {
                return Err(format!("a key must have at least {MIN_KEY_LEN} characters"));
            }
            println!("sha256:{}", KeyHash::of(key).to_hex());
            Ok(())
        }
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown key command {other:?}\n\n{USAGE}")),
    }
}

fn create(name: Option<&str>) -> Result<(), String> {
    let key = new_key(&mut random_bytes)?;
    let hash = KeyHash::of(&key).to_hex();
    let name = name.unwrap_or("my-app");
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "key:    {key}\nsha256: {hash}\n\n\
         Give the key to the consumer; it is not stored anywhere. In the gateway file:\n\n\
         consumers:\n  - name: {name}\n    keys:\n      - sha256: {hash}"
    )
    .map_err(|e| e.to_string())
}

/// A new key: the prefix and [`KEY_CHARS`] characters drawn uniformly from
/// [`ALPHABET`] (bytes that would bias the draw are skipped).
fn new_key(random: &mut dyn FnMut(&mut [u8]) -> Result<(), String>) -> Result<String, String> {
    let mut key = String::from(KEY_PREFIX);
    let mut buf = [0u8; 64];
    while key.len() < KEY_PREFIX.len() + KEY_CHARS {
        random(&mut buf)?;
        for b in buf {
            // 248 = 4 * 62: the bytes below it map evenly onto the alphabet.
            if b < 248 && key.len() < KEY_PREFIX.len() + KEY_CHARS {
                key.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    Ok(key)
}

fn random_bytes(buf: &mut [u8]) -> Result<(), String> {
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .map_err(|e| format!("cannot read random bytes from /dev/urandom: {e}"))
}

fn read_stdin() -> Result<String, String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| format!("cannot read the key from stdin: {e}"))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_keys_have_the_prefix_and_enough_randomness() {
        let a = new_key(&mut random_bytes).unwrap();
        let b = new_key(&mut random_bytes).unwrap();
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + KEY_CHARS);
        assert_ne!(a, b);
        assert!(a[KEY_PREFIX.len()..]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn biased_bytes_are_skipped() {
        let mut calls = 0;
        let key = new_key(&mut |buf: &mut [u8]| {
            calls += 1;
            // First a buffer of bytes that must all be skipped, then zeros.
            buf.fill(if calls == 1 { 250 } else { 0 });
            Ok(())
        })
        .unwrap();
        assert_eq!(calls, 2);
        assert_eq!(&key[KEY_PREFIX.len()..], "0".repeat(KEY_CHARS));
    }
}
