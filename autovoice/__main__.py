"""`python -m autovoice` runs the command line."""

import sys

from autovoice.cli import main

sys.exit(main())
