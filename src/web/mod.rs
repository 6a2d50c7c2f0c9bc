//! The dashboard and API on the box: server-rendered pages that read well on a phone, with no
//! assets from the internet and no JavaScript; a JSON API under /api/v1; /healthz; /metrics in
//! Prometheus text format. One task serves it inside the daemon; pages read the database through
//! a read-only connection of their own, and the few writes (opt-outs) go through the store.

pub mod auth;
mod listener;
mod pages;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::domain::{E164, LeadId, LeadState, OptOutSource};
use crate::flow::StateChange;
use crate::leads::token::{TokenError, TranscriptToken};
use crate::modem::ModemHandle;
use crate::store::{self, LeadFilter, Store, Tx};
use auth::Gate;
use listener::Peer;

/// Database reads at once (each on a blocking thread with a read-only connection of its own):
/// requests beyond it wait their turn instead of each holding a thread and a connection, so the
/// memory they take does not grow with the requests that arrive at once.
pub const MAX_READS: usize = 4;

/// The largest request body read: the dashboard's forms hold a password or a phone number and a
/// token, so anything bigger is not one of them (axum's default would buffer 2 MB a request).
const MAX_BODY: usize = 16 * 1024;

/// What every handler needs.
pub struct Web {
    /// Wakes the lead deliverer (a state change to tell) and the outboxes (a reply to send).
    pub wakers: crate::wake::Wakers,
    pub config: Arc<Config>,
    pub store: Store,
    pub database: PathBuf,
    pub modems: Vec<ModemHandle>,
    pub link_key: Vec<u8>,
    pub gate: Gate,
    /// Where password checks run, one at a time.
    pub checker: auth::PasswordChecker,
    /// Places for database reads at once ([`MAX_READS`]).
    pub reads: tokio::sync::Semaphore,
    /// The wall clock pages and links are dated by.
    pub clock: crate::clock::Clock,
}

type Shared = Arc<Web>;

/// Why a request failed, as the page or the API says it.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("database: {0}")]
    Store(#[from] store::Error),
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        warn!(error = %self, "dashboard request failed");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Html(pages::message_page(
                "Something went wrong",
                &format!("{self}. The log (`journalctl -u textback`) has more."),
            )),
        )
            .into_response()
    }
}

impl Web {
    /// Runs `f` on a fresh read-only connection, off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> Result<T, store::Error> + Send + 'static,
    ) -> Result<T, WebError> {
        // The semaphore is never closed, so `acquire` fails only if it were: then read anyway.
        let _place = self.reads.acquire().await.ok();
        let database = self.database.clone();
        tokio::task::spawn_blocking(move || {
            let connection = store::open_read_only(&database)?;
            f(&Tx::reader(&connection))
        })
        .await
        .map_err(|err| WebError::Internal(format!("a database read stopped: {err}")))?
        .map_err(WebError::from)
    }

    fn secure_cookies(&self) -> bool {
        self.config.dashboard.public_url.starts_with("https://")
    }

    /// The session a request carries, if open and opened under the password set now (a
    /// password change ends every session).
    async fn session(&self, headers: &HeaderMap) -> Result<Option<auth::Session>, WebError> {
        let Some(id) = headers
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|c| auth::cookie(c, auth::SESSION_COOKIE))
        else {
            return Ok(None);
        };
        let stored = self.read(|tx| tx.setting(auth::PASSWORD_SETTING)).await?;
        Ok(self
            .gate
            .session(id, &auth::password_fingerprint(stored.as_deref())))
    }

    /// The client a request is from: the connection's peer, or, when that peer is the
    /// configured `dashboard.trusted_proxy`, the address the proxy put last in
    /// X-Forwarded-For (the entries before it are the client's own say, not believed).
    fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let unmapped = |ip: IpAddr| match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let from_proxy = self
            .config
            .dashboard
            .trusted_proxy
            .is_some_and(|proxy| unmapped(proxy) == unmapped(peer));
        if !from_proxy {
            return peer;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.rsplit(',').next())
            .map(str::trim)
            .and_then(|entry| {
                entry
                    .parse::<IpAddr>()
                    .ok()
                    .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
            });
        match forwarded {
            Some(client) => client,
            None => {
                debug!(%peer, "a request from the trusted proxy without X-Forwarded-For: judged by the proxy's address");
                peer
            }
        }
    }

    /// Whether a request carries the API's bearer token.
    async fn api_allowed(&self, headers: &HeaderMap) -> Result<bool, WebError> {
        let Some(token) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return Ok(false);
        };
        let given = auth::token_digest(token.trim());
        let stored = self.read(|tx| tx.setting(auth::API_TOKEN_SETTING)).await?;
        Ok(stored.is_some_and(|stored| auth::same(&stored, &given)))
    }
}

/// Serves the dashboard on `listener` until `token` is cancelled.
pub async fn serve(listener: tokio::net::TcpListener, web: Web, token: CancellationToken) {
    let shared = Arc::new(web);
    let app = router(shared);
    if let Ok(address) = listener.local_addr() {
        info!(%address, "dashboard listening");
    }
    let served = axum::serve(
        listener::Limited::new(listener),
        app.into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(async move { token.cancelled().await })
    .await;
    if let Err(err) = served {
        warn!(error = %err, "the dashboard stopped");
    }
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/login", get(login_form).post(login))
        .route("/login/link/{token}", get(login_link))
        .route("/logout", post(logout))
        .route("/", get(home_page))
        .route("/leads", get(leads_page))
        .route("/leads/{id}/reply", post(lead_reply))
        .route("/calls/{id}/called-back", post(call_called_back))
        .route("/leads/{id}", get(lead_page))
        .route("/leads/{id}/state", post(lead_state_form))
        .route("/t/{token}", get(transcript_link))
        .route("/calls", get(calls_page))
        .route("/status", get(status_page))
        .route("/opt-outs", get(opt_outs_page).post(opt_out_add))
        .route("/opt-outs/remove", post(opt_out_remove))
        .route("/config", get(config_page))
        .route("/api/v1/leads", get(api_leads))
        .route("/api/v1/leads/{id}", get(api_lead))
        .route("/api/v1/leads/{id}/state", post(api_lead_state))
        .route("/api/v1/calls", get(api_calls))
        .route("/api/v1/status", get(api_status))
        .route("/api/v1/opt-outs", get(api_opt_outs))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(shared)
}

/// Headers on every response (pages, API, errors, redirects):
/// - a Content-Security-Policy that allows nothing but the pages' one stylesheet (by its hash),
///   forms posted to this site, and no framing: an SMS body that slipped past escaping still
///   could not run or load anything;
/// - `X-Frame-Options: DENY` for browsers that predate `frame-ancestors`, `nosniff`, and no
///   Referer (transcript links are credentials);
/// - `Cache-Control: no-store`: almost every page holds callers' numbers and words, so none is
///   kept by a browser or a proxy.
async fn security_headers(mut response: Response) -> Response {
    static POLICY: std::sync::OnceLock<HeaderValue> = std::sync::OnceLock::new();
    let policy = POLICY.get_or_init(|| {
        let policy = format!(
            "default-src 'none'; style-src '{}'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
            pages::style_hash()
        );
        HeaderValue::from_str(&policy)
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
    });
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, policy.clone());
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(pages::message_page("Not found", "There is no such page.")),
    )
        .into_response()
}

async fn healthz(State(web): State<Shared>) -> Response {
    match web.read(|tx| tx.count_rows("calls")).await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("database unreadable: {err}\n"),
        )
            .into_response(),
    }
}

// --- login -------------------------------------------------------------------------------------

async fn login_form(State(web): State<Shared>) -> Result<Response, WebError> {
    let nonce = auth::random_token(24).map_err(|err| WebError::Internal(err.to_string()))?;
    let has_password = web
        .read(|tx| tx.setting(auth::PASSWORD_SETTING))
        .await?
        .is_some();
    login_response(&web, &nonce, has_password, None, StatusCode::OK)
}

fn login_response(
    web: &Web,
    nonce: &str,
    has_password: bool,
    problem: Option<&str>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let mut response = (
        status,
        Html(pages::login_page(nonce, has_password, problem)),
    )
        .into_response();
    let cookie = auth::set_cookie(auth::LOGIN_COOKIE, nonce, web.secure_cookies(), Some(600));
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|err| WebError::Internal(err.to_string()))?,
    );
    Ok(response)
}

#[derive(Deserialize)]
struct LoginForm {
    password: String,
    csrf: String,
}

/// Adds `Retry-After` (whole seconds, at least one) to a refusal.
fn retry_after(mut response: Response, wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

async fn login(
    State(web): State<Shared>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let address = web.client_address(peer.ip(), &headers);
    let nonce = auth::random_token(24).map_err(|err| WebError::Internal(err.to_string()))?;
    let stored = web.read(|tx| tx.setting(auth::PASSWORD_SETTING)).await?;
    let posted_from_our_form = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| auth::cookie(c, auth::LOGIN_COOKIE))
        .is_some_and(|cookie| auth::same(cookie.as_bytes(), form.csrf.as_bytes()));
    if !posted_from_our_form {
        return login_response(
            &web,
            &nonce,
            stored.is_some(),
            Some("The form had expired. Please try again."),
            StatusCode::FORBIDDEN,
        );
    }
    let Some(stored) = stored else {
        return login_response(&web, &nonce, false, None, StatusCode::FORBIDDEN);
    };
    // Counted before the check, under one lock: attempts at once cannot all see room.
    let counted = match web.gate.count_check(address, Instant::now()) {
        Ok(counted) => counted,
        Err(refusal) => {
            let (problem, status, wait) = match refusal {
                auth::Refusal::Address { retry_after } => {
                    warn!(%address, "dashboard login refused: too many wrong passwords from this address");
                    (
                        format!(
                            "Too many wrong passwords from this address. Wait {} minutes, or on the box run: textback dashboard login-link",
                            retry_after.as_secs().div_ceil(60).max(1)
                        ),
                        StatusCode::TOO_MANY_REQUESTS,
                        retry_after,
                    )
                }
                auth::Refusal::Box { retry_after } => {
                    warn!(%address, "dashboard login refused: too many password checks on this box this minute");
                    (
                        "Too many login attempts on this box just now. Wait a minute, or on the box run: textback dashboard login-link".to_string(),
                        StatusCode::TOO_MANY_REQUESTS,
                        retry_after,
                    )
                }
                auth::Refusal::Full => {
                    warn!(%address, "dashboard login refused: too many addresses are trying passwords");
                    (
                        "Too many login attempts on this box just now. Try again in a few minutes, or on the box run: textback dashboard login-link".to_string(),
                        StatusCode::SERVICE_UNAVAILABLE,
                        auth::CHECK_WINDOW,
                    )
                }
            };
            let response = login_response(&web, &nonce, true, Some(&problem), status)?;
            return Ok(retry_after(response, wait));
        }
    };
    let fingerprint = auth::password_fingerprint(Some(&stored));
    let stored = String::from_utf8_lossy(&stored).into_owned();
    let answer = match web.checker.check(stored, form.password) {
        Ok(answer) => answer,
        Err(busy) => {
            web.gate.uncount(counted);
            warn!(%address, error = %busy, "dashboard login refused: the password checker is busy");
            let response = login_response(
                &web,
                &nonce,
                true,
                Some("Too many logins at once. Try again in a few seconds."),
                StatusCode::SERVICE_UNAVAILABLE,
            )?;
            return Ok(retry_after(response, Duration::from_secs(5)));
        }
    };
    // A checker thread that is gone answers nothing: no way in.
    let right = answer.await.unwrap_or(false);
    if !right {
        warn!(%address, "dashboard login: wrong password");
        return login_response(
            &web,
            &nonce,
            true,
            Some("That password is not right."),
            StatusCode::UNAUTHORIZED,
        );
    }
    web.gate.succeeded(address);
    info!(%address, "dashboard login");
    start_session(&web, fingerprint)
}

/// Opens a session and sends the visitor to the leads with its cookie.
fn start_session(web: &Web, fingerprint: Vec<u8>) -> Result<Response, WebError> {
    let session = web
        .gate
        .open_session(fingerprint)
        .map_err(|err| WebError::Internal(err.to_string()))?;
    let mut response = Redirect::to("/").into_response();
    let cookie = auth::set_cookie(auth::SESSION_COOKIE, &session, web.secure_cookies(), None);
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|err| WebError::Internal(err.to_string()))?,
    );
    Ok(response)
}

/// A one-time link from `textback dashboard login-link`: a session without a password, once,
/// within [`auth::LOGIN_LINK_VALID`]. Not a password check, so no limit on checks applies: the
/// owner on the box can always get in.
async fn login_link(
    State(web): State<Shared>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let address = web.client_address(peer.ip(), &headers);
    let now_ms = web.clock.now_ms();
    // Looked at on a read connection first, so that guesses never reach the writer.
    let wanted = token.clone();
    let plausible = web
        .read(move |tx| {
            Ok(tx
                .setting(auth::LOGIN_LINK_SETTING)?
                .is_some_and(|value| auth::login_link_matches(&value, &wanted, now_ms)))
        })
        .await?;
    let used = if plausible {
        // Used up in the same transaction that finds it, so two visits cannot both get in.
        web.store
            .run(move |tx| {
                let Some(value) = tx.setting(auth::LOGIN_LINK_SETTING)? else {
                    return Ok(None);
                };
                if !auth::login_link_matches(&value, &token, now_ms) {
                    return Ok(None);
                }
                tx.delete_setting(auth::LOGIN_LINK_SETTING)?;
                Ok(Some(tx.setting(auth::PASSWORD_SETTING)?))
            })
            .await?
    } else {
        None
    };
    match used {
        Some(stored) => {
            info!(%address, "dashboard login with a one-time link");
            start_session(&web, auth::password_fingerprint(stored.as_deref()))
        }
        None => {
            warn!(%address, "dashboard login link refused");
            Ok((
                StatusCode::FORBIDDEN,
                Html(pages::message_page(
                    "This login link does not work",
                    "It was used already, it is more than 15 minutes old, or a newer one replaced it. On the box, run: textback dashboard login-link",
                )),
            )
                .into_response())
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(web): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Ok(Some(session)) = web.session(&headers).await
        && auth::same(session.csrf.as_bytes(), form.csrf.as_bytes())
        && let Some(id) = headers
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|c| auth::cookie(c, auth::SESSION_COOKIE))
    {
        web.gate.close_session(id);
    }
    Redirect::to("/login").into_response()
}

/// The session, or the response that sends the visitor to log in.
async fn require(web: &Web, headers: &HeaderMap) -> Result<auth::Session, Box<Response>> {
    match web.session(headers).await {
        Ok(Some(session)) => Ok(session),
        Ok(None) => Err(Box::new(Redirect::to("/login").into_response())),
        Err(err) => Err(Box::new(err.into_response())),
    }
}

// --- pages -------------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct LeadQuery {
    profile: Option<String>,
    state: Option<String>,
    q: Option<String>,
}

fn filter(query: &LeadQuery) -> LeadFilter {
    let blank = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    LeadFilter {
        profile: blank(&query.profile),
        complete: match query.state.as_deref() {
            Some("complete") => Some(true),
            Some("incomplete") => Some(false),
            _ => None,
        },
        // The same parameter takes the business's states: ?state=won.
        lead_state: query.state.as_deref().and_then(LeadState::parse),
        search: blank(&query.q).map(|q| {
            // A number searched in its national form finds the E.164 one stored.
            E164::parse(&q).map(|n| n.to_string()).unwrap_or(q)
        }),
        limit: 200,
    }
}

async fn leads_page(
    State(web): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<LeadQuery>,
) -> Result<Response, WebError> {
    let session = match require(&web, &headers).await {
        Ok(session) => session,
        Err(response) => return Ok(*response),
    };
    let wanted = filter(&query);
    let leads = web.read(move |tx| tx.find_leads(&wanted)).await?;
    let profiles: Vec<(String, String)> = web
        .config
        .profiles
        .iter()
        .map(|p| (p.id.to_string(), p.name.clone()))
        .collect();
    Ok(Html(pages::leads_page(
        &session.csrf,
        &leads,
        &profiles,
        query.profile.as_deref(),
        query.state.as_deref(),
        query.q.as_deref(),
    ))
    .into_response())
}

async fn lead_view(web: &Web, id: i64) -> Result<Option<pages::LeadView>, WebError> {
    let config = web.config.clone();
    let now = web.clock.now();
    web.read(move |tx| {
        let Some(detail) = tx.lead(LeadId(id))? else {
            return Ok(None);
        };
        let messages = tx.conversation_messages(detail.lead.conversation)?;
        let deliveries = tx.deliveries(detail.lead.id)?;
        let events = tx.lead_events(detail.lead.id)?;
        let opted_out = match E164::parse(&detail.lead.caller) {
            Ok(caller) => tx.is_opted_out(&caller)?,
            Err(_) => false,
        };
        let business = config
            .profiles
            .iter()
            .find(|p| p.id.as_str() == detail.lead.profile)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| detail.lead.profile.clone());
        Ok(Some(pages::LeadView {
            business,
            detail,
            messages,
            deliveries,
            events,
            opted_out,
            now,
        }))
    })
    .await
}

async fn lead_page(
    State(web): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let session = match require(&web, &headers).await {
        Ok(session) => session,
        Err(response) => return Ok(*response),
    };
    match lead_view(&web, id).await? {
        Some(view) => Ok(Html(pages::lead_page(Some(&session.csrf), &view)).into_response()),
        None => Ok(not_found().await),
    }
}

#[derive(Deserialize)]
struct StateForm {
    csrf: String,
    state: String,
}

/// A state button on the lead's page.
async fn lead_state_form(
    State(web): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<StateForm>,
) -> Result<Response, WebError> {
    if let Err(response) = check_form(&web, &headers, &form.csrf).await {
        return Ok(*response);
    }
    let Some(state) = LeadState::parse(&form.state) else {
        return Ok((
            StatusCode::BAD_REQUEST,
            Html(pages::message_page(
                "Unknown state",
                "A lead is new, called_back, won or lost.",
            )),
        )
            .into_response());
    };
    let change = crate::flow::set_lead_state(
        &web.store,
        web.config.clone(),
        LeadId(id),
        state,
        "dashboard".to_string(),
        web.clock.now_ms(),
    )
    .await?;
    match change {
        StateChange::NoSuchLead => Ok(not_found().await),
        StateChange::Unchanged(_) | StateChange::Changed { .. } => {
            web.wakers.after(&crate::flow::After::default());
            Ok(Redirect::to(&format!("/leads/{id}")).into_response())
        }
    }
}

/// A transcript link from a lead summary: that one lead, read-only, without logging in.
async fn transcript_link(
    State(web): State<Shared>,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let now = web.clock.now().timestamp();
    let id = match TranscriptToken::verify(&web.link_key, &token, now) {
        Ok(id) => id,
        Err(TokenError::Expired { .. }) => {
            return Ok((
                StatusCode::GONE,
                Html(pages::message_page(
                    "This link has expired",
                    "Transcript links work for a limited time. The lead is still on the dashboard: log in to read it.",
                )),
            )
                .into_response());
        }
        Err(_) => {
            return Ok((
                StatusCode::FORBIDDEN,
                Html(pages::message_page(
                    "This link is not valid",
                    "Check that the whole link was copied. Leads are on the dashboard: log in to read them.",
                )),
            )
                .into_response());
        }
    };
    match lead_view(&web, id).await? {
        Some(view) => {
            // The link is a credential: `security_headers` keeps it out of other sites'
            // Referer headers and out of caches.
            Ok(Html(pages::lead_page(None, &view)).into_response())
        }
        None => Ok(not_found().await),
    }
}

async fn calls_page(State(web): State<Shared>, headers: HeaderMap) -> Result<Response, WebError> {
    let session = match require(&web, &headers).await {
        Ok(session) => session,
        Err(response) => return Ok(*response),
    };
    let calls = web.read(|tx| tx.recent_calls(200)).await?;
    Ok(Html(pages::calls_page(&session.csrf, &calls)).into_response())
}

/// Each modem's state and queue.
async fn modem_status(web: &Web) -> Result<Vec<pages::ModemStatus>, WebError> {
    let mut statuses = Vec::new();
    for handle in &web.modems {
        let id = handle.id().clone();
        let queued_id = id.clone();
        let queued = web.read(move |tx| tx.queued_count(&queued_id)).await?;
        statuses.push(pages::ModemStatus {
            id,
            state: handle.state(),
            queued,
        });
    }
    Ok(statuses)
}

async fn status_page(State(web): State<Shared>, headers: HeaderMap) -> Result<Response, WebError> {
    let session = match require(&web, &headers).await {
        Ok(session) => session,
        Err(response) => return Ok(*response),
    };
    let modems = modem_status(&web).await?;
    let sip = web.read(|tx| tx.sip_accounts()).await?;
    let faults = web.read(|tx| tx.recent_faults(50)).await?;
    let notices = web.read(|tx| tx.failing_notices(50)).await?;
    let balances = web.read(|tx| tx.balances()).await?;
    let self_tests = web.read(|tx| tx.last_self_tests()).await?;
    Ok(Html(pages::status_page(
        &session.csrf,
        &web.config,
        &pages::StatusFacts {
            modems: &modems,
            sip: &sip,
            faults: &faults,
            notices: &notices,
            balances: &balances,
            self_tests: &self_tests,
        },
    ))
    .into_response())
}

async fn opt_outs_page(
    State(web): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let session = match require(&web, &headers).await {
        Ok(session) => session,
        Err(response) => return Ok(*response),
    };
    let rows = web.read(|tx| tx.opt_outs()).await?;
    Ok(Html(pages::opt_outs_page(&session.csrf, &rows, None)).into_response())
}

#[derive(Deserialize)]
struct NumberForm {
    csrf: String,
    number: String,
}

/// Checks the session and the form's CSRF token; on failure, the response to send.
async fn check_form(
    web: &Web,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<auth::Session, Box<Response>> {
    let session = require(web, headers).await?;
    if !auth::same(session.csrf.as_bytes(), csrf.as_bytes()) {
        return Err(Box::new(
            (
                StatusCode::FORBIDDEN,
                Html(pages::message_page(
                    "The form had expired",
                    "Go back, reload the page and try again.",
                )),
            )
                .into_response(),
        ));
    }
    Ok(session)
}

async fn opt_out_add(
    State(web): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<NumberForm>,
) -> Result<Response, WebError> {
    let session = match check_form(&web, &headers, &form.csrf).await {
        Ok(session) => session,
        Err(response) => return Ok(*response),
    };
    let number = match E164::parse(&form.number) {
        Ok(number) => number,
        Err(err) => {
            let rows = web.read(|tx| tx.opt_outs()).await?;
            return Ok((
                StatusCode::BAD_REQUEST,
                Html(pages::opt_outs_page(
                    &session.csrf,
                    &rows,
                    Some(&format!("{:?}: {err}", form.number)),
                )),
            )
                .into_response());
        }
    };
    let at = web.clock.now_ms();
    web.store
        .run(move |tx| {
            tx.set_opt_out(&number, OptOutSource::Dashboard, at)?;
            tx.cancel_queued(&number, "opted out on the dashboard", at)?;
            Ok(())
        })
        .await?;
    Ok(Redirect::to("/opt-outs").into_response())
}

async fn opt_out_remove(
    State(web): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<NumberForm>,
) -> Result<Response, WebError> {
    if let Err(response) = check_form(&web, &headers, &form.csrf).await {
        return Ok(*response);
    }
    if let Ok(number) = E164::parse(&form.number) {
        web.store.run(move |tx| tx.clear_opt_out(&number)).await?;
    }
    Ok(Redirect::to("/opt-outs").into_response())
}

async fn config_page(State(web): State<Shared>, headers: HeaderMap) -> Result<Response, WebError> {
    let session = match require(&web, &headers).await {
        Ok(session) => session,
        Err(response) => return Ok(*response),
    };
    Ok(Html(pages::config_page(&session.csrf, &web.config)).into_response())
}

// --- API ---------------------------------------------------------------------------------------

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        axum::Json(serde_json::json!({
            "error": "a bearer token is needed: make one with `textback dashboard api-token`"
        })),
    )
        .into_response()
}

async fn api_leads(
    State(web): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<LeadQuery>,
) -> Result<Response, WebError> {
    if !web.api_allowed(&headers).await? {
        return Ok(unauthorized());
    }
    let wanted = filter(&query);
    let leads = web.read(move |tx| tx.find_leads(&wanted)).await?;
    let body: Vec<serde_json::Value> = leads.iter().map(pages::lead_json).collect();
    Ok(axum::Json(body).into_response())
}

async fn api_lead(
    State(web): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    if !web.api_allowed(&headers).await? {
        return Ok(unauthorized());
    }
    match lead_view(&web, id).await? {
        Some(view) => Ok(axum::Json(pages::lead_view_json(&view)).into_response()),
        None => Ok((
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": format!("no lead {id}")})),
        )
            .into_response()),
    }
}

#[derive(Deserialize)]
struct StateBody {
    state: String,
    /// Who set it, as the CRM knows them; "api" when not given.
    by: Option<String>,
}

/// `POST /api/v1/leads/ID/state` with `{"state": "won", "by": "Sam"}`.
async fn api_lead_state(
    State(web): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Result<Response, WebError> {
    if !web.api_allowed(&headers).await? {
        return Ok(unauthorized());
    }
    let bad = |message: String| {
        Ok((
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({ "error": message })),
        )
            .into_response())
    };
    let request: StateBody = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => {
            return bad(format!(
                "the body must be JSON like {{\"state\": \"won\", \"by\": \"Sam\"}}: {err}"
            ));
        }
    };
    let Some(state) = LeadState::parse(&request.state) else {
        return bad(format!(
            "{:?} is not a lead state: use new, called_back, won or lost",
            request.state
        ));
    };
    let by = match request.by.as_deref().map(str::trim) {
        Some(by) if !by.is_empty() => format!("api: {}", by.chars().take(60).collect::<String>()),
        _ => "api".to_string(),
    };
    let change = crate::flow::set_lead_state(
        &web.store,
        web.config.clone(),
        LeadId(id),
        state,
        by,
        web.clock.now_ms(),
    )
    .await?;
    web.wakers.after(&crate::flow::After::default());
    match change {
        StateChange::NoSuchLead => Ok((
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": format!("no lead {id}")})),
        )
            .into_response()),
        StateChange::Unchanged(lead) => Ok(axum::Json(
            serde_json::json!({"lead": pages::lead_json(&lead), "changed": false}),
        )
        .into_response()),
        StateChange::Changed { lead, event, .. } => Ok(axum::Json(
            serde_json::json!({"lead": pages::lead_json(&lead), "changed": true, "event": event}),
        )
        .into_response()),
    }
}

async fn api_calls(State(web): State<Shared>, headers: HeaderMap) -> Result<Response, WebError> {
    if !web.api_allowed(&headers).await? {
        return Ok(unauthorized());
    }
    let calls = web.read(|tx| tx.recent_calls(200)).await?;
    let body: Vec<serde_json::Value> = calls.iter().map(pages::call_json).collect();
    Ok(axum::Json(body).into_response())
}

async fn api_status(State(web): State<Shared>, headers: HeaderMap) -> Result<Response, WebError> {
    if !web.api_allowed(&headers).await? {
        return Ok(unauthorized());
    }
    let modems = modem_status(&web).await?;
    let body: Vec<serde_json::Value> = modems
        .iter()
        .map(|m| serde_json::json!({"id": m.id.to_string(), "queued": m.queued, "modem": m.state}))
        .collect();
    let sip: Vec<serde_json::Value> = web
        .read(|tx| tx.sip_accounts())
        .await?
        .into_iter()
        .map(|a| {
            serde_json::json!({
                "name": a.name, "state": a.state, "registered_until_ms": a.registered_until_ms,
                "next_refresh_ms": a.next_refresh_ms, "retry_at_ms": a.retry_at_ms,
                "last_error": a.last_error, "last_response": a.last_response,
                "local_address": a.local_address,
            })
        })
        .collect();
    let faults = web.read(|tx| tx.open_faults()).await?;
    let balances = web.read(|tx| tx.balances()).await?;
    let self_tests = web.read(|tx| tx.last_self_tests()).await?;
    Ok(axum::Json(serde_json::json!({
        "modems": body, "sip_accounts": sip, "faults": faults, "balances": balances,
        "self_tests": self_tests,
    }))
    .into_response())
}

async fn api_opt_outs(State(web): State<Shared>, headers: HeaderMap) -> Result<Response, WebError> {
    if !web.api_allowed(&headers).await? {
        return Ok(unauthorized());
    }
    let rows = web.read(|tx| tx.opt_outs()).await?;
    Ok(axum::Json(rows).into_response())
}

async fn metrics(State(web): State<Shared>, headers: HeaderMap) -> Result<Response, WebError> {
    if !web.api_allowed(&headers).await? {
        return Ok(unauthorized());
    }
    let (counts, latencies, sip, faults, alerts) = web
        .read(|tx| {
            Ok((
                tx.metric_counts()?,
                tx.first_text_latencies()?,
                tx.sip_accounts()?,
                tx.fault_counts()?,
                tx.alert_count()?,
            ))
        })
        .await?;
    let balances = web.read(|tx| tx.balances()).await?;
    let (self_tests, self_test_counts) = web
        .read(|tx| Ok((tx.last_self_tests()?, tx.self_test_counts()?)))
        .await?;
    let modems = modem_status(&web).await?;
    let mut text = pages::metrics_text(&web.config.box_name, &counts, &latencies, &modems, &sip);
    text.push_str(&pages::health_metrics(&faults, alerts, &modems));
    text.push_str(&pages::balance_metrics(&balances));
    text.push_str(&pages::self_test_metrics(&self_tests, &self_test_counts));
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// The UK day `at` falls in, as the start of that day (UTC milliseconds).
fn uk_day_start(at: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    let local = at.with_timezone(&chrono_tz::Europe::London).date_naive();
    chrono_tz::Europe::London
        .from_local_datetime(&local.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map(|start| start.with_timezone(&chrono::Utc))
        .unwrap_or(at)
}

/// The owner's home page.
async fn home_page(State(web): State<Shared>, headers: HeaderMap) -> Result<Response, WebError> {
    let session = match require(&web, &headers).await {
        Ok(session) => session,
        Err(response) => return Ok(*response),
    };
    let now = web.clock.now();
    let today = uk_day_start(now);
    let days = 30;
    let first_day = uk_day_start(now - chrono::Duration::days(days - 1));
    let since = [
        ("Today", today.timestamp_millis()),
        (
            "7 days",
            uk_day_start(now - chrono::Duration::days(6)).timestamp_millis(),
        ),
        ("30 days", first_day.timestamp_millis()),
    ];
    let view = web
        .read(move |tx| {
            let mut periods = Vec::new();
            for (label, since_ms) in since {
                periods.push(pages::Period {
                    label,
                    counts: tx.home_counts(since_ms)?,
                });
            }
            let mut chart: Vec<pages::ChartDay> = (0..days)
                .map(|d| {
                    let day = (first_day + chrono::Duration::days(d) + chrono::Duration::hours(12))
                        .with_timezone(&chrono_tz::Europe::London);
                    pages::ChartDay {
                        label: day.format("%a %-d").to_string(),
                        missed: 0,
                        texted: 0,
                    }
                })
                .collect();
            for (at_ms, decision) in tx.calls_since(first_day.timestamp_millis())? {
                let Some(at) = chrono::DateTime::from_timestamp_millis(at_ms) else {
                    continue;
                };
                let index = (uk_day_start(at) - first_day).num_hours().div_euclid(24);
                let slot = usize::try_from(index).ok().and_then(|i| chart.get_mut(i));
                if let Some(day) = slot {
                    day.missed += 1;
                    if decision == crate::domain::CallDecision::Text {
                        day.texted += 1;
                    }
                }
            }
            Ok(pages::HomeView {
                periods,
                days: chart,
                call_backs: tx.calls_to_call_back(crate::core::policy::NO_CALL_BACK_NEEDED, 50)?,
                leads: tx.open_leads(50)?,
                businesses: Vec::new(),
                now,
            })
        })
        .await?;
    let view = pages::HomeView {
        businesses: web
            .config
            .profiles
            .iter()
            .map(|p| (p.id.to_string(), p.name.clone()))
            .collect(),
        ..view
    };
    Ok(Html(pages::home_page(&session.csrf, &view)).into_response())
}

/// "Called back" on a missed call that got no text: it leaves the home page.
async fn call_called_back(
    State(web): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    if let Err(response) = check_form(&web, &headers, &form.csrf).await {
        return Ok(*response);
    }
    let at = web.clock.now_ms();
    web.store
        .run(move |tx| tx.mark_call_called_back(crate::domain::CallRowId(id), "dashboard", at))
        .await?;
    Ok(Redirect::to("/").into_response())
}

#[derive(Deserialize)]
struct ReplyForm {
    csrf: String,
    text: String,
}

/// The reply box on a lead's page.
async fn lead_reply(
    State(web): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<ReplyForm>,
) -> Result<Response, WebError> {
    if let Err(response) = check_form(&web, &headers, &form.csrf).await {
        return Ok(*response);
    }
    let outcome = crate::flow::owner_reply(
        &web.store,
        LeadId(id),
        form.text,
        "dashboard".to_string(),
        web.clock.now_ms(),
    )
    .await?;
    match outcome {
        crate::flow::OwnerReply::NoSuchLead => Ok(not_found().await),
        crate::flow::OwnerReply::Empty => Ok(Redirect::to(&format!("/leads/{id}")).into_response()),
        crate::flow::OwnerReply::OptedOut => Ok((
            StatusCode::CONFLICT,
            Html(pages::message_page(
                "Not sent",
                "This caller replied STOP: no texts can be sent to them. Call them instead.",
            )),
        )
            .into_response()),
        crate::flow::OwnerReply::Queued { modem } => {
            web.wakers.after(&crate::flow::After {
                wake: vec![modem],
                ..crate::flow::After::default()
            });
            Ok(Redirect::to(&format!("/leads/{id}#reply")).into_response())
        }
    }
}
