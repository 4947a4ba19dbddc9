"""``python -m npcbridge.testing.fake_upstream`` (see :mod:`.cli`)."""

import sys

from .cli import main

sys.exit(main())
