"""Saved models: a trained classifier wrapped with its preprocessing and class names.

``train`` fits the classifier on the encoded records and then saves

    image (0..255) -> preprocessing (Sequential) -> classifier (Functional) -> ClassNames

so that ``model.keras`` classifies raw images, while ``test`` can take the inner
classifier back out (:func:`unwrap`) and run it on the records.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import zipfile
from pathlib import Path

import keras
import numpy as np

from tfforensics.errors import MissingInputError, UserError
from tfforensics.layers import ClassNames, preprocessing_from_manifest

PREPROCESSING_NAME = "preprocessing"
CLASS_NAMES_NAME = "class_names"


def wrap_with_preprocessing(classifier: keras.Model, manifest, *, channels: int | None = None,
                            class_names=None, metadata: dict | None = None) -> keras.Model:
    """``classifier`` (trained on ``manifest``'s records) behind the layers that encode raw images.

    Args:
        classifier: a model from the encoded images to class scores.
        manifest: the :class:`~tfforensics.data.Manifest` of the records it was trained on.
        channels: channels of the raw input (default: those of the encoding).
        class_names: names in label order (default: the manifest's).
        metadata: extra JSON facts stored next to the class names.
    """
    from tfforensics import __version__

    preprocessing = preprocessing_from_manifest(manifest, channels=channels, name=PREPROCESSING_NAME)
    inputs = keras.Input(preprocessing.input_shape[1:], name="image")
    scores = classifier(preprocessing(inputs))
    info = {
        "model": classifier.name,
        "encoding": dataclasses.asdict(manifest.encoding),
        "image_shape": list(manifest.image_shape),
        "statistics_sha256": (manifest.statistics or {}).get("sha256"),
        "dataset": str(manifest.root) if manifest.root else None,
        "tfforensics_version": __version__,
        **(metadata or {}),
    }
    outputs = ClassNames(class_names or manifest.class_names, info, name=CLASS_NAMES_NAME)(scores)
    return keras.Model(inputs, outputs, name=f"{classifier.name}_on_images")


#: What ``keras.saving.load_model`` raises for a damaged or crafted ``.keras`` file.
_KERAS_LOAD_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError, OSError, zipfile.BadZipFile,
                      json.JSONDecodeError, UnicodeDecodeError)
_FIX = "pass a model.keras written by `tfforensics train` (or keras.Model.save)"


def keras_load_error(path, error: BaseException) -> UserError:
    """One line for a ``.keras`` file that Keras could not (or would not) load.

    Shared by every loader of ``.keras`` files, so that a corrupt archive, a refused
    Lambda layer and an unknown class read the same everywhere.
    """
    name = os.fsdecode(path)
    text = " ".join(str(error.args[0] if isinstance(error, KeyError) and error.args else error).split())
    if isinstance(error, zipfile.BadZipFile) or "File not found" in text or not zipfile.is_zipfile(path):
        return UserError(f"{name}: is not a Keras model file (not a .keras zip archive) or it is corrupt; {_FIX}.")
    if "safe_mode" in text or "lambda" in text.lower():
        return UserError(f"{name}: refused: the model holds Python code (a Lambda layer or a function), which "
                         f"safe mode does not load; {_FIX}.")
    unknown = re.search(r"Could not locate (?:class|function) '([^']+)'", text)
    if unknown:
        return UserError(f"{name}: refused: it names {unknown.group(1)!r}, which is not a Keras or tfforensics "
                         f"layer; {_FIX}.")
    return UserError(f"{name}: is not a loadable Keras model, it is corrupt or was edited ({type(error).__name__}: "
                     f"{text[:160]}); {_FIX}.")


def _register_layers() -> None:
    """Import every module that registers serializable layers, so safe mode finds them by name."""
    import tfforensics.layers  # noqa: F401  (preprocessing, class names)
    import tfforensics.models.attribution  # noqa: F401  (the attribution network)
    import tfforensics.models.lgrad  # noqa: F401  (the LGrad detector's Caffe preprocessing)
    import tfforensics.models.stylegan.layers  # noqa: F401  (the StyleGAN port, the small GANs)


def load_keras(path, *, default_file: str | None = None, missing: str = "model not found; " + _FIX,
               not_keras: str = "not a .keras file; models are saved in the Keras 3 format (model.keras)") -> keras.Model:
    """The one loader of ``.keras`` files: every saved model of tfforensics comes back through it.

    One rule for all of them: ``safe_mode=True`` (a Lambda layer or any other Python code in
    the file is refused), every tfforensics layer registered, and ``compile=False`` (a loaded
    model predicts; training compiles its own, see :func:`tfforensics.training.fit.compile_classifier`).

    Args:
        path: the ``.keras`` file, or a folder holding ``default_file``.
        default_file: the file to take inside a folder (``model.keras`` of a run directory).
        missing: what the one-line error says after the path when there is no such file.
        not_keras: what it says for a file that is not ``.keras``.
    """
    path = Path(path)
    if default_file is not None and path.is_dir() and (path / default_file).is_file():
        path = path / default_file
    if not path.is_file():
        raise MissingInputError(f"{os.fsdecode(path)}: {missing}")
    if path.suffix != ".keras":
        raise UserError(f"{os.fsdecode(path)}: {not_keras}.")
    _register_layers()
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except _KERAS_LOAD_ERRORS as error:
        raise keras_load_error(path, error) from error


def load_model(path) -> keras.Model:
    """A model saved by ``train`` (``model.keras`` or its run directory), see :func:`load_keras`."""
    return load_keras(path, default_file="model.keras",
                      missing="model not found; pass a .keras file or a run directory written by `tfforensics train`.")


def _class_names_layer(model: keras.Model):
    for layer in model.layers:
        if isinstance(layer, ClassNames):
            return layer
    return None


def unwrap(model: keras.Model) -> tuple[keras.Model | None, keras.Model]:
    """``(preprocessing, classifier)`` of a wrapped model; ``(None, model)`` for a plain one."""
    preprocessing = None
    classifier = None
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            if layer.name == PREPROCESSING_NAME:
                preprocessing = layer
            else:
                classifier = layer
    if preprocessing is None or classifier is None:
        return None, model
    return preprocessing, classifier


def class_names_of(model: keras.Model) -> list[str]:
    """Class names stored in the model, or ``"0", "1", ...`` for a model without them."""
    layer = _class_names_layer(model)
    if layer is not None:
        return list(layer.class_names)
    units = model.output_shape[-1]
    return [str(i) for i in range(2 if units == 1 else units)]


def metadata_of(model: keras.Model) -> dict:
    """Training facts stored in the model (encoding, image shape, ...); empty if none."""
    layer = _class_names_layer(model)
    return dict(layer.metadata) if layer is not None else {}


def probabilities(outputs) -> np.ndarray:
    """Scores ``(N, K)`` per class from model outputs (one sigmoid unit -> ``[1 - p, p]``)."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim == 1:
        outputs = outputs[:, None]
    if outputs.shape[1] == 1:
        return np.concatenate([1.0 - outputs, outputs], axis=1)
    return outputs
