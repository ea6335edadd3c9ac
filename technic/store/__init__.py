"""PostgreSQL/TimescaleDB store: schema, migrations, bulk ingest, panel reads, feature store, results."""
