//! A minimal SMTP server on loopback, so mail goes through lettre's real SMTP client and the
//! tests read codes out of the delivered messages.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
    sync::Notify,
};

#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub to: Vec<String>,
    /// The raw message (headers and MIME body), dot-unstuffed.
    pub data: String,
}

impl ReceivedMail {
    pub fn subject(&self) -> String {
        self.data
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or_default()
            .to_string()
    }

    /// The first run of `len` characters from `alphabet` that follows `marker`.
    pub fn code_after(&self, marker: &str, len: usize, alphabet: fn(char) -> bool) -> String {
        let at = self
            .data
            .find(marker)
            .unwrap_or_else(|| panic!("no {marker:?} in:\n{}", self.data));
        let code: String = self.data[at + marker.len()..]
            .chars()
            .skip_while(|c| !alphabet(*c))
            .take_while(|c| alphabet(*c))
            .collect();
        assert_eq!(code.len(), len, "code after {marker:?} in:\n{}", self.data);
        code
    }

    /// The subject with RFC 2047 encoded words (`=?utf-8?b?…?=`) decoded.
    pub fn decoded_subject(&self) -> String {
        use base64::Engine;
        let raw = self.subject();
        raw.split_whitespace()
            .map(|word| {
                let inner = word.strip_prefix("=?").and_then(|w| w.strip_suffix("?="));
                match inner.and_then(|w| w.splitn(3, '?').nth(2).map(|t| (w, t))) {
                    Some((w, text)) if w.to_ascii_lowercase().contains("?b?") => {
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(text)
                            .expect("base64 word");
                        String::from_utf8(bytes).expect("UTF-8 word")
                    }
                    _ => format!("{word} "),
                }
            })
            .collect::<String>()
            .trim()
            .to_string()
    }

    /// The plain-text part, its transfer encoding (base64, quoted-printable or none) undone.
    pub fn text_part(&self) -> String {
        use base64::Engine;
        let data = self.data.replace("\r\n", "\n");
        let boundary = data
            .split("boundary=\"")
            .nth(1)
            .and_then(|b| b.split('"').next())
            .unwrap_or_else(|| panic!("no MIME boundary in:\n{data}"));
        let part = data
            .split(&format!("--{boundary}"))
            .find(|p| p.contains("Content-Type: text/plain"))
            .unwrap_or_else(|| panic!("no text part in:\n{data}"));
        let (head, body) = part
            .trim_start_matches('\n')
            .split_once("\n\n")
            .expect("part head and body");
        let encoding = head.to_ascii_lowercase();
        if encoding.contains("content-transfer-encoding: base64") {
            let compact: String = body.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .expect("base64 body");
            String::from_utf8(bytes)
                .expect("UTF-8 body")
                .replace("\r\n", "\n")
        } else if encoding.contains("quoted-printable") {
            let joined = body.replace("=\n", "");
            let mut out = Vec::new();
            let bytes = joined.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'='
                    && i + 2 < bytes.len()
                    && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
                {
                    out.push(b);
                    i += 3;
                    continue;
                }
                out.push(bytes[i]);
                i += 1;
            }
            String::from_utf8(out).expect("UTF-8 body")
        } else {
            body.to_string()
        }
    }

    /// The 6-digit registration code.
    pub fn registration_code(&self) -> String {
        self.code_after("verification code is", 6, |c| c.is_ascii_digit())
    }

    /// The 8-character reset code.
    pub fn reset_code(&self) -> String {
        self.code_after("reset code is", 8, |c| {
            c.is_ascii_uppercase() || c.is_ascii_digit()
        })
    }
}

#[derive(Clone)]
pub struct SmtpSink {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<ReceivedMail>>>,
    arrived: Arc<Notify>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let addr = listener.local_addr().expect("addr");
        let sink = Self {
            addr,
            received: Arc::default(),
            arrived: Arc::new(Notify::new()),
        };
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = s.session(stream).await;
                });
            }
        });
        sink
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    async fn session(&self, stream: tokio::net::TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
        let mut to = Vec::new();
        while let Some(line) = lines.next_line().await? {
            let upper = line.to_ascii_uppercase();
            if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                write
                    .write_all(b"250-sink.test\r\n250 8BITMIME\r\n")
                    .await?;
            } else if upper.starts_with("MAIL FROM")
                || upper.starts_with("RSET")
                || upper.starts_with("NOOP")
            {
                if upper.starts_with("RSET") {
                    to.clear();
                }
                write.write_all(b"250 OK\r\n").await?;
            } else if upper.starts_with("RCPT TO") {
                let addr = line[8..]
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string();
                to.push(addr);
                write.write_all(b"250 OK\r\n").await?;
            } else if upper == "DATA" {
                write.write_all(b"354 go ahead\r\n").await?;
                let mut data = String::new();
                while let Some(l) = lines.next_line().await? {
                    if l == "." {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                    data.push('\n');
                }
                self.received.lock().unwrap().push(ReceivedMail {
                    to: std::mem::take(&mut to),
                    data,
                });
                self.arrived.notify_waiters();
                write.write_all(b"250 queued\r\n").await?;
            } else if upper.starts_with("QUIT") {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else {
                write.write_all(b"502 not implemented\r\n").await?;
            }
        }
        Ok(())
    }

    pub fn all(&self) -> Vec<ReceivedMail> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) for a message to `to` whose subject contains `subject`.
    pub async fn wait_for(&self, to: &str, subject: &str) -> ReceivedMail {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.arrived.notified();
            if let Some(m) = self
                .all()
                .into_iter()
                .rev()
                .find(|m| m.to.iter().any(|t| t == to) && m.subject().contains(subject))
            {
                return m;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "no mail to {to} with subject {subject:?} within 10 s; got {:?}",
                    self.all()
                );
            }
        }
    }
}

/// A server that accepts connections and never says anything (to exercise timeouts).
pub async fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

/// An address where nothing listens (connections are refused).
pub fn refused_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// A server that mails through a fresh sink, with registration not needing a mailed code
/// (so tests can make users directly and watch only the mail they are about).
pub async fn app_with_mail() -> (crate::helpers::TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = crate::helpers::spawn_app_with(move |c| {
        c.smtp_url = Some(url);
        c.email_verification = Some(portcullis::config::EmailVerification::Off);
    })
    .await;
    (app, sink)
}
