//! One order, start to end (RFC 8555 section 7): the account, the order,
//! a TLS-ALPN-01 validation per name, finalisation with a CSR, the
//! certificate chain. Every wait is bounded by the order's deadline and
//! ends early when the listener is gone.

use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use serde_json::{Value, json};

use super::cache::{Cache, key_pem};
use super::challenge;
use super::http::{Client, Problem, Reply, acme_error, protocol};
use super::jws::{AccountKey, b64};
use super::options::AcmeKeyType;
use crate::error::{AcmeErrorKind, Error, Result};

/// How often an order or authorization is polled when the CA gives no
/// `Retry-After`, and the longest a `Retry-After` is followed within an
/// order.
const POLL_FIRST: Duration = Duration::from_millis(500);
const POLL_MAX: Duration = Duration::from_secs(10);

/// What an order needs besides the CA and the account key.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub(crate) domains: &'a [String],
    pub(crate) contact: &'a [String],
    pub(crate) accept_terms: bool,
    /// The EAB key identifier and the MAC key's bytes.
    pub(crate) eab: Option<(&'a str, &'a [u8])>,
    pub(crate) key_type: AcmeKeyType,
    /// The ARI identifier of the certificate this order renews (RFC 9773
    /// section 5), sent where the CA offers renewal information.
    pub(crate) replaces: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Order {
    status: String,
    #[serde(default)]
    authorizations: Vec<String>,
    finalize: String,
    #[serde(default)]
    certificate: Option<String>,
    #[serde(default)]
    error: Option<Problem>,
}

#[derive(Debug, Deserialize)]
struct Authorization {
    status: String,
    identifier: Identifier,
    #[serde(default)]
    challenges: Vec<Challenge>,
}

#[derive(Debug, Deserialize)]
struct Identifier {
    value: String,
}

#[derive(Debug, Deserialize)]
struct Challenge {
    #[serde(rename = "type")]
    kind: String,
    url: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    error: Option<Problem>,
}

/// One order in progress.
pub(crate) struct Orderer<'a> {
    pub(crate) client: &'a mut Client,
    pub(crate) key: &'a AccountKey,
    pub(crate) cache: &'a Cache,
    pub(crate) deadline: Instant,
    /// Waits up to the given time; `false` if the listener is gone.
    pub(crate) pause: &'a dyn Fn(Duration) -> bool,
}

impl Orderer<'_> {
    /// Orders a certificate for the request's names: the certificate's
    /// key (PKCS#8 PEM) followed by the chain (PEM), as the cache keeps it.
    pub(crate) fn obtain(&mut self, request: &Request<'_>) -> Result<Vec<u8>> {
        let kid = self.account(request)?;
        let identifiers: Vec<Value> = request
            .domains
            .iter()
            .map(|d| json!({"type": "dns", "value": d}))
            .collect();
        let new_order = self.client.directory.new_order.clone();
        let mut payload = json!({"identifiers": identifiers});
        let replaces = request
            .replaces
            .as_ref()
            .filter(|_| self.client.directory.renewal_info.is_some());
        let reply = match replaces {
            Some(id) => {
                payload["replaces"] = json!(id);
                // A CA refuses `replaces` for a certificate already
                // replaced (an order finalised whose certificate was never
                // kept here), or from another account: the order is made
                // all the same, without it (as certmagic and lego do).
                self.post(&kid, &new_order, Some(&payload), "newOrder")
                    .or_else(|e| {
                        log::info!("acme: newOrder with `replaces` refused ({e}): again without");
                        payload["replaces"].take();
                        let plain = json!({"identifiers": payload["identifiers"].take()});
                        self.post(&kid, &new_order, Some(&plain), "newOrder")
                    })?
            }
            None => self.post(&kid, &new_order, Some(&payload), "newOrder")?,
        };
        let order_url = reply
            .location
            .clone()
            .ok_or_else(|| protocol("the CA's newOrder answer has no Location header".into()))?;
        let order: Order = reply.json("order")?;
        let mut validations = Validations {
            cache: self.cache,
            domains: Vec::new(),
        };
        for authz in &order.authorizations {
            self.validate(&kid, authz, &mut validations)?;
        }
        drop(validations);
        // "ready": every name validated. ("valid" before a CSR would be
        // an order finalised for a key this server does not have.)
        let order = self.wait_order(&kid, &order_url, &["ready"], "its validations")?;
        let (key, csr) = challenge::key_and_csr(request.domains, request.key_type)?;
        let finalize = Some(json!({"csr": b64(&csr)}));
        self.post(&kid, &order.finalize, finalize.as_ref(), "finalize")?;
        let done = self.wait_order(&kid, &order_url, &["valid"], "its certificate")?;
        self.download(&kid, &done, &key)
    }

    fn post(&mut self, kid: &str, url: &str, payload: Option<&Value>, what: &str) -> Result<Reply> {
        self.client.post(self.key, Some(kid), url, payload, what)
    }

    /// The account URL: the account is made, or found, for this key.
    fn account(&mut self, request: &Request<'_>) -> Result<String> {
        let dir = self.client.directory.clone();
        if let (Some(terms), false) = (&dir.meta.terms_of_service, request.accept_terms) {
            return Err(acme_error(
                AcmeErrorKind::TermsNotAccepted,
                format!(
                    "the CA's terms of service must be accepted: read {terms} and set \
                     AcmeOptions::accept_terms_of_service(true)"
                ),
                None,
                None,
            ));
        }
        if dir.meta.external_account_required && request.eab.is_none() {
            return Err(acme_error(
                AcmeErrorKind::ExternalAccount,
                "this CA requires External Account Binding (RFC 8555 section 7.3.4): set \
                 AcmeOptions::external_account_binding with the key id and MAC key it gave you"
                    .into(),
                None,
                None,
            ));
        }
        let mut payload = json!({"termsOfServiceAgreed": request.accept_terms});
        if !request.contact.is_empty() {
            let contact: Vec<String> = request
                .contact
                .iter()
                .map(|c| format!("mailto:{c}"))
                .collect();
            payload["contact"] = json!(contact);
        }
        if let Some((key_id, mac)) = request.eab {
            payload["externalAccountBinding"] =
                self.key
                    .external_account_binding(key_id, mac, &dir.new_account);
        }
        let reply = self.client.post(
            self.key,
            None,
            &dir.new_account,
            Some(&payload),
            "newAccount",
        )?;
        reply
            .location
            .ok_or_else(|| protocol("the CA's newAccount answer has no Location header".into()))
    }

    /// Answers one authorization's TLS-ALPN-01 challenge and waits until
    /// the CA has validated it.
    fn validate(&mut self, kid: &str, url: &str, under_way: &mut Validations<'_>) -> Result<()> {
        let authz: Authorization = self
            .post(kid, url, None, "authorization")?
            .json("authorization")?;
        if authz.status == "valid" {
            return Ok(());
        }
        let domain = authz.identifier.value.to_ascii_lowercase();
        let Some(challenge) = authz.challenges.iter().find(|c| c.kind == "tls-alpn-01") else {
            return Err(acme_error(
                AcmeErrorKind::Refused,
                format!(
                    "the CA offers no tls-alpn-01 challenge for {domain} (only {}): securenet \
                     answers TLS-ALPN-01 only",
                    authz
                        .challenges
                        .iter()
                        .map(|c| c.kind.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None,
                None,
            ));
        };
        if !under_way.cache_domain_ok(&domain) {
            return Err(protocol(format!(
                "the CA's authorization {url} is for {domain}, a name this server did not ask for"
            )));
        }
        let pem = challenge::certificate(&domain, &self.key.key_authorization(&challenge.token))?;
        self.cache.write_challenge(&domain, pem.as_bytes())?;
        under_way.domains.push(domain.clone());
        self.post(kid, &challenge.url, Some(&json!({})), "challenge")?;
        let mut wait = POLL_FIRST;
        loop {
            let reply = self.post(kid, url, None, "authorization")?;
            let authz: Authorization = reply.json("authorization")?;
            match authz.status.as_str() {
                "valid" => return Ok(()),
                "pending" | "processing" => {}
                status => {
                    let problem = authz
                        .challenges
                        .iter()
                        .find(|c| c.kind == "tls-alpn-01")
                        .and_then(|c| c.error.as_ref())
                        .map(Problem::text);
                    return Err(acme_error(
                        AcmeErrorKind::Validation,
                        format!(
                            "the CA could not validate {domain} (authorization {status}): port \
                             443 of {domain} must reach this listener, directly or through a TCP \
                             balancer that does not end TLS"
                        ),
                        problem,
                        None,
                    ));
                }
            }
            wait = self.pause_for(&reply, wait, &format!("the validation of {domain}"))?;
        }
    }

    /// Polls the order until its status is one of `want`.
    fn wait_order(&mut self, kid: &str, url: &str, want: &[&str], what: &str) -> Result<Order> {
        let mut wait = POLL_FIRST;
        loop {
            let reply = self.post(kid, url, None, "order")?;
            let order: Order = reply.json("order")?;
            if want.contains(&order.status.as_str()) {
                return Ok(order);
            }
            if order.status == "invalid" {
                return Err(acme_error(
                    AcmeErrorKind::Refused,
                    format!("the CA's order {url} failed while waiting for {what}"),
                    order.error.as_ref().map(Problem::text),
                    None,
                ));
            }
            if !matches!(order.status.as_str(), "pending" | "processing" | "ready") {
                return Err(protocol(format!(
                    "the CA's order {url} is {:?} while waiting for {what} (RFC 8555 section 7.1.6 \
                     has no such step)",
                    order.status
                )));
            }
            wait = self.pause_for(&reply, wait, &format!("the order's {what}"))?;
        }
    }

    /// Waits as the CA asked (`Retry-After`) or `wait`, within the
    /// deadline: the next wait, or an error once the deadline is passed
    /// or the listener is gone.
    fn pause_for(&self, reply: &Reply, wait: Duration, what: &str) -> Result<Duration> {
        let asked = reply
            .retry_after
            .and_then(|t| t.duration_since(SystemTime::now()).ok())
            .unwrap_or(wait)
            .min(POLL_MAX);
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(acme_error(
                AcmeErrorKind::Protocol,
                format!(
                    "the CA did not finish {what} within the order timeout: it is tried again \
                     later (raise AcmeOptions::order_timeout if the CA is slow)"
                ),
                None,
                None,
            ));
        }
        if !(self.pause)(asked.min(left)) {
            return Err(Error::ShuttingDown);
        }
        Ok((wait * 2).min(POLL_MAX))
    }

    /// The certificate chain of a valid order, after the key.
    fn download(&mut self, kid: &str, order: &Order, key: &[u8]) -> Result<Vec<u8>> {
        let url = order
            .certificate
            .as_deref()
            .ok_or_else(|| protocol("the CA's valid order has no certificate URL".into()))?;
        let reply = self.client.post_accepting(
            self.key,
            Some(kid),
            url,
            None,
            "certificate",
            "application/pem-certificate-chain",
        )?;
        let mut out = key_pem(key)?.into_bytes();
        out.extend_from_slice(&reply.body);
        Ok(out)
    }
}

/// The validations this order has under way: their challenge
/// certificates are removed from the cache when the order is done with
/// them (or fails).
struct Validations<'a> {
    cache: &'a Cache,
    domains: Vec<String>,
}

impl Validations<'_> {
    fn cache_domain_ok(&self, domain: &str) -> bool {
        self.cache.is_domain(domain)
    }
}

impl Drop for Validations<'_> {
    fn drop(&mut self) {
        for d in &self.domains {
            self.cache.remove_challenge(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8555_example_objects_parse() {
        // RFC 8555 section 7.1.3: an order.
        let order: Order = serde_json::from_str(
            r#"{
              "status": "valid",
              "expires": "2016-01-20T14:09:07.99Z",
              "identifiers": [
                { "type": "dns", "value": "www.example.org" },
                { "type": "dns", "value": "example.org" }
              ],
              "notBefore": "2016-01-01T00:00:00Z",
              "notAfter": "2016-01-08T00:00:00Z",
              "authorizations": [
                "https://example.com/acme/authz/PAniVnsZcis",
                "https://example.com/acme/authz/r4HqLzrSrpI"
              ],
              "finalize": "https://example.com/acme/order/TOlocE8rfgo/finalize",
              "certificate": "https://example.com/acme/cert/mAt3xBGaobw"
            }"#,
        )
        .expect("order");
        assert_eq!(order.status, "valid");
        assert_eq!(order.authorizations.len(), 2);
        assert_eq!(
            order.certificate.as_deref(),
            Some("https://example.com/acme/cert/mAt3xBGaobw")
        );
        // Section 7.1.4: an authorization.
        let authz: Authorization = serde_json::from_str(
            r#"{
              "status": "valid",
              "expires": "2015-03-01T14:09:07.99Z",
              "identifier": { "type": "dns", "value": "www.example.org" },
              "challenges": [
                {
                  "url": "https://example.com/acme/chall/prV_B7yEyA4",
                  "type": "http-01",
                  "status": "valid",
                  "token": "DGyRejmCefe7v4NfDGDKfA",
                  "validated": "2014-12-01T12:05:58.16Z"
                }
              ],
              "wildcard": false
            }"#,
        )
        .expect("authorization");
        assert_eq!(authz.identifier.value, "www.example.org");
        assert_eq!(authz.challenges[0].kind, "http-01");
        assert_eq!(authz.challenges[0].token, "DGyRejmCefe7v4NfDGDKfA");
        // A failed challenge carries its problem (section 8).
        let failed: Challenge = serde_json::from_str(
            r#"{"type": "tls-alpn-01", "url": "https://example.com/c", "status": "invalid",
                "token": "t", "error": {"type": "urn:ietf:params:acme:error:tls",
                "detail": "connection refused"}}"#,
        )
        .expect("challenge");
        assert_eq!(
            failed.error.map(|p| p.text()).as_deref(),
            Some("urn:ietf:params:acme:error:tls: connection refused")
        );
        // Unknown members, missing optional ones: still an order.
        let minimal: Order =
            serde_json::from_str(r#"{"status": "pending", "finalize": "f", "future": [1]}"#)
                .expect("minimal order");
        assert!(minimal.authorizations.is_empty() && minimal.certificate.is_none());
    }
}
