"""Training and evaluation: proxy data and trainer, full training, evaluation.

Public entry points (imported lazily: each pulls in TensorFlow on first use).
"""

from mnas.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "CROP_PADDING": ".evaluation",
        "DataConfig": ".data_config",
        "MAX_BATCH_SIZE": ".data_config",
        "MAX_EXAMPLES": ".data_config",
        "MAX_PATH_LENGTH": ".data_config",
        "MAX_PROXY_RESOLUTION": ".data_config",
        "MIN_PROXY_RESOLUTION": ".data_config",
        "MAX_EPOCHS": ".proxy_config",
        "MAX_SEED": ".data_config",
        "DataError": ".data_config",
        "EvalConfig": ".evaluation",
        "EvalResult": ".evaluation",
        "FullTrainingConfig": ".full_config",
        "FullTrainingConfigError": ".full_config",
        "PREPROCESSINGS": ".evaluation",
        "ProxyData": ".data",
        "RESIZE_METHODS": ".evaluation",
        "STRATEGIES": ".full_config",
        "TrainerConfig": ".proxy_config",
        "TrainingDivergedError": ".proxy",
        "batches": ".evaluation",
        "evaluate": ".evaluation",
        "keras_predictor": ".evaluation",
        "load_proxy_data": ".data",
        "open_source": ".evaluation",
        "tflite_predictor": ".evaluation",
        "train": ".full",
        "train_and_evaluate": ".proxy",
    },
)
