"""The adversarial training loop of the small GANs (the one loop besides :mod:`tfforensics.training.fit`).

The recipe is the non-saturating logistic GAN loss with an R1 penalty on reals, Adam, and
an exponential moving average of the generator (the network that is saved and sampled).
A Keras ``fit`` cannot express the two alternating optimisers, so this is a loop of its own,
with the same habits as ``fit.train``: a seed, checkpoints, resume of an interrupted run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np

from tfforensics.errors import UserError
from tfforensics.models.gans import build_discriminator, build_generator, family

logger = logging.getLogger(__name__)

GENERATOR_FILE = "generator.keras"
DISCRIMINATOR_FILE = "discriminator.keras"
RUN_FILE = "run.json"
CHECKPOINT_DIR = "checkpoint"


@dataclasses.dataclass(frozen=True)
class GanConfig:
    """Hyper-parameters of :func:`train_gan` (defaults: a few minutes per family on 2 CPU cores)."""

    steps: int = 1500
    batch_size: int = 32
    learning_rate: float = 1e-3
    beta_1: float = 0.0
    beta_2: float = 0.99
    r1_gamma: float = 1.0
    ema_beta: float = 0.99
    flip: bool = True
    seed: int = 0
    checkpoint_every: int = 250

    def __post_init__(self):
        for name in ("steps", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1. Received: {name}={getattr(self, name)!r}")
        if self.batch_size % 4:
            raise ValueError(f"`batch_size` must be a multiple of 4 (the StyleGAN minibatch-stddev group). "
                             f"Received: batch_size={self.batch_size}")


def _to_unit(images):
    """uint8 -> float32 in [-1, 1] (TensorFlow, inside the train step)."""
    import tensorflow as tf

    from tfforensics.data.encodings import to_unit

    return to_unit(tf.cast(images, tf.float32))


class GanTrainer:
    """Generator, EMA generator, discriminator, their optimisers and a compiled train step."""

    def __init__(self, family_name: str, size: int, config: GanConfig):
        import keras
        import tensorflow as tf

        self.family, self.size, self.config = family(family_name).name, size, config
        self.generator = build_generator(family_name, size)
        self.ema = build_generator(family_name, size)
        self.ema.set_weights(self.generator.get_weights())
        self.discriminator = build_discriminator(family_name, size)
        self.latent_dim = int(self.generator.input_shape[-1])
        make = lambda: keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1, beta_2=config.beta_2,
                                             epsilon=1e-8)
        self.g_optimizer, self.d_optimizer = make(), make()
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.noise = tf.random.Generator.from_seed(config.seed)
        self.checkpoint = tf.train.Checkpoint(
            generator=self.generator, ema=self.ema, discriminator=self.discriminator,
            g_optimizer=self.g_optimizer, d_optimizer=self.d_optimizer, step=self.step, noise=self.noise)
        self.train_step = tf.function(self._train_step)

    def _train_step(self, reals):
        import tensorflow as tf

        config = self.config
        reals = _to_unit(reals)
        batch = tf.shape(reals)[0]
        if config.flip:
            flip = self.noise.uniform([batch, 1, 1, 1]) < 0.5
            reals = tf.where(flip, reals[:, :, ::-1], reals)
        g_vars, d_vars = self.generator.trainable_variables, self.discriminator.trainable_variables

        # Discriminator: softplus(D(fake)) + softplus(-D(real)) + gamma/2 |grad D(real)|^2.
        latents = self.noise.normal([batch, self.latent_dim])
        fakes = self.generator(latents, training=True)
        with tf.GradientTape() as tape:
            with tf.GradientTape() as r1_tape:
                r1_tape.watch(reals)
                real_logits = self.discriminator(reals, training=True)
                real_sum = tf.reduce_sum(real_logits)
            r1_grads = r1_tape.gradient(real_sum, reals)
            r1 = tf.reduce_mean(tf.reduce_sum(tf.square(r1_grads), axis=[1, 2, 3]))
            fake_logits = self.discriminator(fakes, training=True)
            d_loss = tf.reduce_mean(tf.nn.softplus(fake_logits) + tf.nn.softplus(-real_logits))
            d_total = d_loss + 0.5 * config.r1_gamma * r1
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_total, d_vars), d_vars))

        # Generator: non-saturating softplus(-D(G(z))).
        latents = self.noise.normal([batch, self.latent_dim])
        with tf.GradientTape() as tape:
            g_loss = tf.reduce_mean(tf.nn.softplus(-self.discriminator(self.generator(latents, training=True),
                                                                       training=True)))
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars))

        for average, weight in zip(self.ema.trainable_variables, g_vars):
            average.assign(config.ema_beta * average + (1.0 - config.ema_beta) * weight)
        self.step.assign_add(1)
        return {"d_loss": d_loss, "g_loss": g_loss, "r1": r1,
                "real_score": tf.reduce_mean(real_logits), "fake_score": tf.reduce_mean(fake_logits)}


def train_gan(family_name: str, crops: np.ndarray, *, size: int | None = None, config: GanConfig = GanConfig(),
              output=None, progress: bool = True, command: str | None = None):
    """Train the GAN of ``family_name`` on uint8 ``crops`` (N, S, S, 3); return the trainer.

    With ``output`` (a folder) the EMA generator and the discriminator are written there as
    ``.keras`` every ``checkpoint_every`` steps and at the end, with ``run.json`` (config,
    steps, seconds, last losses) and a resumable TensorFlow checkpoint: calling again with
    the same folder continues where the run stopped.
    """
    import keras
    import tensorflow as tf

    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[-1] != 3 or crops.shape[1] != crops.shape[2] or crops.dtype != np.uint8:
        raise ValueError(f"`crops` must be uint8 (N, S, S, 3) images. Received: {crops.dtype} {crops.shape}")
    size = crops.shape[1] if size is None else size
    if crops.shape[1] != size:
        raise ValueError(f"crops are {crops.shape[1]}x{crops.shape[2]} but size={size}")
    if len(crops) < config.batch_size:
        raise UserError(f"{len(crops)} crops are fewer than one batch of {config.batch_size}; make more crops.")
    keras.utils.set_random_seed(config.seed)
    trainer = GanTrainer(family_name, size, config)
    output = Path(output) if output is not None else None
    manager = None
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        manager = tf.train.CheckpointManager(trainer.checkpoint, output / CHECKPOINT_DIR, max_to_keep=1)
        if manager.latest_checkpoint:
            trainer.checkpoint.restore(manager.latest_checkpoint).expect_partial()
            logger.info("%s: continuing from step %d", output, int(trainer.step.numpy()))
    start = int(trainer.step.numpy())
    previous = _read_run(output) if start else {}  # a resumed run keeps its time and loss history
    seconds = float(previous.get("seconds", 0.0))
    rng = np.random.default_rng([config.seed, start])
    data = tf.constant(crops)
    history, metrics = [], {}
    from tqdm.auto import tqdm

    bar = tqdm(total=config.steps, initial=start, desc=f"gan {family_name}", disable=not progress, unit="step")
    began = time.perf_counter()
    for step in range(start, config.steps):
        index = rng.integers(0, len(crops), size=config.batch_size)
        metrics = {k: float(v) for k, v in trainer.train_step(tf.gather(data, index)).items()}
        if not all(np.isfinite(v) for v in metrics.values()):
            raise FloatingPointError(f"GAN {family_name}: non-finite loss at step {step + 1}: {metrics}")
        if (step + 1) % 50 == 0 or step + 1 == config.steps:
            history.append({"step": step + 1, **{k: round(v, 5) for k, v in metrics.items()}})
            bar.set_postfix(d=f"{metrics['d_loss']:.3f}", g=f"{metrics['g_loss']:.3f}")
        bar.update(1)
        done = step + 1
        if manager is not None and (done % config.checkpoint_every == 0 or done == config.steps):
            elapsed = seconds + time.perf_counter() - began
            _save(trainer, output, manager, config, elapsed, previous.get("history", []) + history, command)
    bar.close()
    trainer.seconds = seconds + time.perf_counter() - began
    trainer.history = previous.get("history", []) + history
    trainer.last_metrics = metrics
    return trainer


def _read_run(output) -> dict:
    if output is None or not (output / RUN_FILE).is_file():
        return {}
    return json.loads((output / RUN_FILE).read_text())


def _save(trainer, output, manager, config, seconds, history, command):
    from tfforensics.io.atomic import atomic_write_json, save_keras

    for model, name in ((trainer.ema, GENERATOR_FILE), (trainer.discriminator, DISCRIMINATOR_FILE)):
        save_keras(model, output / name)
    manager.save(checkpoint_number=int(trainer.step.numpy()))
    atomic_write_json(output / RUN_FILE, {
        "family": trainer.family, "size": trainer.size, "latent_dim": trainer.latent_dim,
        "config": dataclasses.asdict(config), "step": int(trainer.step.numpy()), "seconds": round(seconds, 1),
        "command": command, "history": history,
    })


__all__ = ["GanConfig", "GanTrainer", "train_gan"]
