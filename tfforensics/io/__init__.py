"""Reading images and writing files safely."""

from tfforensics.io.atomic import atomic_open, atomic_write, atomic_write_json, remove_tree, replace_dir
from tfforensics.io.images import (
    IMAGE_EXTENSIONS,
    BadImageError,
    list_images,
    load_image,
    read_size,
    save_image,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "BadImageError",
    "atomic_open",
    "atomic_write",
    "atomic_write_json",
    "list_images",
    "load_image",
    "read_size",
    "remove_tree",
    "replace_dir",
    "save_image",
]
