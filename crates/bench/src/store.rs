use serde_json::Value; #[derive(clap::Args)] pub struct Args {} pub fn run(_a: Args) -> anyhow::Result<Value> { anyhow::bail!("todo") }
