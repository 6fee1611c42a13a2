//! The decision table, over every combination of its inputs: the path
//! webpki found, the leaf as a certificate the user added, the pins,
//! `reject_unauthorized`, `on_bad_*` and the name check. Each row's
//! expected verdict comes from the module doc's rules, written again here
//! as a spec with the reason for each; the holes found by review are named
//! rows.

use super::*;

/// One combination of the inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Verified,
    Unpinned,
    NoIssuer,
    Failed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Added {
    No,
    Usable,
    Unusable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pins {
    None,
    LeafPinned,
    LeafNotPinned,
}

#[derive(Clone, Copy, Debug)]
struct Row {
    path: Path,
    added: Added,
    pins: Pins,
    reject_unauthorized: bool,
    on_bad: Option<bool>,
    name_ok: bool,
}

/// What a verdict names, to compare.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Want {
    Trusted,
    Unverified(&'static str),
    Refused(&'static str),
}

fn problem(tag: &'static str) -> CertificateProblem {
    CertificateProblem::Other(tag.to_owned())
}

fn tag(p: &CertificateProblem) -> &'static str {
    match p {
        CertificateProblem::Other(s) => match s.as_str() {
            "no issuer" => "no issuer",
            "failed" => "failed",
            "added but unusable" => "added but unusable",
            "name" => "name",
            "pin: leaf" => "pin: leaf",
            "pin: sent" => "pin: sent",
            _ => "?",
        },
        _ => "?",
    }
}

struct Fake {
    row: Row,
    identity_calls: usize,
    on_bad_calls: usize,
}

impl Peer for Fake {
    fn identity(&mut self) -> Result<(), CertificateProblem> {
        self.identity_calls += 1;
        if self.row.name_ok {
            Ok(())
        } else {
            Err(problem("name"))
        }
    }

    fn on_bad(&mut self) -> Option<bool> {
        self.on_bad_calls += 1;
        self.row.on_bad
    }

    fn leaf_pinned(&self) -> bool {
        self.row.pins == Pins::LeafPinned
    }

    fn pin_mismatch(&self, leaf_only: bool) -> CertificateProblem {
        problem(if leaf_only { "pin: leaf" } else { "pin: sent" })
    }
}

/// The module doc's table as a spec: the verdict and the rule's reason.
fn spec(r: Row) -> (Want, &'static str) {
    let pinned = r.pins != Pins::None;
    let leaf_pinned = r.pins == Pins::LeafPinned;
    // Rules 1-5: the chain, then the name.
    let chain: Result<(), Want> = match (r.path, r.added) {
        (Path::Unpinned, _) => {
            return (
                Want::Refused("pin: sent"),
                "1: no verified path has a pinned key; nothing overrides a pin",
            );
        }
        (Path::Verified, _) => Ok(()),
        (Path::NoIssuer, Added::Usable) if pinned && !leaf_pinned => {
            return (
                Want::Refused("pin: leaf"),
                "4: trusted as itself, but its key is not pinned",
            );
        }
        (Path::NoIssuer, Added::Usable) => Ok(()),
        (Path::NoIssuer, Added::Unusable) => Err(Want::Refused("added but unusable")),
        (Path::NoIssuer, Added::No) => Err(Want::Refused("no issuer")),
        // Trusted-as-itself never overrides these.
        (Path::Failed, _) => Err(Want::Refused("failed")),
    };
    let failure = match chain {
        Ok(()) if r.name_ok => return (Want::Trusted, "2/3: the chain and the name hold"),
        Ok(()) => "name",
        Err(Want::Refused(p)) => p,
        Err(_) => unreachable!(),
    };
    if r.reject_unauthorized && r.on_bad != Some(true) {
        return (
            Want::Refused(failure),
            "6/9: rejected, and no callback let it through",
        );
    }
    if pinned && !leaf_pinned {
        return (
            Want::Refused("pin: leaf"),
            "8: let through unverified, so only the leaf's key counts",
        );
    }
    (
        Want::Unverified(failure),
        "7: let through unverified; authorization_error says why",
    )
}

fn run(r: Row) -> (Want, Fake) {
    let path = match r.path {
        Path::Verified => PathVerdict::Verified,
        Path::Unpinned => PathVerdict::Unpinned,
        Path::NoIssuer => PathVerdict::NoIssuer(problem("no issuer")),
        Path::Failed => PathVerdict::Failed(problem("failed")),
    };
    let itself = match r.added {
        Added::No => Itself::NotAdded,
        Added::Usable => Itself::Usable,
        Added::Unusable => Itself::Unusable(problem("added but unusable")),
    };
    let settings = Settings {
        reject_unauthorized: r.reject_unauthorized,
        pinned: r.pins != Pins::None,
    };
    let mut fake = Fake {
        row: r,
        identity_calls: 0,
        on_bad_calls: 0,
    };
    let got = match decide(path, itself, settings, &mut fake) {
        Verdict::Trusted => Want::Trusted,
        Verdict::Unverified(p) => Want::Unverified(tag(&p)),
        Verdict::Refused(p) => Want::Refused(tag(&p)),
    };
    (got, fake)
}

fn every_row() -> Vec<Row> {
    let mut rows = Vec::new();
    for path in [Path::Verified, Path::Unpinned, Path::NoIssuer, Path::Failed] {
        for added in [Added::No, Added::Usable, Added::Unusable] {
            for pins in [Pins::None, Pins::LeafPinned, Pins::LeafNotPinned] {
                for reject_unauthorized in [true, false] {
                    for on_bad in [None, Some(true), Some(false)] {
                        for name_ok in [true, false] {
                            rows.push(Row {
                                path,
                                added,
                                pins,
                                reject_unauthorized,
                                on_bad,
                                name_ok,
                            });
                        }
                    }
                }
            }
        }
    }
    rows
}

#[test]
fn every_combination_gets_the_verdict_of_the_table() {
    let rows = every_row();
    assert_eq!(rows.len(), 4 * 3 * 3 * 2 * 3 * 2);
    for r in rows {
        let (want, reason) = spec(r);
        let (got, fake) = run(r);
        assert_eq!(got, want, "{r:?}: rule {reason}");
        // The name check (or check_server_identity) runs only once the
        // chain holds, and at most once.
        let chain_holds = matches!(
            (r.path, r.added, r.pins),
            (Path::Verified, _, _) | (Path::NoIssuer, Added::Usable, Pins::None | Pins::LeafPinned)
        );
        assert_eq!(fake.identity_calls, usize::from(chain_holds), "{r:?}");
        // on_bad is asked only about a failure that is not a pin's, and
        // only when reject_unauthorized would refuse it.
        assert!(fake.on_bad_calls <= 1, "{r:?}");
        if fake.on_bad_calls == 1 {
            assert!(r.reject_unauthorized, "{r:?}: asked needlessly");
            assert!(!matches!(got, Want::Trusted), "{r:?}");
        }
    }
}

/// The holes a review found, as rows (client side).
#[test]
fn the_reviewed_holes_are_refused() {
    let base = Row {
        path: Path::Failed,
        added: Added::No,
        pins: Pins::LeafNotPinned,
        reject_unauthorized: false,
        on_bad: None,
        name_ok: true,
    };
    // An attacker's own leaf followed by the genuine (public) certificate,
    // with verification off or overridden and a pin as the security.
    for r in [
        base,
        Row {
            path: Path::NoIssuer,
            ..base
        },
        Row {
            reject_unauthorized: true,
            on_bad: Some(true),
            ..base
        },
    ] {
        assert_eq!(run(r).0, Want::Refused("pin: leaf"), "{r:?}");
    }
    // A revoked leaf that is also in the trust file (a fullchain file).
    let revoked = Row {
        path: Path::Failed,
        added: Added::Usable,
        pins: Pins::None,
        reject_unauthorized: true,
        ..base
    };
    assert_eq!(run(revoked).0, Want::Refused("failed"));
    // A leaf trusted as itself that a CRL revokes (its issuer absent).
    let revoked_itself = Row {
        path: Path::NoIssuer,
        added: Added::Unusable,
        ..revoked
    };
    assert_eq!(run(revoked_itself).0, Want::Refused("added but unusable"));
}

/// The server side: no name, no pins, `reject_unauthorized` always on,
/// `on_bad_client_certificate` as the callback.
#[test]
fn client_certificates_follow_the_same_rules() {
    for path in [Path::Verified, Path::NoIssuer, Path::Failed] {
        for added in [Added::No, Added::Usable, Added::Unusable] {
            for on_bad in [None, Some(true), Some(false)] {
                let r = Row {
                    path,
                    added,
                    pins: Pins::None,
                    reject_unauthorized: true,
                    on_bad,
                    name_ok: true,
                };
                let got = run(r).0;
                let want = match (path, added, on_bad) {
                    (Path::Verified, _, _) | (Path::NoIssuer, Added::Usable, _) => Want::Trusted,
                    (Path::NoIssuer, Added::Unusable, Some(true)) => {
                        Want::Unverified("added but unusable")
                    }
                    (Path::NoIssuer, Added::Unusable, _) => Want::Refused("added but unusable"),
                    (Path::NoIssuer, Added::No, Some(true)) => Want::Unverified("no issuer"),
                    (Path::NoIssuer, Added::No, _) => Want::Refused("no issuer"),
                    (Path::Failed, _, Some(true)) => Want::Unverified("failed"),
                    (Path::Failed, _, _) => Want::Refused("failed"),
                    (Path::Unpinned, _, _) => unreachable!(),
                };
                assert_eq!(got, want, "{r:?}");
            }
        }
    }
}
