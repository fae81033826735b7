"""What the control workbook says to do: firms, targets, and the identity a status belongs to.

Read from any `Book` (the workbook file, the live workbook, a read-only snapshot); nothing here
writes. The actions and the background agent take their settings from here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from edefter_helper.engine.model import MonthKey
from edefter_helper.engine.names import NO_BRANCH, valid_branch, valid_identifier
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.book import Book


@dataclass
class Firm:
    name: str
    vkn: str
    branch: str  # "" = every branch of this VKN without a row of its own
    folder: str
    target: str
    user: str
    auto: bool
    taxpayer: str = "tüzel"  # Mükellef Türü: gerçek / tüzel (berat deadlines)
    cadence: str = "aylık"  # Berat Dönemi: aylık / 3 aylık
    owner: str = ""  # Sorumlu: whose desk the firm is on
    row: int = 0  # its Firmalar row (for messages)
    # every Hedef of the row with its Kullanıcı Adı, in the order typed ("İzibiz; Arşiv S3; NAS");
    # target/user above are the first pair. Empty or one pair: the usual one-target firm
    copies: tuple[tuple[str, str], ...] = ()
    several: bool = False  # a copy taken from a row with several Hedefs (its messages name the Hedef)

    def per_target(self) -> list[Firm]:
        """One Firm per Hedef of the row, each sent, asked and kept in the journal on its own (keyed by
        target_identity of that Firm); the firm itself when it has one Hedef."""
        if len(self.copies) <= 1:
            return [self]
        return [replace(self, target=t, user=u, copies=((t, u),), several=True) for t, u in self.copies]

    def for_target(self, name: str) -> Firm:
        """The copy for Hedef `name` (restore --source); a Hedef not in the row gets the first user."""
        for c in self.per_target():
            if c.target == name:
                return c
        return replace(self, target=name, copies=((name, self.user),), several=len(self.copies) > 1)


@dataclass
class TargetConfig:
    name: str
    kind: str
    address: str
    description: str


class SettingsError(Exception):
    """The workbook cannot be used as it is; Turkish message."""


def _s(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


_YES = {"evet", "e", "yes", "y", "1", "true", "doğru", "x"}
_NO = {"hayır", "hayir", "h", "no", "n", "0", "false", "yanlış"}


def check_digit_problem(identifier: str) -> str | None:
    """A VKN (10 digits) or TCKN (11) whose check digits do not add up: a typo, most often. Said, never
    refused — GİB is the authority, and the run goes on with the number as typed."""
    try:
        from stdnum.tr import tckimlik, vkn
    except ImportError:  # python-stdnum is a dependency; an old install without it only loses the warning
        return None
    if len(identifier) == 10 and not vkn.is_valid(identifier):
        return f"VKN {identifier} kontrol hanesi tutmuyor: yanlış yazılmış olabilir."
    if len(identifier) == 11 and not tckimlik.is_valid(identifier):
        return f"TCKN {identifier} kontrol haneleri tutmuyor: yanlış yazılmış olabilir."
    return None


def read_settings(book: Book) -> tuple[list[Firm], dict[str, TargetConfig], list[str]]:
    notes: list[str] = []
    targets: dict[str, TargetConfig] = {}
    for i, row in enumerate(book.read_rows(L.TARGETS), start=2):
        name, kind = _s(row.get("name")), _s(row.get("kind")).lower()
        if not name:
            continue
        from edefter_helper.targets import registry

        spec = registry.get(kind)
        if spec is None:
            notes.append(f"Hedefler satır {i}: '{name}' için Tür '{row.get('kind')}' geçersiz "
                         f"({', '.join(registry.kind_names())} olmalı).")
            continue
        kind = spec.kind
        targets[name] = TargetConfig(name, kind, _s(row.get("address")),
                                     _s(row.get("description")) or L.DEFAULT_DESCRIPTION)
    firms: list[Firm] = []
    seen: dict[tuple[str, str], int] = {}
    for i, row in enumerate(book.read_rows(L.FIRMS), start=2):
        vkn = _s(row.get("vkn"))
        name = _s(row.get("name")) or vkn
        if not vkn and not _s(row.get("folder")):
            continue
        branch = _s(row.get("branch"))
        if branch.isdigit() and len(branch) < 4:
            branch = branch.zfill(4)  # Excel drops leading zeros of numbers
        typed = vkn
        if vkn.isdigit() and len(vkn) in (9, 10) and not valid_identifier(vkn):
            vkn = vkn.zfill(10)
        if not valid_identifier(vkn):
            notes.append(f"Firmalar satır {i} ({name}): VKN/TCKN '{vkn}' geçersiz (VKN 10, TCKN 11 hane).")
            continue
        if branch and not valid_branch(branch):
            notes.append(f"Firmalar satır {i} ({name}): Şube No '{branch}' 4 haneli olmalı.")
            continue
        if branch == NO_BRANCH:
            branch = ""
        bad_digit = check_digit_problem(vkn) or ""
        if bad_digit and typed != vkn:  # Excel drops a leading zero; a digit left out looks the same
            bad_digit = (f"VKN/TCKN '{typed}' {len(typed)} haneli; başına 0 eklenerek {vkn} okundu, ancak "
                         f"kontrol hanesi tutmuyor: bir hane eksik yazılmış olabilir.")
        if bad_digit:
            notes.append(f"Firmalar satır {i} ({name}): {bad_digit}")
        first = seen.setdefault((vkn, branch), i)
        if first != i:
            notes.append(f"Firmalar satır {i} ({name}): VKN/TCKN {vkn}" + (f" şube {branch}" if branch else "")
                         + f" satır {first}'de de var; bu ayların ayarları satır {first}'den alınır.")
        auto_text = _s(row.get("auto"))
        auto = auto_text.casefold() not in _NO
        if auto_text and auto_text.casefold() not in _YES | _NO:
            notes.append(f"Firmalar satır {i} ({name}): Otomatik Yedekleme '{auto_text}' anlaşılamadı "
                         f"({L.YES} ya da {L.NO} olmalı); {L.YES} sayıldı.")
        from edefter_helper.deadlines import normalize_cadence, normalize_taxpayer

        try:
            taxpayer = normalize_taxpayer(_s(row.get("taxpayer")) or None, "gerçek" if len(vkn) == 11 else "tüzel")
            cadence = normalize_cadence(_s(row.get("cadence")) or None)
        except ValueError as exc:
            notes.append(f"Firmalar satır {i} ({name}): {exc}")
            taxpayer, cadence = ("gerçek" if len(vkn) == 11 else "tüzel"), "aylık"
        pairs, said = split_targets(_s(row.get("target")), _s(row.get("user")), targets)
        notes.extend(f"Firmalar satır {i} ({name}): {w}" for w in said)
        firms.append(Firm(name, vkn, branch, _s(row.get("folder")), pairs[0][0], pairs[0][1],
                          auto, taxpayer, cadence, _s(row.get("owner")), i, copies=tuple(pairs)))
    return Firms(firms), targets, notes


TARGET_SEPARATOR = ";"  # Firmalar: "İzibiz; Arşiv S3; NAS" (Turkish Excel's own list separator)


def _split(text: str, known=()) -> list[str]:
    parts = [p.strip() for p in text.replace("\n", TARGET_SEPARATOR).split(TARGET_SEPARATOR)]
    if len(parts) == 1 and "," in text and text not in known:
        parts = [p.strip() for p in text.split(",")]  # "İzibiz, NAS": a comma typed for ';'
    return parts


def split_targets(target_text: str, user_text: str, targets: dict) -> tuple[list[tuple[str, str]], list[str]]:
    """A Firmalar row's Hedef and Kullanıcı Adı cells as (Hedef, user) pairs, and what to say about them
    (Turkish). Kullanıcı Adı is one name for every Hedef, or one per Hedef in the same order, or one per
    Hedef that needs a user (klasör needs none), in the same order; '-' or an empty place = no user."""
    names = [n for n in _split(target_text, targets) if n] or [target_text]
    if len(names) == 1:  # the usual row: the cells exactly as typed
        return [(names[0], user_text)], []
    said: list[str] = []
    unique = list(dict.fromkeys(names))
    if len(unique) < len(names):
        said.append("Hedef sütununda aynı hedef birden çok kez yazılmış; bir kez sayıldı.")
    unknown = [n for n in unique if n not in targets]
    if unknown:
        said.append("Hedef " + ", ".join(f"'{n}'" for n in unknown) + " Hedefler sayfasında yok; "
                    + ("bu hedefe" if len(unknown) == 1 else "bu hedeflere") + " gönderilemez (adları ';' ile "
                    "ayırın, Hedefler'deki gibi yazın).")
    users = [("" if u == "-" else u) for u in _split(user_text)] if user_text else []
    if len(users) <= 1:
        pairs = [(n, users[0] if users else "") for n in names]
    elif len(users) == len(names):
        pairs = list(zip(names, users))
    else:
        from edefter_helper.targets import registry

        def needs(n: str) -> bool:
            spec = registry.get(targets[n].kind) if n in targets else None
            return spec is None or spec.needs_password

        needing = [n for n in names if needs(n)]
        if len(users) == len(needing):
            given = iter(users)
            pairs = [(n, next(given) if needs(n) else "") for n in names]
        else:
            said.append(f"Kullanıcı Adı sayısı ({len(users)}) Hedef sayısıyla ({len(names)}) uyuşmuyor: ya tek bir "
                        f"ad yazın (her hedef için) ya da her hedefe sırasıyla bir ad, ';' ile ayırarak (klasör "
                        f"hedefi için '-'). Sırayla eşlendi; eşi olmayan hedefte Kullanıcı Adı boş.")
            pairs = [(n, users[k] if k < len(users) else "") for k, n in enumerate(names)]
    seen, out = set(), []
    for n, u in pairs:
        if n not in seen:
            seen.add(n)
            out.append((n, u))
    return out, said


def read_overrides(book: Book) -> tuple[list, list[str]]:
    """GİB's deadline extensions typed on Takvim Ayarları (each row checked; a bad row is a note)."""
    from edefter_helper.deadlines import Override

    out, notes = [], []
    for i, row in enumerate(book.read_rows(L.CALENDAR_SETTINGS), start=2):
        if not _s(row.get("periods")):
            continue
        try:
            out.append(Override(_s(row.get("periods")), _s(row.get("taxpayers")) or None, row.get("due"),
                                _s(row.get("source"))))
        except ValueError as exc:
            notes.append(f"Takvim Ayarları satır {i}: {exc}")
    return out, notes


class Firms(list):
    """The Firmalar rows in sheet order, with the month → firm lookup built on first use: an office
    asks it for each of 36 000 months (a search through 300 firms each time took seconds)."""

    _index: tuple[int, dict] | None = None

    def lookup(self, key: MonthKey) -> Firm | None:
        if self._index is None or self._index[0] != len(self):  # rebuilt if rows were added since
            by_vkn: dict[str, tuple[dict[str, Firm], list[Firm]]] = {}
            for f in self:
                branches, plain = by_vkn.setdefault(f.vkn, ({}, []))
                if f.branch:
                    branches.setdefault(f.branch, f)
                elif not plain:
                    plain.append(f)
            self._index = (len(self), by_vkn)
        found = self._index[1].get(key.vkn)
        if found is None:
            return None
        return found[0].get(key.branch) or (found[1][0] if found[1] else None)


def firm_for(key: MonthKey, firms: list[Firm]) -> Firm | None:
    """The firm a month belongs to: its VKN with that branch, else its VKN without a branch."""
    if isinstance(firms, Firms):
        return firms.lookup(key)
    for f in firms:
        if f.vkn == key.vkn and f.branch and f.branch == key.branch:
            return f
    for f in firms:
        if f.vkn == key.vkn and not f.branch:
            return f
    return None


def target_identity(cfg: TargetConfig | None, firm: Firm) -> str:
    """What a month's status belongs to: the target's kind, address and user — not the Hedef's
    display name, so pointing a Hedef at another server or folder never carries a status over."""
    if cfg is None:
        return f"?|{firm.target or '-'}|"
    if cfg.kind == "klasör":
        address = os.path.normcase(os.path.abspath(cfg.address)) if cfg.address else ""
        return f"klasör|{address}|"
    return f"{cfg.kind}|{' '.join(_normal_url(a) for a in cfg.address.split())}|{firm.user}"


def _normal_url(address: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(address)
    except ValueError:
        return address
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), parts.query, ""))


def describe_target(identity: str) -> str:
    kind, address, user = (identity.split("|") + ["", ""])[:3]
    return f"{kind} {address}" + (f" ({user})" if user else "")


def read_channels(book: Book) -> tuple[list, list[str]]:
    """Notification channels typed on the Bildirimler sheet (Olaylar / Firmalar: comma-separated;
    empty = all)."""
    from edefter_helper.notify import EVENTS, Channel

    out, notes = [], []
    for i, row in enumerate(book.read_rows(L.NOTIFY), start=2):
        kind, address = _s(row.get("kind")), _s(row.get("address"))
        if not kind and not address:
            continue
        events = {e.strip().lower() for e in _s(row.get("events")).replace(";", ",").split(",") if e.strip()}
        unknown = events - EVENTS
        if unknown:
            notes.append(f"Bildirimler satır {i}: bilinmeyen olay {', '.join(sorted(unknown))} "
                         f"({', '.join(sorted(EVENTS))} olabilir).")
            events -= unknown
        firms = {f.strip() for f in _s(row.get("firms")).replace(";", ",").split(",") if f.strip()}
        out.append(Channel(kind, address, events, firms, _s(row.get("user")), _s(row.get("sender"))))
    return out, notes
