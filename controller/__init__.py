"""Architecture controllers: propose architectures, learn from their rewards.

A controller sees the search space only as a sequence of
:class:`mnas.search_space.decision.Decision`; it never builds models.

Public names are imported lazily: the controllers pull in TensorFlow, which a
binary reading its flags (and refusing a bad one) must not wait for.
"""

from mnas.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "ALGORITHM_DEFAULTS": ".config",
        "CONTROLLER_KINDS": ".config",
        "CheckpointMismatchError": ".base",
        "Controller": ".base",
        "ControllerConfig": ".config",
        "ControllerKind": ".config",
        "DuplicateFeedbackError": ".base",
        "FeedbackError": ".base",
        "InvalidRewardError": ".base",
        "LSTMController": ".lstm",
        "Proposal": ".base",
        "RandomController": ".random_search",
        "UnknownProposalError": ".base",
        "make_controller": ".factory",
    },
)
