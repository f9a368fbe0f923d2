"""`python -m extracts_generator`: write seeded extracts (run with tools/ on the path, as `make extracts` does)."""

from __future__ import annotations

import argparse
import sys
import time

from extracts_generator.writing import generate


def main(argv: list[str] | None = None) -> int:
    """CLI entry: generate extracts and report rows per file and seconds on stderr."""
    parser = argparse.ArgumentParser(
        prog="python -m extracts_generator",
        description="Write seeded, deterministic CSV extracts shaped like the production ones.",
    )
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--scale", type=float, default=1.0, help="accounts = round(200 * scale); default 1")
    parser.add_argument(
        "--same-day-rate",
        type=float,
        default=0.15,
        help="chance an invoice shares its account's previous invoice date (default 0.15)",
    )
    parser.add_argument(
        "--unpaid-rate",
        type=float,
        default=0.0,
        help="share of invoices with empty payment_dates, half of them recent (default 0)",
    )
    parser.add_argument(
        "--skew-share",
        type=float,
        default=0.0,
        help="share of all invoices held by account 1 (default 0: no skew)",
    )
    parser.add_argument(
        "--bad-rows", type=int, default=0, help="about this many injected bad rows over all kinds (default 0)"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        written = generate(
            args.out,
            seed=args.seed,
            scale=args.scale,
            same_day_rate=args.same_day_rate,
            unpaid_rate=args.unpaid_rate,
            skew_share=args.skew_share,
            bad_rows=args.bad_rows,
        )
    except ValueError as error:
        parser.error(str(error))
    rows = " ".join(f"{table}={count}" for table, count in written.items())
    print(f"generated {args.out}: {rows} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
