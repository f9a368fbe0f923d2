"""What the tests share that is not a fixture: running the pipeline (pipeline), models on inline rows
(spark_views), PostgreSQL tables for the JDBC tests (pg_tables), the daily deltas' merge rules on plain rows
(daily_deltas), the comparison of a run's files with the reference (contract_compare) and processes contending
for a warehouse's lock (warehouse_locks)."""
