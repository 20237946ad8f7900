//! A bounded copy of a body, for reading usage from responses that are
//! forwarded chunk by chunk without being held.

#[derive(Debug)]
pub struct BoundedBody {
    buf: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl BoundedBody {
    pub fn new(limit: usize) -> Self {
        BoundedBody {
            buf: Vec::new(),
            limit,
            overflowed: false,
        }
    }

    /// Appends `bytes`; past the limit, the copy is dropped for good.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.overflowed {
            return;
        }
        if self.buf.len() + bytes.len() > self.limit {
            self.overflowed = true;
            self.buf = Vec::new();
            return;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The whole body, unless it outgrew the limit.
    pub fn get(&self) -> Option<&[u8]> {
        (!self.overflowed).then_some(&self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_up_to_the_limit() {
        let mut b = BoundedBody::new(4);
        b.push(b"ab");
        b.push(b"cd");
        assert_eq!(b.get(), Some(&b"abcd"[..]));
        b.push(b"e");
        assert_eq!(b.get(), None);
        b.push(b"");
        assert_eq!(b.get(), None);
    }
}
