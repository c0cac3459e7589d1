//! Whether a session may be logged: the user's off-the-record policy in the
//! XEP-0136 sense (ARC-02) and its mapping onto the XEP-0155 `logging` field,
//! both for the options we offer (ARC-03) and for the one we accept from an
//! offer (ARC-04), under the rule that `mustnot` is never offered or accepted
//! unless our server's archiving is known to be off for the session (ARC-07,
//! SSN-03, AMB-59).
//!
//! Pure functions: confirming that the server's archive can be kept out is
//! the adapter's job (MAM preferences, XEP-0136 preferences, XEP-0334 hints);
//! the core is told the answer through
//! [`crate::SessionManager::set_off_the_record_possible`].

use crate::ssn::Logging;

/// The user's off-the-record mode for a contact (XEP-0136 `otr`, ARC-02).
///
/// `require` means off the record or no session at all; `forbid` means the
/// session may always be logged; the four modes between rank the two.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub enum OtrPolicy {
    /// Only `logging=mustnot`; an offer without it is refused (ARC-05).
    Require,
    /// Off the record whenever the contact allows it. The default.
    #[default]
    Prefer,
    /// Off the record when the contact proposes it first.
    Approve,
    /// As `approve` (XEP-0136 distinguishes them only for the server).
    Concede,
    /// Off the record only when the contact insists on it.
    Oppose,
    /// Never off the record: an offer of `mustnot` alone is refused.
    Forbid,
}

impl OtrPolicy {
    /// Every mode, in XEP-0136's order (most private first).
    pub const ALL: [OtrPolicy; 6] = [
        Self::Require,
        Self::Prefer,
        Self::Approve,
        Self::Concede,
        Self::Oppose,
        Self::Forbid,
    ];

    /// The XEP-0136 value (`require`, `prefer`, ...).
    pub fn value(self) -> &'static str {
        match self {
            Self::Require => "require",
            Self::Prefer => "prefer",
            Self::Approve => "approve",
            Self::Concede => "concede",
            Self::Oppose => "oppose",
            Self::Forbid => "forbid",
        }
    }

    /// Reads an XEP-0136 value.
    pub fn from_value(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.value() == value)
    }
}

/// Why no `logging` value could be offered or accepted.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchivingConflict {
    /// Off the record is required, but our server's archiving is not known
    /// to be off (ARC-07): nothing may be offered or accepted.
    #[error(
        "off the record is required, but the server's message archive could not be turned off for this session; \
         use a server that lets you exclude a contact from its archive, or lower the archiving policy"
    )]
    OffTheRecordUnavailable,
    /// Off the record is required, and the contact offered only sessions
    /// that may be logged (ARC-04/05).
    #[error(
        "off the record is required, but the contact offered only a session that may be logged"
    )]
    ContactAllowsLogging,
    /// Off the record is forbidden (or cannot be confirmed with our
    /// server), and the contact offered only off-the-record sessions (ARC-04).
    #[error(
        "the contact offered only an off-the-record session, which the archiving policy (or the server) does not allow"
    )]
    ContactRequiresOffTheRecord,
}

/// The `logging` options to offer, best first (ARC-03): `require` offers
/// `mustnot` alone, `prefer` and `approve` offer it first, `concede` and
/// `oppose` second, `forbid` not at all. Without a confirmed way to keep the
/// session out of the server's archive, `mustnot` is dropped (ARC-07), and
/// `require` offers nothing.
pub fn logging_to_offer(
    policy: OtrPolicy,
    off_the_record_possible: bool,
) -> Result<Vec<Logging>, ArchivingConflict> {
    use Logging::{May, MustNot};
    let options = match policy {
        OtrPolicy::Require => vec![MustNot],
        OtrPolicy::Prefer | OtrPolicy::Approve => vec![MustNot, May],
        OtrPolicy::Concede | OtrPolicy::Oppose => vec![May, MustNot],
        OtrPolicy::Forbid => vec![May],
    };
    match off_the_record_possible {
        true => Ok(options),
        false if policy == OtrPolicy::Require => Err(ArchivingConflict::OffTheRecordUnavailable),
        false => Ok(vec![May]),
    }
}

/// The `logging` value to accept from an offer of `offered` (best first;
/// empty when the offer has no `logging` field, which means `may`, ARC-03),
/// by XEP-0136's answer table (ARC-04). Without a confirmed way to keep the
/// session out of the server's archive, `mustnot` is never accepted (ARC-07).
pub fn logging_to_accept(
    policy: OtrPolicy,
    offered: &[Logging],
    off_the_record_possible: bool,
) -> Result<Logging, ArchivingConflict> {
    use Logging::{May, MustNot};
    let offered = if offered.is_empty() {
        &[May][..]
    } else {
        offered
    };
    let has = |l: Logging| offered.contains(&l);
    let mustnot_first = offered.first() == Some(&MustNot);
    // ARC-04: when this mode takes `mustnot` over `may`.
    let wants_off_the_record = match policy {
        OtrPolicy::Require | OtrPolicy::Prefer => true,
        OtrPolicy::Approve | OtrPolicy::Concede => mustnot_first,
        OtrPolicy::Oppose | OtrPolicy::Forbid => !has(May),
    } && policy != OtrPolicy::Forbid;
    if has(MustNot) && wants_off_the_record {
        return match off_the_record_possible {
            true => Ok(MustNot),
            false if policy == OtrPolicy::Require => {
                Err(ArchivingConflict::OffTheRecordUnavailable)
            }
            false if has(May) => Ok(May),
            false => Err(ArchivingConflict::ContactRequiresOffTheRecord),
        };
    }
    match (policy, has(May)) {
        (OtrPolicy::Require, _) if !off_the_record_possible => {
            Err(ArchivingConflict::OffTheRecordUnavailable)
        }
        (OtrPolicy::Require, _) => Err(ArchivingConflict::ContactAllowsLogging),
        (_, true) => Ok(May),
        (_, false) => Err(ArchivingConflict::ContactRequiresOffTheRecord),
    }
}

/// Whether a session agreed with `logging` still satisfies `policy` and what
/// the server's archive allows now: checked again when the negotiation
/// completes, since either may have changed while it ran (ARC-05, ARC-07).
pub fn still_allowed(policy: OtrPolicy, logging: Logging, off_the_record_possible: bool) -> bool {
    logging_to_accept(policy, &[logging], off_the_record_possible) == Ok(logging)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Logging::{May, MustNot};

    /// ARC-04's table, all 24 cases (6 modes x 4 offers), as XEP-0136
    /// §"OTR negotiation" gives it: `None` is FAIL.
    #[test]
    fn the_answer_table_of_xep_0136() {
        let offers: [&[Logging]; 4] = [&[MustNot], &[MustNot, May], &[May, MustNot], &[May]];
        let table: [(OtrPolicy, [Option<Logging>; 4]); 6] = [
            (
                OtrPolicy::Require,
                [Some(MustNot), Some(MustNot), Some(MustNot), None],
            ),
            (
                OtrPolicy::Prefer,
                [Some(MustNot), Some(MustNot), Some(MustNot), Some(May)],
            ),
            (
                OtrPolicy::Approve,
                [Some(MustNot), Some(MustNot), Some(May), Some(May)],
            ),
            (
                OtrPolicy::Concede,
                [Some(MustNot), Some(MustNot), Some(May), Some(May)],
            ),
            (
                OtrPolicy::Oppose,
                [Some(MustNot), Some(May), Some(May), Some(May)],
            ),
            (OtrPolicy::Forbid, [None, Some(May), Some(May), Some(May)]),
        ];
        let mut cases = 0;
        for (policy, expected) in table {
            for (offer, want) in offers.iter().zip(expected) {
                let got = logging_to_accept(policy, offer, true).ok();
                assert_eq!(got, want, "{} answering {offer:?}", policy.value());
                cases += 1;
            }
        }
        assert_eq!(cases, 24);
    }

    /// ARC-03's offer mapping, first = default.
    #[test]
    fn the_offer_mapping_of_xep_0136() {
        let expect: [(OtrPolicy, &[Logging]); 6] = [
            (OtrPolicy::Require, &[MustNot]),
            (OtrPolicy::Prefer, &[MustNot, May]),
            (OtrPolicy::Approve, &[MustNot, May]),
            (OtrPolicy::Concede, &[May, MustNot]),
            (OtrPolicy::Oppose, &[May, MustNot]),
            (OtrPolicy::Forbid, &[May]),
        ];
        for (policy, want) in expect {
            assert_eq!(logging_to_offer(policy, true).as_deref(), Ok(want));
        }
    }

    /// ARC-07 / SSN-03: unconfirmed, `mustnot` is neither offered nor accepted.
    #[test]
    fn mustnot_needs_a_confirmed_archive() {
        for policy in OtrPolicy::ALL {
            let offered = logging_to_offer(policy, false);
            match policy {
                OtrPolicy::Require => {
                    assert_eq!(offered, Err(ArchivingConflict::OffTheRecordUnavailable))
                }
                _ => assert_eq!(offered, Ok(vec![May])),
            }
            for offer in [&[MustNot][..], &[MustNot, May], &[May, MustNot], &[May]] {
                let answer = logging_to_accept(policy, offer, false);
                assert_ne!(answer, Ok(MustNot), "{} {offer:?}", policy.value());
                if policy == OtrPolicy::Require {
                    assert_eq!(answer, Err(ArchivingConflict::OffTheRecordUnavailable));
                }
            }
        }
        assert_eq!(
            logging_to_accept(OtrPolicy::Prefer, &[MustNot], false),
            Err(ArchivingConflict::ContactRequiresOffTheRecord)
        );
    }

    /// ARC-03/05: an offer without `logging` means `may`; `require` refuses it.
    #[test]
    fn an_offer_without_logging_means_may() {
        assert_eq!(logging_to_accept(OtrPolicy::Prefer, &[], true), Ok(May));
        assert_eq!(
            logging_to_accept(OtrPolicy::Require, &[], true),
            Err(ArchivingConflict::ContactAllowsLogging)
        );
    }

    #[test]
    fn an_agreement_is_checked_again_against_the_policy_and_the_archive() {
        assert!(still_allowed(OtrPolicy::Prefer, MustNot, true));
        assert!(!still_allowed(OtrPolicy::Prefer, MustNot, false));
        assert!(!still_allowed(OtrPolicy::Forbid, MustNot, true));
        assert!(still_allowed(OtrPolicy::Oppose, MustNot, true));
        assert!(!still_allowed(OtrPolicy::Require, May, true));
        assert!(still_allowed(OtrPolicy::Forbid, May, false));
    }

    #[test]
    fn policies_read_their_xep_0136_names() {
        for policy in OtrPolicy::ALL {
            assert_eq!(OtrPolicy::from_value(policy.value()), Some(policy));
        }
        assert_eq!(OtrPolicy::from_value("maybe"), None);
    }
}
