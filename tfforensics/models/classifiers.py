"""The detectors of Frank et al. (GANDCTAnalysis) and the small CNN of the 004 project.

Every builder has the signature ``(input_shape, num_classes, *, l1=0.01, l2=0.01)``
and returns a functional ``keras.Model`` with fixed layer names, so that weights can
be mapped by name and run directories compare across versions. Two classes (or
``num_classes=1``, the original's ``--classes 1``) get one sigmoid unit, more get a
softmax. Builders that have no regularised layer accept ``l1``/``l2`` and ignore
them, so :data:`MODELS` can call every builder the same way.

Architectures (from the originals' code, re-written here):

- ``log``: flatten + dense (multinomial / logistic regression), no penalty;
  ``log1`` L1, ``log2`` L2 (ridge), ``log3`` L1+L2 on the kernel.
- ``nn``: flatten, dense 128 ReLU with L2 on the kernel, dense head.
- ``cnn``: 3x3 "same" ReLU convolutions with 3 and 8 filters, 2x average pooling,
  16 filters, 2x average pooling, 32 filters, flatten, dense head.
- ``resnet``: 3x3 "valid" convolutions with 32 and 64 filters, 3x3 max pooling,
  10 residual blocks of 64 filters (conv-ReLU-BN-conv-BN, add, ReLU), a 64-filter
  convolution, global average pooling, dense 256 ReLU, dropout 0.5, dense head.
- ``attribution`` / ``attribution_predown``: Yu et al.'s GAN-fingerprint attribution
  network and its pre-downscale variant (:mod:`tfforensics.models.attribution`);
  ``visnet`` its fingerprint-visualisation network (:mod:`tfforensics.models.visnet`).
- ``resnet50`` / ``npr``: torchvision's ResNet-50 v1.5 (CNNDetection, LGrad) and NPR's
  truncated ResNet on the neighbouring-pixel residual (:mod:`tfforensics.models.published`,
  which also maps their released PyTorch weights).
- ``cnn004``: the CNN of the "Detecting AI Generated Images" project (004): 3x3
  "valid" ReLU convolutions with 32, 64, 64 filters with 2x max pooling after the
  first two, flatten, dense 512 ReLU, dense head.
"""

from __future__ import annotations

import keras
from keras import layers

from tfforensics.errors import UserError
from tfforensics.layers.normalization import FusedBatchNormalization

#: Default penalties of the original command line (``--l1``/``--l2``).
DEFAULT_L1 = 0.01
DEFAULT_L2 = 0.01


def output_units(num_classes: int) -> int:
    """1 (sigmoid) for one or two classes, else ``num_classes`` (softmax)."""
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive int. Received: num_classes={num_classes!r}")
    return 1 if num_classes <= 2 else num_classes


def is_binary(num_classes: int) -> bool:
    """Whether a model for ``num_classes`` classes has a single sigmoid output."""
    return output_units(num_classes) == 1


def classification_head(x, num_classes: int, *, kernel_regularizer=None, name: str = "predictions"):
    """The dense output layer: sigmoid for binary tasks, softmax otherwise."""
    units = output_units(num_classes)
    activation = "sigmoid" if units == 1 else "softmax"
    return layers.Dense(units, activation=activation, kernel_regularizer=kernel_regularizer, name=name)(x)


def _inputs(input_shape):
    """The ``encoded`` input; a fully convolutional model may leave height and width ``None``."""
    input_shape = tuple(None if s is None else int(s) for s in input_shape)
    if len(input_shape) != 3 or input_shape[2] is None or min(s for s in input_shape if s is not None) < 1:
        raise ValueError(
            f"`input_shape` must be (height, width, channels) of positive ints. Received: input_shape={input_shape}"
        )
    return keras.Input(input_shape, name="encoded")


def _regression(input_shape, num_classes, regularizer, name):
    inputs = _inputs(input_shape)
    x = layers.Flatten(name="flatten")(inputs)
    outputs = classification_head(x, num_classes, kernel_regularizer=regularizer)
    return keras.Model(inputs, outputs, name=name)


def build_log(input_shape, num_classes, *, l1=DEFAULT_L1, l2=DEFAULT_L2) -> keras.Model:
    """Multinomial (or binary logistic) regression on the flattened input, no penalty."""
    return _regression(input_shape, num_classes, None, "log")


def build_log1(input_shape, num_classes, *, l1=DEFAULT_L1, l2=DEFAULT_L2) -> keras.Model:
    """Regression with an L1 penalty ``l1`` on the kernel (sparse weights)."""
    return _regression(input_shape, num_classes, keras.regularizers.L1(l1), "log1")


def build_log2(input_shape, num_classes, *, l1=DEFAULT_L1, l2=DEFAULT_L2) -> keras.Model:
    """Ridge regression: an L2 penalty ``l2`` on the kernel (the paper's best linear model)."""
    return _regression(input_shape, num_classes, keras.regularizers.L2(l2), "log2")


def build_log3(input_shape, num_classes, *, l1=DEFAULT_L1, l2=DEFAULT_L2) -> keras.Model:
    """Regression with both L1 (``l1``) and L2 (``l2``) penalties (elastic net)."""
    return _regression(input_shape, num_classes, keras.regularizers.L1L2(l1, l2), "log3")


def build_nn(input_shape, num_classes, *, l1=DEFAULT_L1, l2=DEFAULT_L2, hidden_units: int = 128) -> keras.Model:
    """One hidden dense layer (ReLU, L2 ``l2``) then the head: the "2NN" of 004."""
    inputs = _inputs(input_shape)
    x = layers.Flatten(name="flatten")(inputs)
    x = layers.Dense(hidden_units, activation="relu", kernel_regularizer=keras.regularizers.L2(l2), name="hidden")(x)
    outputs = classification_head(x, num_classes)
    return keras.Model(inputs, outputs, name="nn")


def build_cnn(input_shape, num_classes, *, l1=DEFAULT_L1, l2=DEFAULT_L2) -> keras.Model:
    """The small CNN of Frank et al. (two average poolings, 3-8-16-32 filters)."""
    inputs = _inputs(input_shape)
    x = layers.Conv2D(3, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.AveragePooling2D(2, name="pool1")(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.AveragePooling2D(2, name="pool2")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv4")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = classification_head(x, num_classes)
    return keras.Model(inputs, outputs, name="cnn")


def residual_block(x, filters: int, kernel_size: int = 3, *, name: str):
    """conv-ReLU-BN, conv-BN, add the input, ReLU (the block of Frank et al.'s ResNet)."""
    shortcut = x
    x = layers.Conv2D(filters, kernel_size, padding="same", activation="relu", name=f"{name}_conv1")(x)
    x = FusedBatchNormalization(name=f"{name}_bn1")(x)
    x = layers.Conv2D(filters, kernel_size, padding="same", name=f"{name}_conv2")(x)
    x = FusedBatchNormalization(name=f"{name}_bn2")(x)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(x)


def build_resnet(input_shape, num_classes, *, l1=DEFAULT_L1, l2=DEFAULT_L2, blocks: int = 10) -> keras.Model:
    """Frank et al.'s ResNet: stem, ``blocks`` residual blocks of 64 filters, dense 256, dropout."""
    height, width = tuple(input_shape)[:2]
    if min(height, width) < 13:
        raise ValueError(f"`resnet` needs images of at least 13x13 pixels. Received: input_shape={tuple(input_shape)}")
    inputs = _inputs(input_shape)
    x = layers.Conv2D(32, 3, activation="relu", name="stem_conv1")(inputs)
    x = layers.Conv2D(64, 3, activation="relu", name="stem_conv2")(x)
    x = layers.MaxPooling2D(3, name="stem_pool")(x)
    for index in range(blocks):
        x = residual_block(x, 64, 3, name=f"block{index + 1}")
    x = layers.Conv2D(64, 3, activation="relu", name="top_conv")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dense(256, activation="relu", name="dense")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    outputs = classification_head(x, num_classes)
    return keras.Model(inputs, outputs, name="resnet")


def build_cnn004(input_shape, num_classes, *, l1=DEFAULT_L1, l2=DEFAULT_L2) -> keras.Model:
    """The 004 project's CNN: conv 32/64/64 with max pooling, dense 512, head."""
    height, width = tuple(input_shape)[:2]
    if min(height, width) < 18:
        raise ValueError(f"`cnn004` needs images of at least 18x18 pixels. Received: input_shape={tuple(input_shape)}")
    inputs = _inputs(input_shape)
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv3")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(512, activation="relu", name="dense")(x)
    outputs = classification_head(x, num_classes)
    return keras.Model(inputs, outputs, name="cnn004")


#: The 004 project trained its CNN for 10 epochs with no early stopping (``train`` defaults).
build_cnn004.train_defaults = {"epochs": 10, "early_stopping": 0}

#: Model name (as on the command line) -> builder.
MODELS = {
    "log": build_log,
    "log1": build_log1,
    "log2": build_log2,
    "log3": build_log3,
    "nn": build_nn,
    "cnn": build_cnn,
    "resnet": build_resnet,
    "cnn004": build_cnn004,
}


def _register_attribution() -> None:
    from tfforensics.models.attribution import build_attribution, build_attribution_predown
    from tfforensics.models.visnet import build_visnet

    MODELS["attribution"] = build_attribution
    MODELS["attribution_predown"] = build_attribution_predown
    MODELS["visnet"] = build_visnet


def _register_lgrad() -> None:
    from tfforensics.models.lgrad import build_lgrad

    MODELS["lgrad"] = build_lgrad


_register_attribution()
_register_lgrad()


def _register_published() -> None:
    from tfforensics.models.published import build_npr, build_resnet50

    MODELS["resnet50"] = build_resnet50
    MODELS["npr"] = build_npr


_register_published()


def build_model(name: str, input_shape, num_classes: int, **kwargs) -> keras.Model:
    """Build the registered model ``name``; raises a ValueError listing the choices."""
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}.")
    return MODELS[name](input_shape, num_classes, **kwargs)
