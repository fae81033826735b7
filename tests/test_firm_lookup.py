"""The month → firm lookup an office runs 36 000 times (issue 12): the index read_settings' list keeps
gives exactly the sheet-order answer of the plain search — a branch row before the firm's own row,
the first of two rows with the same VKN, rows added after the first lookup."""

from __future__ import annotations

import itertools

from edefter_helper.engine.model import MonthKey
from edefter_helper.settings import Firm, Firms, firm_for


def _firm(name, vkn, branch=""):
    return Firm(name, vkn, branch, "", "Hedef", "", True)


ROWS = [_firm("A şube 0001", "1111111111", "0001"), _firm("A", "1111111111"), _firm("A again", "1111111111"),
        _firm("A şube 0001 again", "1111111111", "0001"), _firm("B only branch", "2222222222", "0002"),
        _firm("C", "3333333333")]
KEYS = [MonthKey(v, b, "2024-01") for v, b in itertools.product(
    ["1111111111", "2222222222", "3333333333", "4444444444"], ["0000", "0001", "0002", "0003"])]


def test_the_index_answers_as_the_plain_search_does():
    indexed = Firms(ROWS)
    for key in KEYS:
        assert firm_for(key, indexed) is firm_for(key, list(ROWS)), key
    assert firm_for(MonthKey("1111111111", "0001", "2024-01"), indexed).name == "A şube 0001"
    assert firm_for(MonthKey("1111111111", "0009", "2024-01"), indexed).name == "A"
    assert firm_for(MonthKey("2222222222", "0000", "2024-01"), indexed) is None


def test_rows_added_after_a_lookup_are_found():
    indexed = Firms(ROWS[:1])
    key = MonthKey("3333333333", "0000", "2024-01")
    assert firm_for(key, indexed) is None
    indexed.append(ROWS[-1])
    assert firm_for(key, indexed) is ROWS[-1]
