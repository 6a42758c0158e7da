//! Client certificates: each `client_auth_type` of the toolkit, against
//! clients with a certificate of the CA, with one of another CA, and with none.

use super::{alert, tls_config, write_web_config, Pki};
use crate::common::Caretaker;
use crate::responder::{wal_database, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_and_verify_client_cert_lets_in_only_clients_with_one() {
    let dir = wal_database();
    let pki = Pki::new(dir.path());
    let tls = format!(
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n",
        pki.path("ca.crt").display()
    );
    write_web_config(dir.path(), &pki, "server", "server", &tls, "");
    let with_cert = pki
        .client("ca")
        .identity(pki.client_identity())
        .build()
        .unwrap();
    let ct = Caretaker::start_with(dir, &tls_config(), "https", with_cert).await;
    assert_eq!(ct.get("/metrics").await.status(), 200);
    let without = pki.client("ca").build().unwrap();
    let refused = without.get(format!("{}/metrics", ct.base)).send().await;
    assert!(
        refused.is_err(),
        "a client without a certificate got {refused:?}"
    );
    let hook = without
        .post(format!("{}/hooks/alertmanager", ct.base))
        .bearer_auth(TOKEN)
        .json(&alert())
        .send()
        .await;
    assert!(hook.is_err());
    assert!(ct.jobs().await.is_empty());
    ct.stop().await;
}

/// Whether a client with `identity` (a `pki` name, or none) gets `/metrics`
/// from a caretaker started with `client_auth_type: kind`.
async fn admitted(kind: &str, identities: &[Option<(&str, &str)>]) -> Vec<bool> {
    let dir = wal_database();
    let pki = Pki::new(dir.path());
    let tls = format!(
        "  client_auth_type: {kind}\n  client_ca_file: {}\n",
        pki.path("ca.crt").display()
    );
    write_web_config(dir.path(), &pki, "server", "server", &tls, "");
    let identity = pki.client_identity();
    let ct = Caretaker::start_with(
        dir,
        &tls_config(),
        "https",
        pki.client("ca").identity(identity).build().unwrap(),
    )
    .await;
    let mut answers = Vec::new();
    for id in identities {
        let mut builder = pki.client("ca");
        if let Some((cert, key)) = id {
            let mut pem = pki.pem(cert);
            pem.extend(pki.pem(key));
            builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
        }
        let client = builder.build().unwrap();
        let answer = client.get(format!("{}/metrics", ct.base)).send().await;
        answers.push(matches!(answer, Ok(r) if r.status() == 200));
    }
    ct.stop().await;
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_client_auth_types_take_what_the_toolkit_takes() {
    let ours = Some(("client.crt", "client.key"));
    // server2 is signed by the second CA, which client_ca_file does not name.
    let foreign = Some(("server2.crt", "server2.key"));
    let cases = [
        ("NoClientCert", [true, true, true]),
        ("RequestClientCert", [true, true, true]),
        ("RequireAnyClientCert", [true, true, false]),
        ("VerifyClientCertIfGiven", [true, false, true]),
        ("RequireAndVerifyClientCert", [true, false, false]),
    ];
    for (kind, expected) in cases {
        let got = admitted(kind, &[ours, foreign, None]).await;
        assert_eq!(got, expected, "{kind}: [own CA, other CA, none]");
    }
}
