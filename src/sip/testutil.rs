//! Test helpers shared by the unit tests of the SIP modules.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rsip::{Header, Method, Request, Response};

use super::msg::ResponseBase;

/// The PBX / trunk sending us requests.
pub const PBX: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 10)),
    5060,
);

/// A fixed base instant; tests only ever use offsets from it.
pub fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

/// Milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A request as a PBX would send it to our contact `textback`.
pub fn request(method: Method, branch: &str, call_id: &str, cseq: u32) -> Request {
    let text = format!(
        "{method} sip:textback@192.0.2.20:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Caller\" <sip:+15551234567@pbx.example.com>;tag=from-{call_id}\r\n\
         To: <sip:textback@192.0.2.20>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n\
         Content-Length: 0\r\n\r\n"
    );
    Request::try_from(text.as_str()).expect("test request parses")
}

/// Replaces every header of the same kind as `h` (appending it at the end).
pub fn set_header(req: &mut Request, h: Header) {
    req.headers.unique_push(h);
}

/// Same as [`set_header`] for a response.
pub fn set_header_resp(resp: &mut Response, h: Header) {
    resp.headers.unique_push(h);
}

/// Removes all headers for which `f` is true.
pub fn remove_headers(req: &mut Request, f: impl Fn(&Header) -> bool) {
    req.headers.retain(|h| !f(h));
}

/// A response to `req` as the far end would send it.
pub fn response_to(req: &Request, code: u16) -> Response {
    ResponseBase::new(&req.headers, PBX, false)
        .expect("test request has a Via")
        .response(code)
}

/// The value of the first header named `name` (case-insensitive) in a rendered message.
pub fn header_value(text: &str, name: &str) -> Option<String> {
    text.split("\r\n").find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}
