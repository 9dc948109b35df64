-- The first start's claim: at most one row (id 1), inserted in the
-- transaction that creates the first tenancy, so that servers starting
-- at once on an empty database create one tenancy between them.
CREATE TABLE bootstrap (
	id           INTEGER PRIMARY KEY CHECK (id = 1),
	tenancy_id   TEXT NOT NULL,
	time_created BIGINT NOT NULL
);
-- A database bootstrapped before this table existed is claimed by its
-- oldest tenancy.
INSERT INTO bootstrap (id, tenancy_id, time_created)
	SELECT 1, id, time_created FROM tenancies ORDER BY time_created, id LIMIT 1;
