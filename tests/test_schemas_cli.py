"""Through the real CLI once verify/reader use engine.schema (wiring check)."""
import json
import shutil

from edefter_helper.samples import write_month


def _problems(proc):
    data = json.loads(proc.stdout)
    return [(p["code"], p["message"]) for s in data["sets"] for p in s["problems"]]


def test_verify_with_gib_2015_package(tmp_path, edefter, shared_dir):
    pkg = tmp_path / "gib-2015"
    shutil.copytree(shared_dir / "schemas" / "edefter", pkg)
    for name in ("edefter.xsd", "XAdESv141.xsd"):
        shutil.copy2(shared_dir / "schemas" / "edefter-2015" / name, pkg / name)
    write_month(tmp_path / "ay", "4810525635", "2024-01")
    proc = edefter("verify", tmp_path / "ay", "--json", "--schemas", pkg)
    assert proc.returncode == 1, proc.stderr
    problems = _problems(proc)
    assert [c for c, _ in problems] == ["schema-invalid"], problems
    assert "defterraporu" in problems[0][1] and "tanımlı değil" in problems[0][1]
    # a 2018 month has no DR: valid under the 2015 package
    write_month(tmp_path / "ay2018", "4810525635", "2018-06")
    proc = edefter("verify", tmp_path / "ay2018", "--json", "--schemas", pkg)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)


def test_verify_schemas_truncated_ledger_is_malformed(tmp_path, edefter, shared_dir):
    month = write_month(tmp_path / "ay", "4810525635", "2024-01")
    y = month.find("Y", 0)
    y.write_bytes(y.read_bytes()[:-5])
    proc = edefter("verify", tmp_path / "ay", "--json", "--schemas", shared_dir / "schemas" / "edefter")
    assert proc.returncode == 1
    assert [c for c, _ in _problems(proc)] == ["malformed-xml"], _problems(proc)


def test_verify_schemas_forbidden_element(tmp_path, edefter, shared_dir):
    month = write_month(tmp_path / "ay", "4810525635", "2024-01")
    y = month.find("Y", 0)
    y.write_bytes(y.read_bytes().replace(b"<gl-cor:documentInfo>",
                                         b"<gl-cor:documentInfo><gl-cor:yasak>x</gl-cor:yasak>", 1))
    proc = edefter("verify", tmp_path / "ay", "--json", "--schemas", shared_dir / "schemas" / "edefter")
    assert proc.returncode == 1
    assert "schema-invalid" in [c for c, _ in _problems(proc)], _problems(proc)


def test_verify_schemas_refused_remote_import(tmp_path, edefter):
    write_month(tmp_path / "ay", "4810525635", "2024-01")
    pkg = tmp_path / "s"
    pkg.mkdir()
    (pkg / "edefter.xsd").write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
        '<xs:import namespace="urn:o" schemaLocation="http://example.invalid/o.xsd"/></xs:schema>', encoding="utf-8")
    proc = edefter("verify", tmp_path / "ay", "--schemas", pkg)
    assert proc.returncode == 2 and "http://example.invalid/o.xsd" in proc.stderr and "Traceback" not in proc.stderr
