"""Example bot (issue 17): answers every encrypted message with the same
text, encrypted. Try it against `scripts/local-prosody.sh /tmp/esp`:

    python examples/echo_bot.py /tmp/esp          # as bob@localhost/bot
    esession --jid alice@localhost/cli --host 127.0.0.1 --port 25222 \\
        --ca-file /tmp/esp/certs/ca.crt --password-file /tmp/esp/alice.password \\
        chat bob@localhost/bot
"""

import asyncio
import ssl
import sys
from pathlib import Path

import slixmpp

import esession_py.slixmpp_plugin as esession


async def main(server_dir: Path) -> None:
    bot = slixmpp.ClientXMPP("bob@localhost/bot", (server_dir / "bob.password").read_text().strip())
    bot.register_plugin("xep_0030")
    bot.register_plugin(
        "esession", module=esession, pconfig={"store": "echo-bot.db", "passphrase": "echo"}
    )
    bot.ssl_context = ssl.create_default_context(cafile=str(server_dir / "certs" / "ca.crt"))

    async def online(_event):
        await bot.get_roster()
        bot.send_presence()
        print("echo bot online as bob@localhost/bot", flush=True)

    def established(event):
        print(f"session with {event['session']['peer']}: SAS {event['sas']}", flush=True)

    def echo(event):
        peer, thread = event["session"]["peer"], event["session"]["thread"]
        if event["body"]:
            bot.plugin["esession"].send_text(peer, thread, "echo: " + event["body"])

    bot.add_event_handler("session_start", online)
    bot.add_event_handler("esession_established", established)
    bot.add_event_handler("esession_message", echo)
    bot.connect("127.0.0.1", 25222)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/esession-prosody")))
