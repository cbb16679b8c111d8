"""Serializable Keras layers: the preprocessing that saved models carry inside them."""

from tfforensics.layers.metadata import ClassNames
from tfforensics.layers.normalization import FusedBatchNormalization
from tfforensics.layers.npr import NeighbourResidual
from tfforensics.layers.preprocessing import (
    DCT2D,
    AbsScale,
    Grayscale,
    LogScale,
    PixelScale,
    Standardize,
    preprocessing_from_manifest,
    preprocessing_layers,
)

__all__ = [
    "DCT2D",
    "AbsScale",
    "ClassNames",
    "FusedBatchNormalization",
    "Grayscale",
    "LogScale",
    "NeighbourResidual",
    "PixelScale",
    "Standardize",
    "preprocessing_from_manifest",
    "preprocessing_layers",
]
