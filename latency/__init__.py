"""Real latency for platform-aware search: export, backends, cache, pool.

Modules: ``export`` (Keras -> .tflite), ``backend`` (interface and
registry), ``host`` / ``litert_benchmark`` / ``benchmark_model`` (the
backends), ``adb`` (device access), ``cache`` (sqlite results cache),
``pool`` (parallel measurement), ``result`` and ``errors`` (values).
"""
