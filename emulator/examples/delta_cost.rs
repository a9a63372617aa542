//! What a delta query costs the emulator with N applications: the initial round (pages, time),
//! a round after M changes, and a round after none.
//!
//!     cargo run --release -p entra-emulator --example delta_cost -- [APPLICATIONS] [CHANGES]
use serde_json::{Value, json};
use std::time::Instant;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let apps: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5000);
    let changes: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(50);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let emu = entra_emulator::start(entra_emulator::Config::default()).await?;
    let ca = reqwest::Certificate::from_pem(emu.ca_pem().as_bytes())?;
    let client = reqwest::Client::builder().tls_certs_only([ca]).build()?;
    let token = emu.admin_token(&emu.tenant_id());
    let graph = emu.graph_url();
    let get = |url: String| {
        let (client, token) = (client.clone(), token.clone());
        async move {
            let r = client.get(url).bearer_auth(token).send().await?;
            anyhow::Ok(r.json::<Value>().await?)
        }
    };
    let mut ids = vec![];
    let start = Instant::now();
    for i in 0..apps {
        let r: Value = client
            .post(format!("{graph}/applications"))
            .bearer_auth(&token)
            .json(&json!({"displayName": format!("delta-{i}")}))
            .send()
            .await?
            .json()
            .await?;
        ids.push(r["id"].as_str().unwrap_or_default().to_string());
    }
    println!(
        "created {apps} applications in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let select = "$select=id,appId,displayName,web,passwordCredentials";
    let round = |first: String| {
        let get = &get;
        async move {
            let (mut url, mut pages, mut objects) = (first, 0, 0);
            let start = Instant::now();
            loop {
                let page = get(url.clone()).await?;
                pages += 1;
                objects += page["value"].as_array().map_or(0, Vec::len);
                match page["@odata.nextLink"].as_str() {
                    Some(next) => url = next.to_string(),
                    None => {
                        let link = page["@odata.deltaLink"].as_str().unwrap_or_default();
                        let ms = start.elapsed().as_secs_f64() * 1000.0;
                        return anyhow::Ok((link.to_string(), pages, objects, ms));
                    }
                }
            }
        }
    };
    let (link, pages, objects, ms) = round(format!("{graph}/applications/delta?{select}")).await?;
    println!("initial round: {objects} objects in {pages} pages, {ms:.0} ms");
    for id in ids.iter().take(changes) {
        client
            .patch(format!("{graph}/applications/{id}"))
            .bearer_auth(&token)
            .json(&json!({"web": {"redirectUris": ["https://changed.contoso.example/cb"]}}))
            .send()
            .await?;
    }
    let (link, pages, objects, ms) = round(link).await?;
    println!("after {changes} changes: {objects} objects in {pages} pages, {ms:.1} ms");
    let (_, pages, objects, ms) = round(link).await?;
    println!("after no change: {objects} objects in {pages} pages, {ms:.1} ms");
    emu.shutdown().await;
    Ok(())
}
