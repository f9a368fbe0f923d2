"""Watching every run: the feature metrics kept per issue month with each version, the checks at warn and error
level that run before a commit, and the run history they compare with (docs/design.md, "Watched runs")."""
