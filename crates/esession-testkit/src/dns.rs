//! A tiny authoritative DNS responder on a loopback UDP port, for tests that
//! must resolve names without touching the system's resolver: ejabberd finds
//! other servers only through DNS (SRV `_xmpp-server._tcp`), and the client's
//! own SRV lookup and its "domain does not exist" handling are tested the
//! same way ([`esession_xmpp::ConnectOptions::dns_server`]).
//!
//! It answers SRV and A records it was given, "no such record" (NOERROR,
//! empty) for other types of a known name and NXDOMAIN for every other name.
//! Messages are parsed and built with `hickory-proto` (the DNS library the
//! client's resolver uses), so no wire format is written here. A responder
//! made with [`DnsResponder::silent`] never answers (DNS timeouts).

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// Seconds a test answer may be cached.
const TTL: u32 = 5;

#[derive(Default)]
struct Zone {
    records: Vec<Record>,
    /// Every query seen, as `name type` (for diagnostics).
    queries: Vec<String>,
}

/// A running responder; stopped on drop.
pub struct DnsResponder {
    address: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl core::fmt::Debug for DnsResponder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DnsResponder")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

fn name(text: &str) -> Name {
    let fqdn = if text.ends_with('.') {
        text.to_owned()
    } else {
        format!("{text}.")
    };
    Name::from_ascii(&fqdn).unwrap_or_else(|e| panic!("bad DNS name {text}: {e}"))
}

impl DnsResponder {
    /// A responder with no records yet, on 127.0.0.1 and a free port.
    pub fn start() -> Self {
        Self::spawn(true)
    }

    /// A "DNS server" that receives queries and never answers.
    pub fn silent() -> Self {
        Self::spawn(false)
    }

    fn spawn(answer: bool) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("cannot bind a loopback UDP port");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("UDP read timeout");
        let address = socket.local_addr().expect("UDP local address");
        let zone = Arc::new(Mutex::new(Zone::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (zone, stop) = (zone.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = socket.recv_from(&mut buffer) else {
                        continue;
                    };
                    let Ok(query) = Message::from_vec(&buffer[..n]) else {
                        continue;
                    };
                    let reply = {
                        let mut zone = zone.lock().unwrap_or_else(|p| p.into_inner());
                        respond(&mut zone, &query)
                    };
                    if answer && let Ok(bytes) = reply.to_vec() {
                        let _ = socket.send_to(&bytes, from);
                    }
                }
            })
        };
        Self {
            address,
            zone,
            stop,
            thread: Some(thread),
        }
    }

    /// Where to send queries (UDP).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Adds an SRV record `service` (e.g. `_xmpp-server._tcp.a.test`) →
    /// `target:port`, priority 0, weight 0. `target` `.` means "no service".
    pub fn add_srv(&self, service: &str, target: &str, port: u16) {
        let srv = SRV::new(0, 0, port, name(target));
        self.add(Record::from_rdata(name(service), TTL, RData::SRV(srv)));
    }

    /// Adds an A record.
    pub fn add_a(&self, host: &str, ip: Ipv4Addr) {
        self.add(Record::from_rdata(name(host), TTL, RData::A(A(ip))));
    }

    /// Adds a TXT record (makes a name exist without an address or SRV).
    pub fn add_txt(&self, host: &str, text: &str) {
        let txt = TXT::new(vec![text.to_owned()]);
        self.add(Record::from_rdata(name(host), TTL, RData::TXT(txt)));
    }

    fn add(&self, record: Record) {
        self.zone
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .records
            .push(record);
    }

    /// The queries received so far, as `name type`.
    pub fn queries(&self) -> Vec<String> {
        self.zone
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .queries
            .clone()
    }
}

fn respond(zone: &mut Zone, query: &Message) -> Message {
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.message_type = MessageType::Response;
    reply.metadata.authoritative = true;
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    let mut known_name = true;
    for q in &query.queries {
        let asked = q.name().to_lowercase();
        zone.queries.push(format!("{asked} {}", q.query_type()));
        let same_name: Vec<&Record> = zone
            .records
            .iter()
            .filter(|r| r.name.to_lowercase() == asked)
            .collect();
        known_name &= !same_name.is_empty();
        for record in same_name {
            if q.query_type() == RecordType::ANY || record.record_type() == q.query_type() {
                reply.add_answer(record.clone());
            }
        }
        reply.add_query(q.clone());
    }
    if !known_name {
        reply.metadata.response_code = ResponseCode::NXDomain;
    }
    reply
}

impl Drop for DnsResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
