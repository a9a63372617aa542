//! The Event recorder, renewed every so many Events so its cache stays small.
//!
//! kube's `Recorder` keeps every Event it published (by object, reason and note) for 6 minutes, to
//! turn a repeat into a series count instead of a new Event, and drops old entries only when it
//! publishes the next one; its map never shrinks. Creating N clients publishes about 1.7 Events
//! each, so at N = 5,000 the cache held some 8,000 Events (about 2 KB each with the map's slack)
//! long after they were needed. A fresh `Recorder` every `RENEW_AFTER` Events bounds that; the
//! cost is that an Event repeated across a renewal starts a new Event instead of counting on in
//! the old one's series.

use std::sync::Mutex;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

/// Events one recorder publishes before it is replaced by a fresh one.
const RENEW_AFTER: usize = 256;

pub struct Events {
    client: Client,
    current: Mutex<(Recorder, usize)>,
}

impl Events {
    pub fn new(client: Client) -> Self {
        let recorder = Self::fresh(&client);
        Self {
            client,
            current: Mutex::new((recorder, 0)),
        }
    }

    fn fresh(client: &Client) -> Recorder {
        Recorder::new(
            client.clone(),
            Reporter {
                controller: "fhir-app-operator".into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        )
    }

    /// The recorder for the next Event (a fresh one after `RENEW_AFTER`).
    pub fn recorder(&self) -> Recorder {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.1 >= RENEW_AFTER {
            *current = (Self::fresh(&self.client), 0);
        }
        current.1 += 1;
        current.0.clone()
    }
}
