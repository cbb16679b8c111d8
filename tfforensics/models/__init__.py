"""Model builders (one registry, :data:`tfforensics.models.classifiers.MODELS`) and saved models.

Submodules load Keras; import them directly (``from tfforensics.models.classifiers import
MODELS``) so that importing this package stays cheap for the command line.
"""

from tfforensics.models.names import MODEL_NAMES

__all__ = ["MODEL_NAMES"]
