"""One rank of PyTorch DistributedDataParallel training (gloo), started by torchrun.

    torchrun --nnodes 1 --nproc-per-node 2 --rdzv-backend c10d --rdzv-endpoint 127.0.0.1:29400 \
        -m training.ddp_torch --stage artifacts/run/distributed --epochs 25

`make train-distributed` (training/distributed.py) runs this for you and then turns rank 0's
checkpoint into a normal trained model. torchrun sets RANK, WORLD_SIZE, MASTER_ADDR/PORT; every
rank trains on its own shard (training/train_torch.py); rank 0 writes `<stage>/torch.pt` and
`<stage>/torch-metrics.json`. On a machine with GPUs use the nccl backend (`--backend nccl`) and
one rank per GPU (the model would also have to move to `cuda:<LOCAL_RANK>`).
"""
from __future__ import annotations

import datetime
import os

from core import paths
from training import distributed


def main(argv=None) -> None:
    args = distributed.worker_parser(__doc__).parse_args(argv)
    import torch
    import torch.distributed as dist

    torch.set_num_threads(args.threads)
    dist.init_process_group(args.backend, timeout=datetime.timedelta(seconds=args.collective_timeout))
    rank = dist.get_rank()
    distributed.write_pid(args.stage, "torch", rank)
    root, config, splits, spec = distributed.worker_inputs(args)
    from training import train_torch
    from training.model_torch import save_checkpoint

    try:
        model, metrics = train_torch.train(splits, config, spec, log_dir=paths.tensorboard_dir("torch", root),
                                           **distributed.worker_hyperparameters(args))
        if rank == 0:
            save_checkpoint(model, spec, args.stage / "torch.pt", extra={"metrics": metrics})
            distributed.save_metrics(args.stage, "torch", metrics, world=dist.get_world_size())
    finally:
        dist.destroy_process_group()
    print(f"torch rank {rank}/{int(os.environ.get('WORLD_SIZE', 1))}: done", flush=True)


if __name__ == "__main__":
    main()
