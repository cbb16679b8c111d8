"""Image-folder tools that run before ``prepare``: crops, resizing, splits, perturbations."""

from tfforensics.preprocess._folder import FolderResult
from tfforensics.preprocess.crop import crop_celeba, crop_folder, crop_lsun
from tfforensics.preprocess.perturb import apply_params, perturb, perturb_folder, sample_params
from tfforensics.preprocess.resize import resize_folder, resize_image
from tfforensics.preprocess.split import split_folder

__all__ = [
    "FolderResult",
    "apply_params",
    "crop_celeba",
    "crop_folder",
    "crop_lsun",
    "perturb",
    "perturb_folder",
    "resize_folder",
    "resize_image",
    "sample_params",
    "split_folder",
]
