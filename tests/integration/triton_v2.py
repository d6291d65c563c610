"""Drive one V2 endpoint with tritonclient, the standard Open Inference Protocol client; print JSON.

Runs in .venv-kserve (tritonclient needs protobuf<7); tests/integration/test_kserve.py calls it:

    .venv-kserve/bin/python -m tests.integration.triton_v2 --protocol rest --url 127.0.0.1:8090 \\
        --model digits --input image --output probabilities --batch '[[[0, ...]]]'
"""
from __future__ import annotations

import argparse
import json

import numpy as np


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", choices=("rest", "grpc"), required=True)
    parser.add_argument("--url", required=True, help="host:port")
    parser.add_argument("--model", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--batch", required=True, help="the images as JSON nested lists")
    args = parser.parse_args(argv)
    if args.protocol == "rest":
        import tritonclient.http as triton
    else:
        import tritonclient.grpc as triton
    client = triton.InferenceServerClient(url=args.url)
    batch = np.asarray(json.loads(args.batch), dtype=np.float32)
    tensor = triton.InferInput(args.input, list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch)
    result = client.infer(args.model, [tensor], outputs=[triton.InferRequestedOutput(args.output)])
    metadata = client.get_model_metadata(args.model)
    inputs = metadata["inputs"] if isinstance(metadata, dict) else \
        [{"name": i.name, "datatype": i.datatype, "shape": list(i.shape)} for i in metadata.inputs]
    print(json.dumps({
        "live": client.is_server_live(), "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(args.model),
        "metadata_inputs": [[i["name"], i["datatype"], [int(d) for d in i["shape"]]] for i in inputs],
        "probabilities": result.as_numpy(args.output).tolist()}))


if __name__ == "__main__":
    main()
