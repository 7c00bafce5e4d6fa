//! A small SMTP submission client (RFC 5321 with STARTTLS, RFC 3207, and
//! AUTH PLAIN/LOGIN, RFC 4954) for `smtp://` channels: one message per
//! connection, a deadline on the whole exchange. A mail crate would bring
//! its own TLS stack and many features DockNap does not use.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

use crate::model::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// TLS from the first byte (port 465).
    Implicit,
    /// STARTTLS, required.
    Explicit,
    /// None at all (a relay on a trusted network).
    None,
    /// Implicit on port 465, else STARTTLS when the server offers it.
    Auto,
}

#[derive(Clone, PartialEq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub from_name: Option<String>,
    pub to: Vec<String>,
    pub encryption: Encryption,
    pub subject: Option<String>,
}

impl SmtpConfig {
    /// `smtp://user:password@host:port/?from=a@x&to=b@y,c@z&encryption=auto|none|explicittls|implicittls&usestarttls=no&subject=…&fromname=…`
    pub fn from_url(u: &Url) -> Result<SmtpConfig, String> {
        let q = |k: &str| {
            u.query_pairs()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.into_owned())
                .filter(|v| !v.is_empty())
        };
        let host =
            u.host_str().filter(|h| !h.is_empty()).ok_or("smtp:// needs a host")?.trim_matches(['[', ']']).to_string();
        let from = q("from").or_else(|| q("fromaddress")).ok_or("smtp:// needs from=ADDRESS")?;
        let to: Vec<String> = q("to")
            .or_else(|| q("toaddresses"))
            .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        if to.is_empty() {
            return Err("smtp:// needs to=ADDRESS[,ADDRESS]".into());
        }
        for a in std::iter::once(&from).chain(&to) {
            if !a.contains('@') || a.chars().any(|c| c.is_whitespace() || c == '<' || c == '>' || c.is_control()) {
                return Err("an smtp:// address is not an e-mail address".into());
            }
        }
        let starttls = q("usestarttls").map(|v| !matches!(v.to_ascii_lowercase().as_str(), "no" | "false" | "0"));
        let encryption = match q("encryption").map(|e| e.to_ascii_lowercase()).as_deref() {
            None | Some("auto") if starttls == Some(false) => Encryption::None,
            None | Some("auto") => Encryption::Auto,
            Some("none") => Encryption::None,
            Some("explicittls" | "starttls") => Encryption::Explicit,
            Some("implicittls" | "tls" | "ssl") => Encryption::Implicit,
            Some(_) => return Err("smtp:// encryption must be auto, none, explicittls or implicittls".into()),
        };
        let dec = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        Ok(SmtpConfig {
            port: u.port().unwrap_or(if encryption == Encryption::Implicit { 465 } else { 25 }),
            host,
            username: Some(dec(u.username())).filter(|s| !s.is_empty()),
            password: u.password().map(dec),
            from,
            from_name: q("fromname"),
            to,
            encryption,
            subject: q("subject").or_else(|| q("title")),
        })
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One connection: its stream and what was read past the last reply.
struct Conn {
    io: Box<dyn Io>,
    buf: Vec<u8>,
}

/// An SMTP failure: the reply code when the server gave one (5xx is
/// permanent, 4xx and network trouble are worth retrying).
#[derive(Debug)]
pub struct SmtpError {
    pub code: Option<u16>,
    pub message: String,
}

fn err(message: impl Into<String>) -> SmtpError {
    SmtpError { code: None, message: message.into() }
}

impl Conn {
    /// Reads one (possibly multi-line) reply: its code and its lines.
    async fn reply(&mut self) -> Result<(u16, Vec<String>), SmtpError> {
        let mut lines = Vec::new();
        loop {
            let line = loop {
                if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = self.buf.drain(..=i).collect();
                    break String::from_utf8_lossy(&line).trim_end().to_string();
                }
                if self.buf.len() > 64 * 1024 {
                    return Err(err("the SMTP server sent an overlong line"));
                }
                let mut chunk = [0u8; 4096];
                let n =
                    self.io.read(&mut chunk).await.map_err(|e| err(format!("reading from the SMTP server: {e}")))?;
                if n == 0 {
                    return Err(err("the SMTP server closed the connection"));
                }
                self.buf.extend_from_slice(&chunk[..n]);
            };
            let code: u16 =
                line.get(..3).and_then(|c| c.parse().ok()).ok_or_else(|| err("the SMTP server's reply is not SMTP"))?;
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_string());
            if last {
                return Ok((code, lines));
            }
        }
    }

    async fn send(&mut self, line: &str) -> Result<(), SmtpError> {
        self.io
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .map_err(|e| err(format!("writing to the SMTP server: {e}")))
    }

    /// Sends a command and wants a reply of class `want` (2 or 3).
    async fn command(&mut self, line: &str, what: &str, want: u16) -> Result<Vec<String>, SmtpError> {
        self.send(line).await?;
        self.expect(what, want).await
    }

    async fn expect(&mut self, what: &str, want: u16) -> Result<Vec<String>, SmtpError> {
        let (code, lines) = self.reply().await?;
        if code / 100 != want {
            // The server's text can echo what we sent: keep the first line, cut short.
            let text: String = lines.first().map(|l| l.chars().take(120).collect()).unwrap_or_default();
            return Err(SmtpError {
                code: Some(code),
                message: format!("the SMTP server refused {what}: {code} {text}"),
            });
        }
        Ok(lines)
    }

    async fn tls(self, host: &str, tls: &Arc<rustls::ClientConfig>) -> Result<Conn, SmtpError> {
        if !self.buf.is_empty() {
            return Err(err("the SMTP server sent data before the TLS handshake"));
        }
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|_| err("the SMTP host is not a valid TLS name"))?;
        let stream = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, self.io)
            .await
            .map_err(|e| err(format!("TLS with the SMTP server failed: {e}")))?;
        Ok(Conn { io: Box::new(stream), buf: Vec::new() })
    }
}

/// RFC 2047 for a header that is not plain ASCII.
fn header_text(s: &str) -> String {
    if s.is_ascii() && !s.contains(['\r', '\n']) {
        s.to_string()
    } else {
        format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(s.replace(['\r', '\n'], " ")))
    }
}

/// The message as RFC 5322 text: UTF-8 body in base64 (no 8BITMIME needed,
/// and no line can start with a dot).
pub fn compose(c: &SmtpConfig, m: &Message, date: chrono::DateTime<chrono::Utc>) -> String {
    let from = match &c.from_name {
        Some(n) => format!("{} <{}>", header_text(n), c.from),
        None => c.from.clone(),
    };
    let subject = c.subject.clone().unwrap_or_else(|| m.title());
    let body = base64::engine::general_purpose::STANDARD.encode(m.text().replace('\n', "\r\n"));
    let wrapped: Vec<&str> =
        body.as_bytes().chunks(76).map(|l| std::str::from_utf8(l).expect("base64 is ASCII")).collect();
    let domain = c.from.rsplit('@').next().unwrap_or("docknap");
    format!(
        "From: {from}\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: <{}@{domain}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\nAuto-Submitted: auto-generated\r\n\r\n{}\r\n",
        c.to.join(", "),
        header_text(&subject),
        date.to_rfc2822(),
        m.id,
        wrapped.join("\r\n"),
    )
}

/// Delivers `m` to every recipient; the whole exchange within `timeout`.
pub async fn send(
    c: &SmtpConfig,
    m: &Message,
    tls: &Arc<rustls::ClientConfig>,
    timeout: Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), SmtpError> {
    tokio::time::timeout(timeout, exchange(c, m, tls, now))
        .await
        .unwrap_or_else(|_| Err(err(format!("the SMTP server did not finish within {} s", timeout.as_secs()))))
}

async fn exchange(
    c: &SmtpConfig,
    m: &Message,
    tls: &Arc<rustls::ClientConfig>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), SmtpError> {
    let tcp = TcpStream::connect((c.host.as_str(), c.port))
        .await
        .map_err(|e| err(format!("cannot connect to the SMTP server: {e}")))?;
    let mut conn = Conn { io: Box::new(tcp), buf: Vec::new() };
    let implicit = c.encryption == Encryption::Implicit || (c.encryption == Encryption::Auto && c.port == 465);
    if implicit {
        conn = conn.tls(&c.host, tls).await?;
    }
    conn.expect("the connection", 2).await?;
    let mut ext = conn.command("EHLO docknap", "EHLO", 2).await?;
    let offers = |ext: &[String], what: &str| ext.iter().any(|l| l.to_ascii_uppercase().starts_with(what));
    let mut secure = implicit;
    if !implicit && c.encryption != Encryption::None {
        if offers(&ext, "STARTTLS") {
            conn.command("STARTTLS", "STARTTLS", 2).await?;
            conn = conn.tls(&c.host, tls).await?;
            ext = conn.command("EHLO docknap", "EHLO", 2).await?;
            secure = true;
        } else if c.encryption == Encryption::Explicit {
            return Err(SmtpError {
                code: Some(554),
                message: "the SMTP server does not offer STARTTLS (encryption=explicittls)".into(),
            });
        }
    }
    if let Some(user) = &c.username {
        // Credentials go over TLS only, unless plain text was asked for by name.
        if !secure && c.encryption != Encryption::None {
            return Err(SmtpError {
                code: Some(554),
                message: "refusing to send the SMTP password without TLS (the server offers no STARTTLS)".into(),
            });
        }
        let password = c.password.clone().unwrap_or_default();
        let auth = ext
            .iter()
            .find(|l| l.to_ascii_uppercase().starts_with("AUTH"))
            .map(|l| l.to_ascii_uppercase())
            .unwrap_or_default();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        if auth.contains("PLAIN") || !auth.contains("LOGIN") {
            conn.command(&format!("AUTH PLAIN {}", b64(&format!("\0{user}\0{password}"))), "the login", 2).await?;
        } else {
            conn.command("AUTH LOGIN", "the login", 3).await?;
            conn.command(&b64(user), "the login", 3).await?;
            conn.command(&b64(&password), "the login", 2).await?;
        }
    }
    conn.command(&format!("MAIL FROM:<{}>", c.from), "the sender", 2).await?;
    for to in &c.to {
        conn.command(&format!("RCPT TO:<{to}>"), "a recipient", 2).await?;
    }
    conn.command("DATA", "DATA", 3).await?;
    conn.io
        .write_all(compose(c, m, now).as_bytes())
        .await
        .map_err(|e| err(format!("writing to the SMTP server: {e}")))?;
    conn.command(".", "the message", 2).await?;
    let _ = conn.command("QUIT", "QUIT", 2).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> Result<SmtpConfig, String> {
        SmtpConfig::from_url(&Url::parse(url).unwrap())
    }

    #[test]
    fn smtp_urls_read_like_shoutrrr_s() {
        let c = cfg(
            "smtp://me%40x.org:p%40ss@mail.example.com:587/?from=me@x.org&to=a@y.org,b@y.org&encryption=ExplicitTLS",
        )
        .unwrap();
        assert_eq!((c.host.as_str(), c.port, c.encryption), ("mail.example.com", 587, Encryption::Explicit));
        assert_eq!((c.username.as_deref(), c.password.as_deref()), (Some("me@x.org"), Some("p@ss")));
        assert_eq!(c.to, ["a@y.org", "b@y.org"]);
        assert_eq!(cfg("smtp://h/?fromaddress=a@b&toaddresses=c@d&encryption=implicittls").unwrap().port, 465);
        assert_eq!(cfg("smtp://h/?from=a@b&to=c@d&usestarttls=no").unwrap().encryption, Encryption::None);
        assert!(cfg("smtp://h/?from=a@b").is_err());
        assert!(cfg("smtp://h/?from=a@b&to=c%0d%0aRCPT@d").is_err(), "no command injection through an address");
    }

    #[test]
    fn a_composed_mail_has_encoded_headers_and_a_base64_body() {
        let c = cfg("smtp://h/?from=a@b.org&to=c@d").unwrap();
        let n = crate::model::Notice::new(crate::model::EventKind::HostRecovered, chrono::Utc::now(), true, "back: ✓");
        let m = Message { notices: vec![n], id: "d7".into(), link: None, test: false };
        let mail = compose(&c, &m, chrono::Utc::now());
        assert!(mail.contains("Message-ID: <d7@b.org>"));
        assert!(mail.contains("Content-Transfer-Encoding: base64"));
        assert!(mail.lines().all(|l| !l.starts_with('.')));
    }
}
