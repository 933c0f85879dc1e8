//! Deterministic synthetic records, made with `fake`.
//!
//! Record `index` of seed `seed` comes from a ChaCha8 generator keyed by `seed` on stream
//! `index`: each record is independent of the others (so `--start` can continue a run)
//! and of the machine. ChaCha is pinned by name because `StdRng`'s algorithm may change
//! between `rand` versions; `Cargo.lock` pins `fake`'s word lists.
//!
//! Every record exercises every DynamoDB type: S, N (integers, decimals, 38-digit values),
//! B, BOOL, NULL, L, M (three levels deep), SS, NS and BS.

use crate::format::item::{Item, Value};
use fake::Fake;
use fake::faker::address::en::{CityName, CountryName, Latitude, Longitude, StreetName, ZipCode};
use fake::faker::company::en::{Buzzword, CatchPhrase, CompanyName};
use fake::faker::internet::en::SafeEmail;
use fake::faker::lorem::en::Word;
use fake::faker::name::en::Name;
use fake::faker::name::ja_jp::Name as JapaneseName;
use fake::faker::name::zh_cn::Name as ChineseName;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeSet, HashMap};

/// The partition key attribute of every seeded table.
pub const KEY: &str = "id";

/// The id of record `index` of seed `seed`: the same inputs always name the same item, so
/// seeding twice overwrites instead of duplicating.
pub fn record_id(seed: u64, index: u64) -> String {
    format!("{seed:x}-{index:010}")
}

/// Record `index` of the data set `seed`, padded with a `pad` string attribute to about
/// `size` bytes (DynamoDB's measure) when `size` is more than the record holds already.
pub fn record_sized(seed: u64, index: u64, size: Option<usize>) -> Item {
    let mut item = record(seed, index);
    if let Some(target) = size {
        let have = crate::format::item::item_size(&item) + "pad".len();
        if target > have {
            // Its own stream of the generator, so padding never shifts the other fields.
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5061_6464_696e_6721);
            rng.set_stream(index);
            let pad: String = (&mut rng)
                .sample_iter(rand::distr::Alphanumeric)
                .take(target - have)
                .map(char::from)
                .collect();
            item.insert("pad".to_string(), Value::S(pad));
        }
    }
    item
}

/// Record `index` of the data set `seed`.
pub fn record(seed: u64, index: u64) -> Item {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    let rng = &mut rng;

    let name: String = match rng.random_range(0..10) {
        0 => JapaneseName().fake_with_rng(rng),
        1 => ChineseName().fake_with_rng(rng),
        _ => Name().fake_with_rng(rng),
    };
    let tags: BTreeSet<String> = (0..rng.random_range(1..5))
        .map(|_| Buzzword().fake_with_rng(rng))
        .collect();
    let scores: BTreeSet<i64> = (0..rng.random_range(1..6))
        .map(|_| rng.random_range(-1000..1000))
        .collect();
    let keys: BTreeSet<Vec<u8>> = (0..rng.random_range(1..4))
        .map(|_| random_bytes(rng, 4..12))
        .collect();
    let history = (0..rng.random_range(0..4))
        .map(|_| {
            map([
                ("at", n(rng.random_range(1_600_000_000u64..1_800_000_000))),
                ("event", s(Word().fake_with_rng::<String, _>(rng))),
            ])
        })
        .collect();
    let latitude: String = Latitude().fake_with_rng(rng);
    let longitude: String = Longitude().fake_with_rng(rng);
    let profile = map([
        ("bio", s(CatchPhrase().fake_with_rng::<String, _>(rng))),
        (
            "address",
            map([
                ("street", s(StreetName().fake_with_rng::<String, _>(rng))),
                ("zip", s(ZipCode().fake_with_rng::<String, _>(rng))),
                ("geo", map([("lat", n(latitude)), ("lon", n(longitude))])),
            ]),
        ),
    ]);
    let nickname = if rng.random_bool(0.3) {
        Value::Null(true)
    } else {
        s(Word().fake_with_rng::<String, _>(rng))
    };
    let balance = format!(
        "{}.{:02}",
        rng.random_range(-100_000i64..1_000_000),
        rng.random_range(0..100u32)
    );
    let big = format!(
        "{}{:018}{:019}",
        rng.random_range(1..10u8),
        rng.random_range(0..1_000_000_000_000_000_000u64),
        rng.random_range(0..10_000_000_000_000_000_000u64)
    );

    HashMap::from([
        (KEY.to_string(), s(record_id(seed, index))),
        ("name".into(), s(name)),
        (
            "email".into(),
            s(SafeEmail().fake_with_rng::<String, _>(rng)),
        ),
        (
            "company".into(),
            s(CompanyName().fake_with_rng::<String, _>(rng)),
        ),
        ("city".into(), s(CityName().fake_with_rng::<String, _>(rng))),
        (
            "country".into(),
            s(CountryName().fake_with_rng::<String, _>(rng)),
        ),
        ("age".into(), n(rng.random_range(18..100u32))),
        ("balance".into(), n(balance)),
        ("big".into(), n(big)),
        ("active".into(), Value::Bool(rng.random_bool(0.5))),
        ("nickname".into(), nickname),
        ("avatar".into(), Value::B(random_bytes(rng, 16..64))),
        ("tags".into(), Value::Ss(tags.into_iter().collect())),
        (
            "scores".into(),
            Value::Ns(scores.into_iter().map(|v| v.to_string()).collect()),
        ),
        ("keys".into(), Value::Bs(keys.into_iter().collect())),
        ("history".into(), Value::L(history)),
        ("profile".into(), profile),
    ])
}

fn s(value: impl Into<String>) -> Value {
    Value::S(value.into())
}

fn n(value: impl ToString) -> Value {
    Value::N(value.to_string())
}

fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::M(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn random_bytes(rng: &mut ChaCha8Rng, len: std::ops::Range<usize>) -> Vec<u8> {
    let len = rng.random_range(len);
    (0..len).map(|_| rng.random::<u8>()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::json::to_line;

    #[test]
    fn the_same_seed_and_index_give_the_same_bytes() {
        assert_eq!(to_line(&record(7, 3)), to_line(&record(7, 3)));
        assert_ne!(to_line(&record(7, 3)), to_line(&record(7, 4)));
        assert_ne!(to_line(&record(7, 3)), to_line(&record(8, 3)));
    }

    /// Pins the generator: if `rand_chacha`, `fake` or this code change what a seed
    /// produces, this fails, and the change must be deliberate (and noted).
    #[test]
    fn the_first_thousand_records_of_seed_42_are_pinned() {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for index in 0..1000 {
            hasher.update(to_line(&record(42, index)));
        }
        let digest: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(digest, PINNED_SEED_42);
    }

    const PINNED_SEED_42: &str = "63b2be4db795a7df69a15860974351e0f7553190ea05f3f20290815c303999c6";

    #[test]
    fn records_can_be_padded_to_a_size() {
        let small = record_sized(1, 2, None);
        assert!(!small.contains_key("pad"));
        for target in [2_000, 100_000, 390_000] {
            let item = record_sized(1, 2, Some(target));
            let size = crate::format::item::item_size(&item);
            assert!(size.abs_diff(target) < 64, "{size} for {target}");
            assert_eq!(to_line(&item), to_line(&record_sized(1, 2, Some(target))));
        }
    }

    #[test]
    fn records_carry_every_type_and_their_id() {
        let item = record(42, 0);
        assert_eq!(item.get(KEY), Some(&Value::S(record_id(42, 0))));
        let has = |f: fn(&Value) -> bool| item.values().any(f);
        assert!(has(|v| matches!(v, Value::S(_))) && has(|v| matches!(v, Value::N(_))));
        assert!(has(|v| matches!(v, Value::B(_))) && has(|v| matches!(v, Value::Bool(_))));
        assert!(has(|v| matches!(v, Value::L(_))) && has(|v| matches!(v, Value::M(_))));
        assert!(has(|v| matches!(v, Value::Ss(_))) && has(|v| matches!(v, Value::Ns(_))));
        assert!(has(|v| matches!(v, Value::Bs(_))));
        let line = to_line(&item);
        serde_json::from_slice::<serde_json::Value>(&line).expect("valid JSON");
        let Some(Value::N(big)) = item.get("big") else {
            panic!("big is a number")
        };
        assert_eq!(big.len(), 38, "{big}");
    }
}
