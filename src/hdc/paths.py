"""The one place that knows where the project lives; configs/paths/ builds every other path from it."""

import os
from pathlib import Path

PROJECT_ROOT = Path(os.environ.setdefault("HDC_ROOT", str(Path(__file__).resolve().parents[2])))
CONFIG_DIR = PROJECT_ROOT / "configs"
