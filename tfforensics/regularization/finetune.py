"""Fine-tuning a StyleGAN generator with an adversarial term plus a Fourier dissimilarity.

The original's recipe (``FourierRegularizedLogisticGANLoss`` of its genforce fork): for each
(real image, latent) pair, ``fake = synthesis(w)`` and

    loss = adv_weight * softplus(-D(fake)) + fourier_weight * Fourier(fake, real)

with the discriminator frozen, Adam (beta_1 0, beta_2 0.99) at half the learning rate given
on the command line, batch 1, 20 epochs over the pairs: ``target="pair"``, the default.
``target="mean"`` replaces the Fourier term by :class:`~tfforensics.losses.MeanSpectrumLoss`:
the mean standardised log-DCT spectrum of the pair's image plus ``random_samples`` images from
fresh random latents (drawn per step, seeded per epoch) against the mean spectrum of real
reference images; the adversarial term stays on the pair's image. Only the synthesis network is trained
(the latents are fixed); the mapping network is kept, so sampling from random latents after
fine-tuning uses the fine-tuned synthesis.

After every epoch (and once before the first, for the unregularised generator) the run
samples ``n_images`` images from random latents with a fixed seed, scores them with the
detectors (:mod:`tfforensics.regularization.evaluation`) and the quality proxy, and stores the
mean spectra. A run folder::

    RUN/run.json                      config, per-epoch rows, loss history, command
    RUN/generator.keras               the latest fine-tuned generator
    RUN/epochs/epoch_003.keras        the generator after each epoch
    RUN/spectra.npz                   mean log|DCT| and log|DFT| per epoch (0 = before)
    RUN/samples/epoch_003.png         a grid of the same latents each epoch
    RUN/checkpoint/                   TensorFlow checkpoint: a re-run continues after the last epoch
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np

from tfforensics.errors import UserError

logger = logging.getLogger(__name__)

RUN_KIND = "tfforensics-regularize-run"
RUN_FILE = "run.json"
GENERATOR_FILE = "generator.keras"
#: The original's band threshold (40 at 256 px in its training configuration), scaled to the image side.
ORIGINAL_THRESHOLD, ORIGINAL_SIZE = 40, 256


@dataclasses.dataclass(frozen=True)
class RegularizeConfig:
    """Hyper-parameters of :func:`finetune` (the command line's positional arguments first)."""

    adv_weight: float = 1.0
    fourier_weight: float = 1e3
    kind: str = "cos"
    learning_rate: float = 1e-5
    n_images: int = 1000
    band: str | None = None  # None: the original's threshold 40 scaled to the image side (10 at 64 px)
    spectrum: str = "dft"
    color: bool = False
    target: str = "pair"  # "pair": the original's per-pair Fourier term; "mean": MeanSpectrumLoss
    random_samples: int = 0  # images from random latents added to each step's batch (target "mean")
    epochs: int = 20
    seed: int = 0
    sample_seed: int = 12345

    def __post_init__(self):
        from tfforensics.losses import canonical_type

        canonical_type(self.kind)
        if self.epochs < 1 or self.n_images < 2:
            raise UserError(f"--epochs must be >= 1 and N_IMAGES >= 2. Received: {self.epochs}, {self.n_images}")
        if self.learning_rate <= 0 or self.adv_weight < 0 or self.fourier_weight < 0:
            raise UserError("LR must be > 0, ADV_WEIGHT and FOURIER_WEIGHT >= 0.")
        if self.spectrum not in ("dft", "dct"):
            raise UserError(f"--spectrum must be dft or dct. Received: {self.spectrum!r}")
        if self.target not in ("pair", "mean"):
            raise UserError(f"--target must be pair or mean. Received: {self.target!r}")
        if self.target == "mean" and canonical_type(self.kind) not in ("l1", "frobenius"):
            raise UserError(f"--target mean compares with l1 or frobenius, not {self.kind!r}.")
        if self.random_samples < 0 or (self.random_samples and self.target != "mean"):
            raise UserError("--random-samples must be >= 0 and needs --target mean.")

    def band_for(self, size: int) -> str:
        from tfforensics.losses import Band

        if self.band is not None:
            return Band.parse(self.band).describe()
        if self.target == "mean":
            return "all"
        return f"threshold:{max(1, round(ORIGINAL_THRESHOLD * size / ORIGINAL_SIZE))}"

    def training_keys(self) -> dict:
        """The options that change the trained weights (a resumed run must match them)."""
        keys = dataclasses.asdict(self)
        keys.pop("n_images")
        keys.pop("epochs")
        keys.pop("sample_seed")
        return keys


class Evaluator:
    """Samples a generator with fixed latents and scores the images (detectors, quality proxy, spectra)."""

    def __init__(self, detectors, quality, n_images: int, seed: int, grid: int = 16):
        self.detectors, self.quality, self.n_images, self.seed, self.grid = detectors, quality, n_images, seed, grid

    def __call__(self, generator) -> tuple[dict, dict, np.ndarray]:
        from tfforensics.benchmark.gans import sample_images
        from tfforensics.regularization.evaluation import mean_log_dct, mean_log_dft

        images = sample_images(generator, self.n_images, seed=self.seed)
        row = {f"{d.name}_detection_rate": d.fake_rate(images) for d in self.detectors}
        if self.quality is not None:
            row.update(self.quality(images))
        spectra = {"dct": mean_log_dct(images), "dft": mean_log_dft(images)}
        return row, spectra, images[:self.grid]


def sample_grid(images: np.ndarray, columns: int = 8) -> np.ndarray:
    """uint8 (N, S, S, 3) -> one uint8 grid image."""
    n, s = len(images), images.shape[1]
    rows = -(-n // columns)
    grid = np.full((rows * s, columns * s, 3), 255, np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * s:(r + 1) * s, c * s:(c + 1) * s] = image
    return grid


class RegularizationTrainer:
    """The generator, its frozen discriminator, the Fourier loss, the optimiser and a compiled step."""

    def __init__(self, generator, discriminator, config: RegularizeConfig, reference=None):
        import keras
        import tensorflow as tf

        from tfforensics.losses import FourierLoss, MeanSpectrumLoss
        from tfforensics.regularization.inversion import broadcast, split_generator

        self.generator, self.discriminator, self.config = generator, discriminator, config
        _, self.synthesis = split_generator(generator)
        self.num_layers = int(self.synthesis.input_shape[1])
        self.size = int(self.synthesis.output_shape[1])
        self.band = config.band_for(self.size)
        self.latent_dim = int(generator.input_shape[-1])
        if config.target == "mean":
            if reference is None:
                raise UserError("--target mean needs real reference images.")
            mean_loss = MeanSpectrumLoss(reference, config.kind, band=self.band, color=config.color)
            self.fourier = lambda reals, fakes: mean_loss(fakes)
        else:
            self.fourier = FourierLoss(config.kind, band=self.band, spectrum=config.spectrum, color=config.color)
        discriminator.trainable = False
        self.optimizer = keras.optimizers.Adam(config.learning_rate / 2, beta_1=0.0, beta_2=0.99, epsilon=1e-8)
        self.optimizer.build(self.synthesis.trainable_variables)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.checkpoint = tf.train.Checkpoint(generator=generator, optimizer=self.optimizer, epoch=self.epoch)
        adv, lam = float(config.adv_weight), float(config.fourier_weight)

        def step(latents, reals, random_latents=None):
            reals = tf.cast(reals, tf.float32) / 127.5 - 1.0
            variables = self.synthesis.trainable_variables
            with tf.GradientTape() as tape:
                fakes = self.synthesis(broadcast(latents, self.num_layers), training=True)
                adversarial = tf.reduce_mean(tf.nn.softplus(-self.discriminator(fakes, training=False)))
                batch = fakes
                if random_latents is not None:  # through mapping and truncation, as the scored samples
                    batch = tf.concat([fakes, self.generator(random_latents, training=True)], axis=0)
                fourier = self.fourier(reals, batch)
                total = adv * adversarial + lam * fourier
            self.optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
            return {"loss": total, "adversarial": adversarial, "fourier": fourier}

        self._step = step
        self.reset_step()

    def reset_step(self):
        """A freshly traced train step: its random noise stream starts again from the global seed.

        (The port's noise layers draw with stateful ops, whose state no checkpoint holds; tracing
        the step anew after seeding each epoch makes a resumed run draw what an uninterrupted one does.)
        """
        import tensorflow as tf

        self.step = tf.function(self._step, reduce_retracing=True)


def _read_run(run: Path) -> dict:
    try:
        data = json.loads((run / RUN_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if data.get("kind") == RUN_KIND else {}


def _save_image(image, path):
    from tfforensics.io.images import save_image

    save_image(image, path)


def _claim_run(run: Path, pairs, config: RegularizeConfig, generator_source: str, overwrite: bool) -> dict:
    """The previous run record of ``run`` to continue, or ``{}``; refuses folders that are not ours."""
    from tfforensics.io.atomic import remove_tree

    previous = _read_run(run)
    if run.exists() and any(run.iterdir()):
        if not previous:
            raise UserError(f"{run}: exists and is not a regularize run of tfforensics; choose another folder.")
        if (previous.get("training") != config.training_keys() or previous.get("generator") != generator_source
                or previous.get("pairs") != str(Path(pairs).resolve())):
            if not overwrite:
                raise UserError(f"{run}: holds a run with other options or pairs; pass --overwrite to start again.")
            remove_tree(run)
            previous = {}
    if overwrite and previous:
        remove_tree(run)
        previous = {}
    run.mkdir(parents=True, exist_ok=True)
    return previous


class _RunLog:
    """What a run records after each epoch: scores, spectra, sample grids and ``run.json``.

    ``start`` epochs are kept from ``previous`` (a resumed run), later ones dropped.
    """

    def __init__(self, run: Path, previous: dict, start: int, evaluator, header: dict):
        self.run, self.evaluator, self.header = run, evaluator, header
        self.rows = [r for r in previous.get("epochs", []) if r["epoch"] <= start] if start else []
        self.history = [h for h in previous.get("history", []) if h["epoch"] <= start] if start else []
        self.seconds = float(previous.get("seconds", 0.0))
        self.spectra_path = run / "spectra.npz"
        self.spectra = dict(np.load(self.spectra_path)) if self.spectra_path.is_file() and start else {}

    def record(self, generator, epoch: int, extra: dict) -> None:
        row, spectrum, grid = self.evaluator(generator)
        self.spectra[f"dct_{epoch:03d}"], self.spectra[f"dft_{epoch:03d}"] = spectrum["dct"], spectrum["dft"]
        (self.run / "samples").mkdir(exist_ok=True)
        _save_image(sample_grid(grid), self.run / "samples" / f"epoch_{epoch:03d}.png")
        self.rows.append({"epoch": epoch, **extra, **{k: round(float(v), 6) for k, v in row.items()}})
        logger.info("epoch %d: %s", epoch, ", ".join(f"{k} {v:.4g}" for k, v in self.rows[-1].items()
                                                    if k != "epoch" and v is not None))

    def save(self, epoch: int) -> None:
        from tfforensics.io.atomic import atomic_open, atomic_write_json

        with atomic_open(self.spectra_path) as handle:
            np.savez(handle, **self.spectra)
        atomic_write_json(self.run / RUN_FILE, {**self.header, "epoch": epoch, "seconds": round(self.seconds, 1),
                                                "epochs": self.rows, "history": self.history})


def _train_epoch(trainer: RegularizationTrainer, latents, reals, epoch: int, log: _RunLog, progress: bool) -> dict:
    """One pass over the pairs in a seeded order; returns the mean losses of the epoch."""
    import keras
    from tqdm.auto import tqdm

    config = trainer.config
    # seeded per epoch (order and the generator's noise), so a resumed run trains as an uninterrupted one
    keras.utils.set_random_seed(config.seed * 1000 + epoch)
    trainer.reset_step()
    order = np.random.default_rng([config.seed, epoch]).permutation(len(reals))
    random_latents = (np.random.default_rng([config.seed, epoch, 1]).standard_normal(
        (len(order), config.random_samples, trainer.latent_dim)).astype(np.float32) if config.random_samples else None)
    sums = {"loss": 0.0, "adversarial": 0.0, "fourier": 0.0}
    for position, index in enumerate(tqdm(order, desc=f"epoch {epoch}/{config.epochs}", unit="pair",
                                          disable=not progress)):
        extra = () if random_latents is None else (random_latents[position],)
        metrics = {k: float(v) for k, v in trainer.step(latents[index:index + 1], reals[index:index + 1],
                                                        *extra).items()}
        if not np.isfinite(metrics["loss"]):
            raise FloatingPointError(f"non-finite loss at epoch {epoch}, pair {index}: {metrics}; lower LR.")
        for key in sums:
            sums[key] += metrics[key]
        if (position + 1) % max(1, len(order) // 10) == 0:
            log.history.append({"epoch": epoch, "step": position + 1, **{k: round(v, 6) for k, v in metrics.items()}})
    return {k: round(v / len(order), 6) for k, v in sums.items()}


def finetune(pairs, run, config: RegularizeConfig, *, detectors=(), quality=None, generator=None,
             discriminator=None, reference=None, generator_source: str = "shipped stylegan", overwrite: bool = False,
             progress: bool = True, command: str = "") -> dict:
    """Fine-tune on the (real, latent) ``pairs`` folder (:func:`~.inversion.write_pairs`) into ``run``.

    ``detectors`` are :class:`~.evaluation.Detector` objects, ``quality`` a callable images ->
    dict (e.g. :class:`~.evaluation.QualityProxy`). ``generator`` / ``discriminator`` default to
    the mini benchmark's StyleGAN and its discriminator; ``reference`` (uint8 real images) is
    the real spectrum of ``target="mean"``, by default the pairs' real images. A folder holding
    a finished or partial run with the same training options continues (more ``epochs`` add
    epochs); other options need ``overwrite``. Returns the run record (also in ``run/run.json``).
    """
    import keras
    import tensorflow as tf

    from tfforensics import __version__
    from tfforensics.benchmark.gans import load_gan_discriminator, load_generator
    from tfforensics.io.atomic import save_keras
    from tfforensics.regularization.inversion import load_pairs

    run = Path(run)
    reals, latents, _ = load_pairs(pairs)
    previous = _claim_run(run, pairs, config, generator_source, overwrite)

    keras.utils.set_random_seed(config.seed)
    generator = generator if generator is not None else load_generator("stylegan")
    discriminator = discriminator if discriminator is not None else load_gan_discriminator("stylegan")
    if config.target == "mean" and reference is None:
        reference = reals
    trainer = RegularizationTrainer(generator, discriminator, config, reference=reference)
    if reals.shape[1] != trainer.size:
        raise UserError(f"{pairs}: the pairs are {reals.shape[1]} px but the generator makes {trainer.size} px images.")
    manager = tf.train.CheckpointManager(trainer.checkpoint, run / "checkpoint", max_to_keep=1)
    if manager.latest_checkpoint and previous:
        trainer.checkpoint.restore(manager.latest_checkpoint).expect_partial()
    start = int(trainer.epoch.numpy())
    header = {
        "kind": RUN_KIND, "tfforensics_version": __version__, "command": command,
        "pairs": str(Path(pairs).resolve()), "pairs_kept": int(len(reals)), "generator": generator_source,
        "config": dataclasses.asdict(config), "training": config.training_keys(), "band": trainer.band,
        "reference_images": None if reference is None else int(len(reference)),
        "optimizer": {"name": "adam", "learning_rate": config.learning_rate / 2, "beta_1": 0.0, "beta_2": 0.99},
        "detectors": {d.name: d.source for d in detectors}, "quality_proxy": type(quality).__name__ if quality else None,
    }
    log = _RunLog(run, previous, start, Evaluator(list(detectors), quality, config.n_images, config.sample_seed), header)

    if start == 0:
        log.save(0)  # marks the folder as a run before the first (slow) evaluation
        log.record(generator, 0, {"loss": None, "adversarial": None, "fourier": None})
        log.save(0)
    began = time.perf_counter()
    latents_t, reals_t = tf.constant(latents), tf.constant(reals)
    for epoch in range(start + 1, config.epochs + 1):
        losses = _train_epoch(trainer, latents_t, reals_t, epoch, log, progress)
        trainer.epoch.assign(epoch)
        log.seconds += time.perf_counter() - began
        began = time.perf_counter()
        log.record(generator, epoch, losses)
        (run / "epochs").mkdir(exist_ok=True)
        save_keras(generator, run / "epochs" / f"epoch_{epoch:03d}.keras")
        save_keras(generator, run / GENERATOR_FILE)
        manager.save(checkpoint_number=epoch)
        log.save(epoch)
    return json.loads((run / RUN_FILE).read_text())


__all__ = ["RegularizeConfig", "RegularizationTrainer", "finetune", "sample_grid"]
