//! The top layer: the listener (TLS, one task per connection, the drop switch), the route table
//! ([`routes`]: every operation the emulator serves, by name) and the request pipeline
//! ([`pipeline`]: ids, realism, each surface's headers, the call log). Imports the surfaces; no
//! surface imports it.
mod pipeline;
mod routes;

use crate::config::Config;
use crate::crypto;
use crate::request::DropHandle;
use crate::state::{
    Shared, arm::ArmState, calls::CallSummary, persistence::StateFile, realism::Faults, seed,
};
use axum::body::Body;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

/// A started emulator, for [`crate::Running`].
pub struct Started {
    pub shared: Arc<Shared>,
    pub ca_pem: String,
    pub shutdown: watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<()>,
    /// (tenant id, client id, client secret) of the first tenant's first bootstrap app.
    pub first: (String, String, String),
}

/// Binds the listener, builds the state from `config` and serves until `Started::shutdown`.
pub async fn start(config: Config) -> anyhow::Result<Started> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let base_url = base_url(addr);
    let mut names = config.hostnames.clone();
    names.push(addr.ip().to_string());
    let tls = crypto::make_tls(&names)?;
    if let Some(ca_file) = &config.ca_file {
        if let Some(dir) = ca_file.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(ca_file, &tls.ca_pem)?;
    }
    let shared = Arc::new(shared_state(&config, base_url.clone())?);
    shared.persist(shared.store.lock().unwrap());
    let router = routes::table()
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            pipeline::pipeline,
        ))
        .with_state(shared.clone());
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config.clone());
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(serve(listener, acceptor, router, rx));
    tracing::info!(%base_url, "entra-emulator listening");
    Ok(Started {
        shared,
        ca_pem: tls.ca_pem,
        shutdown: tx,
        task,
        first: first_client(&config),
    })
}

/// `https://host:port` of the bound address (an unspecified address is served as 127.0.0.1).
fn base_url(addr: std::net::SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    format!("https://{host}:{}", addr.port())
}

/// Everything the handlers share, from the config.
fn shared_state(config: &Config, base_url: String) -> anyhow::Result<Shared> {
    let signing = crypto::SigningKey::new(config.signing_key_pem.as_deref())?;
    let store = seed::initial_store(config)?;
    let arm = ArmState::new(&config.arm, &store)?;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    Ok(Shared {
        store: Mutex::new(store),
        signing,
        base_url,
        faults: Faults::new(config.realism.seed),
        realism: Mutex::new(config.realism.clone()),
        limits: Mutex::new(config.throttle_limits.clone()),
        calls: Mutex::new(vec![]),
        token_cache: Mutex::new(HashMap::new()),
        summary: Mutex::new(CallSummary::default()),
        state_file: config.state_file.clone().map(StateFile::new),
        http,
        default_sign_in_audience: config.default_sign_in_audience.clone(),
        token_lifetime_secs: config.token_lifetime_secs,
        flows: Mutex::new(Default::default()),
        arm: Mutex::new(arm),
        delta: config.delta.clone(),
    })
}

/// (tenant id, client id, client secret) of the first tenant's first bootstrap app.
fn first_client(config: &Config) -> (String, String, String) {
    config
        .tenants
        .first()
        .map(|t| {
            let a = t.apps.first();
            (
                t.tenant_id.to_ascii_lowercase(),
                a.map(|a| a.client_id.clone()).unwrap_or_default(),
                a.and_then(|a| a.client_secret.clone()).unwrap_or_default(),
            )
        })
        .unwrap_or_default()
}

/// Accepts connections until `stop` changes.
async fn serve(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            acc = listener.accept() => {
                let Ok((tcp, _)) = acc else { continue };
                let _ = tcp.set_nodelay(true);
                tokio::spawn(connection(tcp, acceptor.clone(), router.clone(), stop.clone()));
            }
        }
    }
}

/// One TLS connection (HTTP/1.1 or HTTP/2), until it closes, the pipeline drops it or the
/// emulator stops.
async fn connection(
    tcp: tokio::net::TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    let Ok(Ok(tls)) =
        tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp)).await
    else {
        return;
    };
    let kill = Arc::new(Notify::new());
    let k2 = kill.clone();
    let svc = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(DropHandle(k2.clone()));
        let app = app.clone();
        async move { app.oneshot(req.map(Body::new)).await }
    });
    let builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(tls), svc);
    tokio::select! {
        _ = conn => {}
        _ = kill.notified() => {}
        _ = stop.changed() => {}
    }
}
