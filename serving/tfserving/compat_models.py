"""The model side of the TF-Serving-compatible server: versions, loading, Predict, metadata, status.

One `ModelRegistry` per entry of models.config. It polls the model's base path, loads the
versions its version policy asks for (after checking each against the artifact manifest), and
unloads the rest, so a newly exported version is served without a restart. Errors are
`ServingError`s carrying TF Serving's status code and a message naming the problem; the gRPC and
REST fronts (compat_grpc.py, compat_rest.py) turn them into a gRPC status or an HTTP status + `{"error": ...}`.
"""
from __future__ import annotations

import logging
import math
import threading
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np

from core import contract, manifest
from core import spec as specs
from core.spec import MAX_REQUEST_BYTES
from serving.tfserving import configs

log = logging.getLogger("compat_server")
DEFAULT_SIGNATURE = "serving_default"


class ServingError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Servable:
    version: int
    loaded: object  # the tf.saved_model.load result: keeps the variables alive
    signature_defs: dict  # name -> SignatureDef proto, as written in saved_model.pb
    queues: dict = field(default_factory=dict)  # signature name -> batcher.Queue (batching on)
    views: dict = field(default_factory=dict)  # signature name -> SignatureView, made at its first request


@dataclass(frozen=True)
class SignatureView:
    """A signature's inputs and outputs as plain Python values, read once per version: walking a
    SignatureDef's protobuf maps on every request costs more than checking the request itself."""
    inputs: frozenset
    outputs: frozenset
    shapes: dict  # input name -> its sizes, -1 for a free one
    dtypes: dict  # input name -> its DataType enum
    numpy_types: dict  # input name -> the numpy dtype it takes


def load_servable(path: Path, version: int) -> Servable:
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((path / "saved_model.pb").read_bytes())
    return Servable(version, tf.saved_model.load(str(path)), dict(saved.meta_graphs[0].signature_def))


class ModelRegistry:
    """The servable versions of one model, kept in step with its base path by `poll()`."""

    def __init__(self, model_config, artifacts_root: Path | None, scheduler=None):
        self.name = model_config.name
        self.scheduler = scheduler  # batcher.Scheduler when batching is on
        self.base_path = Path(model_config.base_path)
        self.policy = model_config.model_version_policy
        self.artifacts_root = artifacts_root  # None: do not check the manifest (a foreign layout)
        # The input contract of the project's own layout (its spec.json); a foreign layout has none.
        self.spec = specs.load(artifacts_root) if artifacts_root and specs.spec_file(artifacts_root).exists() else None
        self.servables: dict[int, Servable] = {}
        # version -> (why it was refused, the manifest's state then): a refused version is tried
        # again only once the manifest changes (re-recorded), not on every poll.
        self.failed: dict[int, tuple[str, int | None]] = {}
        self.lock = threading.Lock()

    def wanted(self, on_disk: list[int]) -> list[int]:
        """The versions the version policy serves, of those on disk."""
        which = self.policy.WhichOneof("policy_choice")
        if which == "all":
            return on_disk
        if which == "specific":
            return [v for v in on_disk if v in set(self.policy.specific.versions)]
        keep = self.policy.latest.num_versions if which == "latest" else 1  # TF Serving's default: latest 1
        return on_disk[-max(keep, 1):]

    def poll(self) -> None:
        """Load what the policy wants, unload the rest; a version that fails to load is skipped,
        so the previous one keeps being served (TF Serving's availability-preserving behaviour)."""
        on_disk = configs.versions(self.base_path)
        manifest_state = self.manifest_state()
        for version in [v for v, (_, state) in self.failed.items() if state != manifest_state]:
            del self.failed[version]
        while True:
            wanted = self.wanted([v for v in on_disk if v not in self.failed])
            missing = [v for v in wanted if v not in self.servables]
            if not missing:
                break
            for version in missing:
                self.load(version)
        with self.lock:
            for version in [v for v in self.servables if v not in wanted]:
                for queue in self.servables.pop(version).queues.values():
                    self.scheduler.remove_queue(queue)  # requests already queued are still answered
                log.info("unloaded %s version %d", self.name, version)

    def manifest_state(self) -> int | None:
        """When the manifest last changed (None: no manifest to check against)."""
        if self.artifacts_root is None:
            return None
        try:
            return manifest.manifest_path(self.artifacts_root).stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def load(self, version: int) -> None:
        path = self.base_path / str(version)
        state = self.manifest_state()  # read before the check, so a change during it is retried
        try:
            if self.artifacts_root is not None:
                manifest.verify(configs.artifact_id(version), self.artifacts_root)
            servable = load_servable(path, version)
        except Exception as error:  # a bad version must not take the server down
            self.failed[version] = (str(error), state)
            log.error("not serving %s version %d: %s", self.name, version, error)
            return
        with self.lock:
            self.servables[version] = servable
        log.info("serving %s version %d from %s", self.name, version, path)

    def servable(self, version: int | None) -> Servable:
        with self.lock:
            if version is None:
                if not self.servables:
                    raise ServingError(grpc.StatusCode.NOT_FOUND,
                                       f"Servable not found for request: Latest({self.name})")
                return self.servables[max(self.servables)]
            if version not in self.servables:
                raise ServingError(grpc.StatusCode.NOT_FOUND,
                                   f"Servable not found for request: Specific({self.name}, {version})")
            return self.servables[version]

    def status(self, version: int | None) -> list[tuple[int, str]]:
        """[(version, state)] as GetModelStatus reports them."""
        with self.lock:
            versions = sorted(self.servables, reverse=True)
        if version is not None:
            if version not in versions:
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find version {version} of model {self.name}")
            versions = [version]
        if not versions:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {self.name}")
        return [(v, "AVAILABLE") for v in versions]


def queue_of(registry: ModelRegistry, servable: Servable, signature_name: str, function):
    """The batch queue of one version's signature, made at its first request (TF Serving: one per signature)."""
    import tensorflow as tf

    with registry.lock:
        queue = servable.queues.get(signature_name)
        if queue is None:
            def run(inputs: dict) -> dict:
                return {k: v.numpy() for k, v in function(**{n: tf.constant(a) for n, a in inputs.items()}).items()}

            queue = registry.scheduler.add_queue(run, f"{registry.name}:{servable.version}:{signature_name}")
            servable.queues[signature_name] = queue
        return queue


def signature(servable: Servable, name: str):
    """(SignatureDef, callable) for a signature name ("" means serving_default)."""
    name = name or DEFAULT_SIGNATURE
    if name not in servable.signature_defs or name not in servable.loaded.signatures:
        raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                           f'Serving signature name: "{name}" not found in signature def')
    return servable.signature_defs[name], servable.loaded.signatures[name]


def view_of(servable: Servable, name: str) -> SignatureView:
    """The SignatureView of a signature name ("" means serving_default); FAILED_PRECONDITION when unknown."""
    view = servable.views.get(name)
    if view is None:
        import tensorflow as tf

        signature_def, _ = signature(servable, name)
        inputs = dict(signature_def.inputs)
        view = servable.views[name] = SignatureView(
            inputs=frozenset(inputs), outputs=frozenset(signature_def.outputs),
            shapes={n: expected_shape(info) for n, info in inputs.items()},
            dtypes={n: info.dtype for n, info in inputs.items()},
            numpy_types={n: np.dtype(tf.dtypes.as_dtype(info.dtype).as_numpy_dtype) for n, info in inputs.items()})
    return view


def expected_shape(tensor_info) -> list[int]:
    return [d.size for d in tensor_info.tensor_shape.dim]


def check_proto_shape(name: str, proto, shape: list[int], max_batch_size: int | None) -> None:
    """Refuse a TensorProto whose declared shape does not fit, before its values are materialized.

    A proto may declare a shape of billions of elements with one value (TF fills the rest with
    it): checking the declared shape first keeps such a request from allocating gigabytes.
    """
    dims = [d.size for d in proto.tensor_shape.dim]
    if any(d < 0 for d in dims):
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f'input "{name}" has a negative dimension: {dims}')
    if len(dims) != len(shape) or any(s != -1 and s != got for s, got in zip(shape, dims, strict=False)):
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f'input "{name}" must have shape {shape}, got {dims}')
    if max_batch_size and dims and dims[0] > max_batch_size:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"Task size {dims[0]} is larger than maximum input batch size {max_batch_size}")
    values = math.prod(dims)  # Python integers: the product of absurd dims cannot overflow
    if values > MAX_REQUEST_BYTES // 4:  # more values than a request can carry at 4 bytes each, batching off or not
        raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                           f'input "{name}" declares {values:,} values, more than a request may carry')


def contract_of(registry: ModelRegistry, shape: list[int]) -> specs.Spec:
    """The contract a request is checked against: the model's spec, or (a foreign layout) one made
    from the signature's input `shape` alone (any finite value)."""
    if registry.spec is not None:
        return registry.spec
    return specs.Spec({"input": {"shape": shape, "min": float("-inf"), "max": float("inf")},
                       "serving": {"limits": {"max_batch_size": 0, "max_request_bytes": MAX_REQUEST_BYTES}}})


def check_input(name: str, value: np.ndarray, shape: list[int], numpy_type: np.dtype, spec: specs.Spec) -> np.ndarray:
    """Refuse a tensor whose dtype, shape or values do not match the signature (its input's `shape` and
    `numpy_type`) and the spec; returns it as `numpy_type`.

    Unlike the real server, values must also be finite and lie in the spec's range (the one
    contract check, core/contract.py): NaN in, NaN out would be a silent failure.
    """
    if value.dtype.kind not in "iuf":
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           f'input "{name}": expects {numpy_type.name} values, got {value.dtype.name}')
    if value.ndim != len(shape) or any(s != -1 and s != got for s, got in zip(shape, value.shape, strict=False)):
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           f'input "{name}" must have shape {shape}, got {list(value.shape)}')
    if value.shape[0] == 0:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           f'input "{name}" holds no examples (shape {list(value.shape)})')
    try:
        contract.check_batch(value, spec, f'input "{name}"', max_batch=None)
    except contract.ContractError as error:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from None
    if value.dtype == numpy_type:
        return value
    with np.errstate(over="ignore"):
        return value.astype(numpy_type)


def submit(registry: ModelRegistry, version: int | None, signature_name: str, inputs: dict,
           output_filter=(), max_batch_size: int | None = None, blocking: bool = False) -> futures.Future:
    """Check one request and start it: a future of (version served, signature name, {output name: ndarray}).

    With batching the request is queued and this returns at once (a refusal raises here); without, the
    model runs in this call when `blocking`, and `blocking=False` is refused (run it on a model thread).
    """
    import tensorflow as tf

    servable = registry.servable(version)
    _, function = signature(servable, signature_name)
    view = view_of(servable, signature_name)
    if inputs.keys() != view.inputs:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"input names do not match the signature: sent {sorted(inputs)}, "
                           f"expected {sorted(view.inputs)}")
    checked = {name: check_input(name, value, view.shapes[name], view.numpy_types[name],
                                 contract_of(registry, view.shapes[name]))
               for name, value in inputs.items()}
    size = max(len(v) for v in checked.values())
    if max_batch_size and size > max_batch_size:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"Task size {size} is larger than maximum input batch size {max_batch_size}")
    unknown = set(output_filter) - view.outputs
    if unknown:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"output_filter names unknown outputs: {sorted(unknown)}")
    signature_name = signature_name or DEFAULT_SIGNATURE

    def answer(outputs: dict) -> tuple[int, str, dict]:
        wanted = set(output_filter) or set(outputs)
        return servable.version, signature_name, {k: v for k, v in outputs.items() if k in wanted}

    if registry.scheduler is not None:  # merged with other requests; these rows come back
        return chain(queue_of(registry, servable, signature_name, function).submit(checked), answer)
    if not blocking:
        raise RuntimeError("without batching the model runs in the caller: submit(blocking=True) on a model thread")
    tensors = {name: tf.constant(value) for name, value in checked.items()}
    done = futures.Future()
    done.set_result(answer({k: v.numpy() for k, v in function(**tensors).items()}))
    return done


def chain(source: futures.Future, then) -> futures.Future:
    """A future of then(source's result), or of source's error."""
    out = futures.Future()

    def settle(done: futures.Future) -> None:
        error = done.exception()
        if error is not None:
            out.set_exception(error)
            return
        try:
            out.set_result(then(done.result()))
        except Exception as failure:  # then() failed: the caller hears of it
            out.set_exception(failure)

    source.add_done_callback(settle)
    return out
