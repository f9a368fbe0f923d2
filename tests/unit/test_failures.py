"""Exit statuses come from the error's type: one base class per status."""

from __future__ import annotations

import pytest

from spark_etl import failures
from spark_etl.modelling import quality
from spark_etl.publishing import run_files
from spark_etl.sources import extract, jdbc
from spark_etl.storage import load, versions, warehouse_lock


@pytest.mark.parametrize(
    ("error_class", "status"),
    [
        (extract.ExtractError, 2),
        (quality.ReconciliationError, 2),
        (load.WarehouseError, 2),
        (jdbc.JdbcError, 2),
        (versions.VersionError, 2),
        (warehouse_lock.WarehouseLockedError, 3),
        (run_files.OutputBusyError, 3),
    ],
)
def test_each_error_of_the_pipeline_has_its_status_by_type(error_class: type[failures.RunError], status: int) -> None:
    assert issubclass(error_class, failures.RunError)
    assert error_class.exit_status == status
    # as it comes back from a stage's kernel: the class name alone
    assert failures.exit_status_of(error_class.__name__) == status


def test_any_other_error_from_a_kernel_is_status_1() -> None:
    assert failures.exit_status_of("Py4JJavaError") == 1
    assert failures.exit_status_of("ZeroDivisionError") == 1
    assert failures.exit_status_of("") == 1
