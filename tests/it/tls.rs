//! caretaker on a network: the exporter toolkit's web config file with TLS,
//! client certificates and basic-auth users, against real clients (reqwest
//! over rustls here; Prometheus and Alertmanager in `tls/clients.rs`), with
//! certificates made by Debian's `openssl` (`tls/pki.rs`).

mod client_auth;
mod clients;
mod pki;

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use serde_json::Value;

use crate::common::{caretaker, check_config, value, Caretaker};
use crate::responder::{notification, responder_config, wal_database, TOKEN};
pub use pki::Pki;

pub const USER: &str = "prometheus";
pub const PASSWORD: &str = "correct horse battery staple";

/// The `Authorization: Basic` value of `user` and `password`.
pub fn basic(user: &str, password: &str) -> HeaderValue {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut v = HeaderValue::from_str(&format!("Basic {encoded}")).expect("header");
    v.set_sensitive(true);
    v
}

/// A web config file at `dir/web.yml` with the server certificate `cert`
/// (`cert.crt`, `key.key`) and `extra` YAML (more TLS keys, users).
pub fn write_web_config(dir: &Path, pki: &Pki, cert: &str, key: &str, extra_tls: &str, rest: &str) {
    let yml = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n{extra_tls}{rest}",
        pki.path(&format!("{cert}.crt")).display(),
        pki.path(&format!("{key}.key")).display(),
    );
    std::fs::write(dir.join("web.yml"), yml).expect("web.yml");
}

/// `basic_auth_users` with [`USER`] and [`PASSWORD`] (bcrypt cost 5 keeps debug builds quick).
pub fn users_yaml() -> String {
    let hash = bcrypt::hash(PASSWORD, 5).expect("bcrypt");
    format!("basic_auth_users:\n  {USER}: '{hash}'\n")
}

/// The responder configuration of `responder.rs` with the web config file.
pub fn tls_config() -> String {
    responder_config("").replace("[web]\n", "[web]\nconfig_file = \"web.yml\"\n")
}

/// A client that trusts `ca` and, when given, sends basic-auth credentials.
pub fn client(pki: &Pki, ca: &str, user: Option<(&str, &str)>) -> reqwest::Client {
    let mut headers = HeaderMap::new();
    if let Some((u, p)) = user {
        headers.insert(AUTHORIZATION, basic(u, p));
    }
    pki.client(ca)
        .default_headers(headers)
        .build()
        .expect("client")
}

/// `GET /api/v1/actions` with both credentials.
async fn jobs(ct: &Caretaker) -> Vec<Value> {
    let body: Value = ct
        .client
        .get(format!("{}/api/v1/actions", ct.base))
        .header(AUTHORIZATION, basic(USER, PASSWORD))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    body["jobs"].as_array().cloned().unwrap_or_default()
}

pub fn alert() -> Value {
    notification("firing", "CaretakerWalLarge", "f1", "2026-01-01T00:00:00Z")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_the_ca_the_password_or_tls_are_refused_and_change_nothing() {
    let dir = wal_database();
    let pki = Pki::new(dir.path());
    let headers = "http_server_config:\n  headers:\n    X-Frame-Options: deny\n";
    let rest = format!("{}{headers}", users_yaml());
    write_web_config(dir.path(), &pki, "server", "server", "", &rest);
    let ct = Caretaker::start_with(
        dir,
        &tls_config(),
        "https",
        client(&pki, "ca", Some((USER, PASSWORD))),
    )
    .await;
    let hook = format!("{}/hooks/alertmanager", ct.base);

    // No CA: the handshake fails, nothing reaches caretaker.
    let stranger = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    assert!(stranger
        .post(&hook)
        .bearer_auth(TOKEN)
        .json(&alert())
        .send()
        .await
        .is_err());

    // Plain HTTP to the TLS port: a 400 that says to use https.
    let plain = reqwest::Client::new()
        .post(hook.replace("https://", "http://"))
        .header(AUTHORIZATION, basic(USER, PASSWORD))
        .bearer_auth(TOKEN)
        .json(&alert())
        .send()
        .await
        .expect("plain HTTP answered");
    assert_eq!(plain.status(), 400);
    assert!(plain.text().await.unwrap().contains("https://"));

    let trusting = pki.client("ca").build().unwrap();
    // A wrong password, though the token is right: 401 asking for Basic.
    let wrong = trusting
        .post(&hook)
        .header(AUTHORIZATION, basic(USER, "wrong horse"))
        .bearer_auth(TOKEN)
        .json(&alert())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let challenge = wrong.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Basic"), "{challenge}");
    assert_eq!(wrong.headers()["x-frame-options"], "deny");
    // An unknown user, and no credentials at all, on a GET too.
    let unknown = trusting
        .get(format!("{}/metrics", ct.base))
        .header(AUTHORIZATION, basic("root", PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    let none = trusting.get(format!("{}/", ct.base)).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert!(none.headers().contains_key("www-authenticate"));
    // The right password without the token: the webhook still wants the token.
    let no_token = ct.client.post(&hook).json(&alert()).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
    assert!(!no_token.headers().contains_key("www-authenticate"));
    assert!(
        jobs(&ct).await.is_empty(),
        "a refused request recorded a job"
    );

    let m = ct.metrics().await;
    assert!(
        value(
            &m,
            "caretaker_auth_failures_total",
            &[("reason", "basic_auth_wrong")]
        )
        .unwrap()
            >= 2.0
    );
    assert!(
        value(
            &m,
            "caretaker_auth_failures_total",
            &[("reason", "basic_auth_missing")]
        )
        .unwrap()
            >= 1.0
    );

    // Both credentials, as two Authorization headers (a client's default
    // header gives way to a request's own): accepted and recorded.
    let ok = ct
        .client
        .post(&hook)
        .header(AUTHORIZATION, basic(USER, PASSWORD))
        .bearer_auth(TOKEN)
        .json(&alert())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 202);
    assert_eq!(ok.headers()["x-frame-options"], "deny");
    assert_eq!(jobs(&ct).await.len(), 1);
    ct.stop().await;
}

/// Rewrites caretaker.toml (same content, one more comment line) so the
/// watcher reloads it, and waits for the reload's verdict.
async fn reload(ct: &Caretaker, n: usize, expect_ok: bool) {
    let text = std::fs::read_to_string(&ct.config_path).unwrap();
    std::fs::write(&ct.config_path, format!("{text}# reload {n}\n")).unwrap();
    let want = if expect_ok { 1.0 } else { 0.0 };
    ct.wait_for("the reload", Duration::from_secs(20), |m| {
        value(m, "caretaker_config_last_reload_successful", &[]) == Some(want)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_certificate_at_reload_keeps_the_old_one_and_a_good_one_takes_over() {
    let dir = wal_database();
    let pki = Pki::new(dir.path());
    let root = dir.path().to_path_buf();
    write_web_config(&root, &pki, "server", "server", "", "");
    let ct = Caretaker::start_with(dir, &tls_config(), "https", client(&pki, "ca", None)).await;

    write_web_config(&root, &pki, "expired", "expired", "", "");
    reload(&ct, 1, false).await;
    // A new connection (a new client) still gets the old certificate.
    let fresh = client(&pki, "ca", None);
    assert_eq!(
        fresh
            .get(format!("{}/-/healthy", ct.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    write_web_config(&root, &pki, "server", "other", "", "");
    reload(&ct, 2, false).await;
    let fresh = client(&pki, "ca", None);
    assert_eq!(
        fresh
            .get(format!("{}/-/healthy", ct.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    std::fs::write(root.join("web.yml"), "tls_server_config: [not, a, map]\n").unwrap();
    reload(&ct, 3, false).await;

    // A renewal signed by another CA: new connections get it at once.
    write_web_config(&root, &pki, "server2", "server2", "", "");
    reload(&ct, 4, true).await;
    let old_ca = client(&pki, "ca", None);
    assert!(old_ca
        .get(format!("{}/-/healthy", ct.base))
        .send()
        .await
        .is_err());
    let new_ca = client(&pki, "ca2", None);
    assert_eq!(
        new_ca
            .get(format!("{}/-/healthy", ct.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    ct.stop().await;
}

#[test]
fn expired_and_mismatched_certificates_stop_startup_and_fail_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    std::fs::write(
        dir.path().join("caretaker.toml"),
        "[web]\nconfig_file = \"web.yml\"\n",
    )
    .unwrap();
    for (cert, key, says) in [
        ("expired", "expired", "expired at"),
        ("server", "other", "does not belong to the certificate"),
    ] {
        write_web_config(dir.path(), &pki, cert, key, "", "");
        let out = check_config(&dir.path().join("caretaker.toml"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(says),
            "check-config: {stderr}"
        );
        // The flag names the file too, and serve stops before it listens.
        let moved = dir.path().join(format!("{cert}-{key}.yml"));
        std::fs::rename(dir.path().join("web.yml"), &moved).unwrap();
        std::fs::write(dir.path().join("plain.toml"), "").unwrap();
        let out = caretaker()
            .arg("serve")
            .arg(format!(
                "--config.file={}",
                dir.path().join("plain.toml").display()
            ))
            .arg(format!("--web.config.file={}", moved.display()))
            .arg("--web.listen-address=127.0.0.1:0")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "serve started with {cert}/{key}");
        assert!(
            stderr.contains(says) && stderr.contains(&moved.display().to_string()),
            "serve: {stderr}"
        );
    }
    // And a good file passes check-config, saying what clients need.
    write_web_config(dir.path(), &pki, "server", "server", "", &users_yaml());
    let out = check_config(&dir.path().join("caretaker.toml"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("TLS") && stdout.contains("basic auth for 1 user"),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_web_config_example_in_docs_security_md_loads() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/security.md")).unwrap();
    let section = &doc[doc.find("### TLS natively").expect("section")..];
    let start = section.find("```yaml\n").expect("yaml block") + "```yaml\n".len();
    let yaml = &section[start..start + section[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    for (from, to) in [
        ("server.crt", "caretaker.crt"),
        ("server.key", "caretaker.key"),
        ("ca.crt", "clients-ca.crt"),
    ] {
        std::fs::copy(pki.path(from), dir.path().join(to)).unwrap();
    }
    std::fs::write(dir.path().join("web.yml"), yaml).unwrap();
    let security = caretaker::web::security::WebSecurity::load(Some(&dir.path().join("web.yml")))
        .expect("the example loads");
    assert!(security.tls().is_some() && security.headers().len() == 1);
    let users = security.users().expect("users");
    assert!(users.verify("prometheus", "example").await);
}
