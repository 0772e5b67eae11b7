//! Statements in one round trip. The driver's `query`/`execute` with SQL text first asks
//! the server for the statement's parameter types (prepare), then runs it, then closes
//! it: three exchanges a statement, which made a run on PostgreSQL half as fast as on
//! SQLite on localhost (docs/scaling.md). Here every parameter names its type, so the
//! driver sends prepare, bind and execute at once (`query_typed`, one exchange).
//!
//! [`Param`] gives the PostgreSQL type of each Rust type the backend passes: text for
//! strings (dates, times, amounts and JSON are stored as text, as in SQLite), `bigint`
//! for ids, counts and serials, and arrays of them for the set-based writes (one
//! statement for a whole call's rows, `unnest($1::text[], …)`).

use postgres::types::{ToSql, Type};
use postgres::{Error, GenericClient, Row};

/// A statement parameter with its PostgreSQL type.
pub(super) trait Param: ToSql + Sync {
    /// The type the server is told the parameter has.
    fn pg_type(&self) -> Type;
    /// The value, for the driver.
    fn as_sql(&self) -> &(dyn ToSql + Sync);
}

macro_rules! params {
    ($($rust:ty => $pg:expr),+ $(,)?) => {
        $(impl Param for $rust {
            fn pg_type(&self) -> Type {
                $pg
            }
            fn as_sql(&self) -> &(dyn ToSql + Sync) {
                self
            }
        })+
    };
}

params! {
    &str => Type::TEXT,
    String => Type::TEXT,
    Option<&str> => Type::TEXT,
    Option<String> => Type::TEXT,
    i64 => Type::INT8,
    Option<i64> => Type::INT8,
    bool => Type::BOOL,
    Vec<i64> => Type::INT8_ARRAY,
    &[i64] => Type::INT8_ARRAY,
    Vec<String> => Type::TEXT_ARRAY,
    Vec<&str> => Type::TEXT_ARRAY,
    Vec<Option<String>> => Type::TEXT_ARRAY,
    Vec<Option<&str>> => Type::TEXT_ARRAY,
    Vec<Option<i64>> => Type::INT8_ARRAY,
    Vec<bool> => Type::BOOL_ARRAY,
}

fn typed<'a>(params: &'a [&'a dyn Param]) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    params.iter().map(|p| (p.as_sql(), p.pg_type())).collect()
}

/// `execute`, `query`, `query_one` and `query_opt` in one round trip each.
pub(super) trait Typed: GenericClient {
    /// Runs a statement; the number of rows it changed.
    fn execute_t(&mut self, sql: &str, params: &[&dyn Param]) -> Result<u64, Error> {
        self.execute_typed(sql, &typed(params))
    }

    /// Every row of a query.
    fn query_t(&mut self, sql: &str, params: &[&dyn Param]) -> Result<Vec<Row>, Error> {
        self.query_typed(sql, &typed(params))
    }

    /// The one row of a query (an error for none or several).
    fn query_one_t(&mut self, sql: &str, params: &[&dyn Param]) -> Result<Row, Error> {
        self.query_typed_one(sql, &typed(params))
    }

    /// The row of a query, if any (an error for several).
    fn query_opt_t(&mut self, sql: &str, params: &[&dyn Param]) -> Result<Option<Row>, Error> {
        self.query_typed_opt(sql, &typed(params))
    }
}

impl<C: GenericClient + ?Sized> Typed for C {}
