"""The two network definitions are one function: same parameters, same outputs for same weights."""
import numpy as np
import pytest
import torch

from training import data
from training.model_keras import build_model
from training.model_torch import DigitsCNN, count_params, load_checkpoint, save_checkpoint
from training.spec import WIDTHS, ModelConfig, build_spec
from training.twin import twin_max_abs_diff


@pytest.fixture(scope="module")
def images():
    x, _ = data.load_builtin()
    return x[:300]


@pytest.mark.parametrize("width", WIDTHS)
def test_parameter_counts_are_equal(width):
    config = ModelConfig(width=width)
    assert count_params(DigitsCNN(config)) == build_model(config).count_params()


def test_parameter_count_grows_with_width():
    counts = [count_params(DigitsCNN(ModelConfig(width=w))) for w in WIDTHS]
    assert counts == sorted(counts) and counts[0] == 9802


def test_both_networks_take_raw_8x8_and_return_probabilities(images):
    torch_model = DigitsCNN().eval()
    with torch.no_grad():
        torch_out = torch_model(torch.from_numpy(images)).numpy()
    keras_out = build_model().predict(images, verbose=0)
    for out in (torch_out, keras_out):
        assert out.shape == (len(images), 10) and out.dtype == np.float32
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
        assert out.min() >= 0.0


def test_keras_model_names_its_tensors_from_the_spec():
    model = build_model()
    assert model.inputs[0].name == "image" and tuple(model.inputs[0].shape) == (None, 8, 8)
    assert model.layers[-1].name == "probabilities"


@pytest.mark.parametrize("width", [1, 2])
def test_twin_check_random_weights(images, width):
    torch.manual_seed(width)
    model = DigitsCNN(ModelConfig(width=width)).eval()
    assert twin_max_abs_diff(model, images) <= 1e-5


def test_twin_check_can_fail(monkeypatch, images):
    """Weights put in the wrong order must show up: the check is not vacuous."""
    from training import twin

    torch.manual_seed(0)
    model = DigitsCNN().eval()
    original = twin.torch_to_keras_weights

    def flatten_order_ignored(state_dict, config):
        weights = original(state_dict, config)
        weights["fc1"][0] = state_dict["fc1.weight"].numpy().T  # (C*H*W, hidden): wrong order for Keras
        return weights

    monkeypatch.setattr(twin, "torch_to_keras_weights", flatten_order_ignored)
    assert twin_max_abs_diff(model, images) > 1e-3


def test_checkpoint_carries_its_config_and_spec(tmp_path, images):
    torch.manual_seed(1)
    model = DigitsCNN(ModelConfig(width=2)).eval()
    spec = build_spec(model.config, seed=1)
    path = tmp_path / "digits.pt"
    save_checkpoint(model, spec, path)
    loaded, loaded_spec = load_checkpoint(path)
    assert loaded.config == model.config and loaded_spec == spec
    assert not loaded.training
    with torch.no_grad():
        x = torch.from_numpy(images)
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
