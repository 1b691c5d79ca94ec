//! The device identity: one row holding the secret key, the display name and
//! when it was made.
//!
//! The secret leaves the store only inside a [`festival_core::Identity`], the
//! form needed to sign; no method returns the raw bytes. SQLite's page cache
//! and sqlx's buffers hold copies we cannot wipe, so the guarantee offered is
//! about the API, not about memory.

use festival_core::body::check_name;
use festival_core::Identity;

use crate::error::{corrupt, from_sql, peer_from_sql, to_sql, Result, StoreError};
use crate::open::Store;

/// This device's identity as stored.
#[derive(Debug)]
pub struct LocalIdentity {
    pub identity: Identity,
    pub name: String,
    /// When the identity was created, ms since the Unix epoch.
    pub created_at: u64,
}

const SECRET_LEN: usize = 32;

/// The identity from its stored row, checked: the secret must be 32 bytes
/// and give the stored peer id (a flipped bit in the secret would give a
/// working but different identity: everything signed from then on would be
/// someone else's).
pub(crate) fn local_identity(secret: &[u8], peer_id: &[u8], name: String, created_at: i64) -> Result<LocalIdentity> {
    let secret: &[u8; SECRET_LEN] =
        secret.try_into().map_err(|_| corrupt("identity", format!("secret key of {} bytes", secret.len())))?;
    let identity = Identity::from_secret_bytes(secret);
    if identity.peer_id() != peer_from_sql("identity", peer_id)? {
        return Err(corrupt("identity", "secret key does not match the stored peer id"));
    }
    Ok(LocalIdentity { identity, name, created_at: from_sql("identity", created_at)? })
}

impl Store {
    /// The device identity, or `None` before [`Store::create_identity`].
    pub async fn identity(&self) -> Result<Option<LocalIdentity>> {
        let row: Option<(Vec<u8>, Vec<u8>, String, i64)> =
            sqlx::query_as("SELECT secret, peer_id, name, created_at FROM identity WHERE singleton = 1")
                .fetch_optional(&self.reader)
                .await?;
        row.map(|(secret, peer_id, name, created_at)| local_identity(&secret, &peer_id, name, created_at)).transpose()
    }

    /// Store the device identity. There is only ever one: a second call fails
    /// with [`StoreError::AlreadyInitialised`] and changes nothing.
    pub async fn create_identity(&self, identity: &Identity, name: &str, now: u64) -> Result<()> {
        check_name(name).map_err(StoreError::BadName)?;
        let secret = identity.secret_bytes();
        let done = sqlx::query(
            "INSERT INTO identity (singleton, secret, peer_id, name, created_at) VALUES (1, ?, ?, ?, ?)
             ON CONFLICT (singleton) DO NOTHING",
        )
        .bind(&secret[..])
        .bind(&identity.peer_id().as_bytes()[..])
        .bind(name)
        .bind(to_sql("created_at", now)?)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::AlreadyInitialised);
        }
        Ok(())
    }

    /// Change the display name of the device identity.
    pub async fn set_name(&self, name: &str) -> Result<()> {
        check_name(name).map_err(StoreError::BadName)?;
        let done =
            sqlx::query("UPDATE identity SET name = ? WHERE singleton = 1").bind(name).execute(&self.writer).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NoIdentity);
        }
        Ok(())
    }
}
