"""mnas: MnasNet platform-aware neural architecture search in TensorFlow/Keras."""
