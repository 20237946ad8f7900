//! Serializing the mock's typed response structs.

use bytes::Bytes;
use serde::Serialize;

/// `value` as compact JSON.
pub fn to_bytes<T: Serialize>(value: &T) -> Bytes {
    let mut out = Vec::with_capacity(256);
    write(&mut out, value);
    Bytes::from(out)
}

/// `prefix`, `value` as compact JSON, `suffix`: one framed stream event.
pub fn framed<T: Serialize>(prefix: &[u8], value: &T, suffix: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(prefix);
    write(&mut out, value);
    out.extend_from_slice(suffix);
    Bytes::from(out)
}

fn write<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    // Serializing these plain structs into a Vec cannot fail (no maps with non-string keys,
    // no I/O errors); should it ever, an empty JSON value is still better than a panic.
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.extend_from_slice(b"null");
    }
}
