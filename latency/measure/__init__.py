"""Latency figures that carry their uncertainty (issue 16).

``stats`` (the estimate and its hierarchical bootstrap interval),
``rounds`` (one fresh interpreter or process per round, pooled into a
result), ``uncertainty`` (the values a result carries), ``conditions``
(load, steal, frequency, thermal state, read locally or over adb),
``interference`` (other busy processes and steal), ``adaptive``
(interleaved rounds until the interval is tight enough) and ``reference``
(relative latency); ``job`` is mnas-latency's measuring mode (export,
time on every backend, report).  This file imports nothing, so that
``mnas.latency.result`` can use the value types without pulling in the
measurement machinery.  See docs/latency_uncertainty.md.
"""
