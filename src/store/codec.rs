//! Record encoding. JSON keeps records readable by `portcullis check` and tolerant of added
//! fields (`#[serde(default)]`); corrupt bytes become an error, never a panic.

use serde::{Serialize, de::DeserializeOwned};

use super::StoreError;

pub fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record).map_err(|e| StoreError::Encode(e.to_string()))
}

pub fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct R {
        a: u32,
    }

    #[test]
    fn round_trips_and_rejects_corrupt_bytes() {
        let bytes = encode(&R { a: 7 }).unwrap();
        assert_eq!(decode::<R>("t", &bytes).unwrap(), R { a: 7 });
        let err = decode::<R>("t", &[0xff, 0x00, 0x13]).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { table: "t", .. }));
    }
}
