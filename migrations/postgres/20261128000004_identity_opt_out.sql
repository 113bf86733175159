-- Set when the applicant opted out of SMS on this phone (replied STOP); cleared by START.
ALTER TABLE identities ADD COLUMN opted_out_at BIGINT;
