//! Staff users of a tenant: role, department, profile, password hash and deactivation.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;

use super::{new_id, now_ms, to_time, StoreError, StoreResult, TenantDb};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Supervisor,
    Recruiter,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Recruiter => "recruiter",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "supervisor" => Some(Role::Supervisor),
            "recruiter" => Some(Role::Recruiter),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub department_id: Option<String>,
    pub phone: Option<String>,
    pub title: Option<String>,
    /// Signature appended to messages to applicants.
    pub signature: Option<String>,
    /// False once an admin deactivated the user: nothing of theirs works any more.
    pub active: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

const USER_COLUMNS: &str = "id, email, name, role, department_id, phone, title, signature, \
                            created_at, updated_at, deactivated_at";

#[derive(FromRow)]
struct UserRow {
    id: String,
    email: String,
    name: String,
    role: String,
    department_id: Option<String>,
    phone: Option<String>,
    title: Option<String>,
    signature: Option<String>,
    created_at: i64,
    updated_at: i64,
    deactivated_at: Option<i64>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            email: r.email,
            name: r.name,
            role: Role::parse(&r.role).unwrap_or(Role::Recruiter),
            department_id: r.department_id,
            phone: r.phone,
            title: r.title,
            signature: r.signature,
            active: r.deactivated_at.is_none(),
            created_at: to_time(r.created_at),
            updated_at: to_time(r.updated_at),
        }
    }
}

/// What login needs to check a password.
#[derive(Debug, Clone, FromRow)]
pub struct Credentials {
    pub id: String,
    pub password_hash: String,
    pub deactivated_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub department_id: Option<String>,
    pub phone: Option<String>,
    pub title: Option<String>,
    pub password_hash: String,
}

/// A partial update: `None` leaves a field alone; `Some(None)` clears a nullable field.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub name: Option<String>,
    pub email: Option<String>,
    pub role: Option<Role>,
    pub department_id: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub title: Option<Option<String>>,
    pub signature: Option<Option<String>>,
}

/// What the directory search looks in, in lower case (Unicode-aware).
fn search_text(name: &str, phone: Option<&str>, title: Option<&str>) -> String {
    [Some(name), phone, title]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Emails are compared case-insensitively and without surrounding space.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

impl TenantDb {
    async fn check_department(&self, department_id: Option<&str>) -> StoreResult<()> {
        if let Some(id) = department_id {
            let found: Option<String> =
                sqlx::query_scalar("SELECT id FROM departments WHERE tenant_id = $1 AND id = $2")
                    .bind(&self.tenant_id)
                    .bind(id)
                    .fetch_optional(self.pool())
                    .await?;
            if found.is_none() {
                return Err(StoreError::UnknownReference("department"));
            }
        }
        Ok(())
    }

    pub async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        self.check_department(new.department_id.as_deref()).await?;
        let now = now_ms();
        let search = search_text(new.name.trim(), new.phone.as_deref(), new.title.as_deref());
        let row: UserRow = sqlx::query_as(&format!(
            "INSERT INTO users (id, tenant_id, email, name, role, department_id, phone, title, \
             password_hash, created_at, updated_at, password_changed_at, search_text) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $10, $11) RETURNING {USER_COLUMNS}"
        ))
        .bind(new_id())
        .bind(&self.tenant_id)
        .bind(normalize_email(&new.email))
        .bind(new.name.trim())
        .bind(new.role.as_str())
        .bind(new.department_id)
        .bind(new.phone)
        .bind(new.title)
        .bind(new.password_hash)
        .bind(now)
        .bind(search)
        .fetch_one(self.pool())
        .await?;
        Ok(row.into())
    }

    pub async fn user(&self, id: &str) -> StoreResult<User> {
        let row: UserRow = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(&self.tenant_id)
        .bind(id)
        .fetch_one(self.pool())
        .await?;
        Ok(row.into())
    }

    /// Users matching `search` (name, email, phone, title; case-insensitive), optionally
    /// of one department; deactivated users only when asked for.
    pub async fn list_users(
        &self,
        search: Option<&str>,
        department_id: Option<&str>,
        include_inactive: bool,
    ) -> StoreResult<Vec<User>> {
        let pattern = search.and_then(super::like_pattern);
        let rows: Vec<UserRow> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 \
             AND ($2 IS NULL OR search_text LIKE $2 ESCAPE '\\' OR email LIKE $2 ESCAPE '\\') \
             AND ($3 IS NULL OR department_id = $3) \
             AND ($4 = 1 OR deactivated_at IS NULL) \
             ORDER BY name, id"
        ))
        .bind(&self.tenant_id)
        .bind(pattern)
        .bind(department_id)
        .bind(i64::from(include_inactive))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn update_user(&self, id: &str, patch: UserPatch) -> StoreResult<User> {
        if let Some(Some(dep)) = &patch.department_id {
            self.check_department(Some(dep)).await?;
        }
        let current = self.user(id).await?;
        let department_id = patch.department_id.unwrap_or(current.department_id);
        let phone = patch.phone.unwrap_or(current.phone);
        let title = patch.title.unwrap_or(current.title);
        let signature = patch.signature.unwrap_or(current.signature);
        let name = patch
            .name
            .map(|n| n.trim().to_string())
            .unwrap_or(current.name);
        let search = search_text(&name, phone.as_deref(), title.as_deref());
        let row: UserRow = sqlx::query_as(&format!(
            "UPDATE users SET name = $3, email = $4, role = $5, department_id = $6, phone = $7, \
             title = $8, signature = $9, updated_at = $10, search_text = $11 \
             WHERE tenant_id = $1 AND id = $2 RETURNING {USER_COLUMNS}"
        ))
        .bind(&self.tenant_id)
        .bind(id)
        .bind(&name)
        .bind(
            patch
                .email
                .map(|e| normalize_email(&e))
                .unwrap_or(current.email),
        )
        .bind(patch.role.unwrap_or(current.role).as_str())
        .bind(department_id)
        .bind(phone)
        .bind(title)
        .bind(signature)
        .bind(now_ms())
        .bind(search)
        .fetch_one(self.pool())
        .await?;
        Ok(row.into())
    }

    /// Deactivates (or reactivates) a user. Deactivation revokes every session at once.
    pub async fn set_user_active(&self, id: &str, active: bool) -> StoreResult<User> {
        let now = now_ms();
        let (mut tx, _gate) = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE users SET deactivated_at = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(id)
        .bind(if active { None } else { Some(now) })
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        if !active {
            sqlx::query(
                "UPDATE sessions SET revoked_at = $3, revoked_reason = 'user_deactivated' \
                 WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL",
            )
            .bind(&self.tenant_id)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.user(id).await
    }

    pub async fn credentials_by_email(&self, email: &str) -> StoreResult<Credentials> {
        let row: Credentials = sqlx::query_as(
            "SELECT id, password_hash, deactivated_at FROM users WHERE tenant_id = $1 AND email = $2",
        )
        .bind(&self.tenant_id)
        .bind(normalize_email(email))
        .fetch_one(self.pool())
        .await?;
        Ok(row)
    }

    pub async fn credentials(&self, user_id: &str) -> StoreResult<Credentials> {
        let row: Credentials = sqlx::query_as(
            "SELECT id, password_hash, deactivated_at FROM users WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(user_id)
        .fetch_one(self.pool())
        .await?;
        Ok(row)
    }

    /// Stores a new password hash and revokes every session of the user except `keep`
    /// (the session that made the change, when the user changed it themselves).
    pub async fn set_password(
        &self,
        user_id: &str,
        password_hash: &str,
        keep_session: Option<&str>,
    ) -> StoreResult<()> {
        let now = now_ms();
        let (mut tx, _gate) = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE users SET password_hash = $3, password_changed_at = $4, updated_at = $4 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(user_id)
        .bind(password_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "UPDATE sessions SET revoked_at = $3, revoked_reason = 'password_changed' \
             WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL \
             AND ($4 IS NULL OR id <> $4)",
        )
        .bind(&self.tenant_id)
        .bind(user_id)
        .bind(now)
        .bind(keep_session)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
