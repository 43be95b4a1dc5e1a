"""One rule for missing text in the DataFrames fluxnb returns: a NULL string is ``None``.

pandas 3 stores text as its ``str`` dtype, whose missing value is ``NaN`` (a float): a
``status`` column would hold ``'succeeded'`` and ``nan``, and printing it says ``nan``.
Every DataFrame fluxnb hands out passes through :func:`nulls_as_none`, which makes such
columns ``object`` columns holding ``str`` or ``None`` (and replaces ``NaN`` / ``NaT`` /
``pd.NA`` among the values of ``object`` columns with ``None``). A text column without
NULLs is left as it is. Numeric columns keep ``NaN``: there it is the missing number
pandas computes with.
"""

from __future__ import annotations

from typing import Any


def nulls_as_none(frame: Any) -> Any:
    """``frame`` with missing values of its text (and other object) columns as ``None``."""
    import pandas as pd

    for i, dtype in enumerate(frame.dtypes):
        is_object = pd.api.types.is_object_dtype(dtype)
        if not (isinstance(dtype, pd.StringDtype) or is_object):
            continue
        column = frame.iloc[:, i]
        missing = column.isna()
        if not missing.any():
            continue  # nothing to change: no copy of a column without NULLs
        values = column.astype(object)
        frame.isetitem(i, values.where(~missing, None))
    return frame
