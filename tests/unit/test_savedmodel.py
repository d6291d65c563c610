import numpy as np
import pytest

from core import paths
from core import spec as specs
from training import data

pytestmark = [pytest.mark.slow, pytest.mark.concerns("savedmodel")]  # reads the session's trained model


def test_saved_model_signature_follows_the_spec(trained_artifacts, tmp_path):
    import keras
    import tensorflow as tf

    from training.savedmodel import export_saved_model

    spec = specs.load(trained_artifacts)
    model = keras.models.load_model(paths.keras_model_path(trained_artifacts))
    out = export_saved_model(model, tmp_path / spec.model_name / "1", spec)
    signature = tf.saved_model.load(str(out)).signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    assert list(inputs) == [spec.input_name] and inputs[spec.input_name].shape.as_list() == [None, *spec.item_shape]
    assert inputs[spec.input_name].dtype == tf.float32
    assert signature.structured_outputs[spec.output_name].shape.as_list() == [None, spec.num_classes]
    test = data.load_split(paths.split_path(trained_artifacts))["test"]
    served = signature(**{spec.input_name: tf.constant(test.x)})[spec.output_name].numpy()
    np.testing.assert_allclose(served, model.predict(test.x, verbose=0), atol=1e-6)
    with pytest.raises(FileExistsError, match="never overwritten"):
        export_saved_model(model, out, spec)
