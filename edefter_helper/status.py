"""The four backup status words users know, and the confirmation sentence. Exact spelling matters."""

NOT_SENT = "Entegratör'e Gönderilmedi"
ACCEPTED = "Entegratör'e İşlendi"
FAILED = "Yedeklenemedi"
BACKED_UP = "Yedeklendi"
STATUSES = (NOT_SENT, ACCEPTED, FAILED, BACKED_UP)

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


def backed_up_message(period: str) -> str:
    return f"{month_label(period)} ayına ait Yevmiye ve Büyük Defter dosyaları yedeklendi."
