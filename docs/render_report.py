#!/usr/bin/env python3
"""Render a sample İbraz Raporu (2 firms, 3 months: one with a warning, one with a missing file) and
screenshot it headless for the README: docs/img/ibraz-raporu.png.

    python docs/render_report.py [--out docs/img/ibraz-raporu.png] [--html KLASÖR] [--browser chromium]

Needs Chromium (Debian: apt-get install -y chromium); pngquant/optipng, when present, shrink the PNG.
The sample values are made up (hashes are sha256 of the file names), but shaped like a real restore."""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edefter_helper import __version__  # noqa: E402
from edefter_helper.report import CopyRecord, ReportFile, ReportMonth, write_report  # noqa: E402

TR = timezone(timedelta(hours=3))
GENERATED_AT = datetime(2025, 3, 12, 14, 5, 31, tzinfo=TR)

# kind -> size in bytes of a typical month's file
SIZES = {"Y": 18_734_512, "YB": 8_214, "GIB-YB": 12_907, "K": 21_408_377, "KB": 8_198, "GIB-KB": 12_891,
         "DR": 41_263}
OWN = "http https://yedek.anadolutekstil.com.tr (muhasebe)"
NAS = "klasör \\\\NAS01\\e-Defter-Yedek"
IZIBIZ = "izibiz https://edefter.izibiz.com.tr (egegida.muhasebe)"
UNTRUSTED = ("Karşı imza GİB'e ait olarak doğrulanamadı: imzalayan sertifika (CN=Gelir İdaresi Başkanlığı,"
             "O=Gelir İdaresi Başkanlığı,C=TR) GİB sertifikaları listesinde yok.")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _files(vkn: str, period: str, branch: str, skip: tuple[str, ...] = ()) -> list[ReportFile]:
    year, month = period.split("-")
    folder = f"{vkn}/" + (f"{branch}/" if branch != "0000" else "") + f"01.01.{year}-31.12.{year}/{month}"
    files = []
    for kind, size in SIZES.items():
        if kind in skip:
            continue
        gib, plain = ("GIB-", kind[4:]) if kind.startswith("GIB-") else ("", kind)
        name = f"{gib}{vkn}-{year}{month}-{plain}-000000" + (f"-{branch}" if branch != "0000" else "") + ".xml"
        files.append(ReportFile(name, size + int(month) * 1_037, _sha(name), folder, True))
    return files


def sample_months() -> list[ReportMonth]:
    anadolu = "Anadolu Tekstil Sanayi ve Ticaret A.Ş."
    ege = "Ege Gıda Pazarlama Ltd. Şti."
    signer_a = "2.5.4.5=4810525635,CN=Anadolu Tekstil Sanayi ve Ticaret A.Ş.,O=Anadolu Tekstil,C=TR"
    signer_e = "2.5.4.5=3880412757,CN=Ege Gıda Pazarlama Ltd. Şti.,O=Ege Gıda,C=TR"
    gib = "CN=Gelir İdaresi Başkanlığı,O=Gelir İdaresi Başkanlığı,C=TR"
    jan = ReportMonth(
        vkn="4810525635", branch="0000", period="2024-01", firm=anadolu, source=OWN,
        files=_files("4810525635", "2024-01", "0000"),
        copies=[CopyRecord(OWN, "2024-04-11T09:42:17+03:00", "EDY-7C1A09F3B2D4E6A8C0F1",
                           _sha("4810525635-202401-0000.zip")),
                CopyRecord(NAS, "2024-04-11T09:43:02+03:00", "", _sha("4810525635-202401-0000.zip"))],
        valid=True, problems=[], warnings=[], signers=[signer_a], countersigners=[gib], missing=[])
    feb = ReportMonth(
        vkn="4810525635", branch="0000", period="2024-02", firm=anadolu, source=OWN,
        files=_files("4810525635", "2024-02", "0000"),
        copies=[CopyRecord(OWN, "2024-05-13T17:08:45+03:00", "EDY-19E4B0C27D5A3F8E6B21",
                           _sha("4810525635-202402-0000.zip"))],
        valid=True, problems=[], warnings=[UNTRUSTED], signers=[signer_a], countersigners=[gib], missing=[])
    mar = ReportMonth(
        vkn="3880412757", branch="0001", period="2024-03", firm=ege, source=IZIBIZ,
        files=_files("3880412757", "2024-03", "0001", skip=("DR",)),
        copies=[CopyRecord(IZIBIZ, "2024-06-10T11:20:09+03:00", "a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607",
                           _sha("3880412757-202403-0001.zip"))],
        valid=False,
        problems=["2019/01 ve sonraki dönemler için Defter Raporu (DR) zorunludur; 2024-03 dönemi için bulunamadı."],
        warnings=[], signers=[signer_e], countersigners=[gib],
        missing=["3880412757-202403-DR-000000-0001.xml: hedefteki pakette yok (yedeklenen paket bu dosyayı "
                 "içermiyor); dosya yazılmadı."])
    return [jan, feb, mar]


def screenshot(html: Path, png: Path, browser: str, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory(prefix="edefter-chromium-") as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--hide-scrollbars",
               "--force-device-scale-factor=1", f"--user-data-dir={profile}", f"--window-size={width},{height}",
               f"--screenshot={png}", html.resolve().as_uri()]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    if not png.is_file():
        raise SystemExit(f"{browser} did not write {png}")
    if shutil.which("pngquant"):
        subprocess.run(["pngquant", "--force", "--skip-if-larger", "--quality=70-95", "--strip",
                        "--output", str(png), str(png)], check=False)
    if shutil.which("optipng"):
        subprocess.run(["optipng", "-quiet", "-o2", str(png)], check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "ibraz-raporu.png")
    parser.add_argument("--html", type=Path, help="keep the sample report in this folder")
    parser.add_argument("--browser", default=shutil.which("chromium") or shutil.which("chromium-browser")
                        or shutil.which("google-chrome") or "chromium")
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=1600)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edefter-report-") as tmp:
        folder = args.html or Path(tmp)
        report = write_report(sample_months(), folder, generated_at=GENERATED_AT, tool_version=__version__)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        screenshot(report, args.out, args.browser, args.width, args.height)
    print(f"{args.out} ({args.out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
