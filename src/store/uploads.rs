//! Metadata of uploaded files (attachments); the bytes live in the blob store.

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use super::{now_ms, to_time, StoreResult, TenantDb};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Upload {
    pub id: String,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub uploader_id: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(FromRow)]
struct UploadRow {
    id: String,
    file_name: String,
    content_type: String,
    size: i64,
    sha256: String,
    uploader_id: String,
    created_at: i64,
}

impl TenantDb {
    pub async fn create_upload(
        &self,
        id: &str,
        uploader: &str,
        file_name: &str,
        content_type: &str,
        size: i64,
        sha256: &str,
    ) -> StoreResult<Upload> {
        let row: UploadRow = sqlx::query_as(
            "INSERT INTO uploads (id, tenant_id, uploader_id, file_name, content_type, size, sha256, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             RETURNING id, file_name, content_type, size, sha256, uploader_id, created_at",
        )
        .bind(id)
        .bind(&self.tenant_id)
        .bind(uploader)
        .bind(file_name)
        .bind(content_type)
        .bind(size)
        .bind(sha256)
        .bind(now_ms())
        .fetch_one(self.pool())
        .await?;
        Ok(row.into())
    }

    pub async fn upload(&self, id: &str) -> StoreResult<Upload> {
        let row: UploadRow = sqlx::query_as(
            "SELECT id, file_name, content_type, size, sha256, uploader_id, created_at FROM uploads \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(id)
        .fetch_one(self.pool())
        .await?;
        Ok(row.into())
    }
}

impl From<UploadRow> for Upload {
    fn from(r: UploadRow) -> Self {
        Upload {
            id: r.id,
            file_name: r.file_name,
            content_type: r.content_type,
            size: r.size,
            sha256: r.sha256,
            uploader_id: r.uploader_id,
            created_at: to_time(r.created_at),
        }
    }
}
