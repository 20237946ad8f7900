//! Durations in the gateway file: `300s`, `1500ms`, `5m`, `1h`; `0s` disables.

use std::fmt;

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration {
    pub millis: u64,
}

impl Duration {
    pub const fn from_secs(s: u64) -> Self {
        Duration { millis: s * 1000 }
    }

    pub fn parse(text: &str) -> Result<Duration, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{text:?} is not a duration (e.g. 30s, 1500ms, 5m)"))?;
        let factor = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(format!("{text:?} is not a duration (units: ms, s, m, h)")),
        };
        n.checked_mul(factor)
            .map(|millis| Duration { millis })
            .ok_or_else(|| format!("{text:?} is too long"))
    }

    /// Protobuf JSON form: `"300s"`, `"1.500s"`.
    pub fn proto(&self) -> String {
        if self.millis.is_multiple_of(1000) {
            format!("{}s", self.millis / 1000)
        } else {
            format!("{}.{:03}s", self.millis / 1000, self.millis % 1000)
        }
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.proto())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Duration::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(Duration::parse("300s").unwrap().millis, 300_000);
        assert_eq!(Duration::parse("1500ms").unwrap().proto(), "1.500s");
        assert_eq!(Duration::parse("5m").unwrap().proto(), "300s");
        assert_eq!(Duration::parse("0s").unwrap().millis, 0);
        for bad in ["", "s", "10", "10x", "-1s", "1.5s"] {
            assert!(Duration::parse(bad).is_err(), "{bad}");
        }
    }
}
