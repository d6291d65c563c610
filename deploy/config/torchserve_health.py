"""TorchServe container health check: exit 0 once the model has a READY worker.

    python health.py MANAGEMENT_URL MODEL KEY_FILE
    python health.py http://127.0.0.1:8081 digits /tmp/key_file.json

Runs inside the container with the image's Python and the standard library only. With token
authorization on (compose, docker) it sends the management key from the key file TorchServe
wrote at start-up; where TorchServe runs with --disable-token-auth (Kubernetes) there is no key
file and none is sent. The management API is bound to the container's loopback, so only this
check reaches it.
"""
import json
import os
import sys
import urllib.request


def main(management: str, model: str, key_file: str) -> int:
    try:
        headers = {}
        if os.path.exists(key_file):
            with open(key_file) as handle:
                headers["Authorization"] = "Bearer " + json.load(handle)["management"]["key"]
        request = urllib.request.Request(f"{management}/models/{model}", headers=headers)
        with urllib.request.urlopen(request, timeout=3) as answer:
            workers = json.load(answer)[0]["workers"]
    except (OSError, ValueError, KeyError, IndexError) as error:
        print(f"not ready: {error}", file=sys.stderr)
        return 1
    if any(worker.get("status") == "READY" for worker in workers):
        return 0
    print(f"not ready: no READY worker for {model!r}: {[w.get('status') for w in workers]}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
