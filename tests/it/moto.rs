//! moto's standalone S3 server on a free loopback port, for the offsite
//! tests; objects are read and altered with boto3 (installed with moto),
//! not through caretaker's own client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// moto's server on a free loopback port, killed when dropped.
pub struct Moto {
    pub port: u16,
    child: Child,
}

impl Moto {
    pub fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server (python3 -m pip install \"moto[server]\")");
        let moto = Moto { port, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http(port, "GET", "/", b"").is_none() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    pub fn create_bucket(&self, bucket: &str) {
        let (status, _) = http(self.port, "PUT", &format!("/{bucket}"), b"").expect("moto");
        assert_eq!(status, 200, "create bucket {bucket}");
    }

    /// An object's bytes, fetched with boto3 (installed with moto): not
    /// through caretaker's own client.
    pub fn get(&self, key: &str) -> Vec<u8> {
        let (bucket, key) = key.split_once('/').expect("bucket/key");
        let out = self.boto3(
            &format!(
            "sys.stdout.buffer.write(s3.get_object(Bucket={bucket:?}, Key={key:?})['Body'].read())"
        ),
            b"",
        );
        out
    }

    /// Replaces an object's bytes with boto3.
    pub fn put(&self, key: &str, body: &[u8]) {
        let (bucket, key) = key.split_once('/').expect("bucket/key");
        self.boto3(
            &format!("s3.put_object(Bucket={bucket:?}, Key={key:?}, Body=sys.stdin.buffer.read())"),
            body,
        );
    }

    /// Every key under `prefix` of `bucket`, sorted, listed with boto3.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let out = self.boto3(
            &format!(
                "for o in s3.list_objects_v2(Bucket={bucket:?}, Prefix={prefix:?}).get('Contents', []): print(o['Key'])"
            ),
            b"",
        );
        let mut keys: Vec<String> = String::from_utf8_lossy(&out)
            .lines()
            .map(str::to_string)
            .collect();
        keys.sort();
        keys
    }

    fn boto3(&self, statement: &str, stdin: &[u8]) -> Vec<u8> {
        let script = format!(
            "import sys, boto3\ns3 = boto3.client('s3', endpoint_url='http://127.0.0.1:{}', region_name='us-east-1', aws_access_key_id='a', aws_secret_access_key='b')\n{statement}\n",
            self.port
        );
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin)
            .expect("stdin");
        let out = child.wait_with_output().expect("boto3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain HTTP/1.0 request; `None` when nothing listens.
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).ok()?;
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let status = std::str::from_utf8(&answer[..split])
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((status, answer[split + 4..].to_vec()))
}
