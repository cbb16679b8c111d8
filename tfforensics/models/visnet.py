"""Yu et al.'s fingerprint-visualisation network (visNet, ``classifier_visNet`` of GANFingerprints).

An encoder-decoder reconstructs the image: the encoder is the attribution network's
convolution tower down to a 4x4 map (two 3x3 convolutions at 4x4, no dense layers, as the
original's ``latent_res=4``); the decoder mirrors it with nearest up-sampling and two 3x3
convolutions per resolution, then a 3x3 ``toRGB`` convolution with tanh. The image
fingerprint is ``input - reconstruction``; one "valid" convolution with a kernel as large
as the image and one filter per source (no bias) turns it into the logits. Those filters
are the model fingerprints: a logit is the correlation of the image fingerprint with one
model fingerprint.

Training (:meth:`VisNet.train_step`, run by :func:`tfforensics.training.fit.train`)
minimises ``cross-entropy + 20 x L1(reconstruction) + 0.1 x adversarial`` where a patch
discriminator (the attribution tower with 1x1 convolutions on its 4x4 map, one score per
patch) is trained alongside with WGAN-GP (gradient penalty 10, drift 1e-3), each step one
discriminator update and one update of the rest, both with Adam (beta1 0, beta2 0.99).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from tfforensics.models.stylegan.layers import Downscale2D, EqualizedConv2D, ScopedLayer, Upscale2D

PACKAGE = "tfforensics.attribution"


@keras.saving.register_keras_serializable(package=PACKAGE)
class FingerprintCorrelation(ScopedLayer):
    """Full-size "valid" convolution without bias: one logit per model fingerprint.

    ``logits[n, k] = sum_{h,w,c} x[n, h, w, c] * weight[h, w, c, k] * coef`` with the
    equalised-learning-rate ``coef = gain / sqrt(H * W * C)`` (gain 1), as TF1's
    ``valid_conv2d`` on an image-sized kernel.
    """

    def __init__(self, units: int, use_wscale: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.units, self.use_wscale = int(units), bool(use_wscale)

    def build(self, input_shape):
        shape = tuple(int(d) for d in input_shape[1:])
        fan_in = int(np.prod(shape))
        std = 1.0 / math.sqrt(fan_in)
        self.coef = std if self.use_wscale else 1.0
        init = 1.0 if self.use_wscale else std
        self.weight = self.add_weight(name="weight", shape=(*shape, self.units),
                                      initializer=keras.initializers.RandomNormal(0.0, init))

    def call(self, x):
        return tf.einsum("nhwc,hwck->nk", x, self.weight * self.coef)

    def model_fingerprints(self) -> np.ndarray:
        """The ``(K, H, W, C)`` model fingerprints (effective kernels)."""
        return np.moveaxis(np.asarray(self.weight.numpy()) * self.coef, -1, 0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "use_wscale": self.use_wscale}


def _nf(stage, fmap_base, fmap_max):
    return min(int(fmap_base / (2.0 ** stage)), fmap_max)


def _conv(x, filters, scope, **kwargs):
    return EqualizedConv2D(filters, 3, activation="lrelu", scope=scope, name=scope.replace("/", "_").lower(),
                           **kwargs)(x)


def build_autoencoder(input_shape, *, fmap_base: int = 1024, fmap_max: int = 512) -> keras.Model:
    """Encoder to a 4x4 map and the mirrored decoder back to the input size (tanh)."""
    resolution, channels = int(input_shape[0]), int(input_shape[-1])
    log2 = int(math.log2(resolution))
    inputs = keras.Input(tuple(input_shape), name="image")
    x = inputs
    for res in range(log2, 2, -1):
        x = _conv(x, _nf(res - 1, fmap_base, fmap_max), f"E_{2 ** res}x{2 ** res}/Conv0")
        x = _conv(x, _nf(res - 2, fmap_base, fmap_max), f"E_{2 ** res}x{2 ** res}/Conv1")
        x = Downscale2D(name=f"e_{2 ** res}x{2 ** res}_down")(x)
    x = _conv(x, _nf(1, fmap_base, fmap_max), "E_4x4/Conv0")
    x = _conv(x, _nf(1, fmap_base, fmap_max), "E_4x4/Conv1")
    x = _conv(x, _nf(1, fmap_base, fmap_max), "G_4x4/Conv0")
    x = _conv(x, _nf(1, fmap_base, fmap_max), "G_4x4/Conv1")
    for res in range(3, log2 + 1):
        x = Upscale2D(name=f"g_{2 ** res}x{2 ** res}_up")(x)
        x = _conv(x, _nf(res - 1, fmap_base, fmap_max), f"G_{2 ** res}x{2 ** res}/Conv0")
        x = _conv(x, _nf(res - 1, fmap_base, fmap_max), f"G_{2 ** res}x{2 ** res}/Conv1")
    x = EqualizedConv2D(channels, 3, gain=1.0, scope=f"G_{resolution}x{resolution}/Conv_toRGB",
                        name="to_rgb")(x)
    outputs = keras.layers.Activation("tanh", name="reconstruction")(x)
    return keras.Model(inputs, outputs, name="autoencoder")


def build_patch_discriminator(input_shape, *, fmap_base: int = 1024, fmap_max: int = 512) -> keras.Model:
    """WGAN critic with one score per 4x4 patch cell (the attribution tower with a 1x1-conv head)."""
    log2 = int(math.log2(int(input_shape[0])))
    inputs = keras.Input(tuple(input_shape), name="image")
    x = inputs
    for res in range(log2, 2, -1):
        x = _conv(x, _nf(res - 1, fmap_base, fmap_max), f"D_{2 ** res}x{2 ** res}/Conv0")
        x = _conv(x, _nf(res - 2, fmap_base, fmap_max), f"D_{2 ** res}x{2 ** res}/Conv1")
        x = Downscale2D(name=f"d_{2 ** res}x{2 ** res}_down")(x)
    x = _conv(x, _nf(1, fmap_base, fmap_max), "D_4x4/Conv0")
    x = EqualizedConv2D(_nf(2, fmap_base, fmap_max), 1, activation="lrelu", scope="D_4x4/Conv1", name="d_4x4_conv1")(x)
    scores = EqualizedConv2D(1, 1, gain=1.0, scope="D_4x4/Conv2", name="d_scores")(x)
    return keras.Model(inputs, scores, name="patch_discriminator")


@keras.saving.register_keras_serializable(package=PACKAGE)
class VisNet(keras.Model):
    """The fingerprint-visualisation classifier; ``call`` returns class probabilities.

    Args:
        image_shape: ``(R, R, C)``, R a power of two >= 8.
        num_classes: sources (2: one fingerprint and a sigmoid, like the other models).
        fmap_base, fmap_max: feature maps per stage (1024 / 512 as the original).
        rec_weight: weight of the L1 reconstruction loss (20).
        adv_weight: weight of the adversarial loss on the reconstruction (0.1).
        gp_weight, drift: WGAN-GP gradient-penalty weight (10) and drift penalty (1e-3).
        mirror: random left-right flips of the training batches.
    """

    def __init__(self, image_shape, num_classes: int, *, fmap_base: int = 1024, fmap_max: int = 512,
                 rec_weight: float = 20.0, adv_weight: float = 0.1, gp_weight: float = 10.0, drift: float = 1e-3,
                 mirror: bool = True, **kwargs):
        from tfforensics.models.attribution import _check_shape
        from tfforensics.models.classifiers import output_units

        kwargs.setdefault("name", "visnet")
        image_shape = _check_shape(image_shape, "postpool", None)
        units = output_units(int(num_classes))
        autoencoder = build_autoencoder(image_shape, fmap_base=fmap_base, fmap_max=fmap_max)
        correlation = FingerprintCorrelation(units, scope="Conv_fingerprints", name="fingerprints")
        head = keras.layers.Activation("sigmoid" if units == 1 else "softmax", name="predictions")
        inputs = keras.Input(image_shape, name="encoded")
        reconstruction = autoencoder(inputs)
        fingerprint = keras.layers.Subtract(name="image_fingerprint")([inputs, reconstruction])
        logits = correlation(fingerprint)
        super().__init__(inputs, head(logits), **kwargs)
        self.image_shape, self.num_classes, self.units = image_shape, int(num_classes), units
        self.fmap_base, self.fmap_max = int(fmap_base), int(fmap_max)
        self.rec_weight, self.adv_weight = float(rec_weight), float(adv_weight)
        self.gp_weight, self.drift, self.mirror = float(gp_weight), float(drift), bool(mirror)
        self.autoencoder, self.correlation, self.probabilities = autoencoder, correlation, head
        self.discriminator = build_patch_discriminator(image_shape, fmap_base=fmap_base, fmap_max=fmap_max)
        self.flip = keras.layers.RandomFlip("horizontal", name="mirror")

    def get_config(self):
        return {"name": self.name, "image_shape": list(self.image_shape), "num_classes": self.num_classes,
                "fmap_base": self.fmap_base, "fmap_max": self.fmap_max, "rec_weight": self.rec_weight,
                "adv_weight": self.adv_weight, "gp_weight": self.gp_weight, "drift": self.drift,
                "mirror": self.mirror}

    def decompose(self, images):
        """``(reconstruction, image fingerprint, logits)`` of images in [-1, 1]."""
        reconstruction = self.autoencoder(images)
        fingerprint = images - reconstruction
        return reconstruction, fingerprint, self.correlation(fingerprint)

    def model_fingerprints(self) -> np.ndarray:
        return self.correlation.model_fingerprints()

    def compile(self, optimizer=None, loss=None, metrics=None, **kwargs):
        # XLA would compile the double-backprop step for minutes on a CPU; plain graphs run as fast.
        kwargs.setdefault("jit_compile", False)
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)
        config = optimizer.get_config() if optimizer is not None else {"learning_rate": 1e-3}
        self.d_optimizer = keras.optimizers.Adam(learning_rate=float(config["learning_rate"]),
                                                 beta_1=0.0, beta_2=0.99, epsilon=1e-8)

    def get_compile_config(self):
        return None  # a loaded VisNet is used for inference; `train` compiles afresh

    def _generator_weights(self):
        return self.autoencoder.trainable_weights + self.correlation.trainable_weights

    def build_optimizer_state(self):
        """Both Adams' slots on what each trains (called by ``train`` before ``fit``; see
        :func:`tfforensics.training.fit.build_optimizer_state`)."""
        for optimizer, weights in ((self.d_optimizer, self.discriminator.trainable_weights),
                                   (self.optimizer, self._generator_weights())):
            if not optimizer.built:
                optimizer.build(weights)

    def train_step(self, data):
        images, labels = data[0], data[1]
        if self.mirror:
            images = self.flip(images, training=True)
        batch = tf.shape(images)[0]
        # 1. the critic: WGAN loss + gradient penalty + drift
        reconstruction = self.autoencoder(images, training=True)
        with tf.GradientTape() as tape:
            fake_scores = self.discriminator(reconstruction, training=True)
            real_scores = self.discriminator(images, training=True)
            mix = tf.random.uniform([batch, 1, 1, 1], 0.0, 1.0)
            mixed = images + (reconstruction - images) * mix
            with tf.GradientTape() as inner:
                inner.watch(mixed)
                mixed_scores = tf.reduce_sum(self.discriminator(mixed, training=True))
            grads = inner.gradient(mixed_scores, mixed)
            norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]) + 1e-12)
            d_loss = tf.reduce_mean(tf.reduce_mean(fake_scores - real_scores, axis=[1, 2, 3])
                                    + self.gp_weight * tf.square(norms - 1.0)
                                    + self.drift * tf.reduce_mean(tf.square(real_scores), axis=[1, 2, 3]))
        d_weights = self.discriminator.trainable_weights
        self.d_optimizer.apply(tape.gradient(d_loss, d_weights), d_weights)
        # 2. encoder-decoder and fingerprints: CE + 20 L1 + 0.1 adversarial
        with tf.GradientTape() as tape:
            reconstruction, _, logits = self.decompose(images)
            probabilities = self.probabilities(logits)
            class_loss = self.compute_loss(x=images, y=labels, y_pred=probabilities)
            rec_loss = tf.reduce_mean(tf.abs(reconstruction - images))
            adv_loss = -tf.reduce_mean(self.discriminator(reconstruction, training=False))
            loss = class_loss + self.rec_weight * rec_loss + self.adv_weight * adv_loss
        g_weights = self._generator_weights()
        self.optimizer.apply(tape.gradient(loss, g_weights), g_weights)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(class_loss)  # as val_loss: the cross-entropy
            else:
                metric.update_state(labels, probabilities)
        logs = {m.name: m.result() for m in self.metrics}
        logs.update({"rec_loss": rec_loss, "d_loss": d_loss})
        return logs


def build_visnet(input_shape, num_classes: int, *, l1=None, l2=None, **kwargs) -> VisNet:
    """Registry builder of :class:`VisNet` (``l1``/``l2`` accepted and unused)."""
    return VisNet(tuple(input_shape), num_classes, **kwargs)


build_visnet.adam_options = {"beta_1": 0.0, "beta_2": 0.99, "epsilon": 1e-8}


def find_visnet(model) -> VisNet | None:
    """The :class:`VisNet` inside a saved (wrapped) model, or ``None``."""
    if isinstance(model, VisNet):
        return model
    for layer in getattr(model, "layers", []):
        found = find_visnet(layer) if isinstance(layer, keras.Model) else None
        if found is not None:
            return found
    return None
