//! The schema, one migration per version; never edit a released one.

use rusqlite_migration::M;

pub(super) const MIGRATIONS: &[M<'static>] = &[
    M::up(
        r#"
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;

-- Live tokens: a token is valid only while its row exists (logout and
-- revocation delete it), so a stolen token dies with its row.
CREATE TABLE tokens (
    jti        TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_at  TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE schedules (
    id               INTEGER PRIMARY KEY,
    target_type      TEXT NOT NULL CHECK (target_type IN ('stack', 'container')),
    target_id        TEXT NOT NULL,
    action           TEXT NOT NULL CHECK (action IN ('start', 'stop', 'restart', 'pause', 'unpause')),
    cron             TEXT NOT NULL,
    timezone         TEXT NOT NULL,
    enabled          INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    last_run_at      TEXT,
    last_run_ok      INTEGER,
    last_run_message TEXT,
    -- The scheduler has handled every fire up to this instant; after a
    -- restart, fires between it and now were missed.
    checked_until    TEXT
) STRICT;

CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    timestamp   TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    ok          INTEGER NOT NULL,
    message     TEXT NOT NULL,
    client_addr TEXT,
    details     TEXT
) STRICT;
CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"#,
    ),
    // The audit filters the API offers, each newest first: without these a
    // filter that matches few rows reads the whole table under the store's lock.
    M::up(
        r#"
CREATE INDEX audit_actor ON audit (actor, id);
CREATE INDEX audit_target ON audit (target_type, target_id, id);
CREATE INDEX audit_action ON audit (action, id);
CREATE INDEX audit_ok ON audit (ok, id);
"#,
    ),
    // Windows: desired state per target. One enabled window per target is
    // the contract's rule; the partial unique index keeps it under races too.
    M::up(
        r#"
CREATE TABLE windows (
    id               INTEGER PRIMARY KEY,
    host             TEXT NOT NULL,
    target_type      TEXT NOT NULL CHECK (target_type IN ('stack', 'container')),
    target_id        TEXT NOT NULL,
    spec             TEXT NOT NULL,
    timezone         TEXT NOT NULL,
    down_action      TEXT NOT NULL CHECK (down_action IN ('stop', 'pause')),
    enforce          TEXT NOT NULL CHECK (enforce IN ('both', 'down_only')),
    grace_seconds    INTEGER NOT NULL CHECK (grace_seconds >= 0),
    enabled          INTEGER NOT NULL,
    source           TEXT NOT NULL CHECK (source IN ('api', 'label')),
    override_desired TEXT CHECK (override_desired IN ('up', 'down')),
    override_until   TEXT,
    override_by      TEXT,
    override_reason  TEXT,
    -- Containers this window stopped (JSON names): at the next "up" they are
    -- started again, even if they exited 0 like a one-shot job would.
    stopped          TEXT NOT NULL DEFAULT '[]',
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX windows_one_enabled_per_target ON windows (host, target_type, target_id) WHERE enabled;
"#,
    ),
    // The due time of a scheduled run under way: still set at start-up, the
    // previous process died during that run, which is then audited.
    M::up("ALTER TABLE schedules ADD COLUMN running_due TEXT;"),
    // Many hosts and Swarm: every target carries its host, target types gain
    // Swarm services and stacks (a CHECK cannot be altered: the two tables
    // are rebuilt), hosts added through the API are stored with their TLS
    // material, and a Swarm service's replica count is remembered across a
    // stop so that a start (or a restart of DockNap) brings it back.
    M::up(
        r#"
CREATE TABLE schedules_v6 (
    id               INTEGER PRIMARY KEY,
    host             TEXT NOT NULL DEFAULT 'local',
    target_type      TEXT NOT NULL CHECK (target_type IN ('stack', 'container', 'service', 'swarm_stack', 'group')),
    target_id        TEXT NOT NULL,
    action           TEXT NOT NULL CHECK (action IN ('start', 'stop', 'restart', 'pause', 'unpause')),
    cron             TEXT NOT NULL,
    timezone         TEXT NOT NULL,
    enabled          INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    last_run_at      TEXT,
    last_run_ok      INTEGER,
    last_run_message TEXT,
    checked_until    TEXT,
    running_due      TEXT
) STRICT;
INSERT INTO schedules_v6 (id, target_type, target_id, action, cron, timezone, enabled, created_at, updated_at,
                          last_run_at, last_run_ok, last_run_message, checked_until, running_due)
    SELECT id, target_type, target_id, action, cron, timezone, enabled, created_at, updated_at,
           last_run_at, last_run_ok, last_run_message, checked_until, running_due FROM schedules;
DROP TABLE schedules;
ALTER TABLE schedules_v6 RENAME TO schedules;

CREATE TABLE windows_v6 (
    id               INTEGER PRIMARY KEY,
    host             TEXT NOT NULL,
    target_type      TEXT NOT NULL CHECK (target_type IN ('stack', 'container', 'service', 'swarm_stack')),
    target_id        TEXT NOT NULL,
    spec             TEXT NOT NULL,
    timezone         TEXT NOT NULL,
    down_action      TEXT NOT NULL CHECK (down_action IN ('stop', 'pause')),
    enforce          TEXT NOT NULL CHECK (enforce IN ('both', 'down_only')),
    grace_seconds    INTEGER NOT NULL CHECK (grace_seconds >= 0),
    enabled          INTEGER NOT NULL,
    source           TEXT NOT NULL CHECK (source IN ('api', 'label')),
    override_desired TEXT CHECK (override_desired IN ('up', 'down')),
    override_until   TEXT,
    override_by      TEXT,
    override_reason  TEXT,
    stopped          TEXT NOT NULL DEFAULT '[]',
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
) STRICT;
INSERT INTO windows_v6 SELECT * FROM windows;
DROP TABLE windows;
ALTER TABLE windows_v6 RENAME TO windows;
CREATE UNIQUE INDEX windows_one_enabled_per_target ON windows (host, target_type, target_id) WHERE enabled;

ALTER TABLE audit ADD COLUMN host TEXT;
CREATE INDEX audit_host ON audit (host, id);

CREATE TABLE hosts (
    name       TEXT PRIMARY KEY,
    url        TEXT NOT NULL,
    grp        TEXT,
    tls_ca     TEXT,
    tls_cert   TEXT,
    tls_key    TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE swarm_saved_replicas (
    host     TEXT NOT NULL,
    service  TEXT NOT NULL,
    replicas INTEGER NOT NULL CHECK (replicas > 0),
    saved_at TEXT NOT NULL,
    PRIMARY KEY (host, service)
) STRICT;
"#,
    ),
    // The audit log becomes a hash chain: each entry carries SHA-256 over its
    // fields and the previous entry's hash. Entries stay unchangeable, but one
    // written before this version gets its hash once, at start-up.
    M::up(
        r#"
ALTER TABLE audit ADD COLUMN hash TEXT;
DROP TRIGGER audit_append_only_update;
CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
    WHEN OLD.hash IS NOT NULL OR NEW.hash IS NULL
      OR NEW.id IS NOT OLD.id OR NEW.timestamp IS NOT OLD.timestamp OR NEW.actor IS NOT OLD.actor
      OR NEW.action IS NOT OLD.action OR NEW.host IS NOT OLD.host OR NEW.target_type IS NOT OLD.target_type
      OR NEW.target_id IS NOT OLD.target_id OR NEW.ok IS NOT OLD.ok OR NEW.message IS NOT OLD.message
      OR NEW.client_addr IS NOT OLD.client_addr OR NEW.details IS NOT OLD.details
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"#,
    ),
    // Two-factor sign-in: a user's TOTP secret (sealed with the key file in
    // the data dir, never stored plain), whether it is confirmed, and the last
    // time step accepted (a code works once); recovery codes as hashes.
    M::up(
        r#"
CREATE TABLE totp (
    user_id    INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_enc TEXT NOT NULL,
    enabled    INTEGER NOT NULL,
    last_step  INTEGER,
    created_at TEXT NOT NULL
) STRICT;
CREATE TABLE recovery_codes (
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   TEXT,
    PRIMARY KEY (user_id, code_hash)
) STRICT;
"#,
    ),
    // Users who sign in through an OpenID provider, by the provider's
    // (issuer, subject): names can change or collide, these cannot.
    M::up(
        r#"
CREATE TABLE oidc_identities (
    issuer  TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id INTEGER NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (issuer, subject)
) STRICT;
"#,
    ),
    // One-time schedules (`at` instead of `cron`), `run` jobs with a time
    // limit, and sequences of steps: the CHECKs widen, so the table is rebuilt.
    M::up(
        r#"
CREATE TABLE schedules_jobs (
    id               INTEGER PRIMARY KEY,
    host             TEXT NOT NULL DEFAULT 'local',
    target_type      TEXT NOT NULL CHECK (target_type IN ('stack', 'container', 'service', 'swarm_stack', 'group', 'sequence')),
    target_id        TEXT NOT NULL,
    action           TEXT NOT NULL CHECK (action IN ('start', 'stop', 'restart', 'pause', 'unpause', 'run')),
    cron             TEXT,
    at               TEXT,
    timezone         TEXT NOT NULL,
    enabled          INTEGER NOT NULL,
    run_timeout      INTEGER CHECK (run_timeout > 0),
    steps            TEXT NOT NULL DEFAULT '[]',
    on_failure       TEXT NOT NULL DEFAULT 'stop' CHECK (on_failure IN ('stop', 'continue')),
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    last_run_at      TEXT,
    last_run_ok      INTEGER,
    last_run_message TEXT,
    checked_until    TEXT,
    running_due      TEXT,
    CHECK ((cron IS NULL) <> (at IS NULL))
) STRICT;
INSERT INTO schedules_jobs (id, host, target_type, target_id, action, cron, timezone, enabled, created_at, updated_at,
                           last_run_at, last_run_ok, last_run_message, checked_until, running_due)
    SELECT id, host, target_type, target_id, action, cron, timezone, enabled, created_at, updated_at,
           last_run_at, last_run_ok, last_run_message, checked_until, running_due FROM schedules;
DROP TABLE schedules;
ALTER TABLE schedules_jobs RENAME TO schedules;
"#,
    ),
    // API keys: long-lived bearer tokens a user makes for scripts. Only the
    // SHA-256 of a key is kept (a key is 256 random bits: a slow hash would
    // add nothing but latency). A key dies with its user; names are unique
    // per user because the audit names the actor `USERNAME:KEYNAME`.
    M::up(
        r#"
CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    last_used_at TEXT,
    UNIQUE (user_id, name)
) STRICT;
"#,
    ),
    // Notifications: channels (URLs are secrets, like hosts' TLS keys: kept
    // here and nowhere else) and the outbox. A delivery row is written in the
    // same transaction as the audit entry it reports, so a result is never
    // recorded without its notice or the other way round; `leased` marks an
    // attempt under way (a kill -9 mid-send leaves it set: start-up makes it
    // due again). Notices that arrive together join one pending delivery.
    M::up(
        r#"
CREATE TABLE notify_channels (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    url        TEXT NOT NULL,
    secret     TEXT,
    events     TEXT NOT NULL,
    enabled    INTEGER NOT NULL,
    source     TEXT NOT NULL CHECK (source IN ('env', 'api')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE TABLE notify_deliveries (
    id          INTEGER PRIMARY KEY,
    channel_id  INTEGER NOT NULL REFERENCES notify_channels (id) ON DELETE CASCADE,
    event       TEXT NOT NULL,
    group_key   TEXT,
    notices     TEXT NOT NULL,
    count       INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    due_at      TEXT,
    leased      INTEGER NOT NULL DEFAULT 0,
    attempts    INTEGER NOT NULL DEFAULT 0,
    ok          INTEGER,
    status      INTEGER,
    error       TEXT,
    finished_at TEXT
) STRICT;
CREATE INDEX notify_deliveries_due ON notify_deliveries (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX notify_deliveries_channel ON notify_deliveries (channel_id, id);
CREATE INDEX notify_deliveries_gather ON notify_deliveries (channel_id, group_key) WHERE attempts = 0 AND due_at IS NOT NULL;
CREATE INDEX notify_deliveries_failed ON notify_deliveries (ok, id);
"#,
    ),
    // Schedules and windows defined by container labels: the key that
    // names where they came from (host, target, schedule name), the compose
    // service(s) or container whose labels define them, and what is wrong
    // with those labels (such an object is stored disabled and never runs).
    M::up(
        r#"
ALTER TABLE schedules ADD COLUMN source TEXT NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'label'));
ALTER TABLE schedules ADD COLUMN label_key TEXT;
ALTER TABLE schedules ADD COLUMN label_origin TEXT;
ALTER TABLE schedules ADD COLUMN label_error TEXT;
ALTER TABLE windows ADD COLUMN label_key TEXT;
ALTER TABLE windows ADD COLUMN label_origin TEXT;
ALTER TABLE windows ADD COLUMN label_error TEXT;
CREATE UNIQUE INDEX schedules_label_key ON schedules (label_key) WHERE label_key IS NOT NULL;
CREATE UNIQUE INDEX windows_label_key ON windows (label_key) WHERE label_key IS NOT NULL;
"#,
    ),
];
