"""The Keras model of an architecture: layer plan, builder, cost, weights, and
the supernet over a search space (FBNet's mixed paths, TuNAS's single paths).

Public entry points (imported lazily, so ``import mnas.model`` stays free of
TensorFlow until one is used).
"""

from mnas.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "ArchMismatchError": ".weights",
        "CHECKPOINT_FORMATS": ".weights",
        "CheckpointError": ".official.checkpoint",
        "LayerPlan": ".plan",
        "LoadedModel": ".weights",
        "ModelStats": ".cost",
        "WeightsError": ".weights",
        "WeightsMeta": ".weights",
        "build_model": ".builder",
        "compute_stats": ".cost",
        "describe": ".summary",
        "load_any": ".weights",
        "load_weights": ".weights",
        "plan_layers": ".plan",
        "save_weights": ".weights",
        "Supernet": ".supernet",
        "build_supernet": ".supernet",
        "theta_entropy": ".supernet",
    },
)
