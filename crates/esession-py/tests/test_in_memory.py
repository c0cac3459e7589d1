"""Two Python session managers negotiate and talk in memory (issue 17)."""

import re

import esession_py

ALICE = "alice@example.org/py"
BOB = "bob@example.com/py"


def deliver(managers, stanzas):
    """Routes stanzas by their 'to' until none is left; returns all events."""
    events = {ALICE: [], BOB: []}
    queue = list(stanzas)
    while queue:
        xml = queue.pop(0)
        to = re.search(r"""\sto=['"]([^'"]+)['"]""", xml.split(">", 1)[0]).group(1)
        out, evs = managers[to].handle_stanza(xml)
        events[to].extend(evs)
        queue.extend(out)
    return events


def negotiate():
    alice = esession_py.SessionManager(ALICE)
    bob = esession_py.SessionManager(BOB)
    managers = {ALICE: alice, BOB: bob}
    thread, stanzas, _ = alice.start_session(BOB)
    events = deliver(managers, stanzas)
    return managers, thread, events


def test_negotiation_and_message():
    managers, thread, events = negotiate()
    est_a = [e for e in events[ALICE] if e["event"] == "established"]
    est_b = [e for e in events[BOB] if e["event"] == "established"]
    assert len(est_a) == 1 and len(est_b) == 1
    assert est_a[0]["sas"] == est_b[0]["sas"] and len(est_a[0]["sas"]) == 5
    out, _ = managers[ALICE].send_text(BOB, thread, "hello from python")
    assert "hello from python" not in "".join(out)
    events = deliver(managers, out)
    bodies = [e["body"] for e in events[BOB] if e["event"] == "message"]
    assert bodies == ["hello from python"]


def test_tampered_stanza_is_not_delivered():
    managers, thread, _ = negotiate()
    out, _ = managers[ALICE].send_text(BOB, thread, "secret")
    xml = out[0]
    start = xml.index("<data>") + len("<data>")
    flipped = "A" if xml[start] != "A" else "B"
    tampered = xml[:start] + flipped + xml[start + 1:]
    _, events = managers[BOB].handle_stanza(tampered)
    assert not [e for e in events if e["event"] == "message"]


def test_terminate_and_repr():
    managers, thread, _ = negotiate()
    out, events = managers[ALICE].terminate(BOB, thread)
    routed = deliver(managers, out)
    ended_a = [e["reason"] for e in events + routed[ALICE] if e["event"] == "terminated"]
    ended_b = [e["reason"] for e in routed[BOB] if e["event"] == "terminated"]
    assert ended_a == ["local_request"]
    assert ended_b == ["peer_request"]
    assert repr(managers[ALICE]) == "SessionManager(...)"


def test_errors_are_python_exceptions():
    """The core's errors arrive as the exception for who is at fault."""
    alice = esession_py.SessionManager(ALICE)
    try:
        alice.send_text(BOB, "no-such-thread", "x")
    except esession_py.UsageError as e:
        assert isinstance(e, esession_py.EsessionError) and str(e)
    else:
        raise AssertionError("expected UsageError")
    try:
        alice.set_profile(BOB, "psi")
    except esession_py.UsageError as e:
        assert "standard" in str(e)
    else:
        raise AssertionError("expected UsageError")


def test_send_stanza_encrypts_a_whole_message():
    managers, thread, _ = negotiate()
    message = "<message xmlns='jabber:client' type='chat'><body>whole</body><subject>s</subject></message>"
    out, _ = managers[ALICE].send_stanza(BOB, thread, message)
    assert "whole" not in "".join(out)
    events = deliver(managers, out)
    assert [e["body"] for e in events[BOB] if e["event"] == "message"] == ["whole"]


def test_sqlite_store_keeps_the_retained_secret(tmp_path):
    """Second session between the same clients, each reopening its store:
    authenticated by the retained secret of the first (ESN-30)."""

    def run():
        alice = esession_py.SessionManager(ALICE, store=tmp_path / "a.db", passphrase="pa")
        bob = esession_py.SessionManager(BOB, store=tmp_path / "b.db", passphrase="pb")
        managers = {ALICE: alice, BOB: bob}
        thread, stanzas, _ = alice.start_session(BOB)
        events = deliver(managers, stanzas)
        return [e for e in events[BOB] if e["event"] == "established"][0], managers, thread

    first, managers, thread = run()
    assert not first["authenticated_by_retained_secret"]
    managers[ALICE].confirm_sas(BOB, thread)
    del managers
    second, _, _ = run()
    assert second["authenticated_by_retained_secret"]


def test_store_needs_exactly_one_secret(tmp_path):
    try:
        esession_py.SessionManager(ALICE, store=tmp_path / "x.db")
    except esession_py.EsessionError as e:
        assert "passphrase or key_file" in str(e)
    else:
        raise AssertionError("expected EsessionError")
