"""Short import path for the StyleGAN port: ``from tfforensics.stylegan import load_pkl``."""

from tfforensics.models.stylegan import *  # noqa: F401,F403
from tfforensics.models.stylegan import __all__  # noqa: F401
