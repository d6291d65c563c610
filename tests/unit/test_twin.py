"""The twin check maps by layer order and type, and says clearly what it cannot map or where it diverges.

Each case builds a PyTorch network (a `model_torch.Network`) and a Keras body in place of the
arch's own (`model_keras.NETWORKS`), so the Keras side comes from `build_model` as in training.
"""
import numpy as np
import pytest
import torch
from keras import layers
from torch import nn
from torch.nn import functional as F

from core.spec import from_dict
from training import model_keras, twin
from training.model_keras import build_model
from training.model_keras import count_params as keras_count_params
from training.model_torch import CNN, DigitsCNN, Network, count_params
from training.spec import RESIZE_REDUCTION, ModelConfig, derive_spec, digits_spec

TOLERANCE = 1e-5


def colour_spec(config=ModelConfig()):
    return from_dict(derive_spec(config, item_shape=(12, 16, 3), labels=("a", "b", "c", "d", "e"),
                                 value_range=(0.0, 255.0), model_name="shapes", reduction=RESIZE_REDUCTION))


def images_for(spec, count=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(spec.value_min, spec.value_max, (count, *spec.item_shape)).astype(np.float32)


def randomize_batchnorm(model):
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                module.running_mean.copy_(torch.rand(module.running_mean.shape, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(torch.rand(module.bias.shape, generator=generator) - 0.5)
    return model.eval()


class Separable(Network):
    """Depthwise (x2) + pointwise conv, BatchNorm, a grouped conv, pooling, Linear + BatchNorm1d."""

    def __init__(self, config, spec):
        super().__init__(config, spec)
        c = spec.channels
        self.depthwise = nn.Conv2d(c, 2 * c, 3, padding=1, groups=c)
        self.pointwise = nn.Conv2d(2 * c, 8, 1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(8 * (spec.height // 2) * (spec.width // 2), 16)
        self.bn1d = nn.BatchNorm1d(16)
        self.fc2 = nn.Linear(16, spec.num_classes)

    def logits(self, x):
        x = self.to_channels_first(x)
        x = F.relu(self.bn(self.pointwise(self.depthwise(x))))
        x = self.pool(F.relu(self.grouped(x)))
        x = F.relu(self.bn1d(self.fc1(torch.flatten(x, 1))))
        return self.fc2(x)


def separable_keras(x, config, spec, epsilon=1e-5, pooling=layers.MaxPooling2D):
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="depthwise")(x)
    x = layers.Conv2D(8, 1, use_bias=False, name="pointwise")(x)
    x = layers.ReLU()(layers.BatchNormalization(epsilon=epsilon, momentum=0.9, name="bn")(x))
    x = layers.Conv2D(8, 3, padding="same", groups=2, activation="relu", name="grouped")(x)
    x = layers.Flatten()(pooling(2, name="pool")(x))
    x = layers.Dense(16, name="fc1")(x)
    return layers.ReLU()(layers.BatchNormalization(epsilon=epsilon, momentum=0.9, name="bn1d")(x))


@pytest.fixture
def separable(monkeypatch):
    """Separable in both frameworks, on the colour spec (arch "cnn" stands in for it)."""
    def use(body=separable_keras):
        monkeypatch.setitem(model_keras.NETWORKS, "cnn", body)
        spec = colour_spec()
        torch.manual_seed(0)
        return randomize_batchnorm(Separable(ModelConfig(), spec)), spec
    return use


def test_depthwise_grouped_and_batchnorm1d_layers_map(separable):
    model, spec = separable()
    assert count_params(model) == keras_count_params(build_model(model.config, spec))
    pairs = twin.map_weights(model, build_model(model.config, spec))
    assert [(p.torch_name, p.keras_layer.name) for p in pairs] == [
        ("depthwise", "depthwise"), ("pointwise", "pointwise"), ("bn", "bn"), ("grouped", "grouped"),
        ("fc1", "fc1"), ("bn1d", "bn1d"), ("fc2", spec.output_name)]
    assert pairs[4].flatten_hwc == (spec.height // 2, spec.width // 2, 8)  # the rows reordered after the flatten
    assert twin.twin_max_abs_diff(model, images_for(spec), tolerance=TOLERANCE) <= TOLERANCE


def test_batchnorm_epsilon_difference_is_named(separable):
    model, spec = separable(lambda x, config, spec: separable_keras(x, config, spec, epsilon=1e-3))  # Keras' default
    with pytest.raises(twin.TwinMappingError) as error:
        twin.keras_twin(model)
    message = str(error.value)
    assert "PyTorch 'bn' (BatchNorm2d) <-> Keras 'bn' (BatchNormalization)" in message
    assert "BatchNorm epsilon 1e-05 (PyTorch) vs 0.001 (Keras)" in message
    assert "'bn1d'" in message  # every difference is listed, not only the first


@pytest.mark.parametrize("setting, value, expected", [
    ("BN_EPSILON", 1e-3, "BatchNorm epsilon 1e-05 (PyTorch) vs 0.001 (Keras)"),
    ("BN_MOMENTUM", 0.99, "BatchNorm momentum 0.1 (PyTorch, weight of the new batch) vs 0.99 (Keras"),
])
def test_reference_resnet_refuses_batchnorm_setting_differences(monkeypatch, setting, value, expected):
    monkeypatch.setattr(model_keras, setting, value)
    config = ModelConfig(arch="resnet")
    model = DigitsCNN(config, from_dict(digits_spec(config)))
    with pytest.raises(twin.TwinMappingError, match="stem_bn") as error:
        twin.twin_max_abs_diff(model, images_for(model.spec))
    assert expected in str(error.value)


def test_an_extra_keras_layer_is_named(separable):
    def extra(x, config, spec):
        x = separable_keras(x, config, spec)
        return layers.Dense(16, name="extra_dense")(x)

    model, _ = separable(extra)
    with pytest.raises(twin.TwinMappingError, match=r"the PyTorch network has 7 layers with weights, the Keras "
                                                    r"one 8: Keras layer 'extra_dense' \(Dense, weighted layer 6\) "
                                                    r"has no PyTorch partner"):
        twin.keras_twin(model)


def test_an_extra_torch_layer_is_named(separable):
    class Deeper(Separable):
        def __init__(self, config, spec):
            super().__init__(config, spec)
            self.head = nn.Linear(spec.num_classes, spec.num_classes)

        def logits(self, x):
            return self.head(super().logits(x))

    separable()
    model = Deeper(ModelConfig(), colour_spec())
    with pytest.raises(twin.TwinMappingError, match=r"the PyTorch network has 8 layers with weights, the Keras "
                                                    r"one 7: PyTorch module 'head' \(Linear, weighted layer 7\) has "
                                                    r"no Keras partner"):
        twin.keras_twin(model)


def test_layers_in_another_order_are_named(separable):
    def batchnorm_first(x, config, spec):
        x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name="early_bn")(x)
        return separable_keras(x, config, spec)

    model, _ = separable(batchnorm_first)
    with pytest.raises(twin.TwinMappingError) as error:
        twin.keras_twin(model)
    assert ("pair 0: PyTorch 'depthwise' (Conv2d) <-> Keras 'early_bn' (BatchNormalization): a Conv2d cannot "
            "become a BatchNormalization") in str(error.value)


def test_unmappable_torch_layer_is_named():
    class WithLayerNorm(CNN):
        def __init__(self, config, spec):
            super().__init__(config, spec)
            self.norm = nn.LayerNorm(config.hidden_units)

    model = WithLayerNorm(ModelConfig(), colour_spec())
    with pytest.raises(twin.TwinMappingError, match=r"cannot map PyTorch module 'norm' \(LayerNorm, module \d+\)"):
        twin.keras_twin(model)


def test_unmappable_keras_layer_is_named(monkeypatch):
    def separable_conv(x, config, spec):
        x = layers.SeparableConv2D(8, 3, padding="same", name="sep")(x)
        return layers.Dense(config.hidden_units)(layers.Flatten()(x))

    monkeypatch.setitem(model_keras.NETWORKS, "cnn", separable_conv)
    model = CNN(ModelConfig(), colour_spec())
    with pytest.raises(twin.TwinMappingError, match=r"cannot map Keras layer 'sep' \(SeparableConv2D, layer \d+\).*"
                                                    r"DepthwiseConv2D \+ 1x1 Conv2D"):
        twin.keras_twin(model)


def test_even_kernel_padding_difference_is_named(monkeypatch):
    """PyTorch pads an even kernel alike on both sides; Keras 'same' puts the extra row at the end."""
    class EvenKernel(Network):
        def __init__(self, config, spec):
            super().__init__(config, spec)
            self.conv = nn.Conv2d(spec.channels, 4, 4, padding=2)
            self.fc = nn.Linear(4 * (spec.height + 1) * (spec.width + 1), spec.num_classes)

        def logits(self, x):
            return self.fc(torch.flatten(self.conv(self.to_channels_first(x)), 1))

    monkeypatch.setitem(model_keras.NETWORKS, "cnn",
                        lambda x, config, spec: layers.Flatten()(layers.Conv2D(4, 4, padding="same", name="conv")(x)))
    model = EvenKernel(ModelConfig(), colour_spec())
    with pytest.raises(twin.TwinMappingError) as error:
        twin.keras_twin(model)
    message = str(error.value)
    assert "PyTorch 'conv' (Conv2d) <-> Keras 'conv' (Conv2D): padding of the 12 rows: PyTorch padding=(2, 2) " \
           "pads 2 before and gives 13, Keras padding='same' pads 1 before and gives 12" in message


def test_divergence_between_layers_is_located(separable):
    """Mapped fine, but average instead of max pooling: the report names the pair whose input differs first."""
    model, spec = separable(lambda x, config, spec: separable_keras(x, config, spec, pooling=layers.AveragePooling2D))
    with pytest.raises(twin.TwinDivergence) as error:
        twin.twin_max_abs_diff(model, images_for(spec), tolerance=TOLERANCE)
    report = error.value.report
    assert error.value.diff > TOLERANCE
    assert report.startswith("the networks diverge first before pair 4: PyTorch 'fc1' (Linear) <-> Keras 'fc1' "
                             "(Dense): its input differs by")
    assert "while the output of 'grouped' agrees" in report and "pooling (size, stride, padding)" in report


def test_divergence_inside_a_layer_is_located(monkeypatch, separable):
    """A pair whose weights go wrong (here: the grouped conv's kernel zeroed) is named, with its usual causes."""
    model, spec = separable()
    original = twin.pair_weights

    def broken(pair, kind):
        weights, problems = original(pair, kind)
        if pair.torch_name == "grouped":
            weights = [np.zeros_like(weights[0]), *weights[1:]]
        return weights, problems

    monkeypatch.setattr(twin, "pair_weights", broken)
    with pytest.raises(twin.TwinDivergence) as error:
        twin.twin_max_abs_diff(model, images_for(spec), tolerance=TOLERANCE)
    assert error.value.report.startswith("the networks diverge first at pair 3: PyTorch 'grouped' (Conv2d) <-> Keras "
                                         "'grouped' (Conv2D): same input, output differs by")
    assert "padding (Keras 'same' vs PyTorch's explicit padding" in error.value.report
