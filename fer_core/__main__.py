"""`python -m fer_core ...`: see fer_core.cli."""

import sys

from fer_core.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
