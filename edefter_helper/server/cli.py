"""`edefter serve` and `edefter server …`: the storage server's commands (registered by commands.py).

Kept import-light: the server's modules load only when a command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edefter_helper.cli import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, UsageError, _print_json
from edefter_helper.netutil import is_loopback as is_loopback_host  # noqa: F401


def _ascii_int(text: str) -> int | None:
    # int() also reads Arabic-Indic and full-width digits; a port or size is typed in ASCII
    return int(text) if isinstance(text, str) and text.isascii() and text.isdigit() else None


def port_number(text: str) -> int:
    value = _ascii_int(text)
    if value is None or not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"geçersiz port: {text} (1-65535 arasında bir sayı olmalı)")
    return value


def positive_int(text: str) -> int:
    value = _ascii_int(text)
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"geçersiz sayı: {text} (1 ya da daha büyük olmalı)")
    return value




def _data_dir(args, must_exist: bool) -> Path:
    data = Path(args.data)
    if data.exists() and not data.is_dir():
        raise UsageError(f"--data bir klasör olmalı: {data} bir dosya. Sunucunun veri klasörünü verin "
                         f"(yoksa oluşturulur).")
    if must_exist and not (data / "store.sqlite3").exists() and not (data / "packages").is_dir():
        raise UsageError(f"Depolama sunucusu veri klasörü bulunamadı: {data}")
    return data


# -- serve ----------------------------------------------------------------------------------

NOT_LOOPBACK_WARNING = (
    "edefter: uyarı: sunucu {host} adresinde dinleyecek; bu bilgisayarın dışından erişilebilir ve "
    "şifrelenmemiş HTTP konuşur. Önüne TLS sonlandıran bir ters vekil (IIS, nginx, Caddy) koyun ve "
    "istemcilerde https:// adresini kullanın; yoksa şifreler ve paketler ağda açık gider.")


def cmd_serve(args) -> int:
    import logging

    from edefter_helper import server
    from edefter_helper.server.net import ConnectionLimits

    data = _data_dir(args, must_exist=False)
    data.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    if not is_loopback_host(args.host):
        print(NOT_LOOPBACK_WARNING.format(host=args.host), file=sys.stderr, flush=True)
    kw = {}
    if args.max_size:
        kw["max_size"] = args.max_size
    if args.max_connections or args.max_per_address:
        defaults = ConnectionLimits()
        kw["connections"] = ConnectionLimits(
            max_connections=args.max_connections or defaults.max_connections,
            per_address=args.max_per_address or defaults.per_address)
    if args.trusted_proxy:
        kw["trusted_proxy"] = args.trusted_proxy
    ready = []

    def announce(url: str) -> None:  # called once the socket is bound, never before
        ready.append(url)
        print(f"Depolama sunucusu dinliyor: {url} (veri: {data}) — durdurmak için Ctrl+C", file=sys.stderr,
              flush=True)

    try:
        server.serve(data, host=args.host, port=args.port, on_ready=announce, **kw)
    except KeyboardInterrupt:
        print("Depolama sunucusu durduruldu.", file=sys.stderr)
    except (OSError, ValueError) as exc:
        if ready:
            raise
        import errno

        reason = getattr(exc, "strerror", None) or str(exc)
        if getattr(exc, "errno", None) in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
            reason = (f"port kullanımda ({args.port} portunu başka bir program, belki başka bir 'edefter serve', "
                      f"tutuyor); --port ile başka bir port seçin")
        elif getattr(exc, "errno", None) in (errno.EACCES, getattr(errno, "WSAEACCES", -1)):
            reason = f"{args.port} portunu açma izni yok (1024'ün altındaki portlar yönetici ister)"
        raise UsageError(f"{args.host}:{args.port} adresinde dinlenemedi: {reason}") from None
    return EXIT_OK


# -- server user-add / reindex / delete -----------------------------------------------------

def cmd_server_user_add(args) -> int:
    from edefter_helper import server
    from edefter_helper.commands import _read_password
    from edefter_helper.server.keys import valid_vkn

    for v in args.vkn:
        if not valid_vkn(v):
            raise UsageError(f"Geçersiz VKN/TCKN: {v} (10 ya da 11 rakam, 0-9).")
    password = _read_password(args, f"{args.name} için şifre: ")
    server.add_user(Path(args.data), args.name, password, args.vkn)
    print(f"Kullanıcı eklendi: {args.name} ({', '.join(args.vkn)})")
    return EXIT_OK


def cmd_server_reindex(args) -> int:
    from edefter_helper.server.app import Verifier
    from edefter_helper.server.checks import Limits
    from edefter_helper.server.store import ACCEPTED, Store

    data = _data_dir(args, must_exist=True)
    store = Store(data)
    limits = Limits()
    report = store.reindex(limits)
    # packages that had not been checked before are checked now; failures go to quarantine
    verifier = Verifier(store, limits, workers=1, autostart=False)
    try:
        for item in report.indexed:
            if item["state"] == ACCEPTED:
                verifier.verify(item["receipt"])
                rec = store.by_receipt(item["receipt"])
                item["state"] = rec.state if rec else item["state"]
                if rec and rec.message:
                    item["message"] = rec.message
    finally:
        verifier.shutdown()
    rejected = [i for i in report.indexed if i["state"] == "rejected"]
    if args.json:
        _print_json(report.as_json())
    else:
        for item in report.indexed:
            extra = f" — {item['message']}" if item.get("message") else ""
            print(f"dizine alındı  {item['vkn']} {item['branch']} {item['period']}  {item['state']}  "
                  f"{item['receipt']}{extra}")
        for item in report.moved:
            print(f"yerine taşındı {item['path']} -> {item['to']}")
        for item in report.quarantined:
            print(f"karantina      {item['path']} -> {item['to']} ({item['reason']})")
        for item in report.missing:
            print(f"DOSYASI YOK    {item['path']} (makbuz {item['receipt']})")
        print(f"{len(report.indexed)} paket dizine alındı, {len(report.quarantined)} dosya karantinaya alındı, "
              f"{len(report.missing)} kaydın dosyası yok. Hiçbir dosya silinmedi; ayrıntılar: {store.log_path}")
    return EXIT_PROBLEMS if (report.quarantined or report.missing or rejected) else EXIT_OK


def cmd_server_delete(args) -> int:
    from edefter_helper.server.keys import month_key
    from edefter_helper.server.store import Store

    key = month_key(args.vkn, args.branch or "0000", args.period)
    if key is None:
        raise UsageError(f"Geçersiz ay: {args.vkn} {args.branch or '0000'} {args.period} "
                         "(VKN 10-11 rakam, şube 4 rakam, dönem YYYY-AA).")
    store = Store(_data_dir(args, must_exist=True))
    rec = store.live(key)
    if rec is None:
        print(f"edefter: {key.vkn} {key.branch} {key.period} için saklanan paket yok; hiçbir şey silinmedi.",
              file=sys.stderr)
        return EXIT_PROBLEMS
    what = (f"{key.vkn} {key.branch} {key.period}: {rec.state}, makbuz {rec.receipt}, {rec.size} bayt, "
            f"sha256 {rec.sha256}")
    if not args.yes:
        print(f"edefter: silinecek paket: {what}\nBu işlem geri alınamaz. Silmek için komutu --yes ile yeniden "
              "çalıştırın.", file=sys.stderr)
        return EXIT_USAGE
    store.admin_delete(key, reason=args.reason or "")
    print(f"Silindi: {what}. Kayıt: {store.log_path}")
    return EXIT_OK


# -- registration ---------------------------------------------------------------------------

def register(sub) -> None:
    p = sub.add_parser("serve", help="yedek depolama sunucusunu çalıştırır")
    p.add_argument("--data", required=True, metavar="KLASÖR")
    p.add_argument("--host", default="127.0.0.1",
                   help="dinlenecek adres (127.0.0.1; başka bir adres için önüne TLS ters vekili gerekir)")
    p.add_argument("--port", type=port_number, default=8765, help="1-65535 (8765)")
    p.add_argument("--max-size", type=positive_int, metavar="BAYT", help="en büyük paket (4 GiB)")
    p.add_argument("--max-connections", type=positive_int, metavar="N", help="açık bağlantı sınırı (4096)")
    p.add_argument("--max-per-address", type=positive_int, metavar="N",
                   help="bir istemci adresinden açık bağlantı sınırı (256)")
    p.add_argument("--trusted-proxy", metavar="ADRES",
                   help="X-Forwarded-For başlığına güvenilecek ters vekilin adresi")
    p.set_defaults(func=cmd_serve)

    srv = sub.add_parser("server", help="depolama sunucusu yönetimi")
    ssub = srv.add_subparsers(dest="srv_command", metavar="İŞLEM", parser_class=sub._parser_class)
    ssub.required = True
    p = ssub.add_parser("user-add", help="sunucuya kullanıcı ekler (şifre sorulur)")
    p.add_argument("--data", required=True, metavar="KLASÖR")
    p.add_argument("name", metavar="KULLANICI")
    p.add_argument("--vkn", action="append", required=True, metavar="VKN")
    p.add_argument("--password-stdin", action="store_true")
    p.set_defaults(func=cmd_server_user_add)

    p = ssub.add_parser("reindex", help="paket dizinini packages/ klasöründeki zip'lerden yeniden kurar "
                                        "(hiçbir şey silmez; tanınmayan dosyalar karantinaya)")
    p.add_argument("--data", required=True, metavar="KLASÖR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_server_reindex)

    p = ssub.add_parser("delete", help="bir ayın saklanan paketini siler (yönetici; admin.log'a yazılır)")
    p.add_argument("--data", required=True, metavar="KLASÖR")
    p.add_argument("vkn", metavar="VKN")
    p.add_argument("period", metavar="YYYY-AA")
    p.add_argument("--branch", metavar="ŞŞŞŞ", help="şube (0000)")
    p.add_argument("--reason", metavar="METİN", help="silme gerekçesi (admin.log'a yazılır)")
    p.add_argument("--yes", action="store_true", help="silmeyi onayla (olmadan yalnızca ne silineceği gösterilir)")
    p.set_defaults(func=cmd_server_delete)
