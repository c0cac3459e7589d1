//! The one error type of this crate.
//!
//! Every variant says *what* is malformed. Variants never carry secret data: they name elements,
//! attributes and field `var`s (peer-chosen strings are truncated to [`MAX_ERROR_TEXT`] bytes),
//! never values, MACs, keys or ciphertext.

/// Longest peer-chosen string (element name, attribute name, field `var`) copied into an
/// [`Error`], in bytes. Longer strings are cut at a character boundary.
pub const MAX_ERROR_TEXT: usize = 64;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can be wrong with a wire element.
///
/// [`Error::WrongElement`] means "not the element this parser handles" (the caller may try
/// another parser); every other variant means "the right element, but malformed", which for
/// peer input is a protocol error (practice 5: parse completely and strictly before acting).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The element has another name or namespace than the one expected.
    #[error("expected <{name} xmlns='{namespace}'/>")]
    WrongElement {
        /// Expected local name.
        name: &'static str,
        /// Expected namespace.
        namespace: &'static str,
    },
    /// A required attribute is absent.
    #[error("<{element}/> lacks the '{attribute}' attribute")]
    MissingAttribute {
        /// Element carrying the attribute.
        element: &'static str,
        /// Attribute name.
        attribute: &'static str,
    },
    /// An attribute has a value outside its closed set.
    #[error("<{element}/> has an invalid '{attribute}' attribute")]
    InvalidAttribute {
        /// Element carrying the attribute.
        element: &'static str,
        /// Attribute name.
        attribute: &'static str,
    },
    /// An unprefixed attribute this element does not define.
    #[error("<{element}/> has the unexpected attribute '{attribute}'")]
    UnexpectedAttribute {
        /// Element carrying the attribute.
        element: &'static str,
        /// Attribute name (truncated).
        attribute: String,
    },
    /// A child element this element does not define (or one in a foreign namespace).
    #[error("<{parent}/> contains the unexpected child <{child}/>")]
    UnexpectedChild {
        /// Parent element.
        parent: &'static str,
        /// Local name of the child (truncated).
        child: String,
    },
    /// A child that may occur at most once occurs several times.
    #[error("<{parent}/> contains more than one <{child}/>")]
    DuplicateChild {
        /// Parent element.
        parent: &'static str,
        /// Repeated child.
        child: &'static str,
    },
    /// A mandatory child is absent.
    #[error("<{parent}/> lacks <{child}/>")]
    MissingChild {
        /// Parent element.
        parent: &'static str,
        /// Missing child.
        child: &'static str,
    },
    /// Non-whitespace text beside child elements (AMB-47), or text in an element that holds
    /// only child elements.
    #[error("<{element}/> mixes text with child elements")]
    MixedContent {
        /// Element holding the text (truncated).
        element: String,
    },
    /// Text inside an element that must be empty (e.g. `<required/>`).
    #[error("<{element}/> must be empty")]
    UnexpectedText {
        /// The element.
        element: &'static str,
    },
    /// A data-form `<field/>` without `var` (only `fixed` fields may omit it), or with an
    /// empty one.
    #[error("a data-form field lacks its 'var' attribute")]
    FieldWithoutVar,
    /// Two fields of one form share a `var`.
    #[error("the data form contains field '{var}' twice")]
    DuplicateField {
        /// The repeated `var` (truncated).
        var: String,
    },
    /// A single-valued field carries several `<value/>`s.
    #[error("field '{var}' carries more than one value")]
    TooManyValues {
        /// The field's `var` (truncated).
        var: String,
    },
    /// A field that must carry a value carries none.
    #[error("field '{var}' carries no value")]
    MissingValue {
        /// The field's `var` (truncated).
        var: String,
    },
    /// `<option/>`s on a field whose type is not `list-single` or `list-multi`.
    #[error("field '{var}' carries options but is not a list field")]
    OptionsNotAllowed {
        /// The field's `var` (truncated).
        var: String,
    },
    /// An `<option/>` without exactly one `<value/>`.
    #[error("an option of field '{var}' does not hold exactly one value")]
    InvalidOption {
        /// The field's `var` (truncated).
        var: String,
    },
    /// A field type that the field's role forbids (e.g. a `FORM_TYPE` that is not hidden).
    #[error("field '{var}' has a forbidden type")]
    InvalidFieldType {
        /// The field's `var` (truncated).
        var: String,
    },
    /// A boolean is not one of `1`, `true`, `0`, `false` (SSN-02).
    #[error("invalid boolean value")]
    InvalidBoolean,
    /// Character data that must be Base64 (RFC 4648 §4, CMN-02) is not.
    #[error("<{element}/> does not hold valid Base64")]
    InvalidBase64 {
        /// The element.
        element: &'static str,
    },
    /// An element that must hold a non-empty value is empty.
    #[error("<{element}/> is empty")]
    EmptyValue {
        /// The element.
        element: &'static str,
    },
    /// A number is not in canonical positive decimal form or out of range.
    #[error("<{element}/> does not hold a valid number")]
    InvalidNumber {
        /// The element.
        element: &'static str,
    },
    /// A size bound that keeps hostile input bounded was exceeded.
    #[error("size limit exceeded: {what}")]
    LimitExceeded {
        /// Which limit.
        what: &'static str,
    },
    /// The bytes are not a single well-formed XML element (or fragment) within the depth limit.
    #[error("malformed XML")]
    MalformedXml,
}

/// Copies a peer-chosen string for an error message, cut to [`MAX_ERROR_TEXT`] bytes.
pub(crate) fn peer_text(s: &str) -> String {
    if s.len() <= MAX_ERROR_TEXT {
        return s.to_owned();
    }
    let mut end = MAX_ERROR_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_text_is_truncated_at_a_char_boundary() {
        let long = "é".repeat(100);
        let cut = peer_text(&long);
        assert!(cut.len() <= MAX_ERROR_TEXT);
        assert_eq!(cut.len(), 64);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(peer_text("short"), "short");
    }

    #[test]
    fn error_messages_name_the_fault() {
        let e = Error::DuplicateField {
            var: "accept".into(),
        };
        assert_eq!(e.to_string(), "the data form contains field 'accept' twice");
        let e = Error::WrongElement {
            name: "c",
            namespace: "urn:x",
        };
        assert_eq!(e.to_string(), "expected <c xmlns='urn:x'/>");
    }
}
