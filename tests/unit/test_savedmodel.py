import numpy as np
import pytest

from training import data, paths

pytestmark = pytest.mark.slow  # reads the session's trained model


def test_saved_model_signature_follows_the_spec(trained_artifacts, tmp_path):
    import keras
    import tensorflow as tf

    from training.savedmodel import export_saved_model

    model = keras.models.load_model(paths.keras_model_path(trained_artifacts))
    out = export_saved_model(model, tmp_path / "digits" / "1")
    signature = tf.saved_model.load(str(out)).signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    assert list(inputs) == ["image"] and inputs["image"].shape.as_list() == [None, 8, 8]
    assert inputs["image"].dtype == tf.float32
    assert signature.structured_outputs["probabilities"].shape.as_list() == [None, 10]
    test = data.load_split(paths.split_path(trained_artifacts))["test"]
    served = signature(image=tf.constant(test.x))["probabilities"].numpy()
    np.testing.assert_allclose(served, model.predict(test.x, verbose=0), atol=1e-6)
    with pytest.raises(FileExistsError, match="never overwritten"):
        export_saved_model(model, out)
