"""Metrics of recorded runs: SLA tables, Prometheus text, and OpenTelemetry spans.

>>> fluxnb.metrics.sla("steps")            # doctest: +SKIP
>>> print(fluxnb.metrics.prometheus_text())  # doctest: +SKIP
>>> fluxnb.metrics.enable_otel()           # doctest: +SKIP  (pip install 'fluxnb[otel]')
"""

from __future__ import annotations

from ._otel import disable_otel, enable_otel, otel_enabled
from ._prometheus import prometheus_text
from ._sla import sla

__all__ = ["disable_otel", "enable_otel", "otel_enabled", "prometheus_text", "sla"]
