"""Problem codes and their Turkish messages, in one place. GİB's own wording where it exists."""

from __future__ import annotations

from edefter_helper.engine.model import Problem
from edefter_helper.engine.names import KIND_NAMES_TR

ROOT_TR = {
    "defter": "edefter:defter",
    "berat": "edefter:berat",
    "defterraporu": "edefter:defterraporu",
}

# GİB's sentence for a wrong root element, per kind (rule sets in shared/schemas/gib-rules)
_ROOT_RULE = {
    "Y": "Yevmiye defteri dokumanı edefter:defter ana elemanı ile başlamalıdır.",
    "K": "Büyük defter dokümanı edefter:defter ana elemanı ile başlamalıdır.",
    "DR": "Defter raporu dokümanı edefter:defterraporu ana elemanı ile başlamalıdır.",
}
_BERAT_ROOT_RULE = "Berat dokümanı edefter:berat ana elemanı ile başlamalıdır."


def part_label(kind: str, part: int) -> str:
    return f"{kind}-{part:06d}"


def kind_label(kind: str) -> str:
    return f"{KIND_NAMES_TR[kind]} ({kind})"


def p(code: str, message: str, path=None) -> Problem:
    return Problem(code, message, str(path) if path is not None else None)


# -- month set ------------------------------------------------------------------------------

def missing_kind(kind: str) -> Problem:
    return p("missing-kind", f"{kind_label(kind)} bulunamadı.")


def missing_berat(berat_kind: str, ledger_kind: str, part: int) -> Problem:
    label = f"{KIND_NAMES_TR[berat_kind]} ({part_label(berat_kind, part)})"
    if berat_kind.startswith("GIB-"):
        why = " GİB onaylı berat indirilmemiş; ay GİB'de kapanmadan yedeklenemez."
    else:
        why = ""
    return p("missing-berat", f"{part_label(ledger_kind, part)} için {label} bulunamadı.{why}")


def orphan_berat(berat_kind: str, ledger_kind: str, part: int, path) -> Problem:
    return p("orphan-berat", f"{part_label(berat_kind, part)} var ama beratın ait olduğu "
             f"{part_label(ledger_kind, part)} defter dosyası yok.", path)


def missing_dr(period: str) -> Problem:
    return p("missing-dr", f"2019/01 ve sonraki dönemler için Defter Raporu (DR) zorunludur; "
             f"{period} dönemi için bulunamadı.")


def dr_part(part: int, path) -> Problem:
    return p("dr-part", f"Defter Raporu tek parça (000000) olmalıdır; {part:06d} bulundu.", path)


def part_mixed(kind: str) -> Problem:
    return p("part-mixed", f"{kind_label(kind)} hem 000000 (tek parça) hem 000001 (bölünmüş) "
             f"olarak var; ikisi birlikte bulunamaz.")


def part_gap(kind: str, missing: list[int]) -> Problem:
    parts = ", ".join(f"{m:06d}" for m in missing)
    return p("part-gap", f"{kind_label(kind)} parçalarında boşluk var: {parts} eksik.")


def conflicting_copies(filename: str, paths) -> Problem:
    where = " ve ".join(str(x) for x in paths)
    return p("conflicting-copies", f"{filename} adıyla içerikleri farklı birden çok dosya var: {where}. "
             f"Hangisinin geçerli olduğu belirlenemiyor.", paths[0])


# -- one file -------------------------------------------------------------------------------

def empty_file(path) -> Problem:
    return p("empty-file", "Dosya boş (0 bayt).", path)


def unsafe_xml(path) -> Problem:
    return p("unsafe-xml", "Dosya DTD/varlık (DOCTYPE, ENTITY) tanımı içeriyor; güvenlik nedeniyle "
             "okunmadı. e-Defter dosyalarında DOCTYPE bulunmaz.", path)


def malformed_xml(path, detail: str) -> Problem:
    return p("malformed-xml", f"XML okunamadı (dosya bozuk ya da yarım kalmış): {detail}", path)


def wrong_root(kind: str, found: str, path) -> Problem:
    rule = _BERAT_ROOT_RULE if kind in ("YB", "KB", "GIB-YB", "GIB-KB") else _ROOT_RULE[kind]
    return p("wrong-root", f"{rule} (Bulunan: {found})", path)


def wrong_entries_type(kind: str, expected: str, found: str | None, path) -> Problem:
    return p("wrong-entries-type", f"gl-cor:entriesType elemanı {KIND_NAMES_TR[kind]} için "
             f"'{expected}' değerini almalıdır (bulunan: {found or 'yok'}).", path)


def identifier_mismatch(in_name: str, inside: str | None, path) -> Problem:
    return p("identifier-mismatch", f"Dosya adındaki VKN/TCKN ({in_name}) ile belgedeki "
             f"xbrli:identifier ({inside or 'yok'}) farklı.", path)


def period_mismatch(in_name: str, inside: str | None, path) -> Problem:
    return p("period-mismatch", f"Dosya adındaki dönem ({in_name}) ile belgedeki dönem "
             f"(gl-cor:periodCoveredStart: {inside or 'yok'}) farklı.", path)


def branch_mismatch(in_name: str, inside: str | None, path) -> Problem:
    return p("branch-mismatch", f"Dosya adındaki şube kodu ({in_name}) ile belgedeki Şube No "
             f"({inside or 'yok'}) farklı.", path)


def signature_missing(path) -> Problem:
    return p("signature-missing", "Belgede ds:Signature (mali mühür imzası) bulunamadı.", path)


def signature_invalid(reason: str, path) -> Problem:
    return p("signature-invalid", f"İmza doğrulanamadı: {reason}", path)


def berat_mismatch(berat: str, ledger: str, path) -> Problem:
    return p("berat-mismatch", f"{berat} içindeki ds:SignatureValue, {ledger} dosyasının imza değeriyle "
             f"aynı değil: berat bu deftere ait değil (GİB: \"Çapraz Doğrulama Kontrolü Hatalıdır\").", path)


def size_mismatch(berat: str, quantity: str, ledger: str, size: int, path) -> Problem:
    return p("size-mismatch", f"{berat} içindeki gl-bus:measurableQuantity ({quantity} MB), "
             f"{ledger} dosyasının boyutuyla ({size / 1048576:.2f} MB) uyuşmuyor.", path)


def countersignature_missing(path) -> Problem:
    return p("countersignature-missing", "GİB onaylı beratta GİB'in karşı imzası (xades:CounterSignature) "
             "yok (GİB: \"Counter Signature Doğrulama Kontrolü Hatalıdır\").", path)


def countersignature_invalid(reason: str, path) -> Problem:
    return p("countersignature-invalid", f"GİB karşı imzası doğrulanamadı: {reason} "
             f"(GİB: \"Counter Signature Doğrulama Kontrolü Hatalıdır\").", path)


def berat_gib_differs(path) -> Problem:
    return p("gib-berat-mismatch", "GİB onaylı berattaki ds:SignatureValue, mükellef beratındakiyle aynı değil.",
             path)


def sha1_used(path) -> Problem:
    return p("sha1", "İmzalama işleminde kullanılacak özet(hash) algoritması sha1 olmamalıdır.", path)


def bad_zip(detail: str, path) -> Problem:
    return p("bad-zip", f"GİB'den indirilen .zip tam olarak bir berat içermeli: {detail}", path)


def schema_invalid(detail: str, path) -> Problem:
    return p("schema-invalid", f"GİB şemasına (XSD) uymuyor: {detail}", path)


def unreadable(detail: str, path) -> Problem:
    return p("unreadable", f"Dosya okunamadı: {detail}", path)


# -- what is signed, and by whom ------------------------------------------------------------

def unsigned_content(detail: str, path) -> Problem:
    return p("unsigned-content", f"İmzalanmamış içerik: {detail}. İmzanın kapsamadığı bu içerik "
             f"sonradan eklenmiş olabilir; dosya güvenilir değil.", path)


def duplicate_id(detail: str, path) -> Problem:
    return p("duplicate-id", f"İmza doğrulanamadı: {detail}", path)


def duplicate_fact(what: str, path) -> Problem:
    return p("duplicate-fact", f"Belgede {what} birden çok kez var; hangisinin geçerli olduğu belirsiz.", path)


def signer_mismatch(subject: str, found: str | None, vkn: str | None, path) -> Problem:
    return p("signer-mismatch", f"İmzalayan sertifika bu mükellefe ait değil: belgedeki VKN/TCKN "
             f"{vkn or 'yok'}, sertifikadaki seri numarası {found or 'yok'} ({subject}).", path)


def signing_certificate_mismatch(reason: str, path) -> Problem:
    return p("signing-certificate-mismatch", f"İmza doğrulanamadı: {reason}", path)


def signing_time_invalid(reason: str, path) -> Problem:
    return p("signing-time-invalid", f"İmza doğrulanamadı: {reason}", path)


def countersigner_untrusted(subject: str, path) -> Problem:
    """A warning, not a problem: no GİB certificate is on this computer's trust list."""
    return p("countersigner-untrusted", f"Karşı imza GİB'e ait olarak doğrulanamadı: imzalayan "
             f"sertifika ({subject}) GİB sertifikaları listesinde yok.", path)


def changed_while_checked(path) -> Problem:
    return p("changed-while-checked", "Dosya doğrulanırken değişti; okunan baytlar tutarlı değil. "
             "Dosyayı yazan program işini bitirdikten sonra yeniden deneyin.", path)


def read_failed(detail: str, path) -> Problem:
    return p("unreadable", f"Dosya okunamadı: {detail}", path)
