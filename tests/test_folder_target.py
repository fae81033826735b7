import hashlib
import json
import os

import pytest

from edefter_helper.engine.model import MonthKey
from edefter_helper.targets.base import (
    MISSING, STORED, Package, RejectedError, TargetError,
)
from edefter_helper.targets.folder import FolderTarget

KEY = MonthKey("4840847211", "0000", "2024-01")


def make_package(tmp_path, key=KEY, data=b"PK\x03\x04 ocak 2024 " * 5000, name="a"):
    src = tmp_path / "src" / name
    src.mkdir(parents=True, exist_ok=True)
    path = src / key.package_name
    path.write_bytes(data)
    return Package(path=path, key=key, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "nas"
    r.mkdir()
    return r


def test_send_query_fetch_cycle(tmp_path, root):
    pkg = make_package(tmp_path)
    target = FolderTarget(root)
    assert target.query(KEY).state == MISSING
    receipt = target.send(pkg, "Tiger sisteminden aktarılmıştır")
    assert receipt.state == STORED and receipt.sha256 == pkg.sha256 and receipt.reference
    stored = root / "4840847211" / "4840847211-202401-0000.zip"
    assert stored.read_bytes() == pkg.path.read_bytes()
    side = json.loads((root / "4840847211" / "4840847211-202401-0000.zip.json").read_text("utf-8"))
    assert side["description"] == "Tiger sisteminden aktarılmıştır" and side["sha256"] == pkg.sha256
    # no temp files left behind
    assert sorted(p.name for p in stored.parent.iterdir()) == [stored.name, stored.name + ".json"]

    q = target.query(KEY)
    assert q.state == STORED and q.sha256 == pkg.sha256 and q.reference == receipt.reference
    out = target.fetch(KEY, tmp_path / "restore" / "x.zip")
    assert out.read_bytes() == pkg.path.read_bytes()


def test_same_package_again_same_receipt_different_refused(tmp_path, root):
    target = FolderTarget(root)
    pkg = make_package(tmp_path)
    first = target.send(pkg, "")
    again = target.send(pkg, "")
    assert again.state == STORED and again.reference == first.reference and again.sha256 == first.sha256
    other = make_package(tmp_path, data=b"farkli icerik", name="b")
    with pytest.raises(RejectedError) as err:
        target.send(other, "")
    assert "önce iptal edilmeli" in err.value.message
    assert target.query(KEY).sha256 == pkg.sha256  # the stored one is untouched
    target.cancel(KEY)
    assert target.query(KEY).state == MISSING
    assert target.send(other, "").sha256 == other.sha256


def test_query_sees_a_changed_file(tmp_path, root):
    target = FolderTarget(root)
    pkg = make_package(tmp_path)
    target.send(pkg, "")
    (root / KEY.vkn / KEY.package_name).write_bytes(b"bozuldu")
    q = target.query(KEY)
    assert q.state == STORED and q.sha256 != pkg.sha256 and "farklı" in q.message


def test_package_changed_after_build_is_rejected(tmp_path, root):
    pkg = make_package(tmp_path)
    pkg.path.write_bytes(b"degisti")
    with pytest.raises(RejectedError):
        FolderTarget(root).send(pkg, "")
    assert not (root / KEY.vkn / KEY.package_name).exists()


def test_missing_folder(tmp_path):
    target = FolderTarget(tmp_path / "yok")
    with pytest.raises(TargetError) as err:
        target.send(make_package(tmp_path), "")
    assert "bulunamadı" in err.value.message
    with pytest.raises(TargetError):
        target.query(KEY)


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="needs POSIX permissions, not root")
def test_unwritable_folder(tmp_path, root):
    root.chmod(0o500)
    try:
        with pytest.raises(TargetError) as err:
            FolderTarget(root).send(make_package(tmp_path), "")
        assert "yazılamadı" in err.value.message
    finally:
        root.chmod(0o700)


def test_unusable_vkn_folder_is_a_target_error(tmp_path, root):
    (root / KEY.vkn).write_bytes(b"bir dosya, klasor degil")
    with pytest.raises(TargetError) as err:
        FolderTarget(root).send(make_package(tmp_path), "")
    assert "yazılamadı" in err.value.message


def test_a_damaged_package_its_sidecar_vouches_for_is_put_back_and_other_bytes_are_still_refused(tmp_path, root):
    target = FolderTarget(root)
    pkg = make_package(tmp_path)
    first = target.send(pkg, "ilk")
    stored = root / KEY.vkn / KEY.package_name
    stored.write_bytes(b"bozuldu" + stored.read_bytes()[7:])  # damaged at rest, same size
    other = make_package(tmp_path, data=b"farkli icerik", name="b")
    with pytest.raises(RejectedError):
        target.send(other, "")  # not the package the sidecar names: refused, the damaged file left as it is
    assert stored.read_bytes().startswith(b"bozuldu")
    again = target.send(pkg, "")
    assert again.state == STORED and again.sha256 == pkg.sha256 and again.reference == first.reference
    assert stored.read_bytes() == pkg.path.read_bytes() and "yeniden yazıldı" in again.message
    meta = json.loads((root / KEY.vkn / (KEY.package_name + ".json")).read_text(encoding="utf-8"))
    assert meta["description"] == "ilk" and meta["repaired_at"]
    # a sidecar that is not an object (written by something else) is no record at all: never a crash
    (root / KEY.vkn / (KEY.package_name + ".json")).write_text("[1, 2]", encoding="utf-8")
    assert target.query(KEY).state == STORED


def test_months_lists_only_well_formed_packages_of_the_vkn(tmp_path, root):
    """Listed months become folder names in a restore: names someone else left on the NAS count for nothing."""
    target = FolderTarget(root)
    assert target.months(KEY.vkn) == []  # no folder for the VKN yet
    target.send(make_package(tmp_path), "")
    folder = root / KEY.vkn
    for junk in (f"{KEY.vkn}-202413-0000.zip", f"{KEY.vkn}-202401-٠٠٠٣.zip", f"{KEY.vkn}-202401-0003.zip.part",
                 "1111111111-202401-0000.zip", f"{KEY.vkn}-202401-0003.ZIP.json", "notlar.txt"):
        (folder / junk).write_bytes(b"x")
    (folder / f"{KEY.vkn}-202402-0003.zip").write_bytes(b"x")
    assert target.months(KEY.vkn) == [KEY, MonthKey(KEY.vkn, "0003", "2024-02")]
