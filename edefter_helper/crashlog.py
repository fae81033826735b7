"""Where an unexpected fault's details go: its traceback, with the time, appended to hata.log in the data
folder. Never the user's screen: the faces show one Turkish line naming this file."""

from __future__ import annotations

import traceback
from datetime import datetime

from edefter_helper import paths

UNWRITTEN = "(günlük yazılamadı)"


def record(exc: BaseException | None = None, context: str = "") -> str:
    """Append `exc`'s traceback (the one being handled when None) to hata.log; its path, or UNWRITTEN."""
    try:
        log = paths.data_dir() / "hata.log"
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"--- {datetime.now().astimezone().isoformat(timespec='seconds')} {context}\n")
            if exc is None:
                traceback.print_exc(file=f)
            else:
                traceback.print_exception(type(exc), exc, exc.__traceback__, file=f)
        return str(log)
    except OSError:
        return UNWRITTEN
