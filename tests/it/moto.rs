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

/// A TCP forwarder in front of moto, to cut uploads: it stops (closes its
/// listener and every connection) by hand or once `cut_after` bytes went
/// from clients to moto.
pub struct Forwarder {
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Forwarder {
    /// Listens on `port` (0: a free one) and forwards to moto's `to`.
    pub fn start(to: u16, port: u16, cut_after: Option<u64>) -> Forwarder {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind forwarder");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let sent = Arc::new(AtomicU64::new(0));
        let (stop2, open2) = (stop.clone(), open.clone());
        let accept = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((client, _)) => client,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        // Polls the stop flag between connections.
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(_) => break,
                };
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                {
                    let mut open = open2.lock().expect("lock");
                    open.extend(client.try_clone().ok());
                    open.extend(server.try_clone().ok());
                }
                let pipe = |mut from: TcpStream, mut to: TcpStream, count: bool| {
                    let (stop, open, sent) = (stop2.clone(), open2.clone(), sent.clone());
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 64 << 10];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            let total = if count {
                                sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64
                            } else {
                                0
                            };
                            if cut_after.is_some_and(|limit| total >= limit) {
                                stop.store(true, Ordering::SeqCst);
                                for s in open.lock().expect("lock").iter() {
                                    let _ = s.shutdown(std::net::Shutdown::Both);
                                }
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                };
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    pipe(c, s, true);
                    pipe(server, client, false);
                }
            }
        });
        Forwarder {
            port,
            stop,
            open,
            accept: Some(accept),
        }
    }

    /// Whether it has stopped (by hand or at `cut_after`).
    pub fn stopped(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Closes the listener and every connection.
    pub fn stop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for s in self.open.lock().expect("lock").iter() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop();
    }
}
