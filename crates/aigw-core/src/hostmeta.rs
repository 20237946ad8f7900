//! Reads a string from Envoy's upstream host metadata.
//!
//! An upstream filter that runs for an aggregate cluster (a fallback chain)
//! learns which provider an attempt goes to from the metadata of the host
//! Envoy picked: `xds.upstream_host_metadata`, an `envoy.config.core.v3.Metadata`
//! message in protobuf's wire format. Only the path the gateway writes is read
//! (`filter_metadata[namespace].fields[key].string_value`); anything malformed
//! reads as absent, never as a panic.

/// One field of a protobuf message: its number and, for the wire types the
/// metadata uses, its payload.
enum Field<'a> {
    Bytes(u32, &'a [u8]),
    Other,
}

/// Reads a base-128 varint from the front of `buf`.
fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(out);
        }
    }
    None
}

/// The next field of a message, or `None` at its end or on malformed input.
fn next_field<'a>(buf: &mut &'a [u8]) -> Option<Field<'a>> {
    let tag = varint(buf)?;
    let number = u32::try_from(tag >> 3).ok()?;
    match tag & 7 {
        0 => varint(buf).map(|_| Field::Other),
        1 => skip(buf, 8).map(|()| Field::Other),
        5 => skip(buf, 4).map(|()| Field::Other),
        2 => {
            let len = usize::try_from(varint(buf)?).ok()?;
            if len > buf.len() {
                return None;
            }
            let (payload, rest) = buf.split_at(len);
            *buf = rest;
            Some(Field::Bytes(number, payload))
        }
        _ => None,
    }
}

fn skip(buf: &mut &[u8], n: usize) -> Option<()> {
    if n > buf.len() {
        return None;
    }
    *buf = &buf[n..];
    Some(())
}

/// In a message whose field `map_field` is a `map<string, _>`, the value of `key`.
fn map_value<'a>(mut msg: &'a [u8], map_field: u32, key: &str) -> Option<&'a [u8]> {
    while let Some(field) = next_field(&mut msg) {
        let Field::Bytes(n, mut entry) = field else {
            continue;
        };
        if n != map_field {
            continue;
        }
        let (mut k, mut v) = (None, None);
        while let Some(f) = next_field(&mut entry) {
            match f {
                Field::Bytes(1, b) => k = Some(b),
                Field::Bytes(2, b) => v = Some(b),
                _ => {}
            }
        }
        if k == Some(key.as_bytes()) {
            return Some(v.unwrap_or_default());
        }
    }
    None
}

/// `filter_metadata[namespace].fields[key]` as a string, if it is one.
pub fn metadata_string(metadata: &[u8], namespace: &str, key: &str) -> Option<String> {
    // Metadata.filter_metadata = 1 (map<string, Struct>);
    // Struct.fields = 1 (map<string, Value>); Value.string_value = 3.
    let ns = map_value(metadata, 1, namespace)?;
    let mut value = map_value(ns, 1, key)?;
    while let Some(f) = next_field(&mut value) {
        if let Field::Bytes(3, s) = f {
            return std::str::from_utf8(s).ok().map(str::to_string);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes a length-delimited field.
    fn ld(number: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3) | 2, u8::try_from(payload.len()).unwrap()];
        out.extend_from_slice(payload);
        out
    }

    fn metadata(ns: &str, key: &str, value: &[u8]) -> Vec<u8> {
        let value_msg = ld(3, value);
        let field_entry = [ld(1, key.as_bytes()), ld(2, &value_msg)].concat();
        let strukt = ld(1, &field_entry);
        let ns_entry = [ld(1, ns.as_bytes()), ld(2, &strukt)].concat();
        ld(1, &ns_entry)
    }

    #[test]
    fn reads_the_bytes_envoy_sends() {
        // As logged from Envoy 1.40 for an endpoint with
        // `metadata: {filter_metadata: {aigw: {provider: pa}}}`.
        let seen = b"\n\x1a\n\x04aigw\x12\x12\n\x10\n\x08provider\x12\x04\x1a\x02pa";
        assert_eq!(
            metadata_string(seen, "aigw", "provider").as_deref(),
            Some("pa")
        );
        assert_eq!(metadata_string(seen, "aigw", "other"), None);
        assert_eq!(metadata_string(seen, "envoy.lb", "provider"), None);
    }

    #[test]
    fn finds_the_key_among_others_and_skips_other_wire_types() {
        let mut m = metadata("other", "provider", b"x");
        // A varint field and a fixed64 field before the map entries.
        m.splice(0..0, [0x10, 0x96, 0x01, 0x19, 1, 2, 3, 4, 5, 6, 7, 8]);
        m.extend(metadata("aigw", "provider", b"deepseek"));
        assert_eq!(
            metadata_string(&m, "aigw", "provider").as_deref(),
            Some("deepseek")
        );
    }

    #[test]
    fn malformed_input_reads_as_absent() {
        let good = metadata("aigw", "provider", b"pa");
        for cut in 0..good.len() {
            // Every truncation either still parses to a prefix or reads as absent.
            let got = metadata_string(&good[..cut], "aigw", "provider");
            assert_ne!(got.as_deref(), Some("pa"), "cut at {cut}");
        }
        assert_eq!(metadata_string(&[0xff; 12], "aigw", "provider"), None);
        assert_eq!(metadata_string(&[], "aigw", "provider"), None);
        assert_eq!(metadata_string(&[0x0b], "aigw", "provider"), None);
    }
}
