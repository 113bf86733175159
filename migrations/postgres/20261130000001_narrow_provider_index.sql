-- Only replies carry the provider's message id (for its delivery receipts). Indexed only
-- where it is set: inbound messages no longer write this index, and a lookup by the
-- inbound key (tenant, account, external id) can no longer be planned on it while the
-- table has no statistics yet (it scanned every message of the account).
DROP INDEX thread_messages_provider;
CREATE INDEX thread_messages_provider ON thread_messages (channel_account_id, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
