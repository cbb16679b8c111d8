"""Classification metrics as pure functions of labels and per-class scores.

Attribution (which source made an image) is scored as a multi-class problem:
accuracy, confusion matrix, per-class precision and recall. Detection (real or fake)
is the binary problem obtained by merging every non-real class, scored with accuracy,
average precision and ROC AUC, overall and per fake source (real images against one
source at a time, as ForenSynths/LGrad report per GAN family).
"""

from __future__ import annotations

import numpy as np

from tfforensics.errors import UserError


def as_probabilities(scores) -> np.ndarray:
    """``(N, K)`` per-class scores; one column (a sigmoid) becomes ``[1 - p, p]``."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    if scores.ndim != 2:
        raise ValueError(f"scores must be (N,) or (N, K). Received shape: {scores.shape}")
    if scores.shape[1] == 1:
        return np.concatenate([1.0 - scores, scores], axis=1)
    return scores


def resolve_real_class(class_names, real_class=None) -> int:
    """Label of the real class: ``None`` -> 0, a name, or an index (as int or digit string)."""
    class_names = list(class_names)
    if real_class is None:
        return 0
    if isinstance(real_class, str) and real_class in class_names:
        return class_names.index(real_class)
    try:
        index = int(real_class)
    except (TypeError, ValueError):
        raise UserError(f"--real-class {real_class!r} is not one of the classes {class_names}.") from None
    if not 0 <= index < len(class_names):
        raise UserError(f"--real-class {index} is out of range for the classes {class_names}.")
    return index


def real_vs_fake(labels, scores, real_class: int = 0) -> dict:
    """Binary detection metrics; the fake score is ``1 - P(real)``.

    Returns accuracy (fake when the predicted class is not the real one), accuracy on
    real and on fake images, and average precision / ROC AUC with "fake" as the
    positive class (``None`` when only one of the two is present).
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    labels = np.asarray(labels)
    scores = as_probabilities(scores)
    is_fake = labels != real_class
    fake_score = 1.0 - scores[:, real_class]
    predicted_fake = scores.argmax(axis=1) != real_class
    both = bool(is_fake.any() and (~is_fake).any())
    return {
        "count": int(len(labels)),
        "real": int((~is_fake).sum()),
        "fake": int(is_fake.sum()),
        "accuracy": float(np.mean(predicted_fake == is_fake)) if len(labels) else None,
        "real_accuracy": float(np.mean(~predicted_fake[~is_fake])) if (~is_fake).any() else None,
        "fake_accuracy": float(np.mean(predicted_fake[is_fake])) if is_fake.any() else None,
        "average_precision": float(average_precision_score(is_fake, fake_score)) if both else None,
        "roc_auc": float(roc_auc_score(is_fake, fake_score)) if both else None,
    }


def classification_report(labels, scores, class_names, *, real_class: int = 0) -> dict:
    """All metrics of one evaluation as a JSON-serialisable dict.

    Args:
        labels: true labels ``(N,)``.
        scores: per-class scores ``(N, K)`` (or one sigmoid column).
        class_names: names in label order.
        real_class: label of the real images, for the detection metrics.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = np.asarray(labels).astype(np.int64)
    scores = as_probabilities(scores)
    class_names = list(class_names)
    k = len(class_names)
    if scores.shape[1] != k:
        raise ValueError(f"scores have {scores.shape[1]} columns but there are {k} classes {class_names}.")
    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} labels but {len(scores)} score rows.")
    if len(labels) and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must lie in 0..{k - 1} for the classes {class_names}.")
    predictions = scores.argmax(axis=1)
    matrix = confusion_matrix(labels, predictions, labels=np.arange(k))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=np.arange(k), zero_division=0
    )
    per_class = {
        name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
               "support": int(support[i]), "predicted": int((predictions == i).sum())}
        for i, name in enumerate(class_names)
    }
    per_source = {}
    for i, name in enumerate(class_names):
        if i == real_class:
            continue
        subset = (labels == real_class) | (labels == i)
        per_source[name] = real_vs_fake(labels[subset], scores[subset], real_class)
    return {
        "count": int(len(labels)),
        "accuracy": float(np.mean(predictions == labels)) if len(labels) else None,
        "class_names": class_names,
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
        "real_class": class_names[real_class],
        "real_vs_fake": real_vs_fake(labels, scores, real_class),
        "per_source": per_source,
    }


def roc_curves(labels, scores, class_names, real_class: int = 0) -> dict:
    """``{name: (fpr, tpr, auc)}`` for all fakes together ("all fakes") and per source."""
    from sklearn.metrics import roc_auc_score, roc_curve

    labels = np.asarray(labels)
    scores = as_probabilities(scores)
    fake_score = 1.0 - scores[:, real_class]
    groups = {"all fakes": np.ones(len(labels), dtype=bool)}
    if len(class_names) > 2:
        groups.update({name: (labels == real_class) | (labels == i)
                       for i, name in enumerate(class_names) if i != real_class})
    curves = {}
    for name, subset in groups.items():
        is_fake = labels[subset] != real_class
        if is_fake.all() or not is_fake.any():
            continue
        fpr, tpr, _ = roc_curve(is_fake, fake_score[subset])
        curves[name] = (fpr, tpr, float(roc_auc_score(is_fake, fake_score[subset])))
    return curves


def fake_scores(scores, real_class: int = 0) -> np.ndarray:
    """P(fake) = ``1 - P(real)`` per image, from per-class scores (or one sigmoid column)."""
    return 1.0 - as_probabilities(scores)[:, real_class]


def accuracy_at(is_fake, fake_score, threshold: float = 0.5) -> dict:
    """ACC, real ACC and fake ACC when an image counts as fake for ``fake_score > threshold``."""
    is_fake = np.asarray(is_fake, dtype=bool)
    predicted = np.asarray(fake_score, dtype=np.float64) > threshold
    return {
        "threshold": float(threshold),
        "accuracy": float(np.mean(predicted == is_fake)) if len(is_fake) else None,
        "real_accuracy": float(np.mean(~predicted[~is_fake])) if (~is_fake).any() else None,
        "fake_accuracy": float(np.mean(predicted[is_fake])) if is_fake.any() else None,
    }


def select_threshold(is_fake, fake_score) -> float:
    """The decision threshold (fake when ``score > threshold``) of highest balanced accuracy.

    Meant for a validation split: the candidates are the midpoints between consecutive
    distinct scores (and one below the lowest and one above the highest), so the threshold
    falls between images, not on one; among equally good candidates the one nearest 0.5 is
    taken. Balanced accuracy ``(real ACC + fake ACC) / 2`` does not reward a threshold
    that favours the larger class. Needs real and fake images.
    """
    is_fake = np.asarray(is_fake, dtype=bool)
    fake_score = np.asarray(fake_score, dtype=np.float64)
    if is_fake.shape != fake_score.shape or fake_score.ndim != 1:
        raise ValueError(f"`is_fake` and `fake_score` must be two (N,) arrays. Received shapes: "
                         f"{is_fake.shape}, {fake_score.shape}")
    if is_fake.all() or not is_fake.any():
        raise ValueError("choosing a threshold needs real and fake images; the scores hold only one kind.")
    values = np.unique(fake_score)
    candidates = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    # images at or below each candidate, per kind (candidates are sorted, so searchsorted counts them)
    real_below = np.searchsorted(np.sort(fake_score[~is_fake]), candidates, side="right")
    fake_below = np.searchsorted(np.sort(fake_score[is_fake]), candidates, side="right")
    balanced = (real_below / (~is_fake).sum() + 1.0 - fake_below / is_fake.sum()) / 2
    best = np.flatnonzero(balanced >= balanced.max() - 1e-12)
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


def calibrated_accuracy(val_is_fake, val_score, test_is_fake, test_score) -> dict:
    """ACC on test at the threshold :func:`select_threshold` picks on val, with that threshold
    and the balanced accuracy it reached on val."""
    threshold = select_threshold(val_is_fake, val_score)
    val = accuracy_at(val_is_fake, val_score, threshold)
    return {**accuracy_at(test_is_fake, test_score, threshold),
            "val_balanced_accuracy": (val["real_accuracy"] + val["fake_accuracy"]) / 2}
