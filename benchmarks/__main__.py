"""`python -m benchmarks <tool> [args]`: every measuring tool behind one command (the table: tools.py)."""
import sys

from benchmarks import tools

sys.exit(tools.main())
