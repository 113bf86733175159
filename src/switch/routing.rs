//! The router (the ACD): hands waiting threads to available recruiters by the queue's
//! strategy within their capacity, and takes threads back from assignees who are away
//! too long or leave an applicant unanswered too long.
//!
//! It runs on every node, woken by ingest, by presence changes and by a periodic tick.
//! Every assignment is a conditional write (only if still unassigned / still assigned to
//! the same person), so two nodes never hand one thread to two people. It decides from
//! this node's presence view; a tenant this node has no view of (nobody of it connected
//! here) is left to the nodes that have one.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;

use super::Switch;
use crate::realtime::presence::Status;
use crate::store::{MemberLoad, RoutingQueue, StoreError, TenantDb};

/// Since when (switch clock, ms) each user has had the status the router last saw.
type Seen = HashMap<(String, String), (Status, i64)>;

pub(super) async fn run(switch: Switch, mut kicks: mpsc::UnboundedReceiver<String>) {
    let mut presence = switch.hub().presence_changes();
    let mut tick = tokio::time::interval(Duration::from_millis(
        switch.config().routing_tick_ms.max(10),
    ));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen: Seen = HashMap::new();
    loop {
        let tenants: Vec<String> = tokio::select! {
            _ = switch.stopped() => return,
            kick = kicks.recv() => match kick {
                Some(t) => {
                    let mut all = vec![t];
                    while let Ok(more) = kicks.try_recv() {
                        if !all.contains(&more) {
                            all.push(more);
                        }
                    }
                    all
                }
                None => return,
            },
            changed = presence.recv() => match changed {
                Ok(t) => vec![t],
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Vec::new(),
                Err(_) => return,
            },
            _ = tick.tick() => match switch.db().tenants_to_route().await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(error = %e, "router: listing tenants failed");
                    Vec::new()
                }
            },
        };
        for tenant in tenants {
            if let Err(e) = route_tenant(&switch, &tenant, &mut seen).await {
                tracing::warn!(error = %e, tenant, "router: routing failed");
            }
        }
    }
}

/// Who may get a new thread: online (not away, not busy, not offline).
fn available(status: Option<Status>) -> bool {
    status == Some(Status::Online)
}

async fn route_tenant(switch: &Switch, tenant: &str, seen: &mut Seen) -> Result<(), StoreError> {
    let now = switch.clock().now_ms();
    let snapshot = switch.hub().presence_snapshot(tenant, None);
    let known = !snapshot.is_empty();
    let mut status: HashMap<String, Status> = HashMap::new();
    for p in snapshot {
        let key = (tenant.to_string(), p.user_id.clone());
        match seen.get(&key) {
            Some((s, _)) if *s == p.status => {}
            _ => {
                seen.insert(key, (p.status, now));
            }
        }
        status.insert(p.user_id, p.status);
    }
    let db = switch.db().for_tenant(tenant);
    for queue in db.routing_queues().await? {
        if known {
            reroute(switch, &db, &queue, &status, seen, now).await?;
        }
        if queue.strategy == "manual" {
            continue;
        }
        assign_waiting(switch, &db, &queue, &status).await?;
    }
    Ok(())
}

/// Takes threads back from assignees who have been away/offline longer than the queue
/// allows, or who left the applicant without an answer longer than it allows.
async fn reroute(
    switch: &Switch,
    db: &TenantDb,
    queue: &RoutingQueue,
    status: &HashMap<String, Status>,
    seen: &Seen,
    now: i64,
) -> Result<(), StoreError> {
    if queue.away_limit_s.is_none() && queue.response_limit_s.is_none() {
        return Ok(());
    }
    for t in db.assigned_threads(&queue.id).await? {
        let assigned_at = t.assigned_at.unwrap_or(0);
        let mut reason = None;
        if let Some(limit) = queue.away_limit_s {
            let s = status
                .get(&t.assignee_id)
                .copied()
                .unwrap_or(Status::Offline);
            if matches!(s, Status::Away | Status::Offline) {
                // Since when: what the router saw, or (never seen) since it started looking.
                let since = seen
                    .get(&(db.tenant_id().to_string(), t.assignee_id.clone()))
                    .filter(|(st, _)| *st == s)
                    .map(|(_, since)| *since)
                    .unwrap_or(now);
                if now - since.max(assigned_at) >= limit * 1000 {
                    reason = Some(if s == Status::Away {
                        "assignee_away"
                    } else {
                        "assignee_offline"
                    });
                }
            }
        }
        if let (None, Some(limit), Some(waiting)) =
            (reason, queue.response_limit_s, t.awaiting_reply_since)
        {
            if now - waiting.max(assigned_at) >= limit * 1000 {
                reason = Some("no_answer");
            }
        }
        let Some(reason) = reason else { continue };
        match db
            .assign_thread(&t.id, None, Some(reason), Some(Some(&t.assignee_id)))
            .await
        {
            Ok(change) => {
                metrics::counter!("router_reroutes_total", "reason" => reason).increment(1);
                tracing::info!(thread = %t.id, from = %t.assignee_id, reason, "thread back to its queue");
                switch.publish_events(db.tenant_id(), &change.events).await;
            }
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Picks the member for the next thread, or `None` when nobody can take one.
pub(crate) fn pick(
    strategy: &str,
    members: &[MemberLoad],
    status: &HashMap<String, Status>,
    cursor: Option<&str>,
    avoid: Option<&str>,
) -> Option<usize> {
    let free: Vec<usize> = (0..members.len())
        .filter(|&i| {
            available(status.get(&members[i].user_id).copied())
                && members[i].load < members[i].capacity
        })
        .collect();
    // The one the thread was just taken from gets it back only when nobody else can.
    let preferred: Vec<usize> = free
        .iter()
        .copied()
        .filter(|&i| Some(members[i].user_id.as_str()) != avoid)
        .collect();
    let pool = if preferred.is_empty() {
        free
    } else {
        preferred
    };
    if pool.is_empty() {
        return None;
    }
    match strategy {
        "least_busy" => pool.iter().copied().min_by_key(|&i| {
            (
                members[i].load,
                members[i].last_assigned_at.unwrap_or(i64::MIN),
                i,
            )
        }),
        // Round robin: the next member after the one who got the last thread.
        _ => {
            let start = cursor
                .and_then(|c| members.iter().position(|m| m.user_id == c))
                .map(|p| p + 1)
                .unwrap_or(0);
            (0..members.len())
                .map(|k| (start + k) % members.len())
                .find(|i| pool.contains(i))
        }
    }
}

async fn assign_waiting(
    switch: &Switch,
    db: &TenantDb,
    queue: &RoutingQueue,
    status: &HashMap<String, Status>,
) -> Result<(), StoreError> {
    let waiting = db.waiting_threads(&queue.id, 100).await?;
    if waiting.is_empty() {
        return Ok(());
    }
    let mut members = db.member_loads(&queue.id).await?;
    let mut cursor = queue.last_user_id.clone();
    for (thread_id, rerouted_from) in waiting {
        let Some(i) = pick(
            &queue.strategy,
            &members,
            status,
            cursor.as_deref(),
            rerouted_from.as_deref(),
        ) else {
            break;
        };
        let user = members[i].user_id.clone();
        match db
            .assign_thread(&thread_id, Some(&user), None, Some(None))
            .await
        {
            Ok(change) => {
                metrics::counter!("router_assignments_total").increment(1);
                tracing::info!(thread = %thread_id, user = %user, queue = %queue.id, "thread assigned");
                switch.publish_events(db.tenant_id(), &change.events).await;
                members[i].load += 1;
                members[i].last_assigned_at = Some(switch.clock().now_ms());
                cursor = Some(user.clone());
                db.set_queue_cursor(&queue.id, &user).await?;
            }
            // Someone (a supervisor, another node) got there first.
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(user: &str, capacity: i64, load: i64, last: Option<i64>) -> MemberLoad {
        MemberLoad {
            user_id: user.into(),
            capacity,
            load,
            last_assigned_at: last,
        }
    }

    fn online(users: &[&str]) -> HashMap<String, Status> {
        users
            .iter()
            .map(|u| (u.to_string(), Status::Online))
            .collect()
    }

    #[test]
    fn round_robin_goes_around_and_skips_the_unavailable() {
        let members = vec![m("a", 2, 0, None), m("b", 2, 0, None), m("c", 2, 0, None)];
        let mut st = online(&["a", "b", "c"]);
        assert_eq!(pick("round_robin", &members, &st, None, None), Some(0));
        assert_eq!(pick("round_robin", &members, &st, Some("a"), None), Some(1));
        assert_eq!(pick("round_robin", &members, &st, Some("c"), None), Some(0));
        st.insert("b".into(), Status::Busy);
        assert_eq!(pick("round_robin", &members, &st, Some("a"), None), Some(2));
        st.insert("c".into(), Status::Away);
        assert_eq!(pick("round_robin", &members, &st, Some("a"), None), Some(0));
    }

    #[test]
    fn capacity_is_a_hard_limit() {
        let members = vec![m("a", 1, 1, None), m("b", 2, 2, None)];
        let st = online(&["a", "b"]);
        assert_eq!(pick("round_robin", &members, &st, None, None), None);
        assert_eq!(pick("least_busy", &members, &st, None, None), None);
    }

    #[test]
    fn least_busy_takes_the_lowest_load_then_the_longest_idle() {
        let members = vec![
            m("a", 5, 2, Some(10)),
            m("b", 5, 1, Some(30)),
            m("c", 5, 1, Some(20)),
        ];
        let st = online(&["a", "b", "c"]);
        assert_eq!(pick("least_busy", &members, &st, None, None), Some(2));
    }

    #[test]
    fn a_rerouted_thread_goes_to_someone_else_when_possible() {
        let members = vec![m("a", 5, 0, None), m("b", 5, 3, None)];
        let st = online(&["a", "b"]);
        assert_eq!(pick("least_busy", &members, &st, None, Some("a")), Some(1));
        let only_a = online(&["a"]);
        assert_eq!(
            pick("least_busy", &members, &only_a, None, Some("a")),
            Some(0)
        );
    }
}
