"""Automatic backup end to end with notifications (issue 10, "Done when"): the agent started by the test
watches a real folder, backs up to the real storage server on loopback, and tells a real SMTP server
(aiosmtpd, STARTTLS + AUTH) and a real webhook receiver — configured on the workbook's Bildirimler sheet,
the password in the keyring, the server's certificate trusted the way an IT person adds a company CA
(SSL_CERT_FILE). A target down for the whole test is told once, however many retries; the dead-man
alarm fires when cycles stop succeeding and when they stop altogether (a hung cycle).

Where time matters the agent runs on a clock the test moves; the threaded test only waits, with hang
guards, and asserts outcomes (counts of rescans, messages received), never durations."""

from __future__ import annotations

import email
import email.policy
import threading
import time

import keyring
import pytest

from edefter_helper import actions
from edefter_helper import agent as A
from edefter_helper import credentials, server
from edefter_helper import status as S
from edefter_helper.demo import MemoryKeyring
from edefter_helper.samples.month import make_spec, write_spec
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook
from tests.test_agent import (VKN, Clock, Running, dead_address, drop_gib_berats, fast_options, month_folder,
                              status_of, wait_for, write_ledgers, write_month)
from tests.test_notify import PASSWORD, SEED_LABELS, SMTP_USER, Receiver, SmtpServer, pki  # noqa: F401

FIRM = "Anadolu Gıda A.Ş."
OTHER_VKN = "1234567890"
OTHER_FIRM = "Karadeniz Lojistik Ltd. Şti."
RECIPIENTS = "muhasebe@firma.com.tr"
HOUR = 3600.0


@pytest.fixture
def ring(monkeypatch, pki):  # noqa: F811 - the fixture imported above
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    credentials.set_password("bildirim:127.0.0.1", SMTP_USER, PASSWORD)
    monkeypatch.setenv("SSL_CERT_FILE", str(pki["ca"]))  # the company CA, as an IT person installs it
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def smtp(pki):  # noqa: F811
    s = SmtpServer(pki)
    yield s
    s.stop()


@pytest.fixture
def hook():
    r = Receiver()
    yield r
    r.stop()


def control_workbook(tmp_path, edefter, firms: list[dict], targets: list[dict], smtp_port: int, hook_port: int,
                     events: str = "yedeklendi, yedeklenemedi, hedefe-ulasilamiyor, olu-adam",
                     hook_events: str | None = None, hook_path: str = "/hooks/edefter"):
    """The e-mail channel takes `events`, the webhook `hook_events` (the same when None)."""
    wb = tmp_path / "kontrol.xlsm"
    proc = edefter("workbook", "new", wb)
    assert proc.returncode == 0, proc.stderr
    book = FileBook(wb)
    book.write_rows(L.FIRMS, firms)
    book.write_rows(L.TARGETS, targets)
    book.write_rows(L.NOTIFY, [
        {"kind": "e-posta", "address": f"127.0.0.1:{smtp_port} {RECIPIENTS}", "events": events,
         "user": SMTP_USER, "sender": "e-defter@firma.com.tr"},
        {"kind": "webhook", "address": f"http://127.0.0.1:{hook_port}{hook_path}",
         "events": events if hook_events is None else hook_events},
    ])
    book.save()
    return wb


def mails(smtp: SmtpServer) -> list:
    return [email.message_from_bytes(m.original_content, policy=email.policy.default) for m in smtp.messages]


def test_berats_dropped_become_backed_up_with_one_email_and_one_webhook_call(tmp_path, edefter, ring, smtp, hook):
    root = tmp_path / "Müşteri Defterleri" / "Anadolu Gıda"
    write_ledgers(root, "2024-01")  # the accounting program wrote the month; GİB has not approved it yet
    data = tmp_path / "sunucu"
    server.add_user(data, "ali", "pw-ğ1", [VKN])
    credentials.set_password("Merkez", "ali", "pw-ğ1")
    with server.start_in_thread(data) as storage:
        wb = control_workbook(tmp_path, edefter,
                              [{"name": FIRM, "vkn": VKN, "folder": str(root), "target": "Merkez", "user": "ali",
                                "auto": "Evet"}],
                              [{"name": "Merkez", "kind": "http", "address": storage.url}], smtp.port, hook.port)
        journal = tmp_path / "günlük.sqlite3"
        taken_at = []
        agent = A.Agent(wb, interval=2, settle=0.5, journal=journal, options=fast_options(),
                        on_results=lambda summary: taken_at.append(agent.scans))
        agent.on_cycle = A.Alarms(agent)
        with Running(agent):
            wait_for(lambda: agent.scans >= 2, "two rescans")
            assert status_of(journal, "2024-01") is None and smtp.messages == [] and hook.hits == []

            dropped_at = agent.scans
            drop_gib_berats(root, "2024-01", tmp_path)
            wait_for(lambda: status_of(journal, "2024-01") == S.BACKED_UP, "the month to be Yedeklendi")
            wait_for(lambda: taken_at and smtp.messages and hook.calls, "the results, the e-mail and the webhook call")
            assert taken_at and taken_at[0] - dropped_at <= 2  # within two rescan intervals
            seen = agent.cycles
            wait_for(lambda: agent.cycles >= seen + 3, "three more cycles")  # nothing new: nothing more sent

    assert len(smtp.messages) == 1 and len(hook.calls) == 1
    (msg,) = mails(smtp)
    assert msg["Subject"] == f"e-Defter yedeklendi: {FIRM} — Ocak 2024"
    body = msg.get_content()
    assert "Ocak 2024 ayına ait Yevmiye ve Büyük Defter dosyaları yedeklendi." in body
    listed = [line[2:].split(":", 1)[0] for line in body.splitlines() if line.startswith("- ")]
    assert listed == SEED_LABELS  # the seed's information screen: the seven files, in its order
    payload = hook.calls[0]["json"]
    assert payload["event"] == "yedeklendi" and payload["vkn"] == VKN and payload["period"] == "2024-01"
    assert [f["label"] for f in payload["files"]] == SEED_LABELS
    assert all(f["file"].startswith((VKN, f"GIB-{VKN}")) for f in payload["files"])
    assert "pw-ğ1" not in body and PASSWORD not in body and PASSWORD not in hook.calls[0]["raw"].decode()


def test_a_target_down_is_told_once_and_the_dead_man_fires_when_cycles_stop(tmp_path, edefter, ring, smtp, hook):
    ok_root, down_root = tmp_path / "anadolu", tmp_path / "karadeniz"
    write_month(ok_root, "2024-01")
    for period in ("2024-01", "2024-02", "2024-03"):
        write_spec(month_folder(down_root, period), make_spec(OTHER_VKN, period))
    data = tmp_path / "sunucu"
    server.add_user(data, "ali", "pw-1", [VKN])
    credentials.set_password("Merkez", "ali", "pw-1")
    credentials.set_password("Yedek", "veli", "pw-2")
    with server.start_in_thread(data) as storage:
        wb = control_workbook(
            tmp_path, edefter,
            [{"name": FIRM, "vkn": VKN, "folder": str(ok_root), "target": "Merkez", "user": "ali", "auto": "Evet"},
             {"name": OTHER_FIRM, "vkn": OTHER_VKN, "folder": str(down_root), "target": "Yedek", "user": "veli",
              "auto": "Evet"}],
            [{"name": "Merkez", "kind": "http", "address": storage.url},
             {"name": "Yedek", "kind": "http", "address": dead_address()}],
            smtp.port, hook.port)
        journal = tmp_path / "j.sqlite3"
        clock = Clock()
        agent = A.Agent(wb, interval=60, settle=30, journal=journal, watch=False, clock=clock,
                        wallclock=clock.wall, backoff=120, max_backoff=600, options=fast_options(parallel=1))
        alarms = A.Alarms(agent, threshold_s=2 * HOUR)
        agent.on_cycle = alarms
        tried = []
        agent._backup = lambda *a, **kw: (tried.append(clock.t), actions.backup(*a, **kw))[1]
        agent.start()
        try:
            for _ in range(100):  # 100 minutes of cycles, one a minute: the down target is retried again and again
                agent.cycle(scan=True)
                clock.t += 60
            assert len(tried) >= 5  # retried with back-off, not once
            assert status_of(journal, "2024-01") == S.BACKED_UP
        finally:
            agent.close()
        # no cycle succeeded since the target went down (100 minutes: under the 2 h alarm) ...
        assert "olu-adam" not in [c["json"]["event"] for c in hook.calls]
        # ... and now the cycles stop altogether
        clock.t += 2 * HOUR
        alarms.check()  # the watch thread's check: no cycle needed
        alarms.check()

    events = [c["json"]["event"] for c in hook.calls]
    assert events.count("yedeklendi") == 1
    assert events.count("hedefe-ulasilamiyor") == 1  # one failure notification, not one per retry
    assert "yedeklenemedi" not in events  # the target's trouble is not told again month by month
    assert events.count("olu-adam") == 1
    (down,) = [c["json"] for c in hook.calls if c["json"]["event"] == "hedefe-ulasilamiyor"]
    assert down["target"] == "Yedek" and "ulaşılamıyor" in down["message"]
    subjects = [m["Subject"] for m in mails(smtp)]
    assert len(subjects) == len(events) == 3 and sum("durmuş olabilir" in s for s in subjects) == 1


def test_a_hung_cycle_still_raises_the_alarm_from_the_watch_thread(tmp_path, edefter, ring, hook):
    root = tmp_path / "defter"
    write_month(root, "2024-01")
    credentials.set_password("Merkez", "ali", "pw-1")
    wb = control_workbook(tmp_path, edefter,
                          [{"name": FIRM, "vkn": VKN, "folder": str(root), "target": "Merkez", "user": "ali",
                            "auto": "Evet"}],
                          [{"name": "Merkez", "kind": "http", "address": dead_address()}], 1, hook.port,
                          events="olu-adam")
    clock = Clock()
    release = threading.Event()
    entered = threading.Event()

    def hanging_backup(*args, **kw):  # a share that stops answering: the cycle blocks in the kernel
        entered.set()
        release.wait(60)
        raise OSError("paylaşım yanıt vermiyor")

    agent = A.Agent(wb, interval=60, settle=0, journal=tmp_path / "j.sqlite3", watch=False, clock=clock,
                    wallclock=clock.wall, backup=hanging_backup)
    alarms = A.Alarms(agent, threshold_s=HOUR, every_s=0.05)
    agent.on_cycle = alarms
    agent.start()
    worker = threading.Thread(target=agent.loop, daemon=True)
    worker.start()
    try:
        wait_for(entered.is_set, "the cycle to hang")
        alarms.start()
        wait_for(lambda: alarms.checks >= 1, "the watch thread's first look")
        clock.t += 2 * HOUR
        wait_for(lambda: hook.calls, "the dead-man alarm while the cycle hangs")
        assert [c["json"]["event"] for c in hook.calls] == ["olu-adam"]
        assert "hiç başarılı yedekleme döngüsü olmadı" in hook.calls[0]["json"]["message"]
    finally:
        agent.stop()
        release.set()
        worker.join(30)
    assert not worker.is_alive()


def test_the_daily_digest_goes_to_channels_that_ask_for_it(tmp_path, edefter, ring, smtp, hook):
    root = tmp_path / "defter"
    write_month(root, "2024-01")
    data = tmp_path / "sunucu"
    server.add_user(data, "ali", "pw-1", [VKN])
    credentials.set_password("Merkez", "ali", "pw-1")
    with server.start_in_thread(data) as storage:
        wb = control_workbook(tmp_path, edefter,
                              [{"name": FIRM, "vkn": VKN, "folder": str(root), "target": "Merkez", "user": "ali",
                                "auto": "Evet"}],
                              [{"name": "Merkez", "kind": "http", "address": storage.url}], smtp.port, hook.port,
                              # the webhook asks for the digest only; the e-mail keeps every event but no digest
                              events="", hook_events="ozet", hook_path="/ozet")
        clock = Clock()
        base = time.time() - clock.t  # near the real time: the runs' notifications are stamped with it
        agent = A.Agent(wb, interval=60, settle=30, journal=tmp_path / "j.sqlite3", watch=False, clock=clock,
                        wallclock=lambda: base + clock.t, options=fast_options())
        agent.on_cycle = A.Alarms(agent)
        agent.start()
        try:
            for _ in range(3):
                agent.cycle(scan=True)
                clock.t += 60
            assert status_of(tmp_path / "j.sqlite3", "2024-01") == S.BACKED_UP
            assert hook.calls == [] and len(smtp.messages) == 1  # no digest at start-up
            clock.t += 24 * HOUR
            agent.cycle(scan=True)
            agent.cycle(scan=True)
        finally:
            agent.close()
    assert [c["json"]["event"] for c in hook.calls] == ["ozet"]  # once a day, not once a cycle
    assert "Yedeklendi" in hook.calls[0]["json"]["message"]
    assert len(smtp.messages) == 1  # an empty Olaylar cell is every event, but not the digest
