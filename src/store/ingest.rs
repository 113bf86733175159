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
use super::sends::{insert_events, reserve_positions, EventRow};
use super::threads::{Inbound, Ingested};
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
            reserve_positions(tx, self.backend(), &tenants).await?;
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
            let owners = self.identity_owners(tx, tenant, jobs, &idx).await?;
            let contacts: Vec<String> = owners.values().cloned().collect();
            let threads = self.live_threads(tx, tenant, &contacts).await?;
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
        let sql = format!(
            "SELECT channel_account_id, external_id, id, thread_id FROM thread_messages \
             WHERE {}",
            pairs("channel_account_id", "external_id", idx.len())
        );
        let mut q = sqlx::query_as::<_, (Option<String>, Option<String>, String, String)>(&sql)
            .bind(tenant.to_string());
        for &i in idx {
            q = q
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
        let sql = format!(
            "SELECT ref FROM thread_refs WHERE tenant_id = $1 AND ref IN ({})",
            list(2, refs.len())
        );
        let mut q = sqlx::query_scalar::<_, String>(&sql).bind(tenant.to_string());
        for r in refs {
            q = q.bind(r.clone());
        }
        Ok(q.fetch_all(&mut **tx).await?.into_iter().collect())
    }

    /// `(kind, value)` → the contact that has the identity, for the batch's senders.
    async fn identity_owners<'j>(
        &self,
        tx: &mut Transaction<'static, Any>,
        tenant: &str,
        jobs: &'j [Inbound<'_>],
        idx: &[usize],
    ) -> StoreResult<HashMap<(&'j str, &'j str), String>> {
        let keys: Vec<&super::IdentityKey> =
            idx.iter().flat_map(|&i| jobs[i].sender.iter()).collect();
        let mut owners = HashMap::new();
        if keys.is_empty() {
            return Ok(owners);
        }
        let sql = format!(
            "SELECT kind, value, contact_id FROM identities WHERE {}",
            pairs("kind", "value", keys.len())
        );
        let mut q = sqlx::query_as::<_, (String, String, String)>(&sql).bind(tenant.to_string());
        for k in &keys {
            q = q.bind(k.kind.clone()).bind(k.value.clone());
        }
        let rows = q.fetch_all(&mut **tx).await?;
        for &i in idx {
            for k in jobs[i].sender {
                if let Some((_, _, c)) = rows
                    .iter()
                    .find(|(kind, value, _)| *kind == k.kind && *value == k.value)
                {
                    owners.insert((k.kind.as_str(), k.value.as_str()), c.clone());
                }
            }
        }
        Ok(owners)
    }

    /// Contact → its one live thread and its name (`None`: no live thread, or several).
    async fn live_threads(
        &self,
        tx: &mut Transaction<'static, Any>,
        tenant: &str,
        contacts: &[String],
    ) -> StoreResult<HashMap<String, Option<(String, Option<String>)>>> {
        let mut out: HashMap<String, Option<(String, Option<String>)>> = HashMap::new();
        if contacts.is_empty() {
            return Ok(out);
        }
        let sql = format!(
            "SELECT t.contact_id, t.id, c.name FROM threads t JOIN contacts c ON c.id = t.contact_id \
             WHERE t.tenant_id = $1 AND t.merged_into IS NULL AND t.contact_id IN ({})",
            list(2, contacts.len())
        );
        let mut q =
            sqlx::query_as::<_, (String, String, Option<String>)>(&sql).bind(tenant.to_string());
        for c in contacts {
            q = q.bind(c.clone());
        }
        for (contact, thread, name) in q.fetch_all(&mut **tx).await? {
            match out.get(&contact) {
                None => {
                    out.insert(contact, Some((thread, name)));
                }
                Some(_) => {
                    out.insert(contact, None);
                }
            }
        }
        Ok(out)
    }

    /// Stores a run of messages planned `Known`, `Fresh` or `Repeat`: two statements per
    /// known applicant's message (five or so for a new one), the rest once for the run.
    async fn store_known(
        &self,
        tx: &mut Transaction<'static, Any>,
        jobs: &[Inbound<'_>],
        plans: &[Plan],
    ) -> StoreResult<Vec<Ingested>> {
        // Two events per stored message: `thread.message` and `thread.updated`.
        let mut needed: Vec<(&str, i64)> = Vec::new();
        for (j, p) in jobs.iter().zip(plans) {
            if matches!(p, Plan::Known { .. } | Plan::Fresh) {
                match needed.iter_mut().find(|(t, _)| *t == j.account.tenant_id) {
                    Some((_, n)) => *n += 2,
                    None => needed.push((&j.account.tenant_id, 2)),
                }
            }
        }
        let last = reserve_positions(tx, self.backend(), &needed).await?;
        let mut next: HashMap<&str, i64> = needed
            .iter()
            .map(|(t, n)| (*t, last.get(*t).copied().unwrap_or(0) - n + 1))
            .collect();
        let now = now_ms();
        let mut rows: Vec<EventRow> = Vec::new();
        let mut out = Vec::with_capacity(jobs.len());
        let mut accounts: Vec<(&str, &str)> = Vec::new();
        let mut queues: HashMap<(&str, Option<&str>), Option<String>> = HashMap::new();
        for (j, p) in jobs.iter().zip(plans) {
            let mut created = false;
            let (thread_id, contact_name) = match p {
                Plan::Repeat {
                    message_id,
                    thread_id,
                } => {
                    out.push(Ingested::Duplicate {
                        thread_id: thread_id.clone(),
                        message_id: message_id.clone(),
                    });
                    continue;
                }
                Plan::Known {
                    thread_id,
                    contact_name,
                } => (thread_id.clone(), contact_name.clone()),
                Plan::Fresh => {
                    let tdb = self.for_tenant(&j.account.tenant_id);
                    let contact = tdb.insert_contact(tx, j.sender_name, now).await?;
                    let mut keys: Vec<&super::IdentityKey> = Vec::new();
                    for k in j.sender {
                        if !keys.contains(&k) {
                            tdb.insert_identity(tx, &contact, k).await?;
                            keys.push(k);
                        }
                    }
                    let queue = match &j.account.queue_id {
                        Some(q) => Some(q.clone()),
                        None => {
                            let at = (j.account.tenant_id.as_str(), j.vacancy);
                            match queues.get(&at) {
                                Some(q) => q.clone(),
                                None => {
                                    let q = tdb.queue_for_vacancy(tx, j.vacancy).await?;
                                    queues.insert(at, q.clone());
                                    q
                                }
                            }
                        }
                    };
                    let thread = tdb
                        .insert_thread(tx, &contact, queue.as_deref(), j, now)
                        .await?;
                    created = true;
                    (thread, j.sender_name.map(str::to_string))
                }
                Plan::Single => unreachable!("a run holds no single-path message"),
            };
            let thread_id = &thread_id;
            let tenant = j.account.tenant_id.as_str();
            let tdb = self.for_tenant(tenant);
            let message = tdb.insert_inbound(tx, j, thread_id, now).await?;
            let mut thread = tdb.touch_thread_inbound(tx, j, thread_id, now).await?;
            thread.contact_name = contact_name;
            for r in j.refs {
                tdb.add_ref(tx, r, thread_id).await?;
            }
            if !accounts.contains(&(tenant, j.account.id.as_str())) {
                accounts.push((tenant, &j.account.id));
            }
            let position = next.get_mut(tenant).expect("positions reserved");
            let mut events = Vec::with_capacity(2);
            for (kind, payload) in [
                ("thread.message", to_json(&message)),
                ("thread.updated", to_json(&thread)),
            ] {
                events.push(StoredEvent {
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
            }
            out.push(Ingested::Stored {
                thread: Box::new(thread),
                message: Box::new(message),
                contact_created: created,
                events,
            });
        }
        insert_events(tx, &rows, now).await?;
        for (tenant, account) in accounts {
            self.for_tenant(tenant)
                .touch_account_inbound(tx, account, now)
                .await?;
        }
        Ok(out)
    }
}

/// `$from, $from+1, …` — `n` placeholders for an `IN (…)` list.
fn list(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `(tenant_id = $1 AND a = $2 AND b = $3) OR …` for `n` pairs: the tenant in every term,
/// so that each term is one lookup in the unique index on `(tenant_id, a, b)` (with the
/// tenant outside, SQLite reads every row of the tenant instead).
fn pairs(a: &str, b: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "(tenant_id = $1 AND {a} = ${} AND {b} = ${})",
                2 + 2 * i,
                3 + 2 * i
            )
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// The plan of one message from the batch's reads (nothing earlier in the batch touches it).
fn decide(
    j: &Inbound<'_>,
    key: &(&str, &str),
    stored: &HashMap<(&str, &str), (String, String)>,
    refs: &HashSet<String>,
    owners: &HashMap<(&str, &str), String>,
    threads: &HashMap<String, Option<(String, Option<String>)>>,
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
