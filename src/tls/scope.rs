//! What one call into rustls learns for its own connection: the secret an
//! exporter needs, the verifier's typed problem, the stapled OCSP response
//! and the SNI name.
//!
//! rustls hands these to objects of the configuration (its key log, the
//! verifiers, the certificate resolver), which are shared by every
//! connection made with it and are not told which connection is asking.
//! Why they cannot reach the connection any other way in rustls 0.23:
//! - the key log is the only way to learn the exporter's secret on the
//!   unbuffered API (which has no `export_keying_material`);
//! - a verifier's error reaches the connection only as a
//!   `CertificateError` whose kind picks the alert rustls sends
//!   (`CertificateError::Other` would always send `certificate_unknown`),
//!   so the typed problem cannot ride in the error without losing the
//!   alert that fits;
//! - the client verifier is the only place that sees the stapled OCSP
//!   response, and the unbuffered server connection does not expose the
//!   SNI name its certificate resolver was given.
//!
//! So each of those calls happens inside [`within`], which the engine
//! wraps around every call it makes into its own rustls connection: for
//! that call the thread's slot holds that connection's [`Learned`], and
//! whatever the configuration's objects report lands there and nowhere
//! else. Nothing is looked up by a value the peer chose, nothing outlives
//! the connection, and outside a call the slot is empty, so a report with
//! no connection to receive it is dropped.

use std::cell::RefCell;

use zeroize::Zeroizing;

use crate::error::CertificateProblem;

/// The label of the exporter secret rustls logs, and its bytes.
pub(crate) struct Secret {
    pub(crate) label: &'static str,
    pub(crate) client_random: [u8; 32],
    pub(crate) bytes: Zeroizing<Vec<u8>>,
}

/// What calls into one connection's rustls state have reported.
#[derive(Default)]
pub(crate) struct Learned {
    /// The exporter secret (TLS 1.3) or master secret (TLS 1.2).
    pub(crate) secret: Option<Secret>,
    /// The typed problem behind the certificate error handed to rustls.
    pub(crate) problem: Option<CertificateProblem>,
    /// Why the server's certificate failed verification, when it was let
    /// through anyway (`authorization_error`).
    pub(crate) unverified: Option<CertificateProblem>,
    /// A client's view of the server's stapled OCSP response.
    pub(crate) stapled: Option<Vec<u8>>,
    /// A server's view of the client's SNI name (lower case).
    pub(crate) sni: Option<Box<str>>,
}

// Why a thread-local: rustls 0.23 calls the key log, the verifiers and
// the certificate resolver with no way to tell which connection asks (see
// the module doc). It is filled only inside `within`, around one call into
// one connection's rustls state, and emptied after it: nothing outlives the
// call, and nothing is looked up by a value the peer chose.
thread_local! {
    /// The connection whose call into rustls runs on this thread, if any.
    static SLOT: RefCell<Option<Box<Learned>>> = const { RefCell::new(None) };
}

/// Runs `call` (a call into the connection's rustls state) with
/// `learned` receiving what the configuration's objects report. Nested
/// calls (a connection made inside another's call) each get their own.
/// The connection's `Learned` moves into the slot and back as a pointer
/// (it is boxed): every record read or written passes here. A connection
/// whose handshake is over passes `None`: the slot is empty for its calls,
/// so a report then (rustls makes none) is dropped, never another's.
pub(crate) fn within<R>(learned: &mut Option<Box<Learned>>, call: impl FnOnce() -> R) -> R {
    /// Moves the call's reports back into the connection and puts the
    /// outer call's slot back, even if `call` unwinds.
    struct Guard<'a> {
        learned: &'a mut Option<Box<Learned>>,
        outer: Option<Box<Learned>>,
    }
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            let outer = self.outer.take();
            let _ = SLOT.try_with(|s| {
                if let Some(mine) = std::mem::replace(&mut *s.borrow_mut(), outer) {
                    *self.learned = Some(mine);
                }
            });
        }
    }
    let mine = learned.take();
    let outer = SLOT.with(|s| std::mem::replace(&mut *s.borrow_mut(), mine));
    let _guard = Guard { learned, outer };
    call()
}

/// Reports to the connection whose call is running on this thread;
/// nothing happens outside such a call.
pub(crate) fn report(f: impl FnOnce(&mut Learned)) {
    let _ = SLOT.try_with(|s| {
        if let Some(learned) = s.borrow_mut().as_mut() {
            f(learned);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_reach_the_running_call_only() {
        report(|l| l.sni = Some("nobody".into()));
        let mut a = Some(Box::<Learned>::default());
        let mut b = Some(Box::<Learned>::default());
        within(&mut a, || {
            report(|l| l.sni = Some("a".into()));
            within(&mut b, || report(|l| l.sni = Some("b".into())));
            report(|l| l.stapled = Some(vec![1]));
        });
        let (a, b) = (
            a.expect("a's reports came back"),
            b.expect("b's reports came back"),
        );
        assert_eq!(a.sni.as_deref(), Some("a"));
        assert_eq!(a.stapled, Some(vec![1]));
        assert_eq!(b.sni.as_deref(), Some("b"));
        assert_eq!(b.stapled, None);
        // Outside any call the slot is empty again.
        report(|l| l.sni = Some("late".into()));
        let mut c = Some(Box::<Learned>::default());
        within(&mut c, || {});
        assert_eq!(c.expect("c's reports came back").sni, None);
        // A connection past its handshake (no Learned) inside another's
        // call: its report is dropped, not the outer call's.
        let mut outer = Some(Box::<Learned>::default());
        within(&mut outer, || {
            let mut done = None;
            within(&mut done, || report(|l| l.sni = Some("inner".into())));
            assert!(done.is_none(), "nothing is kept for a finished handshake");
        });
        assert_eq!(
            outer.expect("outer").sni,
            None,
            "the inner report did not land here"
        );
    }

    #[test]
    fn an_unwinding_call_leaves_the_slot_as_it_was() {
        let mut a = Some(Box::<Learned>::default());
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            within(&mut a, || {
                report(|l| l.sni = Some("a".into()));
                panic!("in rustls");
            })
        }));
        assert!(r.is_err());
        let mut c = Some(Box::<Learned>::default());
        within(&mut c, || {});
        assert_eq!(
            c.expect("c's reports came back").sni,
            None,
            "the unwound call's report did not stay behind"
        );
    }
}
