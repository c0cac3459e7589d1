"""Example (issue 17, WIP): a slixmpp client with the ESession plugin talks to
the Rust `esession` CLI through `scripts/local-prosody.sh /tmp/esp`.

Start `esession --jid bob@localhost/cli ... listen` first, then run this.
"""

import asyncio, ssl
import slixmpp
import esession_py.slixmpp_plugin as plugin

async def main():
    a = slixmpp.ClientXMPP("alice@localhost/py", open("/tmp/esp/alice.password").read().strip())
    a.register_plugin("xep_0030")
    a.register_plugin("esession", module=plugin, pconfig={"store": "/tmp/pa2.db", "passphrase": "pa"})
    a.ssl_context = ssl.create_default_context(cafile="/tmp/esp/certs/ca.crt")
    est = asyncio.get_event_loop().create_future()
    a.add_event_handler("esession_established", lambda e: est.done() or est.set_result(e))
    a.add_event_handler("session_start", lambda _e: a.send_presence())
    a.connect("127.0.0.1", 25222)
    await asyncio.sleep(2)
    thread = a.plugin["esession"].start("bob@localhost/cli")
    e = await asyncio.wait_for(est, 10)
    print("python side: established, SAS", e["sas"])
    a.plugin["esession"].send_text("bob@localhost/cli", thread, "hello CLI, from slixmpp")
    await asyncio.sleep(1)
    a.plugin["esession"].terminate("bob@localhost/cli", thread)
    await asyncio.sleep(1)
    a.disconnect()
    await asyncio.sleep(0.5)

asyncio.run(main())
