//! What the router (the ACD, `src/routing.rs`) reads: queues with their members' loads,
//! threads waiting in them, and assigned threads it may have to take back.

use sqlx::FromRow;

use super::{Db, StoreResult, TenantDb};

#[derive(Debug, Clone, FromRow)]
pub struct RoutingQueue {
    pub id: String,
    pub strategy: String,
    pub away_limit_s: Option<i64>,
    pub response_limit_s: Option<i64>,
    pub last_user_id: Option<String>,
}

/// A member of a queue with how many open threads they hold (in any queue).
#[derive(Debug, Clone, FromRow)]
pub struct MemberLoad {
    pub user_id: String,
    pub capacity: i64,
    pub load: i64,
    pub last_assigned_at: Option<i64>,
}

/// An assigned open thread in a queue with limits.
#[derive(Debug, Clone, FromRow)]
pub struct AssignedThread {
    pub id: String,
    pub queue_id: String,
    pub assignee_id: String,
    pub assigned_at: Option<i64>,
    pub awaiting_reply_since: Option<i64>,
}

impl Db {
    /// Tenants that have threads waiting in a queue or assigned in a queue with limits.
    pub async fn tenants_to_route(&self) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT t.tenant_id FROM threads t WHERE t.queue_id IS NOT NULL AND t.state <> 'closed' \
             AND t.merged_into IS NULL AND (t.assignee_id IS NULL OR EXISTS (SELECT 1 FROM queues q \
               WHERE q.id = t.queue_id AND (q.away_limit_s IS NOT NULL OR q.response_limit_s IS NOT NULL)))",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}

impl TenantDb {
    pub async fn routing_queues(&self) -> StoreResult<Vec<RoutingQueue>> {
        Ok(sqlx::query_as(
            "SELECT id, strategy, away_limit_s, response_limit_s, last_user_id FROM queues WHERE tenant_id = $1 \
             ORDER BY created_at, id",
        )
        .bind(&self.tenant_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Members in the queue's order, with their load across the tenant.
    pub async fn member_loads(&self, queue_id: &str) -> StoreResult<Vec<MemberLoad>> {
        Ok(sqlx::query_as(
            "SELECT m.user_id, m.capacity, \
               (SELECT COUNT(*) FROM threads t WHERE t.tenant_id = m.tenant_id AND t.assignee_id = m.user_id \
                AND t.state <> 'closed' AND t.merged_into IS NULL) AS load, \
               (SELECT MAX(t.assigned_at) FROM threads t WHERE t.tenant_id = m.tenant_id AND t.assignee_id = m.user_id) \
                AS last_assigned_at \
             FROM queue_members m JOIN users u ON u.id = m.user_id \
             WHERE m.tenant_id = $1 AND m.queue_id = $2 AND u.deactivated_at IS NULL \
             ORDER BY m.joined_at, m.user_id",
        )
        .bind(&self.tenant_id)
        .bind(queue_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Unassigned open threads of a queue, oldest waiting first.
    /// With the assignee each was last taken back from.
    pub async fn waiting_threads(
        &self,
        queue_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<(String, Option<String>)>> {
        Ok(sqlx::query_as(
            "SELECT id, rerouted_from FROM threads WHERE tenant_id = $1 AND queue_id = $2 AND assignee_id IS NULL \
             AND state <> 'closed' AND merged_into IS NULL ORDER BY COALESCE(waiting_since, created_at), id LIMIT $3",
        )
        .bind(&self.tenant_id)
        .bind(queue_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Assigned threads of a queue that are not closed.
    pub async fn assigned_threads(&self, queue_id: &str) -> StoreResult<Vec<AssignedThread>> {
        Ok(sqlx::query_as(
            "SELECT id, queue_id, assignee_id, assigned_at, awaiting_reply_since FROM threads \
             WHERE tenant_id = $1 AND queue_id = $2 AND assignee_id IS NOT NULL AND state <> 'closed' \
             AND merged_into IS NULL",
        )
        .bind(&self.tenant_id)
        .bind(queue_id)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn set_queue_cursor(&self, queue_id: &str, user_id: &str) -> StoreResult<()> {
        let (mut tx, _gate) = self.begin_write().await?;
        sqlx::query("UPDATE queues SET last_user_id = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(&self.tenant_id)
            .bind(queue_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
