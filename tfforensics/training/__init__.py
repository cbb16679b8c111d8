"""Training classifiers on prepared records (see :func:`tfforensics.training.fit.train`)."""

from tfforensics.training.fit import TrainResult, train

__all__ = ["TrainResult", "train"]
