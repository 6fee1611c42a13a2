//! The certificate verification matrix: every kind of good and bad
//! certificate, made with rcgen at test time, checked over a real loopback
//! handshake. Each bad one must be rejected with its own error kind and
//! message, none silently accepted, the good ones accepted. Prints
//! `N cases, N as expected`.

mod common;

use common::{Ca, Leaf, client, context_with, handshake_with, self_signed};
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, KeyPair,
    NameConstraints, SanType,
};
use securenet::{
    BindOptions, CertificateProblem, ChainPosition, ConnectOptions, Error, SecurityContext,
};

/// Which side must see the failure.
#[derive(Clone, Copy)]
enum Side {
    Client,
    Server,
}

enum Expect {
    Accept,
    /// Rejected on `Side` with a certificate error whose problem matches and
    /// whose message contains the text.
    Reject(Side, fn(&CertificateProblem) -> bool, &'static str),
}

struct Case {
    name: &'static str,
    server: SecurityContext,
    bind: BindOptions,
    client: ConnectOptions,
    host: &'static str,
    expect: Expect,
}

impl Case {
    fn new(name: &'static str, server: SecurityContext, client: ConnectOptions) -> Case {
        Case {
            name,
            server,
            bind: BindOptions::new(),
            client,
            host: "localhost",
            expect: Expect::Accept,
        }
    }

    fn host(mut self, host: &'static str) -> Case {
        self.host = host;
        self
    }

    fn bind(mut self, bind: BindOptions) -> Case {
        self.bind = bind;
        self
    }

    fn reject(
        mut self,
        side: Side,
        problem: fn(&CertificateProblem) -> bool,
        message: &'static str,
    ) -> Case {
        self.expect = Expect::Reject(side, problem, message);
        self
    }

    /// Runs the handshake; `Ok(what happened)` when it went as expected.
    fn run(self) -> Result<String, String> {
        let (c, s) = handshake_with(&self.server, self.bind, self.client, self.host);
        match self.expect {
            Expect::Accept => match (c, s) {
                (Ok(stream), Ok(())) => Ok(format!(
                    "accepted, {} certificate(s) from the server",
                    stream.peer_certificate_chain().len()
                )),
                (c, s) => Err(format!(
                    "expected success; client: {:?}, server: {:?}",
                    c.err(),
                    s.err()
                )),
            },
            Expect::Reject(side, want, text) => {
                let err: Error = match (side, c, s) {
                    (Side::Client, Err(e), _) | (Side::Server, _, Err(e)) => e,
                    _ => return Err("SILENTLY ACCEPTED".into()),
                };
                let message = err.to_string();
                match err.certificate_problem() {
                    Some(p)
                        if want(p)
                            && message.contains(text)
                            && err.io_kind() == std::io::ErrorKind::InvalidData =>
                    {
                        Ok(message)
                    }
                    _ => Err(format!("wrong error: {err:?} ({message})")),
                }
            }
        }
    }
}

fn trusting(ca: &Ca) -> ConnectOptions {
    client(ca.trust())
}

fn named(server_name: &str, ca: &Ca) -> ConnectOptions {
    trusting(ca).server_name(server_name)
}

#[test]
fn verify_matrix() {
    use CertificateProblem as P;
    let ca = Ca::new("matrix CA");
    let other = Ca::new("untrusted root");
    let root = Ca::new("matrix root");
    let intermediate = root.intermediate("matrix intermediate");
    let (leaf, leaf_key) = intermediate.leaf(&["localhost"], Leaf::Good);
    let (other_leaf, other_key) = other.leaf(&["localhost"], Leaf::Good);
    let (self_cert, self_key) = self_signed(&["localhost"]);
    let (revoked_cert, revoked_key) =
        ca.leaf_with_serial("localhost", 4242, ExtendedKeyUsagePurpose::ServerAuth);
    let mut with_crl = ca.trust();
    with_crl
        .set_crls_bytes(ca.crl(&[4242]).as_bytes())
        .expect("crl");
    let good = || ca.server_context(&["localhost", "127.0.0.1"], Leaf::Good);
    let wildcard = || ca.server_context(&["*.example.test"], Leaf::Good);

    // Client certificates: the server trusts `ca` for clients.
    let mut requiring = good();
    requiring
        .set_client_authorities_bytes(ca.pem().as_bytes())
        .expect("client authorities");
    let client_cert = |issuer: &Ca| {
        let (cert, key) =
            issuer.leaf_with_serial("matrix client", 7, ExtendedKeyUsagePurpose::ClientAuth);
        let mut ctx = context_with(&cert, &key);
        ctx.set_trusted_certificates_bytes(ca.pem().as_bytes())
            .expect("trust");
        client(ctx)
    };
    let require = || BindOptions::new().require_client_certificate(true);

    // Chains with something wrong above the leaf.
    let chain_of = |leaf: (String, String), above: &[&Ca]| {
        let pems: String = above.iter().map(|c| c.pem()).collect();
        context_with(&format!("{}{pems}", leaf.0), &leaf.1)
    };
    let expired_intermediate = root.intermediate_with("matrix expired intermediate", |p| {
        p.not_before = rcgen::date_time_ymd(2000, 1, 1);
        p.not_after = rcgen::date_time_ymd(2001, 1, 1);
    });
    let not_a_ca = root.intermediate_with("matrix not-a-CA", |p| p.is_ca = IsCa::ExplicitNoCa);
    let constrained = root.intermediate_with("matrix constrained", |p| {
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName("example.test".into())],
            excluded_subtrees: Vec::new(),
        });
    });
    let pathlen0 = root.intermediate_with("matrix pathlen 0", |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    });
    let below_pathlen = pathlen0.intermediate("matrix below pathlen 0");
    let client_only_ca = root.intermediate_with("matrix clientAuth CA", |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    });
    let early_root = Ca::new("early root");
    let early_intermediate = early_root.intermediate("early intermediate");
    // Same name as its issuer, another key (a key rollover certificate):
    // self-issued but not self-signed, so not a root.
    let rollover = Ca::new("rollover CA");
    let rolled = rollover.intermediate("rollover CA");
    let (ca_leaf, ca_leaf_key) = common::self_signed_ca(&["localhost"]);
    let trusting_itself = |base: SecurityContext| {
        let mut ctx = base;
        ctx.set_trusted_certificates_bytes(ca_leaf.as_bytes())
            .expect("trust");
        client(ctx)
    };
    let mut requiring_itself = good();
    requiring_itself
        .set_client_authorities_bytes(ca_leaf.as_bytes())
        .expect("client authorities");
    let mut dns_ip_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    dns_ip_params.subject_alt_names =
        vec![SanType::DnsName("127.0.0.1".try_into().expect("dns name"))];
    dns_ip_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let dns_ip_key = KeyPair::generate().expect("key");
    let dns_ip = dns_ip_params
        .signed_by(&dns_ip_key, &ca.issuer)
        .expect("sign")
        .pem();

    let cases = vec![
        Case::new("valid, DNS subjectAltName", good(), trusting(&ca)),
        Case::new("valid, IP subjectAltName", good(), trusting(&ca)).host("127.0.0.1"),
        Case::new(
            "expired",
            ca.server_context(&["localhost"], Leaf::Expired),
            trusting(&ca),
        )
        .reject(
            Side::Client,
            |p| matches!(p, P::Expired { not_after: Some(_), certificate: Some(c), .. } if c.position == ChainPosition::Leaf),
            "has expired (not after 2001-01-01",
        ),
        Case::new(
            "not yet valid",
            ca.server_context(&["localhost"], Leaf::NotYetValid),
            trusting(&ca),
        )
        .reject(
            Side::Client,
            |p| {
                matches!(
                    p,
                    P::NotYetValid {
                        not_before: Some(_),
                        ..
                    }
                )
            },
            "not valid yet (not before 2200-01-01",
        ),
        Case::new(
            "wrong host",
            ca.server_context(&["www.example.test", "10.1.2.3"], Leaf::Good),
            trusting(&ca),
        )
        .reject(
            Side::Client,
            |p| {
                matches!(p, P::NameMismatch { expected, presented, .. }
                    if expected == "localhost" && presented == &["DNS:www.example.test", "IP:10.1.2.3"])
            },
            "not valid for 'localhost': it names [DNS:www.example.test, IP:10.1.2.3]",
        ),
        Case::new(
            "wildcard match (*.example.test for api.example.test)",
            wildcard(),
            named("api.example.test", &ca),
        ),
        Case::new(
            "wildcard mismatch (*.example.test for a.b.example.test)",
            wildcard(),
            named("a.b.example.test", &ca),
        )
        .reject(
            Side::Client,
            |p| matches!(p, P::NameMismatch { .. }),
            "not valid for 'a.b.example.test'",
        ),
        Case::new(
            "self-signed",
            context_with(&self_cert, &self_key),
            trusting(&ca),
        )
        .reject(
            Side::Client,
            |p| matches!(p, P::SelfSigned { .. }),
            "self-signed (CN=localhost)",
        ),
        Case::new(
            "untrusted root (server sends leaf and root)",
            context_with(&format!("{other_leaf}{}", other.pem()), &other_key),
            trusting(&ca),
        )
        .reject(
            Side::Client,
            |p| matches!(p, P::UntrustedRoot { root, .. } if root == "CN=untrusted root"),
            "ends in a root that is not trusted (CN=untrusted root)",
        ),
        Case::new(
            "missing intermediate (server sends the leaf only)",
            context_with(&leaf, &leaf_key),
            trusting(&root),
        )
        .reject(
            Side::Client,
            |p| matches!(p, P::UnknownIssuer { issuer, .. } if issuer == "CN=matrix intermediate"),
            "did not send an intermediate",
        ),
        Case::new(
            "valid, with the intermediate sent",
            context_with(&format!("{leaf}{}", intermediate.pem()), &leaf_key),
            trusting(&root),
        ),
        Case::new(
            "no subjectAltName (CN only)",
            ca.server_context(&["localhost"], Leaf::CnOnly),
            trusting(&ca),
        )
        .reject(
            Side::Client,
            |p| matches!(p, P::NameMismatch { presented, .. } if presented.is_empty()),
            "has no subjectAltName",
        ),
        Case::new(
            "CA certificate as leaf",
            ca.server_context(&["localhost"], Leaf::IsCa),
            trusting(&ca),
        )
        .reject(
            Side::Client,
            |p| *p == P::CaUsedAsLeaf,
            "CA certificate was presented",
        ),
        Case::new(
            "leaf with clientAuth-only extended key usage",
            ca.server_context(&["localhost"], Leaf::ClientAuthOnly),
            trusting(&ca),
        )
        .reject(
            Side::Client,
            |p| {
                matches!(p, P::InvalidPurpose { required, presented, certificate: Some(c), .. }
                    if required == "serverAuth" && presented == &["clientAuth"]
                        && c.position == ChainPosition::Leaf)
            },
            "the extended key usage of the certificate CN=localhost is [clientAuth], which does \
             not allow serverAuth",
        ),
        Case::new(
            "revoked (CRL)",
            context_with(&revoked_cert, &revoked_key),
            client(with_crl),
        )
        .reject(
            Side::Client,
            |p| matches!(p, P::Revoked { certificate: Some(c), .. } if c.subject == "CN=localhost"),
            "has been revoked",
        ),
        Case::new(
            "expired intermediate",
            chain_of(
                expired_intermediate.leaf(&["localhost"], Leaf::Good),
                &[&expired_intermediate],
            ),
            trusting(&root),
        )
        .reject(
            Side::Client,
            |p| {
                matches!(p, P::Expired { certificate: Some(c), .. }
                    if c.position == ChainPosition::Intermediate
                        && c.subject == "CN=matrix expired intermediate")
            },
            "the intermediate CN=matrix expired intermediate has expired (not after 2001-01-01",
        ),
        Case::new(
            "intermediate without the CA bit",
            chain_of(not_a_ca.leaf(&["localhost"], Leaf::Good), &[&not_a_ca]),
            trusting(&root),
        )
        .reject(
            Side::Client,
            |p| {
                matches!(p, P::NotCa { certificate: Some(c), .. }
                    if c.subject == "CN=matrix not-a-CA")
            },
            "the intermediate CN=matrix not-a-CA issued another certificate of the chain but is \
             not a CA",
        ),
        Case::new(
            "name outside the intermediate's name constraints",
            chain_of(constrained.leaf(&["localhost"], Leaf::Good), &[&constrained]),
            trusting(&root),
        )
        .reject(
            Side::Client,
            |p| {
                matches!(p, P::NameConstraints { constrained_by, .. }
                    if constrained_by == &["CN=matrix constrained"])
            },
            "outside the name constraints of CN=matrix constrained",
        ),
        Case::new(
            "name inside the intermediate's name constraints",
            chain_of(
                constrained.leaf(&["www.example.test"], Leaf::Good),
                &[&constrained],
            ),
            named("www.example.test", &root),
        ),
        Case::new(
            "path length constraint exceeded",
            chain_of(
                below_pathlen.leaf(&["localhost"], Leaf::Good),
                &[&below_pathlen, &pathlen0],
            ),
            trusting(&root),
        )
        .reject(
            Side::Client,
            |p| {
                matches!(p, P::PathTooLong { certificate: Some(c), .. }
                    if c.subject == "CN=matrix pathlen 0")
            },
            "more intermediates below the intermediate CN=matrix pathlen 0",
        ),
        Case::new(
            "intermediate whose extended key usage lacks serverAuth",
            chain_of(
                client_only_ca.leaf(&["localhost"], Leaf::Good),
                &[&client_only_ca],
            ),
            trusting(&root),
        )
        .reject(
            Side::Client,
            |p| {
                matches!(p, P::InvalidPurpose { certificate: Some(c), .. }
                    if c.position == ChainPosition::Intermediate)
            },
            "the extended key usage of the intermediate CN=matrix clientAuth CA is [clientAuth]",
        ),
        Case::new(
            "untrusted root sent before its intermediate",
            chain_of(
                early_intermediate.leaf(&["localhost"], Leaf::Good),
                &[&early_root, &early_intermediate],
            ),
            trusting(&ca),
        )
        .reject(
            Side::Client,
            |p| matches!(p, P::UntrustedRoot { root, .. } if root == "CN=early root"),
            "ends in a root that is not trusted (CN=early root)",
        ),
        Case::new(
            "self-issued (rollover) intermediate last: not a root",
            chain_of(rolled.leaf(&["localhost"], Leaf::Good), &[&rolled]),
            trusting(&ca),
        )
        .reject(
            Side::Client,
            |p| matches!(p, P::UnknownIssuer { issuer, .. } if issuer == "CN=rollover CA"),
            "does not lead to a trusted root (issuer CN=rollover CA)",
        ),
        Case::new(
            "unrelated self-signed certificate sent last: not the chain's root",
            context_with(&format!("{other_leaf}{}", early_root.pem()), &other_key),
            trusting(&ca),
        )
        .reject(
            Side::Client,
            |p| matches!(p, P::UnknownIssuer { issuer, .. } if issuer == "CN=untrusted root"),
            "does not lead to a trusted root (issuer CN=untrusted root)",
        ),
        Case::new(
            "a DNS name that looks like the IP connected to",
            context_with(&dns_ip, &dns_ip_key.serialize_pem()),
            trusting(&ca),
        )
        .host("127.0.0.1")
        .reject(
            Side::Client,
            |p| matches!(p, P::NameMismatch { presented, .. } if presented == &["DNS:127.0.0.1"]),
            "not valid for '127.0.0.1': it names [DNS:127.0.0.1]",
        ),
        Case::new(
            "self-signed CA:TRUE leaf, trusted as itself (empty context)",
            context_with(&ca_leaf, &ca_leaf_key),
            trusting_itself(SecurityContext::empty()),
        ),
        Case::new(
            "self-signed CA:TRUE leaf, trusted as itself (with Mozilla's roots)",
            context_with(&ca_leaf, &ca_leaf_key),
            trusting_itself(SecurityContext::new()),
        ),
        Case::new(
            "self-signed CA:TRUE leaf, trusted, but for another name",
            context_with(&ca_leaf, &ca_leaf_key),
            trusting_itself(SecurityContext::empty()),
        )
        .host("127.0.0.1")
        .reject(
            Side::Client,
            |p| matches!(p, P::NameMismatch { .. }),
            "not valid for '127.0.0.1': it names [DNS:localhost]",
        ),
        Case::new(
            "self-signed CA:TRUE leaf, not trusted",
            context_with(&ca_leaf, &ca_leaf_key),
            trusting(&ca),
        )
        .reject(
            Side::Client,
            |p| matches!(p, P::SelfSigned { .. }),
            "self-signed (CN=localhost)",
        ),
        Case::new(
            "self-signed CA:TRUE client certificate, trusted as itself",
            requiring_itself,
            {
                let mut ctx = context_with(&ca_leaf, &ca_leaf_key);
                ctx.set_trusted_certificates_bytes(ca.pem().as_bytes())
                    .expect("trust");
                client(ctx)
            },
        )
        .bind(require()),
        Case::new(
            "client certificate from the trusted CA",
            requiring.clone(),
            client_cert(&ca),
        )
        .bind(require()),
        Case::new(
            "client certificate from another CA, server requires one",
            requiring.clone(),
            client_cert(&other),
        )
        .bind(require())
        .reject(
            Side::Server,
            |p| matches!(p, P::UnknownIssuer { issuer, .. } if issuer == "CN=untrusted root"),
            "does not lead to a trusted root",
        ),
        Case::new(
            "no client certificate, server requires one",
            requiring,
            client(ca.trust()),
        )
        .bind(require())
        .reject(
            Side::Server,
            |p| *p == P::NotPresented,
            "sent no certificate",
        ),
    ];

    let total = cases.len();
    let mut as_expected = 0;
    let mut failures = Vec::new();
    for case in cases {
        let name = case.name;
        match case.run() {
            Ok(what) => {
                as_expected += 1;
                println!("ok   {name}: {what}");
            }
            Err(why) => {
                println!("FAIL {name}: {why}");
                failures.push(name);
            }
        }
    }
    println!("{total} cases, {as_expected} as expected");
    assert!(failures.is_empty(), "not as expected: {failures:?}");
}
