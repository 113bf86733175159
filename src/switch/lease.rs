//! One node at a time reads an account's provider: the holder of the account's lease
//! (`sync_leases`). Two nodes reading the same board or mailbox would ask the provider
//! twice for everything (HeadHunter counts requests) and overwrite each other's position.
//! The holder renews its lease every third of its length while it works; a node that stops
//! gives it up, one that dies loses it when it runs out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Switch;
use crate::store::TenantDb;

/// This node's hold on one lease, renewed in the background until dropped (then given up).
pub(super) struct Lease {
    tdb: TenantDb,
    name: String,
    holder: String,
    held: Arc<AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// Takes the lease `name` of `tenant` for this node; `None` while another node has it.
    pub(super) async fn take(switch: &Switch, tenant: &str, name: String) -> Option<Lease> {
        let ttl = switch.config().sync_lease_ms.max(30) as i64;
        let holder = switch.hub().node_id().to_string();
        let tdb = switch.db().for_tenant(tenant);
        match tdb.take_lease(&name, &holder, ttl).await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                tracing::warn!(error = %e, lease = %name, "taking a lease failed");
                return None;
            }
        }
        let held = Arc::new(AtomicBool::new(true));
        let renewer = tokio::spawn(renew(
            tdb.clone(),
            name.clone(),
            holder.clone(),
            ttl,
            held.clone(),
        ));
        Some(Lease {
            tdb,
            name,
            holder,
            held,
            renewer,
        })
    }

    /// Whether this node still has it (false once a renewal found it taken, or could not
    /// renew it before it ran out).
    pub(super) fn held(&self) -> bool {
        self.held.load(Ordering::Acquire)
    }

    /// Keeps `slot` holding the lease `name` of `tenant`: drops a hold that was lost, takes
    /// the lease when the slot is empty; whether this node holds it now.
    pub(super) async fn hold(
        slot: &mut Option<Lease>,
        switch: &Switch,
        tenant: &str,
        name: impl FnOnce() -> String,
    ) -> bool {
        if slot.as_ref().is_some_and(|l| !l.held()) {
            *slot = None;
        }
        if slot.is_none() {
            *slot = Lease::take(switch, tenant, name()).await;
        }
        slot.is_some()
    }
}

/// How long a node that does not hold a lease waits before trying again.
pub(super) fn retry_after(switch: &Switch) -> Duration {
    Duration::from_millis((switch.config().sync_lease_ms / 3).clamp(10, 5_000))
}

async fn renew(tdb: TenantDb, name: String, holder: String, ttl: i64, held: Arc<AtomicBool>) {
    let every = Duration::from_millis((ttl / 3).max(10) as u64);
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        match tdb.take_lease(&name, &holder, ttl).await {
            Ok(true) => renewed = Instant::now(),
            Ok(false) => {
                tracing::warn!(lease = %name, "a lease was taken by another node");
                held.store(false, Ordering::Release);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, lease = %name, "renewing a lease failed");
                // Past its end another node may have it: stop work under it.
                if renewed.elapsed() >= Duration::from_millis(ttl as u64) {
                    held.store(false, Ordering::Release);
                    return;
                }
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.abort();
        if !self.held() {
            return;
        }
        // Given up at once, so that another node need not wait for it to run out.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (tdb, name, holder) = (self.tdb.clone(), self.name.clone(), self.holder.clone());
            runtime.spawn(async move {
                if let Err(e) = tdb.release_lease(&name, &holder).await {
                    tracing::debug!(error = %e, lease = %name, "giving a lease up failed");
                }
            });
        }
    }
}
