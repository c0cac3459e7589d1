//! Field names of the negotiation forms (XEP-0155, XEP-0116), as on the wire.

pub(crate) use esession_wire::negotiation::fields::*;

// The only protocol version (AMB-03), `1.0`, is `Profile::version`.
