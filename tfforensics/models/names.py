"""Names of the registered models, without importing Keras.

The command line builds its ``--help`` and choices from these, so that starting a command
never loads TensorFlow (``prepare`` then forks its workers instead of spawning them).
``MODEL_NAMES`` must equal the keys of :data:`tfforensics.models.classifiers.MODELS`
(a test checks).
"""

import dataclasses

MODEL_NAMES = ("log", "log1", "log2", "log3", "nn", "cnn", "resnet", "cnn004", "attribution", "attribution_predown",
               "visnet", "lgrad", "resnet50", "npr")

#: Fixed input front ends of Yu et al.'s attribution network (``attribute train --input``;
#: :func:`tfforensics.models.attribution.front_end_layers`): ``pixels`` is the published network,
#: ``residual`` NPR's ``(x - up(down(x))) * 2/3`` (Tan et al. CVPR 2024), ``dct`` the log-magnitude DCT.
ATTRIBUTION_FRONT_ENDS = ("pixels", "residual", "dct")


@dataclasses.dataclass(frozen=True)
class GanFamily:
    """One entry of :data:`GAN_FAMILIES`: how its generator up-samples, and which D trains it."""

    name: str
    upsampling: str
    description: str
    discriminator: str  # "dcgan" or "stylegan"


GAN_FAMILIES = {
    "nearest": GanFamily("nearest", "nearest", "nearest-neighbour up-sampling + 3x3 conv (ProGAN-like)", "dcgan"),
    "transposed": GanFamily("transposed", "transposed", "4x4 transposed conv, stride 2 (DCGAN-like)", "dcgan"),
    "bilinear": GanFamily("bilinear", "bilinear", "bilinear up-sampling + 3x3 conv", "dcgan"),
    "stylegan": GanFamily("stylegan", "stylegan",
                          "the StyleGAN (v1) port: mapping + AdaIN synthesis, nearest up + conv + blur", "stylegan"),
}
