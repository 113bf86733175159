//! Departments of a tenant: recruiters are grouped by them, and later routing queues and
//! news feeds are addressed to them.

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use super::{new_id, now_ms, to_time, StoreError, StoreResult, TenantDb};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Department {
    pub id: String,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(FromRow)]
struct DepartmentRow {
    id: String,
    name: String,
    created_at: i64,
}

impl From<DepartmentRow> for Department {
    fn from(r: DepartmentRow) -> Self {
        Department {
            id: r.id,
            name: r.name,
            created_at: to_time(r.created_at),
        }
    }
}

impl TenantDb {
    pub async fn list_departments(&self) -> StoreResult<Vec<Department>> {
        let rows: Vec<DepartmentRow> = sqlx::query_as(
            "SELECT id, name, created_at FROM departments WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(&self.tenant_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn department(&self, id: &str) -> StoreResult<Department> {
        let row: DepartmentRow = sqlx::query_as(
            "SELECT id, name, created_at FROM departments WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(id)
        .fetch_one(self.pool())
        .await?;
        Ok(row.into())
    }

    pub async fn create_department(&self, name: &str) -> StoreResult<Department> {
        let row: DepartmentRow = sqlx::query_as(
            "INSERT INTO departments (id, tenant_id, name, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING id, name, created_at",
        )
        .bind(new_id())
        .bind(&self.tenant_id)
        .bind(name)
        .bind(now_ms())
        .fetch_one(self.pool())
        .await?;
        Ok(row.into())
    }

    pub async fn rename_department(&self, id: &str, name: &str) -> StoreResult<Department> {
        let row: DepartmentRow = sqlx::query_as(
            "UPDATE departments SET name = $3 WHERE tenant_id = $1 AND id = $2 \
             RETURNING id, name, created_at",
        )
        .bind(&self.tenant_id)
        .bind(id)
        .bind(name)
        .fetch_one(self.pool())
        .await?;
        Ok(row.into())
    }

    /// Deletes a department; its users stay, without a department.
    pub async fn delete_department(&self, id: &str) -> StoreResult<()> {
        let (mut tx, _gate) = self.begin_write().await?;
        sqlx::query(
            "UPDATE users SET department_id = NULL WHERE tenant_id = $1 AND department_id = $2",
        )
        .bind(&self.tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM departments WHERE tenant_id = $1 AND id = $2")
            .bind(&self.tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }
}
