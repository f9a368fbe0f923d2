"""Where a run's rows come from: the CSV extracts, one snapshot of PostgreSQL, what changed in it since the
last version, and the staging stage's start that picks between them."""
