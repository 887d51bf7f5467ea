"""``python -m medsynth``: the medsynth command (see medsynth.cli)."""
from .cli import main

raise SystemExit(main())
