"""Latency figures that carry their uncertainty.

``stats`` (hierarchical bootstrap over rounds and runs), ``uncertainty``
(the values a result carries), ``conditions`` (load, steal, frequency,
thermal state), ``interference`` (other busy processes), ``adaptive``
(interleaved rounds until the interval is tight enough) and ``reference``
(relative latency).  Kept import-free so that ``mnas.latency.result`` can
use the value types without pulling in the measurement machinery.
"""
