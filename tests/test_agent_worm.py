"""The WORM probe kept and repeated (issue 11): `edefter target check` records its answer in the journal,
and the agent asks every S3 target in use again once a week — against the real Ceph RGW the test suite
starts (tests/s3_server.py; skipped with the install command where RGW is missing). The agent's clock is
moved by the test: no waiting."""

from __future__ import annotations

import time


from edefter_helper import agent as A
from edefter_helper import cli, credentials
from edefter_helper.journal import Journal
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook
from tests.test_agent import VKN, Clock, fast_options, write_month

pytest_plugins = ("tests.s3_server",)
DAY = 86400.0


def s3_workbook(tmp_path, edefter, ceph_s3, root) -> tuple:
    bucket = ceph_s3.bucket()
    wb = tmp_path / "kontrol.xlsm"
    assert edefter("workbook", "new", wb).returncode == 0
    book = FileBook(wb)
    book.write_rows(L.FIRMS, [{"name": "Anadolu Gıda A.Ş.", "vkn": VKN, "folder": str(root), "target": "Arşiv",
                               "user": ceph_s3.access_key, "auto": "Evet"}])
    book.write_rows(L.TARGETS, [{"name": "Arşiv", "kind": "s3",
                                 "address": ceph_s3.address(bucket, "yedek", location="TR")}])
    book.save()
    credentials.set_password("Arşiv", ceph_s3.access_key, ceph_s3.secret_key)
    return wb, bucket


def probes(journal) -> dict:
    j = Journal(journal)
    try:
        return j.last_probes()
    finally:
        j.close()


def test_target_check_keeps_the_answer_and_the_agent_probes_weekly(tmp_path, edefter, ceph_s3, memory_keyring,
                                                                    capsys):
    root = tmp_path / "defter"
    write_month(root, "2024-01")
    wb, bucket = s3_workbook(tmp_path, edefter, ceph_s3, root)
    journal = tmp_path / "j.sqlite3"

    assert cli.main(["target", "check", "--workbook", str(wb), "--journal", str(journal), "Arşiv"]) == 0
    assert "Silinemezlik (WORM): tamam" in capsys.readouterr().out
    ((ident, (when, worm, detail)),) = probes(journal).items()
    assert ident.startswith("s3|") and ident.endswith(f"|{ceph_s3.access_key}") and worm is True and detail

    clock = Clock()
    base = time.time() - clock.t  # the journal stamps probes with the real time
    agent = A.Agent(wb, interval=60, settle=30, journal=journal, watch=False, clock=clock,
                    wallclock=lambda: base + clock.t, options=fast_options())
    agent.start()
    try:
        agent.cycle(scan=True)
        assert agent.worm_probes == 0  # probed at set-up, minutes ago: not again
        clock.t += 3 * DAY
        agent.cycle(scan=True)
        assert agent.worm_probes == 0
        clock.t += 5 * DAY  # a week and a day since the set-up's probe
        agent.cycle(scan=True)
        agent.cycle(scan=True)
        assert agent.worm_probes == 1
        clock.t += 7 * DAY
        agent.cycle(scan=True)
        assert agent.worm_probes == 2
    finally:
        agent.close()
    (last,) = probes(journal).values()
    assert last[1] is True and last[0] >= when
    listed = ceph_s3.client().list_objects_v2(Bucket=bucket, Prefix="yedek/.edefter-worm-probe/")["Contents"]
    assert len(listed) == 3  # set-up + two weekly probes, each a locked object of its own


def test_a_probe_that_cannot_run_is_retried_after_the_backoff(tmp_path, edefter, ceph_s3, memory_keyring):
    root = tmp_path / "defter"
    write_month(root, "2024-01")
    wb, _ = s3_workbook(tmp_path, edefter, ceph_s3, root)
    credentials.set_password("Arşiv", ceph_s3.access_key, "yanlış-gizli-anahtar")  # refused by RGW
    journal = tmp_path / "j.sqlite3"
    clock = Clock()
    base = time.time() - clock.t
    agent = A.Agent(wb, interval=60, settle=30, journal=journal, watch=False, clock=clock,
                    wallclock=lambda: base + clock.t, backoff=600, options=fast_options())
    agent.start()
    try:
        agent.cycle(scan=True)
        assert agent.worm_probes == 0 and probes(journal) == {}  # nothing recorded from a failed probe
        credentials.set_password("Arşiv", ceph_s3.access_key, ceph_s3.secret_key)
        clock.t += 60
        agent.cycle(scan=True)
        assert agent.worm_probes == 0  # not before the back-off
        clock.t += 600
        agent.cycle(scan=True)
        assert agent.worm_probes == 1 and list(probes(journal).values())[0][1] is True
    finally:
        agent.close()
