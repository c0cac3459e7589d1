//! What the chat has sent, and whether it arrived (issue 10: nothing is lost
//! in silence). Every message typed gets an id; it is `Queued` while no
//! session can carry it, `Sent` in a session until the contact's encrypted
//! receipt arrives, then forgotten. A session that ends under messages not yet
//! acknowledged puts them back in the queue: they are re-sent, under the same
//! id, in the next session (the contact's client acknowledges a repeat
//! without showing it twice).

use std::time::{Duration, Instant};

use esession::SessionId;

/// One message the contact has not acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pending {
    /// Its id (encrypted `<origin-id/>`), once a session sent it.
    pub(crate) id: Option<String>,
    /// The text typed.
    pub(crate) text: String,
    /// The session that carries it, if sent.
    pub(crate) session: Option<SessionId>,
    /// When it was last sent.
    pub(crate) sent_at: Option<Instant>,
    /// The user was already told it is late.
    pub(crate) reported_late: bool,
    /// It had to be sent again after a session was lost.
    pub(crate) resent: bool,
}

/// Messages typed and not yet acknowledged, oldest first.
#[derive(Default)]
pub(crate) struct Outbox {
    pending: Vec<Pending>,
}

impl Outbox {
    /// A message typed while no session can carry it.
    pub(crate) fn queue(&mut self, text: &str) {
        self.pending.push(Pending {
            id: None,
            text: text.to_owned(),
            session: None,
            sent_at: None,
            reported_late: false,
            resent: false,
        });
    }

    /// A message sent now in `session` with `id`.
    pub(crate) fn sent(&mut self, text: &str, id: String, session: &SessionId, now: Instant) {
        self.pending.push(Pending {
            id: Some(id),
            text: text.to_owned(),
            session: Some(session.clone()),
            sent_at: Some(now),
            reported_late: false,
            resent: false,
        });
    }

    /// The contact acknowledged `id`: returns the message, if it was ours.
    pub(crate) fn delivered(&mut self, id: &str) -> Option<Pending> {
        let index = self
            .pending
            .iter()
            .position(|p| p.id.as_deref() == Some(id))?;
        Some(self.pending.remove(index))
    }

    /// `session` ended: its unacknowledged messages go back to the queue.
    /// Returns their texts (to tell the user).
    pub(crate) fn session_lost(&mut self, session: &SessionId) -> Vec<String> {
        let mut lost = Vec::new();
        for p in &mut self.pending {
            if p.session.as_ref() == Some(session) {
                p.session = None;
                p.sent_at = None;
                p.resent = true;
                p.reported_late = false;
                lost.push(p.text.clone());
            }
        }
        lost
    }

    /// Messages waiting for a session, oldest first.
    pub(crate) fn queued(&self) -> Vec<Pending> {
        self.pending
            .iter()
            .filter(|p| p.session.is_none())
            .cloned()
            .collect()
    }

    /// Records that a queued message (by its position among [`Self::queued`]'s
    /// texts and ids) was sent in `session` under `id`.
    pub(crate) fn mark_sent(
        &mut self,
        text: &str,
        old_id: Option<&str>,
        id: String,
        session: &SessionId,
        now: Instant,
    ) {
        if let Some(p) = self
            .pending
            .iter_mut()
            .find(|p| p.session.is_none() && p.text == text && p.id.as_deref() == old_id)
        {
            p.id = Some(id);
            p.session = Some(session.clone());
            p.sent_at = Some(now);
        }
    }

    /// Messages sent more than `after` ago and not yet acknowledged, not
    /// yet reported: marked reported and returned.
    pub(crate) fn late(&mut self, now: Instant, after: Duration) -> Vec<String> {
        let mut late = Vec::new();
        for p in &mut self.pending {
            if let Some(at) = p.sent_at
                && !p.reported_late
                && now.saturating_duration_since(at) >= after
            {
                p.reported_late = true;
                late.push(p.text.clone());
            }
        }
        late
    }

    /// Every message not yet acknowledged, oldest first.
    pub(crate) fn all(&self) -> &[Pending] {
        &self.pending
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn session(thread: &str) -> SessionId {
        SessionId {
            peer: "bob@example.com/laptop".parse().unwrap(),
            thread: thread.to_owned(),
        }
    }

    #[test]
    fn a_lost_session_requeues_what_it_did_not_deliver_and_keeps_the_ids() {
        let now = Instant::now();
        let mut outbox = Outbox::default();
        outbox.sent("one", "id1".to_owned(), &session("t1"), now);
        outbox.sent("two", "id2".to_owned(), &session("t1"), now);
        assert_eq!(outbox.delivered("id1").unwrap().text, "one");
        assert!(outbox.delivered("id1").is_none(), "once");
        assert_eq!(outbox.session_lost(&session("t1")), ["two"]);
        let queued = outbox.queued();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].id.as_deref(), Some("id2"), "resent under its id");
        outbox.mark_sent("two", Some("id2"), "id2".to_owned(), &session("t2"), now);
        assert!(outbox.queued().is_empty());
        assert!(outbox.all()[0].resent);
        assert_eq!(outbox.delivered("id2").unwrap().text, "two");
        assert!(outbox.all().is_empty());
    }

    #[test]
    fn late_messages_are_reported_once() {
        let now = Instant::now();
        let mut outbox = Outbox::default();
        outbox.sent("one", "id1".to_owned(), &session("t1"), now);
        assert!(outbox.late(now, Duration::from_secs(5)).is_empty());
        let later = now + Duration::from_secs(6);
        assert_eq!(outbox.late(later, Duration::from_secs(5)), ["one"]);
        assert!(outbox.late(later, Duration::from_secs(5)).is_empty());
        outbox.queue("queued");
        assert!(outbox.late(later, Duration::from_secs(5)).is_empty());
    }
}
