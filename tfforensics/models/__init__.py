"""Models: classifier builders (one registry, :data:`tfforensics.models.classifiers.MODELS`) saved models, the StyleGAN port (``models.stylegan``) and LGrad.

Submodules load Keras; import them directly (``from tfforensics.models.classifiers import
MODELS``) so that importing this package stays cheap for the command line.
"""

from tfforensics.models.names import MODEL_NAMES

__all__ = ["MODEL_NAMES"]
