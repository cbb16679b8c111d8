"""Evaluation: metrics (pure functions), plots, ``test`` on records and ``classify`` on images."""

from tfforensics.evaluation.metrics import classification_report, real_vs_fake, resolve_real_class

__all__ = ["classification_report", "real_vs_fake", "resolve_real_class"]
