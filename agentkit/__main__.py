"""``python -m agentkit``: the same as the ``agentkit`` command."""

import sys

from agentkit.cli import main

if __name__ == "__main__":
    sys.exit(main())
