"""A month's copies: one per Hedef of its firm (Firmalar: "İzibiz; Arşiv S3; NAS").

Each copy has its own status in the journal (keyed by the target identity). Dönemler shows one
`Yedekleme Durumu` per month — the worst of the firm's copies, so "Yedeklendi" there means every copy
the firm asks for is confirmed — and a compact per-copy column ("3/3 kopya · 1 WORM · TR"); the
Kopyalar sheet and `edefter status --json` show each copy. These are the company's own copies: the
legal secondary copy (ikincil kopya) goes to GİB's systems, and nothing here words a copy as that.
"""

from __future__ import annotations

import functools
from datetime import datetime

from edefter_helper import status as S
from edefter_helper.netutil import is_loopback

# worst first: the month's column shows the copy that needs the user most
ORDER = (S.DAMAGED, S.CHANGED, S.FAILED, S.NOT_SENT, S.ACCEPTED, S.BACKED_UP)
HOLDS = (S.BACKED_UP, S.ACCEPTED, S.CHANGED, S.DAMAGED)  # data is (or was) at the target

LOCATION_TEXT = {"TR": "Türkiye", "yurtdisi": "yurt dışı ⚠", "bilinmiyor": "bilinmiyor"}


def worst(statuses) -> str:
    rank = {s: i for i, s in enumerate(ORDER)}
    return min(statuses, key=lambda s: rank.get(s, rank[S.FAILED]), default=S.NOT_SENT)


def location(cfg) -> str:
    """Where a target keeps its copies (KVKK: storage abroad is a transfer abroad): TR / yurtdisi /
    bilinmiyor. S3 says so in its address; a folder is on this computer or its network, like the
    primary copy; İzibiz is a Turkish integrator; an http server on loopback or a private network is the
    office's own; any other address is not known."""
    if cfg is None:
        return "bilinmiyor"
    if cfg.kind == "s3":
        settings = _s3_settings(cfg.address)
        return settings.location if settings is not None else "bilinmiyor"
    if cfg.kind in ("klasör", "izibiz"):
        return "TR"
    if cfg.kind == "http":
        import ipaddress
        from urllib.parse import urlsplit

        host = (urlsplit(cfg.address.split()[0]).hostname or "") if cfg.address.split() else ""
        if is_loopback(host):
            return "TR"
        try:
            if ipaddress.ip_address(host).is_private:
                return "TR"
        except ValueError:
            pass
    return "bilinmiyor"


def lock(cfg, period: str) -> tuple[str, datetime | None]:
    """(lock mode, retain-until) an S3 copy of `period` is written with and read back at (the date the
    target checks the stored version holds at least); ("", None) for a target without Object Lock."""
    settings = _s3_settings(cfg.address) if cfg is not None and cfg.kind == "s3" else None
    if settings is None:
        return "", None
    return settings.mode, settings.retain_until(period).replace(tzinfo=None)


@functools.lru_cache(maxsize=64)
def _s3_settings(address: str):
    """An S3 Hedef's parsed address, once per address (asked for every copy of every month), or None when
    it cannot be parsed (said elsewhere; here the copy's lock and place are only unknown)."""
    try:
        from edefter_helper.targets.s3 import parse_address

        return parse_address(address)
    except Exception:  # noqa: BLE001 - a bad address raises several kinds
        return None


def worm_text(cfg, status: str, probe) -> tuple[str, bool]:
    """(WORM column text, counts as WORM) of one copy; `probe`: the target's latest WORM probe
    (when, worm, detail) or None. Immutable only when the copy is confirmed, locked in COMPLIANCE mode,
    and the probe showed the store refuses deletes and shortening."""
    mode, _ = lock(cfg, "2000-01")
    if not mode:
        return "Hayır", False
    if mode != "COMPLIANCE":
        return "Hayır (GOVERNANCE: yetkili hesap silebilir)", False
    if probe is None:
        return "Denetlenmedi ('edefter target check')", False
    when, worm, _ = probe
    day = f"{when[8:10]}.{when[5:7]}.{when[:4]}" if len(when) >= 10 else when
    if not worm:
        return f"Hayır: değiştirilebilir (WORM değil; denetim {day})", False
    return f"Evet (denetim {day})", status == S.BACKED_UP


def summary_text(copies: list[dict]) -> str:
    """The compact per-copy column: '3/3 kopya · 1 WORM · TR', a copy abroad flagged."""
    n = len(copies)
    ok = sum(1 for c in copies if c["status"] == S.BACKED_UP)
    parts = [f"{ok}/{n} kopya"]
    worm = sum(1 for c in copies if c.get("_worm"))
    if worm:
        parts.append(f"{worm} WORM")
    places = [c.get("_location", "bilinmiyor") for c in copies]
    if places and all(p == "TR" for p in places):
        parts.append("TR")
    else:
        abroad = places.count("yurtdisi")
        unknown = places.count("bilinmiyor")
        if abroad:
            parts.append(f"{abroad} yurt dışı ⚠")
        if unknown:
            parts.append(f"{unknown} konumu bilinmiyor")
    return " · ".join(parts)


def month_row(row: dict, copies: list[dict], period: str) -> dict:
    """The Dönemler row of a month from its copies (firm order). One copy: that copy, as before."""
    row = dict(row)
    if len(copies) == 1:
        c = copies[0]
        for k in ("status", "message", "sha256", "reference", "updated", "drill"):
            row[k] = c[k]
        row["copies"] = summary_text(copies)
        return row
    status = worst(c["status"] for c in copies)
    done = [c for c in copies if c["status"] == S.BACKED_UP]
    if len(done) == len(copies):
        message = S.backed_up_message(period) + " Kopyalar: " + ", ".join(c["target"] for c in copies) + "."
    else:
        open_ = [c for c in copies if c["status"] != S.BACKED_UP]
        message = " ".join(f"{c['target']}: {(c['message'] or c['status']).rstrip('.')}." for c in open_)
        if done:
            message += (f" Yedeklenen kopyalar ({len(done)}/{len(copies)}): "
                        + ", ".join(c["target"] for c in done) + ".")
    shas = [c["sha256"] for c in copies if c["sha256"]]
    refs = [c for c in copies if c["reference"]]
    stamps = [c["updated"] for c in copies if c["updated"]]
    row.update(status=status, message=message, sha256=shas[0] if shas else "",
               reference=refs[0]["reference"] if refs else "", updated=max(stamps) if stamps else None,
               drill="; ".join(f"{c['target']}: {c['drill']}" for c in copies if c["drill"]),
               copies=summary_text(copies))
    return row


def sheet_row(copy: dict) -> dict:
    """A Kopyalar row (the private '_' keys dropped)."""
    return {k: v for k, v in copy.items() if not k.startswith("_")}


def json_row(copy: dict) -> dict:
    """A copy for `edefter status --json`: the Kopyalar row, dates as ISO text, the status's code too."""
    out = {}
    for k, v in sheet_row(copy).items():
        out[k] = v.isoformat() if isinstance(v, datetime) else v
    out["state"] = S.code(copy["status"])
    out["identity"] = copy.get("_identity", "")
    return out
