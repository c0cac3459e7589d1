"""A slixmpp plugin that runs ESessions in a slixmpp client (issue 17, WIP).

    xmpp.register_plugin("esession", module=esession_py.slixmpp_plugin,
                         pconfig={"store": "alice.db", "passphrase": "..."})
    xmpp.add_event_handler("esession_established", on_established)
    thread = xmpp["esession"].start("bob@example.org/laptop")
    xmpp["esession"].send_text(peer, thread, "hello")

Events are fired as ``esession_<kind>`` with the event dict (see
``SessionManager``): ``esession_established``, ``esession_message``,
``esession_terminated``, ... Once a session with a peer is established,
messages the application sends it with slixmpp's ``send_message`` are
encrypted in that session too. A session is with one client: address such
messages to the peer's full JID (as the session event gives it); a message
to the bare JID is not matched to a session and goes as the application
built it.
"""

import time

from slixmpp.plugins import BasePlugin
from slixmpp.plugins.base import register_plugin
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

from ._esession import SessionManager

FEATURES = [
    "http://www.xmpp.org/extensions/xep-0116.html#ns",
    "urn:xmpp:ssn",
    "http://www.xmpp.org/extensions/xep-0200.html#ns",
]


class XEP_ESession(BasePlugin):
    """ESessions (XEP-0116/0200/0217) for a slixmpp client."""

    name = "esession"
    description = "XMPP Encrypted Sessions (XEP-0116, XEP-0200, XEP-0217)"
    dependencies = {"xep_0030"}
    default_config = {"store": None, "passphrase": None, "key_file": None}

    def plugin_init(self):
        self.manager = None
        self._timer = None
        # Full JID of the peer -> thread of its established session: what
        # the application sends to it with slixmpp's own send_message goes
        # into that session (see _encrypt_outgoing).
        self._sessions = {}
        self.xmpp.add_event_handler("esession_established", self._track)
        self.xmpp.add_event_handler("esession_terminated", self._untrack)
        self.xmpp.add_filter("out", self._encrypt_outgoing)
        self.xmpp.add_event_handler("session_bind", self._bound)
        # Every message, presence and iq goes through the manager first: it
        # acts only on ESession traffic (negotiation, <c/>, a contact going
        # offline ends its sessions) and leaves the rest to slixmpp.
        for kind in ("message", "presence", "iq"):
            self.xmpp.register_handler(
                Callback(f"ESession {kind}", StanzaPath(kind), self._on_stanza)
            )
        for feature in FEATURES:
            self.xmpp.plugin["xep_0030"].add_feature(feature)

    def plugin_end(self):
        for kind in ("message", "presence", "iq"):
            self.xmpp.remove_handler(f"ESession {kind}")
        if self._timer is not None:
            self._timer.cancel()

    def _bound(self, jid):
        self.manager = SessionManager(
            str(jid),
            store=self.store,
            passphrase=self.passphrase,
            key_file=self.key_file,
        )
        self.xmpp.add_event_handler("roster_update", self._roster)
        self.xmpp.add_event_handler("session_start", self._roster)

    def _track(self, event):
        self._sessions[event["session"]["peer"]] = event["session"]["thread"]

    def _untrack(self, event):
        peer = event["session"]["peer"]
        if self._sessions.get(peer) == event["session"]["thread"]:
            del self._sessions[peer]

    def _encrypt_outgoing(self, stanza):
        """A message the application sends through slixmpp to a peer with an
        established session is encrypted in it, never sent in clear (errors
        and group chat messages excepted). What the manager itself sends goes
        out through send_raw, past this filter."""
        if self.manager is None or stanza.name != "message":
            return stanza
        if stanza["type"] in ("error", "groupchat"):
            return stanza
        thread = self._sessions.get(stanza["to"].full)
        if thread is None:
            return stanza
        self._dispatch(*self.manager.send_stanza(stanza["to"].full, thread, str(stanza)))
        return None

    def _roster(self, _event=None):
        """Contacts subscribed to our presence may start sessions we answer
        (SSN-09); everyone else's offers are not answered."""
        if self.manager is None:
            return
        roster = self.xmpp.client_roster
        for jid in roster:
            subscribed = roster[jid]["subscription"] in ("from", "both")
            self.manager.set_presence_subscription(str(jid), subscribed)

    def _dispatch(self, stanzas, events):
        for xml in stanzas:
            self.xmpp.send_raw(xml)
        for event in events:
            self.xmpp.event("esession_" + event["event"], event)
        self._schedule()

    def _schedule(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.manager.next_deadline() if self.manager else None
        if deadline is not None:
            delay = max(0.0, deadline - time.time())
            self._timer = self.xmpp.loop.call_later(delay, self._poll)

    def _poll(self):
        self._timer = None
        self._dispatch(*self.manager.poll_timers())

    def _on_stanza(self, stanza):
        if self.manager is None:
            return
        self._dispatch(*self.manager.handle_stanza(str(stanza)))

    def start(self, peer):
        """Offers a session to ``peer`` (a full JID); returns its thread."""
        thread, stanzas, events = self.manager.start_session(peer)
        self._dispatch(stanzas, events)
        return thread

    def send_text(self, peer, thread, text):
        """Sends ``text`` encrypted in the session ``(peer, thread)``."""
        self._dispatch(*self.manager.send_text(peer, thread, text))

    def confirm_sas(self, peer, thread):
        """The SAS matched."""
        self.manager.confirm_sas(peer, thread)

    def terminate(self, peer, thread):
        """Ends the session."""
        self._dispatch(*self.manager.terminate(peer, thread))


register_plugin(XEP_ESession)
