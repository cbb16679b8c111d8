"""Analyses of image sources: DCT spectrum statistics, normalisation files."""

from tfforensics.analysis.spectra import (
    SpectraResult, compute_spectra, mean_var_from_dataset, mean_var_from_folders, plot_spectra, spectrum_stats,
)

__all__ = [
    "SpectraResult",
    "compute_spectra",
    "mean_var_from_dataset",
    "mean_var_from_folders",
    "plot_spectra",
    "spectrum_stats",
]
