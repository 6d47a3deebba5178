"""Differentiable platform-aware search (FBNet) over the factorized space.

Public entry points, imported lazily (the supernet pulls in TensorFlow).
"""

from mnas.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "LOSSES": ".loop",
        "SHARINGS": ".loop",
        "DnasConfig": ".loop",
        "DnasConfigError": ".loop",
        "DnasSearch": ".loop",
        "WEIGHT_OPTIMIZERS": ".loop",
        "concentration": ".report",
        "decision_table": ".report",
        "result_table": ".report",
        "Supernet": "mnas.model.supernet",
        "build_supernet": "mnas.model.supernet",
    },
)
