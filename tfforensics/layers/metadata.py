"""A pass-through layer that keeps class names and provenance inside a saved model.

``classify`` prints class names, and ``test`` checks that a model and a dataset were
encoded the same way; both read them from this layer's config, so a ``.keras`` file
needs no JSON sidecar.
"""

from __future__ import annotations

import json

import keras

from tfforensics.layers.preprocessing import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class ClassNames(keras.layers.Layer):
    """Identity on the predictions; its config holds the class names in label order.

    Args:
        class_names: names of the classes, label ``i`` is ``class_names[i]``.
        metadata: JSON-serialisable facts about the training data (encoding, image
            shape, statistics hash, ...).
        **kwargs: base layer keyword arguments.
    """

    def __init__(self, class_names, metadata: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        class_names = [str(name) for name in class_names]
        if not class_names:
            raise ValueError("`class_names` must name at least one class. Received: class_names=[]")
        self.class_names = class_names
        self.metadata = json.loads(json.dumps(metadata or {}))  # fails early if not JSON-serialisable

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "class_names": list(self.class_names), "metadata": self.metadata}
