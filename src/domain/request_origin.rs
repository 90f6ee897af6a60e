//! Where the request being handled comes from: the client address (the TCP peer, or what a
//! trusted proxy forwarded) and the browser's `User-Agent`. The HTTP layer sets it for each
//! request (`http::limits::enforce`); audit events written while handling the request record it
//! (`client_ip`, `user_agent` in their detail), and the audit cap counts failures per address.
//! Work outside a request (the scheduler, sweeps, the CLI) has no origin.

use std::net::IpAddr;

use serde_json::Value;

/// The longest `User-Agent` kept in an audit event; the rest is cut off.
const MAX_USER_AGENT: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOrigin {
    pub source: IpAddr,
    pub user_agent: Option<String>,
}

impl RequestOrigin {
    /// An origin with the `User-Agent` cut to [`MAX_USER_AGENT`] bytes (at a character
    /// boundary) and control characters dropped.
    pub fn new(source: IpAddr, user_agent: Option<&str>) -> RequestOrigin {
        let user_agent = user_agent.map(|ua| {
            let mut kept = String::new();
            for c in ua.chars().filter(|c| !c.is_control()) {
                if kept.len() + c.len_utf8() > MAX_USER_AGENT {
                    break;
                }
                kept.push(c);
            }
            kept
        });
        RequestOrigin { source, user_agent }
    }
}

tokio::task_local! {
    /// The origin of the request being handled.
    pub static ORIGIN: RequestOrigin;
}

/// The address of the request being handled, if any.
pub fn source() -> Option<IpAddr> {
    ORIGIN.try_with(|o| o.source).ok()
}

/// Adds `client_ip` and `user_agent` to an audit event's detail (an object) when a request is
/// being handled and the detail does not already name them.
pub fn annotate(detail: &mut Value) {
    let Ok(origin) = ORIGIN.try_with(Clone::clone) else {
        return;
    };
    let Some(fields) = detail.as_object_mut() else {
        return;
    };
    fields
        .entry("client_ip")
        .or_insert_with(|| Value::String(origin.source.to_string()));
    if let Some(ua) = origin.user_agent {
        fields.entry("user_agent").or_insert(Value::String(ua));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn events_of_a_request_name_its_address_and_browser() {
        let origin = RequestOrigin::new("192.0.2.7".parse().unwrap(), Some("Mozilla/5.0\n(X)"));
        let detail = ORIGIN
            .scope(origin, async {
                let mut d = json!({"uuid": "555000000001"});
                annotate(&mut d);
                d
            })
            .await;
        assert_eq!(
            detail,
            json!({"uuid": "555000000001", "client_ip": "192.0.2.7", "user_agent": "Mozilla/5.0(X)"})
        );
        let mut outside = json!({});
        annotate(&mut outside);
        assert_eq!(outside, json!({}), "no request, no origin");
    }

    #[test]
    fn a_long_user_agent_is_cut_at_a_character_boundary() {
        let ua = "é".repeat(300);
        let o = RequestOrigin::new("::1".parse().unwrap(), Some(&ua));
        let kept = o.user_agent.unwrap();
        assert!(kept.len() <= MAX_USER_AGENT && kept.len() >= MAX_USER_AGENT - 1);
        assert!(kept.chars().all(|c| c == 'é'));
    }
}
