"""``python -m simlm_haystack.cli`` (as ``torchrun -m`` starts it)."""

import sys

from simlm_haystack.cli import main

sys.exit(main())
