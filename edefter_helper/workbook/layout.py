"""The control workbook's sheets and columns, defined once and used by every face
(headless openpyxl, the xlwings adapter, the template builder)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from edefter_helper import status


@dataclass(frozen=True)
class Column:
    key: str  # stable name used in code
    header: str  # Turkish header shown in row 1
    width: float = 14
    number_format: str | None = None
    choices: tuple[str, ...] = ()  # drop-down validation
    # a list from elsewhere: "target-kinds" (the target registry, at build time) or "target-names"
    # (the Hedefler sheet's names, through the defined name TARGET_LIST: targets added later appear)
    choices_from: str | None = None
    hint: tuple[str, str] | None = None  # (title, text) Excel shows when a cell of the column is selected
    old_headers: tuple[str, ...] = ()  # what older workbooks call it: still read (workbook upgrade renames it)


@dataclass(frozen=True)
class Sheet:
    name: str
    columns: tuple[Column, ...]

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]

    def index(self, key: str) -> int:
        """0-based column index of a key."""
        for i, c in enumerate(self.columns):
            if c.key == key:
                return i
        raise KeyError(key)


class SheetRows(Sequence):
    """A sheet's rows held as tuples in the sheet's column order and read as the dicts every Book takes:
    an office's 36 000 rows as dicts cost ~1 KB each, as tuples about a third. Equal values of a
    column that repeats (a name, a status, a month's message, a time to the second) are held once."""

    UNIQUE = frozenset({"sha256", "reference"})  # one per month: nothing to share

    def __init__(self, sheet: Sheet, rows: Iterable[dict] = ()):
        self.sheet = sheet
        self.keys = tuple(c.key for c in sheet.columns)
        self.tuples: list[tuple] = []
        self._shared = [i for i, k in enumerate(self.keys) if k not in self.UNIQUE]
        self._pool: dict = {}
        self.extend(rows)

    def extend(self, rows: Iterable[dict]) -> None:
        keys, shared, pool, out = self.keys, self._shared, self._pool, self.tuples
        for row in rows:
            values = [row.get(k) for k in keys]
            for i in shared:
                v = values[i]
                if v is not None:
                    try:  # keyed with the type: 1, 1.0 and True are equal but are not the same cell
                        values[i] = pool.setdefault((v.__class__, v), v)
                    except TypeError:  # an unhashable value is kept as it is
                        pass
            out.append(tuple(values))

    def append_rows(self, other: "SheetRows") -> None:
        """Another SheetRows of the same sheet after these rows (its tuples as they are)."""
        if other.sheet != self.sheet:
            raise ValueError(f"{other.sheet.name} rows cannot follow {self.sheet.name} rows")
        self.tuples.extend(other.tuples)

    def sort(self, key: Callable[[tuple], object]) -> None:
        self.tuples.sort(key=key)

    def __len__(self) -> int:
        return len(self.tuples)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [dict(zip(self.keys, t)) for t in self.tuples[i]]
        return dict(zip(self.keys, self.tuples[i]))

    def __iter__(self) -> Iterator[dict]:
        keys = self.keys
        return (dict(zip(keys, t)) for t in self.tuples)


YES, NO = "Evet", "Hayır"
DEFAULT_DESCRIPTION = "Excel e-Defter yedekleme aracından aktarılmıştır"

FIRMS = Sheet("Firmalar", (
    Column("name", "Firma Adı", 32),
    Column("vkn", "VKN/TCKN", 14, "@"),
    Column("branch", "Şube No", 9, "@"),
    Column("folder", "e-Defter Klasörü", 48),
    Column("target", "Hedef", 16, choices_from="target-names", hint=(
        "Hedef", "Hedefler sayfasındaki ad. Birden çok kopya için adları ; ile ayırın: İzibiz; Arşiv S3; NAS "
        "(listede yok uyarısını Evet ile geçin).")),
    Column("user", "Kullanıcı Adı", 18, hint=(
        "Kullanıcı Adı", "Tek ad: her hedef için. Birden çok hedefte hedef sırasıyla ; ile ayırın: "
        "ali@firma; AKIA123 (klasör hedefi kullanıcı istemez, atlanabilir ya da - yazılır).")),
    Column("auto", "Otomatik Yedekleme", 12, choices=(YES, NO)),
    Column("taxpayer", "Mükellef Türü", 12, choices=("Tüzel", "Gerçek")),
    Column("cadence", "Berat Dönemi", 12, choices=("Aylık", "3 Aylık")),
    Column("owner", "Sorumlu", 16),
))

TARGETS = Sheet("Hedefler", (
    Column("name", "Hedef", 16),
    Column("kind", "Tür", 10, choices_from="target-kinds"),
    Column("address", "Adres", 44),
    Column("description", "Paket Açıklaması", 48, old_headers=("Açıklama",), hint=(
        "Paket açıklaması", "Bu hedefe gönderilen her pakete açıklama olarak eklenir ve hedefte paketle "
        "birlikte saklanır (İzibiz'e gönderilmez). Boşsa: " + DEFAULT_DESCRIPTION + ".")),
))

# the columns that name a month, first on every sheet of months; and those Dönemler and Kopyalar share
_MONTH = (
    Column("name", "Firma Adı", 32),
    Column("vkn", "VKN/TCKN", 14, "@"),
    Column("branch", "Şube No", 9, "@"),
    Column("period", "Dönem", 10, "@"),
)
_MESSAGE = Column("message", "Mesaj", 60)
_UPDATED = Column("updated", "Son İşlem", 17, "dd.mm.yyyy hh:mm")
_SHA256 = Column("sha256", "Paket SHA-256", 20, "@")
_REFERENCE = Column("reference", "Referans", 24, "@")
_DRILL = Column("drill", "Son Doğrulama", 30)

PERIODS = Sheet("Dönemler", (
    *_MONTH,
    Column("stage", "e-Defter Durumu", 24),
    Column("validation", "Doğrulama", 14),
    Column("status", "Yedekleme Durumu", 26, choices=status.STATUSES),
    _MESSAGE,
    _UPDATED,
    _SHA256,
    _REFERENCE,
    _DRILL,
    # at the end: the xlwings face reads and writes Dönemler by position, so a workbook not yet
    # upgraded keeps every column where it was
    Column("copies", "Kopyalar", 30),
))

# one row per month × Hedef: the company's own copies (not the legal secondary copy, which is GİB's)
COPIES = Sheet("Kopyalar", (
    *_MONTH,
    Column("target", "Hedef", 16),
    Column("status", "Durum", 26, choices=status.STATUSES),
    _MESSAGE,
    _SHA256,
    _REFERENCE,
    Column("retain", "Saklama Sonu", 12, "dd.mm.yyyy"),
    Column("worm", "Silinemez (WORM)", 22),
    Column("location", "Konum", 14),
    _DRILL,
    _UPDATED,
))

LOG = Sheet("Günlük", (
    Column("time", "Zaman", 17, "dd.mm.yyyy hh:mm"),
    Column("action", "İşlem", 16),
    *_MONTH,
    Column("status", "Sonuç", 26),
    _MESSAGE,
))

CALENDAR_SETTINGS = Sheet("Takvim Ayarları", (
    Column("periods", "Dönem(ler)", 18, "@"),
    Column("taxpayers", "Mükellef Türü", 14),
    Column("due", "Yeni Son Gün", 14, "dd.mm.yyyy"),
    Column("source", "Kaynak", 48),
))

NOTIFY = Sheet("Bildirimler", (
    Column("kind", "Kanal", 12, choices=("e-posta", "teams", "webhook")),
    Column("address", "Adres", 60),
    Column("events", "Olaylar", 36),
    Column("firms", "Firmalar (VKN)", 24, "@"),
    Column("user", "Kullanıcı Adı", 24),
    Column("sender", "Gönderen", 28),
))

DATA_SHEETS = (FIRMS, TARGETS, PERIODS, COPIES, LOG, CALENDAR_SETTINGS, NOTIFY)
# Firmalar's Hedef drop-down: the names typed into Hedefler's first column, row 2 down to the last
# filled row (a defined name, so the list grows with the sheet and has no trailing blanks)
TARGET_LIST = "HedefListesi"
TARGET_LIST_FORMULA = "OFFSET(Hedefler!$A$2,0,0,MAX(1,COUNTA(Hedefler!$A:$A)-1),1)"
CALENDAR_SHEET = "Takvim"  # one column per month: written whole by the radar, not a fixed layout
HELP_SHEET = "Nasıl Kullanılır"
CONF_SHEET = "xlwings.conf"

# Validation words in the Doğrulama column
VALID, INVALID, INCOMPLETE = "Geçerli", "Hatalı", "Eksik"
