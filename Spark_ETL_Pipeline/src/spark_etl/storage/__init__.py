"""The warehouse and the files under it: the Warehouse object, the version a run builds, the lock, the one
file-system layer, and the Parquet and CSV writes."""
