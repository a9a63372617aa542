//! Request throughput of the emulator on this machine: N concurrent clients doing
//! `GET /v1.0/applications/{id}` over HTTPS for a fixed duration.
//!
//!     cargo run --release -p entra-emulator --example throughput -- [CONCURRENCY] [SECONDS]
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let concurrency: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(32);
    let seconds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let emu = entra_emulator::start(entra_emulator::Config::default()).await?;
    let ca = reqwest::Certificate::from_pem(emu.ca_pem().as_bytes())?;
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let token = emu.admin_token(&emu.tenant_id());
    // A realistic directory: 200 applications; read one of them.
    let mut id = String::new();
    for i in 0..200 {
        let r: Value = client
            .post(format!("{}/applications", emu.graph_url()))
            .bearer_auth(&token)
            .json(&json!({"displayName": format!("bench-{i}"), "identifierUris": [format!("api://bench-{i}")]}))
            .send()
            .await?
            .json()
            .await?;
        id = r["id"].as_str().unwrap().to_string();
    }
    let url = format!("{}/applications/{id}", emu.graph_url());
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = vec![];
    for _ in 0..concurrency {
        let (c, url, token, done, errors) = (
            client.clone(),
            url.clone(),
            token.clone(),
            done.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                match c.get(&url).bearer_auth(&token).send().await {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let secs = start.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!(
        "GET /v1.0/applications/{{id}}: {n} requests in {secs:.1} s with {concurrency} concurrent clients = {:.0} req/s ({} errors; client and server share {} cores)",
        n as f64 / secs,
        errors.load(Ordering::Relaxed),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    emu.shutdown().await;
    Ok(())
}
