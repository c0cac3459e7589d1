"""Example (issue 17, WIP): a slixmpp client with the ESession plugin answers
a session from the Rust CLI through `scripts/local-prosody.sh /tmp/esp`.

Run this, then `esession --jid alice@localhost/cli ... send bob@localhost/py "hi"`.
"""

import asyncio, ssl
import slixmpp
import esession_py.slixmpp_plugin as plugin

async def main():
    b = slixmpp.ClientXMPP("bob@localhost/py", open("/tmp/esp/bob.password").read().strip())
    b.register_plugin("xep_0030")
    b.register_plugin("esession", module=plugin, pconfig={"store": "/tmp/pb3.db", "passphrase": "pb"})
    b.ssl_context = ssl.create_default_context(cafile="/tmp/esp/certs/ca.crt")
    done = asyncio.get_event_loop().create_future()
    b.add_event_handler("esession_established", lambda e: print("python bob: established, SAS", e["sas"], flush=True))
    b.add_event_handler("esession_message", lambda e: print("python bob got:", e["body"], flush=True))
    b.add_event_handler("esession_terminated", lambda e: done.done() or done.set_result(e["reason"]))
    async def start(_e):
        await b.get_roster()
        b.send_presence()
    b.add_event_handler("session_start", start)
    b.connect("127.0.0.1", 25222)
    print("python bob: ended,", await asyncio.wait_for(done, 40), flush=True)
    b.disconnect()
    await asyncio.sleep(0.5)

asyncio.run(main())
