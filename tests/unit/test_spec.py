"""The spec derived from the data: the digits' contract unchanged, any other task from its data."""
import json

import numpy as np
import pytest

from core import paths
from core import spec as specs
from training import data
from training.spec import (
    DIGITS_LABELS,
    DIGITS_NAME,
    DIGITS_RANGE,
    RESIZE_REDUCTION,
    ModelConfig,
    derive_spec,
    digits_spec,
    load_spec,
    write_spec,
)


def test_the_digits_contract_is_unchanged():
    spec = digits_spec(ModelConfig(width=2), seed=7)
    assert spec["model_name"] == DIGITS_NAME == "digits"
    assert spec["labels"] == [str(d) for d in range(10)] == list(DIGITS_LABELS)
    assert spec["input"] == {"name": "image", "dtype": "float32", "shape": [-1, 8, 8], "layout": "NHW", "min": 0.0,
                             "max": 16.0}
    assert spec["output"]["name"] == "probabilities" and spec["output"]["shape"] == [-1, 10]
    norm = spec["normalization"]  # the raw range 0..16 onto 0..1, inside the network
    assert norm["inside_network"] is True and 16.0 * norm["scale"] + norm["offset"] == 1.0 and norm["offset"] == 0.0
    assert spec["reduction"]["kind"] == "ink_blocks"
    assert spec["reduction"]["bitmap_size"] == 32 and spec["reduction"]["block_size"] == 4
    assert spec["model"] == {"arch": "cnn", "width": 2, "kernel_size": 3, "dropout": 0.3}
    assert spec["training"]["seed"] == 7


def test_a_colour_task_is_described_by_its_data():
    x = np.random.default_rng(0).integers(0, 256, (20, 12, 16, 3)).astype(np.uint8)
    y = np.arange(20) % 5
    dataset = data.validate(x, y, "mine", labels=["a", "b", "c", "d", "e"], name="shapes")
    spec = specs.from_dict(derive_spec(ModelConfig(arch="resnet"), item_shape=dataset.item_shape, labels=dataset.labels,
                                       value_range=dataset.value_range, model_name=dataset.name,
                                       reduction=RESIZE_REDUCTION))
    assert spec.item_shape == (12, 16, 3) and spec.layout == "NHWC" and spec.channels == 3
    assert (spec.height, spec.width) == (12, 16) and spec.describe_item() == "12x16x3"
    assert (spec.value_min, spec.value_max) == (0.0, 255.0)  # uint8: the dtype's range
    assert spec.value_max * spec.scale + spec.offset == pytest.approx(1.0)
    assert spec.labels == ["a", "b", "c", "d", "e"] and spec.num_classes == 5 and spec.model_name == "shapes"
    assert spec.reduction["kind"] == "resize" and spec.model["arch"] == "resnet"


@pytest.mark.parametrize("values, expected", [
    (np.array([0.0, 0.5, 1.0]), (0.0, 1.0)),
    (np.array([-0.5, 0.5]), (-1.0, 1.0)),
    (np.array([0.0, 17.0, 200.0]), (0.0, 255.0)),
    (np.array([-3.0, 1000.0]), (-3.0, 1000.0)),
])
def test_the_value_range_comes_from_the_data(values, expected):
    assert data.value_range_of(values) == expected


def test_spec_round_trips_through_json(artifacts):
    spec = digits_spec(ModelConfig(), seed=0)
    write_spec(spec, paths.spec_path())
    assert paths.spec_path() == artifacts / "spec.json"
    assert load_spec(paths.spec_path()).data == json.loads(json.dumps(spec))
    assert specs.load().model_name == DIGITS_NAME  # the artifacts folder in force


def test_missing_or_foreign_spec_is_refused(artifacts):
    with pytest.raises(specs.SpecError, match="make train"):
        load_spec(paths.spec_path())
    write_spec(digits_spec() | {"spec_version": 999}, paths.spec_path())
    with pytest.raises(specs.SpecError, match="spec_version 999"):
        load_spec(paths.spec_path())


def test_a_range_needs_max_above_min():
    with pytest.raises(ValueError, match="max > min"):
        derive_spec(ModelConfig(), item_shape=(8, 8), labels="ab", value_range=(1, 1), model_name="x",
                    reduction=RESIZE_REDUCTION)
    assert DIGITS_RANGE == (0.0, 16.0)


@pytest.mark.parametrize("width", [0, 3, 16])
def test_only_listed_widths_are_accepted(width):
    with pytest.raises(ValueError, match="width must be one of"):
        ModelConfig(width=width)


def test_an_arch_is_a_network_name():
    with pytest.raises(ValueError, match="arch must name a network"):
        ModelConfig(arch="Trans Former!")
    assert ModelConfig(arch="mynet").arch == "mynet"  # one added to the two network files


def test_width_scales_every_layer():
    one, four = ModelConfig(width=1), ModelConfig(width=4)
    assert (four.conv1_channels, four.conv2_channels, four.hidden_units) == (
        4 * one.conv1_channels, 4 * one.conv2_channels, 4 * one.hidden_units)
