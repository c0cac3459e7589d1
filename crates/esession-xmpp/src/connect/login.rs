//! One SASL exchange over the XML stream (RFC 6120, 6.4), for a mechanism
//! chosen by `super::sasl`. The stream carries raw elements here, so any
//! mechanism name can be sent and the server's `<failure/>` text is kept
//! (tokio-xmpp's own login drops it and knows no SCRAM-SHA-512).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncBufRead, AsyncWrite};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::minidom::rxml::xml_ncname;
use tokio_xmpp::parsers::ns;
use tokio_xmpp::xmlstream::{ReadError, XmlStream};
use zeroize::Zeroizing;

use super::sasl::{Binding, Candidate, Failure};
use super::scram::{Gs2, ScramClient, ScramError, new_nonce};

/// How one attempt ended.
#[derive(Debug)]
pub(crate) enum Exchange {
    /// `<success/>` (and, for SCRAM, the server proved it knows the password).
    Success,
    /// The mechanism failed; the stream is still usable unless the server
    /// closes it.
    Failed(Failure),
    /// The stream broke.
    StreamLost(tokio_xmpp::Error),
}

/// What the mechanism needs.
pub(crate) struct Credentials<'a> {
    pub(crate) username: &'a str,
    pub(crate) password: &'a str,
    /// Channel binding data by type, as computed for this connection.
    pub(crate) bindings: &'a [(super::scram::CbType, Vec<u8>)],
}

enum Mechanism {
    Scram(ScramClient),
    Plain,
}

fn sasl(name: &str) -> tokio_xmpp::minidom::ElementBuilder {
    Element::builder(name, ns::SASL)
}

fn with_data(builder: tokio_xmpp::minidom::ElementBuilder, data: &[u8]) -> Element {
    // RFC 6120, 6.4.2: an empty initial response is "=".
    let text = if data.is_empty() {
        "=".to_owned()
    } else {
        BASE64.encode(data)
    };
    builder.append(text).build()
}

fn data_of(element: &Element) -> Result<Vec<u8>, ScramError> {
    let text = element.text();
    let text = text.trim();
    if text.is_empty() || text == "=" {
        return Ok(Vec::new());
    }
    BASE64
        .decode(text)
        .map_err(|_| ScramError::Malformed("the server's SASL data is not base64"))
}

/// The defined condition and text of a `<failure/>`.
fn failure_of(element: &Element) -> Failure {
    let condition = element
        .children()
        .find(|c| c.ns() == ns::SASL && c.name() != "text")
        .map_or_else(|| "undefined".to_owned(), |c| c.name().to_owned());
    let text = element
        .get_child("text", ns::SASL)
        .map(Element::text)
        .filter(|t| !t.is_empty());
    Failure::Server { condition, text }
}

enum Read {
    Element(Element),
    Lost(tokio_xmpp::Error),
}

async fn read<Io: AsyncBufRead + AsyncWrite + Unpin>(stream: &mut XmlStream<Io, Element>) -> Read {
    loop {
        match stream.next().await {
            Some(Ok(element)) if element.name() == "error" && element.ns() == ns::STREAM => {
                let what = element
                    .children()
                    .find(|c| c.name() != "text")
                    .map_or_else(|| "undefined-condition".to_owned(), |c| c.name().to_owned());
                return Read::Lost(
                    std::io::Error::other(format!("the server ended the stream ({what})")).into(),
                );
            }
            Some(Ok(element)) => return Read::Element(element),
            Some(Err(ReadError::SoftTimeout)) => {}
            Some(Err(ReadError::HardError(e))) => return Read::Lost(e.into()),
            Some(Err(ReadError::ParseError(e))) => {
                return Read::Lost(std::io::Error::new(std::io::ErrorKind::InvalidData, e).into());
            }
            Some(Err(ReadError::StreamFooterReceived)) | None => {
                return Read::Lost(tokio_xmpp::Error::Disconnected);
            }
        }
    }
}

async fn send<Io: AsyncBufRead + AsyncWrite + Unpin>(
    stream: &mut XmlStream<Io, Element>,
    element: &Element,
) -> Result<(), tokio_xmpp::Error> {
    stream.send(element).await.map_err(tokio_xmpp::Error::from)
}

/// Gives up on the exchange (`<abort/>`) after our side refused the
/// server's data, and waits for the server's `<failure/>`.
async fn abort<Io: AsyncBufRead + AsyncWrite + Unpin>(
    stream: &mut XmlStream<Io, Element>,
    error: ScramError,
) -> Exchange {
    if let Err(e) = send(stream, &sasl("abort").build()).await {
        return Exchange::StreamLost(e);
    }
    loop {
        match read(stream).await {
            Read::Element(e) if e.is("failure", ns::SASL) || e.is("success", ns::SASL) => {
                return Exchange::Failed(Failure::Scram(error));
            }
            Read::Element(_) => {}
            Read::Lost(e) => return Exchange::StreamLost(e),
        }
    }
}

/// Runs `candidate` on `stream`.
pub(crate) async fn authenticate<Io: AsyncBufRead + AsyncWrite + Unpin>(
    stream: &mut XmlStream<Io, Element>,
    candidate: &Candidate,
    credentials: &Credentials<'_>,
) -> Exchange {
    let (mut mechanism, initial) = match candidate {
        Candidate::Plain => {
            let initial = Zeroizing::new(
                format!("\0{}\0{}", credentials.username, credentials.password).into_bytes(),
            );
            (Mechanism::Plain, initial)
        }
        Candidate::Scram(hash, binding) => {
            let gs2 = match binding {
                Binding::NotSupported => Gs2::NotSupported,
                Binding::ServerLacksIt => Gs2::ServerLacksIt,
                Binding::Bound(cb) => {
                    let Some((_, data)) = credentials.bindings.iter().find(|(t, _)| t == cb) else {
                        // The plan only binds to computed types; never claim another.
                        return Exchange::Failed(Failure::Scram(ScramError::Malformed(
                            "no channel binding data",
                        )));
                    };
                    Gs2::Bound(*cb, data.clone())
                }
            };
            let nonce = match new_nonce() {
                Ok(nonce) => nonce,
                Err(e) => {
                    return Exchange::StreamLost(std::io::Error::other(e.to_string()).into());
                }
            };
            match ScramClient::new(
                *hash,
                credentials.username,
                credentials.password,
                gs2,
                nonce,
            ) {
                Ok(scram) => {
                    let first = Zeroizing::new(scram.client_first());
                    (Mechanism::Scram(scram), first)
                }
                Err(e) => return Exchange::Failed(Failure::Scram(e)),
            }
        }
    };
    let auth = with_data(
        sasl("auth").attr(xml_ncname!("mechanism").to_owned(), candidate.mechanism()),
        &initial,
    );
    if let Err(e) = send(stream, &auth).await {
        return Exchange::StreamLost(e);
    }
    loop {
        let element = match read(stream).await {
            Read::Element(element) => element,
            Read::Lost(e) => return Exchange::StreamLost(e),
        };
        if element.is("failure", ns::SASL) {
            return Exchange::Failed(failure_of(&element));
        }
        let is_challenge = element.is("challenge", ns::SASL);
        let is_success = element.is("success", ns::SASL);
        if !is_challenge && !is_success {
            return Exchange::StreamLost(
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("unexpected <{}/> during SASL", element.name()),
                )
                .into(),
            );
        }
        let data = match data_of(&element) {
            Ok(data) => data,
            Err(e) if is_challenge => return abort(stream, e).await,
            // Success with undecodable data: fine for PLAIN, no proof for SCRAM.
            Err(_) => {
                return match mechanism {
                    Mechanism::Plain => Exchange::Success,
                    Mechanism::Scram(_) => {
                        Exchange::Failed(Failure::Scram(ScramError::NoServerSignature))
                    }
                };
            }
        };
        let Mechanism::Scram(scram) = &mut mechanism else {
            // PLAIN: no challenges; success ends it.
            if is_success {
                return Exchange::Success;
            }
            return abort(stream, ScramError::Malformed("a challenge to PLAIN")).await;
        };
        if is_success {
            if scram.server_verified() {
                return Exchange::Success;
            }
            // The server-final-message comes with the success (RFC 6120,
            // 6.4.6). Without a valid one the server has not proven that it
            // knows the password (and considers us logged in: the caller
            // must drop the stream).
            return match scram.verify_server_final(&data) {
                Ok(()) => Exchange::Success,
                Err(ScramError::ServerSignatureMismatch) => {
                    Exchange::Failed(Failure::Scram(ScramError::ServerSignatureMismatch))
                }
                Err(_) => Exchange::Failed(Failure::Scram(ScramError::NoServerSignature)),
            };
        }
        let reply = if scram.expects_server_first() {
            match scram.client_final(&data) {
                Ok(last) => last,
                Err(e) => return abort(stream, e).await,
            }
        } else if !scram.server_verified() {
            // The server-final-message sent as a challenge: verify it and
            // answer with an empty response (RFC 6120, 6.4.6).
            match scram.verify_server_final(&data) {
                Ok(()) => Vec::new(),
                Err(e) => return abort(stream, e).await,
            }
        } else {
            return abort(
                stream,
                ScramError::Malformed("a challenge after the server's proof"),
            )
            .await;
        };
        let response = if reply.is_empty() {
            sasl("response").build()
        } else {
            sasl("response").append(BASE64.encode(&reply)).build()
        };
        if let Err(e) = send(stream, &response).await {
            return Exchange::StreamLost(e);
        }
    }
}
