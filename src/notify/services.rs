//! Channel URLs in the Shoutrrr convention (what Watchtower's users already
//! write) and the request each service's API documents for one message.
//! Pure: no I/O, so every service's request is unit-tested here.

use base64::Engine as _;
use url::Url;

use crate::model::Message;

/// A channel URL, understood.
#[derive(Clone, PartialEq)]
pub enum Service {
    /// `discord://TOKEN@WEBHOOK_ID`: an execute-webhook call.
    Discord { id: String, token: String },
    /// `slack://hook:A-B-C@webhook` (or the older `slack://A/B/C`): an incoming webhook.
    SlackHook { path: String },
    /// `slack://xoxb:TOKEN@CHANNEL`: the Web API's `chat.postMessage`.
    SlackBot { token: String, channel: String },
    /// `ntfy://[user:password@]host[:port]/topic[?scheme=http&priority=4]`.
    Ntfy { base: String, topic: String, auth: Option<String>, priority: Option<u8> },
    /// `gotify://host[:port][/path]/APP_TOKEN[?disabletls=yes&priority=5]`.
    Gotify { base: String, token: String, priority: Option<i64> },
    /// `telegram://BOT_TOKEN@telegram?chats=@channel,123456`.
    Telegram { token: String, chats: Vec<String> },
    /// `pushover://shoutrrr:API_TOKEN@USER_KEY/?devices=a,b&priority=1`.
    Pushover { token: String, user: String, devices: Vec<String>, priority: Option<i8> },
    /// `smtp://user:password@host:port/?from=…&to=…[&encryption=…]`.
    Smtp(super::smtp::SmtpConfig),
    /// `generic+https://host/path` (or `generic+http://`, `generic://` = https): the contract's JSON body.
    Webhook { url: String },
}

/// One HTTP request, as a service documents it.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCall {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// A Slack Web API call answers 200 with `{"ok": false}` on failure.
    pub check_ok_field: bool,
}

impl HttpCall {
    fn json(url: String, body: serde_json::Value) -> HttpCall {
        HttpCall {
            url,
            headers: Vec::new(),
            content_type: "application/json",
            body: body.to_string().into_bytes(),
            check_ok_field: false,
        }
    }
}

/// Where the hosted services live. Tests point them at a loopback server
/// (`DOCKNAP_NOTIFY_TEST_BASE_URL`, for tests only); everyone else gets the real hosts.
#[derive(Debug, Clone, Default)]
pub struct Hosts {
    pub test_base: Option<String>,
}

impl Hosts {
    fn at(&self, real: &str) -> String {
        self.test_base.clone().unwrap_or_else(|| real.to_string())
    }
}

/// Why a URL is refused (names the part, never echoes a secret).
pub type UrlError = String;

/// A pasted Discord or Slack webhook address becomes its Shoutrrr URL; any
/// other URL is returned as it is.
pub fn normalize(url: &str) -> String {
    let url = url.trim();
    for prefix in ["https://discord.com/api/webhooks/", "https://discordapp.com/api/webhooks/"] {
        if let Some(rest) = url.strip_prefix(prefix) {
            if let Some((id, token)) = rest.split('?').next().unwrap_or("").split_once('/') {
                return format!("discord://{}@{id}", token.trim_end_matches('/'));
            }
        }
    }
    if let Some(rest) = url.strip_prefix("https://hooks.slack.com/services/") {
        let parts: Vec<&str> = rest.split('?').next().unwrap_or("").trim_end_matches('/').split('/').collect();
        if parts.len() == 3 {
            return format!("slack://hook:{}@webhook", parts.join("-"));
        }
    }
    url.to_string()
}

fn query(u: &Url, key: &str) -> Option<String> {
    u.query_pairs().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.into_owned()).filter(|v| !v.is_empty())
}

fn decoded(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn yes(v: Option<String>) -> Option<bool> {
    v.map(|v| matches!(v.to_ascii_lowercase().as_str(), "yes" | "true" | "1"))
}

fn list(v: Option<String>) -> Vec<String> {
    v.map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()).unwrap_or_default()
}

/// Parses a (normalised) channel URL. The error names what is wrong
/// without repeating the URL (it holds secrets).
pub fn parse(raw: &str) -> Result<Service, UrlError> {
    let u = Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
    let host = u.host_str().unwrap_or("").to_string();
    let user = decoded(u.username());
    let password = u.password().map(decoded);
    let path: Vec<String> =
        u.path_segments().map(|s| s.filter(|p| !p.is_empty()).map(decoded).collect()).unwrap_or_default();
    match u.scheme() {
        "discord" => {
            if user.is_empty() || host.is_empty() {
                return Err("discord:// needs TOKEN@WEBHOOK_ID".into());
            }
            Ok(Service::Discord { id: host, token: user })
        }
        "slack" => {
            // hook:A-B-C@webhook, xoxb:TOKEN@CHANNEL, or the legacy A/B/C.
            let parts: Vec<String> = if let Some(pw) = password.as_deref().filter(|_| user == "hook") {
                pw.split(['-', '/']).map(str::to_string).collect()
            } else if matches!(user.as_str(), "xoxb" | "xoxp") {
                let token = format!("{user}-{}", password.clone().unwrap_or_default());
                if host.is_empty() || password.is_none() {
                    return Err("slack://xoxb:TOKEN@CHANNEL needs the token and the channel".into());
                }
                return Ok(Service::SlackBot { token, channel: host.to_uppercase() });
            } else {
                std::iter::once(host.to_uppercase()).chain(path.iter().cloned()).collect()
            };
            if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric())) {
                return Err(
                    "slack:// needs a webhook token (hook:A-B-C@webhook) or a bot token (xoxb:TOKEN@CHANNEL)".into()
                );
            }
            Ok(Service::SlackHook { path: parts.join("/") })
        }
        "ntfy" => {
            let scheme = query(&u, "scheme").unwrap_or_else(|| "https".into());
            if !matches!(scheme.as_str(), "http" | "https") || host.is_empty() || path.is_empty() {
                return Err("ntfy:// needs HOST/TOPIC (scheme=http or https)".into());
            }
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let prefix = &path[..path.len() - 1];
            let base = format!("{scheme}://{host}{port}{}", prefix.iter().map(|p| format!("/{p}")).collect::<String>());
            let auth = match (user.as_str(), password.as_deref()) {
                ("", Some(token)) => Some(format!("Bearer {token}")),
                ("", None) => None,
                (u, p) => Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{}", p.unwrap_or("")))
                )),
            };
            let priority = query(&u, "priority").map(|p| ntfy_priority(&p)).transpose()?;
            Ok(Service::Ntfy { base, topic: path[path.len() - 1].clone(), auth, priority })
        }
        "gotify" => {
            if host.is_empty() || path.is_empty() {
                return Err("gotify:// needs HOST/APP_TOKEN".into());
            }
            let scheme = if yes(query(&u, "disabletls")).unwrap_or(false) { "http" } else { "https" };
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let prefix = &path[..path.len() - 1];
            let base = format!("{scheme}://{host}{port}{}", prefix.iter().map(|p| format!("/{p}")).collect::<String>());
            let priority = query(&u, "priority")
                .map(|p| p.parse::<i64>().map_err(|_| "gotify priority must be a number".to_string()))
                .transpose()?;
            Ok(Service::Gotify { base, token: path[path.len() - 1].clone(), priority })
        }
        "telegram" => {
            // The bot token is ID:SECRET, which a URL reads as user:password.
            let token = match &password {
                Some(p) => format!("{user}:{p}"),
                None => user.clone(),
            };
            let chats = list(query(&u, "chats").or_else(|| query(&u, "channels")));
            if token.is_empty() || chats.is_empty() {
                return Err("telegram:// needs BOT_TOKEN@telegram?chats=CHAT[,CHAT]".into());
            }
            Ok(Service::Telegram { token, chats })
        }
        "pushover" => {
            let token = password.unwrap_or_default();
            if token.is_empty() || host.is_empty() {
                return Err("pushover:// needs shoutrrr:API_TOKEN@USER_KEY".into());
            }
            let priority = query(&u, "priority")
                .map(|p| {
                    p.parse::<i8>()
                        .ok()
                        .filter(|p| (-2..=1).contains(p))
                        .ok_or("pushover priority must be -2 to 1".to_string())
                })
                .transpose()?;
            Ok(Service::Pushover { token, user: host, devices: list(query(&u, "devices")), priority })
        }
        "smtp" => super::smtp::SmtpConfig::from_url(&u).map(Service::Smtp),
        "generic" | "generic+https" | "generic+http" => {
            if host.is_empty() {
                return Err("a webhook URL needs a host".into());
            }
            let scheme = if u.scheme() == "generic+http" { "http" } else { "https" };
            let rest = &raw[raw.find("://").expect("parsed") + 3..];
            Ok(Service::Webhook { url: format!("{scheme}://{rest}") })
        }
        other => Err(format!(
            "unknown scheme '{other}' (use discord, slack, ntfy, gotify, telegram, pushover, smtp or generic+https)"
        )),
    }
}

fn ntfy_priority(p: &str) -> Result<u8, UrlError> {
    match p.to_ascii_lowercase().as_str() {
        "1" | "min" => Ok(1),
        "2" | "low" => Ok(2),
        "3" | "default" => Ok(3),
        "4" | "high" => Ok(4),
        "5" | "max" | "urgent" => Ok(5),
        _ => Err("ntfy priority must be 1 to 5 (or min, low, default, high, max)".into()),
    }
}

/// Cuts `s` to at most `max` characters (services refuse longer texts).
fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max.saturating_sub(1)) {
        Some((i, _)) if s.chars().count() > max => format!("{}…", &s[..i]),
        _ => s.to_string(),
    }
}

impl Service {
    /// The HTTP requests that deliver `m` (telegram: one per chat), or none
    /// for SMTP (see `smtp`).
    pub fn http_calls(&self, m: &Message, hosts: &Hosts) -> Vec<HttpCall> {
        let title = m.title();
        let text = m.text();
        let trouble = m.event().is_trouble();
        match self {
            // Execute Webhook: `content` up to 2000 characters.
            Service::Discord { id, token } => vec![HttpCall::json(
                format!("{}/api/webhooks/{id}/{token}", hosts.at("https://discord.com")),
                serde_json::json!({ "content": cut(&format!("**{title}**\n{text}"), 2000) }),
            )],
            Service::SlackHook { path } => vec![HttpCall::json(
                format!("{}/services/{path}", hosts.at("https://hooks.slack.com")),
                serde_json::json!({ "text": format!("*{title}*\n{text}") }),
            )],
            Service::SlackBot { token, channel } => {
                let mut call = HttpCall::json(
                    format!("{}/api/chat.postMessage", hosts.at("https://slack.com")),
                    serde_json::json!({ "channel": channel, "text": format!("*{title}*\n{text}") }),
                );
                call.content_type = "application/json; charset=utf-8";
                call.headers.push(("authorization", format!("Bearer {token}")));
                call.check_ok_field = true;
                vec![call]
            }
            // Publishing as JSON: POST to the server root with the topic in the body.
            Service::Ntfy { base, topic, auth, priority } => {
                let mut body = serde_json::json!({
                    "topic": topic,
                    "title": title,
                    // ntfy turns a message over 4,096 bytes into an attachment.
                    "message": cut(&text, 2000),
                    "tags": [if trouble { "warning" } else { "white_check_mark" }],
                    "priority": priority.unwrap_or(if trouble { 4 } else { 3 }),
                });
                if let Some(link) = &m.link {
                    body["click"] = format!("{link}/audit").into();
                }
                let mut call = HttpCall::json(format!("{base}/"), body);
                if let Some(a) = auth {
                    call.headers.push(("authorization", a.clone()));
                }
                vec![call]
            }
            Service::Gotify { base, token, priority } => {
                let mut call = HttpCall::json(
                    format!("{base}/message"),
                    serde_json::json!({ "title": title, "message": text, "priority": priority.unwrap_or(if trouble { 8 } else { 4 }) }),
                );
                call.headers.push(("x-gotify-key", token.clone()));
                vec![call]
            }
            // sendMessage: `text` up to 4096 characters, one call per chat.
            Service::Telegram { token, chats } => chats
                .iter()
                .map(|chat| {
                    HttpCall::json(
                        format!("{}/bot{token}/sendMessage", hosts.at("https://api.telegram.org")),
                        serde_json::json!({ "chat_id": chat, "text": cut(&format!("{title}\n{text}"), 4096) }),
                    )
                })
                .collect(),
            // messages.json takes form fields; message up to 1024, title up to 250 characters.
            Service::Pushover { token, user, devices, priority } => {
                let mut form = vec![
                    ("token", token.clone()),
                    ("user", user.clone()),
                    ("title", cut(&title, 250)),
                    ("message", cut(&text, 1024)),
                ];
                if !devices.is_empty() {
                    form.push(("device", devices.join(",")));
                }
                if let Some(p) = priority {
                    form.push(("priority", p.to_string()));
                }
                vec![HttpCall {
                    url: format!("{}/1/messages.json", hosts.at("https://api.pushover.net")),
                    headers: Vec::new(),
                    content_type: "application/x-www-form-urlencoded",
                    body: serde_urlencoded::to_string(&form).expect("strings encode").into_bytes(),
                    check_ok_field: false,
                }]
            }
            Service::Webhook { url } => vec![HttpCall::json(url.clone(), m.webhook_body())],
            Service::Smtp(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventKind, Notice};

    fn message() -> Message {
        let mut n =
            Notice::new(EventKind::ActionFailed, "2026-01-01T00:00:00Z".parse().unwrap(), false, "stop failed: boom");
        n.host = Some("local".into());
        n.target_type = Some("stack".into());
        n.target_id = Some("web".into());
        n.action = Some("stop".into());
        Message { notices: vec![n], id: "msg_1".into(), link: None, test: false }
    }

    fn one(url: &str) -> HttpCall {
        let mut calls = parse(&normalize(url)).unwrap().http_calls(&message(), &Hosts::default());
        assert_eq!(calls.len(), 1);
        calls.remove(0)
    }

    fn json(c: &HttpCall) -> serde_json::Value {
        serde_json::from_slice(&c.body).unwrap()
    }

    #[test]
    fn pasted_discord_and_slack_webhooks_become_their_shoutrrr_urls() {
        assert_eq!(normalize("https://discord.com/api/webhooks/123/abc-DEF"), "discord://abc-DEF@123");
        assert_eq!(
            normalize("https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"),
            "slack://hook:T00000000-B00000000-XXXXXXXXXXXXXXXXXXXXXXXX@webhook"
        );
        assert_eq!(normalize("ntfy://ntfy.sh/t"), "ntfy://ntfy.sh/t");
    }

    #[test]
    fn discord_is_an_execute_webhook_call_with_content() {
        let c = one("discord://tok@123");
        assert_eq!(c.url, "https://discord.com/api/webhooks/123/tok");
        assert!(json(&c)["content"].as_str().unwrap().contains("stop failed: boom"));
    }

    #[test]
    fn slack_webhooks_old_and_new_and_the_bot_api() {
        let hook = one("slack://hook:T00000000-B00000000-XXXXXXXXXXXXXXXXXXXXXXXX@webhook");
        assert_eq!(hook.url, "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX");
        assert_eq!(one("slack://T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX").url, hook.url);
        assert!(json(&hook)["text"].as_str().unwrap().contains("boom"));
        let bot = one("slack://xoxb:1234-5678-abcd@C0123456");
        assert_eq!(bot.url, "https://slack.com/api/chat.postMessage");
        assert_eq!(bot.headers, [("authorization", "Bearer xoxb-1234-5678-abcd".to_string())]);
        assert_eq!(json(&bot)["channel"], "C0123456");
        assert!(bot.check_ok_field);
    }

    #[test]
    fn ntfy_publishes_json_to_the_root_with_basic_or_token_auth() {
        let c = one("ntfy://alice:pw@ntfy.example.com/alerts?priority=high");
        assert_eq!(c.url, "https://ntfy.example.com/");
        let b = json(&c);
        assert_eq!((b["topic"].as_str(), b["priority"].as_u64()), (Some("alerts"), Some(4)));
        assert_eq!(c.headers, [("authorization", "Basic YWxpY2U6cHc=".to_string())]);
        let t = one("ntfy://:tk_abc@127.0.0.1:8080/alerts?scheme=http");
        assert_eq!(t.url, "http://127.0.0.1:8080/");
        assert_eq!(t.headers, [("authorization", "Bearer tk_abc".to_string())]);
    }

    #[test]
    fn gotify_posts_a_message_with_the_app_token_in_its_header() {
        let c = one("gotify://push.example.com/sub/AbCdEf?priority=5");
        assert_eq!(c.url, "https://push.example.com/sub/message");
        assert_eq!(c.headers, [("x-gotify-key", "AbCdEf".to_string())]);
        assert_eq!(json(&c)["priority"], 5);
    }

    #[test]
    fn telegram_sends_one_message_per_chat() {
        let calls = parse("telegram://123456:ABC-def@telegram?chats=@ops,-100200")
            .unwrap()
            .http_calls(&message(), &Hosts::default());
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].url, "https://api.telegram.org/bot123456:ABC-def/sendMessage");
        assert_eq!(json(&calls[1])["chat_id"], "-100200");
    }

    #[test]
    fn pushover_posts_form_fields() {
        let c = one("pushover://shoutrrr:apptoken@userkey/?devices=phone,tablet&priority=1");
        assert_eq!(c.url, "https://api.pushover.net/1/messages.json");
        assert_eq!(c.content_type, "application/x-www-form-urlencoded");
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&c.body).unwrap();
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(
            (get("token"), get("user"), get("device"), get("priority")),
            (Some("apptoken"), Some("userkey"), Some("phone,tablet"), Some("1"))
        );
    }

    #[test]
    fn webhooks_post_the_contract_body_to_the_url_after_generic() {
        let c = one("generic+https://hooks.example.com/in/abc?x=1");
        assert_eq!(c.url, "https://hooks.example.com/in/abc?x=1");
        let b = json(&c);
        for key in ["event", "at", "host", "target_type", "target_id", "action", "ok", "message", "details"] {
            assert!(b.get(key).is_some(), "{key} missing: {b}");
        }
        assert_eq!(one("generic+http://127.0.0.1:9/x").url, "http://127.0.0.1:9/x");
    }

    #[test]
    fn bad_urls_are_refused_without_repeating_their_secrets() {
        for bad in
            ["discord://@123", "slack://nope", "telegram://tok@telegram", "ftp://x/y", "ntfy://host", "pushover://u"]
        {
            let e = parse(bad).err().unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(!e.contains("tok@"), "{e}");
        }
    }

    #[test]
    fn a_test_base_url_replaces_the_hosted_services_address() {
        let hosts = Hosts { test_base: Some("http://127.0.0.1:5555".into()) };
        let c = parse("discord://t@1").unwrap().http_calls(&message(), &hosts);
        assert_eq!(c[0].url, "http://127.0.0.1:5555/api/webhooks/1/t");
    }
}
