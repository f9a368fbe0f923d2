"""The model graph and its checks: the registry of every model, running a model's SQL, the keys and
relationships checked on every build, the row accounting and profiles."""
