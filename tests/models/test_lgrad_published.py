"""LGrad's training as published (chuangchuangtan/LGrad, CNNDetection/train.py, networks/trainer.py,
train-detector.sh): torchvision's ResNet-50 v1.5, fc ~ N(0, 0.02), --class_bal, the decay epochs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tfforensics.models import lgrad


def torchvision_resnet50_shapes(num_classes: int = 1) -> dict:
    """``{state_dict name: shape}`` of ``torchvision.models.resnet50`` with an ``fc`` of ``num_classes``
    (Bottleneck, expansion 4, layers 3-4-6-3, a downsample in the first block of each stage)."""
    shapes = {"conv1.weight": (64, 3, 7, 7)}

    def bn(name, channels):
        for field in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.{field}"] = (channels,)

    bn("bn1", 64)
    inplanes = 64
    for index, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3)), start=1):
        for block in range(blocks):
            prefix = f"layer{index}.{block}"
            shapes[f"{prefix}.conv1.weight"] = (planes, inplanes, 1, 1)
            bn(f"{prefix}.bn1", planes)
            shapes[f"{prefix}.conv2.weight"] = (planes, planes, 3, 3)
            bn(f"{prefix}.bn2", planes)
            shapes[f"{prefix}.conv3.weight"] = (planes * 4, planes, 1, 1)
            bn(f"{prefix}.bn3", planes * 4)
            if block == 0:
                shapes[f"{prefix}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                bn(f"{prefix}.downsample.1", planes * 4)
            inplanes = planes * 4
    shapes["fc.weight"] = (num_classes, 2048)
    shapes["fc.bias"] = (num_classes,)
    return shapes


@pytest.fixture(scope="module")
def detector():
    return lgrad.build_detector("resnet50")


def test_default_architecture_is_torchvision_resnet50_name_for_name(detector):
    from tfforensics.models.published import assign_state_dict

    shapes = torchvision_resnet50_shapes()
    rng = np.random.default_rng(0)
    state = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
    # every Keras weight must come from a torchvision tensor of the right shape and every tensor must
    # land in a layer (assign_state_dict refuses otherwise): a one-to-one map of names and shapes
    assign_state_dict(detector, state, head="fc", source="torchvision resnet50")
    weighted = [layer for layer in detector.layers if layer.weights and layer.name != "imagenet_norm"]
    assert len(weighted) == len({name.rsplit(".", 1)[0] for name in shapes})  # 53 convs + 53 BNs + fc
    np.testing.assert_array_equal(detector.get_layer("layer3_2_conv2").kernel.numpy(),
                                  state["layer3.2.conv2.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(detector.get_layer("predictions").kernel.numpy(), state["fc.weight"].T)
    # v1.5: the stride of a stage's first block is in the 3x3 conv (Keras' ResNet50 v1 has it in conv1)
    for stage in (2, 3, 4):
        assert detector.get_layer(f"layer{stage}_0_conv1").strides == (1, 1)
        assert detector.get_layer(f"layer{stage}_0_conv2").strides == (2, 2)
        assert detector.get_layer(f"layer{stage}_0_downsample_0").strides == (2, 2)
    assert detector.get_layer("bn1").epsilon == pytest.approx(1e-5)


def test_fc_is_initialised_as_the_original():
    head = lgrad.build_detector("resnet50").get_layer("predictions")
    kernel, bias = head.kernel.numpy(), head.bias.numpy()
    assert kernel.shape == (2048, 1)
    assert abs(kernel.std() - 0.02) < 0.002 and abs(kernel.mean()) < 0.002
    assert np.all(np.abs(bias) <= 1 / np.sqrt(2048))


def test_decay_epochs_as_the_original_train_loop():
    config = lgrad.TrainConfig()  # train-detector.sh: --lr 0.0005 --delr_freq 10 --niter 100
    rate, expected = config.learning_rate, []
    for epoch in range(config.epochs):  # CNNDetection/train.py, as written there
        expected.append(rate)
        if epoch % config.decay_every == 0 and epoch != 0:
            rate *= 0.8  # adjust_learning_rate; its min_lr check comes after the product and is ignored
    got = [lgrad.learning_rate_at(epoch, config) for epoch in range(config.epochs)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[10] == config.learning_rate and got[11] == pytest.approx(0.8 * config.learning_rate)


def test_class_balance_draws_both_classes_equally():
    import tensorflow as tf

    labels = np.array([0] * 30 + [1] * 10, dtype=np.float32)
    images = tf.data.Dataset.from_tensor_slices((np.zeros((40, 2, 2, 3), np.float32), labels))
    drawn = np.array([float(label) for _, label in lgrad._balanced(images, 4000, seed=0)])
    assert len(drawn) == 4000 and abs(drawn.mean() - 0.5) < 0.03  # unbalanced: 0.25


def test_training_with_class_bal_and_the_decay(tmp_path):
    rng = np.random.default_rng(1)
    for split, name, count in (("train", "0_real", 24), ("train", "1_fake", 8), ("val", "0_real", 4),
                               ("val", "1_fake", 4)):
        (tmp_path / split / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                tmp_path / split / name / f"{i}.png")
    config = lgrad.TrainConfig(arch="small", epochs=3, batch_size=8, decay_every=1, load_size=32, crop_size=28,
                               class_balance=True)
    lgrad.train_detector(tmp_path / "train", tmp_path / "run", config, progress=False, val_root=tmp_path / "val")
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["recipe"]["class_balance"] is True and run["val_images"] == 8
    assert len(run["history"]["val_loss"]) == 3  # validation each epoch, as the original
    # --delr_freq 1: the original decays after epoch 1 (not after epoch 0)
    np.testing.assert_allclose(run["history"]["learning_rate"], [5e-4, 5e-4, 4e-4], rtol=1e-6)
