"""What stops a run, by exit status: one base class per status. An error that makes a run exit with 2 (bad input) or
3 (busy) derives from that status's class, so a failure's status is its type's, not a list of names (the statuses:
README, "Options"); any other error is status 1."""

from __future__ import annotations

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_BUSY = 3
EXIT_CHECKS_FAILED = 4  # a check at error level failed: nothing published (monitoring/checks.py)


class RunError(Exception):
    """A failure the pipeline names itself; exit status 1 unless a subclass says otherwise."""

    exit_status = EXIT_FAILED


class BadInputError(RunError):
    """The input is at fault (an extract, a column, a value, a database, a warehouse that does not allow what was
    asked), not the pipeline: exit status 2, and nothing is published."""

    exit_status = EXIT_BAD_INPUT


class BusyError(RunError):
    """Another run holds the warehouse or the output folder: exit status 3, and this run changed nothing."""

    exit_status = EXIT_BUSY


def _subclasses(base: type[RunError]) -> list[type[RunError]]:
    found = []
    for subclass in base.__subclasses__():
        found += [subclass, *_subclasses(subclass)]
    return found


def exit_status_of(error_name: str) -> int:
    """The exit status of an error raised in a stage's kernel, another process, from which only the error's class
    name comes back: that of the pipeline's error class of that name, 1 for any other error."""
    # every module that defines one of those classes, so each is known here
    from spark_etl.modelling import quality  # noqa: F401
    from spark_etl.monitoring import checks  # noqa: F401
    from spark_etl.publishing import run_files  # noqa: F401
    from spark_etl.sources import extract, jdbc  # noqa: F401
    from spark_etl.storage import load, versions, warehouse_lock  # noqa: F401

    statuses = {subclass.__name__: subclass.exit_status for subclass in _subclasses(RunError)}
    return statuses.get(error_name, EXIT_FAILED)
