import json

import pytest

from training import paths
from training.spec import LABELS, MODEL_NAME, ModelConfig, build_spec, load_spec, write_spec


def test_spec_states_the_input_contract():
    spec = build_spec(ModelConfig(width=2), seed=7)
    assert spec["model_name"] == MODEL_NAME == "digits"
    assert spec["labels"] == [str(d) for d in range(10)] == list(LABELS)
    assert spec["input"] == {"name": "image", "dtype": "float32", "shape": [-1, 8, 8], "layout": "NHW", "min": 0.0, "max": 16.0}
    assert spec["output"]["name"] == "probabilities" and spec["output"]["shape"] == [-1, 10]
    # Normalization maps the raw range 0..16 onto 0..1, inside the network.
    norm = spec["normalization"]
    assert norm["inside_network"] is True
    assert 16.0 * norm["scale"] + norm["offset"] == 1.0 and norm["offset"] == 0.0
    assert spec["reduction"]["bitmap_size"] == 32 and spec["reduction"]["block_size"] == 4
    assert spec["model"] == {"width": 2, "kernel_size": 3, "dropout": 0.3}
    assert spec["training"]["seed"] == 7


def test_spec_round_trips_through_json(artifacts):
    spec = build_spec(ModelConfig(), seed=0)
    write_spec(spec, paths.spec_path())
    assert paths.spec_path() == artifacts / "spec.json"
    assert load_spec(paths.spec_path()) == json.loads(json.dumps(spec))


def test_missing_or_foreign_spec_is_refused(artifacts):
    with pytest.raises(FileNotFoundError, match="make train"):
        load_spec(paths.spec_path())
    spec = build_spec(ModelConfig()) | {"spec_version": 999}
    write_spec(spec, paths.spec_path())
    with pytest.raises(ValueError, match="spec_version 999"):
        load_spec(paths.spec_path())


@pytest.mark.parametrize("width", [0, 3, 16])
def test_only_listed_widths_are_accepted(width):
    with pytest.raises(ValueError, match="width must be one of"):
        ModelConfig(width=width)


def test_width_scales_every_layer():
    one, four = ModelConfig(width=1), ModelConfig(width=4)
    assert (four.conv1_channels, four.conv2_channels, four.hidden_units) == (
        4 * one.conv1_channels, 4 * one.conv2_channels, 4 * one.hidden_units)
