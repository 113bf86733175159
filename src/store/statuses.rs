//! Statuses users choose themselves (busy, away, a custom text, until when) and their
//! out-of-office periods. The automatic part of presence (connections, idle) is not stored.

use sqlx::FromRow;

use super::{now_ms, StoreResult, TenantDb};

/// A user's chosen status and out-of-office period, times in Unix milliseconds.
#[derive(Debug, Clone, Default, FromRow, PartialEq, Eq)]
pub struct ChosenStatus {
    pub user_id: String,
    /// `online`, `busy`, `away`, or `None` for automatic.
    pub status: Option<String>,
    pub text: Option<String>,
    pub until: Option<i64>,
    pub ooo_from: Option<i64>,
    pub ooo_until: Option<i64>,
    pub ooo_text: Option<String>,
}

impl TenantDb {
    pub async fn chosen_statuses(&self) -> StoreResult<Vec<ChosenStatus>> {
        Ok(sqlx::query_as(
            "SELECT user_id, status, text, until, ooo_from, ooo_until, ooo_text FROM user_statuses \
             WHERE tenant_id = $1",
        )
        .bind(&self.tenant_id)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn chosen_status(&self, user_id: &str) -> StoreResult<ChosenStatus> {
        let found: Option<ChosenStatus> = sqlx::query_as(
            "SELECT user_id, status, text, until, ooo_from, ooo_until, ooo_text FROM user_statuses \
             WHERE tenant_id = $1 AND user_id = $2",
        )
        .bind(&self.tenant_id)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(found.unwrap_or(ChosenStatus {
            user_id: user_id.into(),
            ..Default::default()
        }))
    }

    pub async fn save_chosen_status(&self, s: &ChosenStatus) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO user_statuses (tenant_id, user_id, status, text, until, ooo_from, ooo_until, ooo_text, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (user_id) DO UPDATE SET status = $3, text = $4, until = $5, ooo_from = $6, \
             ooo_until = $7, ooo_text = $8, updated_at = $9",
        )
        .bind(&self.tenant_id)
        .bind(&s.user_id)
        .bind(s.status.as_deref())
        .bind(s.text.as_deref())
        .bind(s.until)
        .bind(s.ooo_from)
        .bind(s.ooo_until)
        .bind(s.ooo_text.as_deref())
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
