//! The ATS records (R-ATS-1): pipelines and stages, vacancies (local or imported from a
//! board), applications (a contact on a vacancy), and what a board account's sync keeps:
//! its status mapping, the responses its import has read (the two counters and the
//! differences), the connected board account, pending OAuth connects and webhook events
//! already taken.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;

use super::events::{push_event, Audience, StoredEvent};
use super::rooms::to_json;
use super::{new_id, now_ms, to_time, Db, StoreError, StoreResult, TenantDb};

/// The stages of the default pipeline, in order.
pub const DEFAULT_STAGES: &[&str] = &[
    "Отклик",
    "Рассмотрение",
    "Телефонное интервью",
    "Собеседование",
    "Оффер",
    "Выход на работу",
    "Отказ",
];

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, FromRow)]
pub struct Stage {
    pub id: String,
    pub pipeline_id: String,
    pub name: String,
    pub position: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Pipeline {
    pub id: String,
    pub name: String,
    pub is_default: bool,
    pub stages: Vec<Stage>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A board state of a vacancy (read from the board).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BoardStateRef {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Vacancy {
    pub id: String,
    pub name: String,
    pub city: Option<String>,
    /// `hh` for a vacancy imported from HeadHunter; none for a local one.
    pub board_provider: Option<String>,
    pub board_account_id: Option<String>,
    pub board_vacancy_id: Option<String>,
    pub board_url: Option<String>,
    /// For a board's vacancy: the local vacancy it publishes.
    pub linked_vacancy_id: Option<String>,
    /// The employer states the board reports for this vacancy.
    pub board_states: Vec<BoardStateRef>,
    /// Applications on the board by its counters at the last sync.
    pub board_total: Option<i64>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(FromRow)]
struct VacancyRow {
    id: String,
    name: String,
    city: Option<String>,
    board_provider: Option<String>,
    board_account_id: Option<String>,
    board_vacancy_id: Option<String>,
    board_url: Option<String>,
    linked_vacancy_id: Option<String>,
    board_states: String,
    board_total: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl From<VacancyRow> for Vacancy {
    fn from(r: VacancyRow) -> Self {
        Vacancy {
            id: r.id,
            name: r.name,
            city: r.city,
            board_provider: r.board_provider,
            board_account_id: r.board_account_id,
            board_vacancy_id: r.board_vacancy_id,
            board_url: r.board_url,
            linked_vacancy_id: r.linked_vacancy_id,
            board_states: serde_json::from_str(&r.board_states).unwrap_or_default(),
            board_total: r.board_total,
            created_at: to_time(r.created_at),
            updated_at: to_time(r.updated_at),
        }
    }
}

const VACANCY_COLUMNS: &str =
    "id, name, city, board_provider, board_account_id, board_vacancy_id, \
    board_url, linked_vacancy_id, board_states, board_total, created_at, updated_at";

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Application {
    pub id: String,
    pub contact_id: String,
    pub vacancy_id: String,
    pub vacancy_name: String,
    pub thread_id: Option<String>,
    pub stage_id: Option<String>,
    pub stage_name: Option<String>,
    pub stage_changed_at: chrono::DateTime<chrono::Utc>,
    /// `local` or the board's provider (`hh`).
    pub source: String,
    pub board_account_id: Option<String>,
    pub board_negotiation_id: Option<String>,
    pub board_state_id: Option<String>,
    pub board_state_name: Option<String>,
    pub board_chat_id: Option<String>,
    pub board_resume_id: Option<String>,
    /// When the response was created on the board (the board's own time).
    pub board_created_at: Option<String>,
    pub board_updated_at: Option<String>,
    /// The resume PDF in the blob store (an upload id).
    pub resume_upload_id: Option<String>,
    /// What the board showed: names, phone, email, city, hidden fields, links.
    #[schema(value_type = Object)]
    pub card: serde_json::Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(FromRow)]
struct ApplicationRow {
    id: String,
    contact_id: String,
    vacancy_id: String,
    vacancy_name: String,
    thread_id: Option<String>,
    stage_id: Option<String>,
    stage_name: Option<String>,
    stage_changed_at: i64,
    source: String,
    board_account_id: Option<String>,
    board_negotiation_id: Option<String>,
    board_state_id: Option<String>,
    board_state_name: Option<String>,
    board_chat_id: Option<String>,
    board_resume_id: Option<String>,
    board_created_at: Option<String>,
    board_updated_at: Option<String>,
    resume_upload_id: Option<String>,
    card: String,
    created_at: i64,
    updated_at: i64,
}

impl From<ApplicationRow> for Application {
    fn from(r: ApplicationRow) -> Self {
        Application {
            id: r.id,
            contact_id: r.contact_id,
            vacancy_id: r.vacancy_id,
            vacancy_name: r.vacancy_name,
            thread_id: r.thread_id,
            stage_id: r.stage_id,
            stage_name: r.stage_name,
            stage_changed_at: to_time(r.stage_changed_at),
            source: r.source,
            board_account_id: r.board_account_id,
            board_negotiation_id: r.board_negotiation_id,
            board_state_id: r.board_state_id,
            board_state_name: r.board_state_name,
            board_chat_id: r.board_chat_id,
            board_resume_id: r.board_resume_id,
            board_created_at: r.board_created_at,
            board_updated_at: r.board_updated_at,
            resume_upload_id: r.resume_upload_id,
            card: serde_json::from_str(&r.card).unwrap_or(serde_json::Value::Null),
            created_at: to_time(r.created_at),
            updated_at: to_time(r.updated_at),
        }
    }
}

const APPLICATION_SELECT: &str = "SELECT a.id, a.contact_id, a.vacancy_id, v.name AS vacancy_name, \
    a.thread_id, a.stage_id, s.name AS stage_name, a.stage_changed_at, a.source, a.board_account_id, \
    a.board_negotiation_id, a.board_state_id, a.board_state_name, a.board_chat_id, a.board_resume_id, \
    a.board_created_at, a.board_updated_at, a.resume_upload_id, a.card, a.created_at, a.updated_at \
    FROM applications a JOIN vacancies v ON v.id = a.vacancy_id AND v.tenant_id = a.tenant_id \
    LEFT JOIN stages s ON s.id = a.stage_id AND s.tenant_id = a.tenant_id";

/// mode, pipeline, responses stage, invitations stage, state → stage JSON, responsible.
type MappingRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
);

/// How a board account's states become stages.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BoardMapping {
    /// `simple`: responses go to `responses_stage_id`, every other state but a refusal to
    /// `invitations_stage_id`; `extended`: `state_stages` names a stage per board state.
    pub mode: String,
    pub pipeline_id: Option<String>,
    pub responses_stage_id: Option<String>,
    pub invitations_stage_id: Option<String>,
    /// Board state id → stage id.
    #[serde(default)]
    pub state_stages: HashMap<String, String>,
    /// The responsible recruiter: a new applicant's thread from this board is assigned to
    /// this user at once; `null`: it waits in the account's queue for the router.
    #[serde(default)]
    pub responsible_user_id: Option<String>,
}

impl BoardMapping {
    /// The stage of a board state.
    pub fn stage_for(&self, state_id: &str) -> Option<String> {
        if self.mode == "extended" {
            if let Some(s) = self.state_stages.get(state_id) {
                return Some(s.clone());
            }
        }
        match state_id {
            "response" => self.responses_stage_id.clone(),
            s if s.starts_with("discard") => self.state_stages.get(s).cloned(),
            _ => self.invitations_stage_id.clone(),
        }
    }

    /// The board state a stage moves an application to. Extended mode: the state mapped
    /// to the stage (several on one stage: the first in `preferred`, the vacancy's order).
    /// Simple mode: a state named in `state_stages` (such as a refusal), else the invitations
    /// stage invites — the board's `interview` when the vacancy has it, otherwise its first
    /// state past the response stage; the responses stage changes nothing on the board.
    pub fn state_for(&self, stage_id: &str, preferred: &[String]) -> Option<String> {
        let mut states: Vec<&String> = self
            .state_stages
            .iter()
            .filter(|(_, s)| s.as_str() == stage_id)
            .map(|(state, _)| state)
            .collect();
        states.sort_by_key(|s| preferred.iter().position(|p| p == *s).unwrap_or(usize::MAX));
        if let Some(s) = states.first() {
            return Some(s.to_string());
        }
        if self.mode == "extended" || self.invitations_stage_id.as_deref() != Some(stage_id) {
            return None;
        }
        if preferred.iter().any(|p| p == "interview") {
            return Some("interview".into());
        }
        preferred
            .iter()
            .find(|p| !matches!(p.as_str(), "response" | "consider") && !p.starts_with("discard"))
            .cloned()
    }
}

/// The import's two counters and the responses that did not become applications.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BoardCounters {
    /// Responses and invitations read from the board.
    pub responses_loaded: i64,
    /// Applications created from them.
    pub applications_created: i64,
    /// Each response read that has no application, with the reason.
    pub differences: Vec<BoardDifference>,
}

#[derive(Debug, Clone, Serialize, ToSchema, FromRow)]
pub struct BoardDifference {
    pub negotiation_id: String,
    pub board_vacancy_id: String,
    pub reason: String,
}

/// A new application from a board response.
pub struct NewBoardApplication<'a> {
    pub contact_id: &'a str,
    pub vacancy_id: &'a str,
    pub thread_id: &'a str,
    pub stage_id: Option<&'a str>,
    pub provider: &'a str,
    pub board_account_id: &'a str,
    pub negotiation_id: &'a str,
    pub board_vacancy_id: &'a str,
    pub state: &'a BoardStateRef,
    pub chat_id: Option<&'a str>,
    pub resume_id: Option<&'a str>,
    pub board_created_at: Option<&'a str>,
    pub board_updated_at: Option<&'a str>,
    pub resume_upload_id: Option<&'a str>,
    pub card: &'a serde_json::Value,
}

/// A board vacancy to store.
pub struct BoardVacancyInput<'a> {
    pub provider: &'a str,
    pub board_account_id: &'a str,
    pub board_vacancy_id: &'a str,
    pub name: &'a str,
    pub city: Option<&'a str>,
    pub url: Option<&'a str>,
    pub states: &'a [BoardStateRef],
    pub total: Option<i64>,
}

/// An OAuth connect waiting for its callback.
#[derive(Debug, Clone)]
pub struct OAuthRequest {
    pub tenant_id: String,
    pub board_account_id: String,
    pub code_verifier: String,
    pub expires_at: i64,
}

impl Db {
    /// Takes (and deletes) a pending OAuth connect by its `state`, whatever the tenant:
    /// the callback comes from the employer's browser, without a Jobers session.
    pub async fn take_oauth_request(&self, state: &str) -> StoreResult<Option<OAuthRequest>> {
        let (mut tx, _gate) = self.begin_write().await?;
        let row: Option<(String, String, String, i64)> = sqlx::query_as(
            "SELECT tenant_id, board_account_id, code_verifier, expires_at FROM board_oauth_requests WHERE state = $1",
        )
        .bind(state)
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM board_oauth_requests WHERE state = $1 OR expires_at < $2")
            .bind(state)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(
            row.and_then(|(tenant_id, board_account_id, sealed, expires_at)| {
                Some(OAuthRequest {
                    tenant_id,
                    board_account_id,
                    code_verifier: crate::secrets::open(&sealed)?,
                    expires_at,
                })
            }),
        )
    }
}

impl TenantDb {
    // ----- pipelines -----

    async fn stages_of(&self, pipeline_id: &str) -> StoreResult<Vec<Stage>> {
        Ok(sqlx::query_as(
            "SELECT id, pipeline_id, name, position FROM stages WHERE tenant_id = $1 AND pipeline_id = $2 ORDER BY position",
        )
        .bind(&self.tenant_id)
        .bind(pipeline_id)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn pipeline(&self, id: &str) -> StoreResult<Pipeline> {
        let (id, name, is_default, created_at): (String, String, i64, i64) = sqlx::query_as(
            "SELECT id, name, is_default, created_at FROM pipelines WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(id)
        .fetch_one(self.pool())
        .await?;
        let stages = self.stages_of(&id).await?;
        Ok(Pipeline {
            id,
            name,
            is_default: is_default != 0,
            stages,
            created_at: to_time(created_at),
        })
    }

    /// Every pipeline; the default one is created first when there is none.
    pub async fn pipelines(&self) -> StoreResult<Vec<Pipeline>> {
        self.default_pipeline().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM pipelines WHERE tenant_id = $1 ORDER BY is_default DESC, name",
        )
        .bind(&self.tenant_id)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for id in ids {
            out.push(self.pipeline(&id).await?);
        }
        Ok(out)
    }

    /// The tenant's default pipeline, created with the standard stages on first use.
    pub async fn default_pipeline(&self) -> StoreResult<Pipeline> {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT id FROM pipelines WHERE tenant_id = $1 AND is_default = 1 ORDER BY created_at LIMIT 1",
        )
        .bind(&self.tenant_id)
        .fetch_optional(self.pool())
        .await?;
        if let Some(id) = found {
            return self.pipeline(&id).await;
        }
        let stages: Vec<String> = DEFAULT_STAGES.iter().map(|s| s.to_string()).collect();
        match self
            .create_pipeline("Основная воронка", &stages, true)
            .await
        {
            Ok(p) => Ok(p),
            // Created by someone else meanwhile.
            Err(StoreError::Conflict(_)) => {
                let id: String = sqlx::query_scalar(
                    "SELECT id FROM pipelines WHERE tenant_id = $1 AND is_default = 1 ORDER BY created_at LIMIT 1",
                )
                .bind(&self.tenant_id)
                .fetch_one(self.pool())
                .await?;
                self.pipeline(&id).await
            }
            Err(e) => Err(e),
        }
    }

    pub async fn create_pipeline(
        &self,
        name: &str,
        stages: &[String],
        is_default: bool,
    ) -> StoreResult<Pipeline> {
        let (mut tx, _gate) = self.begin_write().await?;
        let id = new_id();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO pipelines (id, tenant_id, name, is_default, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(&self.tenant_id)
        .bind(name)
        .bind(i64::from(is_default))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for (i, s) in stages.iter().enumerate() {
            sqlx::query(
                "INSERT INTO stages (id, tenant_id, pipeline_id, name, position, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(new_id())
            .bind(&self.tenant_id)
            .bind(&id)
            .bind(s)
            .bind(i as i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.pipeline(&id).await
    }

    pub async fn stage(&self, id: &str) -> StoreResult<Stage> {
        Ok(sqlx::query_as(
            "SELECT id, pipeline_id, name, position FROM stages WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(id)
        .fetch_one(self.pool())
        .await?)
    }

    // ----- vacancies -----

    pub async fn vacancies(&self) -> StoreResult<Vec<Vacancy>> {
        let rows: Vec<VacancyRow> = sqlx::query_as(&format!(
            "SELECT {VACANCY_COLUMNS} FROM vacancies WHERE tenant_id = $1 ORDER BY name, id"
        ))
        .bind(&self.tenant_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Reads the changed vacancy back, logs `vacancy.updated` at `position` and commits.
    async fn finish_vacancy_change(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        position: i64,
        id: &str,
    ) -> StoreResult<(Vacancy, Vec<StoredEvent>)> {
        let row: VacancyRow = sqlx::query_as(&format!(
            "SELECT {VACANCY_COLUMNS} FROM vacancies WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(&self.tenant_id)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let vacancy: Vacancy = row.into();
        let mut events = Vec::new();
        push_event(
            &mut tx,
            &self.tenant_id,
            &mut Some(position),
            "vacancy.updated",
            Audience::Tenant,
            to_json(&vacancy),
            &mut events,
        )
        .await?;
        tx.commit().await?;
        Ok((vacancy, events))
    }

    pub async fn vacancy(&self, id: &str) -> StoreResult<Vacancy> {
        let row: VacancyRow = sqlx::query_as(&format!(
            "SELECT {VACANCY_COLUMNS} FROM vacancies WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(&self.tenant_id)
        .bind(id)
        .fetch_one(self.pool())
        .await?;
        Ok(row.into())
    }

    /// A local vacancy.
    pub async fn create_vacancy(
        &self,
        name: &str,
        city: Option<&str>,
    ) -> StoreResult<(Vacancy, Vec<StoredEvent>)> {
        let (mut tx, position, _gate) = self.begin_with_position().await?;
        let id = new_id();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO vacancies (id, tenant_id, name, city, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&id)
        .bind(&self.tenant_id)
        .bind(name)
        .bind(city)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        self.finish_vacancy_change(tx, position, &id).await
    }

    /// Renames a vacancy or links it to a local one (`linked`: `Some(None)` unlinks).
    pub async fn update_vacancy(
        &self,
        id: &str,
        name: Option<&str>,
        city: Option<Option<&str>>,
        linked: Option<Option<&str>>,
    ) -> StoreResult<(Vacancy, Vec<StoredEvent>)> {
        let current = self.vacancy(id).await?;
        if let Some(Some(l)) = linked {
            let target = self
                .vacancy(l)
                .await
                .map_err(|_| StoreError::UnknownReference("vacancy"))?;
            if target.id == id || target.board_account_id.is_some() {
                return Err(StoreError::UnknownReference("vacancy"));
            }
        }
        let (mut tx, position, _gate) = self.begin_with_position().await?;
        sqlx::query(
            "UPDATE vacancies SET name = $3, city = $4, linked_vacancy_id = $5, updated_at = $6 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(id)
        .bind(name.unwrap_or(&current.name))
        .bind(city.unwrap_or(current.city.as_deref()))
        .bind(linked.unwrap_or(current.linked_vacancy_id.as_deref()))
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        self.finish_vacancy_change(tx, position, id).await
    }

    /// Stores a vacancy read from a board; `vacancy.updated` when it is new or changed.
    pub async fn upsert_board_vacancy(
        &self,
        v: BoardVacancyInput<'_>,
    ) -> StoreResult<(Vacancy, Vec<StoredEvent>)> {
        let states = serde_json::to_string(v.states).expect("json");
        let (mut tx, position, _gate) = self.begin_with_position().await?;
        let existing: Option<VacancyRow> = sqlx::query_as(&format!(
            "SELECT {VACANCY_COLUMNS} FROM vacancies WHERE tenant_id = $1 AND board_account_id = $2 AND board_vacancy_id = $3"
        ))
        .bind(&self.tenant_id)
        .bind(v.board_account_id)
        .bind(v.board_vacancy_id)
        .fetch_optional(&mut *tx)
        .await?;
        let now = now_ms();
        let id = match &existing {
            Some(e) => {
                if e.name == v.name
                    && e.city.as_deref() == v.city
                    && e.board_states == states
                    && e.board_total == v.total
                    && e.board_url.as_deref() == v.url
                {
                    tx.rollback().await?;
                    let vacancy = self.vacancy(&e.id).await?;
                    return Ok((vacancy, Vec::new()));
                }
                sqlx::query(
                    "UPDATE vacancies SET name = $3, city = $4, board_url = $5, board_states = $6, board_total = $7, \
                     updated_at = $8 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(&self.tenant_id)
                .bind(&e.id)
                .bind(v.name)
                .bind(v.city)
                .bind(v.url)
                .bind(&states)
                .bind(v.total)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                e.id.clone()
            }
            None => {
                let id = new_id();
                sqlx::query(
                    "INSERT INTO vacancies (id, tenant_id, name, city, board_provider, board_account_id, board_vacancy_id, \
                     board_url, board_states, board_total, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
                )
                .bind(&id)
                .bind(&self.tenant_id)
                .bind(v.name)
                .bind(v.city)
                .bind(v.provider)
                .bind(v.board_account_id)
                .bind(v.board_vacancy_id)
                .bind(v.url)
                .bind(&states)
                .bind(v.total)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                id
            }
        };
        self.finish_vacancy_change(tx, position, &id).await
    }

    pub async fn board_vacancy(
        &self,
        board_account_id: &str,
        board_vacancy_id: &str,
    ) -> StoreResult<Option<Vacancy>> {
        let row: Option<VacancyRow> = sqlx::query_as(&format!(
            "SELECT {VACANCY_COLUMNS} FROM vacancies WHERE tenant_id = $1 AND board_account_id = $2 AND board_vacancy_id = $3"
        ))
        .bind(&self.tenant_id)
        .bind(board_account_id)
        .bind(board_vacancy_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(Into::into))
    }

    // ----- applications -----

    pub async fn application(&self, id: &str) -> StoreResult<Application> {
        let row: ApplicationRow = sqlx::query_as(&format!(
            "{APPLICATION_SELECT} WHERE a.tenant_id = $1 AND a.id = $2"
        ))
        .bind(&self.tenant_id)
        .bind(id)
        .fetch_one(self.pool())
        .await?;
        Ok(row.into())
    }

    pub async fn applications(
        &self,
        vacancy_id: Option<&str>,
        contact_id: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<Application>> {
        let rows: Vec<ApplicationRow> = sqlx::query_as(&format!(
            "{APPLICATION_SELECT} WHERE a.tenant_id = $1 AND ($2 IS NULL OR a.vacancy_id = $2) \
             AND ($3 IS NULL OR a.contact_id = $3) ORDER BY a.created_at DESC, a.id LIMIT $4 OFFSET $5"
        ))
        .bind(&self.tenant_id)
        .bind(vacancy_id)
        .bind(contact_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn application_by_negotiation(
        &self,
        board_account_id: &str,
        negotiation_id: &str,
    ) -> StoreResult<Option<Application>> {
        let row: Option<ApplicationRow> = sqlx::query_as(&format!(
            "{APPLICATION_SELECT} WHERE a.tenant_id = $1 AND a.board_account_id = $2 AND a.board_negotiation_id = $3"
        ))
        .bind(&self.tenant_id)
        .bind(board_account_id)
        .bind(negotiation_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(Into::into))
    }

    /// The application whose board chat this is.
    pub async fn applications_by_chat(
        &self,
        board_account_id: &str,
        chat_id: &str,
    ) -> StoreResult<Option<Application>> {
        let row: Option<ApplicationRow> = sqlx::query_as(&format!(
            "{APPLICATION_SELECT} WHERE a.tenant_id = $1 AND a.board_account_id = $2 AND a.board_chat_id = $3 LIMIT 1"
        ))
        .bind(&self.tenant_id)
        .bind(board_account_id)
        .bind(chat_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(Into::into))
    }

    /// Replies through a board account since the applicant last wrote there (the board
    /// refuses more than a few in a row).
    pub async fn board_replies_in_a_row(
        &self,
        thread_id: &str,
        board_account_id: &str,
    ) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM thread_messages WHERE tenant_id = $1 AND thread_id = $2 AND channel_account_id = $3 \
             AND direction = 'out' AND (delivery_state IS NULL OR delivery_state <> 'failed') AND created_at > \
             COALESCE((SELECT MAX(created_at) FROM thread_messages WHERE tenant_id = $1 AND thread_id = $2 \
             AND channel_account_id = $3 AND direction = 'in'), 0)",
        )
        .bind(&self.tenant_id)
        .bind(thread_id)
        .bind(board_account_id)
        .fetch_one(self.pool())
        .await?)
    }

    /// The board chat of a thread's latest application on a board account.
    pub async fn board_chat_of_thread(
        &self,
        thread_id: &str,
        board_account_id: &str,
    ) -> StoreResult<Option<String>> {
        let chat: Option<Option<String>> = sqlx::query_scalar(
            "SELECT board_chat_id FROM applications WHERE tenant_id = $1 AND thread_id = $2 AND board_account_id = $3 \
             AND board_chat_id IS NOT NULL ORDER BY created_at DESC LIMIT 1",
        )
        .bind(&self.tenant_id)
        .bind(thread_id)
        .bind(board_account_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(chat.flatten())
    }

    async fn application_event(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        id: &str,
        first: &mut Option<i64>,
        events: &mut Vec<StoredEvent>,
    ) -> StoreResult<Application> {
        let row: ApplicationRow = sqlx::query_as(&format!(
            "{APPLICATION_SELECT} WHERE a.tenant_id = $1 AND a.id = $2"
        ))
        .bind(&self.tenant_id)
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
        let app: Application = row.into();
        push_event(
            tx,
            &self.tenant_id,
            first,
            "application.updated",
            Audience::Tenant,
            to_json(&app),
            events,
        )
        .await?;
        Ok(app)
    }

    /// A local application (a contact on a vacancy), at the first stage unless named.
    pub async fn create_application(
        &self,
        contact_id: &str,
        vacancy_id: &str,
        stage_id: Option<&str>,
    ) -> StoreResult<(Application, Vec<StoredEvent>)> {
        let (mut tx, position, _gate) = self.begin_with_position().await?;
        let contact: Option<String> =
            sqlx::query_scalar("SELECT id FROM contacts WHERE tenant_id = $1 AND id = $2")
                .bind(&self.tenant_id)
                .bind(contact_id)
                .fetch_optional(&mut *tx)
                .await?;
        contact.ok_or(StoreError::UnknownReference("contact"))?;
        let vacancy: Option<String> =
            sqlx::query_scalar("SELECT id FROM vacancies WHERE tenant_id = $1 AND id = $2")
                .bind(&self.tenant_id)
                .bind(vacancy_id)
                .fetch_optional(&mut *tx)
                .await?;
        vacancy.ok_or(StoreError::UnknownReference("vacancy"))?;
        if let Some(s) = stage_id {
            let found: Option<String> =
                sqlx::query_scalar("SELECT id FROM stages WHERE tenant_id = $1 AND id = $2")
                    .bind(&self.tenant_id)
                    .bind(s)
                    .fetch_optional(&mut *tx)
                    .await?;
            found.ok_or(StoreError::UnknownReference("stage"))?;
        }
        let thread: Option<String> = sqlx::query_scalar(
            "SELECT id FROM threads WHERE tenant_id = $1 AND contact_id = $2 AND merged_into IS NULL LIMIT 1",
        )
        .bind(&self.tenant_id)
        .bind(contact_id)
        .fetch_optional(&mut *tx)
        .await?;
        let id = new_id();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO applications (id, tenant_id, contact_id, vacancy_id, thread_id, stage_id, stage_changed_at, \
             source, card, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'local', '{}', $7, $7)",
        )
        .bind(&id)
        .bind(&self.tenant_id)
        .bind(contact_id)
        .bind(vacancy_id)
        .bind(thread)
        .bind(stage_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let mut events = Vec::new();
        let app = self
            .application_event(&mut tx, &id, &mut Some(position), &mut events)
            .await?;
        tx.commit().await?;
        Ok((app, events))
    }

    /// An application from a board response, with its import record, once: a second
    /// call for the same negotiation returns the stored one and no events.
    pub async fn insert_board_application(
        &self,
        a: NewBoardApplication<'_>,
    ) -> StoreResult<(Application, Vec<StoredEvent>)> {
        let (mut tx, position, _gate) = self.begin_with_position().await?;
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT id FROM applications WHERE tenant_id = $1 AND board_account_id = $2 AND board_negotiation_id = $3",
        )
        .bind(&self.tenant_id)
        .bind(a.board_account_id)
        .bind(a.negotiation_id)
        .fetch_optional(&mut *tx)
        .await?;
        let now = now_ms();
        let (id, inserted) = match existing {
            Some(id) => (id, false),
            None => {
                let id = new_id();
                sqlx::query(
                    "INSERT INTO applications (id, tenant_id, contact_id, vacancy_id, thread_id, stage_id, stage_changed_at, \
                     source, board_account_id, board_negotiation_id, board_state_id, board_state_name, board_chat_id, \
                     board_resume_id, board_created_at, board_updated_at, resume_upload_id, card, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $7, $7)",
                )
                .bind(&id)
                .bind(&self.tenant_id)
                .bind(a.contact_id)
                .bind(a.vacancy_id)
                .bind(a.thread_id)
                .bind(a.stage_id)
                .bind(now)
                .bind(a.provider)
                .bind(a.board_account_id)
                .bind(a.negotiation_id)
                .bind(&a.state.id)
                .bind(&a.state.name)
                .bind(a.chat_id)
                .bind(a.resume_id)
                .bind(a.board_created_at)
                .bind(a.board_updated_at)
                .bind(a.resume_upload_id)
                .bind(a.card.to_string())
                .execute(&mut *tx)
                .await?;
                (id, true)
            }
        };
        Self::item_in(
            &mut tx,
            &self.tenant_id,
            a.board_account_id,
            a.negotiation_id,
            a.board_vacancy_id,
            Some(&id),
            None,
        )
        .await?;
        let mut events = Vec::new();
        let app = if inserted {
            self.application_event(&mut tx, &id, &mut Some(position), &mut events)
                .await?
        } else {
            let row: ApplicationRow = sqlx::query_as(&format!(
                "{APPLICATION_SELECT} WHERE a.tenant_id = $1 AND a.id = $2"
            ))
            .bind(&self.tenant_id)
            .bind(&id)
            .fetch_one(&mut *tx)
            .await?;
            row.into()
        };
        tx.commit().await?;
        Ok((app, events))
    }

    async fn item_in(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        tenant_id: &str,
        account: &str,
        negotiation_id: &str,
        board_vacancy_id: &str,
        application_id: Option<&str>,
        error: Option<&str>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO board_items (tenant_id, board_account_id, negotiation_id, board_vacancy_id, application_id, error, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (board_account_id, negotiation_id) DO UPDATE SET \
             application_id = COALESCE(excluded.application_id, board_items.application_id), \
             error = CASE WHEN excluded.application_id IS NOT NULL THEN NULL ELSE excluded.error END, \
             updated_at = excluded.updated_at",
        )
        .bind(tenant_id)
        .bind(account)
        .bind(negotiation_id)
        .bind(board_vacancy_id)
        .bind(application_id)
        .bind(error)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// A response read from the board that could not become an application (yet).
    pub async fn record_board_failure(
        &self,
        account: &str,
        negotiation_id: &str,
        board_vacancy_id: &str,
        reason: &str,
    ) -> StoreResult<()> {
        let (mut tx, _gate) = self.begin_write().await?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT id FROM channel_accounts WHERE tenant_id = $1 AND id = $2")
                .bind(&self.tenant_id)
                .bind(account)
                .fetch_optional(&mut *tx)
                .await?;
        exists.ok_or(StoreError::NotFound)?;
        Self::item_in(
            &mut tx,
            &self.tenant_id,
            account,
            negotiation_id,
            board_vacancy_id,
            None,
            Some(reason),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn board_counters(&self, account: &str) -> StoreResult<BoardCounters> {
        let (loaded, created): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COUNT(application_id) FROM board_items WHERE tenant_id = $1 AND board_account_id = $2",
        )
        .bind(&self.tenant_id)
        .bind(account)
        .fetch_one(self.pool())
        .await?;
        let differences: Vec<BoardDifference> = sqlx::query_as(
            "SELECT negotiation_id, board_vacancy_id, COALESCE(error, 'not imported yet') AS reason FROM board_items \
             WHERE tenant_id = $1 AND board_account_id = $2 AND application_id IS NULL ORDER BY negotiation_id LIMIT 500",
        )
        .bind(&self.tenant_id)
        .bind(account)
        .fetch_all(self.pool())
        .await?;
        Ok(BoardCounters {
            responses_loaded: loaded,
            applications_created: created,
            differences,
        })
    }

    /// Imported responses per board vacancy id.
    pub async fn imported_per_vacancy(&self, account: &str) -> StoreResult<HashMap<String, i64>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT board_vacancy_id, COUNT(application_id) FROM board_items WHERE tenant_id = $1 AND board_account_id = $2 \
             GROUP BY board_vacancy_id",
        )
        .bind(&self.tenant_id)
        .bind(account)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Moves an application: a new stage (`stage_changed`: by a person in Jobers, which
    /// stamps the time) and/or the board state it now has.
    pub async fn update_application(
        &self,
        id: &str,
        stage_id: Option<&str>,
        stage_changed: bool,
        board_state: Option<(&BoardStateRef, Option<&str>)>,
    ) -> StoreResult<(Application, Vec<StoredEvent>)> {
        let (mut tx, position, _gate) = self.begin_with_position().await?;
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE applications SET stage_id = COALESCE($3, stage_id), \
             stage_changed_at = CASE WHEN $4 = 1 THEN $5 ELSE stage_changed_at END, \
             board_state_id = COALESCE($6, board_state_id), board_state_name = COALESCE($7, board_state_name), \
             board_updated_at = COALESCE($8, board_updated_at), updated_at = $5 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(id)
        .bind(stage_id)
        .bind(i64::from(stage_changed))
        .bind(now)
        .bind(board_state.map(|(s, _)| s.id.as_str()))
        .bind(board_state.map(|(s, _)| s.name.as_str()))
        .bind(board_state.and_then(|(_, at)| at))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let mut events = Vec::new();
        let app = self
            .application_event(&mut tx, id, &mut Some(position), &mut events)
            .await?;
        tx.commit().await?;
        Ok((app, events))
    }

    // ----- board accounts -----

    /// The account's mapping; a default one (extended, on the default pipeline, the
    /// HeadHunter states on the matching stages) until an admin saves one.
    pub async fn board_mapping(&self, account: &str) -> StoreResult<BoardMapping> {
        let row: Option<MappingRow> =
            sqlx::query_as(
                "SELECT mode, pipeline_id, responses_stage_id, invitations_stage_id, state_stages, responsible_user_id \
                 FROM board_mappings \
                 WHERE tenant_id = $1 AND board_account_id = $2",
            )
            .bind(&self.tenant_id)
            .bind(account)
            .fetch_optional(self.pool())
            .await?;
        if let Some((mode, pipeline_id, responses, invitations, states, responsible)) = row {
            return Ok(BoardMapping {
                mode,
                pipeline_id,
                responses_stage_id: responses,
                invitations_stage_id: invitations,
                state_stages: serde_json::from_str(&states).unwrap_or_default(),
                responsible_user_id: responsible,
            });
        }
        let p = self.default_pipeline().await?;
        let stage = |name: &str| {
            p.stages
                .iter()
                .find(|s| s.name == name)
                .map(|s| s.id.clone())
        };
        let mut state_stages = HashMap::new();
        for (state, name) in [
            ("response", "Отклик"),
            ("consider", "Рассмотрение"),
            ("phone_interview", "Телефонное интервью"),
            ("assessment", "Рассмотрение"),
            ("interview", "Собеседование"),
            ("offer", "Оффер"),
            ("hired", "Выход на работу"),
            ("discard_by_employer", "Отказ"),
        ] {
            if let Some(s) = stage(name) {
                state_stages.insert(state.to_string(), s);
            }
        }
        Ok(BoardMapping {
            mode: "extended".into(),
            pipeline_id: Some(p.id.clone()),
            responses_stage_id: stage("Отклик"),
            invitations_stage_id: stage("Собеседование"),
            state_stages,
            responsible_user_id: None,
        })
    }

    pub async fn save_board_mapping(&self, account: &str, m: &BoardMapping) -> StoreResult<()> {
        let (mut tx, _gate) = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO board_mappings (board_account_id, tenant_id, mode, pipeline_id, responses_stage_id, \
             invitations_stage_id, state_stages, updated_at, responsible_user_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (board_account_id) DO UPDATE SET mode = excluded.mode, pipeline_id = excluded.pipeline_id, \
             responses_stage_id = excluded.responses_stage_id, invitations_stage_id = excluded.invitations_stage_id, \
             state_stages = excluded.state_stages, updated_at = excluded.updated_at, \
             responsible_user_id = excluded.responsible_user_id",
        )
        .bind(account)
        .bind(&self.tenant_id)
        .bind(&m.mode)
        .bind(&m.pipeline_id)
        .bind(&m.responses_stage_id)
        .bind(&m.invitations_stage_id)
        .bind(serde_json::to_string(&m.state_stages).expect("json"))
        .bind(now_ms())
        .bind(&m.responsible_user_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Board states known from the account's vacancies (for the mapping screen).
    pub async fn board_states_of_account(&self, account: &str) -> StoreResult<Vec<BoardStateRef>> {
        let all: Vec<String> = sqlx::query_scalar(
            "SELECT board_states FROM vacancies WHERE tenant_id = $1 AND board_account_id = $2",
        )
        .bind(&self.tenant_id)
        .bind(account)
        .fetch_all(self.pool())
        .await?;
        let mut out: Vec<BoardStateRef> = Vec::new();
        for s in all {
            for st in serde_json::from_str::<Vec<BoardStateRef>>(&s).unwrap_or_default() {
                if !out.iter().any(|o| o.id == st.id) {
                    out.push(st);
                }
            }
        }
        Ok(out)
    }

    pub async fn save_oauth_request(
        &self,
        state: &str,
        account: &str,
        code_verifier: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        let (mut tx, _gate) = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO board_oauth_requests (state, tenant_id, board_account_id, code_verifier, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(state)
        .bind(&self.tenant_id)
        .bind(account)
        .bind(crate::secrets::seal(code_verifier))
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Who is connected to a board account (the board's account JSON), if anyone.
    pub async fn board_connection(
        &self,
        account: &str,
    ) -> StoreResult<Option<(serde_json::Value, Option<String>)>> {
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT account, subscription_id FROM board_connections WHERE tenant_id = $1 AND board_account_id = $2",
        )
        .bind(&self.tenant_id)
        .bind(account)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(a, s)| (serde_json::from_str(&a).unwrap_or_default(), s)))
    }

    pub async fn set_board_connection(
        &self,
        account: &str,
        who: Option<&serde_json::Value>,
        subscription_id: Option<&str>,
    ) -> StoreResult<()> {
        let (mut tx, _gate) = self.begin_write().await?;
        match who {
            Some(who) => {
                sqlx::query(
                    "INSERT INTO board_connections (board_account_id, tenant_id, account, subscription_id, connected_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (board_account_id) DO UPDATE SET account = excluded.account, \
                     subscription_id = COALESCE(excluded.subscription_id, board_connections.subscription_id), \
                     connected_at = excluded.connected_at",
                )
                .bind(account)
                .bind(&self.tenant_id)
                .bind(who.to_string())
                .bind(subscription_id)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "DELETE FROM board_connections WHERE tenant_id = $1 AND board_account_id = $2",
                )
                .bind(&self.tenant_id)
                .bind(account)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a webhook event of a board; `false` when it had been taken before.
    pub async fn take_board_event(&self, account: &str, event_id: &str) -> StoreResult<bool> {
        let (mut tx, _gate) = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO board_events (board_account_id, event_id, tenant_id, received_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (board_account_id, event_id) DO NOTHING",
        )
        .bind(account)
        .bind(event_id)
        .bind(&self.tenant_id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// `board.import`: an account's import progress, to all staff.
    pub async fn board_progress_event(
        &self,
        payload: &serde_json::Value,
    ) -> StoreResult<Vec<StoredEvent>> {
        let (mut tx, position, _gate) = self.begin_with_position().await?;
        let mut events = Vec::new();
        push_event(
            &mut tx,
            &self.tenant_id,
            &mut Some(position),
            "board.import",
            Audience::Tenant,
            payload.to_string(),
            &mut events,
        )
        .await?;
        tx.commit().await?;
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> Vec<String> {
        [
            "response",
            "consider",
            "phone_interview",
            "interview",
            "discard_by_employer",
        ]
        .map(String::from)
        .to_vec()
    }

    fn simple() -> BoardMapping {
        BoardMapping {
            mode: "simple".into(),
            pipeline_id: None,
            responses_stage_id: Some("s-resp".into()),
            invitations_stage_id: Some("s-inv".into()),
            state_stages: HashMap::from([("discard_by_employer".into(), "s-no".into())]),
            responsible_user_id: None,
        }
    }

    #[test]
    fn simple_mode_invites_from_the_invitations_stage() {
        let m = simple();
        assert_eq!(m.state_for("s-inv", &order()).as_deref(), Some("interview"));
        assert_eq!(
            m.state_for("s-no", &order()).as_deref(),
            Some("discard_by_employer")
        );
        // Back to responses changes nothing on the board; an unmapped stage neither.
        assert_eq!(m.state_for("s-resp", &order()), None);
        assert_eq!(m.state_for("s-other", &order()), None);
        // A vacancy without `interview`: its first state past the response stage.
        let without: Vec<String> = order().into_iter().filter(|s| s != "interview").collect();
        assert_eq!(
            m.state_for("s-inv", &without).as_deref(),
            Some("phone_interview")
        );
        // Reading back: every non-response state lands on the invitations stage.
        assert_eq!(m.stage_for("interview").as_deref(), Some("s-inv"));
        assert_eq!(m.stage_for("response").as_deref(), Some("s-resp"));
        assert_eq!(m.stage_for("discard_by_employer").as_deref(), Some("s-no"));
    }

    #[test]
    fn extended_mode_follows_the_table_only() {
        let m = BoardMapping {
            mode: "extended".into(),
            state_stages: HashMap::from([
                ("consider".into(), "s-a".into()),
                ("phone_interview".into(), "s-a".into()),
                ("interview".into(), "s-b".into()),
            ]),
            ..simple()
        };
        // Two states on one stage: the vacancy's order decides.
        assert_eq!(m.state_for("s-a", &order()).as_deref(), Some("consider"));
        assert_eq!(m.state_for("s-b", &order()).as_deref(), Some("interview"));
        assert_eq!(m.state_for("s-inv", &order()), None);
    }
}
