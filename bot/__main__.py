"""`python -m bot` is `petitionbot`."""

import sys

from bot.cli import main

sys.exit(main())
