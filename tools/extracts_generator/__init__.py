"""Seeded, deterministic generator of CSV extracts shaped like the production ones: a development tool, not part
of the pipeline.

The real extracts are too small to test scale and too clean to test the reject rules, so this writes look-alike
files of any size, optionally with a known mix of bad rows. Same arguments give byte-identical files. By concern:
`shapes` (clean rows and volumes), `bad_rows` (the injected faults), `writing` (the files, and `generate`).
"""

from __future__ import annotations

from extracts_generator.writing import generate

__all__ = ["generate"]
