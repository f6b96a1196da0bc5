//! The transactional key-value interface every store operation is written against, once, for
//! both backends: the embedded redb file and PostgreSQL (see [`super::pg`]).
//!
//! Each table is an ordered map from a typed key to a typed value (the types, and their byte
//! encodings, are redb's). A write transaction sees its own writes and commits all or nothing;
//! a read transaction is a consistent snapshot. On redb that is redb's own transactions; on
//! PostgreSQL a table is `(k bytea primary key, v bytea)`, keys are stored in an
//! order-preserving encoding (so range scans come back in the order redb gives), and write
//! transactions are serialised across every node (see [`super::pg`]), which makes each
//! operation of the store exactly as atomic there as it is on one redb file.

use std::{
    borrow::Borrow,
    marker::PhantomData,
    ops::{Bound, RangeBounds},
};

use redb::{ReadableTable as _, ReadableTableMetadata as _};

use super::{StoreError, pg};

/// A table: its name and the types of its keys and values.
pub struct Table<K: KeyCodec, V: redb::Value + 'static> {
    name: &'static str,
    types: PhantomData<(K, V)>,
}

impl<K: KeyCodec, V: redb::Value + 'static> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K: KeyCodec, V: redb::Value + 'static> Copy for Table<K, V> {}

impl<K: KeyCodec, V: redb::Value + 'static> Table<K, V> {
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            types: PhantomData,
        }
    }

    /// The table's name (the same on both backends).
    pub fn name(&self) -> &'static str {
        self.name
    }

    fn redb(&self) -> redb::TableDefinition<'static, K, V> {
        redb::TableDefinition::new(self.name)
    }
}

/// A key type with an order-preserving byte encoding, so PostgreSQL (which compares `bytea`
/// byte by byte) orders and ranges keys exactly as redb does.
pub trait KeyCodec: redb::Key + 'static {
    /// The order-preserving encoding of `key`.
    fn ordered(key: &Self::SelfType<'_>) -> Vec<u8>;
    /// redb's encoding of the key whose order-preserving encoding is `ordered`.
    fn from_ordered(ordered: &[u8]) -> Result<Vec<u8>, String>;
}

impl KeyCodec for &'static str {
    fn ordered(key: &&str) -> Vec<u8> {
        key.as_bytes().to_vec()
    }
    fn from_ordered(ordered: &[u8]) -> Result<Vec<u8>, String> {
        Ok(ordered.to_vec())
    }
}

impl KeyCodec for &'static [u8] {
    fn ordered(key: &&[u8]) -> Vec<u8> {
        key.to_vec()
    }
    fn from_ordered(ordered: &[u8]) -> Result<Vec<u8>, String> {
        Ok(ordered.to_vec())
    }
}

impl KeyCodec for u64 {
    fn ordered(key: &u64) -> Vec<u8> {
        key.to_be_bytes().to_vec()
    }
    fn from_ordered(ordered: &[u8]) -> Result<Vec<u8>, String> {
        let bytes: [u8; 8] = ordered.try_into().map_err(|_| "not 8 bytes".to_string())?;
        Ok(u64::from_be_bytes(bytes).to_le_bytes().to_vec())
    }
}

/// One element of a tuple key, in the order-preserving encoding: elements before the last
/// are self-delimiting (bytes with 0x00 escaped as 0x00 0xFF, then 0x00 0x00; integers
/// fixed-width big-endian), the last is raw, so a shorter prefix sorts first.
trait Part: Sized {
    fn put(&self, out: &mut Vec<u8>, last: bool);
    fn take(input: &[u8], last: bool) -> Result<(Self, &[u8]), String>;
}

fn put_bytes(bytes: &[u8], out: &mut Vec<u8>, last: bool) {
    if last {
        out.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

fn take_bytes(input: &[u8], last: bool) -> Result<(Vec<u8>, &[u8]), String> {
    if last {
        return Ok((input.to_vec(), &[]));
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < input.len() {
        match (input[i], input.get(i + 1)) {
            (0, Some(0)) => return Ok((out, &input[i + 2..])),
            (0, Some(0xFF)) => {
                out.push(0);
                i += 2;
            }
            (0, _) => return Err("bad escape in a key".into()),
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Err("unterminated key element".into())
}

impl Part for String {
    fn put(&self, out: &mut Vec<u8>, last: bool) {
        put_bytes(self.as_bytes(), out, last);
    }
    fn take(input: &[u8], last: bool) -> Result<(Self, &[u8]), String> {
        let (bytes, rest) = take_bytes(input, last)?;
        let text = String::from_utf8(bytes).map_err(|_| "a key's text is not UTF-8")?;
        Ok((text, rest))
    }
}

impl Part for Vec<u8> {
    fn put(&self, out: &mut Vec<u8>, last: bool) {
        put_bytes(self, out, last);
    }
    fn take(input: &[u8], last: bool) -> Result<(Self, &[u8]), String> {
        take_bytes(input, last)
    }
}

impl Part for u64 {
    fn put(&self, out: &mut Vec<u8>, _last: bool) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn take(input: &[u8], _last: bool) -> Result<(Self, &[u8]), String> {
        if input.len() < 8 {
            return Err("a key's integer is cut short".into());
        }
        let (head, rest) = input.split_at(8);
        let bytes: [u8; 8] = head.try_into().map_err(|_| "not 8 bytes".to_string())?;
        Ok((u64::from_be_bytes(bytes), rest))
    }
}

/// `KeyCodec` for a tuple key of the given element types: `$ty` is the key's element type
/// as redb sees it, `$owned` the owned type decoding yields, `$as` how to borrow it back.
macro_rules! tuple_key {
    ($(($ty:ty, $owned:ty, $v:ident, $as:expr)),+ ; $n:literal) => {
        impl KeyCodec for ($($ty,)+) {
            #[allow(unused_assignments)]
            fn ordered(key: &Self::SelfType<'_>) -> Vec<u8> {
                let ($($v,)+) = key;
                let mut out = Vec::new();
                let mut index = 0;
                $(
                    index += 1;
                    let owned: $owned = $v.to_owned().into();
                    owned.put(&mut out, index == $n);
                )+
                out
            }
            #[allow(unused_assignments)]
            fn from_ordered(ordered: &[u8]) -> Result<Vec<u8>, String> {
                let mut rest = ordered;
                let mut index = 0;
                $(
                    index += 1;
                    let ($v, tail) = <$owned as Part>::take(rest, index == $n)?;
                    rest = tail;
                )+
                let borrowed: Self::SelfType<'_> = ($($as(&$v),)+);
                let encoded = <Self as redb::Value>::as_bytes(&borrowed);
                let encoded: &[u8] = encoded.as_ref();
                Ok(encoded.to_vec())
            }
        }
    };
}

fn int(n: &u64) -> u64 {
    *n
}

tuple_key!((&'static str, String, a, String::as_str), (&'static str, String, b, String::as_str); 2);
tuple_key!((&'static str, String, a, String::as_str), (&'static [u8], Vec<u8>, b, Vec::as_slice); 2);
tuple_key!((u64, u64, a, int), (&'static str, String, b, String::as_str); 2);
tuple_key!((&'static str, String, a, String::as_str), (u64, u64, b, int), (&'static str, String, c, String::as_str); 3);
tuple_key!((u64, u64, a, int), (&'static str, String, b, String::as_str), (&'static [u8], Vec<u8>, c, Vec::as_slice); 3);

/// A value read from a table: `value()` gives it in the table's type.
pub struct Guard<'a, T: redb::Value + 'static> {
    inner: GuardInner<'a, T>,
}

enum GuardInner<'a, T: redb::Value + 'static> {
    Redb(redb::AccessGuard<'a, T>),
    /// redb's encoding of the value, as read from PostgreSQL.
    Owned(Vec<u8>),
}

impl<'a, T: redb::Value + 'static> Guard<'a, T> {
    fn redb(guard: redb::AccessGuard<'a, T>) -> Self {
        Self {
            inner: GuardInner::Redb(guard),
        }
    }

    fn owned(bytes: Vec<u8>) -> Self {
        Self {
            inner: GuardInner::Owned(bytes),
        }
    }

    /// The value.
    pub fn value(&self) -> T::SelfType<'_> {
        match &self.inner {
            GuardInner::Redb(g) => g.value(),
            GuardInner::Owned(bytes) => T::from_bytes(bytes),
        }
    }
}

type Row<'a, K, V> = (Guard<'a, K>, Guard<'a, V>);

/// Reading a table, from a read or a write transaction.
pub trait ReadableTable<K: KeyCodec, V: redb::Value + 'static> {
    /// The value stored under `key`.
    fn get<'a>(
        &self,
        key: impl Borrow<K::SelfType<'a>>,
    ) -> Result<Option<Guard<'_, V>>, StoreError>;
    /// The rows whose keys are in `range`, in key order (`.rev()` for the reverse).
    fn range<'a, KR>(
        &self,
        range: impl RangeBounds<KR> + 'a,
    ) -> Result<Range<'_, K, V>, StoreError>
    where
        KR: Borrow<K::SelfType<'a>> + 'a;
    /// Every row, in key order.
    fn iter(&self) -> Result<Range<'_, K, V>, StoreError>;
    /// The row with the smallest key.
    fn first(&self) -> Result<Option<Row<'_, K, V>>, StoreError>;
    /// How many rows the table holds.
    fn len(&self) -> Result<u64, StoreError>;
    /// Whether the table holds no row.
    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.first()?.is_none())
    }
}

/// A table opened in a write transaction.
pub struct TableMut<'t, K: KeyCodec, V: redb::Value + 'static> {
    inner: TableMutInner<'t, K, V>,
}

enum TableMutInner<'t, K: KeyCodec, V: redb::Value + 'static> {
    Redb(redb::Table<'t, K, V>),
    Pg(PgTable<'t>),
}

/// A table opened in a read transaction.
pub struct TableRead<'t, K: KeyCodec, V: redb::Value + 'static> {
    inner: TableReadInner<'t, K, V>,
}

enum TableReadInner<'t, K: KeyCodec, V: redb::Value + 'static> {
    Redb(redb::ReadOnlyTable<K, V>),
    Pg(PgTable<'t>),
}

/// A PostgreSQL table within one transaction.
#[derive(Clone, Copy)]
struct PgTable<'t> {
    txn: &'t pg::Txn,
    name: &'static str,
}

fn encoded_range<'a, K: KeyCodec, KR: Borrow<K::SelfType<'a>> + 'a>(
    range: &impl RangeBounds<KR>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let one = |b: Bound<&KR>| match b {
        Bound::Included(k) => Bound::Included(K::ordered(k.borrow())),
        Bound::Excluded(k) => Bound::Excluded(K::ordered(k.borrow())),
        Bound::Unbounded => Bound::Unbounded,
    };
    (one(range.start_bound()), one(range.end_bound()))
}

impl<'t> PgTable<'t> {
    fn get<K: KeyCodec, V: redb::Value + 'static>(
        &self,
        key: &K::SelfType<'_>,
    ) -> Result<Option<Guard<'t, V>>, StoreError> {
        Ok(self.txn.get(self.name, K::ordered(key))?.map(Guard::owned))
    }

    fn range<K: KeyCodec, V: redb::Value + 'static>(
        &self,
        bounds: (Bound<Vec<u8>>, Bound<Vec<u8>>),
    ) -> Range<'t, K, V> {
        Range {
            inner: RangeInner::Pg(PgRange {
                table: *self,
                lower: bounds.0,
                upper: bounds.1,
                front: Default::default(),
                back: Default::default(),
                front_done: false,
                back_done: false,
            }),
        }
    }

    fn first<K: KeyCodec, V: redb::Value + 'static>(
        &self,
    ) -> Result<Option<Row<'t, K, V>>, StoreError> {
        let rows = self
            .txn
            .page(self.name, &Bound::Unbounded, &Bound::Unbounded, false, 1)?;
        rows.into_iter()
            .next()
            .map(|(k, v)| owned_row::<K, V>(self.name, k, v))
            .transpose()
    }
}

fn owned_row<'t, K: KeyCodec, V: redb::Value + 'static>(
    table: &'static str,
    key: Vec<u8>,
    value: Vec<u8>,
) -> Result<Row<'t, K, V>, StoreError> {
    let key = K::from_ordered(&key).map_err(|detail| StoreError::Corrupt { table, detail })?;
    Ok((Guard::owned(key), Guard::owned(value)))
}

macro_rules! readable {
    ($ty:ident, $inner:ident) => {
        impl<'t, K: KeyCodec, V: redb::Value + 'static> $ty<'t, K, V> {
            /// The value stored under `key`.
            pub fn get<'a>(
                &self,
                key: impl Borrow<K::SelfType<'a>>,
            ) -> Result<Option<Guard<'_, V>>, StoreError> {
                match &self.inner {
                    $inner::Redb(t) => Ok(t.get(key)?.map(Guard::redb)),
                    $inner::Pg(t) => t.get::<K, V>(key.borrow()),
                }
            }

            /// The rows whose keys are in `range`, in key order (`.rev()` for the reverse).
            pub fn range<'a, KR>(
                &self,
                range: impl RangeBounds<KR> + 'a,
            ) -> Result<Range<'_, K, V>, StoreError>
            where
                KR: Borrow<K::SelfType<'a>> + 'a,
            {
                match &self.inner {
                    $inner::Redb(t) => Ok(Range {
                        inner: RangeInner::Redb(t.range(range)?),
                    }),
                    $inner::Pg(t) => Ok(t.range(encoded_range::<K, KR>(&range))),
                }
            }

            /// Every row, in key order.
            pub fn iter(&self) -> Result<Range<'_, K, V>, StoreError> {
                match &self.inner {
                    $inner::Redb(t) => Ok(Range {
                        inner: RangeInner::Redb(t.iter()?),
                    }),
                    $inner::Pg(t) => Ok(t.range((Bound::Unbounded, Bound::Unbounded))),
                }
            }

            /// The row with the smallest key.
            pub fn first(&self) -> Result<Option<Row<'_, K, V>>, StoreError> {
                match &self.inner {
                    $inner::Redb(t) => {
                        Ok(t.first()?.map(|(k, v)| (Guard::redb(k), Guard::redb(v))))
                    }
                    $inner::Pg(t) => t.first(),
                }
            }

            /// How many rows the table holds.
            pub fn len(&self) -> Result<u64, StoreError> {
                match &self.inner {
                    $inner::Redb(t) => Ok(t.len()?),
                    $inner::Pg(t) => t.txn.count(t.name),
                }
            }

            /// Whether the table holds no row.
            pub fn is_empty(&self) -> Result<bool, StoreError> {
                Ok($ty::first(self)?.is_none())
            }
        }

        impl<'t, K: KeyCodec, V: redb::Value + 'static> ReadableTable<K, V> for $ty<'t, K, V> {
            fn get<'a>(
                &self,
                key: impl Borrow<K::SelfType<'a>>,
            ) -> Result<Option<Guard<'_, V>>, StoreError> {
                $ty::get(self, key)
            }

            fn range<'a, KR>(
                &self,
                range: impl RangeBounds<KR> + 'a,
            ) -> Result<Range<'_, K, V>, StoreError>
            where
                KR: Borrow<K::SelfType<'a>> + 'a,
            {
                $ty::range(self, range)
            }

            fn iter(&self) -> Result<Range<'_, K, V>, StoreError> {
                $ty::iter(self)
            }

            fn first(&self) -> Result<Option<Row<'_, K, V>>, StoreError> {
                $ty::first(self)
            }

            fn len(&self) -> Result<u64, StoreError> {
                $ty::len(self)
            }
        }
    };
}
readable!(TableMut, TableMutInner);
readable!(TableRead, TableReadInner);

impl<K: KeyCodec, V: redb::Value + 'static> TableMut<'_, K, V> {
    /// Stores `value` under `key`; returns the value it replaced.
    pub fn insert<'k, 'v>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<Option<Guard<'_, V>>, StoreError> {
        match &mut self.inner {
            TableMutInner::Redb(t) => Ok(t.insert(key, value)?.map(Guard::redb)),
            TableMutInner::Pg(t) => {
                let value = V::as_bytes(value.borrow()).as_ref().to_vec();
                Ok(t.txn
                    .insert(t.name, K::ordered(key.borrow()), value)?
                    .map(Guard::owned))
            }
        }
    }

    /// Removes `key`; returns the value it had.
    pub fn remove<'a>(
        &mut self,
        key: impl Borrow<K::SelfType<'a>>,
    ) -> Result<Option<Guard<'_, V>>, StoreError> {
        match &mut self.inner {
            TableMutInner::Redb(t) => Ok(t.remove(key)?.map(Guard::redb)),
            TableMutInner::Pg(t) => Ok(t
                .txn
                .remove(t.name, K::ordered(key.borrow()))?
                .map(Guard::owned)),
        }
    }

    /// Keeps only the rows `keep` says yes to.
    pub fn retain(
        &mut self,
        mut keep: impl for<'f> FnMut(K::SelfType<'f>, V::SelfType<'f>) -> bool,
    ) -> Result<(), StoreError> {
        match &mut self.inner {
            TableMutInner::Redb(t) => Ok(t.retain(keep)?),
            TableMutInner::Pg(t) => {
                let table = *t;
                let mut doomed = Vec::new();
                for row in table.range::<K, V>((Bound::Unbounded, Bound::Unbounded)) {
                    let (k, v) = row?;
                    if !keep(k.value(), v.value()) {
                        doomed.push(K::ordered(&k.value()));
                    }
                }
                for key in doomed {
                    table.txn.remove(table.name, key)?;
                }
                Ok(())
            }
        }
    }
}

/// Rows of a table in key order; `.rev()` walks them from the end.
pub struct Range<'a, K: KeyCodec, V: redb::Value + 'static> {
    inner: RangeInner<'a, K, V>,
}

enum RangeInner<'a, K: KeyCodec, V: redb::Value + 'static> {
    Redb(redb::Range<'a, K, V>),
    Pg(PgRange<'a>),
}

/// How many rows one query of a PostgreSQL range fetches.
const PAGE: i64 = 256;

/// A range over a PostgreSQL table, fetched a page at a time from whichever end is walked
/// (walking one range from both ends is not supported: nothing here does).
struct PgRange<'a> {
    table: PgTable<'a>,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    front: std::collections::VecDeque<pg::RawRow>,
    back: std::collections::VecDeque<pg::RawRow>,
    front_done: bool,
    back_done: bool,
}

impl PgRange<'_> {
    fn next_raw(&mut self, from_back: bool) -> Option<Result<pg::RawRow, StoreError>> {
        let (buffer, done) = if from_back {
            (&mut self.back, &mut self.back_done)
        } else {
            (&mut self.front, &mut self.front_done)
        };
        if buffer.is_empty() && !*done {
            match self
                .table
                .txn
                .page(self.table.name, &self.lower, &self.upper, from_back, PAGE)
            {
                Ok(rows) => {
                    if (rows.len() as i64) < PAGE {
                        *done = true;
                    }
                    if let Some((last, _)) = rows.last() {
                        if from_back {
                            self.upper = Bound::Excluded(last.clone());
                        } else {
                            self.lower = Bound::Excluded(last.clone());
                        }
                    }
                    buffer.extend(rows);
                }
                Err(e) => {
                    *done = true;
                    return Some(Err(e));
                }
            }
        }
        buffer.pop_front().map(Ok)
    }
}

impl<'a, K: KeyCodec, V: redb::Value + 'static> Iterator for Range<'a, K, V> {
    type Item = Result<Row<'a, K, V>, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            RangeInner::Redb(r) => r.next().map(|row| {
                row.map(|(k, v)| (Guard::redb(k), Guard::redb(v)))
                    .map_err(StoreError::from)
            }),
            RangeInner::Pg(r) => r
                .next_raw(false)
                .map(|row| row.and_then(|(k, v)| owned_row::<K, V>(r.table.name, k, v))),
        }
    }
}

impl<K: KeyCodec, V: redb::Value + 'static> DoubleEndedIterator for Range<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            RangeInner::Redb(r) => r.next_back().map(|row| {
                row.map(|(k, v)| (Guard::redb(k), Guard::redb(v)))
                    .map_err(StoreError::from)
            }),
            RangeInner::Pg(r) => r
                .next_raw(true)
                .map(|row| row.and_then(|(k, v)| owned_row::<K, V>(r.table.name, k, v))),
        }
    }
}

/// A write transaction: everything written through it commits together or not at all.
pub struct WriteTransaction {
    inner: WriteInner,
}

// The redb transaction is large and there is one per write: boxing it would cost an
// allocation on every write of the default backend for nothing.
#[allow(clippy::large_enum_variant)]
enum WriteInner {
    Redb(redb::WriteTransaction),
    Pg(pg::Txn),
}

impl WriteTransaction {
    pub(super) fn redb(txn: redb::WriteTransaction) -> Self {
        Self {
            inner: WriteInner::Redb(txn),
        }
    }

    pub(super) fn pg(txn: pg::Txn) -> Self {
        Self {
            inner: WriteInner::Pg(txn),
        }
    }

    /// Opens `table` for reading and writing.
    pub fn open_table<K: KeyCodec, V: redb::Value + 'static>(
        &self,
        table: Table<K, V>,
    ) -> Result<TableMut<'_, K, V>, StoreError> {
        let inner = match &self.inner {
            WriteInner::Redb(txn) => TableMutInner::Redb(txn.open_table(table.redb())?),
            WriteInner::Pg(txn) => TableMutInner::Pg(PgTable {
                txn,
                name: table.name,
            }),
        };
        Ok(TableMut { inner })
    }

    /// Creates `table` when it does not exist yet.
    pub(crate) fn create_table<K: KeyCodec, V: redb::Value + 'static>(
        &self,
        table: Table<K, V>,
    ) -> Result<(), StoreError> {
        match &self.inner {
            WriteInner::Redb(txn) => {
                txn.open_table(table.redb())?;
                Ok(())
            }
            WriteInner::Pg(txn) => txn.create_table(table.name),
        }
    }

    /// Commits; on error nothing of the transaction is kept.
    pub(super) fn commit(self) -> Result<(), StoreError> {
        match self.inner {
            WriteInner::Redb(txn) => Ok(txn.commit()?),
            WriteInner::Pg(txn) => txn.commit(),
        }
    }
}

/// A read transaction: a consistent snapshot.
pub struct ReadTransaction {
    inner: ReadInner,
}

enum ReadInner {
    Redb(redb::ReadTransaction),
    Pg(pg::Txn),
}

impl ReadTransaction {
    pub(super) fn redb(txn: redb::ReadTransaction) -> Self {
        Self {
            inner: ReadInner::Redb(txn),
        }
    }

    pub(super) fn pg(txn: pg::Txn) -> Self {
        Self {
            inner: ReadInner::Pg(txn),
        }
    }

    /// Opens `table` for reading. Every table exists once the store is open (they are all
    /// created at open), so on PostgreSQL this asks the server nothing; a table that somehow
    /// does not exist fails the first statement on it.
    pub fn open_table<K: KeyCodec, V: redb::Value + 'static>(
        &self,
        table: Table<K, V>,
    ) -> Result<TableRead<'_, K, V>, StoreError> {
        match &self.inner {
            ReadInner::Pg(txn) => Ok(TableRead {
                inner: TableReadInner::Pg(PgTable {
                    txn,
                    name: table.name,
                }),
            }),
            ReadInner::Redb(_) => self.try_open_table(table)?.ok_or_else(|| {
                StoreError::Database(redb::Error::TableDoesNotExist(table.name.to_string()))
            }),
        }
    }

    /// Opens `table` for reading, or `None` when the database does not have it (a database
    /// older than the table, before it is opened and migrated; copies between stores).
    pub fn try_open_table<K: KeyCodec, V: redb::Value + 'static>(
        &self,
        table: Table<K, V>,
    ) -> Result<Option<TableRead<'_, K, V>>, StoreError> {
        let inner = match &self.inner {
            ReadInner::Redb(txn) => match txn.open_table(table.redb()) {
                Ok(t) => TableReadInner::Redb(t),
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            },
            ReadInner::Pg(txn) => {
                if !txn.has_table(table.name)? {
                    return Ok(None);
                }
                TableReadInner::Pg(PgTable {
                    txn,
                    name: table.name,
                })
            }
        };
        Ok(Some(TableRead { inner }))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn order_of<K: KeyCodec>(a: &K::SelfType<'_>, b: &K::SelfType<'_>) -> std::cmp::Ordering {
        K::ordered(a).cmp(&K::ordered(b))
    }

    proptest! {
        #[test]
        fn tuple_keys_sort_as_redb_sorts_them(
            a in ".{0,6}", b in proptest::collection::vec(any::<u8>(), 0..6),
            c in ".{0,6}", d in proptest::collection::vec(any::<u8>(), 0..6),
        ) {
            let x: (&str, &[u8]) = (&a, &b);
            let y: (&str, &[u8]) = (&c, &d);
            prop_assert_eq!(order_of::<(&'static str, &'static [u8])>(&x, &y), x.cmp(&y));
            let back = <(&'static str, &'static [u8])>::from_ordered(&<(&'static str, &'static [u8])>::ordered(&x)).unwrap();
            let decoded = <(&'static str, &'static [u8]) as redb::Value>::from_bytes(&back);
            prop_assert_eq!(decoded, x);
        }

        #[test]
        fn time_keys_sort_by_time_then_text(t1 in any::<u64>(), s1 in ".{0,5}", k1 in proptest::collection::vec(any::<u8>(), 0..4),
                                            t2 in any::<u64>(), s2 in ".{0,5}", k2 in proptest::collection::vec(any::<u8>(), 0..4)) {
            let x: (u64, &str, &[u8]) = (t1, &s1, &k1);
            let y: (u64, &str, &[u8]) = (t2, &s2, &k2);
            prop_assert_eq!(order_of::<(u64, &'static str, &'static [u8])>(&x, &y), x.cmp(&y));
            let back = <(u64, &'static str, &'static [u8])>::from_ordered(&<(u64, &'static str, &'static [u8])>::ordered(&x)).unwrap();
            prop_assert_eq!(<(u64, &'static str, &'static [u8]) as redb::Value>::from_bytes(&back), x);
            let u: (&str, u64, &str) = (&s1, t1, &s2);
            let back = <(&'static str, u64, &'static str)>::from_ordered(&<(&'static str, u64, &'static str)>::ordered(&u)).unwrap();
            prop_assert_eq!(<(&'static str, u64, &'static str) as redb::Value>::from_bytes(&back), u);
        }
    }
}
