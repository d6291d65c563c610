"""The two network files define one function per arch: same parameters, same outputs for same weights.

Shapes and classes are read from specs (the digits', and a colour non-square one), never assumed.
"""
import numpy as np
import pytest
import torch

from core.spec import from_dict
from training import data
from training.downsampling import MAX_FLATTEN_CELLS, pooled_sizes
from training.model_keras import NETWORKS as KERAS_NETWORKS
from training.model_keras import build_model
from training.model_keras import count_params as keras_count_params
from training.model_torch import NETWORKS as TORCH_NETWORKS
from training.model_torch import DigitsCNN, count_params, load_checkpoint, save_checkpoint
from training.spec import ARCHS, RESIZE_REDUCTION, WIDTHS, ModelConfig, derive_spec, digits_spec
from training.twin import twin_max_abs_diff

TWIN_TOLERANCE = 1e-5
DIGITS_REFERENCE_PARAMS = 9802  # the digits' reference network (arch cnn, width 1): a regression check


def digits(config=ModelConfig()):
    return from_dict(digits_spec(config))


def colour(config=ModelConfig(), item_shape=(12, 16, 3), classes=("circle", "square", "star", "cross", "ring")):
    """A task unlike the digits: non-square colour images of 0..255, five named classes."""
    return from_dict(derive_spec(config, item_shape=item_shape, labels=classes, value_range=(0.0, 255.0),
                                 model_name="shapes", reduction=RESIZE_REDUCTION))


def images_for(spec, count=64, seed=0):
    """Raw values spread over the spec's own range."""
    rng = np.random.default_rng(seed)
    return rng.uniform(spec.value_min, spec.value_max, (count, *spec.item_shape)).astype(np.float32)


def randomize_batchnorm(model, seed=0):
    """Non-trivial running statistics and affine weights: fresh ones (0, 1, 1, 0) would hide a mapping error."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                for tensor, (low, high) in ((module.running_mean, (-0.5, 0.5)), (module.running_var, (0.5, 2.0)),
                                            (module.weight, (0.5, 1.5)), (module.bias, (-0.3, 0.3))):
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)
    return model


@pytest.fixture(scope="module")
def digit_images():
    dataset = data.load_builtin()
    return dataset.x[:300]


def test_both_files_define_every_arch():
    assert set(TORCH_NETWORKS) == set(KERAS_NETWORKS) == set(ARCHS)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("width", WIDTHS)
def test_trainable_parameter_counts_are_equal(arch, width):
    config = ModelConfig(width=width, arch=arch)
    for spec in (digits(config), colour(config)):
        assert count_params(DigitsCNN(config, spec)) == keras_count_params(build_model(config, spec))


def test_keras_counts_batchnorm_statistics_as_non_trainable():
    """What a plain `count_params()` would get wrong: the moving statistics are weights, not parameters."""
    config = ModelConfig(arch="resnet")
    spec = digits(config)
    keras_model, torch_model = build_model(config, spec), DigitsCNN(config, spec)
    statistics = sum(m.running_mean.numel() + m.running_var.numel() for m in torch_model.modules()
                     if isinstance(m, torch.nn.BatchNorm2d))
    assert statistics > 0
    assert keras_model.count_params() == keras_count_params(keras_model) + statistics


def test_digits_reference_network_is_unchanged():
    """arch cnn on the digits: two convs, one pooling, two dense layers, in both frameworks (9,802 parameters)."""
    spec = digits()
    model = DigitsCNN(ModelConfig(), spec)
    assert count_params(model) == DIGITS_REFERENCE_PARAMS
    children = [(name, type(module).__name__) for name, module in model.named_children()
                if not (isinstance(module, torch.nn.Sequential) and len(module) == 0)]  # no extra stage
    assert children == [("conv1", "Conv2d"), ("conv2", "Conv2d"), ("pool", "MaxPool2d"), ("fc1", "Linear"),
                        ("dropout", "Dropout"), ("fc2", "Linear")]
    assert model.fc1.in_features == ModelConfig().conv2_channels * (spec.height // 2) * (spec.width // 2)
    keras_layers = [(layer.name, type(layer).__name__) for layer in build_model(ModelConfig(), spec).layers]
    assert keras_layers == [(spec.input_name, "InputLayer"), ("normalize", "Rescaling"), ("add_channel", "Reshape"),
                            ("conv1", "Conv2D"), ("conv2", "Conv2D"), ("pool", "MaxPooling2D"),
                            ("flatten", "Flatten"), ("fc1", "Dense"), ("dropout", "Dropout"),
                            (spec.output_name, "Dense")]


@pytest.mark.parametrize("arch", ARCHS)
def test_parameter_count_grows_with_width(arch):
    counts = [count_params(DigitsCNN(ModelConfig(width=w, arch=arch), digits())) for w in WIDTHS]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("item_shape", [(4, 4), (5, 9), (12, 16, 3), (64, 48), (256, 256, 3), (4, 256)])
def test_any_input_shape_builds_and_flattens_few_positions(arch, item_shape):
    config = ModelConfig(arch=arch)
    spec = colour(config, item_shape=item_shape)
    height, width = pooled_sizes(spec.height, spec.width)[-1]
    assert height >= 1 and width >= 1 and (height * width <= MAX_FLATTEN_CELLS or min(height, width) < 2)
    model = DigitsCNN(config, spec).eval()
    x = images_for(spec, count=2)
    with torch.no_grad():
        out = model(torch.from_numpy(x)).numpy()
    assert out.shape == (2, spec.num_classes)
    assert count_params(model) == keras_count_params(build_model(config, spec))


@pytest.mark.parametrize("arch", ARCHS)
def test_both_networks_take_raw_input_and_return_probabilities(arch, digit_images):
    config = ModelConfig(arch=arch)
    for spec, images in ((digits(config), digit_images), (colour(config), None)):
        images = images_for(spec) if images is None else images
        with torch.no_grad():
            torch_out = DigitsCNN(config, spec).eval()(torch.from_numpy(images)).numpy()
        keras_out = build_model(config, spec).predict(images, verbose=0)
        for out in (torch_out, keras_out):
            assert out.shape == (len(images), spec.num_classes) and out.dtype == np.float32
            np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
            assert out.min() >= 0.0


@pytest.mark.parametrize("arch", ARCHS)
def test_keras_model_names_its_tensors_from_the_spec(arch):
    config = ModelConfig(arch=arch)
    for spec in (digits(config), colour(config)):
        model = build_model(config, spec)
        assert model.inputs[0].name == spec.input_name
        assert tuple(model.inputs[0].shape) == (None, *spec.item_shape)
        assert model.layers[-1].name == spec.output_name


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("task", ["digits", "colour"])
def test_twin_check_random_weights(arch, task, digit_images):
    config = ModelConfig(arch=arch, width=2 if arch == "cnn" else 1)
    spec = digits(config) if task == "digits" else colour(config)
    images = digit_images if task == "digits" else images_for(spec)
    torch.manual_seed(1)
    model = randomize_batchnorm(DigitsCNN(config, spec)).eval()
    assert twin_max_abs_diff(model, images, tolerance=TWIN_TOLERANCE) <= TWIN_TOLERANCE


def test_twin_check_can_fail(monkeypatch, digit_images):
    """Weights put in the wrong order must show up: the check is not vacuous."""
    from training import twin

    torch.manual_seed(0)
    model = DigitsCNN(ModelConfig(), digits()).eval()
    original = twin.flatten_shape_before
    monkeypatch.setattr(twin, "flatten_shape_before", lambda layer: None)  # rows left in PyTorch's (C, H, W) order
    assert twin_max_abs_diff(model, digit_images) > 1e-3
    monkeypatch.setattr(twin, "flatten_shape_before", original)
    assert twin_max_abs_diff(model, digit_images) <= TWIN_TOLERANCE


@pytest.mark.parametrize("arch", ARCHS)
def test_checkpoint_carries_its_config_and_spec(tmp_path, arch):
    config = ModelConfig(width=2, arch=arch)
    spec = colour(config)
    torch.manual_seed(1)
    model = randomize_batchnorm(DigitsCNN(config, spec)).eval()
    path = tmp_path / "model.pt"
    save_checkpoint(model, spec, path)
    loaded, loaded_spec = load_checkpoint(path)
    assert loaded.config == model.config and loaded_spec == spec
    assert not loaded.training
    with torch.no_grad():
        x = torch.from_numpy(images_for(spec, count=8))
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
