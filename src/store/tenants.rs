//! Tenants: the customer companies. Not tenant-owned themselves, so reached from [`Db`].

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use super::{new_id, now_ms, to_time, Db, StoreResult};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Tenant {
    pub id: String,
    /// Short name typed at login, e.g. `acme`.
    pub slug: String,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(FromRow)]
struct TenantRow {
    id: String,
    slug: String,
    name: String,
    created_at: i64,
}

impl From<TenantRow> for Tenant {
    fn from(r: TenantRow) -> Self {
        Tenant {
            id: r.id,
            slug: r.slug,
            name: r.name,
            created_at: to_time(r.created_at),
        }
    }
}

impl Db {
    pub async fn create_tenant(&self, slug: &str, name: &str) -> StoreResult<Tenant> {
        let row: TenantRow = sqlx::query_as(
            "INSERT INTO tenants (id, slug, name, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING id, slug, name, created_at",
        )
        .bind(new_id())
        .bind(slug)
        .bind(name)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.into())
    }

    pub async fn tenant_by_slug(&self, slug: &str) -> StoreResult<Tenant> {
        let row: TenantRow =
            sqlx::query_as("SELECT id, slug, name, created_at FROM tenants WHERE slug = $1")
                .bind(slug)
                .fetch_one(&self.pool)
                .await?;
        Ok(row.into())
    }
}

impl Db {
    pub async fn tenant(&self, id: &str) -> StoreResult<Tenant> {
        let row: TenantRow =
            sqlx::query_as("SELECT id, slug, name, created_at FROM tenants WHERE id = $1")
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
        Ok(row.into())
    }
}
