//! Applicants (contacts) and their identities (R-HUB-2, R-COMM-4): a phone, an email, a
//! board applicant id — each unique in a tenant. When identities of two contacts meet they
//! merge, recorded so that the merge can be undone.

use serde::{Deserialize, Serialize};
use sqlx::{Any, FromRow, Transaction};
use utoipa::ToSchema;

use super::events::{push_event, Audience, StoredEvent};
use super::rooms::to_json;
use super::{new_id, now_ms, to_time, StoreError, StoreResult, TenantDb};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq, Hash)]
pub struct IdentityKey {
    /// `phone`, `email`, `hh`, `telegram`, …
    pub kind: String,
    /// Normalised: phones in E.164, emails in lower case.
    pub value: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Identity {
    pub id: String,
    pub kind: String,
    pub value: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// A phone whose owner replied STOP: no SMS goes to it until they reply START.
    pub opted_out_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Contact {
    pub id: String,
    pub name: Option<String>,
    pub city: Option<String>,
    pub identities: Vec<Identity>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContactMerge {
    pub id: String,
    pub survivor_id: String,
    pub merged_id: String,
    pub moved_identities: Vec<String>,
    pub actor_user_id: Option<String>,
    /// `identity_match` (automatic) or `manual`.
    pub reason: String,
    pub at: chrono::DateTime<chrono::Utc>,
    pub undone_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(FromRow)]
struct ContactRow {
    id: String,
    name: Option<String>,
    city: Option<String>,
    created_at: i64,
    updated_at: i64,
}

#[derive(FromRow)]
struct IdentityRow {
    id: String,
    kind: String,
    value: String,
    created_at: i64,
    opted_out_at: Option<i64>,
}

#[derive(FromRow)]
struct MergeRow {
    id: String,
    survivor_id: String,
    merged_id: String,
    moved_identities: String,
    actor_user_id: Option<String>,
    reason: String,
    at: i64,
    undone_at: Option<i64>,
}

impl From<MergeRow> for ContactMerge {
    fn from(r: MergeRow) -> Self {
        ContactMerge {
            id: r.id,
            survivor_id: r.survivor_id,
            merged_id: r.merged_id,
            moved_identities: serde_json::from_str(&r.moved_identities).unwrap_or_default(),
            actor_user_id: r.actor_user_id,
            reason: r.reason,
            at: to_time(r.at),
            undone_at: r.undone_at.map(to_time),
        }
    }
}

/// What resolving an inbound sender's identities led to.
#[derive(Debug)]
pub struct Resolved {
    pub contact: Contact,
    pub created: bool,
    /// Merges made because the identities belonged to different contacts.
    pub merges: Vec<ContactMerge>,
}

impl TenantDb {
    pub(super) async fn contact_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: &str,
    ) -> StoreResult<Contact> {
        let row: ContactRow = sqlx::query_as(
            "SELECT id, name, city, created_at, updated_at FROM contacts \
             WHERE tenant_id = $1 AND id = $2 AND merged_into IS NULL",
        )
        .bind(&self.tenant_id)
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
        let identities: Vec<IdentityRow> = sqlx::query_as(
            "SELECT id, kind, value, created_at, opted_out_at FROM identities WHERE tenant_id = $1 AND contact_id = $2 \
             ORDER BY kind, value",
        )
        .bind(&self.tenant_id)
        .bind(id)
        .fetch_all(&mut **tx)
        .await?;
        Ok(Contact {
            id: row.id,
            name: row.name,
            city: row.city,
            identities: identities
                .into_iter()
                .map(|i| Identity {
                    id: i.id,
                    kind: i.kind,
                    value: i.value,
                    created_at: to_time(i.created_at),
                    opted_out_at: i.opted_out_at.map(to_time),
                })
                .collect(),
            created_at: to_time(row.created_at),
            updated_at: to_time(row.updated_at),
        })
    }

    pub async fn contact(&self, id: &str) -> StoreResult<Contact> {
        let mut tx = self.pool().begin().await?;
        let c = self.contact_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(c)
    }

    /// A new applicant (no identities yet); returns its id.
    pub(super) async fn insert_contact(
        &self,
        tx: &mut Transaction<'static, Any>,
        name: Option<&str>,
        now: i64,
    ) -> StoreResult<String> {
        let id = new_id();
        sqlx::query("INSERT INTO contacts (id, tenant_id, name, name_search, created_at, updated_at) VALUES ($1, $2, $3, $5, $4, $4)")
            .bind(&id)
            .bind(&self.tenant_id)
            .bind(name)
            .bind(now)
            .bind(name.map(str::to_lowercase))
            .execute(&mut **tx)
            .await?;
        Ok(id)
    }

    pub(super) async fn insert_identity(
        &self,
        tx: &mut Transaction<'static, Any>,
        contact_id: &str,
        key: &IdentityKey,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO identities (id, tenant_id, contact_id, kind, value, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new_id())
        .bind(&self.tenant_id)
        .bind(contact_id)
        .bind(&key.kind)
        .bind(&key.value)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub(super) async fn owner_of(
        &self,
        tx: &mut Transaction<'static, Any>,
        key: &IdentityKey,
    ) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT contact_id FROM identities WHERE tenant_id = $1 AND kind = $2 AND value = $3",
        )
        .bind(&self.tenant_id)
        .bind(&key.kind)
        .bind(&key.value)
        .fetch_optional(&mut **tx)
        .await?)
    }

    /// Creates a contact with identities; `Conflict("identity_taken")` when one belongs to
    /// another contact already.
    pub async fn create_contact(
        &self,
        name: Option<&str>,
        city: Option<&str>,
        identities: &[IdentityKey],
    ) -> StoreResult<Contact> {
        let (mut tx, _gate) = self.begin_write().await?;
        for key in identities {
            if self.owner_of(&mut tx, key).await?.is_some() {
                return Err(StoreError::Conflict("identity_taken".into()));
            }
        }
        let id = new_id();
        let now = now_ms();
        sqlx::query("INSERT INTO contacts (id, tenant_id, name, name_search, city, created_at, updated_at) VALUES ($1, $2, $3, $6, $4, $5, $5)")
            .bind(&id)
            .bind(&self.tenant_id)
            .bind(name)
            .bind(city)
            .bind(now)
            .bind(name.map(str::to_lowercase))
            .execute(&mut *tx)
            .await?;
        for key in identities {
            self.insert_identity(&mut tx, &id, key).await?;
        }
        let c = self.contact_in(&mut tx, &id).await?;
        tx.commit().await?;
        Ok(c)
    }

    /// Adds an identity to a contact; `Conflict("identity_taken")` when another contact has it.
    pub async fn add_identity(&self, contact_id: &str, key: &IdentityKey) -> StoreResult<Contact> {
        let (mut tx, _gate) = self.begin_write().await?;
        self.contact_in(&mut tx, contact_id).await?;
        match self.owner_of(&mut tx, key).await? {
            Some(owner) if owner == contact_id => {}
            Some(_) => return Err(StoreError::Conflict("identity_taken".into())),
            None => self.insert_identity(&mut tx, contact_id, key).await?,
        }
        let c = self.contact_in(&mut tx, contact_id).await?;
        tx.commit().await?;
        Ok(c)
    }

    /// The contact an inbound sender is: found by any of its identities (adding the ones
    /// it lacks), merged when the identities belong to several contacts (exact equality,
    /// recorded for undo), or created.
    pub async fn resolve_contact(
        &self,
        name: Option<&str>,
        identities: &[IdentityKey],
    ) -> StoreResult<(Resolved, Vec<StoredEvent>)> {
        let (mut tx, position, _gate) = self.begin_with_position().await?;
        let mut first = Some(position);
        let mut events = Vec::new();
        let r = self
            .resolve_in(&mut tx, name, identities, &mut first, &mut events)
            .await?;
        push_event(
            &mut tx,
            &self.tenant_id,
            &mut first,
            "contact.updated",
            Audience::Tenant,
            to_json(&r.contact),
            &mut events,
        )
        .await?;
        tx.commit().await?;
        Ok((r, events))
    }

    pub(super) async fn resolve_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        name: Option<&str>,
        identities: &[IdentityKey],
        first: &mut Option<i64>,
        events: &mut Vec<StoredEvent>,
    ) -> StoreResult<Resolved> {
        let (survivor, created, merges) = self
            .resolve_ids(tx, name, identities, first, events)
            .await?;
        let contact = self.contact_in(tx, &survivor).await?;
        Ok(Resolved {
            contact,
            created,
            merges,
        })
    }

    /// [`TenantDb::resolve_in`] without reading the contact back: its id, whether it was
    /// created, and the merges made (ingest needs no more).
    pub(super) async fn resolve_ids(
        &self,
        tx: &mut Transaction<'static, Any>,
        name: Option<&str>,
        identities: &[IdentityKey],
        first: &mut Option<i64>,
        events: &mut Vec<StoredEvent>,
    ) -> StoreResult<(String, bool, Vec<ContactMerge>)> {
        let mut owners: Vec<String> = Vec::new();
        // Identities nobody has yet (merges move identities between contacts but never
        // give one to nobody, so these stay free until inserted below).
        let mut free: Vec<&IdentityKey> = Vec::new();
        for key in identities {
            match self.owner_of(tx, key).await? {
                Some(owner) => {
                    if !owners.contains(&owner) {
                        owners.push(owner);
                    }
                }
                None => {
                    if !free.contains(&key) {
                        free.push(key);
                    }
                }
            }
        }
        let now = now_ms();
        let (survivor, created) = match owners.first() {
            Some(first) => (first.clone(), false),
            None => (self.insert_contact(tx, name, now).await?, true),
        };
        let mut merges = Vec::new();
        for other in owners.iter().skip(1) {
            merges.push(
                self.merge_in(tx, &survivor, other, None, "identity_match", first, events)
                    .await?,
            );
        }
        for key in free {
            self.insert_identity(tx, &survivor, key).await?;
        }
        if let (Some(n), false) = (name, created) {
            sqlx::query("UPDATE contacts SET name = $3, name_search = $4 WHERE tenant_id = $1 AND id = $2 AND name IS NULL")
                .bind(&self.tenant_id)
                .bind(&survivor)
                .bind(n)
                .bind(n.to_lowercase())
                .execute(&mut **tx)
                .await?;
        }
        Ok((survivor, created, merges))
    }

    // The transaction, the two applicants, who and why, and where the events go.
    #[allow(clippy::too_many_arguments)]
    async fn merge_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        survivor: &str,
        merged: &str,
        actor: Option<&str>,
        reason: &str,
        first: &mut Option<i64>,
        events: &mut Vec<StoredEvent>,
    ) -> StoreResult<ContactMerge> {
        // Both must exist in this tenant first: another tenant's id is a 404, never a hint.
        self.contact_in(tx, survivor).await?;
        self.contact_in(tx, merged).await?;
        if survivor == merged {
            return Err(StoreError::Conflict("same_contact".into()));
        }
        let moved: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM identities WHERE tenant_id = $1 AND contact_id = $2",
        )
        .bind(&self.tenant_id)
        .bind(merged)
        .fetch_all(&mut **tx)
        .await?;
        let now = now_ms();
        sqlx::query(
            "UPDATE identities SET contact_id = $3 WHERE tenant_id = $1 AND contact_id = $2",
        )
        .bind(&self.tenant_id)
        .bind(merged)
        .bind(survivor)
        .execute(&mut **tx)
        .await?;
        sqlx::query("UPDATE contacts SET merged_into = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2")
            .bind(&self.tenant_id)
            .bind(merged)
            .bind(survivor)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        sqlx::query("UPDATE contacts SET updated_at = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(&self.tenant_id)
            .bind(survivor)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        self.merge_threads(tx, survivor, merged, first, events)
            .await?;
        let id = new_id();
        let row: MergeRow = sqlx::query_as(
            "INSERT INTO contact_merges (id, tenant_id, survivor_id, merged_id, moved_identities, actor_user_id, reason, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             RETURNING id, survivor_id, merged_id, moved_identities, actor_user_id, reason, at, undone_at",
        )
        .bind(&id)
        .bind(&self.tenant_id)
        .bind(survivor)
        .bind(merged)
        .bind(serde_json::to_string(&moved).expect("serialisable"))
        .bind(actor)
        .bind(reason)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
        Ok(row.into())
    }

    /// Merges `merged` into `survivor` by a recruiter's decision.
    pub async fn merge_contacts(
        &self,
        survivor: &str,
        merged: &str,
        actor: &str,
    ) -> StoreResult<(ContactMerge, Vec<StoredEvent>)> {
        let (mut tx, position, _gate) = self.begin_with_position().await?;
        let mut first = Some(position);
        let mut events = Vec::new();
        let m = self
            .merge_in(
                &mut tx,
                survivor,
                merged,
                Some(actor),
                "manual",
                &mut first,
                &mut events,
            )
            .await?;
        push_event(
            &mut tx,
            &self.tenant_id,
            &mut first,
            "contact.merged",
            Audience::Tenant,
            to_json(&m),
            &mut events,
        )
        .await?;
        tx.commit().await?;
        Ok((m, events))
    }

    /// Undoes a merge: the merged contact comes back with the identities it brought.
    pub async fn undo_merge(
        &self,
        merge_id: &str,
    ) -> StoreResult<(ContactMerge, Vec<StoredEvent>)> {
        let (mut tx, position, _gate) = self.begin_with_position().await?;
        let mut first = Some(position);
        let mut events = Vec::new();
        let m: MergeRow = sqlx::query_as(
            "SELECT id, survivor_id, merged_id, moved_identities, actor_user_id, reason, at, undone_at \
             FROM contact_merges WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(merge_id)
        .fetch_one(&mut *tx)
        .await?;
        if m.undone_at.is_some() {
            return Err(StoreError::Conflict("merge_already_undone".into()));
        }
        let moved: Vec<String> = serde_json::from_str(&m.moved_identities).unwrap_or_default();
        // Only the latest state can be unwound: the survivor must still stand on its own and
        // still hold what it took (undo a later merge of it first).
        let survivor_live: Option<String> = sqlx::query_scalar(
            "SELECT id FROM contacts WHERE tenant_id = $1 AND id = $2 AND merged_into IS NULL",
        )
        .bind(&self.tenant_id)
        .bind(&m.survivor_id)
        .fetch_optional(&mut *tx)
        .await?;
        let mut held = 0usize;
        for identity in &moved {
            let owner: Option<String> = sqlx::query_scalar(
                "SELECT contact_id FROM identities WHERE tenant_id = $1 AND id = $2",
            )
            .bind(&self.tenant_id)
            .bind(identity)
            .fetch_optional(&mut *tx)
            .await?;
            held += usize::from(owner.as_deref() == Some(m.survivor_id.as_str()));
        }
        if survivor_live.is_none() || held != moved.len() {
            return Err(StoreError::Conflict("merge_superseded".into()));
        }
        for identity in &moved {
            sqlx::query("UPDATE identities SET contact_id = $3 WHERE tenant_id = $1 AND id = $2 AND contact_id = $4")
                .bind(&self.tenant_id)
                .bind(identity)
                .bind(&m.merged_id)
                .bind(&m.survivor_id)
                .execute(&mut *tx)
                .await?;
        }
        let now = now_ms();
        sqlx::query("UPDATE contacts SET merged_into = NULL, updated_at = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(&self.tenant_id)
            .bind(&m.merged_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let row: MergeRow = sqlx::query_as(
            "UPDATE contact_merges SET undone_at = $3 WHERE tenant_id = $1 AND id = $2 \
             RETURNING id, survivor_id, merged_id, moved_identities, actor_user_id, reason, at, undone_at",
        )
        .bind(&self.tenant_id)
        .bind(merge_id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        self.unmerge_threads(
            &mut tx,
            &m.survivor_id,
            &m.merged_id,
            &mut first,
            &mut events,
        )
        .await?;
        let undone: ContactMerge = row.into();
        push_event(
            &mut tx,
            &self.tenant_id,
            &mut first,
            "contact.merge_undone",
            Audience::Tenant,
            to_json(&undone),
            &mut events,
        )
        .await?;
        tx.commit().await?;
        Ok((undone, events))
    }

    /// Records an SMS opt-out (STOP) or opt-in (START) of a phone.
    pub async fn set_opted_out(&self, phone: &str, out: bool) -> StoreResult<()> {
        let (mut tx, _gate) = self.begin_write().await?;
        sqlx::query(
            "UPDATE identities SET opted_out_at = $3 WHERE tenant_id = $1 AND kind = 'phone' AND value = $2",
        )
        .bind(&self.tenant_id)
        .bind(phone)
        .bind(out.then(now_ms))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether a phone opted out of SMS.
    pub async fn opted_out(&self, phone: &str) -> StoreResult<bool> {
        let at: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT opted_out_at FROM identities WHERE tenant_id = $1 AND kind = 'phone' AND value = $2",
        )
        .bind(&self.tenant_id)
        .bind(phone)
        .fetch_optional(self.pool())
        .await?;
        Ok(at.flatten().is_some())
    }

    /// Merges that made this applicant what it is (as survivor or merged), newest first.
    /// Applicants who may be the same person as `contact_id` — for a recruiter to merge
    /// (equal identities merge by themselves). Reasons: `same_name` (the same name, any
    /// case), `same_phone` (the same last nine digits under another country code or
    /// prefix), `same_email_local_part` (the same mailbox name at another domain). At
    /// most ten, the most reasons first.
    pub async fn merge_suggestions(
        &self,
        contact_id: &str,
    ) -> StoreResult<Vec<(Contact, Vec<&'static str>)>> {
        let mut tx = self.pool().begin().await?;
        let me = self.contact_in(&mut tx, contact_id).await?;
        let mut found: Vec<(String, Vec<&'static str>)> = Vec::new();
        let mut add = |id: String, reason: &'static str| {
            if id == me.id {
                return;
            }
            match found.iter_mut().find(|(c, _)| *c == id) {
                Some((_, r)) if !r.contains(&reason) => r.push(reason),
                Some(_) => {}
                None => found.push((id, vec![reason])),
            }
        };
        if let Some(name) = me.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
            let ids: Vec<String> = sqlx::query_scalar(
                "SELECT id FROM contacts WHERE tenant_id = $1 AND name_search = $2 AND merged_into IS NULL \
                 ORDER BY updated_at DESC LIMIT 20",
            )
            .bind(&self.tenant_id)
            .bind(name.to_lowercase())
            .fetch_all(&mut *tx)
            .await?;
            ids.into_iter().for_each(|id| add(id, "same_name"));
        }
        let like = |s: &str| {
            s.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        };
        for i in &me.identities {
            let (kind, pattern, reason) = match i.kind.as_str() {
                "phone" => {
                    let digits: String = i.value.chars().filter(char::is_ascii_digit).collect();
                    if digits.len() < 9 {
                        continue;
                    }
                    (
                        "phone",
                        format!("%{}", &digits[digits.len() - 9..]),
                        "same_phone",
                    )
                }
                "email" => match i.value.split_once('@') {
                    Some((local, _)) if local.len() >= 3 => (
                        "email",
                        format!("{}@%", like(local)),
                        "same_email_local_part",
                    ),
                    _ => continue,
                },
                _ => continue,
            };
            let ids: Vec<String> = sqlx::query_scalar(
                "SELECT i.contact_id FROM identities i JOIN contacts c ON c.id = i.contact_id \
                 WHERE i.tenant_id = $1 AND i.kind = $2 AND i.value LIKE $3 ESCAPE '\\' AND i.value <> $4 \
                 AND c.merged_into IS NULL LIMIT 20",
            )
            .bind(&self.tenant_id)
            .bind(kind)
            .bind(pattern)
            .bind(&i.value)
            .fetch_all(&mut *tx)
            .await?;
            ids.into_iter().for_each(|id| add(id, reason));
        }
        found.sort_by_key(|(_, r)| std::cmp::Reverse(r.len()));
        found.truncate(10);
        let mut out = Vec::with_capacity(found.len());
        for (id, reasons) in found {
            out.push((self.contact_in(&mut tx, &id).await?, reasons));
        }
        tx.commit().await?;
        Ok(out)
    }

    pub async fn contact_merges(&self, contact_id: &str) -> StoreResult<Vec<ContactMerge>> {
        let rows: Vec<MergeRow> = sqlx::query_as(
            "SELECT id, survivor_id, merged_id, moved_identities, actor_user_id, reason, at, undone_at \
             FROM contact_merges WHERE tenant_id = $1 AND (survivor_id = $2 OR merged_id = $2) ORDER BY at DESC, id DESC",
        )
        .bind(&self.tenant_id)
        .bind(contact_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Applicants matching `q` in name, or in an identity (a phone is matched on its digits).
    pub async fn search_contacts(&self, q: Option<&str>, limit: i64) -> StoreResult<Vec<Contact>> {
        let pattern = q.and_then(super::like_pattern);
        let digits: Option<String> = q
            .map(|s| s.chars().filter(|c| c.is_ascii_digit()).collect::<String>())
            .filter(|d| d.len() >= 4)
            .map(|d| format!("%{d}%"));
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT c.id FROM contacts c WHERE c.tenant_id = $1 AND c.merged_into IS NULL AND ($2 IS NULL \
               OR coalesce(c.name_search, '') LIKE $2 ESCAPE '\\' \
               OR EXISTS (SELECT 1 FROM identities i WHERE i.tenant_id = $1 AND i.contact_id = c.id \
                          AND (i.value LIKE $2 ESCAPE '\\' OR ($3 IS NOT NULL AND i.kind = 'phone' AND i.value LIKE $3) \
                               OR ($5 IS NOT NULL AND i.kind = 'phone' AND i.value = $5)))) \
             ORDER BY c.updated_at DESC, c.id LIMIT $4",
        )
        .bind(&self.tenant_id)
        .bind(pattern)
        .bind(digits)
        .bind(limit.clamp(1, 200))
        // A full phone number in any spelling (8 029…, +375 29…) finds its E.164 form.
        .bind(q.and_then(crate::identity::normalize_phone))
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        let mut tx = self.pool().begin().await?;
        for id in ids {
            out.push(self.contact_in(&mut tx, &id).await?);
        }
        tx.commit().await?;
        Ok(out)
    }
}
