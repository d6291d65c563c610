"""The twin check: PyTorch-trained weights loaded into the Keras network give the same function.

    from training import twin
    twin.keras_twin(torch_model)                  # the Keras network carrying the PyTorch weights
    twin.twin_max_abs_diff(torch_model, x)        # largest probability difference on x
    twin.twin_max_abs_diff(torch_model, x, tolerance=1e-5)   # ... or TwinDivergence naming where

No layer names are involved: the layers that carry weights are paired by their order and type.
  PyTorch, in the order forward() calls them    Keras, in the order the graph computes them
  (hooks on one pass)                           (depth first, an add's operands in order)
  Conv2d (groups 1 or grouped)              <-> Conv2D       kernel (out, in, kh, kw) -> (kh, kw, in, out)
  Conv2d (groups = in channels)             <-> DepthwiseConv2D     (in*m, 1, kh, kw) -> (kh, kw, in, m)
  Linear                                    <-> Dense        (out, in) -> (in, out); after a flatten the
                                                             rows go from PyTorch's (C, H, W) order to
                                                             Keras' (H, W, C), read from the shape there
  BatchNorm1d / BatchNorm2d                 <-> BatchNormalization  gamma, beta, moving mean, variance
Pooling, dropout, activations, flatten, reshapes and residual adds carry no weights. Settings
that change the function or its training are compared per pair (BatchNorm epsilon and momentum,
conv padding, stride, dilation, groups, bias); a difference, a layer that has no partner, or
one of a type not listed stops the mapping with `TwinMappingError` naming the layer.

When the mapped networks still disagree, `divergence_report` runs both on the same images,
compares every pair's input and output (PyTorch hooks against a Keras sub-model) and names the
first pair that differs, with the usual causes at that point.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

LOCALIZE_TOLERANCE = 1e-4  # relative difference (to max(1, |value|)) at which an intermediate result "differs"


class TwinMappingError(ValueError):
    """The PyTorch weights cannot be put into the Keras network: a layer without partner, or settings that differ."""


class TwinDivergence(AssertionError):
    """Mapped, but the two networks' probabilities differ by more than the tolerance; `report` says where."""

    def __init__(self, diff: float, tolerance: float, report: str):
        super().__init__(f"twin check: max abs difference {diff:.2e} > {tolerance:g}\n{report}")
        self.diff, self.tolerance, self.report = diff, tolerance, report


@dataclass
class Pair:
    """One PyTorch module and the Keras layer that receives its weights."""

    index: int
    torch_name: str
    torch_module: object
    keras_layer: object
    flatten_hwc: tuple[int, int, int] | None = None  # Dense after a flatten of (H, W, C): rows need reordering
    weights: list[np.ndarray] = field(default_factory=list)

    def describe(self) -> str:
        return (f"pair {self.index}: PyTorch {self.torch_name!r} ({type(self.torch_module).__name__}) <-> "
                f"Keras {self.keras_layer.name!r} ({type(self.keras_layer).__name__})")


# ---------- the two sides, in order ----------

def _torch_kinds():
    from torch import nn

    return {nn.Conv2d: "conv", nn.Linear: "dense", nn.BatchNorm1d: "batchnorm", nn.BatchNorm2d: "batchnorm"}


def _keras_kinds():
    from keras import layers

    # DepthwiseConv2D first: it is not a Conv2D subclass in Keras 3, but keep the most specific first anyway.
    return {layers.DepthwiseConv2D: "depthwise", layers.Conv2D: "conv", layers.Dense: "dense",
            layers.BatchNormalization: "batchnorm"}


def _kind(obj, kinds: dict) -> str | None:
    for cls, kind in kinds.items():
        if type(obj) is cls:  # exact types: a subclass (Conv1d, SeparableConv2D, ...) is another layer
            return kind
    return None


def _example_input(spec, count: int = 2):
    import torch

    return torch.zeros((count, *spec.item_shape), dtype=torch.float32)


def torch_trace(model, x) -> list[tuple[str, object, object, object]]:
    """(name, module, input, output) of every module carrying weights, in the order forward() calls them.

    One pass in eval mode without gradients (the BatchNorm statistics are left untouched). A module
    with weights of a type the twin cannot map, one never called or one called twice is an error.
    """
    import torch

    kinds = _torch_kinds()
    weighted = []
    for index, (name, module) in enumerate(model.named_modules()):
        own = list(module.parameters(recurse=False)) + [b for b in module.buffers(recurse=False)]
        if not own:
            continue
        if _kind(module, kinds) is None:
            raise TwinMappingError(
                f"cannot map PyTorch module {name or '(root)'!r} ({type(module).__name__}, module {index}): it carries "
                f"weights, and the twin maps only {', '.join(c.__name__ for c in kinds)}; build it from those "
                "(e.g. a depthwise conv is Conv2d(groups=in_channels)) or extend training/twin.py")
        weighted.append(name)
    calls: list[tuple[str, object, object, object]] = []

    def hook(name):
        def record(module, inputs, output):
            calls.append((name, module, inputs[0].detach(), output.detach()))
        return record

    modules = dict(model.named_modules())
    handles = [modules[name].register_forward_hook(hook(name)) for name in weighted]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    names = [call[0] for call in calls]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise TwinMappingError(f"PyTorch modules called more than once in forward(): {twice}; shared weights "
                               "have no single Keras partner: give each use its own module")
    unused = [name for name in weighted if name not in names]
    if unused:
        raise TwinMappingError(f"PyTorch modules with weights that forward() never calls: {unused}; remove them "
                               "(Keras would not count them) or call them")
    return calls


def keras_order(model) -> list:
    """The Keras model's layers in the order its graph computes them: depth first from the output,
    an operation's inputs in the order it takes them (an Add([main, shortcut]) visits main first)."""
    order, seen = [], set()

    def visit(tensor):
        operation, node_index, _ = tensor._keras_history
        if operation is None or id(operation) in seen:
            return
        seen.add(id(operation))
        for parent in operation._inbound_nodes[node_index].input_tensors:
            visit(parent)
        order.append(operation)

    for output in model.outputs:
        visit(output)
    return order


def keras_weighted_layers(model) -> list:
    """The layers that carry weights, in graph order; a weighted layer of another type is an error."""
    import keras

    kinds = _keras_kinds()
    found = []
    for index, layer in enumerate(keras_order(model)):
        if not layer.weights:
            continue
        if isinstance(layer, keras.Model):
            raise TwinMappingError(f"cannot map Keras layer {layer.name!r} ({type(layer).__name__}, layer {index}): a "
                                   "nested model; build the network as one functional model of layers")
        if _kind(layer, kinds) is None:
            raise TwinMappingError(
                f"cannot map Keras layer {layer.name!r} ({type(layer).__name__}, layer {index}): it carries weights, "
                f"and the twin maps only {', '.join(c.__name__ for c in kinds)}; build it from those "
                "(e.g. SeparableConv2D = DepthwiseConv2D + 1x1 Conv2D) or extend training/twin.py")
        found.append(layer)
    return found


def flatten_shape_before(layer) -> tuple[int, int, int] | None:
    """(H, W, C) that a Flatten (or a Reshape to one axis) turned into the rows this Dense reads, if any.

    Steps back through shape-keeping layers (dropout, activations) to the Flatten.
    """
    from keras import layers

    tensor = layer.input
    while True:
        operation, node_index, _ = tensor._keras_history
        if operation is None:
            return None
        inputs = operation._inbound_nodes[node_index].input_tensors
        if isinstance(operation, (layers.Flatten, layers.Reshape)) and len(inputs) == 1:
            shape = tuple(inputs[0].shape[1:])
            return shape if len(shape) == 3 and len(tensor.shape) == 2 else None
        if isinstance(operation, (layers.Dropout, layers.Activation, layers.ReLU)) and len(inputs) == 1:
            tensor = inputs[0]
            continue
        return None


# ---------- per pair: settings and weights ----------

def _conv_padding(torch_conv, keras_layer, size: int, axis: int) -> tuple[int, int, int, int]:
    """(PyTorch pad before, PyTorch output, Keras pad before, Keras output) along one spatial axis of `size`."""
    k, s, d = torch_conv.kernel_size[axis], torch_conv.stride[axis], torch_conv.dilation[axis]
    effective = d * (k - 1) + 1
    padding = torch_conv.padding
    if padding == "same":
        before_t, out_t = (effective - 1) // 2, size
    elif padding == "valid":
        before_t, out_t = 0, (size - effective) // s + 1
    else:
        before_t = padding[axis]
        out_t = (size + 2 * before_t - effective) // s + 1
    ks = keras_layer.strides[axis]
    keff = keras_layer.dilation_rate[axis] * (keras_layer.kernel_size[axis] - 1) + 1
    if keras_layer.padding == "same":
        out_k = -(-size // ks)
        before_k = max((out_k - 1) * ks + keff - size, 0) // 2
    else:
        before_k, out_k = 0, (size - keff) // ks + 1
    return before_t, out_t, before_k, out_k


def conv_differences(torch_conv, keras_layer, depthwise: bool) -> list[str]:
    problems = []
    if tuple(torch_conv.stride) != tuple(keras_layer.strides):
        problems.append(f"stride {tuple(torch_conv.stride)} (PyTorch) vs strides {tuple(keras_layer.strides)} (Keras)")
    if tuple(torch_conv.dilation) != tuple(keras_layer.dilation_rate):
        problems.append(f"dilation {tuple(torch_conv.dilation)} (PyTorch) vs dilation_rate "
                        f"{tuple(keras_layer.dilation_rate)} (Keras)")
    if torch_conv.padding_mode != "zeros":
        problems.append(f"padding_mode {torch_conv.padding_mode!r} (PyTorch) vs zero padding (Keras)")
    if not depthwise and torch_conv.groups != keras_layer.groups:
        problems.append(f"groups {torch_conv.groups} (PyTorch) vs groups {keras_layer.groups} (Keras)")
    if (torch_conv.bias is not None) != bool(keras_layer.use_bias):
        problems.append(f"bias {'yes' if torch_conv.bias is not None else 'no'} (PyTorch) vs use_bias="
                        f"{keras_layer.use_bias} (Keras)")
    if keras_layer.data_format != "channels_last":
        problems.append(f"data_format {keras_layer.data_format!r} (Keras); the twin expects channels_last")
    size = keras_layer.input.shape[1:3]
    for axis, what in enumerate(("rows", "columns")):
        if size[axis] is None:
            continue
        before_t, out_t, before_k, out_k = _conv_padding(torch_conv, keras_layer, int(size[axis]), axis)
        if (before_t, out_t) != (before_k, out_k):
            problems.append(
                f"padding of the {size[axis]} {what}: PyTorch padding={torch_conv.padding!r} pads {before_t} before "
                f"and gives {out_t}, Keras padding={keras_layer.padding!r} pads {before_k} before and gives {out_k} "
                "(Keras 'same' puts the extra padding of an even kernel or a stride > 1 at the end, PyTorch "
                "pads both sides alike: use an odd kernel with stride 1, or pad explicitly in both)")
    return problems


def batchnorm_differences(torch_bn, keras_layer) -> list[str]:
    problems = []
    if not math.isclose(torch_bn.eps, keras_layer.epsilon, rel_tol=1e-6):
        problems.append(f"BatchNorm epsilon {torch_bn.eps:g} (PyTorch) vs {keras_layer.epsilon:g} (Keras); the "
                        "defaults differ (PyTorch 1e-5, Keras 1e-3): set the same epsilon in both network files")
    if torch_bn.momentum is None or not math.isclose(1.0 - torch_bn.momentum, keras_layer.momentum, abs_tol=1e-9):
        problems.append(f"BatchNorm momentum {torch_bn.momentum} (PyTorch, weight of the new batch) vs "
                        f"{keras_layer.momentum:g} (Keras, weight of the old statistics); they agree when Keras' is "
                        "1 - PyTorch's (defaults: 0.1 vs 0.99); this changes training, not the trained function")
    if not torch_bn.track_running_stats:
        problems.append("BatchNorm track_running_stats=False (PyTorch normalizes with each batch's own statistics "
                        "even in eval mode; Keras uses its moving statistics)")
    if torch_bn.affine != keras_layer.scale or torch_bn.affine != keras_layer.center:
        problems.append(f"BatchNorm affine={torch_bn.affine} (PyTorch) vs scale={keras_layer.scale}, "
                        f"center={keras_layer.center} (Keras)")
    axis = keras_layer.axis if isinstance(keras_layer.axis, int) else tuple(keras_layer.axis)
    rank = len(keras_layer.input.shape)
    if axis not in (-1, rank - 1, [rank - 1], (rank - 1,)):
        problems.append(f"BatchNorm axis {axis} (Keras); the channels are the last axis")
    return problems


def pair_weights(pair: Pair, kind: str) -> tuple[list[np.ndarray], list[str]]:
    """The Keras weights for one pair, and the settings in which the two layers differ."""
    module, layer = pair.torch_module, pair.keras_layer
    w = {name: value.detach().cpu().numpy() for name, value in module.named_parameters(recurse=False)}
    if kind == "conv":
        bias = [w["bias"]] if module.bias is not None else []
        return [w["weight"].transpose(2, 3, 1, 0), *bias], conv_differences(module, layer, depthwise=False)
    if kind == "depthwise":
        out, _, kh, kw = w["weight"].shape
        channels = module.in_channels
        problems = conv_differences(module, layer, depthwise=True)
        if module.groups != channels:
            problems.append(f"groups {module.groups} (PyTorch) but a DepthwiseConv2D needs groups = in_channels "
                            f"({channels})")
            return [], problems
        kernel = w["weight"].reshape(channels, out // channels, kh, kw).transpose(2, 3, 0, 1)  # (kh, kw, in, m)
        bias = [w["bias"]] if module.bias is not None else []
        return [kernel, *bias], problems
    if kind == "dense":
        kernel = w["weight"]  # (out, in)
        if pair.flatten_hwc is not None:
            height, width, channels = pair.flatten_hwc
            if height * width * channels == kernel.shape[1]:
                # PyTorch flattened (C, H, W), Keras (H, W, C): reorder the rows the same way.
                kernel = kernel.reshape(-1, channels, height, width).transpose(0, 2, 3, 1).reshape(kernel.shape[0], -1)
        bias = [w["bias"]] if module.bias is not None else []
        problems = []
        if (module.bias is not None) != bool(layer.use_bias):
            problems.append(f"bias {'yes' if module.bias is not None else 'no'} (PyTorch) vs use_bias={layer.use_bias} "
                            "(Keras)")
        return [kernel.T, *bias], problems
    # batchnorm: Keras holds [gamma if scale, beta if center, moving_mean, moving_variance]
    stats = [module.running_mean.detach().cpu().numpy(), module.running_var.detach().cpu().numpy()] \
        if module.track_running_stats else []
    affine = [w["weight"], w["bias"]] if module.affine else []
    return [*affine, *stats], batchnorm_differences(module, layer)


COMPATIBLE = {"conv": ("conv", "depthwise"), "dense": ("dense",), "batchnorm": ("batchnorm",)}


def map_weights(torch_model, keras_model, example=None) -> list[Pair]:
    """Put the PyTorch model's weights into `keras_model`, pair by pair; the pairs, or TwinMappingError."""
    torch_kinds, keras_kinds = _torch_kinds(), _keras_kinds()
    calls = torch_trace(torch_model, _example_input(torch_model.spec) if example is None else example)
    keras_layers = keras_weighted_layers(keras_model)
    counts = (len(calls), len(keras_layers))
    pairs, problems = [], []

    def fail(index: int, reason: str | None):
        """Stop at the first layer that does not fit, naming it (and the settings that differ before it)."""
        if counts[0] != counts[1]:
            if counts[1] > counts[0]:
                layer = keras_layers[index]
                extra = (f"Keras layer {layer.name!r} ({type(layer).__name__}, weighted layer {index}) has no "
                         "PyTorch partner; add it to training/model_torch.py or remove it from training/model_keras.py")
            else:
                name, module = calls[index][:2]
                extra = (f"PyTorch module {name!r} ({type(module).__name__}, weighted layer {index}) has no Keras "
                         "partner; add it to training/model_keras.py or remove it from training/model_torch.py")
            reason = (f"the PyTorch network has {counts[0]} layers with weights, the Keras one {counts[1]}: {extra}"
                      + (f" (at that position: {reason})" if reason else ""))
        if problems:
            reason += "\nsettings that differ before it:\n  " + "\n  ".join(problems)
        raise TwinMappingError(reason)

    for index in range(min(counts)):
        name, module = calls[index][:2]
        layer = keras_layers[index]
        torch_kind, keras_kind = _kind(module, torch_kinds), _kind(layer, keras_kinds)
        pair = Pair(index, name, module, layer)
        if keras_kind not in COMPATIBLE[torch_kind]:
            fail(index, f"{pair.describe()}: a {type(module).__name__} cannot become a {type(layer).__name__}; the "
                        "layers with weights must come in the same order in both network files (PyTorch: the order "
                        "forward() calls them; Keras: the order the graph computes them, an add's operands in order)")
        if keras_kind == "dense":
            pair.flatten_hwc = flatten_shape_before(layer)
        pair.weights, differences = pair_weights(pair, keras_kind)
        problems += [f"{pair.describe()}: {difference}" for difference in differences]
        expected = [tuple(v.shape) for v in layer.weights]
        got = [tuple(v.shape) for v in pair.weights]
        if pair.weights and expected != got:
            fail(index, f"{pair.describe()}: weight shapes {got} (from PyTorch) do not fit the Keras layer's "
                        f"{expected}: the two layers have different sizes (channels, kernel, units)")
        pairs.append(pair)
    if counts[0] != counts[1]:
        fail(min(counts), None)
    if problems:
        raise TwinMappingError("the two networks differ in settings the twin cannot map:\n  " + "\n  ".join(problems))
    for pair in pairs:
        pair.keras_layer.set_weights(pair.weights)
    return pairs


def keras_twin(torch_model):
    """A Keras network (`model_keras.build_model` for the same config and spec) carrying the PyTorch model's weights."""
    from training.model_keras import build_model

    keras_model = build_model(torch_model.config, torch_model.spec)
    map_weights(torch_model, keras_model)
    return keras_model


# ---------- comparing the two ----------

def _torch_predict(torch_model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return torch_model.eval()(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()


def max_abs_diff(torch_model, keras_model, x: np.ndarray) -> float:
    expected = _torch_predict(torch_model, x)
    actual = keras_model.predict(x, verbose=0, batch_size=256)
    return float(np.max(np.abs(expected - actual)))


def twin_max_abs_diff(torch_model, x: np.ndarray, tolerance: float | None = None) -> float:
    """Largest absolute difference between the two frameworks' probabilities on x (N, *item_shape).

    With a `tolerance`, a larger difference raises TwinDivergence naming the first pair that differs.
    """
    keras_model = keras_twin(torch_model)
    diff = max_abs_diff(torch_model, keras_model, x)
    if tolerance is not None and diff > tolerance:
        raise TwinDivergence(diff, tolerance, divergence_report(torch_model, keras_model, x))
    return diff


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return math.inf
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def _as_keras_layout(value, pair: Pair, is_input: bool) -> np.ndarray:
    """A PyTorch activation in Keras' layout: (N, C, H, W) -> (N, H, W, C); flatten rows (C, H, W) -> (H, W, C)."""
    value = value.cpu().numpy()
    if value.ndim == 4:
        return value.transpose(0, 2, 3, 1)
    if is_input and pair.flatten_hwc is not None and value.ndim == 2:
        height, width, channels = pair.flatten_hwc
        if height * width * channels == value.shape[1]:
            return value.reshape(len(value), channels, height, width).transpose(0, 2, 3, 1).reshape(len(value), -1)
    return value


HINTS = {
    "conv": "padding (Keras 'same' vs PyTorch's explicit padding for even kernels or strides > 1), stride, dilation, "
            "groups, bias, the activation fused into the Keras layer",
    "depthwise": "padding, stride, depth multiplier, bias, the activation fused into the Keras layer",
    "dense": "flatten order (PyTorch flattens (C, H, W), Keras (H, W, C)), bias, the activation fused into the "
             "Keras layer",
    "batchnorm": "epsilon (PyTorch 1e-5, Keras 1e-3 by default), momentum, the axis (channels last in Keras)",
}
BETWEEN = ("the weightless operations between them differ: pooling (size, stride, padding), activations, "
           "normalization of the input, flatten/reshape order (PyTorch (C, H, W), Keras (H, W, C)), residual adds "
           "(which tensors are added), dropout left active")


def divergence_report(torch_model, keras_model, x: np.ndarray, tolerance: float = LOCALIZE_TOLERANCE) -> str:
    """Where the two networks first disagree on x: pair by pair, input and output compared."""
    import keras
    import torch

    x = np.asarray(x[: min(len(x), 16)], dtype=np.float32)  # a few images show it
    pairs = map_weights(torch_model, keras_model)
    calls = torch_trace(torch_model, torch.from_numpy(x))
    top_level = {id(layer) for layer in keras_model.layers}
    pairs = [pair for pair in pairs if id(pair.keras_layer) in top_level]
    outputs = [tensor for pair in pairs for tensor in (pair.keras_layer.input, pair.keras_layer.output)]
    values = keras.Model(keras_model.inputs, outputs).predict(x, verbose=0) if pairs else []
    lines, previous = [], "the input"
    for number, pair in enumerate(pairs):
        _, _, torch_in, torch_out = calls[pair.index]
        keras_in, keras_out = values[2 * number], values[2 * number + 1]
        expected_out = _as_keras_layout(torch_out, pair, is_input=False)
        activation = getattr(pair.keras_layer, "activation", None)
        if activation is not None:  # Keras fuses the activation into the layer; PyTorch applies it after the module
            expected_out = keras.ops.convert_to_numpy(activation(keras.ops.convert_to_tensor(expected_out)))
        in_diff = _relative(keras_in, _as_keras_layout(torch_in, pair, is_input=True))
        out_diff = _relative(keras_out, expected_out)
        lines.append(f"  {pair.describe()}: input differs by {in_diff:.1e}, output by {out_diff:.1e}")
        kind = _kind(pair.keras_layer, _keras_kinds())
        if in_diff > tolerance:
            return "\n".join([
                f"the networks diverge first before {pair.describe()}: its input differs by {in_diff:.1e} "
                f"(relative), while {previous} agrees; {BETWEEN}", *lines])
        if out_diff > tolerance:
            return "\n".join([
                f"the networks diverge first at {pair.describe()}: same input, output differs by {out_diff:.1e} "
                f"(relative); check {HINTS[kind]}", *lines])
        previous = f"the output of {pair.keras_layer.name!r}"
    final = _relative(keras_model.predict(x, verbose=0), _torch_predict(torch_model, x))
    return "\n".join([f"every mapped pair agrees (to {tolerance:g}); the probabilities differ by {final:.1e} after "
                      f"{previous}: check the output activation (softmax) and what follows the last layer", *lines])
