//! Moving an established session to another resource of the peer (SSN-13)
//! the only way ESessions allow: terminate and negotiate afresh (AMB-39).

use super::{SessionManager, State};
use crate::event::{Event, Output};
use jid::Jid;

impl SessionManager {
    /// The peer asked, authenticated, to continue the session on `resource`.
    /// Keys and counters cannot move to another resource (AMB-39): we send the
    /// encrypted terminate form to the old resource (ESN-45; its
    /// acknowledgement ends the old session, ESN-46) and offer a new session to
    /// the new resource on a new thread (SSN-16: never the old thread).
    pub(super) fn move_session(&mut self, k: &super::Key, resource: &str, out: &mut Output) {
        let now = self.clock.now_unix();
        let Some(State::Established(session)) = self.sessions.get_mut(k) else {
            return;
        };
        let old = session.id().clone();
        let Ok(new_peer) = old.peer.to_bare().with_resource_str(resource) else {
            return; // Not a resource: nothing moves.
        };
        let new_peer = Jid::from(new_peer);
        if new_peer == old.peer {
            return; // Nothing moves.
        }
        let Ok(terminate) = session.terminate_stanzas(self.rng.as_mut(), now) else {
            return; // Already ending.
        };
        let gone = !session.expects_terminate_ack();
        out.stanzas.extend(terminate);
        if gone {
            self.sessions.remove(k);
        }
        if let Ok((new, fresh)) = self.start_session_to(new_peer) {
            out.stanzas.extend(fresh.stanzas);
            out.event(Event::SessionMoved { old, new });
        }
    }
}
