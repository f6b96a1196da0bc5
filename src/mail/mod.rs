//! Outgoing mail through lettre: SMTP when configured, otherwise an outbox folder of `.eml`
//! files, or (dev mode) an in-process list readable at `GET /dev/outbox`.
//!
//! Requests that do not need the result hand mail to [`Mailer::send_in_background`]; a
//! failed delivery marks the mailer as failing for a while, so the next request that would
//! send mail gets a clear 503 instead of a silent black hole.

pub mod templates;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
    transport::smtp::authentication::Credentials,
};
use serde::Serialize;

use crate::i18n::{Lang, Texts};

/// How long a failed delivery keeps the mailer reported as failing.
const FAILING_FOR: Duration = Duration::from_secs(60);

/// One message to send: plain text plus an HTML alternative.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A message kept by the dev-mode outbox.
#[derive(Debug, Clone, Serialize)]
pub struct DevMessage {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub sent_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid mail settings: {0}")]
    Config(String),
    #[error("invalid address {0:?}")]
    Address(String),
    #[error("could not build the message: {0}")]
    Build(String),
    #[error("SMTP delivery failed: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("could not write to the outbox: {0}")]
    Io(#[from] std::io::Error),
    #[error("the mail server did not finish within {0:?} (timed out)")]
    Timeout(Duration),
}

/// Mail settings, taken from the server configuration.
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub smtp_url: Option<String>,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
    pub timeout: Duration,
    pub from: String,
    pub outbox_dir: PathBuf,
    pub dev: bool,
    /// The catalogues and brand the messages are written with.
    pub texts: Arc<Texts>,
}

enum Transport {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        shown: String,
    },
    Outbox(PathBuf),
    Memory(Mutex<Vec<DevMessage>>),
}

struct Inner {
    from: Mailbox,
    transport: Transport,
    /// Bound on one whole delivery. lettre's own timeout covers connecting but not a server
    /// that accepts and then says nothing, so every send also runs under this deadline.
    deadline: Duration,
    last_failure: Mutex<Option<Instant>>,
    texts: Arc<Texts>,
}

/// Sends mail. Cheap to clone.
#[derive(Clone)]
pub struct Mailer(Arc<Inner>);

impl Mailer {
    pub fn new(settings: &MailSettings) -> Result<Self, MailError> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|_| MailError::Address(settings.from.clone()))?;
        let transport = if settings.dev {
            Transport::Memory(Mutex::new(Vec::new()))
        } else if let Some(url) = &settings.smtp_url {
            let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map_err(|e| MailError::Config(format!("--smtp-url: {e}")))?
                .timeout(Some(settings.timeout));
            if let Some(user) = &settings.smtp_username {
                let pass = settings.smtp_password.clone().unwrap_or_default();
                builder = builder.credentials(Credentials::new(user.clone(), pass));
            }
            Transport::Smtp {
                transport: builder.build(),
                shown: redact_url(url),
            }
        } else {
            Transport::Outbox(settings.outbox_dir.clone())
        };
        Ok(Self(Arc::new(Inner {
            from,
            transport,
            deadline: settings.timeout * 3,
            last_failure: Mutex::new(None),
            texts: settings.texts.clone(),
        })))
    }

    /// The messages, written in `lang` (the server's default language when `None`).
    pub fn letters(&self, lang: Option<Lang>) -> templates::Letters<'_> {
        templates::Letters::new(&self.0.texts, lang.unwrap_or(self.0.texts.default_lang))
    }

    /// The catalogues and brand the messages (and pages) are written with.
    pub fn texts(&self) -> &Arc<Texts> {
        &self.0.texts
    }

    /// One phrase for the start-up line: where mail goes.
    pub fn describe(&self) -> String {
        match &self.0.transport {
            Transport::Smtp { shown, .. } => format!("SMTP {shown}"),
            Transport::Outbox(dir) => {
                format!("outbox folder {} (no SMTP configured)", dir.display())
            }
            Transport::Memory(_) => "dev outbox at GET /dev/outbox".into(),
        }
    }

    /// Sends now and reports the outcome.
    pub async fn send(&self, mail: OutgoingMail) -> Result<(), MailError> {
        let deadline = self.0.deadline;
        let result = match tokio::time::timeout(deadline, self.deliver(mail)).await {
            Ok(r) => r,
            Err(_) => Err(MailError::Timeout(deadline)),
        };
        let mut last = self
            .0
            .last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *last = if result.is_err() {
            Some(Instant::now())
        } else {
            None
        };
        result
    }

    /// Sends on a background task; failures are logged (without the message body, which may
    /// hold a code) and make [`Mailer::delivery_failing`] true for a minute.
    pub fn send_in_background(&self, mail: OutgoingMail) {
        let mailer = self.clone();
        tokio::spawn(async move {
            let subject = mail.subject.clone();
            if let Err(e) = mailer.send(mail).await {
                tracing::error!(error = %e, subject = %subject, hint = %setup_hint(&e), "mail delivery failed");
            }
        });
    }

    /// True while the most recent delivery failed less than a minute ago.
    pub fn delivery_failing(&self) -> bool {
        self.0
            .last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|t| t.elapsed() < FAILING_FOR)
    }

    /// The dev outbox's messages, newest last; `None` outside dev mode.
    pub fn dev_messages(&self) -> Option<Vec<DevMessage>> {
        match &self.0.transport {
            Transport::Memory(list) => Some(list.lock().unwrap_or_else(|p| p.into_inner()).clone()),
            _ => None,
        }
    }

    async fn deliver(&self, mail: OutgoingMail) -> Result<(), MailError> {
        if let Transport::Memory(list) = &self.0.transport {
            list.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(DevMessage {
                    to: mail.to,
                    subject: mail.subject,
                    text: mail.text,
                    sent_at: crate::clock::Clock::system().now(),
                });
            return Ok(());
        }
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|_| MailError::Address(mail.to.clone()))?;
        let message = Message::builder()
            .from(self.0.from.clone())
            .to(to)
            .subject(mail.subject)
            .multipart(MultiPart::alternative_plain_html(mail.text, mail.html))
            .map_err(|e| MailError::Build(e.to_string()))?;
        match &self.0.transport {
            Transport::Smtp { transport, .. } => {
                transport.send(message).await?;
                Ok(())
            }
            Transport::Outbox(dir) => {
                let dir = dir.clone();
                let bytes = message.formatted();
                let name = format!(
                    "{}-{}.eml",
                    crate::clock::Clock::system().now(),
                    crate::token::opaque::random_token(6)
                );
                // Written beside and renamed into place, so whatever picks `.eml` files up
                // never reads a half-written message.
                tokio::task::spawn_blocking(move || {
                    std::fs::create_dir_all(&dir)?;
                    let partial = dir.join(format!(".{name}.partial"));
                    std::fs::write(&partial, bytes)?;
                    std::fs::rename(&partial, dir.join(name))
                })
                .await
                .map_err(|e| MailError::Io(std::io::Error::other(e.to_string())))??;
                Ok(())
            }
            Transport::Memory(_) => Ok(()),
        }
    }
}

/// Hides a password in an SMTP URL for logs.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Turns a delivery failure into the likely cause and what to try (lldap-style setup hints).
pub fn setup_hint(err: &MailError) -> String {
    let text = match err {
        MailError::Smtp(e) => {
            let mut chain = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                chain.push_str(": ");
                chain.push_str(&s.to_string());
                source = s.source();
            }
            chain.to_lowercase()
        }
        other => other.to_string().to_lowercase(),
    };
    let hint = if text.contains("refused") {
        "connection refused: nothing listens at that host and port; check --smtp-url's host and port, and that the mail server runs"
    } else if text.contains("timed out") || text.contains("timeout") {
        "timed out: the server did not answer; check a firewall, the port, or raise --smtp-timeout"
    } else if text.contains("tls")
        || text.contains("certificate")
        || text.contains("handshake")
        || text.contains("corrupt message")
        || text.contains("invalid content type")
    {
        "TLS failed: use smtps:// for port 465 (implicit TLS) and smtp://…?tls=required for port 587 (STARTTLS); plain smtp:// only on trusted networks"
    } else if text.contains("auth")
        || text.contains("535")
        || text.contains("credentials")
        || text.contains("534")
    {
        "authentication rejected: check --smtp-username / --smtp-password (or the user:password in the URL)"
    } else if text.contains("dns")
        || text.contains("resolve")
        || text.contains("lookup")
        || text.contains("name or service")
    {
        "host not found: check the host name in --smtp-url"
    } else if text.contains("address") {
        "a sender or recipient address was refused: check --mail-from and the recipient"
    } else {
        "check --smtp-url, the credentials and the server's logs"
    };
    hint.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("smtps://bob:s3cret@mail.example.com:465"),
            "smtps://bob:***@mail.example.com:465"
        );
        assert_eq!(redact_url("smtp://127.0.0.1:25"), "smtp://127.0.0.1:25");
    }

    #[test]
    fn hints_name_the_likely_cause() {
        let io = |m: &str| MailError::Io(std::io::Error::other(m.to_string()));
        assert!(
            setup_hint(&io("Connection refused (os error 111)")).starts_with("connection refused")
        );
        assert!(setup_hint(&io("operation timed out")).starts_with("timed out"));
        assert!(
            setup_hint(&io("535 5.7.8 authentication failed"))
                .starts_with("authentication rejected")
        );
    }
}
