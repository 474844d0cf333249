-- The alternatives chatstore is measured against, loaded beside it in the benchmark database (schema alt).

CREATE SCHEMA alt;

-- The common ORM layout: users, sessions and messages, with the indexes such code usually declares.
CREATE TABLE alt.users (
    id          serial PRIMARY KEY,
    external_id text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE alt.sessions (
    session_id  uuid PRIMARY KEY,
    user_id     integer NOT NULL REFERENCES alt.users,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_access timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE alt.messages (
    id          serial PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES alt.sessions,
    user_id     integer NOT NULL,
    role        text NOT NULL,
    content     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON alt.messages (session_id, user_id);
CREATE INDEX ON alt.messages (user_id);
CREATE INDEX ON alt.messages (created_at);

-- LangChain's Postgres chat history (langchain-postgres PostgresChatMessageHistory): one row per message.
CREATE TABLE alt.lc_messages (
    id          serial PRIMARY KEY,
    session_id  uuid NOT NULL,
    message     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON alt.lc_messages (session_id);

-- pgmq's archive design, for the archive comparison: an unpartitioned archive with an index on archived_at,
-- filled by one statement WITH moved AS (DELETE ... RETURNING) INSERT ... (on chatstore's own live table).
CREATE TABLE alt.pq_archive (
    LIKE chatstore.message INCLUDING DEFAULTS,
    archived_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON alt.pq_archive (conversation_id, seq);
CREATE INDEX ON alt.pq_archive (archived_at);

-- The id of benchmark conversation n, the same in every layout (a cheap expression in every pgbench script).
CREATE FUNCTION alt.cid(n integer) RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ('00000000-0000-7000-8000-' || lpad(n::text, 12, '0'))::uuid;
