"""tfforensics: one TensorFlow 2 / Keras toolkit for detecting and attributing GAN images.

The package follows the data flow: ``io`` (images and atomic files) → ``data``
(encodings, ``prepare``, the record reader) → consumers (models, baselines, ...).
Importing the package is cheap: TensorFlow loads only when a module that needs it does.
"""

__version__ = "0.1.0"
