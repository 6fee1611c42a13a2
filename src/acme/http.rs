//! The ACME client's HTTP: the CA's directory, nonces (one per request,
//! a `badNonce` answer retried with the fresh one, RFC 8555 section 6.5),
//! JWS-signed POSTs, problem documents (section 6.7) turned into typed
//! errors, and `Retry-After`. ureq does the HTTP, on securenet's rustls
//! and crypto provider.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::jws::AccountKey;
use crate::error::{AcmeErrorKind, Error, Result};

/// The largest answer read from the CA: a certificate chain or a JSON
/// object is a few KiB.
const MAX_BODY: u64 = 1 << 20;

/// How many `badNonce` answers in a row one request survives.
const NONCE_RETRIES: usize = 10;

/// The longest any one HTTP request may be allowed to take, whatever
/// `request_timeout` says (so that a deadline never overflows).
const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(3600);

/// The CA's directory (RFC 8555 section 7.1.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Directory {
    pub(crate) new_nonce: String,
    pub(crate) new_account: String,
    pub(crate) new_order: String,
    /// ACME Renewal Information (RFC 9773), where the CA offers it.
    #[serde(default)]
    pub(crate) renewal_info: Option<String>,
    #[serde(default)]
    pub(crate) meta: Meta,
}

/// The directory's `meta` object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Meta {
    #[serde(default)]
    pub(crate) terms_of_service: Option<String>,
    #[serde(default)]
    pub(crate) external_account_required: bool,
}

/// An answer from the CA.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) location: Option<String>,
    pub(crate) retry_after: Option<SystemTime>,
    pub(crate) body: Vec<u8>,
    url: String,
}

impl Reply {
    /// The body as `T`, or a protocol error naming `what`.
    pub(crate) fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            protocol(format!(
                "the CA's {what} from {} is not the JSON RFC 8555 describes ({e})",
                self.url
            ))
        })
    }
}

pub(crate) fn protocol(message: String) -> Error {
    acme_error(AcmeErrorKind::Protocol, message, None, None)
}

pub(crate) fn acme_error(
    kind: AcmeErrorKind,
    message: String,
    problem: Option<String>,
    retry_after: Option<SystemTime>,
) -> Error {
    Error::Acme {
        kind,
        message,
        problem,
        retry_after,
    }
}

/// A connection to one CA.
pub(crate) struct Client {
    agent: ureq::Agent,
    pub(crate) directory: Directory,
    directory_url: String,
    nonce: Option<String>,
    /// The bound on each request.
    timeout: Duration,
    /// The end of the order under way: no request runs past it.
    pub(crate) deadline: Option<Instant>,
}

impl Client {
    /// Reads the CA's directory at `url`, trusting `roots` (DER) for the
    /// CA's HTTPS, or Mozilla's.
    /// The directory GET ends by `deadline` if there is one (an order's).
    pub(crate) fn connect(
        url: &str,
        roots: Option<&[Vec<u8>]>,
        timeout: Duration,
        deadline: Option<Instant>,
    ) -> Result<Client> {
        use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
        let roots = match roots {
            Some(ders) => RootCerts::Specific(Arc::new(
                ders.iter()
                    .map(|d| Certificate::from_der(d).to_owned())
                    .collect(),
            )),
            None => RootCerts::WebPki,
        };
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(roots)
            .unversioned_rustls_crypto_provider(Arc::new(crate::crypto::default_provider()))
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .https_only(true)
            .max_redirects(0)
            .user_agent(concat!("securenet/", env!("CARGO_PKG_VERSION")))
            .build();
        let mut client = Client {
            agent: ureq::Agent::new_with_config(config),
            directory: Directory {
                new_nonce: String::new(),
                new_account: String::new(),
                new_order: String::new(),
                renewal_info: None,
                meta: Meta::default(),
            },
            directory_url: url.to_owned(),
            nonce: None,
            timeout: timeout.min(MAX_REQUEST_TIMEOUT),
            deadline,
        };
        let reply = client.get(url, "directory")?;
        client.directory = reply.json("directory")?;
        client.deadline = None;
        Ok(client)
    }

    /// The time the next request may take: the request timeout, or what
    /// is left of the order's; an error once the order's is over.
    fn time_left(&self, what: &str) -> Result<Duration> {
        let Some(deadline) = self.deadline else {
            return Ok(self.timeout);
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(acme_error(
                AcmeErrorKind::Protocol,
                format!(
                    "the order ran out of its time before {what}: it is tried again later \
                     (raise AcmeOptions::order_timeout if the CA is slow)"
                ),
                None,
                None,
            ));
        }
        Ok(left.min(self.timeout))
    }

    /// An unauthenticated GET (the directory, renewal information).
    pub(crate) fn get(&mut self, url: &str, what: &str) -> Result<Reply> {
        let timeout = self.time_left(what)?;
        let response = self
            .agent
            .get(url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .call()
            .map_err(|e| unreachable(url, what, e))?;
        self.read(response, url, what)
    }

    fn fresh_nonce(&mut self) -> Result<String> {
        if let Some(n) = self.nonce.take() {
            return Ok(n);
        }
        let url = self.directory.new_nonce.clone();
        let timeout = self.time_left("newNonce")?;
        let response = self
            .agent
            .head(&url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .call()
            .map_err(|e| unreachable(&url, "newNonce", e))?;
        let reply = self.read(response, &url, "newNonce")?;
        let _ = reply;
        self.nonce.take().ok_or_else(|| {
            protocol(format!(
                "the CA's newNonce ({url}) answered without a Replay-Nonce header"
            ))
        })
    }

    /// A JWS-signed POST of `payload` (`None`: POST-as-GET) to `url`,
    /// signed by `key` as the account `kid` (or with its JWK, for
    /// newAccount). `badNonce` answers are retried with the nonce they
    /// carry.
    pub(crate) fn post(
        &mut self,
        key: &AccountKey,
        kid: Option<&str>,
        url: &str,
        payload: Option<&Value>,
        what: &str,
    ) -> Result<Reply> {
        self.post_accepting(key, kid, url, payload, what, "application/json")
    }

    /// As [`post`](Self::post), asking for `accept` (a certificate chain).
    pub(crate) fn post_accepting(
        &mut self,
        key: &AccountKey,
        kid: Option<&str>,
        url: &str,
        payload: Option<&Value>,
        what: &str,
        accept: &str,
    ) -> Result<Reply> {
        let mut tries = 0;
        loop {
            tries += 1;
            let nonce = self.fresh_nonce()?;
            let body = key.jws(kid, &nonce, url, payload)?;
            let timeout = self.time_left(what)?;
            let response = self
                .agent
                .post(url)
                .config()
                .timeout_global(Some(timeout))
                .build()
                .header("Content-Type", "application/jose+json")
                .header("Accept", accept)
                .send(&body[..])
                .map_err(|e| unreachable(url, what, e))?;
            match self.read(response, url, what) {
                Err(Error::Acme {
                    problem: Some(p), ..
                }) if p.starts_with("urn:ietf:params:acme:error:badNonce")
                    && tries < NONCE_RETRIES =>
                {
                    log::debug!("acme: {what}: the CA refused the nonce; again with a fresh one");
                    continue;
                }
                other => return other,
            }
        }
    }

    /// The answer's headers and body; a 4xx or 5xx as a typed error from
    /// its problem document.
    fn read(
        &mut self,
        mut response: ureq::http::Response<ureq::Body>,
        url: &str,
        what: &str,
    ) -> Result<Reply> {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if let Some(nonce) = header("Replay-Nonce") {
            self.nonce = Some(nonce);
        }
        let location = header("Location");
        let retry_after =
            header("Retry-After").and_then(|v| parse_retry_after(&v, SystemTime::now()));
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| unreachable(url, what, e))?;
        if status >= 400 {
            return Err(problem_error(
                status,
                &body,
                url,
                what,
                retry_after,
                &self.directory_url,
            ));
        }
        Ok(Reply {
            location,
            retry_after,
            body,
            url: url.to_owned(),
        })
    }
}

/// A request that got no answer.
fn unreachable(url: &str, what: &str, e: ureq::Error) -> Error {
    acme_error(
        AcmeErrorKind::Unreachable,
        format!(
            "cannot reach the CA's {what} at {url} ({e}): check the directory URL, the network \
             and, for a CA with its own root, AcmeOptions::ca_certificates"
        ),
        None,
        None,
    )
}

/// A problem document (RFC 7807) as the CA sent it.
#[derive(Debug, Deserialize)]
pub(crate) struct Problem {
    #[serde(rename = "type", default)]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) detail: String,
}

impl Problem {
    pub(crate) fn text(&self) -> String {
        format!("{}: {}", self.kind, self.detail)
    }
}

/// The typed error for an answer with status `status` and body `body`.
fn problem_error(
    status: u16,
    body: &[u8],
    url: &str,
    what: &str,
    retry_after: Option<SystemTime>,
    directory: &str,
) -> Error {
    let Ok(problem) = serde_json::from_slice::<Problem>(body) else {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        let kind = if status >= 500 {
            AcmeErrorKind::Unreachable
        } else {
            AcmeErrorKind::Protocol
        };
        return acme_error(
            kind,
            format!(
                "the CA answered {what} ({url}) with status {status} and no problem document: {text}"
            ),
            None,
            retry_after,
        );
    };
    let short = problem
        .kind
        .strip_prefix("urn:ietf:params:acme:error:")
        .unwrap_or(&problem.kind);
    let (kind, advice) = match short {
        "rateLimited" => (
            AcmeErrorKind::RateLimited,
            "the CA's rate limit: securenet asks again after the time it gave".to_owned(),
        ),
        "userActionRequired" | "agreementRequired" => (
            AcmeErrorKind::TermsNotAccepted,
            format!(
                "the CA wants its (new) terms accepted: read them at {directory} and set \
                 AcmeOptions::accept_terms_of_service(true)"
            ),
        ),
        "externalAccountRequired" => (
            AcmeErrorKind::ExternalAccount,
            "this CA requires External Account Binding: set \
             AcmeOptions::external_account_binding with the key id and MAC key it gave you"
                .to_owned(),
        ),
        "unauthorized" if what == "newAccount" => (
            AcmeErrorKind::ExternalAccount,
            "the CA refused the account (often a wrong External Account Binding key id or MAC \
             key)"
                .to_owned(),
        ),
        "alreadyReplaced" => (
            AcmeErrorKind::Refused,
            "the certificate named in `replaces` was already replaced by another order".to_owned(),
        ),
        "connection" | "tls" | "incorrectResponse" | "unauthorized" | "dns" | "caa"
            if matches!(what, "authorization" | "challenge") =>
        {
            (
                AcmeErrorKind::Validation,
                "the CA could not validate the name: port 443 of the name must reach this \
                 listener without a TLS-terminating proxy in between"
                    .to_owned(),
            )
        }
        _ => (
            AcmeErrorKind::Refused,
            "see the CA's problem document".to_owned(),
        ),
    };
    acme_error(
        kind,
        format!("the CA refused {what} ({url}, status {status}): {advice}"),
        Some(problem.text()),
        retry_after,
    )
}

/// `Retry-After`: seconds, or an HTTP date (RFC 9110 section 10.2.3).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<SystemTime> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        // Bounded: a CA's answer never overflows the clock.
        return now.checked_add(Duration::from_secs(secs.min(366 * 86_400)));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value, &format)
        .ok()?
        .assume_utc();
    Some(SystemTime::from(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_as_seconds_or_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(
            parse_retry_after("120", now),
            Some(now + Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777))
        );
        assert!(parse_retry_after("soon", now).is_none());
        assert!(parse_retry_after("99999999999999999999999", now).is_none());
        assert!(parse_retry_after(&u64::MAX.to_string(), now).is_some());
    }

    #[test]
    fn problem_documents_become_typed_errors() {
        let kind = |status, body: &str, what| match problem_error(
            status,
            body.as_bytes(),
            "u",
            what,
            None,
            "d",
        ) {
            Error::Acme { kind, .. } => kind,
            other => panic!("{other:?}"),
        };
        let doc = |t: &str| format!(r#"{{"type":"urn:ietf:params:acme:error:{t}","detail":"x"}}"#);
        use AcmeErrorKind::*;
        // (status, problem type, request, kind)
        let documents = [
            (429, "rateLimited", "newOrder", RateLimited),
            (403, "userActionRequired", "newAccount", TermsNotAccepted),
            (
                403,
                "externalAccountRequired",
                "newAccount",
                ExternalAccount,
            ),
            (403, "unauthorized", "newAccount", ExternalAccount),
            (403, "unauthorized", "authorization", Validation),
            (403, "unauthorized", "newOrder", Refused),
            (409, "alreadyReplaced", "newOrder", Refused),
            (400, "badCSR", "finalize", Refused),
        ];
        for (status, problem, what, want) in documents {
            assert_eq!(
                kind(status, &doc(problem), what),
                want,
                "{problem} to {what}"
            );
        }
        // Answers without a problem document.
        assert_eq!(
            kind(502, "<html>bad gateway</html>", "newOrder"),
            Unreachable
        );
        assert_eq!(kind(400, "not json", "newOrder"), Protocol);
        let e = problem_error(400, doc("badCSR").as_bytes(), "u", "finalize", None, "d");
        assert!(e.to_string().contains("badCSR: x"), "{e}");
    }

    #[test]
    fn the_rfc8555_example_directory_parses() {
        // RFC 8555 section 7.1.1.
        let d: Directory = serde_json::from_str(
            r#"{
              "newNonce": "https://example.com/acme/new-nonce",
              "newAccount": "https://example.com/acme/new-account",
              "newOrder": "https://example.com/acme/new-order",
              "newAuthz": "https://example.com/acme/new-authz",
              "revokeCert": "https://example.com/acme/revoke-cert",
              "keyChange": "https://example.com/acme/key-change",
              "meta": {
                "termsOfService": "https://example.com/acme/terms/2017-5-30",
                "website": "https://www.example.com/",
                "caaIdentities": ["example.com"],
                "externalAccountRequired": false
              }
            }"#,
        )
        .expect("directory");
        assert_eq!(d.new_order, "https://example.com/acme/new-order");
        assert_eq!(
            d.meta.terms_of_service.as_deref(),
            Some("https://example.com/acme/terms/2017-5-30")
        );
        assert!(!d.meta.external_account_required);
    }

    #[test]
    fn a_directory_parses_with_or_without_its_options() {
        let d: Directory = serde_json::from_str(
            r#"{"newNonce":"n","newAccount":"a","newOrder":"o","revokeCert":"r","keyChange":"k",
                "meta":{"termsOfService":"https://ca/terms","externalAccountRequired":true}}"#,
        )
        .expect("directory");
        assert_eq!(d.meta.terms_of_service.as_deref(), Some("https://ca/terms"));
        assert!(d.meta.external_account_required && d.renewal_info.is_none());
        let d: Directory = serde_json::from_str(
            r#"{"newNonce":"n","newAccount":"a","newOrder":"o","renewalInfo":"ri"}"#,
        )
        .expect("directory");
        assert_eq!(d.renewal_info.as_deref(), Some("ri"));
    }
}
