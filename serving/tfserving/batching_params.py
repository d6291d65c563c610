"""TF Serving's batching parameters file (`--batching_parameters_file`), read as the real binary reads it.

    from serving.tfserving import batching_params
    params = batching_params.load(Path("batching.config"))   # BatchingParameters, defaults filled in
    params.max_batch_size, params.allowed_batch_sizes, ...

The file is a text-format `BatchingParameters` protobuf (tensorflow_serving/servables/tensorflow/
session_bundle_config.proto). That message is not in the tensorflow-serving-api package, so this
module declares it here, field for field and number for number, and parses with protobuf's own
text parser: comments, `allowed_batch_sizes: [8, 16]` or repeated lines, and an unknown or
misspelt field is an error, as for tensorflow_model_server.

Defaults are the real server's when a field is absent (bundle_factory_util.h GetQueueOptions and
shared_batch_scheduler.h QueueOptions): max_batch_size 1000, batch_timeout_micros 0,
max_enqueued_batches 10, num_batch_threads one per core, no allowed_batch_sizes, no padding of
variable-length inputs. The checks are the ones TF Serving makes when it creates the queues
(the last allowed size equal to max_batch_size, positive sizes, a non-negative timeout), with its
messages. `enable_large_batch_splitting` is parsed but refused: this server does not
split one request across batches.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# TF Serving's names for the pool of batch threads: its default when a file names none.
DEFAULT_THREAD_POOL = "model_server_batch_threads"


class BatchingConfigError(ValueError):
    """A batching parameters file the real server would refuse too (the message says why)."""


@dataclass(frozen=True)
class BatchingParameters:
    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = os.cpu_count() or 1
    thread_pool_name: str = DEFAULT_THREAD_POOL
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False

    def padded_size(self, size: int) -> int:
        """The batch size `size` rows are padded up to: the smallest allowed size >= size (TF Serving's
        RoundToLowestAllowedBatchSize); `size` itself when none is set or none is large enough."""
        return next((allowed for allowed in self.allowed_batch_sizes if allowed >= size), size)

    def describe(self) -> str:
        allowed = f", allowed_batch_sizes {list(self.allowed_batch_sizes)}" if self.allowed_batch_sizes else ""
        return (f"max_batch_size {self.max_batch_size}, batch_timeout_micros {self.batch_timeout_micros}, "
                f"max_enqueued_batches {self.max_enqueued_batches}, num_batch_threads {self.num_batch_threads}"
                f"{allowed}{', pad_variable_length_inputs' if self.pad_variable_length_inputs else ''}")


@lru_cache(maxsize=1)
def message_class():
    """The BatchingParameters protobuf class, declared from session_bundle_config.proto's field numbers."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    proto = descriptor_pb2.FileDescriptorProto(name="tensorflow_serving/servables/tensorflow/batching_parameters.proto",
                                               package="tensorflow.serving", syntax="proto3",
                                               dependency=["google/protobuf/wrappers.proto"])
    message = proto.message_type.add(name="BatchingParameters")
    field = descriptor_pb2.FieldDescriptorProto
    for name, number, wrapper in [("max_batch_size", 1, "Int64Value"), ("batch_timeout_micros", 2, "Int64Value"),
                                  ("max_enqueued_batches", 3, "Int64Value"), ("num_batch_threads", 4, "Int64Value"),
                                  ("thread_pool_name", 5, "StringValue"),
                                  ("enable_large_batch_splitting", 8, "BoolValue"),
                                  ("max_execution_batch_size", 9, "Int64Value")]:
        message.field.add(name=name, number=number, type=field.TYPE_MESSAGE, label=field.LABEL_OPTIONAL,
                          type_name=f".google.protobuf.{wrapper}")
    message.field.add(name="allowed_batch_sizes", number=6, type=field.TYPE_INT64, label=field.LABEL_REPEATED)
    message.field.add(name="pad_variable_length_inputs", number=7, type=field.TYPE_BOOL, label=field.LABEL_OPTIONAL)
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


def parse(text: str, source: str = "the batching parameters") -> BatchingParameters:
    """BatchingParameters from a text proto; BatchingConfigError for what TF Serving would refuse."""
    from google.protobuf import text_format

    try:
        proto = text_format.Parse(text, message_class()())
    except text_format.ParseError as error:
        raise BatchingConfigError(f"{source}: not a BatchingParameters text proto: {error}") from None
    if proto.HasField("enable_large_batch_splitting") and proto.enable_large_batch_splitting.value:
        raise BatchingConfigError(f"{source}: enable_large_batch_splitting is not supported by the "
                                  "TF-Serving-compatible server (a request larger than max_batch_size is refused, "
                                  "as without it)")
    defaults = BatchingParameters()
    params = BatchingParameters(
        **{name: getattr(proto, name).value if proto.HasField(name) else getattr(defaults, name)
           for name in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads",
                        "thread_pool_name")},
        allowed_batch_sizes=tuple(proto.allowed_batch_sizes),
        pad_variable_length_inputs=proto.pad_variable_length_inputs)
    check(params, source)
    return params


def check(params: BatchingParameters, source: str) -> None:
    """TF Serving's checks when it creates the batch scheduler and a model's queue, with its messages."""
    problems = []
    if params.num_batch_threads < 1:
        problems.append(f"num_batch_threads must be positive; was {params.num_batch_threads}")
    if params.max_batch_size < 1:
        problems.append(f"input_batch_size_limit must be positive; was {params.max_batch_size}")
    if params.batch_timeout_micros < 0:
        problems.append(f"batch_timeout_micros must be non-negative; was {params.batch_timeout_micros}")
    if params.max_enqueued_batches < 1:
        problems.append(f"max_enqueued_batches must be positive; was {params.max_enqueued_batches}")
    # Without large batch splitting TF Serving checks only the last entry (batching_session.cc), and pads
    # a batch up to the first entry at least its size: padded_size() does the same.
    allowed = params.allowed_batch_sizes
    if allowed and allowed[-1] != params.max_batch_size:
        problems.append("Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
                        f"{allowed[-1]}; expected {params.max_batch_size}")
    if problems:
        raise BatchingConfigError(f"{source}: " + "; ".join(problems))


def load(path: Path) -> BatchingParameters:
    return parse(Path(path).read_text(), str(path))
