//! `sqlx::migrate!` embeds the files under `migrations/` and `migrations-pg/`
//! at compile time, but cargo only knows to rebuild when Rust sources change.
//! Without this, adding a migration file would silently ship a binary that
//! does not contain it.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=migrations-pg");
}
