//! Several statements and their values, sent to SQLite in one round trip.
//!
//! sqlx runs SQLite on a worker thread, and every statement is a hop to it
//! and back: two thread wake-ups, which on a busy 2-core phone cost more
//! than the statements that finish a batch (heads, room sums, id index).
//! sqlx prepares a string of several statements one after the other and
//! hands each the next of the values bound, in order, so the statements of
//! a script use only anonymous `?` placeholders (a numbered `?NNN` would
//! count from the first value of the whole script).

use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, AssertSqlSafe, Encode, Sqlite, SqliteConnection, Type};

use crate::error::Result;

/// Statements (each ending with `;`) and the values of their placeholders.
#[derive(Default)]
pub(crate) struct Script {
    sql: String,
    args: SqliteArguments,
    /// The first value that could not be encoded: the script then fails
    /// as a whole, instead of running with its values out of place.
    error: Option<sqlx::Error>,
}

impl Script {
    /// Append SQL text; a statement ends with `;`.
    pub(crate) fn sql(&mut self, text: &str) -> &mut Self {
        self.sql.push_str(text);
        self
    }

    /// The value of the next placeholder.
    pub(crate) fn bind<'q, T: Encode<'q, Sqlite> + Type<Sqlite> + 'q>(&mut self, value: T) -> &mut Self {
        if let Err(e) = self.args.add(value) {
            self.error.get_or_insert(sqlx::Error::Encode(e));
        }
        self
    }

    /// Run every statement, in order, in one round trip.
    pub(crate) async fn run(self, conn: &mut SqliteConnection) -> Result<()> {
        if let Some(e) = self.error {
            return Err(e.into());
        }
        if self.sql.is_empty() {
            return Ok(());
        }
        sqlx::query_with(AssertSqlSafe(self.sql), self.args).execute(&mut *conn).await?;
        Ok(())
    }
}
