-- The board account's responsible recruiter: new applicants' threads from the board go to
-- this user (instead of waiting in the account's queue).
ALTER TABLE board_mappings ADD COLUMN responsible_user_id TEXT;
