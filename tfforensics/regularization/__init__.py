"""Fourier artifact regularisation of a generator (``tfforensics regularize``).

:mod:`~tfforensics.regularization.inversion` turns real images into (real image, latent) pairs
with the StyleGAN port; :mod:`~tfforensics.regularization.finetune` fine-tunes the generator on
them with an adversarial term plus a Fourier dissimilarity (:mod:`tfforensics.losses`) and
scores each epoch with the project's detectors; :mod:`~tfforensics.regularization.evaluation`
holds the detection rate, the quality proxy and the band sweep;
:mod:`~tfforensics.regularization.plots` draws several runs side by side.
"""
