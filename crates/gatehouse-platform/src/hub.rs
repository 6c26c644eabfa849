//! The gateway connections this replica holds, so that revoking a token or deleting a gateway
//! closes its sockets at once.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// One connection: its id and the switch that closes it.
type Connection = (String, watch::Sender<bool>);

/// Live gateway connections of this process, by gateway uuid.
#[derive(Default)]
pub struct Hub {
    conns: Mutex<HashMap<String, Vec<Connection>>>,
}

impl Hub {
    /// Registers a connection of `gateway`; the receiver turns true when it must close.
    pub fn register(&self, gateway: &str) -> (String, watch::Receiver<bool>) {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = watch::channel(false);
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(gateway.to_owned())
            .or_default()
            .push((id.clone(), tx));
        metrics::gauge!("gatehouse_gateway_connections").increment(1.0);
        (id, rx)
    }

    /// Forgets a connection that ended.
    pub fn unregister(&self, gateway: &str, conn: &str) {
        let mut map = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = map.get_mut(gateway) {
            let before = list.len();
            list.retain(|(id, _)| id != conn);
            if list.len() < before {
                metrics::gauge!("gatehouse_gateway_connections").decrement(1.0);
            }
            if list.is_empty() {
                map.remove(gateway);
            }
        }
    }

    /// Tells every connection of `gateway` to close.
    pub fn close_gateway(&self, gateway: &str) {
        if let Some(list) = self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(gateway)
        {
            for (_, tx) in list {
                let _ = tx.send(true);
            }
        }
    }

    /// Whether `gateway` has a connection on this replica.
    pub fn is_connected(&self, gateway: &str) -> bool {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(gateway)
    }
}
