"""Strict month addresses for the storage server: ASCII digits only.

The engine's name helpers use `\\d`, which also matches Arabic-Indic (٠١٢…), full-width (０１２…) and
other Unicode digits. A storage address becomes a database key and a folder name, so the server
accepts exactly the characters the protocol documents and nothing that merely looks like a digit.
"""

from __future__ import annotations

import re

from edefter_helper.engine.model import MonthKey

_VKN = re.compile(r"[0-9]{10,11}")
_BRANCH = re.compile(r"[0-9]{4}")
_PERIOD = re.compile(r"20[0-9]{2}-(?:0[1-9]|1[0-2])")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _full(pattern: re.Pattern, text) -> bool:
    return isinstance(text, str) and text.isascii() and pattern.fullmatch(text) is not None


def valid_vkn(text) -> bool:
    """VKN (10 digits) or TCKN (11 digits), ASCII only."""
    return _full(_VKN, text)


def valid_branch(text) -> bool:
    return _full(_BRANCH, text)


def valid_period(text) -> bool:
    """YYYY-MM, 2000-01 … 2099-12, ASCII only."""
    return _full(_PERIOD, text)


def valid_sha256(text) -> bool:
    return _full(_SHA256, text)


def month_key(vkn, branch, period) -> MonthKey | None:
    """The MonthKey for a strictly valid address, else None."""
    if valid_vkn(vkn) and valid_branch(branch) and valid_period(period):
        return MonthKey(vkn, branch, period)
    return None
