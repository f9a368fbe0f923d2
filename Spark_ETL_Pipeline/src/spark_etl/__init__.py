"""Spark SQL pipeline that turns four production extracts into one feature row per invoice."""

from __future__ import annotations

__version__ = "0.1.0"
