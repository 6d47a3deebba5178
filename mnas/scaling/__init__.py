"""EfficientNet compound scaling: a family table and the (alpha, beta, gamma) grid
search. Public entry points (imported lazily: the grid search pulls in
TensorFlow)."""

from mnas.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "DEFAULT_TRIPLES": ".grid",
        "FamilyMember": ".family",
        "ScalingSearchConfig": ".grid",
        "ScalingSearchResult": ".grid",
        "build_family": ".family",
        "family_table": ".family",
        "grid_triples": ".grid",
        "parse_triples": ".grid",
        "run_scaling_search": ".grid",
    },
)
