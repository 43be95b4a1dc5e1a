"""Metrics of recorded runs: SLA tables, Prometheus text, and OpenTelemetry spans.

>>> fluxnb.metrics.sla("steps")            # doctest: +SKIP
>>> print(fluxnb.metrics.prometheus_text())  # doctest: +SKIP
>>> fluxnb.metrics.enable_otel()           # doctest: +SKIP  (pip install 'fluxnb[otel]')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names
from ._otel import disable_otel, enable_otel, otel_enabled

if TYPE_CHECKING:
    from ._prometheus import prometheus_text
    from ._sla import sla

__all__ = ["disable_otel", "enable_otel", "otel_enabled", "prometheus_text", "sla"]

# every run asks _otel whether spans are on; the SQL-backed readers load when first used
__getattr__, __dir__ = lazy_names(
    __name__,
    {"prometheus_text": "fluxnb.metrics._prometheus", "sla": "fluxnb.metrics._sla"},
    __all__,
)
