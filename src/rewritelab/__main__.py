"""`python -m rewritelab` is the same as the `rewritelab` console script."""

import sys

from rewritelab.cli import main

sys.exit(main())
