"""Incremental planning: which months, invoices and accounts a delta changes, so a daily run recomputes
only those."""
