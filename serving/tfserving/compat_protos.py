"""TF Serving's protobufs <-> numpy for the compatible server's gRPC front (compat_grpc.py).

A request's model spec gives the version it asks for; its tensors are checked against the signature
(compat_models.SignatureView) before their values are materialized, and read (and the answer's
written) as raw bytes where the dtype allows.
"""
from __future__ import annotations

import math

import grpc
import numpy as np

from serving.tfserving.compat_models import ServingError, SignatureView, check_proto_shape

# The dtypes whose values a TensorProto may carry as raw bytes (tensor_content), read and written here
# without TensorFlow's converters: they cost more than the rest of a small request. DataType enum -> numpy.
PLAIN_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
                17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64}
PLAIN_ENUMS = {np.dtype(numpy_type): enum for enum, numpy_type in PLAIN_DTYPES.items()}
SHAPE_FIELDS = ("dtype", "tensor_shape", "version_number")  # a TensorProto's fields that carry no values
# DataType enum -> the typed value list that carries it in full (one value per element) and its numpy type.
VALUE_FIELDS = {1: ("float_val", np.float32), 2: ("double_val", np.float64), 3: ("int_val", np.int32),
                9: ("int64_val", np.int64)}


def version_of(model_spec) -> int | None:
    """The version a ModelSpec asks for, None for the newest; version labels are refused."""
    if model_spec.HasField("version"):
        return model_spec.version.value
    if model_spec.version_label:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           "version labels are not supported by this server; use a version")
    return None


def dtype_name(number: int) -> str:
    """A DataType enum value's name (float32, string...), or words saying it is not one."""
    import tensorflow as tf

    try:
        return tf.dtypes.as_dtype(number).name if number else "an invalid dtype"
    except TypeError:
        return f"an unknown dtype ({number})"


def read_inputs(request, view: SignatureView, max_batch_size: int | None) -> dict:
    """A PredictRequest's tensors as arrays, each checked against the signature before it is materialized."""
    if request.inputs.keys() != view.inputs:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "input names do not match the signature: "
                           f"sent {sorted(request.inputs)}, expected {sorted(view.inputs)}")
    inputs = {}
    for name, proto in request.inputs.items():
        if proto.dtype != view.dtypes[name]:
            import tensorflow as tf

            want, got = tf.dtypes.as_dtype(view.dtypes[name]).name, dtype_name(proto.dtype)
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               f'input "{name}": expects arg to be {want} but {got} is provided')
        check_proto_shape(name, proto, view.shapes[name], max_batch_size)
        try:
            inputs[name] = tensor_to_array(proto)
        except (ValueError, TypeError) as error:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               f'input "{name}" is not a valid tensor: {error}') from error
    return inputs


def tensor_to_array(proto) -> np.ndarray:
    """A TensorProto's values as an ndarray of its declared shape (read-only when read in place).

    Raw bytes of a plain dtype (what tf.make_tensor_proto sends) are read in place, and a full list of
    values (float_val...: one per element, as gRPC clients in other languages send) is copied at once;
    anything else (fewer values filling the shape with the last one, strings, half floats) goes through
    tf.make_ndarray. Raises ValueError for values that do not fill the shape, and (unlike TensorFlow,
    which reads zeros) for a tensor that declares values and carries none.
    """
    shape = [d.size for d in proto.tensor_shape.dim]
    numpy_type = PLAIN_DTYPES.get(proto.dtype)
    if numpy_type is not None and proto.tensor_content:
        return np.frombuffer(proto.tensor_content, np.dtype(numpy_type).newbyteorder("<")).reshape(shape)
    count = math.prod(shape)
    field_name, numpy_type = VALUE_FIELDS.get(proto.dtype, (None, None))
    if field_name is not None and not proto.tensor_content:
        values = getattr(proto, field_name)
        if len(values) == count > 0:
            return np.array(values, dtype=numpy_type).reshape(shape)
    if count > 0 and not any(field.name not in SHAPE_FIELDS for field, _ in proto.ListFields()):
        # TensorFlow reads such a tensor as zeros: a client that lost its data would get answers for blank images.
        raise ValueError(f"its shape {shape} declares {count:,} values but it carries none")
    import tensorflow as tf

    return tf.make_ndarray(proto)


def array_to_tensor(value: np.ndarray, proto) -> None:
    """Write `value` into the TensorProto `proto` as tf.make_tensor_proto would (raw little-endian bytes
    for a plain dtype), without its per-call cost."""
    enum = PLAIN_ENUMS.get(value.dtype)
    if enum is None:
        import tensorflow as tf

        proto.CopyFrom(tf.make_tensor_proto(value))
        return
    proto.dtype = enum
    for size in value.shape:
        proto.tensor_shape.dim.add().size = size
    proto.tensor_content = value.astype(value.dtype.newbyteorder("<"), copy=False).tobytes()
