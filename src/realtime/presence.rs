//! Presence (R-COMM-6, R-COMM-7): who is online, away, busy or offline, with a custom text.
//!
//! Inputs, all shared by every node: each node's report of its connections and last
//! activity per user (sent on the bus when it changes, refreshed periodically, and kept in
//! Redis under a key that expires, so a node that dies takes its users offline by itself),
//! and the statuses users chose (stored in the database). Every node computes the same
//! effective status from them with [`effective`], and tells its own clients about changes,
//! gathered into one frame per tenant per flush interval.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::store::ChosenStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Online,
    Away,
    Busy,
    Offline,
}

/// What a node knows of one user: how many connections it holds and when they were last
/// active (Unix ms). `conns == 0` with `left_at` set: the last one closed then.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeUser {
    pub conns: u32,
    pub active_at: i64,
    pub left_at: Option<i64>,
}

/// One node's view of one tenant, as published on the bus and stored in Redis.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeReport {
    pub node: String,
    pub tenant: String,
    /// Unix ms after which the report is void (the node stopped refreshing it).
    pub expires_at: i64,
    pub users: HashMap<String, NodeUser>,
}

/// A user's presence as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserPresence {
    pub user_id: String,
    pub status: Status,
    /// Custom text (the chosen one, or the out-of-office text). Omitted when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Unix ms when a chosen status ends by itself. Omitted when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    /// True while an out-of-office period sets the status. Omitted when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub out_of_office: bool,
    /// Unix ms of the last activity seen on any node. Omitted when never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_active_at: Option<i64>,
}

pub struct Rules {
    pub idle_away_ms: i64,
    pub offline_grace_ms: i64,
}

/// The status of `user` at `now` from every node's report and their chosen status.
pub fn effective(
    user: &str,
    reports: &[&NodeUser],
    chosen: Option<&ChosenStatus>,
    rules: &Rules,
    now: i64,
) -> UserPresence {
    let conns: u32 = reports.iter().map(|r| r.conns).sum();
    let active_at = reports.iter().map(|r| r.active_at).max();
    let left_at = reports.iter().filter_map(|r| r.left_at).max();
    let connected = conns > 0 || left_at.is_some_and(|t| now - t < rules.offline_grace_ms);
    let mut p = UserPresence {
        user_id: user.to_string(),
        status: Status::Offline,
        text: None,
        until: None,
        out_of_office: false,
        last_active_at: active_at.filter(|t| *t > 0),
    };
    let chosen_live = chosen.filter(|c| c.until.is_none_or(|u| now < u));
    let ooo = chosen
        .filter(|c| c.ooo_from.is_some_and(|f| f <= now) && c.ooo_until.is_none_or(|u| now < u));
    if let Some(c) = chosen_live {
        p.text = c.text.clone();
        p.until = c.until;
    }
    if !connected {
        return p;
    }
    let manual = chosen_live.and_then(|c| match c.status.as_deref() {
        Some("busy") => Some(Status::Busy),
        Some("away") => Some(Status::Away),
        Some("online") => Some(Status::Online),
        _ => None,
    });
    p.status = if let Some(s) = manual {
        // A chosen status beats the automatic ones: busy stays busy while idle.
        s
    } else if let Some(o) = ooo {
        p.out_of_office = true;
        p.text = o.ooo_text.clone().or(p.text);
        p.until = o.ooo_until;
        Status::Away
    } else if active_at.is_some_and(|t| now - t >= rules.idle_away_ms) {
        Status::Away
    } else {
        Status::Online
    };
    p
}

/// The earliest time after `now` at which a timer may change someone's presence with no
/// input changing: idle turning into away, a grace period ending, a chosen status or an
/// out-of-office period starting or ending, another node's report expiring. `None` when no
/// timer is pending. Early is harmless (a recomputation that finds nothing new); any other
/// change of the inputs marks the tenant for recomputation anyway.
pub fn next_due<'a>(
    users: impl IntoIterator<Item = &'a NodeUser>,
    report_expiries: impl IntoIterator<Item = i64>,
    chosen: impl IntoIterator<Item = &'a ChosenStatus>,
    rules: &Rules,
    now: i64,
) -> Option<i64> {
    let mut due: Option<i64> = None;
    let mut consider = |t: i64| {
        if t > now && due.is_none_or(|d| t < d) {
            due = Some(t);
        }
    };
    for u in users {
        consider(u.active_at.saturating_add(rules.idle_away_ms));
        if let Some(left) = u.left_at {
            consider(left.saturating_add(rules.offline_grace_ms));
        }
    }
    for t in report_expiries {
        consider(t);
    }
    for c in chosen {
        for t in [c.until, c.ooo_from, c.ooo_until].into_iter().flatten() {
            consider(t);
        }
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_timer_is_the_earliest_one_still_ahead() {
        let now = 1_000_000;
        let users = [
            node(1, now - 10_000, None),
            node(0, now - 1_000, Some(now - 500)),
        ];
        // Idle: now - 10 s + 300 s; grace: now - 0.5 s + 30 s.
        assert_eq!(
            next_due(&users, [], [], &RULES, now),
            Some(now - 500 + 30_000)
        );
        // A report that expires sooner wins; one already expired does not count.
        assert_eq!(
            next_due(&users, [now - 1, now + 6_000], [], &RULES, now),
            Some(now + 6_000)
        );
        let chosen = ChosenStatus {
            user_id: "u".into(),
            status: Some("busy".into()),
            text: None,
            until: Some(now + 2_000),
            ooo_from: Some(now - 100),
            ooo_until: Some(now + 90_000),
            ooo_text: None,
        };
        assert_eq!(
            next_due(&users, [], [&chosen], &RULES, now),
            Some(now + 2_000)
        );
        // Nothing ahead: no timer.
        let long_ago = [node(0, now - 900_000, Some(now - 800_000))];
        assert_eq!(next_due(&long_ago, [], [], &RULES, now), None);
    }

    const RULES: Rules = Rules {
        idle_away_ms: 300_000,
        offline_grace_ms: 30_000,
    };

    fn node(conns: u32, active_at: i64, left_at: Option<i64>) -> NodeUser {
        NodeUser {
            conns,
            active_at,
            left_at,
        }
    }

    #[test]
    fn connected_and_active_is_online_and_idle_turns_away() {
        let n = node(1, 1_000, None);
        assert_eq!(
            effective("u", &[&n], None, &RULES, 2_000).status,
            Status::Online
        );
        assert_eq!(
            effective("u", &[&n], None, &RULES, 1_000 + 300_000).status,
            Status::Away
        );
    }

    #[test]
    fn offline_only_after_the_grace_period_of_the_last_connection() {
        let n = node(0, 1_000, Some(10_000));
        assert_eq!(
            effective("u", &[&n], None, &RULES, 10_000 + 29_999).status,
            Status::Online
        );
        assert_eq!(
            effective("u", &[&n], None, &RULES, 10_000 + 30_000).status,
            Status::Offline
        );
        assert_eq!(effective("u", &[], None, &RULES, 0).status, Status::Offline);
    }

    #[test]
    fn a_connection_on_any_node_keeps_the_user_connected() {
        let gone = node(0, 1_000, Some(1_000));
        let here = node(2, 500_000, None);
        assert_eq!(
            effective("u", &[&gone, &here], None, &RULES, 600_000).status,
            Status::Online
        );
    }

    #[test]
    fn busy_stays_busy_while_idle_and_ends_at_until() {
        let n = node(1, 0, None);
        let chosen = ChosenStatus {
            user_id: "u".into(),
            status: Some("busy".into()),
            text: Some("interview".into()),
            until: Some(1_000_000),
            ..Default::default()
        };
        let p = effective("u", &[&n], Some(&chosen), &RULES, 900_000);
        assert_eq!(
            (p.status, p.text.as_deref()),
            (Status::Busy, Some("interview"))
        );
        // After "until" the automatic status returns: idle → away, text gone.
        let p = effective("u", &[&n], Some(&chosen), &RULES, 1_000_000);
        assert_eq!((p.status, p.text), (Status::Away, None));
    }

    #[test]
    fn out_of_office_sets_and_clears_itself() {
        let n = node(1, 10_000, None);
        let chosen = ChosenStatus {
            user_id: "u".into(),
            ooo_from: Some(20_000),
            ooo_until: Some(40_000),
            ooo_text: Some("vacation".into()),
            ..Default::default()
        };
        assert_eq!(
            effective("u", &[&n], Some(&chosen), &RULES, 15_000).status,
            Status::Online
        );
        let p = effective("u", &[&n], Some(&chosen), &RULES, 25_000);
        assert_eq!(
            (p.status, p.out_of_office, p.text.as_deref()),
            (Status::Away, true, Some("vacation"))
        );
        assert_eq!(
            effective("u", &[&n], Some(&chosen), &RULES, 40_000).status,
            Status::Online
        );
    }

    #[test]
    fn an_offline_user_keeps_their_custom_text_but_not_busy() {
        let chosen = ChosenStatus {
            user_id: "u".into(),
            status: Some("busy".into()),
            text: Some("on leave".into()),
            ..Default::default()
        };
        let p = effective("u", &[], Some(&chosen), &RULES, 1);
        assert_eq!(
            (p.status, p.text.as_deref()),
            (Status::Offline, Some("on leave"))
        );
    }
}
