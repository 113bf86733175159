-- The text of an inbound email without quoted replies and signature, for display (the
-- full text stays in body_text), and where a channel account's reader stopped (an IMAP
-- UIDVALIDITY and UID, as JSON).
ALTER TABLE thread_messages ADD COLUMN display_text TEXT;
ALTER TABLE channel_accounts ADD COLUMN sync_state TEXT;
