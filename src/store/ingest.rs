//! Ingest in batches: the ingest writer (`crate::switch::writer`) stores the inbound
//! messages that arrive together in one transaction. The common cases — a known applicant
//! writing again into their thread, a new applicant writing for the first time — take
//! set-based statements: per batch one read each for repeats, references, identities and
//! threads, one position update and one insert of all events; per message its row and its
//! thread's update (and for a new applicant its contact, identities and thread). Everything
//! else (a reference to follow, identities to add to or merge applicants, a name to learn,
//! a responsible recruiter to check) goes through [`super::TenantDb::ingest_in`], in order —
//! and so does every later message of the batch that shares an identity or an applicant
//! with a new or single-path one (it must see what that one wrote).

use std::collections::{HashMap, HashSet};

use sqlx::{Any, Transaction};

use super::events::Audience;
use super::rooms::to_json;
use super::sends::{
    insert_events, padded, pieces, placeholders, reserve_positions, select_by_keys, EventRow,
};
use super::threads::{
    preview_of, Inbound, Ingested, MessageRow, Thread, ThreadMessage, ThreadRow, MESSAGE_COLUMNS,
    THREAD_RETURNING,
};
use super::{now_ms, Db, StoreResult, StoredEvent};

/// What a message of the batch needs.
#[derive(Debug, Clone, PartialEq)]
enum Plan {
    /// Stored before (an earlier batch): answered with the stored ids.
    Repeat {
        message_id: String,
        thread_id: String,
    },
    /// A known applicant with a live thread: the set-based path.
    Known {
        thread_id: String,
        contact_name: Option<String>,
    },
    /// A new applicant (none of the sender's identities is known): contact, identities
    /// and thread are created on the set-based path.
    Fresh,
    /// Anything else: [`super::TenantDb::ingest_in`].
    Single,
}

impl Db {
    /// Stores `jobs` (of any tenants) inside `tx`, each with its own outcome, in order.
    pub(crate) async fn ingest_batch(
        &self,
        tx: &mut Transaction<'static, Any>,
        jobs: &[Inbound<'_>],
    ) -> StoreResult<Vec<Ingested>> {
        let mut out: Vec<Ingested> = Vec::with_capacity(jobs.len());
        if self.backend() == super::Backend::Postgres {
            // The tenants' counters first (in one order), like every writer: nothing read
            // below can change under this transaction.
            let mut tenants: Vec<(&str, i64)> = Vec::new();
            for j in jobs {
                if !tenants.iter().any(|(t, _)| *t == j.account.tenant_id) {
                    tenants.push((&j.account.tenant_id, 0));
                }
            }
            reserve_positions(tx, &tenants).await?;
        }
        let plans = self.plan(tx, jobs).await?;
        let known = plans
            .iter()
            .filter(|p| matches!(p, Plan::Known { .. } | Plan::Fresh))
            .count();
        metrics::counter!("ingest_set_based_total").increment(known as u64);
        let mut at = 0;
        while at < jobs.len() {
            let run = plans[at..]
                .iter()
                .position(|p| *p == Plan::Single)
                .unwrap_or(jobs.len() - at);
            if run > 0 {
                out.extend(
                    self.store_known(tx, &jobs[at..at + run], &plans[at..at + run])
                        .await?,
                );
                at += run;
            }
            if at < jobs.len() {
                let job = &jobs[at];
                let tdb = self.for_tenant(&job.account.tenant_id);
                out.push(tdb.ingest_in(tx, job).await?);
                at += 1;
            }
        }
        Ok(out)
    }

    /// Decides each message's path with four set-based reads per tenant.
    async fn plan(
        &self,
        tx: &mut Transaction<'static, Any>,
        jobs: &[Inbound<'_>],
    ) -> StoreResult<Vec<Plan>> {
        let mut plans = vec![Plan::Single; jobs.len()];
        let mut tenants: Vec<&str> = Vec::new();
        for j in jobs {
            if !tenants.contains(&j.account.tenant_id.as_str()) {
                tenants.push(&j.account.tenant_id);
            }
        }
        for tenant in tenants {
            let idx: Vec<usize> = (0..jobs.len())
                .filter(|&i| jobs[i].account.tenant_id == tenant)
                .collect();
            let stored = self.stored_ids(tx, tenant, jobs, &idx).await?;
            let refs = self.known_refs(tx, tenant, jobs, &idx).await?;
            let (owners, threads) = self.identity_owners(tx, tenant, jobs, &idx).await?;
            // What an earlier message of this batch will write: a later one that shares it
            // must see that write, so it goes the single way too. A single-way message can
            // change the applicants its identities lead to (create, merge, name them) and
            // the threads its references lead to; nothing else the reads above saw.
            let mut seen_ids: HashSet<(&str, &str)> = HashSet::new();
            let mut seen_refs: HashSet<&str> = HashSet::new();
            let mut touched_keys: HashSet<(&str, &str)> = HashSet::new();
            let mut touched_contacts: HashSet<&String> = HashSet::new();
            for &i in &idx {
                let j = &jobs[i];
                let keys = || j.sender.iter().map(|k| (k.kind.as_str(), k.value.as_str()));
                let key = (j.account.id.as_str(), j.external_id);
                let repeat_in_batch = !seen_ids.insert(key);
                let shared_ref = j.refs.iter().any(|r| seen_refs.contains(r.as_str()));
                seen_refs.extend(j.refs.iter().map(String::as_str));
                let touched = keys().any(|k| {
                    touched_keys.contains(&k)
                        || owners.get(&k).is_some_and(|c| touched_contacts.contains(c))
                });
                plans[i] = if repeat_in_batch || shared_ref || touched {
                    Plan::Single
                } else {
                    decide(j, &key, &stored, &refs, &owners, &threads)
                };
                if matches!(plans[i], Plan::Single | Plan::Fresh) {
                    touched_keys.extend(keys());
                    touched_contacts.extend(keys().filter_map(|k| owners.get(&k)));
                }
            }
        }
        Ok(plans)
    }

    /// `(account, external id)` → `(message, thread)` of the batch's messages stored before.
    async fn stored_ids<'j>(
        &self,
        tx: &mut Transaction<'static, Any>,
        tenant: &str,
        jobs: &'j [Inbound<'_>],
        idx: &[usize],
    ) -> StoreResult<HashMap<(&'j str, &'j str), (String, String)>> {
        let terms = padded(idx);
        let sql = select_by_keys(
            self.backend(),
            "channel_account_id, external_id, id, thread_id",
            "thread_messages",
            &["tenant_id", "channel_account_id", "external_id"],
            terms.len(),
        );
        let mut q = sqlx::query_as::<_, (Option<String>, Option<String>, String, String)>(&sql);
        for &&i in &terms {
            q = q
                .bind(tenant.to_string())
                .bind(jobs[i].account.id.clone())
                .bind(jobs[i].external_id.to_string());
        }
        let rows = q.fetch_all(&mut **tx).await?;
        let mut found = HashMap::new();
        for &i in idx {
            let j = &jobs[i];
            if let Some((_, _, m, t)) = rows.iter().find(|(a, e, _, _)| {
                a.as_deref() == Some(j.account.id.as_str()) && e.as_deref() == Some(j.external_id)
            }) {
                found.insert(
                    (j.account.id.as_str(), j.external_id),
                    (m.clone(), t.clone()),
                );
            }
        }
        Ok(found)
    }

    /// The batch's references that lead to a thread already.
    async fn known_refs(
        &self,
        tx: &mut Transaction<'static, Any>,
        tenant: &str,
        jobs: &[Inbound<'_>],
        idx: &[usize],
    ) -> StoreResult<HashSet<String>> {
        let refs: Vec<&String> = idx.iter().flat_map(|&i| jobs[i].refs.iter()).collect();
        if refs.is_empty() {
            return Ok(HashSet::new());
        }
        let refs = padded(&refs);
        let sql = select_by_keys(
            self.backend(),
            "ref",
            "thread_refs",
            &["tenant_id", "ref"],
            refs.len(),
        );
        let mut q = sqlx::query_scalar::<_, String>(&sql);
        for r in refs {
            q = q.bind(tenant.to_string()).bind(r.to_string());
        }
        Ok(q.fetch_all(&mut **tx).await?.into_iter().collect())
    }

    /// For the batch's senders, in one read: `(kind, value)` → the contact that has the
    /// identity, and each such contact's live thread.
    async fn identity_owners<'j>(
        &self,
        tx: &mut Transaction<'static, Any>,
        tenant: &str,
        jobs: &'j [Inbound<'_>],
        idx: &[usize],
    ) -> StoreResult<(HashMap<(&'j str, &'j str), String>, LiveThreads)> {
        let keys: Vec<&super::IdentityKey> =
            idx.iter().flat_map(|&i| jobs[i].sender.iter()).collect();
        let mut owners = HashMap::new();
        let mut threads = LiveThreads::new();
        if keys.is_empty() {
            return Ok((owners, threads));
        }
        let keys = padded(&keys);
        let sql = select_by_keys(
            self.backend(),
            "i.kind, i.value, i.contact_id, t.id AS thread_id, c.name",
            "identities i LEFT JOIN threads t ON t.tenant_id = i.tenant_id \
             AND t.contact_id = i.contact_id AND t.merged_into IS NULL \
             LEFT JOIN contacts c ON c.id = i.contact_id",
            &["i.tenant_id", "i.kind", "i.value"],
            keys.len(),
        );
        type Row = (String, String, String, Option<String>, Option<String>);
        let mut q = sqlx::query_as::<_, Row>(&sql);
        for k in keys {
            q = q
                .bind(tenant.to_string())
                .bind(k.kind.clone())
                .bind(k.value.clone());
        }
        let rows = q.fetch_all(&mut **tx).await?;
        for &i in idx {
            for k in jobs[i].sender {
                if let Some((_, _, c, _, _)) = rows
                    .iter()
                    .find(|(kind, value, ..)| *kind == k.kind && *value == k.value)
                {
                    owners.insert((k.kind.as_str(), k.value.as_str()), c.clone());
                }
            }
        }
        // A contact reached through several identities comes once per identity.
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        for (_, _, contact, thread, name) in &rows {
            let Some(thread) = thread else { continue };
            if !seen.insert((contact, thread)) {
                continue;
            }
            threads
                .entry(contact.clone())
                .and_modify(|several| *several = None)
                .or_insert_with(|| Some((thread.clone(), name.clone())));
        }
        Ok((owners, threads))
    }

    /// Stores a run of messages planned `Known`, `Fresh` or `Repeat`: one insert for all
    /// their rows, one update for all their threads (each once, with its messages folded
    /// in), one insert for all events; a new applicant adds its contact, identities and
    /// thread. Events: `thread.message` for each message, then `thread.updated` once per
    /// thread (it goes with the thread's last message of the run).
    async fn store_known(
        &self,
        tx: &mut Transaction<'static, Any>,
        jobs: &[Inbound<'_>],
        plans: &[Plan],
    ) -> StoreResult<Vec<Ingested>> {
        let now = now_ms();
        // The thread of each message: known, or made now for a new applicant.
        let mut slots: Vec<Option<Slot>> = Vec::with_capacity(jobs.len());
        let mut queues: HashMap<(&str, Option<&str>), Option<String>> = HashMap::new();
        let mut fresh: Vec<Fresh<'_, '_>> = Vec::new();
        for (j, p) in jobs.iter().zip(plans) {
            slots.push(match p {
                Plan::Repeat { .. } => None,
                Plan::Known {
                    thread_id,
                    contact_name,
                } => Some(Slot {
                    thread_id: thread_id.clone(),
                    contact_name: contact_name.clone(),
                    created: false,
                    message_id: super::new_id(),
                }),
                Plan::Fresh => {
                    let queue = match &j.account.queue_id {
                        Some(q) => Some(q.clone()),
                        None => {
                            let at = (j.account.tenant_id.as_str(), j.vacancy);
                            match queues.get(&at) {
                                Some(q) => q.clone(),
                                None => {
                                    let q = self
                                        .for_tenant(&j.account.tenant_id)
                                        .queue_for_vacancy(tx, j.vacancy)
                                        .await?;
                                    queues.insert(at, q.clone());
                                    q
                                }
                            }
                        }
                    };
                    let slot = Slot {
                        thread_id: super::new_id(),
                        contact_name: j.sender_name.map(str::to_string),
                        created: true,
                        message_id: super::new_id(),
                    };
                    fresh.push(Fresh {
                        job: j,
                        contact_id: super::new_id(),
                        thread_id: slot.thread_id.clone(),
                        queue,
                    });
                    Some(slot)
                }
                Plan::Single => unreachable!("a run holds no single-path message"),
            });
        }
        insert_applicants(tx, &fresh, now).await?;
        let mut messages = insert_messages(tx, jobs, &slots, now).await?;
        // Each thread once: its message count and what its last message sets.
        let mut folds: Vec<Fold> = Vec::new();
        for (i, (j, slot)) in jobs.iter().zip(&slots).enumerate() {
            let Some(slot) = slot else { continue };
            let fold = match folds
                .iter_mut()
                .find(|f| f.thread_id == slot.thread_id && f.tenant_id == j.account.tenant_id)
            {
                Some(f) => f,
                None => {
                    folds.push(Fold {
                        tenant_id: j.account.tenant_id.clone(),
                        thread_id: slot.thread_id.clone(),
                        count: 0,
                        last: i,
                        awaiting: false,
                        subject: None,
                        vacancy: None,
                    });
                    folds.last_mut().expect("just pushed")
                }
            };
            fold.count += 1;
            fold.last = i;
            fold.awaiting |= !j.auto_submitted;
            if j.subject.is_some() {
                fold.subject = j.subject.map(str::to_string);
            }
            if fold.vacancy.is_none() {
                fold.vacancy = j.vacancy.map(str::to_string);
            }
        }
        let mut threads = update_threads(tx, jobs, &folds, now).await?;
        for (j, slot) in jobs.iter().zip(&slots) {
            if let Some(slot) = slot {
                if let Some(t) = threads.get_mut(&slot.thread_id) {
                    t.contact_name = slot.contact_name.clone();
                }
                for r in j.refs {
                    self.for_tenant(&j.account.tenant_id)
                        .add_ref(tx, r, &slot.thread_id)
                        .await?;
                }
            }
        }
        // Positions: a message event per message, a thread event per thread.
        let mut tenants: Vec<&str> = jobs
            .iter()
            .zip(&slots)
            .filter(|(_, s)| s.is_some())
            .map(|(j, _)| j.account.tenant_id.as_str())
            .collect();
        tenants.extend(
            folds
                .iter()
                .map(|f| jobs[f.last].account.tenant_id.as_str()),
        );
        let mut needed: Vec<(&str, i64)> = Vec::new();
        for tenant in tenants {
            match needed.iter_mut().find(|(t, _)| *t == tenant) {
                Some((_, n)) => *n += 1,
                None => needed.push((tenant, 1)),
            }
        }
        let last = reserve_positions(tx, &needed).await?;
        let mut next: HashMap<&str, i64> = needed
            .iter()
            .map(|(t, n)| (*t, last.get(*t).copied().unwrap_or(0) - n + 1))
            .collect();
        let mut rows: Vec<EventRow> = Vec::new();
        let mut events: Vec<Vec<StoredEvent>> = vec![Vec::new(); jobs.len()];
        let mut event = |i: usize, kind: &'static str, payload: String| {
            let tenant = jobs[i].account.tenant_id.as_str();
            let position = next.get_mut(tenant).expect("positions reserved");
            events[i].push(StoredEvent {
                position: *position,
                kind: kind.into(),
                audience: Audience::Tenant,
                payload: serde_json::value::RawValue::from_string(payload.clone())
                    .expect("payload is JSON"),
                created_at: now,
            });
            rows.push(EventRow {
                tenant_id: tenant.to_string(),
                position: *position,
                kind,
                audience: Audience::Tenant,
                payload,
            });
            *position += 1;
        };
        for (i, slot) in slots.iter().enumerate() {
            if let Some(slot) = slot {
                let m = messages
                    .get(&slot.message_id)
                    .ok_or(super::StoreError::NotFound)?;
                event(i, "thread.message", to_json(m));
            }
        }
        for f in &folds {
            let t = threads
                .get(&f.thread_id)
                .ok_or(super::StoreError::NotFound)?;
            event(f.last, "thread.updated", to_json(t));
        }
        insert_events(tx, &rows, now).await?;
        let mut accounts: Vec<(&str, &str)> = Vec::new();
        for (j, slot) in jobs.iter().zip(&slots) {
            let key = (j.account.tenant_id.as_str(), j.account.id.as_str());
            if slot.is_some() && needs_touch(j.account, now) && !accounts.contains(&key) {
                accounts.push(key);
            }
        }
        for (tenant, account) in accounts {
            self.for_tenant(tenant)
                .touch_account_inbound(tx, account, now)
                .await?;
        }
        let mut out = Vec::with_capacity(jobs.len());
        for ((p, slot), events) in plans.iter().zip(slots).zip(events) {
            out.push(match (p, slot) {
                (
                    Plan::Repeat {
                        message_id,
                        thread_id,
                    },
                    _,
                ) => Ingested::Duplicate {
                    thread_id: thread_id.clone(),
                    message_id: message_id.clone(),
                },
                (_, Some(slot)) => Ingested::Stored {
                    thread: Box::new(
                        threads
                            .get(&slot.thread_id)
                            .cloned()
                            .ok_or(super::StoreError::NotFound)?,
                    ),
                    message: Box::new(
                        messages
                            .remove(&slot.message_id)
                            .ok_or(super::StoreError::NotFound)?,
                    ),
                    contact_created: slot.created,
                    events,
                },
                (_, None) => unreachable!("every stored message has its slot"),
            });
        }
        Ok(out)
    }
}

/// Contact → its one live thread and the contact's name (`None`: several live threads).
type LiveThreads = HashMap<String, Option<(String, Option<String>)>>;

/// How recent an account's `last_inbound_at` may be for a busy hook to leave it as it is.
pub(crate) const TOUCH_ACCOUNT_EVERY_MS: i64 = 5_000;

/// Whether a message that arrived on `account` (as its hook read it, at most
/// [`super::channels::HOOK_ACCOUNT_TTL`] ago) must write the account's `last_inbound_at`
/// and health: a busy account is written every few seconds, not on every batch (a round
/// trip and a row write each on PostgreSQL). It is always written when the account is
/// marked "no inbound" (that is over now), and when it expects messages within a minute
/// or less. The status poll allows [`TOUCH_ACCOUNT_EVERY_MS`] more before it calls an
/// account silent.
fn needs_touch(account: &super::ChannelAccount, now: i64) -> bool {
    let recent = account
        .last_inbound_at
        .is_some_and(|t| now - t.timestamp_millis() < TOUCH_ACCOUNT_EVERY_MS);
    let patient = account.inbound_expected_within_s.is_none_or(|s| s > 60);
    !(recent && patient && account.health_class.as_deref() != Some("no_inbound"))
}

/// The plan of one message from the batch's reads (nothing earlier in the batch touches it).
fn decide(
    j: &Inbound<'_>,
    key: &(&str, &str),
    stored: &HashMap<(&str, &str), (String, String)>,
    refs: &HashSet<String>,
    owners: &HashMap<(&str, &str), String>,
    threads: &LiveThreads,
) -> Plan {
    if let Some((message_id, thread_id)) = stored.get(key) {
        return Plan::Repeat {
            message_id: message_id.clone(),
            thread_id: thread_id.clone(),
        };
    }
    if j.refs
        .iter()
        .any(|r| r.starts_with("thread:") || refs.contains(r.as_str()))
    {
        return Plan::Single; // the reference decides the thread
    }
    let known = |k: &super::IdentityKey| owners.contains_key(&(k.kind.as_str(), k.value.as_str()));
    if j.assign_to.is_none() && !j.sender.iter().any(known) {
        return Plan::Fresh;
    }
    let mut owner: Option<&String> = None;
    for k in j.sender {
        match (owners.get(&(k.kind.as_str(), k.value.as_str())), owner) {
            (None, _) => return Plan::Single, // an identity to add
            (Some(o), None) => owner = Some(o),
            (Some(o), Some(p)) if o != p => return Plan::Single, // a merge
            _ => {}
        }
    }
    let Some(Some((thread_id, name))) = owner.and_then(|c| threads.get(c)) else {
        return Plan::Single; // a new applicant, or one without a live thread
    };
    if j.sender_name.is_some() && name.is_none() {
        return Plan::Single; // the applicant's name is learnt on the single path
    }
    Plan::Known {
        thread_id: thread_id.clone(),
        contact_name: name.clone(),
    }
}

/// Where a message of a run goes.
struct Slot {
    thread_id: String,
    contact_name: Option<String>,
    /// The applicant is new.
    created: bool,
    message_id: String,
}

/// A thread's messages of a run, folded into one update.
struct Fold {
    tenant_id: String,
    thread_id: String,
    count: i64,
    /// The index of its last message (whose account, time and preview the thread takes).
    last: usize,
    /// Some message was not automatic: the thread awaits a reply.
    awaiting: bool,
    /// The last subject given.
    subject: Option<String>,
    /// The first vacancy given (a thread keeps its first).
    vacancy: Option<String>,
}

/// The rows of a run's messages, in one insert per piece ([`pieces`]); by id.
async fn insert_messages(
    tx: &mut Transaction<'static, Any>,
    jobs: &[Inbound<'_>],
    slots: &[Option<Slot>],
    now: i64,
) -> StoreResult<HashMap<String, ThreadMessage>> {
    let stored: Vec<(&Inbound<'_>, &Slot)> = jobs
        .iter()
        .zip(slots)
        .filter_map(|(j, s)| s.as_ref().map(|s| (j, s)))
        .collect();
    let mut out = HashMap::with_capacity(stored.len());
    for chunk in pieces(&stored) {
        let sql = format!(
            "INSERT INTO thread_messages (id, tenant_id, thread_id, origin_thread_id, direction, channel_account_id, \
             channel_kind, remote_address, subject, body_text, body_html, body_search, attachments, external_id, \
             auto_submitted, created_at, updated_at, display_text) VALUES {} RETURNING {MESSAGE_COLUMNS}",
            placeholders(super::sends::backend_of(tx), chunk.len(), 18)
        );
        let mut q = sqlx::query_as::<_, MessageRow>(&sql);
        for (j, slot) in chunk {
            q = q
                .bind(slot.message_id.clone())
                .bind(j.account.tenant_id.clone())
                .bind(slot.thread_id.clone())
                .bind(slot.thread_id.clone())
                .bind("in")
                .bind(j.account.id.clone())
                .bind(j.account.kind.clone())
                .bind(j.remote_address.map(str::to_string))
                .bind(j.subject.map(str::to_string))
                .bind(j.text.to_string())
                .bind(j.html.map(str::to_string))
                .bind(j.text.to_lowercase())
                .bind(to_json(&j.attachments))
                .bind(j.external_id.to_string())
                .bind(i64::from(j.auto_submitted))
                .bind(now)
                .bind(now)
                .bind(j.display_text.map(str::to_string));
        }
        for row in q.fetch_all(&mut **tx).await? {
            let m: ThreadMessage = row.into();
            out.insert(m.id.clone(), m);
        }
    }
    Ok(out)
}

/// Every thread of a run once, in one update per piece (the values of all in a CTE);
/// by id, without `contact_name`.
async fn update_threads(
    tx: &mut Transaction<'static, Any>,
    jobs: &[Inbound<'_>],
    folds: &[Fold],
    now: i64,
) -> StoreResult<HashMap<String, Thread>> {
    let returning = THREAD_RETURNING
        .split(", ")
        .map(|c| {
            let c = c.trim();
            if c.starts_with("CAST(") {
                c.to_string()
            } else {
                format!("threads.{c}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = HashMap::with_capacity(folds.len());
    for chunk in pieces(folds) {
        let sql = format!(
            "WITH v (tenant_id, id, n, account_id, kind, at, awaiting, preview, subject, vacancy) AS (VALUES {}) \
             UPDATE threads SET state = 'open', resolved_at = NULL, unread = threads.unread + v.n, \
             last_channel_account_id = v.account_id, last_channel_kind = v.kind, last_message_at = v.at, \
             last_inbound_at = v.at, awaiting_reply_since = COALESCE(threads.awaiting_reply_since, v.awaiting), \
             first_inbound_at = COALESCE(threads.first_inbound_at, v.at), \
             waiting_since = CASE WHEN threads.assignee_id IS NULL THEN COALESCE(threads.waiting_since, v.at) ELSE NULL END, \
             preview = v.preview, subject = COALESCE(v.subject, threads.subject), \
             vacancy = COALESCE(threads.vacancy, v.vacancy), updated_at = v.at \
             FROM v WHERE threads.tenant_id = v.tenant_id AND threads.id = v.id RETURNING {returning}",
            placeholders(super::sends::backend_of(tx), chunk.len(), 10)
        );
        let mut q = sqlx::query_as::<_, ThreadRow>(&sql);
        for f in chunk {
            let last = &jobs[f.last];
            q = q
                .bind(f.tenant_id.clone())
                .bind(f.thread_id.clone())
                .bind(f.count)
                .bind(last.account.id.clone())
                .bind(last.account.kind.clone())
                .bind(now)
                .bind(f.awaiting.then_some(now))
                .bind(preview_of(last.text))
                .bind(f.subject.clone())
                .bind(f.vacancy.clone());
        }
        for row in q.fetch_all(&mut **tx).await? {
            let t: Thread = row.into();
            out.insert(t.id.clone(), t);
        }
    }
    Ok(out)
}

/// A new applicant of a run: contact, identities and thread, made in sets.
struct Fresh<'a, 'j> {
    job: &'a Inbound<'j>,
    contact_id: String,
    thread_id: String,
    queue: Option<String>,
}

/// The new applicants of a run: one insert each for their contacts, identities and
/// threads (per piece).
async fn insert_applicants(
    tx: &mut Transaction<'static, Any>,
    fresh: &[Fresh<'_, '_>],
    now: i64,
) -> StoreResult<()> {
    for chunk in pieces(fresh) {
        let sql = format!(
            "INSERT INTO contacts (id, tenant_id, name, name_search, created_at, updated_at) VALUES {}",
            placeholders(super::sends::backend_of(tx), chunk.len(), 6)
        );
        let mut q = sqlx::query(&sql);
        for f in chunk {
            q = q
                .bind(f.contact_id.clone())
                .bind(f.job.account.tenant_id.clone())
                .bind(f.job.sender_name.map(str::to_string))
                .bind(f.job.sender_name.map(str::to_lowercase))
                .bind(now)
                .bind(now);
        }
        q.execute(&mut **tx).await?;
    }
    let mut identities: Vec<(&Fresh<'_, '_>, &super::IdentityKey)> = Vec::new();
    for f in fresh {
        for k in f.job.sender {
            if !identities
                .iter()
                .any(|(g, l)| g.contact_id == f.contact_id && *l == k)
            {
                identities.push((f, k));
            }
        }
    }
    for chunk in pieces(&identities) {
        let sql = format!(
            "INSERT INTO identities (id, tenant_id, contact_id, kind, value, created_at) VALUES {}",
            placeholders(super::sends::backend_of(tx), chunk.len(), 6)
        );
        let mut q = sqlx::query(&sql);
        for (f, k) in chunk {
            q = q
                .bind(super::new_id())
                .bind(f.job.account.tenant_id.clone())
                .bind(f.contact_id.clone())
                .bind(k.kind.clone())
                .bind(k.value.clone())
                .bind(now);
        }
        q.execute(&mut **tx).await?;
    }
    for chunk in pieces(fresh) {
        let sql = format!(
            "INSERT INTO threads (id, tenant_id, contact_id, origin_contact_id, state, queue_id, vacancy, \
             last_message_at, created_at, updated_at) VALUES {}",
            placeholders(super::sends::backend_of(tx), chunk.len(), 10)
        );
        let mut q = sqlx::query(&sql);
        for f in chunk {
            q = q
                .bind(f.thread_id.clone())
                .bind(f.job.account.tenant_id.clone())
                .bind(f.contact_id.clone())
                .bind(f.contact_id.clone())
                .bind("open")
                .bind(f.queue.clone())
                .bind(f.job.vacancy.map(str::to_string))
                .bind(now)
                .bind(now)
                .bind(now);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{needs_touch, TOUCH_ACCOUNT_EVERY_MS};
    use crate::store::ChannelAccount;

    fn account(
        last_inbound_ms: Option<i64>,
        class: Option<&str>,
        expect: Option<i64>,
    ) -> ChannelAccount {
        let at = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap();
        ChannelAccount {
            id: "a".into(),
            kind: "sms".into(),
            provider: "webhook".into(),
            name: "n".into(),
            address: "+70000000000".into(),
            owner_user_id: None,
            settings: serde_json::json!({}),
            queue_id: None,
            enabled: true,
            health: if class.is_some() { "degraded" } else { "ok" }.into(),
            health_class: class.map(Into::into),
            last_error: None,
            health_since: at(0),
            next_retry_at: None,
            last_inbound_at: last_inbound_ms.map(at),
            last_outbound_at: None,
            inbound_expected_within_s: expect,
            created_at: at(0),
            updated_at: at(0),
            tenant_id: "t".into(),
            secret: None,
            sync_state: None,
        }
    }

    #[test]
    fn a_busy_account_is_written_every_few_seconds_and_always_when_it_has_news() {
        let now = 1_000_000;
        let just = Some(now - 100);
        let long_ago = Some(now - TOUCH_ACCOUNT_EVERY_MS - 1);
        assert!(
            !needs_touch(&account(just, None, None), now),
            "busy, nothing new"
        );
        assert!(!needs_touch(&account(just, None, Some(3600)), now));
        assert!(needs_touch(&account(long_ago, None, None), now), "stale");
        assert!(
            needs_touch(&account(None, None, None), now),
            "never heard from"
        );
        assert!(
            needs_touch(&account(just, Some("no_inbound"), None), now),
            "\"no inbound\" is over at once"
        );
        assert!(
            !needs_touch(&account(just, Some("auth_failure"), None), now),
            "other health states are not the inbound path's to clear"
        );
        assert!(
            needs_touch(&account(just, None, Some(30)), now),
            "an account that expects messages every 30 s is kept exact"
        );
    }
}
