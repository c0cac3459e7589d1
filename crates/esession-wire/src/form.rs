//! XEP-0004 data forms as typed values, for SSN/ESession negotiation (SSN-01..19, ESN-04..39).
//!
//! Parsing ([`DataForm::try_from`]) is strict (practice 5): unknown attributes, unknown
//! children, duplicate `var`s, duplicate `<required/>`/`<desc/>`, malformed options, invalid
//! booleans, too many values for a single-valued type and oversized input are all errors.
//! Namespaced attributes (e.g. `xml:lang`) are ignored (AMB-48).
//!
//! A parsed [`DataForm`] is for *reading values*. The bytes that go into MACs are NORM of the
//! element as received (AMB-50): use [`crate::normalize::try_normalize_form_content`] on the
//! original `<x/>`, never on a re-serialized `DataForm`.
//!
//! Serialization ([`Element::from`]) emits, per field, the attributes `label`, `type`, `var`
//! and the children `<desc/>`, `<value/>`*, `<option/>`*, `<required/>` in that order, which is
//! what the independent reference implementation sends (vectors `esession-4msg*.json`).

use std::collections::BTreeSet;
use std::str::FromStr;

use minidom::Element;

use crate::error::{Error, Result, peer_text};
use crate::ns;
use crate::util::{
    check_attributes, check_element_only, check_empty, expect_element, leaf_text, ncname,
    text_element,
};

/// Most fields a form may hold.
pub const MAX_FIELDS: usize = 256;
/// Most `<value/>`s per field, and most `<option/>`s per field.
pub const MAX_VALUES: usize = 64;
/// Longest character data of a value, label, description, title or instruction, in bytes.
pub const MAX_TEXT_LEN: usize = 64 * 1024;
/// Longest `var`, in bytes.
pub const MAX_VAR_LEN: usize = 256;
/// Most `<instructions/>` elements per form.
pub const MAX_INSTRUCTIONS: usize = 16;

/// The `var` of the XEP-0068 form-type field.
pub const FORM_TYPE: &str = "FORM_TYPE";

/// The `type` attribute of `<x/>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FormKind {
    /// `form`: an offer (SSN-01, ESN-04).
    Form,
    /// `submit`: an answer (SSN-06, ESN-14).
    Submit,
    /// `result`: a completion or final message (SSN-12, ESN-29, ESN-39).
    Result,
    /// `cancel`.
    Cancel,
}

impl FormKind {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            FormKind::Form => "form",
            FormKind::Submit => "submit",
            FormKind::Result => "result",
            FormKind::Cancel => "cancel",
        }
    }
}

impl FromStr for FormKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "form" => Ok(FormKind::Form),
            "submit" => Ok(FormKind::Submit),
            "result" => Ok(FormKind::Result),
            "cancel" => Ok(FormKind::Cancel),
            _ => Err(Error::InvalidAttribute {
                element: "x",
                attribute: "type",
            }),
        }
    }
}

/// The `type` attribute of `<field/>` (XEP-0004 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// `boolean`: values `1`/`true`/`0`/`false` only (SSN-02).
    Boolean,
    /// `fixed`: descriptive text; the only type that may omit `var`.
    Fixed,
    /// `hidden`; multi-valued in ESessions (`dhhashes`, `dhkeys`, `rshashes`, `signs`;
    /// AMB-32, AMB-33).
    Hidden,
    /// `jid-multi`.
    JidMulti,
    /// `jid-single`.
    JidSingle,
    /// `list-multi` (e.g. `stanzas`, AMB-29).
    ListMulti,
    /// `list-single`.
    ListSingle,
    /// `text-multi`.
    TextMulti,
    /// `text-private`.
    TextPrivate,
    /// `text-single` (e.g. `rekey_freq`).
    TextSingle,
}

impl FieldType {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Boolean => "boolean",
            FieldType::Fixed => "fixed",
            FieldType::Hidden => "hidden",
            FieldType::JidMulti => "jid-multi",
            FieldType::JidSingle => "jid-single",
            FieldType::ListMulti => "list-multi",
            FieldType::ListSingle => "list-single",
            FieldType::TextMulti => "text-multi",
            FieldType::TextPrivate => "text-private",
            FieldType::TextSingle => "text-single",
        }
    }

    /// Whether XEP-0004 lets this type carry several `<value/>`s (list-multi, jid-multi,
    /// text-multi, hidden).
    pub fn is_multi_valued(self) -> bool {
        matches!(
            self,
            FieldType::Hidden | FieldType::ListMulti | FieldType::JidMulti | FieldType::TextMulti
        )
    }

    /// Whether this type may carry `<option/>`s (list-single, list-multi).
    pub fn has_options(self) -> bool {
        matches!(self, FieldType::ListSingle | FieldType::ListMulti)
    }
}

impl FromStr for FieldType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "boolean" => FieldType::Boolean,
            "fixed" => FieldType::Fixed,
            "hidden" => FieldType::Hidden,
            "jid-multi" => FieldType::JidMulti,
            "jid-single" => FieldType::JidSingle,
            "list-multi" => FieldType::ListMulti,
            "list-single" => FieldType::ListSingle,
            "text-multi" => FieldType::TextMulti,
            "text-private" => FieldType::TextPrivate,
            "text-single" => FieldType::TextSingle,
            _ => {
                return Err(Error::InvalidAttribute {
                    element: "field",
                    attribute: "type",
                });
            }
        })
    }
}

/// Reads a XEP-0004 boolean: `1`/`true` or `0`/`false`, nothing else (SSN-02).
pub fn parse_bool(value: &str) -> Result<bool> {
    match value {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(Error::InvalidBoolean),
    }
}

/// One `<option label='..'><value>..</value></option>` of a list field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldOption {
    /// The `label` attribute (display only; SSN-18 says replace it with a local string).
    pub label: Option<String>,
    /// The single `<value/>`.
    pub value: String,
}

impl FieldOption {
    /// An option without a label.
    pub fn new(value: impl Into<String>) -> Self {
        FieldOption {
            label: None,
            value: value.into(),
        }
    }

    /// Sets the label.
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
}

/// One `<field/>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    /// The `var` attribute; `None` only for `fixed` fields.
    pub var: Option<String>,
    /// The `type` attribute; answers (`submit`/`result`) often omit it (AMB-50).
    pub field_type: Option<FieldType>,
    /// The `label` attribute.
    pub label: Option<String>,
    /// The `<value/>`s, in document order.
    pub values: Vec<String>,
    /// The `<option/>`s, in document order (best first, AMB-31).
    pub options: Vec<FieldOption>,
    /// Whether `<required/>` is present.
    pub required: bool,
    /// The `<desc/>`.
    pub desc: Option<String>,
}

impl Field {
    /// A field with `var` and `type` and nothing else.
    pub fn new(var: impl Into<String>, field_type: Option<FieldType>) -> Self {
        Field {
            var: Some(var.into()),
            field_type,
            label: None,
            values: Vec::new(),
            options: Vec::new(),
            required: false,
            desc: None,
        }
    }

    /// A `hidden` field with the given values (e.g. `FORM_TYPE`, `my_nonce`, `dhhashes`).
    pub fn hidden<I, S>(var: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Field::new(var, Some(FieldType::Hidden)).with_values(values)
    }

    /// A `boolean` field with value `1` or `0` (e.g. `accept`, `terminate`).
    pub fn boolean(var: impl Into<String>, value: bool) -> Self {
        Field::new(var, Some(FieldType::Boolean)).with_value(if value { "1" } else { "0" })
    }

    /// A `list-single` field offering `options` (unlabelled), best first (AMB-31).
    pub fn list_single<I, S>(var: impl Into<String>, options: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Field::new(var, Some(FieldType::ListSingle)).with_options(options)
    }

    /// A `list-multi` field offering `options` (unlabelled), best first.
    pub fn list_multi<I, S>(var: impl Into<String>, options: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Field::new(var, Some(FieldType::ListMulti)).with_options(options)
    }

    /// A `text-single` field with one value (e.g. `rekey_freq`).
    pub fn text_single(var: impl Into<String>, value: impl Into<String>) -> Self {
        Field::new(var, Some(FieldType::TextSingle)).with_value(value)
    }

    /// A field without `type`, as in answers (`submit`/`result`), with the given values.
    pub fn untyped<I, S>(var: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Field::new(var, None).with_values(values)
    }

    /// Marks the field `<required/>`.
    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Sets the label.
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets the description.
    #[must_use]
    pub fn with_desc(mut self, desc: impl Into<String>) -> Self {
        self.desc = Some(desc.into());
        self
    }

    /// Appends a value.
    #[must_use]
    pub fn with_value(mut self, value: impl Into<String>) -> Self {
        self.values.push(value.into());
        self
    }

    /// Appends values.
    #[must_use]
    pub fn with_values<I, S>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.values.extend(values.into_iter().map(Into::into));
        self
    }

    /// Appends an option.
    #[must_use]
    pub fn with_option(mut self, option: FieldOption) -> Self {
        self.options.push(option);
        self
    }

    /// Appends unlabelled options.
    #[must_use]
    pub fn with_options<I, S>(mut self, options: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.options
            .extend(options.into_iter().map(|v| FieldOption::new(v)));
        self
    }

    /// The value if there is exactly one.
    pub fn single_value(&self) -> Option<&str> {
        match self.values.as_slice() {
            [v] => Some(v),
            _ => None,
        }
    }

    /// The field's single value read as a boolean (SSN-02), whatever the field's `type`
    /// (answers omit it). Errors if there is no value, more than one, or an invalid one.
    pub fn as_bool(&self) -> Result<bool> {
        match self.values.as_slice() {
            [v] => parse_bool(v),
            [] => Err(Error::MissingValue {
                var: self.var_for_error(),
            }),
            _ => Err(Error::TooManyValues {
                var: self.var_for_error(),
            }),
        }
    }

    /// Option values in order (e.g. to pick the first supported algorithm).
    pub fn option_values(&self) -> impl Iterator<Item = &str> {
        self.options.iter().map(|o| o.value.as_str())
    }

    fn var_for_error(&self) -> String {
        peer_text(self.var.as_deref().unwrap_or(""))
    }
}

/// A XEP-0004 `<x xmlns='jabber:x:data'/>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DataForm {
    /// The `type` attribute.
    pub kind: FormKind,
    /// The `<title/>` (SSN-18: display a local string instead).
    pub title: Option<String>,
    /// The `<instructions/>`, in order.
    pub instructions: Vec<String>,
    /// The fields, in document order.
    pub fields: Vec<Field>,
}

impl DataForm {
    /// An empty form of the given kind.
    pub fn new(kind: FormKind) -> Self {
        DataForm {
            kind,
            title: None,
            instructions: Vec::new(),
            fields: Vec::new(),
        }
    }

    /// Appends a field.
    #[must_use]
    pub fn with_field(mut self, field: Field) -> Self {
        self.fields.push(field);
        self
    }

    /// The field with this `var`.
    pub fn field(&self, var: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.var.as_deref() == Some(var))
    }

    /// The value of the `FORM_TYPE` field (XEP-0068), e.g. [`ns::SSN`].
    pub fn form_type_value(&self) -> Option<&str> {
        self.field(FORM_TYPE).and_then(Field::single_value)
    }
}

impl TryFrom<&Element> for DataForm {
    type Error = Error;

    /// Strict parse of `<x xmlns='jabber:x:data'/>` (practice 5).
    fn try_from(x: &Element) -> Result<Self> {
        parse_form(x, false)
    }
}

impl DataForm {
    /// The parse of [`TryFrom<&Element>`] with the two departures of the deployed
    /// implementation (Gajim 0.12-0.16, reference-behaviour.md §2): every field it builds
    /// without a type carries `type="text-single"`, FORM_TYPE included, and such a field may
    /// carry several values (`rshashes`) in a `submit` or `result` form. Everything else
    /// (limits, structure, booleans) is checked as strictly. For the Gajim compatibility
    /// profile only.
    pub fn try_from_relaxed(x: &Element) -> Result<Self> {
        parse_form(x, true)
    }
}

fn parse_form(x: &Element, relaxed: bool) -> Result<DataForm> {
    expect_element(x, "x", ns::DATA_FORMS)?;
    check_attributes(x, "x", &["type"])?;
    let kind: FormKind = x
        .attr("type")
        .ok_or(Error::MissingAttribute {
            element: "x",
            attribute: "type",
        })?
        .parse()?;
    check_element_only(x, "x")?;

    let mut form = DataForm::new(kind);
    let mut vars = BTreeSet::new();
    for child in x.children() {
        if !child.has_ns(ns::DATA_FORMS) {
            return Err(unexpected_child("x", child));
        }
        match child.name() {
            "field" => {
                if form.fields.len() >= MAX_FIELDS {
                    return Err(Error::LimitExceeded { what: "fields" });
                }
                let field = parse_field(child, kind, relaxed)?;
                if let Some(var) = &field.var
                    && !vars.insert(var.clone())
                {
                    return Err(Error::DuplicateField {
                        var: peer_text(var),
                    });
                }
                form.fields.push(field);
            }
            "title" => {
                if form.title.is_some() {
                    return Err(Error::DuplicateChild {
                        parent: "x",
                        child: "title",
                    });
                }
                form.title = Some(bounded_text(child, "title")?);
            }
            "instructions" => {
                if form.instructions.len() >= MAX_INSTRUCTIONS {
                    return Err(Error::LimitExceeded {
                        what: "instructions",
                    });
                }
                form.instructions.push(bounded_text(child, "instructions")?);
            }
            _ => return Err(unexpected_child("x", child)),
        }
    }
    Ok(form)
}

fn unexpected_child(parent: &'static str, child: &Element) -> Error {
    Error::UnexpectedChild {
        parent,
        child: peer_text(child.name()),
    }
}

/// A text-only child without attributes, bounded by [`MAX_TEXT_LEN`].
fn bounded_text(el: &Element, name: &'static str) -> Result<String> {
    check_attributes(el, name, &[])?;
    let text = leaf_text(el, name)?;
    if text.len() > MAX_TEXT_LEN {
        return Err(Error::LimitExceeded { what: name });
    }
    Ok(text)
}

fn bounded_attr(el: &Element, name: &'static str, max: usize) -> Result<Option<String>> {
    match el.attr(name) {
        Some(v) if v.len() > max => Err(Error::LimitExceeded { what: name }),
        v => Ok(v.map(str::to_owned)),
    }
}

fn parse_field(el: &Element, kind: FormKind, relaxed: bool) -> Result<Field> {
    check_attributes(el, "field", &["label", "type", "var"])?;
    let field_type = el.attr("type").map(str::parse::<FieldType>).transpose()?;
    let var = bounded_attr(el, "var", MAX_VAR_LEN)?.filter(|v| !v.is_empty());
    if var.is_none() && field_type != Some(FieldType::Fixed) {
        return Err(Error::FieldWithoutVar);
    }
    let var_for_error = || peer_text(var.as_deref().unwrap_or(""));
    check_element_only(el, "field")?;

    let mut field = Field {
        var: var.clone(),
        field_type,
        label: bounded_attr(el, "label", MAX_TEXT_LEN)?,
        values: Vec::new(),
        options: Vec::new(),
        required: false,
        desc: None,
    };
    for child in el.children() {
        if !child.has_ns(ns::DATA_FORMS) {
            return Err(unexpected_child("field", child));
        }
        match child.name() {
            "value" => {
                if field.values.len() >= MAX_VALUES {
                    return Err(Error::LimitExceeded { what: "values" });
                }
                field.values.push(bounded_text(child, "value")?);
            }
            "option" => {
                if field.options.len() >= MAX_VALUES {
                    return Err(Error::LimitExceeded { what: "options" });
                }
                field.options.push(parse_option(child, &var_for_error)?);
            }
            "required" => {
                if field.required {
                    return Err(Error::DuplicateChild {
                        parent: "field",
                        child: "required",
                    });
                }
                check_attributes(child, "required", &[])?;
                check_empty(child, "required")?;
                field.required = true;
            }
            "desc" => {
                if field.desc.is_some() {
                    return Err(Error::DuplicateChild {
                        parent: "field",
                        child: "desc",
                    });
                }
                field.desc = Some(bounded_text(child, "desc")?);
            }
            _ => return Err(unexpected_child("field", child)),
        }
    }

    // XEP-0004 §3.3: only list-multi, jid-multi, text-multi and hidden may repeat <value/>.
    // Untyped fields of answers may carry several (their type is the offer's); untyped fields
    // of a `form` default to text-single.
    let multi_ok = match field_type {
        _ if relaxed && kind != FormKind::Form => true,
        Some(t) => t.is_multi_valued(),
        None => kind != FormKind::Form,
    };
    if field.values.len() > 1 && !multi_ok {
        return Err(Error::TooManyValues {
            var: var_for_error(),
        });
    }
    if !field.options.is_empty() && !field_type.is_some_and(FieldType::has_options) {
        return Err(Error::OptionsNotAllowed {
            var: var_for_error(),
        });
    }
    if field_type == Some(FieldType::Boolean) {
        for v in &field.values {
            parse_bool(v)?;
        }
    }
    // XEP-0068: FORM_TYPE is hidden (or untyped in answers) and carries exactly one value.
    if var.as_deref() == Some(FORM_TYPE) {
        if !relaxed && field_type.is_some_and(|t| t != FieldType::Hidden) {
            return Err(Error::InvalidFieldType {
                var: FORM_TYPE.into(),
            });
        }
        match field.values.len() {
            1 => {}
            0 => {
                return Err(Error::MissingValue {
                    var: FORM_TYPE.into(),
                });
            }
            _ => {
                return Err(Error::TooManyValues {
                    var: FORM_TYPE.into(),
                });
            }
        }
    }
    Ok(field)
}

fn parse_option(el: &Element, var_for_error: &dyn Fn() -> String) -> Result<FieldOption> {
    check_attributes(el, "option", &["label"])?;
    check_element_only(el, "option")?;
    let mut value = None;
    for child in el.children() {
        if !child.is("value", ns::DATA_FORMS) || value.is_some() {
            return Err(Error::InvalidOption {
                var: var_for_error(),
            });
        }
        value = Some(bounded_text(child, "value")?);
    }
    Ok(FieldOption {
        label: bounded_attr(el, "label", MAX_TEXT_LEN)?,
        value: value.ok_or_else(|| Error::InvalidOption {
            var: var_for_error(),
        })?,
    })
}

impl From<&Field> for Element {
    /// `<field label type var>` then `<desc/>`, `<value/>`*, `<option/>`*, `<required/>`.
    fn from(field: &Field) -> Element {
        let mut b = Element::builder("field", ns::DATA_FORMS);
        if let Some(label) = &field.label {
            b = b.attr(ncname("label"), label.as_str());
        }
        if let Some(t) = field.field_type {
            b = b.attr(ncname("type"), t.as_str());
        }
        if let Some(var) = &field.var {
            b = b.attr(ncname("var"), var.as_str());
        }
        if let Some(desc) = &field.desc {
            b = b.append(text_element("desc", ns::DATA_FORMS, desc.as_str()));
        }
        for v in &field.values {
            b = b.append(text_element("value", ns::DATA_FORMS, v.as_str()));
        }
        for o in &field.options {
            let mut ob = Element::builder("option", ns::DATA_FORMS);
            if let Some(label) = &o.label {
                ob = ob.attr(ncname("label"), label.as_str());
            }
            b = b.append(
                ob.append(text_element("value", ns::DATA_FORMS, o.value.as_str()))
                    .build(),
            );
        }
        if field.required {
            b = b.append(Element::bare("required", ns::DATA_FORMS));
        }
        b.build()
    }
}

impl From<&DataForm> for Element {
    /// `<x xmlns='jabber:x:data' type=..>` with `<title/>`, `<instructions/>`*, fields.
    fn from(form: &DataForm) -> Element {
        let mut b = Element::builder("x", ns::DATA_FORMS).attr(ncname("type"), form.kind.as_str());
        if let Some(title) = &form.title {
            b = b.append(text_element("title", ns::DATA_FORMS, title.as_str()));
        }
        for i in &form.instructions {
            b = b.append(text_element("instructions", ns::DATA_FORMS, i.as_str()));
        }
        for f in &form.fields {
            b = b.append(Element::from(f));
        }
        b.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{normalize_form_content, try_normalize_form_content};
    use proptest::prelude::*;

    const X: &str = "xmlns='jabber:x:data'";

    fn parse(xml: &str) -> Result<DataForm> {
        let el: Element = xml.parse().unwrap();
        DataForm::try_from(&el)
    }

    fn form_with_fields(kind: &str, fields: &str) -> String {
        format!("<x {X} type='{kind}'>{fields}</x>")
    }

    fn parse_fields(kind: &str, fields: &str) -> Result<DataForm> {
        parse(&form_with_fields(kind, fields))
    }

    fn to_string(el: &Element) -> String {
        String::from(el)
    }

    // ---- accepted input ----

    #[test]
    fn parses_an_ssn_offer_with_typed_fields_ssn_01() {
        let form = parse_fields(
            "form",
            "<title>t</title><instructions>i</instructions>\
             <field type='hidden' var='FORM_TYPE'><value>urn:xmpp:ssn</value></field>\
             <field type='boolean' var='accept' label='Accept?'><desc>d</desc><value>1</value><required/></field>\
             <field type='list-single' var='logging'><option label='Yes'><value>may</value></option>\
             <option><value>mustnot</value></option><required/></field>",
        )
        .unwrap();
        assert_eq!(form.kind, FormKind::Form);
        assert_eq!(form.title.as_deref(), Some("t"));
        assert_eq!(form.instructions, vec!["i".to_string()]);
        assert_eq!(form.form_type_value(), Some(ns::SSN));
        let accept = form.field("accept").unwrap();
        assert_eq!(accept.field_type, Some(FieldType::Boolean));
        assert!(accept.required);
        assert_eq!(accept.label.as_deref(), Some("Accept?"));
        assert_eq!(accept.desc.as_deref(), Some("d"));
        assert!(accept.as_bool().unwrap());
        let logging = form.field("logging").unwrap();
        assert_eq!(
            logging.option_values().collect::<Vec<_>>(),
            ["may", "mustnot"]
        );
        assert_eq!(logging.options[0].label.as_deref(), Some("Yes"));
        assert!(form.field("missing").is_none());
    }

    #[test]
    fn accepts_multi_valued_hidden_fields_amb_32_amb_33() {
        let form = parse_fields(
            "form",
            "<field type='hidden' var='dhhashes'><value>AA==</value><value>AQ==</value></field>",
        )
        .unwrap();
        assert_eq!(form.fields[0].values.len(), 2);
        assert_eq!(form.fields[0].single_value(), None);
    }

    #[test]
    fn accepts_multi_valued_untyped_fields_in_answers_amb_29() {
        let form = parse_fields(
            "submit",
            "<field var='stanzas'><value>message</value><value>iq</value></field>",
        )
        .unwrap();
        assert_eq!(form.fields[0].field_type, None);
        assert_eq!(form.fields[0].values, ["message", "iq"]);
    }

    #[test]
    fn accepts_multi_values_on_every_multi_type() {
        for t in ["list-multi", "text-multi", "jid-multi", "hidden"] {
            let form = parse_fields(
                "form",
                &format!("<field type='{t}' var='v'><value>a</value><value>b</value></field>"),
            );
            assert_eq!(form.unwrap().fields[0].values, ["a", "b"], "{t}");
        }
    }

    #[test]
    fn accepts_a_fixed_field_without_var() {
        let form =
            parse_fields("form", "<field type='fixed'><value>Section</value></field>").unwrap();
        assert_eq!(form.fields[0].var, None);
        assert_eq!(form.fields[0].field_type, Some(FieldType::Fixed));
    }

    #[test]
    fn ignores_white_space_and_namespaced_attributes_amb_48() {
        let form = parse(&format!(
            "<x {X} type='result' xml:lang='en'>\n  <field var='accept' xml:lang='en'>\n    \
             <value>true</value>\n  </field>\n</x>"
        ))
        .unwrap();
        assert!(form.field("accept").unwrap().as_bool().unwrap());
    }

    #[test]
    fn keeps_value_text_verbatim() {
        let form = parse_fields(
            "submit",
            "<field var='a'><value> x &amp; y </value></field>",
        )
        .unwrap();
        assert_eq!(form.fields[0].values, [" x & y "]);
        let form = parse_fields("submit", "<field var='a'><value/></field>").unwrap();
        assert_eq!(form.fields[0].values, [""]);
    }

    #[test]
    fn parses_booleans_strictly_ssn_02() {
        assert_eq!(parse_bool("1"), Ok(true));
        assert_eq!(parse_bool("true"), Ok(true));
        assert_eq!(parse_bool("0"), Ok(false));
        assert_eq!(parse_bool("false"), Ok(false));
        for bad in ["", "yes", "TRUE", "True", " 1", "1 ", "2", "no", "on"] {
            assert_eq!(parse_bool(bad), Err(Error::InvalidBoolean), "{bad:?}");
        }
    }

    #[test]
    fn as_bool_requires_exactly_one_value_ssn_02() {
        let none = Field::untyped("accept", Vec::<String>::new());
        assert_eq!(
            none.as_bool(),
            Err(Error::MissingValue {
                var: "accept".into()
            })
        );
        let two = Field::untyped("accept", ["1", "1"]);
        assert_eq!(
            two.as_bool(),
            Err(Error::TooManyValues {
                var: "accept".into()
            })
        );
        assert_eq!(Field::untyped("accept", ["false"]).as_bool(), Ok(false));
        assert_eq!(
            Field::untyped("accept", ["maybe"]).as_bool(),
            Err(Error::InvalidBoolean)
        );
    }

    // ---- rejected input ----

    #[test]
    fn rejects_an_element_that_is_not_a_data_form() {
        let el: Element = "<x xmlns='urn:other' type='form'/>".parse().unwrap();
        assert_eq!(
            DataForm::try_from(&el),
            Err(Error::WrongElement {
                name: "x",
                namespace: ns::DATA_FORMS
            })
        );
        let el: Element = format!("<y {X} type='form'/>").parse().unwrap();
        assert!(matches!(
            DataForm::try_from(&el),
            Err(Error::WrongElement { .. })
        ));
    }

    #[test]
    fn relaxed_parse_accepts_gajims_typed_form_type_and_multi_valued_text_single() {
        // reference-behaviour.md §2: Gajim's DataField without a type gets
        // type="text-single", FORM_TYPE and rshashes (several values) included.
        let xml = form_with_fields(
            "result",
            "<field var='FORM_TYPE' type='text-single'><value>urn:xmpp:ssn</value></field>\
             <field var='rshashes' type='text-single'><value>a</value><value>b</value></field>",
        );
        let x: Element = xml.parse().unwrap();
        assert!(
            DataForm::try_from(&x).is_err(),
            "the strict parse refuses both"
        );
        let form = DataForm::try_from_relaxed(&x).unwrap();
        assert_eq!(form.form_type_value(), Some("urn:xmpp:ssn"));
        assert_eq!(form.field("rshashes").unwrap().values, vec!["a", "b"]);
        // An offer (`form`) still may not repeat a text-single value, and the
        // rest stays strict.
        let offer: Element = form_with_fields(
            "form",
            "<field var='a' type='text-single'><value>1</value><value>2</value></field>",
        )
        .parse()
        .unwrap();
        assert!(DataForm::try_from_relaxed(&offer).is_err());
        let bad: Element = form_with_fields(
            "result",
            "<field var='b' type='boolean'><value>x</value></field>",
        )
        .parse()
        .unwrap();
        assert!(DataForm::try_from_relaxed(&bad).is_err());
    }

    #[test]
    fn rejects_a_form_without_type() {
        assert_eq!(
            parse(&format!("<x {X}/>")),
            Err(Error::MissingAttribute {
                element: "x",
                attribute: "type"
            })
        );
    }

    #[test]
    fn rejects_an_unknown_form_type() {
        assert_eq!(
            parse(&format!("<x {X} type='Form'/>")),
            Err(Error::InvalidAttribute {
                element: "x",
                attribute: "type"
            })
        );
    }

    #[test]
    fn rejects_unknown_attributes() {
        assert!(matches!(
            parse(&format!("<x {X} type='form' extra='1'/>")),
            Err(Error::UnexpectedAttribute { element: "x", .. })
        ));
        assert!(matches!(
            parse_fields("form", "<field var='a' size='3'/>"),
            Err(Error::UnexpectedAttribute {
                element: "field",
                ..
            })
        ));
        assert!(matches!(
            parse_fields("form", "<field var='a'><value v='1'>x</value></field>"),
            Err(Error::UnexpectedAttribute {
                element: "value",
                ..
            })
        ));
        assert!(matches!(
            parse_fields(
                "form",
                "<field var='a' type='list-single'><option value='1'><value>x</value></option></field>"
            ),
            Err(Error::UnexpectedAttribute {
                element: "option",
                ..
            })
        ));
        assert!(matches!(
            parse_fields("form", "<field var='a'><required a='1'/></field>"),
            Err(Error::UnexpectedAttribute {
                element: "required",
                ..
            })
        ));
    }

    #[test]
    fn rejects_duplicate_field_var() {
        assert_eq!(
            parse_fields(
                "submit",
                "<field var='accept'><value>1</value></field><field var='accept'><value>0</value></field>"
            ),
            Err(Error::DuplicateField {
                var: "accept".into()
            })
        );
    }

    #[test]
    fn rejects_a_field_without_var_unless_fixed() {
        assert_eq!(
            parse_fields("form", "<field type='hidden'><value>x</value></field>"),
            Err(Error::FieldWithoutVar)
        );
        assert_eq!(
            parse_fields("submit", "<field><value>x</value></field>"),
            Err(Error::FieldWithoutVar)
        );
        assert_eq!(
            parse_fields("submit", "<field var=''><value>x</value></field>"),
            Err(Error::FieldWithoutVar)
        );
    }

    #[test]
    fn rejects_an_unknown_field_type() {
        assert_eq!(
            parse_fields("form", "<field var='a' type='list'/>"),
            Err(Error::InvalidAttribute {
                element: "field",
                attribute: "type"
            })
        );
    }

    #[test]
    fn rejects_unknown_children() {
        assert_eq!(
            parse_fields("form", "<reported/>"),
            Err(Error::UnexpectedChild {
                parent: "x",
                child: "reported".into()
            })
        );
        assert_eq!(
            parse_fields("form", "<field var='a'><media/></field>"),
            Err(Error::UnexpectedChild {
                parent: "field",
                child: "media".into()
            })
        );
        // Right name, foreign namespace.
        assert_eq!(
            parse_fields(
                "form",
                "<field var='a'><value xmlns='urn:other'>1</value></field>"
            ),
            Err(Error::UnexpectedChild {
                parent: "field",
                child: "value".into()
            })
        );
        assert_eq!(
            parse_fields("form", "<field xmlns='urn:other' var='a'/>"),
            Err(Error::UnexpectedChild {
                parent: "x",
                child: "field".into()
            })
        );
        assert_eq!(
            parse_fields("form", "<field var='a'><value><b/></value></field>"),
            Err(Error::UnexpectedChild {
                parent: "value",
                child: "b".into()
            })
        );
        assert_eq!(
            parse_fields("form", "<title><b/></title>"),
            Err(Error::UnexpectedChild {
                parent: "title",
                child: "b".into()
            })
        );
    }

    #[test]
    fn rejects_mixed_content_amb_47() {
        assert_eq!(
            parse_fields("form", "text<field var='a'/>"),
            Err(Error::MixedContent {
                element: "x".into()
            })
        );
        assert_eq!(
            parse_fields("form", "<field var='a'>text<value>1</value></field>"),
            Err(Error::MixedContent {
                element: "field".into()
            })
        );
        assert_eq!(
            parse_fields(
                "form",
                "<field var='a' type='list-single'><option>t<value>1</value></option></field>"
            ),
            Err(Error::MixedContent {
                element: "option".into()
            })
        );
    }

    #[test]
    fn rejects_options_without_exactly_one_value() {
        let e = Err(Error::InvalidOption { var: "a".into() });
        assert_eq!(
            parse_fields(
                "form",
                "<field var='a' type='list-single'><option/></field>"
            ),
            e
        );
        assert_eq!(
            parse_fields(
                "form",
                "<field var='a' type='list-single'><option><value>1</value><value>2</value></option></field>"
            ),
            e
        );
        assert_eq!(
            parse_fields(
                "form",
                "<field var='a' type='list-single'><option><desc>1</desc></option></field>"
            ),
            e
        );
    }

    #[test]
    fn rejects_options_on_non_list_fields() {
        for t in ["text-single", "hidden", "boolean"] {
            assert_eq!(
                parse_fields(
                    "form",
                    &format!("<field var='a' type='{t}'><option><value>1</value></option></field>")
                ),
                Err(Error::OptionsNotAllowed { var: "a".into() }),
                "{t}"
            );
        }
        assert_eq!(
            parse_fields(
                "submit",
                "<field var='a'><option><value>1</value></option></field>"
            ),
            Err(Error::OptionsNotAllowed { var: "a".into() })
        );
    }

    #[test]
    fn rejects_duplicate_required_and_desc() {
        assert_eq!(
            parse_fields("form", "<field var='a'><required/><required/></field>"),
            Err(Error::DuplicateChild {
                parent: "field",
                child: "required"
            })
        );
        assert_eq!(
            parse_fields(
                "form",
                "<field var='a'><desc>1</desc><desc>2</desc></field>"
            ),
            Err(Error::DuplicateChild {
                parent: "field",
                child: "desc"
            })
        );
        assert_eq!(
            parse_fields("form", "<title>1</title><title>2</title>"),
            Err(Error::DuplicateChild {
                parent: "x",
                child: "title"
            })
        );
    }

    #[test]
    fn rejects_content_inside_required() {
        assert_eq!(
            parse_fields("form", "<field var='a'><required>1</required></field>"),
            Err(Error::UnexpectedText {
                element: "required"
            })
        );
        assert_eq!(
            parse_fields("form", "<field var='a'><required> </required></field>"),
            Err(Error::UnexpectedText {
                element: "required"
            })
        );
        assert_eq!(
            parse_fields(
                "form",
                "<field var='a'><required><value/></required></field>"
            ),
            Err(Error::UnexpectedChild {
                parent: "required",
                child: "value".into()
            })
        );
    }

    #[test]
    fn rejects_invalid_boolean_values_ssn_02() {
        assert_eq!(
            parse_fields(
                "form",
                "<field var='accept' type='boolean'><value>yes</value></field>"
            ),
            Err(Error::InvalidBoolean)
        );
    }

    #[test]
    fn rejects_several_values_on_single_valued_types() {
        for t in [
            "boolean",
            "list-single",
            "text-single",
            "text-private",
            "jid-single",
            "fixed",
        ] {
            assert_eq!(
                parse_fields(
                    "form",
                    &format!("<field var='a' type='{t}'><value>1</value><value>0</value></field>")
                ),
                Err(Error::TooManyValues { var: "a".into() }),
                "{t}"
            );
        }
        // Untyped in a `form` means text-single.
        assert_eq!(
            parse_fields(
                "form",
                "<field var='a'><value>1</value><value>0</value></field>"
            ),
            Err(Error::TooManyValues { var: "a".into() })
        );
    }

    #[test]
    fn rejects_a_form_type_field_that_is_not_hidden_or_not_single() {
        assert_eq!(
            parse_fields(
                "form",
                "<field var='FORM_TYPE' type='text-single'><value>urn:xmpp:ssn</value></field>"
            ),
            Err(Error::InvalidFieldType {
                var: "FORM_TYPE".into()
            })
        );
        assert_eq!(
            parse_fields(
                "form",
                "<field var='FORM_TYPE' type='hidden'><value>a</value><value>b</value></field>"
            ),
            Err(Error::TooManyValues {
                var: "FORM_TYPE".into()
            })
        );
        assert_eq!(
            parse_fields("submit", "<field var='FORM_TYPE'/>"),
            Err(Error::MissingValue {
                var: "FORM_TYPE".into()
            })
        );
    }

    #[test]
    fn rejects_oversized_forms() {
        let many_fields: String = (0..=MAX_FIELDS)
            .map(|i| format!("<field var='f{i}'/>"))
            .collect();
        assert_eq!(
            parse_fields("submit", &many_fields),
            Err(Error::LimitExceeded { what: "fields" })
        );
        let ok_fields: String = (0..MAX_FIELDS)
            .map(|i| format!("<field var='f{i}'/>"))
            .collect();
        assert_eq!(
            parse_fields("submit", &ok_fields).unwrap().fields.len(),
            MAX_FIELDS
        );

        let many_values: String = (0..=MAX_VALUES).map(|_| "<value>x</value>").collect();
        assert_eq!(
            parse_fields(
                "form",
                &format!("<field var='a' type='hidden'>{many_values}</field>")
            ),
            Err(Error::LimitExceeded { what: "values" })
        );
        let many_options: String = (0..=MAX_VALUES)
            .map(|_| "<option><value>x</value></option>")
            .collect();
        assert_eq!(
            parse_fields(
                "form",
                &format!("<field var='a' type='list-multi'>{many_options}</field>")
            ),
            Err(Error::LimitExceeded { what: "options" })
        );
        let long = "a".repeat(MAX_TEXT_LEN + 1);
        assert_eq!(
            parse_fields(
                "submit",
                &format!("<field var='a'><value>{long}</value></field>")
            ),
            Err(Error::LimitExceeded { what: "value" })
        );
        // rxml itself refuses attribute values this long, so build the element directly.
        let x = Element::builder("x", ns::DATA_FORMS)
            .attr(ncname("type"), "submit")
            .append(
                Element::builder("field", ns::DATA_FORMS)
                    .attr(ncname("var"), "a")
                    .attr(ncname("label"), long.as_str())
                    .build(),
            )
            .build();
        assert_eq!(
            DataForm::try_from(&x),
            Err(Error::LimitExceeded { what: "label" })
        );
        let long_var = "v".repeat(MAX_VAR_LEN + 1);
        assert_eq!(
            parse_fields("submit", &format!("<field var='{long_var}'/>")),
            Err(Error::LimitExceeded { what: "var" })
        );
        let many_instr: String = (0..=MAX_INSTRUCTIONS)
            .map(|_| "<instructions>i</instructions>")
            .collect();
        assert_eq!(
            parse_fields("form", &many_instr),
            Err(Error::LimitExceeded {
                what: "instructions"
            })
        );
    }

    // ---- serialization ----

    /// Stanza 1 of vectors/esession-4msg.json, `<x/>` only, exactly as the reference sent it.
    const VECTOR_OFFER_X: &str = r#"<x xmlns="jabber:x:data" type="form"><field type="hidden" var="FORM_TYPE"><value>urn:xmpp:ssn</value></field><field type="boolean" var="accept"><value>1</value><required/></field><field type="list-single" var="logging"><option><value>may</value></option><option><value>mustnot</value></option><required/></field><field type="list-single" var="disclosure"><option><value>never</value></option><required/></field><field type="list-single" var="security"><option><value>e2e</value></option><required/></field><field type="list-single" var="modp"><option><value>5</value></option><option><value>14</value></option><option><value>2</value></option><option><value>1</value></option></field><field type="list-single" var="crypt_algs"><option><value>aes128-ctr</value></option><option><value>aes192-ctr</value></option><option><value>aes256-ctr</value></option></field><field type="list-single" var="hash_algs"><option><value>sha256</value></option></field><field type="list-single" var="compress"><option><value>none</value></option></field><field type="list-multi" var="stanzas"><option><value>message</value></option></field><field type="list-single" var="init_pubkey"><option><value>none</value></option></field><field type="list-single" var="resp_pubkey"><option><value>none</value></option></field><field type="list-single" var="ver"><option><value>1.0</value></option></field><field type="text-single" var="rekey_freq"><value>1</value></field><field type="hidden" var="my_nonce"><value>0n7uDgkn3Qtld/NstsGCAw==</value></field><field type="list-single" var="sas_algs"><option><value>sas28x5</value></option></field><field type="hidden" var="dhhashes"><value>Vd4Hs1LOlTkyom3qPKx07EH8FOFWHCV58oL2yjWG+L4=</value><value>4CSbtF738TiVxlqlOvuom0B5RD0mhqprRljP82v2ZbA=</value><value>5Orv2Lsydv62br6GBPHKp7DAZ7rkBrS/MfGQY4wo+wM=</value><value>YhTGFHaw4qMqpiQ4pYHlItR0qnwRM2rfoYJ63o9/SX0=</value></field></x>"#;

    fn vector_offer() -> DataForm {
        DataForm::new(FormKind::Form)
            .with_field(Field::hidden(FORM_TYPE, [ns::SSN]))
            .with_field(Field::boolean("accept", true).required())
            .with_field(Field::list_single("logging", ["may", "mustnot"]).required())
            .with_field(Field::list_single("disclosure", ["never"]).required())
            .with_field(Field::list_single("security", ["e2e"]).required())
            .with_field(Field::list_single("modp", ["5", "14", "2", "1"]))
            .with_field(Field::list_single(
                "crypt_algs",
                ["aes128-ctr", "aes192-ctr", "aes256-ctr"],
            ))
            .with_field(Field::list_single("hash_algs", ["sha256"]))
            .with_field(Field::list_single("compress", ["none"]))
            .with_field(Field::list_multi("stanzas", ["message"]))
            .with_field(Field::list_single("init_pubkey", ["none"]))
            .with_field(Field::list_single("resp_pubkey", ["none"]))
            .with_field(Field::list_single("ver", ["1.0"]))
            .with_field(Field::text_single("rekey_freq", "1"))
            .with_field(Field::hidden("my_nonce", ["0n7uDgkn3Qtld/NstsGCAw=="]))
            .with_field(Field::list_single("sas_algs", ["sas28x5"]))
            .with_field(Field::hidden(
                "dhhashes",
                [
                    "Vd4Hs1LOlTkyom3qPKx07EH8FOFWHCV58oL2yjWG+L4=",
                    "4CSbtF738TiVxlqlOvuom0B5RD0mhqprRljP82v2ZbA=",
                    "5Orv2Lsydv62br6GBPHKp7DAZ7rkBrS/MfGQY4wo+wM=",
                    "YhTGFHaw4qMqpiQ4pYHlItR0qnwRM2rfoYJ63o9/SX0=",
                ],
            ))
    }

    #[test]
    fn serializes_the_vector_offer_byte_for_byte() {
        let el = Element::from(&vector_offer());
        // minidom writes attribute values in single quotes, the reference in double quotes;
        // no value here contains a quote, so swapping them is exact.
        assert_eq!(to_string(&el), VECTOR_OFFER_X.replace('"', "'"));
        let received: Element = VECTOR_OFFER_X.parse().unwrap();
        assert_eq!(
            try_normalize_form_content(&el, &[]).unwrap(),
            try_normalize_form_content(&received, &[]).unwrap()
        );
    }

    #[test]
    fn parses_the_vector_offer_into_the_same_typed_form() {
        let received: Element = VECTOR_OFFER_X.parse().unwrap();
        assert_eq!(DataForm::try_from(&received).unwrap(), vector_offer());
    }

    #[test]
    fn serializes_children_in_the_reference_order() {
        let field = Field::new("v", Some(FieldType::ListSingle))
            .with_label("L")
            .with_desc("D")
            .with_value("a")
            .with_option(FieldOption::new("a").with_label("A"))
            .required();
        assert_eq!(
            to_string(&Element::from(&field)),
            "<field xmlns='jabber:x:data' label='L' type='list-single' var='v'><desc>D</desc>\
             <value>a</value><option label='A'><value>a</value></option><required/></field>"
        );
        let form = DataForm {
            kind: FormKind::Result,
            title: Some("T".into()),
            instructions: vec!["I".into()],
            fields: vec![Field::untyped("a", [""])],
        };
        assert_eq!(
            to_string(&Element::from(&form)),
            "<x xmlns='jabber:x:data' type='result'><title>T</title><instructions>I</instructions>\
             <field var='a'><value/></field></x>"
        );
    }

    #[test]
    fn builders_set_types_and_values() {
        assert_eq!(Field::boolean("a", false).values, ["0"]);
        assert_eq!(
            Field::boolean("a", true).field_type,
            Some(FieldType::Boolean)
        );
        let f = Field::text_single("rekey_freq", "50");
        assert_eq!(
            (f.field_type, f.single_value()),
            (Some(FieldType::TextSingle), Some("50"))
        );
        assert_eq!(Field::untyped("x", ["1"]).field_type, None);
        assert!(Field::hidden("x", ["1"]).required().required);
        assert_eq!(FieldType::from_str("jid-multi"), Ok(FieldType::JidMulti));
        for t in [
            FieldType::Boolean,
            FieldType::Fixed,
            FieldType::Hidden,
            FieldType::JidMulti,
            FieldType::JidSingle,
            FieldType::ListMulti,
            FieldType::ListSingle,
            FieldType::TextMulti,
            FieldType::TextPrivate,
            FieldType::TextSingle,
        ] {
            assert_eq!(t.as_str().parse::<FieldType>(), Ok(t));
        }
        for k in [
            FormKind::Form,
            FormKind::Submit,
            FormKind::Result,
            FormKind::Cancel,
        ] {
            assert_eq!(k.as_str().parse::<FormKind>(), Ok(k));
        }
    }

    #[test]
    fn lenient_and_strict_form_content_agree_on_our_own_forms() {
        let el = Element::from(&vector_offer());
        assert_eq!(
            normalize_form_content(&el),
            try_normalize_form_content(&el, &[]).unwrap()
        );
    }

    // ---- property tests ----

    fn arb_text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just("&".to_string()),
                Just("<".to_string()),
                Just(">".to_string()),
                Just("\"".to_string()),
                Just("'".to_string()),
                Just(" ".to_string()),
                Just("\t".to_string()),
                Just("\n".to_string()),
                "\\PC{0,6}",
            ],
            0..4,
        )
        .prop_map(|v| v.concat())
    }

    fn arb_field_type() -> impl Strategy<Value = Option<FieldType>> {
        prop::option::of(prop::sample::select(vec![
            FieldType::Boolean,
            FieldType::Fixed,
            FieldType::Hidden,
            FieldType::JidMulti,
            FieldType::JidSingle,
            FieldType::ListMulti,
            FieldType::ListSingle,
            FieldType::TextMulti,
            FieldType::TextPrivate,
            FieldType::TextSingle,
        ]))
    }

    fn arb_field(kind: FormKind) -> impl Strategy<Value = Field> {
        (
            arb_field_type(),
            prop::option::of(arb_text()),
            prop::collection::vec(arb_text(), 0..4),
            prop::collection::vec((prop::option::of(arb_text()), arb_text()), 0..4),
            any::<bool>(),
            prop::option::of(arb_text()),
            any::<bool>(),
        )
            .prop_map(
                move |(field_type, label, mut values, options, required, desc, b)| {
                    let multi_ok =
                        field_type.map_or(kind != FormKind::Form, FieldType::is_multi_valued);
                    if !multi_ok {
                        values.truncate(1);
                    }
                    if field_type == Some(FieldType::Boolean) {
                        values = values
                            .iter()
                            .map(|_| if b { "true" } else { "0" }.to_string())
                            .collect();
                    }
                    let options = if field_type.is_some_and(FieldType::has_options) {
                        options
                            .into_iter()
                            .map(|(label, value)| FieldOption { label, value })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    Field {
                        var: None,
                        field_type,
                        label,
                        values,
                        options,
                        required,
                        desc,
                    }
                },
            )
    }

    fn arb_form() -> impl Strategy<Value = DataForm> {
        prop::sample::select(vec![
            FormKind::Form,
            FormKind::Submit,
            FormKind::Result,
            FormKind::Cancel,
        ])
        .prop_flat_map(|kind| {
            (
                Just(kind),
                prop::option::of(arb_text()),
                prop::collection::vec(arb_text(), 0..3),
                prop::collection::vec(arb_field(kind), 0..6),
            )
        })
        .prop_map(|(kind, title, instructions, mut fields)| {
            for (i, f) in fields.iter_mut().enumerate() {
                // Unique vars; fixed fields sometimes go without.
                if f.field_type != Some(FieldType::Fixed) || i % 2 == 0 {
                    f.var = Some(format!("var{i}&<\"'"));
                }
            }
            DataForm {
                kind,
                title,
                instructions,
                fields,
            }
        })
    }

    proptest! {
        #[test]
        fn forms_round_trip_through_xml(form in arb_form()) {
            let el = Element::from(&form);
            let xml = to_string(&el);
            let reparsed: Element = xml.parse().unwrap();
            prop_assert_eq!(DataForm::try_from(&reparsed).unwrap(), form);
            // NORM of what we send equals NORM of what the peer receives (AMB-50).
            prop_assert_eq!(
                try_normalize_form_content(&el, &[]).unwrap(),
                try_normalize_form_content(&reparsed, &[]).unwrap()
            );
        }

        #[test]
        fn form_parsing_never_panics(s in "[<>a-z/='\" ]{0,80}") {
            if let Ok(el) = format!("<x xmlns='jabber:x:data' type='form'>{s}</x>").parse::<Element>() {
                // Either a typed form or an error; both are fine, panics are not.
                match DataForm::try_from(&el) {
                    Ok(f) => prop_assert!(f.fields.len() <= MAX_FIELDS),
                    Err(e) => prop_assert!(!e.to_string().is_empty()),
                }
            }
        }
    }
}
