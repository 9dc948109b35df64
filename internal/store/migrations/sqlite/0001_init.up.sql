-- Gantry's initial schema (SQLite). Times are Unix nanoseconds (UTC) in
-- BIGINT columns, so they sort and compare the same on every driver. Each
-- resource keeps the columns that lists filter and sort on, and the whole
-- value as JSON in body.

CREATE TABLE tenancies (
	id           TEXT PRIMARY KEY,
	namespace    TEXT NOT NULL UNIQUE,
	time_created BIGINT NOT NULL,
	body         TEXT NOT NULL
);

CREATE TABLE users (
	id           TEXT PRIMARY KEY,
	tenancy_id   TEXT NOT NULL REFERENCES tenancies(id),
	time_created BIGINT NOT NULL,
	body         TEXT NOT NULL
);
CREATE INDEX users_tenancy ON users(tenancy_id, time_created, id);

CREATE TABLE api_keys (
	tenancy_id   TEXT NOT NULL,
	user_id      TEXT NOT NULL REFERENCES users(id),
	fingerprint  TEXT NOT NULL,
	time_created BIGINT NOT NULL,
	body         TEXT NOT NULL,
	PRIMARY KEY (tenancy_id, user_id, fingerprint)
);

CREATE TABLE compartments (
	id           TEXT PRIMARY KEY,
	tenancy_id   TEXT NOT NULL REFERENCES tenancies(id),
	time_created BIGINT NOT NULL,
	body         TEXT NOT NULL
);
CREATE INDEX compartments_tenancy ON compartments(tenancy_id, time_created, id);

CREATE TABLE models (
	id              TEXT PRIMARY KEY,
	tenancy_id      TEXT NOT NULL,
	compartment_id  TEXT NOT NULL,
	display_name    TEXT NOT NULL,
	lifecycle_state TEXT NOT NULL,
	vendor          TEXT NOT NULL,
	type            TEXT NOT NULL,
	version         TEXT NOT NULL,
	capabilities    TEXT NOT NULL, -- ",CAP1,CAP2," for LIKE filters
	time_created    BIGINT NOT NULL,
	etag            TEXT NOT NULL,
	body            TEXT NOT NULL
);
CREATE INDEX models_list ON models(tenancy_id, compartment_id, time_created, id);
CREATE INDEX models_type ON models(type);
-- A custom model's displayName and version are unique in its tenancy,
-- deleted models aside.
CREATE UNIQUE INDEX models_name_version ON models(tenancy_id, display_name, version)
	WHERE tenancy_id <> '' AND lifecycle_state <> 'DELETED';

CREATE TABLE clusters (
	id              TEXT PRIMARY KEY,
	tenancy_id      TEXT NOT NULL,
	compartment_id  TEXT NOT NULL,
	display_name    TEXT NOT NULL,
	lifecycle_state TEXT NOT NULL,
	type            TEXT NOT NULL,
	time_created    BIGINT NOT NULL,
	etag            TEXT NOT NULL,
	body            TEXT NOT NULL
);
CREATE INDEX clusters_list ON clusters(tenancy_id, compartment_id, time_created, id);

CREATE TABLE work_requests (
	id              TEXT PRIMARY KEY,
	tenancy_id      TEXT NOT NULL,
	compartment_id  TEXT NOT NULL,
	operation_type  TEXT NOT NULL,
	status          TEXT NOT NULL,
	resource_ids    TEXT NOT NULL, -- ",ID1,ID2," for LIKE filters
	time_created    BIGINT NOT NULL, -- timeAccepted
	body            TEXT NOT NULL
);
CREATE INDEX work_requests_list ON work_requests(tenancy_id, compartment_id, time_created, id);

CREATE TABLE work_request_logs (
	seq             INTEGER PRIMARY KEY,
	work_request_id TEXT NOT NULL REFERENCES work_requests(id),
	message         TEXT NOT NULL,
	time_created    BIGINT NOT NULL
);
CREATE INDEX work_request_logs_wr ON work_request_logs(work_request_id, seq);

CREATE TABLE work_request_errors (
	seq             INTEGER PRIMARY KEY,
	work_request_id TEXT NOT NULL REFERENCES work_requests(id),
	code            TEXT NOT NULL,
	message         TEXT NOT NULL,
	time_created    BIGINT NOT NULL
);
CREATE INDEX work_request_errors_wr ON work_request_errors(work_request_id, seq);

CREATE TABLE retry_tokens (
	tenancy_id   TEXT NOT NULL,
	token        TEXT NOT NULL,
	time_created BIGINT NOT NULL,
	body         TEXT NOT NULL,
	PRIMARY KEY (tenancy_id, token)
);

CREATE TABLE job_queues (
	name        TEXT PRIMARY KEY,
	concurrency INTEGER NOT NULL
);

CREATE TABLE jobs (
	seq              INTEGER PRIMARY KEY, -- creation order: FIFO within a queue
	id               TEXT NOT NULL UNIQUE,
	kind             TEXT NOT NULL,
	queue            TEXT NOT NULL,
	resource_id      TEXT NOT NULL,
	work_request_id  TEXT NOT NULL,
	tenancy_id       TEXT NOT NULL,
	state            TEXT NOT NULL,
	attempt          INTEGER NOT NULL,
	payload          BLOB,
	lease_owner      TEXT NOT NULL,
	lease_expires    BIGINT NOT NULL,
	cancel_requested INTEGER NOT NULL,
	error            TEXT NOT NULL,
	time_created     BIGINT NOT NULL,
	time_updated     BIGINT NOT NULL
);
CREATE INDEX jobs_state ON jobs(state, seq);
CREATE INDEX jobs_queue ON jobs(queue, state);
CREATE INDEX jobs_resource ON jobs(resource_id, seq);
