"""What the container commands share at the command line: known failures as one clear line."""
from __future__ import annotations

import subprocess
import sys

from core.spec import SpecError
from deploy.containers import artifacts, preflight


def guarded(step, *errors: type) -> None:
    """Run step(); what is missing, a bad artifact, a failed command (or one of `errors`) exits 1 with its message."""
    try:
        step()
    except (preflight.Missing, artifacts.ArtifactError, SpecError, *errors) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    except subprocess.CalledProcessError as error:
        print(f"error: `{' '.join(error.cmd[:3])} ...` exited with status {error.returncode}", file=sys.stderr)
        raise SystemExit(1) from None
