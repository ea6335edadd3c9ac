"""PostgreSQL/TimescaleDB store: schema, migrations, bulk ingest, panel reads, features,
results."""
