"""End to end (issue 17): the slixmpp plugin and the Rust `esession` CLI
through a private Prosody (scripts/local-prosody.sh), in both roles, with a
retained-secret second session and a terminate.

Needs prosody, openssl and the CLI binary (ESESSION_BIN, default
target/debug/esession). Skipped without them unless ESESSION_REQUIRE_PROSODY=1.
"""

import asyncio
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import slixmpp

import esession_py.slixmpp_plugin as plugin

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(os.environ.get("ESESSION_BIN", ROOT / "target" / "debug" / "esession"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    missing = [t for t in ("prosody", "openssl") if shutil.which(t) is None]
    if missing or not BIN.exists():
        if os.environ.get("ESESSION_REQUIRE_PROSODY") == "1":
            pytest.fail(f"needed: {missing or [str(BIN)]}")
        pytest.skip(f"needs prosody, openssl and {BIN}")
    base = tmp_path_factory.mktemp("prosody")
    port = free_port()
    proc = subprocess.Popen(
        ["bash", str(ROOT / "scripts" / "local-prosody.sh"), str(base)],
        env={**os.environ, "ESESSION_DEMO_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("Prosody did not start")
    yield {"dir": base, "port": port}
    subprocess.run(["pkill", "-f", f"prosody --config {base}"], check=False)
    proc.terminate()
    proc.wait(timeout=10)


def cli(server, home, user, *args, **kwargs):
    """Runs the CLI as `user`@localhost/cli with its own store under `home`."""
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        "ESESSION_STORE_PASSPHRASE": "cli-pass",
    }
    command = [
        str(BIN), "--jid", f"{user}@localhost/cli", "--host", "127.0.0.1",
        "--port", str(server["port"]), "--ca-file", str(server["dir"] / "certs" / "ca.crt"),
        "--password-file", str(server["dir"] / f"{user}.password"), *args,
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


def python_client(server, user, store):
    client = slixmpp.ClientXMPP(
        f"{user}@localhost/py", (server["dir"] / f"{user}.password").read_text().strip()
    )
    client.register_plugin("xep_0030")
    client.register_plugin(
        "esession", module=plugin, pconfig={"store": str(store), "passphrase": "py-pass"}
    )
    client.ssl_context = ssl.create_default_context(cafile=str(server["dir"] / "certs" / "ca.crt"))
    return client


async def online(client, server):
    ready = asyncio.get_event_loop().create_future()

    async def start(_event):
        await client.get_roster()
        client.send_presence()
        ready.done() or ready.set_result(True)

    client.add_event_handler("session_start", start)
    client.connect("127.0.0.1", server["port"])
    await asyncio.wait_for(ready, 20)


def next_event(events, kind):
    return asyncio.wait_for(events[kind].get(), 20)


def queues(client, kinds):
    events = {kind: asyncio.Queue() for kind in kinds}
    for kind in kinds:
        client.add_event_handler("esession_" + kind, lambda e, k=kind: events[k].put_nowait(e))
    return events


def read_json_until(proc, kind, timeout=20):
    deadline = time.time() + timeout
    seen = []
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        event = json.loads(line)
        seen.append(event)
        if event.get("event") == kind:
            return event, seen
    raise AssertionError(f"no {kind} event from the CLI; saw {seen}")


def test_python_initiates_cli_answers_twice(server, tmp_path):
    """slixmpp offers, `esession listen --json` answers: the same SAS, a
    message, a terminate; the second session is authenticated by the
    retained secret of the first on both sides."""
    home = tmp_path / "bob-cli"
    listener = cli(server, home, "bob", "listen", "--json")
    time.sleep(3)  # logged in and announced (listen prints no ready event)

    async def one_session(store):
        alice = python_client(server, "alice", store)
        events = queues(alice, ["established", "terminated"])
        await online(alice, server)
        thread = alice.plugin["esession"].start("bob@localhost/cli")
        established = await next_event(events, "established")
        alice.plugin["esession"].send_text("bob@localhost/cli", thread, "hello from python")
        # slixmpp's own send_message to that peer goes into the session too.
        alice.send_message(mto="bob@localhost/cli", mbody="and through slixmpp", mtype="chat")
        await asyncio.sleep(0.5)
        alice.plugin["esession"].terminate("bob@localhost/cli", thread)
        ended = await next_event(events, "terminated")
        alice.disconnect()
        await asyncio.sleep(0.3)
        return established, ended

    store = tmp_path / "alice.db"
    try:
        first, ended = asyncio.run(one_session(store))
        cli_established, _ = read_json_until(listener, "established")
        assert cli_established["sas"] == first["sas"]
        message, _ = read_json_until(listener, "message")
        assert message["body"] == "hello from python" and message["encrypted"] is True
        message, _ = read_json_until(listener, "message")
        assert message["body"] == "and through slixmpp" and message["encrypted"] is True
        assert ended["reason"] == "local_request"
        assert not first["authenticated_by_retained_secret"]
        second, _ = asyncio.run(one_session(store))
        assert second["authenticated_by_retained_secret"]
        cli_second, _ = read_json_until(listener, "established")
        assert cli_second["authenticated_by_retained_secret"] is True
    finally:
        listener.terminate()
        listener.wait(timeout=10)


def test_cli_initiates_python_answers(server, tmp_path):
    """`esession send` offers, the slixmpp plugin answers (its roster says
    alice may): the message arrives, the CLI hears the encrypted receipt,
    and the session ends at the CLI's request."""

    async def run():
        bob = python_client(server, "bob", tmp_path / "bob.db")
        events = queues(bob, ["established", "message", "terminated"])
        await online(bob, server)
        sender = cli(server, tmp_path / "alice-cli", "alice", "send", "--json",
                     "bob@localhost/py", "hello python")
        established = await next_event(events, "established")
        message = await next_event(events, "message")
        ended = await next_event(events, "terminated")
        out, err = await asyncio.get_event_loop().run_in_executor(None, sender.communicate)
        bob.disconnect()
        await asyncio.sleep(0.3)
        return established, message, ended, sender.returncode, out, err

    established, message, ended, code, out, err = asyncio.run(run())
    assert code == 0, err
    assert message["body"] == "hello python"
    assert ended["reason"] == "peer_request"
    kinds = [json.loads(line)["event"] for line in out.splitlines() if line.strip()]
    assert "delivered" in kinds, out
    cli_established = [json.loads(l) for l in out.splitlines() if '"established"' in l][0]
    assert cli_established["sas"] == established["sas"]
