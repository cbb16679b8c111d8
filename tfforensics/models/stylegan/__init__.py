"""StyleGAN (v1) in Keras 3, loadable from the official ``karras2019stylegan-*.pkl`` files."""

from tfforensics.models.stylegan.networks import (
    build_discriminator, build_generator, build_mapping, build_synthesis, sub_model, tf1_variables,
)

__all__ = ["build_discriminator", "build_generator", "build_mapping", "build_synthesis", "sub_model",
           "tf1_variables"]
