"""The backup status words users know, and the confirmation sentence. Exact spelling matters.

The journal stores stable English codes (CODES); these words are what every face shows."""

from functools import lru_cache

NOT_SENT = "Entegratör'e Gönderilmedi"
ACCEPTED = "Entegratör'e İşlendi"
FAILED = "Yedeklenemedi"
BACKED_UP = "Yedeklendi"
# backed up once, but the files on disk are no longer those bytes (e.g. GİB cancel and re-submission)
CHANGED = "Yedek Güncel Değil"
# a restore drill found the target's copy damaged or gone
DAMAGED = "Hedefteki Kopya Bozuk"
STATUSES = (NOT_SENT, ACCEPTED, FAILED, BACKED_UP, CHANGED, DAMAGED)

# the word shown <-> the code stored
CODES = {NOT_SENT: "not-sent", ACCEPTED: "accepted", FAILED: "failed", BACKED_UP: "backed-up", CHANGED: "changed",
         DAMAGED: "copy-damaged"}
WORDS = {code: word for word, code in CODES.items()}


def code(word: str) -> str:
    """The stored code of a status word (codes pass through unchanged)."""
    return CODES.get(word, word)


def word(code_or_word: str | None) -> str:
    """The word users know for a stored code (a word passes through; nothing stored = not sent)."""
    if not code_or_word:
        return NOT_SENT
    return WORDS.get(code_or_word, code_or_word)

MONTHS_TR = (
    "Ocak", "Şubat", "Mart", "Nisan", "Mayıs", "Haziran",
    "Temmuz", "Ağustos", "Eylül", "Ekim", "Kasım", "Aralık",
)

# e-Defter stage (engine) -> what the accounting program shows as the e-Defter status
STAGE_TR = {
    "ledger-only": "Defter Oluşturuldu",
    "berat-signed": "Berat İmzalandı",
    "gib-approved": "Onaylı Berat İndirildi",
}


def month_label(period: str) -> str:
    """'2024-01' -> 'Ocak 2024'."""
    year, month = period.split("-")
    return f"{MONTHS_TR[int(month) - 1]} {year}"


@lru_cache(maxsize=512)  # one string a month of the calendar, not one per firm-month (an office: 36 000)
def backed_up_message(period: str) -> str:
    return f"{month_label(period)} ayına ait Yevmiye ve Büyük Defter dosyaları yedeklendi."
