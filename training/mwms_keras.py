"""One worker of TensorFlow MultiWorkerMirroredStrategy training, configured by TF_CONFIG.

    TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:12345", "127.0.0.1:12346"]},
               "task": {"type": "worker", "index": 0}}' \
        python -m training.mwms_keras --stage artifacts/run/distributed --epochs 25

`make train-distributed` (training/distributed.py) starts one per worker with its TF_CONFIG and
then turns the chief's model into a normal trained model. Every worker reads its own shard
(training/train_keras.py); the chief (worker 0) writes `<stage>/tensorflow.keras` and
`<stage>/tensorflow-metrics.json`. With GPUs on one machine, `tf.distribute.MirroredStrategy`
(one process, one replica per GPU) replaces this; across GPU machines this strategy uses NCCL.
"""
from __future__ import annotations

import json
import os

from core import paths
from training import distributed


def main(argv=None) -> None:
    args = distributed.worker_parser(__doc__).parse_args(argv)
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"] if "TF_CONFIG" in os.environ else 0
    distributed.write_pid(args.stage, "tensorflow", index)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    # The strategy first: it starts this worker's gRPC server and waits for the others.
    strategy = tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING,
            timeout_seconds=args.collective_timeout))
    root, config, splits, spec = distributed.worker_inputs(args)
    from training import train_keras

    model, metrics = train_keras.train(splits, config, spec, log_dir=paths.tensorboard_dir("tensorflow", root),
                                       strategy=strategy, **distributed.worker_hyperparameters(args))
    if strategy.cluster_resolver.task_id == 0:
        model.save(args.stage / "tensorflow.keras")
        distributed.save_metrics(args.stage, "tensorflow", metrics, world=strategy.num_replicas_in_sync)
    print(f"tensorflow worker {index}/{strategy.num_replicas_in_sync}: done", flush=True)


if __name__ == "__main__":
    main()
