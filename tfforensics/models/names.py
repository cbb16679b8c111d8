"""Names of the registered classifiers, without importing Keras (for ``--help``).

Must equal the keys of :data:`tfforensics.models.classifiers.MODELS` (a test checks).
"""

MODEL_NAMES = ("log", "log1", "log2", "log3", "nn", "cnn", "resnet", "cnn004")
