"""`edefter` command line: the same functions the ribbon buttons call, headless.

Exit codes: 0 success, 1 the work found problems (a set invalid, a month not backed up),
2 usage or input errors. Errors are one Turkish line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input from the user; Turkish message, exit 2."""


_ARGPARSE_TR = {
    "usage: ": "kullanım: ",
    "positional arguments": "konumsal argümanlar",
    "options": "seçenekler",
    "optional arguments": "seçenekler",
    "show this help message and exit": "bu yardımı gösterir ve çıkar",
    "show program's version number and exit": "programın sürümünü gösterir ve çıkar",
    "the following arguments are required: %s": "şu argümanlar gerekli: %s",
    "invalid choice: %(value)r (choose from %(choices)s)": "geçersiz seçim: %(value)r (seçenekler: %(choices)s)",
    "unrecognized arguments: %s": "tanınmayan argümanlar: %s",
    "expected one argument": "bir değer bekleniyor",
    "expected at least one argument": "en az bir değer bekleniyor",
    "argument %(argument_name)s: %(message)s": "%(argument_name)s: %(message)s",
    "invalid %(type)s value: %(value)r": "geçersiz %(type)s değeri: %(value)r",
    "not allowed with argument %s": "%s ile birlikte verilemez",
    "one of the arguments %s is required": "şu argümanlardan biri gerekli: %s",
    "ambiguous option: %(option)s could match %(matches)s": "belirsiz seçenek: %(option)s şunlardan biri olabilir: %(matches)s",
    "ignored explicit argument %r": "yok sayılan değer %r",
}
# argparse looks its sentences up through gettext; answer in Turkish (the CLI's only language)
argparse._ = lambda text: _ARGPARSE_TR.get(text, text)  # noqa: SLF001

# a help line for options defined without one, by name (the same meaning everywhere)
_DEFAULT_HELP = {
    "--json": "sonucu JSON olarak yazar", "--no-cache": "doğrulama önbelleğini kullanmaz, her dosyayı yeniden okur",
    "--vkn": "VKN (10 hane) ya da TCKN (11 hane)", "--period": "dönem, YYYY-AA (ör. 2024-01)",
    "--branch": "şube kodu, 4 hane (ör. 0001)", "--out": "çıktı klasörü", "--firm": "yalnız bu VKN/TCKN (tekrarlanabilir)",
    "--parallel": "aynı anda işlenecek ay sayısı", "--journal": "günlük veritabanı (varsayılan: kullanıcı veri klasörü)",
    "--all": "Otomatik Yedekleme = Hayır olan firmalar da", "--data": "sunucunun veri klasörü",
    "--password-stdin": "şifreyi ekrana sormadan standart girdiden okur", "--target": "Hedefler sayfasındaki Hedef adı",
    "--user": "Firmalar sayfasındaki Kullanıcı Adı", "--into-existing": "dolu klasöre ekler; içeriği farklı dosyaya yazmaz",
    "--recent": "son bu kadar günde saklanan aylar da", "--host": "dinlenecek adres", "--port": "dinlenecek port (1–65535)",
    "roots": "taranacak klasörler", "root": "e-Defter klasörü", "path": "kontrol çalışma kitabı (.xlsm)",
    "out": "yazılacak dosya", "dir": "demo klasörü (varsayılan: ./edefter-demo)", "op": "set, delete ya da check",
    "name": "kullanıcı adı", "vkn": "VKN/TCKN", "period": "dönem, YYYY-AA",
}


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.set_defaults(_parser=self)  # the deepest parser chosen wins: its usage on errors

    def add_argument(self, *names, **kwargs):
        if "help" not in kwargs and kwargs.get("action") != "version":
            for name in names:
                if name in _DEFAULT_HELP:
                    kwargs["help"] = _DEFAULT_HELP[name]
                    break
        return super().add_argument(*names, **kwargs)

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:  # said by the subcommand that was typed, with its own usage
            getattr(parsed, "_parser", self).error(f"tanınmayan argümanlar: {' '.join(extras)}")
        return parsed

    def error(self, message: str):  # argparse's own errors: keep its text, our exit code
        self.print_usage(sys.stderr)
        print(f"edefter: hata: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _print_json(data) -> None:
    # indented for a person at a terminal, compact for programs (84 000 files make 24 MB indented)
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=indent) + "\n")


def _progress(text: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r{text[:100]:<100}")
        sys.stderr.flush()


def _end_progress() -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r" + " " * 100 + "\r")


def _cache(args):
    from edefter_helper import paths
    from edefter_helper.engine.cache import FileCache

    if getattr(args, "no_cache", False):
        return FileCache(None)
    return FileCache(paths.cache_path())


def _roots(values: list[str]) -> list[Path]:
    roots = [Path(v) for v in values]
    for r in roots:
        if not r.exists():
            raise UsageError(f"Klasör bulunamadı: {r}")
    return roots


# -- engine commands ------------------------------------------------------------------------

def _table(result, verified: bool) -> str:
    from edefter_helper.status import STAGE_TR

    lines = []
    header = f"{'VKN/TCKN':<12} {'Şube':<5} {'Dönem':<8} {'e-Defter Durumu':<24} {'Dosya':>5}  Durum"
    lines.append(header)
    lines.append("-" * len(header))
    for ms in result.sets:
        if verified:
            state = "Geçerli" if ms.valid else "Hatalı"
        else:
            state = "Tam" if ms.complete else "Eksik"
        lines.append(f"{ms.key.vkn:<12} {ms.key.branch:<5} {ms.key.period:<8} "
                     f"{STAGE_TR.get(ms.stage, ms.stage):<24} {len(ms.files):>5}  {state}")
        for prob in ms.problems:
            where = f" [{Path(prob.path).name}]" if prob.path else ""
            lines.append(f"    - {prob.message}{where}")
        for warn in ms.warnings:
            where = f" [{Path(warn.path).name}]" if warn.path else ""
            lines.append(f"    ! Uyarı: {warn.message}{where}")
    if result.ignored:
        lines.append("")
        lines.append(f"Yok sayılan dosyalar: {len(result.ignored)}")
        for item in result.ignored[:20]:
            lines.append(f"    {item['path']}: {item['reason']}")
        if len(result.ignored) > 20:
            lines.append(f"    … ve {len(result.ignored) - 20} dosya daha (--json ile hepsi)")
    n_bad = sum(1 for ms in result.sets if not (ms.valid if verified else ms.complete))
    word = "hatalı" if verified else "eksik"
    lines.append("")
    lines.append(f"{len(result.sets)} dönem bulundu, {n_bad} dönem {word}.")
    return "\n".join(lines)


def cmd_scan(args) -> int:
    from edefter_helper.engine.scan import scan

    cache = _cache(args)
    try:
        result = scan(_roots(args.roots), cache, _progress)
    finally:
        cache.close()
        _end_progress()
    if args.json:
        _print_json(result.as_json())
    else:
        print(_table(result, verified=False))
    return EXIT_OK


def _verify(args):
    from edefter_helper.engine.trust import TrustError, TrustList
    from edefter_helper.engine.verify import SchemaError, verify_roots

    cache = _cache(args)
    try:
        trust = TrustList.default()
        return verify_roots(_roots(args.roots), cache, Path(args.schemas) if args.schemas else None, _progress,
                            trust=trust)
    except (SchemaError, TrustError) as exc:
        raise UsageError(str(exc)) from None
    finally:
        cache.close()
        _end_progress()


def cmd_verify(args) -> int:
    result = _verify(args)
    if args.json:
        _print_json(result.as_json())
    else:
        print(_table(result, verified=True))
    return EXIT_OK if all(ms.valid for ms in result.sets) else EXIT_PROBLEMS


def cmd_pack(args) -> int:
    from edefter_helper.engine.names import valid_branch, valid_identifier, valid_period
    from edefter_helper.engine.package import PackError, pack

    if not valid_identifier(args.vkn):
        raise UsageError(f"Geçersiz VKN/TCKN: {args.vkn} (VKN 10, TCKN 11 haneli olmalı).")
    if not valid_period(args.period):
        raise UsageError(f"Geçersiz dönem: {args.period} (YYYY-AA biçiminde olmalı, ör. 2024-01).")
    if args.branch is not None and not valid_branch(args.branch):
        raise UsageError(f"Geçersiz şube kodu: {args.branch} (4 haneli olmalı).")
    args.schemas = getattr(args, "schemas", None)
    result = _verify(args)
    branch = args.branch or "0000"
    matches = [ms for ms in result.sets
               if ms.key.vkn == args.vkn and ms.key.period == args.period and ms.key.branch == branch]
    if not matches:
        others = sorted({ms.key.branch for ms in result.sets
                         if ms.key.vkn == args.vkn and ms.key.period == args.period})
        hint = f" Bu dönemde bulunan şubeler: {', '.join(others)} (--branch ile seçin)." if others else ""
        print(f"edefter: {args.vkn} için {args.period} dönemine ait e-Defter dosyası bulunamadı "
              f"(şube {branch}).{hint}", file=sys.stderr)
        return EXIT_PROBLEMS
    ms = matches[0]
    if not ms.valid:
        print(f"edefter: {args.vkn} {args.period} (şube {branch}) paketlenmedi, dönem hatalı:", file=sys.stderr)
        for prob in ms.problems:
            print(f"  - {prob.message}", file=sys.stderr)
        if args.json:
            _print_json({"packed": False, "set": ms.as_json()})
        return EXIT_PROBLEMS
    try:
        packed = pack(ms, Path(args.out))
    except PackError as exc:
        cache = _cache(args)
        try:
            cache.forget(exc.paths)
        finally:
            cache.close()
        print(f"edefter: {exc.message}", file=sys.stderr)
        return EXIT_PROBLEMS
    if args.json:
        _print_json({"packed": True, "path": str(packed.path), "size": packed.size, "sha256": packed.sha256,
                     "files": [{"name": n, "size": s, "sha256": h} for n, s, h in packed.files]})
    else:
        print(f"{packed.path}\n{packed.size} bayt\nsha256 {packed.sha256}")
    return EXIT_OK


# -- parser ---------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edefter", description="e-Defter dosyalarını bulur, doğrular, paketler ve yedekler.")
    from edefter_helper import __version__

    parser.add_argument("--version", action="version", version=f"edefter {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="KOMUT", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("scan", help="klasörlerdeki e-Defter aylarını bulur ve listeler")
    p.add_argument("roots", nargs="+", metavar="KLASÖR")
    p.add_argument("--json", action="store_true", help="JSON çıktı")
    p.add_argument("--no-cache", action="store_true", help="önbelleği kullanma")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("verify", help="ayları GİB ve entegratör kurallarıyla doğrular")
    p.add_argument("roots", nargs="+", metavar="KLASÖR")
    p.add_argument("--json", action="store_true")
    p.add_argument("--schemas", metavar="KLASÖR", help="GİB XSD klasörü (edefter.xsd)")
    p.add_argument("--no-cache", action="store_true")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("pack", help="bir ayı tek zip paketine koyar")
    p.add_argument("root", metavar="KLASÖR")
    p.add_argument("--vkn", required=True)
    p.add_argument("--period", required=True, metavar="YYYY-AA")
    p.add_argument("--branch", metavar="ŞŞŞŞ")
    p.add_argument("--out", required=True, metavar="KLASÖR")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-cache", action="store_true")
    p.set_defaults(func=cmd_pack, roots=None)

    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands():
    """Command groups defined beside the layers they drive (kept out of this file's imports)."""
    from edefter_helper import commands

    return commands.REGISTER


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        # a Windows console or pipe in cp1254 cannot show every character (→, ✓): never crash on one
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "roots", None) is None and hasattr(args, "root"):
        args.roots = [args.root]
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"edefter: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("edefter: kullanıcı tarafından durduruldu.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the user gets one line; the details go to the log
        log = _log_unexpected()
        print(f"edefter: beklenmeyen hata ({type(exc).__name__}): {exc}. Ayrıntılar: {log}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, OSError) else EXIT_PROBLEMS


def _log_unexpected() -> str:
    from edefter_helper import crashlog

    return crashlog.record(context="edefter")
