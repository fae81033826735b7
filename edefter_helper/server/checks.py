"""Checks a received month package before the server calls it stored.

Order matters: cheap structural checks on the central directory first (names, sizes, bomb
limits) so a hostile zip is refused before a single byte is decompressed; then members are
extracted one by one, streamed, into a private work folder; then the engine's own ledger/berat
checks run on that folder.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edefter_helper.engine.model import MonthKey
from edefter_helper.engine.names import parse_name

MANIFEST = "manifest.json"
FORMAT = "edefter-yedekleme/1"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Limits:
    max_total_uncompressed: int = 16 * 1024**3  # sum of member sizes
    max_ratio: int = 200  # e-Defter XML compresses ~10-30x; bombs ~1000x
    ratio_floor: int = 1 << 20  # ratio applies to members bigger than this
    max_members: int = 5000
    max_manifest: int = 4 << 20


class PackageRejected(Exception):
    """Turkish reason the package cannot be stored."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _check_name(name: str, key: MonthKey) -> None:
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or "\\" in name:
        raise PackageRejected(f"Paketteki '{name}' adı mutlak yol ya da ters bölü içeriyor; reddedildi.")
    parts = name.split("/")
    if ".." in parts:
        raise PackageRejected(f"Paketteki '{name}' adı '../' içeriyor; reddedildi.")
    if len(parts) > 1:
        raise PackageRejected(f"Paketteki '{name}' bir alt klasörde; dosyalar paketin kökünde olmalı.")
    if name == MANIFEST:
        return
    parsed = parse_name(name)
    if parsed is None or parsed.is_inventory:
        raise PackageRejected(f"Paketteki '{name}' bir e-Defter dosya adı değil.")
    if parsed.vkn != key.vkn or parsed.period != key.period:
        raise PackageRejected(
            f"Paketteki '{name}' başka bir VKN ya da döneme ait (beklenen {key.vkn}, {key.period}).")
    if parsed.branch is not None and parsed.branch != key.branch:
        raise PackageRejected(f"Paketteki '{name}' başka bir şubeye ait (beklenen {key.branch}).")


def check_structure(zf: zipfile.ZipFile, key: MonthKey, limits: Limits) -> dict:
    """Central-directory checks; returns the parsed manifest."""
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise PackageRejected(f"Pakette çok fazla dosya var ({len(infos)}).")
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        _check_name(name, key)
        if info.is_dir():
            raise PackageRejected(f"Paketteki '{name}' bir klasör; reddedildi.")
        if info.flag_bits & 0x1:
            raise PackageRejected(f"Paketteki '{name}' şifreli; şifreli paket kabul edilmiyor.")
        folded = name.casefold()
        if folded in seen:
            raise PackageRejected(f"Pakette '{name}' birden fazla kez var.")
        seen.add(folded)
        total += info.file_size
        if total > limits.max_total_uncompressed:
            raise PackageRejected("Paketin açılmış boyutu sınırı aşıyor (sıkıştırma bombası olabilir).")
        if info.file_size > limits.ratio_floor and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise PackageRejected(
                f"Paketteki '{name}' olağan dışı yüksek oranda sıkıştırılmış (sıkıştırma bombası olabilir).")
    if MANIFEST not in {i.filename for i in infos}:
        raise PackageRejected("Pakette manifest.json yok.")
    minfo = zf.getinfo(MANIFEST)
    if minfo.file_size > limits.max_manifest:
        raise PackageRejected("manifest.json çok büyük.")
    try:
        manifest = json.loads(zf.read(MANIFEST).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, zipfile.BadZipFile):
        raise PackageRejected("manifest.json okunamadı (geçerli UTF-8 JSON değil).") from None
    _check_manifest(manifest, infos, key)
    return manifest


def _check_manifest(manifest, infos, key: MonthKey) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise PackageRejected(f"manifest.json biçimi tanınmıyor (beklenen \"{FORMAT}\").")
    for field, want in (("vkn", key.vkn), ("branch", key.branch), ("period", key.period)):
        if manifest.get(field) != want:
            raise PackageRejected(
                f"manifest.json '{field}' değeri ({manifest.get(field)!r}) gönderilen ay ile uyuşmuyor ({want}).")
    files = manifest.get("files")
    if not isinstance(files, list) or not all(
            isinstance(f, dict) and isinstance(f.get("name"), str) and isinstance(f.get("size"), int)
            and isinstance(f.get("sha256"), str) for f in files):
        raise PackageRejected("manifest.json 'files' listesi eksik ya da hatalı.")
    listed = {f["name"]: f for f in files}
    members = {i.filename: i for i in infos if i.filename != MANIFEST}
    if len(listed) != len(files) or set(listed) != set(members):
        missing = sorted(set(listed) - set(members))
        extra = sorted(set(members) - set(listed))
        detail = "; ".join(x for x in (
            f"pakette olmayan: {', '.join(missing)}" if missing else "",
            f"manifest.json'da olmayan: {', '.join(extra)}" if extra else "") if x)
        raise PackageRejected(f"manifest.json paketteki dosyalarla uyuşmuyor ({detail or 'tekrarlanan ad'}).")
    for name, info in members.items():
        if listed[name]["size"] != info.file_size:
            raise PackageRejected(f"'{name}' boyutu manifest.json ile uyuşmuyor.")
    if not members:
        raise PackageRejected("Pakette e-Defter dosyası yok.")


def extract_checked(zf: zipfile.ZipFile, manifest: dict, dest: Path) -> None:
    """Stream every member into dest, checking CRC (zipfile does) and sha256 (manifest)."""
    want = {f["name"]: f["sha256"].lower() for f in manifest["files"]}
    for info in zf.infolist():
        if info.filename == MANIFEST:
            continue
        digest = hashlib.sha256()
        written = 0
        # names were checked to be plain file names: no path can escape dest
        with zf.open(info) as src, open(dest / info.filename, "xb") as out:
            while block := src.read(_CHUNK):
                written += len(block)
                if written > info.file_size:  # zipfile stops at file_size; belt and braces
                    raise PackageRejected(f"'{info.filename}' bildirilen boyuttan büyük.")
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != want[info.filename]:
            raise PackageRejected(f"'{info.filename}' SHA-256 özeti manifest.json ile uyuşmuyor.")


class _OneCheck:
    """The engine's file cache for one check of one extracted package, in memory and never written:
    what scan() asks of a small ledger's header is the file's full reading (read_full, as verify would
    make it, a superset of the header), kept for verify, so a file is parsed once, not twice; nothing
    is turned into JSON. Every file is still read in full by the engine; nothing outlives the check."""

    def __init__(self):
        self._full: dict[str, dict] = {}

    def get(self, path, ident: str, field: str, schema_id: str = ""):
        from edefter_helper.engine import reader
        from edefter_helper.engine.verify import PARALLEL_BYTES

        path = str(path)
        if field == "full":
            return self._full.get(path) if schema_id == "" else None
        if field == "header":
            name = parse_name(Path(path).name)
            if name is None or Path(path).stat().st_size >= PARALLEL_BYTES:
                return None  # big files: read as verify reads them (its worker processes)
            if path not in self._full:
                self._full[path] = reader.read_full(Path(path), name)
            return self._full[path]
        return None

    def put(self, *_args, **_kw) -> None:
        pass

    def forget(self, _paths) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


_trust = None


def _trust_list():
    """GİB's countersigning certificates, loaded once (they only add warnings the server does not use)."""
    global _trust
    if _trust is None:
        from edefter_helper.engine.trust import TrustError, TrustList

        try:
            _trust = TrustList.default()
        except TrustError:
            _trust = TrustList()
    return _trust


SERVER_READERS = 2  # processes reading a package's big files: the checker's own and one worker


def engine_verify(folder: Path, key: MonthKey) -> list[str]:
    """The engine's own month checks on an extracted package; returns Turkish problems.

    The one place that knows the engine's verify API, so wiring changes stay here.
    """
    from edefter_helper.engine.verify import verify_roots

    # the server process (~70 MB: Flask, waitress, the store) and one verify worker for a big month:
    # with a worker per core the tree was 172 MB for a 1 GB month; the checks queue anyway
    result = verify_roots([folder], _OneCheck(), trust=_trust_list(), readers=SERVER_READERS)
    sets = list(result.sets)
    if len(sets) != 1:
        return [f"Paket tek bir ay oluşturmuyor ({len(sets)} ay bulundu)."]
    month = sets[0]
    problems = []
    if month.key != key:
        problems.append(f"Paketteki dosyalar {month.key} ayına ait; gönderilen {key}.")
    if not month.complete or month.valid is not True:
        problems += [p.message for p in month.problems]
        if not month.complete:
            problems.append("Ayın dosyaları eksik (defter, berat ve GİB onaylı berat birlikte olmalı).")
        if month.valid is not True:
            problems.append("Defter ile beratlar birbirini doğrulamıyor (Çapraz Doğrulama Kontrolü Hatalıdır).")
    return list(dict.fromkeys(problems))  # keep order, drop repeats


def check_package(path: Path, key: MonthKey, work_root: Path, limits: Limits = Limits()) -> None:
    """Raise PackageRejected with the reason, or return when the package may be stored."""
    work = Path(tempfile.mkdtemp(prefix="verify-", dir=work_root))
    try:
        try:
            with zipfile.ZipFile(path) as zf:
                manifest = check_structure(zf, key, limits)
                extract_checked(zf, manifest, work)
        except zipfile.BadZipFile as exc:
            raise PackageRejected(f"Paket bozuk ya da geçerli bir zip değil ({exc}).") from None
        except (NotImplementedError, RuntimeError) as exc:  # unsupported compression, encryption
            raise PackageRejected(f"Paket açılamadı ({exc}).") from None
        problems = engine_verify(work, key)
        if problems:
            raise PackageRejected(" ".join(problems[:5]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
