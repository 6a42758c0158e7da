//! Certificates made with Debian's `openssl` in a temporary folder: a CA,
//! a server certificate for 127.0.0.1 and localhost, one that expired in
//! 2021, a key that belongs to none of them, a client certificate for mTLS,
//! and a second CA with its own server certificate (a renewal to reload).

use std::path::{Path, PathBuf};
use std::process::Command;

const OPENSSL_CNF: &str = r#"[req]
distinguished_name = dn
prompt = no
[dn]
CN = caretaker-test
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
[client_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
[ca]
default_ca = test_ca
[test_ca]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
[any]
commonName = supplied
"#;

/// The files, all in one folder.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let dir = dir.join("pki");
        std::fs::create_dir_all(&dir).expect("mkdir pki");
        std::fs::write(dir.join("openssl.cnf"), OPENSSL_CNF).expect("cnf");
        std::fs::write(dir.join("index.txt"), "").expect("index");
        std::fs::write(dir.join("serial"), "1000\n").expect("serial");
        let pki = Pki { dir };
        for ca in ["ca", "ca2"] {
            pki.openssl(&[
                "req",
                "-x509",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "30",
                "-config",
                "openssl.cnf",
                "-extensions",
                "ca_ext",
                "-subj",
                &format!("/CN=caretaker test {ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
            ]);
        }
        pki.signed("server", "ca", "server_ext", "/CN=localhost");
        pki.signed("server2", "ca2", "server_ext", "/CN=localhost");
        pki.signed("client", "ca", "client_ext", "/CN=prometheus");
        // Expired: `openssl ca` is the CLI that takes explicit dates.
        pki.request("expired", "/CN=localhost");
        pki.openssl(&[
            "ca",
            "-batch",
            "-config",
            "openssl.cnf",
            "-cert",
            "ca.crt",
            "-keyfile",
            "ca.key",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20210101000000Z",
            "-extensions",
            "server_ext",
            "-extfile",
            "openssl.cnf",
            "-notext",
            "-in",
            "expired.csr",
            "-out",
            "expired.crt",
        ]);
        pki.openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "other.key",
        ]);
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn pem(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).expect("read pem")
    }

    /// A reqwest client that trusts `ca` (and no public CA).
    pub fn client(&self, ca: &str) -> reqwest::ClientBuilder {
        let ca = reqwest::Certificate::from_pem(&self.pem(&format!("{ca}.crt"))).expect("ca");
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
    }

    /// The client certificate and key, for mTLS.
    pub fn client_identity(&self) -> reqwest::Identity {
        let mut pem = self.pem("client.crt");
        pem.extend(self.pem("client.key"));
        reqwest::Identity::from_pem(&pem).expect("identity")
    }

    fn request(&self, name: &str, subject: &str) {
        self.openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-config",
            "openssl.cnf",
            "-subj",
            subject,
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ]);
    }

    fn signed(&self, name: &str, ca: &str, extensions: &str, subject: &str) {
        self.request(name, subject);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "openssl.cnf",
            "-extensions",
            extensions,
            "-out",
            &format!("{name}.crt"),
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("openssl is installed (scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
