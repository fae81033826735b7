"""Realistic ledger content: firms, Turkish chart of accounts, balanced journal entries, XML fragments.

Fragments are written in C14N form (see xmlsig) inside a root that declares every namespace.
"""

from __future__ import annotations

import calendar
import random
from dataclasses import dataclass

from edefter_helper.samples.xmlsig import esc

SOURCE_APP = "Örnek Muhasebe Yazılımı 4.2 (test)"

# (main id, main description, sub id, sub description)
ACCOUNTS = {
    "100": ("100", "KASA", "100.01", "Merkez Kasa (TL)"),
    "102": ("102", "BANKALAR", "102.01", "Türkiye İş Bankası Çarşı Şubesi"),
    "120": ("120", "ALICILAR", "120.01.003", "Öztürk Gıda Ltd. Şti."),
    "153": ("153", "TİCARİ MALLAR", "153.01", "Ticari Mallar - Ürün Grubu Çiğ Köfte"),
    "191": ("191", "İNDİRİLECEK KDV", "191.01", "İndirilecek KDV %20"),
    "320": ("320", "SATICILAR", "320.01.017", "Şahin Ambalaj Sanayi ve Ticaret A.Ş."),
    "335": ("335", "PERSONELE BORÇLAR", "335.01", "Ücret Tahakkukları"),
    "391": ("391", "HESAPLANAN KDV", "391.01", "Hesaplanan KDV %20"),
    "600": ("600", "YURT İÇİ SATIŞLAR", "600.01", "Yurt İçi Satışlar - Toptan"),
    "610": ("610", "SATIŞTAN İADELER (-)", "610.01", "Satıştan İadeler"),
    "770": ("770", "GENEL YÖNETİM GİDERLERİ", "770.01", "Kırtasiye ve Büro Giderleri"),
}

# kind of entry -> (comment, document type, list of (account, share, D/C)); share 0 = net, 1 = VAT, 2 = gross
TEMPLATES = [
    ("Satış faturası: Öztürk Gıda, ürün satışı", "invoice", [("120", 2, "D"), ("600", 0, "C"), ("391", 1, "C")]),
    ("Alış faturası: Şahin Ambalaj, ambalaj malzemesi", "invoice", [("153", 0, "D"), ("191", 1, "D"), ("320", 2, "C")]),
    ("Banka tahsilatı: müşteri ödemesi", "receipt", [("102", 2, "D"), ("120", 2, "C")]),
    ("Satıcıya ödeme: havale ile", "check", [("320", 2, "D"), ("102", 2, "C")]),
    ("Kırtasiye gideri: peşin ödendi", "invoice", [("770", 0, "D"), ("191", 1, "D"), ("100", 2, "C")]),
    ("Satıştan iade: bozuk çıkan ürünler", "credit-memo", [("610", 0, "D"), ("391", 1, "D"), ("120", 2, "C")]),
    ("Ücret tahakkuku: ağustos çalışanları", "other", [("770", 2, "D"), ("335", 2, "C")]),
]

VAT_ACCOUNTS = ("391", "191", "600", "601", "602")


@dataclass(frozen=True)
class Firm:
    vkn: str
    company: str
    branch: str | None = None  # "0001"…
    branch_name: str | None = None

    @property
    def is_person(self) -> bool:
        return len(self.vkn) == 11


def default_company(vkn: str) -> str:
    """A stable Turkish name for a VKN (Kurum Unvanı) or TCKN (Adı Soyadı)."""
    rng = random.Random(vkn)
    if len(vkn) == 11:
        first = rng.choice(["Ayşe", "Gülşen", "İsmail", "Çağlar", "Şükrü", "Özlem", "Ümit"])
        last = rng.choice(["Yılmaz", "Öztürk", "Çelik", "Şahin", "Doğan", "Kılıç", "Güneş"])
        return f"{first} {last}"
    word = rng.choice(["Anadolu", "Boğaziçi", "Çukurova", "Ege", "Karadeniz", "Güneydoğu", "İç Anadolu"])
    trade = rng.choice(["Gıda", "Tekstil", "İnşaat", "Otomotiv", "Kağıt", "Kimya", "Lojistik"])
    return f"{word} {trade} Sanayi ve Ticaret A.Ş."


def period_bounds(period: str) -> tuple[str, str, int, int]:
    year, month = int(period[:4]), int(period[5:7])
    last = calendar.monthrange(year, month)[1]
    return f"{period}-01", f"{period}-{last:02d}", year, month


def creation_date(period: str) -> str:
    _, _, year, month = period_bounds(period)
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year:04d}-{month:02d}-14"


@dataclass
class Line:
    account: str
    amount: int  # kuruş
    dc: str


@dataclass
class Entry:
    number: int  # entryNumberCounter, runs on through the parts
    day: str  # YYYY-MM-DD
    comment: str
    doc_type: str
    doc_number: str
    lines: list[Line]


def make_entries(rng: random.Random, period: str, count: int, first: int = 1) -> list[Entry]:
    start, _, year, month = period_bounds(period)
    days = calendar.monthrange(year, month)[1]
    picked = sorted(rng.randint(1, days) for _ in range(count))  # journal is in date order
    out = []
    for i, d in enumerate(picked):
        comment, doc_type, shape = TEMPLATES[rng.randrange(len(TEMPLATES))]
        net = rng.randint(10_000, 5_000_000)
        vat = net // 5
        shares = (net, vat, net + vat)
        lines = [Line(acc, shares[share], dc) for acc, share, dc in shape]
        out.append(Entry(first + i, f"{period}-{d:02d}", comment, doc_type,
                         f"{'FTR' if doc_type == 'invoice' else 'BLG'}{year}{rng.randint(1, 999999):06d}", lines))
    return out


def money(kurus: int) -> str:
    return f"{kurus // 100}.{kurus % 100:02d}"


def item(qname: str, ctx: str, value: str) -> str:
    return f'<{qname} contextRef="{ctx}">{value}</{qname}>'


def num(qname: str, ctx: str, value: str, unit: str) -> str:
    return f'<{qname} contextRef="{ctx}" decimals="INF" unitRef="{unit}">{value}</{qname}>'


def xbrl_head(ctx: str, vkn: str, period_end: str, segment: str = "") -> str:
    seg = f"<xbrli:segment>{segment}</xbrli:segment>" if segment else ""
    return (
        "<xbrli:xbrl>"
        '<link:schemaRef xlink:href="../xsd/2006-10-25/plt/case-c-b-m-u-t/gl-plt-2006-10-25.xsd" '
        'xlink:type="simple"></link:schemaRef>\n'
        f'<xbrli:context id="{ctx}"><xbrli:entity>'
        f'<xbrli:identifier scheme="http://www.gib.gov.tr">{vkn}</xbrli:identifier>{seg}</xbrli:entity>'
        f"<xbrli:period><xbrli:instant>{period_end}</xbrli:instant></xbrli:period></xbrli:context>\n"
        '<xbrli:unit id="countable"><xbrli:measure>xbrli:pure</xbrli:measure></xbrli:unit>\n'
        '<xbrli:unit id="try"><xbrli:measure>iso4217:TRY</xbrli:measure></xbrli:unit>\n'
    )


def unique_id(entries_type: str, period: str, number: int) -> str:
    prefix = {"journal": "YEV", "ledger": "KEB", "trialbalance": "DRP"}[entries_type]
    return f"{prefix}{period.replace('-', '')}{number:06d}"  # 15 characters


def document_info(ctx: str, entries_type: str, period: str, uid: str) -> str:
    start, end, _, _ = period_bounds(period)
    return (
        "<gl-cor:documentInfo>"
        + item("gl-cor:entriesType", ctx, entries_type)
        + item("gl-cor:uniqueID", ctx, uid)
        + item("gl-cor:creationDate", ctx, creation_date(period))
        + item("gl-cor:periodCoveredStart", ctx, start)
        + item("gl-cor:periodCoveredEnd", ctx, end)
        + item("gl-bus:sourceApplication", ctx, esc(SOURCE_APP))
        + "</gl-cor:documentInfo>\n"
    )


def _org(ctx: str, value: str, description: str) -> str:
    return (
        "<gl-bus:organizationIdentifiers>"
        + item("gl-bus:organizationIdentifier", ctx, esc(value))
        + item("gl-bus:organizationDescription", ctx, esc(description))
        + "</gl-bus:organizationIdentifiers>"
    )


def entity_information(ctx: str, firm: Firm, period: str) -> str:
    year = period[:4]
    orgs = _org(ctx, firm.company, "Adı Soyadı" if firm.is_person else "Kurum Unvanı")
    if firm.branch:
        orgs += _org(ctx, firm.branch, "Şube No") + _org(ctx, firm.branch_name or f"Şube {firm.branch}", "Şube Adı")
    return (
        "<gl-cor:entityInformation>"
        "<gl-bus:entityPhoneNumber>" + item("gl-bus:phoneNumber", ctx, "0312 555 12 34") + "</gl-bus:entityPhoneNumber>"
        "<gl-bus:entityEmailAddressStructure>" + item("gl-bus:entityEmailAddress", ctx, "muhasebe@ornek.com.tr")
        + "</gl-bus:entityEmailAddressStructure>"
        + orgs
        + "<gl-bus:organizationAddress>"
        + item("gl-bus:organizationBuildingNumber", ctx, "12/3")
        + item("gl-bus:organizationAddressStreet", ctx, esc("Atatürk Bulvarı Gülbahçe Sokağı"))
        + item("gl-bus:organizationAddressCity", ctx, esc("Çankaya/Ankara"))
        + item("gl-bus:organizationAddressZipOrPostalCode", ctx, "06690")
        + item("gl-bus:organizationAddressCountry", ctx, esc("Türkiye"))
        + "</gl-bus:organizationAddress>"
        "<gl-bus:entityWebSite>" + item("gl-bus:webSiteURL", ctx, "https://www.ornek.com.tr") + "</gl-bus:entityWebSite>"
        + item("gl-bus:businessDescription", ctx, esc("Toptan gıda ürünleri ticareti"))
        + item("gl-bus:fiscalYearStart", ctx, f"{year}-01-01")
        + item("gl-bus:fiscalYearEnd", ctx, f"{year}-12-31")
        + "<gl-bus:accountantInformation>"
        + item("gl-bus:accountantName", ctx, esc("Şükrü Çağlayan SMMM"))
        + item("gl-bus:accountantEngagementTypeDescription", ctx, esc("Serbest Muhasebeci Mali Müşavir sözleşmesi"))
        + "</gl-bus:accountantInformation>"
        "</gl-cor:entityInformation>\n"
    )


def _account(ctx: str, acc: str) -> str:
    main, main_desc, sub, sub_desc = ACCOUNTS[acc]
    return (
        "<gl-cor:account>"
        + item("gl-cor:accountMainID", ctx, main)
        + item("gl-cor:accountMainDescription", ctx, esc(main_desc))
        + "<gl-cor:accountSub>"
        + item("gl-cor:accountSubDescription", ctx, esc(sub_desc))
        + item("gl-cor:accountSubID", ctx, sub)
        + "</gl-cor:accountSub></gl-cor:account>"
    )


# account XML is the same in every line: build it once (this is the hot loop of big months)
_ACCOUNT_XML: dict[tuple[str, str], str] = {}


def account_xml(ctx: str, acc: str) -> str:
    key = (ctx, acc)
    if key not in _ACCOUNT_XML:
        _ACCOUNT_XML[key] = _account(ctx, acc)
    return _ACCOUNT_XML[key]


def _detail(ctx: str, line_no: int, counter: int, line: Line, e: Entry) -> str:
    return (
        f'<gl-cor:entryDetail><gl-cor:lineNumber contextRef="{ctx}">{line_no}</gl-cor:lineNumber>'
        f'<gl-cor:lineNumberCounter contextRef="{ctx}" decimals="INF" unitRef="countable">{counter}'
        "</gl-cor:lineNumberCounter>"
        + account_xml(ctx, line.account)
        + f'<gl-cor:amount contextRef="{ctx}" decimals="INF" unitRef="try">{money(line.amount)}</gl-cor:amount>'
        f'<gl-cor:debitCreditCode contextRef="{ctx}">{line.dc}</gl-cor:debitCreditCode>'
        f'<gl-cor:postingDate contextRef="{ctx}">{e.day}</gl-cor:postingDate>'
        f'<gl-cor:documentType contextRef="{ctx}">{e.doc_type}</gl-cor:documentType>'
        + (f'<gl-cor:documentTypeDescription contextRef="{ctx}">Bordro</gl-cor:documentTypeDescription>'
           if e.doc_type == "other" else "")
        + f'<gl-cor:documentNumber contextRef="{ctx}">{e.doc_number}</gl-cor:documentNumber>'
        f'<gl-cor:documentDate contextRef="{ctx}">{e.day}</gl-cor:documentDate>'
        f'<gl-cor:detailComment contextRef="{ctx}">{esc(e.comment)}</gl-cor:detailComment>'
        "</gl-cor:entryDetail>"
    )


def journal_entry(ctx: str, e: Entry, first_line: int) -> str:
    """One yevmiye maddesi; lineNumber runs on through the document."""
    debit = sum(ln.amount for ln in e.lines if ln.dc == "D")
    details = "".join(_detail(ctx, first_line + i, e.number, ln, e) for i, ln in enumerate(e.lines))
    return (
        "<gl-cor:entryHeader>"
        + item("gl-cor:enteredBy", ctx, esc("Gülşen Öztürk"))
        + item("gl-cor:enteredDate", ctx, e.day)
        + item("gl-cor:entryNumber", ctx, f"{e.number}")
        + item("gl-cor:entryComment", ctx, esc(e.comment))
        + num("gl-bus:totalDebit", ctx, money(debit), "try")
        + num("gl-bus:totalCredit", ctx, money(debit), "try")
        + num("gl-cor:entryNumberCounter", ctx, str(e.number), "countable")
        + details
        + "</gl-cor:entryHeader>\n"
    )


def ledger_entries(ctx: str, entries: list[Entry]) -> str:
    """Kebir: one entryHeader per account, in account order, postings in journal order."""
    by_acc: dict[str, list[tuple[Entry, Line]]] = {}
    for e in entries:
        for ln in e.lines:
            by_acc.setdefault(ln.account, []).append((e, ln))
    out = []
    line_no = 1
    for acc in sorted(by_acc):
        rows = by_acc[acc]
        d = sum(ln.amount for _, ln in rows if ln.dc == "D")
        c = sum(ln.amount for _, ln in rows if ln.dc == "C")
        details = []
        for e, ln in rows:
            details.append(_detail(ctx, line_no, e.number, ln, e))
            line_no += 1
        out.append(
            "<gl-cor:entryHeader>"
            + num("gl-bus:totalDebit", ctx, money(max(d - c, 0)), "try")
            + num("gl-bus:totalCredit", ctx, money(max(c - d, 0)), "try")
            + "".join(details)
            + "</gl-cor:entryHeader>\n"
        )
    return "".join(out)


def add_sums(sums: dict[tuple[str, str], int], entries) -> dict[tuple[str, str], int]:
    """Accumulate amounts per (account, D/C); used by berats and the DR, also while streaming."""
    for e in entries:
        for ln in e.lines:
            key = (ln.account, ln.dc)
            sums[key] = sums.get(key, 0) + ln.amount
    return sums


def tax_detail(ctx: str, sums: dict[tuple[str, str], int]) -> str:
    """The berat's one entryHeader: period changes of 391, 191, 600, 601, 602 (10 lines)."""
    names = {"391": "HESAPLANAN KDV", "191": "İNDİRİLECEK KDV", "600": "YURT İÇİ SATIŞLAR",
             "601": "YURT DIŞI SATIŞLAR", "602": "DİĞER GELİRLER"}
    details = []
    keys = [(a, dc) for a in VAT_ACCOUNTS for dc in "DC"]
    for i, (acc, dc) in enumerate(keys, start=1):
        details.append(
            f'<gl-cor:entryDetail><gl-cor:lineNumber contextRef="{ctx}">{i}</gl-cor:lineNumber>'
            "<gl-cor:account>" + item("gl-cor:accountMainID", ctx, acc)
            + item("gl-cor:accountMainDescription", ctx, esc(names[acc])) + "</gl-cor:account>"
            + num("gl-cor:amount", ctx, money(sums.get((acc, dc), 0)), "try")
            + item("gl-cor:debitCreditCode", ctx, dc)
            + "<gl-cor:xbrlInfo>" + item("gl-cor:xbrlInclude", ctx, "period_change") + "</gl-cor:xbrlInfo>"
            "</gl-cor:entryDetail>"
        )
    return ("<gl-cor:entryHeader>" + item("gl-cor:qualifierEntry", ctx, "standard")
            + "".join(details) + "</gl-cor:entryHeader>\n")


def trial_balance(ctx: str, sums: dict[tuple[str, str], int]) -> str:
    """Defter Raporu body: one entryHeader per account with its debit and credit totals."""
    out = []
    for acc in sorted({a for a, _ in sums}):
        d, c = sums.get((acc, "D"), 0), sums.get((acc, "C"), 0)
        out.append(
            "<gl-cor:entryHeader>"
            + num("gl-bus:totalDebit", ctx, money(d), "try")
            + num("gl-bus:totalCredit", ctx, money(c), "try")
            + f'<gl-cor:entryDetail><gl-cor:lineNumber contextRef="{ctx}">1</gl-cor:lineNumber>'
            + account_xml(ctx, acc)
            + num("gl-cor:amount", ctx, money(abs(d - c)), "try")
            + item("gl-cor:debitCreditCode", ctx, "D" if d >= c else "C")
            + "<gl-cor:xbrlInfo>" + item("gl-cor:xbrlInclude", ctx, "ending_balance") + "</gl-cor:xbrlInfo>"
            "</gl-cor:entryDetail></gl-cor:entryHeader>\n"
        )
    return "".join(out)
