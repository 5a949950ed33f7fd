"""The one place that knows where the project lives; configs/paths/ builds every other path from it."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROJECT_ROOT = Path(os.environ.setdefault("HDC_ROOT", str(Path(__file__).resolve().parents[2])))
CONFIG_DIR = PROJECT_ROOT / "configs"


@contextmanager
def written_atomically(path: Path) -> Iterator[Path]:
    """A temporary file to write `path`'s content to; it replaces `path` only once written, so an
    interrupted run never leaves a truncated cache or checkpoint file behind (a failed write removes it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield partial
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)
