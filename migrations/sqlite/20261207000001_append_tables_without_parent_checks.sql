-- The PostgreSQL migration of this name drops the parent checks (foreign keys) of chat
-- messages and events, which cost a query and a row lock per row there. SQLite's checks
-- take no locks (one writer at a time), and dropping them would mean rebuilding both
-- tables, the largest of a database: SQLite keeps them.
SELECT 1;
