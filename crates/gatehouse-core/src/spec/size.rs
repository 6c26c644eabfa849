//! A size in bytes as specs give it: a number of bytes, or a string with a binary unit
//! (`512KiB`, `10MiB`, `1GiB`; `K`, `M`, `G` and `KB`, `MB`, `GB` mean the same).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Reads `"10MiB"`, `"512k"`, `"1024"`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (n, unit) = s.split_at(digits);
        let n: u64 = n
            .parse()
            .map_err(|_| format!("'{s}' is not a size (e.g. 1048576, 512KiB, 10MiB)"))?;
        let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            _ => return Err(format!("'{s}' has an unknown unit (use KiB, MiB or GiB)")),
        };
        n.checked_mul(factor)
            .filter(|b| *b <= i64::MAX as u64)
            .map(ByteSize)
            .ok_or_else(|| format!("'{s}' is too large"))
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Given {
            Bytes(u64),
            Text(String),
        }
        match Given::deserialize(d)? {
            Given::Bytes(n) if n > i64::MAX as u64 => Err(serde::de::Error::custom(format!(
                "{n} is too large (at most 9223372036854775807)"
            ))),
            Given::Bytes(n) => Ok(ByteSize(n)),
            Given::Text(t) => ByteSize::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// How a [`ByteSize`] is written, for the OpenAPI document: bytes, or up to nine digits and a
/// unit.
pub struct ByteSizeText;

impl utoipa::PartialSchema for ByteSizeText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .maximum(Some(i64::MAX)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^ *[0-9]{1,9} *([bB]|[kKmMgG]([iI]?[bB])?)? *$")),
            )
            .into()
    }
}

impl utoipa::ToSchema for ByteSizeText {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_units() {
        assert_eq!(ByteSize::parse("1024"), Ok(ByteSize(1024)));
        assert_eq!(ByteSize::parse("512KiB"), Ok(ByteSize(512 << 10)));
        assert_eq!(ByteSize::parse("10m"), Ok(ByteSize(10 << 20)));
        assert_eq!(ByteSize::parse("1 GB"), Ok(ByteSize(1 << 30)));
        assert!(ByteSize::parse("ten").is_err());
        assert!(ByteSize::parse("10XB").unwrap_err().contains("unit"));
        assert!(ByteSize::parse("99999999999999G")
            .unwrap_err()
            .contains("too large"));
        let v: ByteSize = serde_json::from_value(serde_json::json!("2MiB")).unwrap();
        assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(2 << 20));
    }
}
