"""StyleGAN (v1) in Keras 3, loadable from the official ``karras2019stylegan-*.pkl`` files."""

from tfforensics.models.stylegan.networks import (
    build_discriminator, build_generator, build_mapping, build_synthesis, sub_model, tf1_variables,
)
from tfforensics.models.stylegan.pkl import (
    NetworkState, RefusedGlobalError, build_from_state, find_network, load_network, load_networks, load_pkl,
    save_network,
)

__all__ = [
    "NetworkState", "RefusedGlobalError", "build_discriminator", "build_from_state", "build_generator",
    "build_mapping", "build_synthesis", "find_network", "load_network", "load_networks", "load_pkl",
    "save_network", "sub_model", "tf1_variables",
]
