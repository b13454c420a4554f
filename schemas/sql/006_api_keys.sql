-- API keys of inv-api (and inv-ingest --http): common/apikey.h has the format.
--
-- A key is shown once, by `invctl apikey add`, as sf_<id>_<secret>; only the
-- salt and SHA-256(salt || secret) are kept, so this table holds nothing a
-- client could present. Servers read the whole table every 5 s (it is small),
-- so a revocation takes effect within that. A revoked row is kept, for the
-- audit trail and so its use is reported as revoked rather than unknown.

CREATE TABLE api_keys (
    id         text COLLATE "C" PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name       text COLLATE "C" NOT NULL CHECK (name ~ '^[A-Za-z0-9_-]{1,64}$'),
    scope      text NOT NULL CHECK (scope IN ('read', 'ingest', 'admin')),
    salt       bytea NOT NULL CHECK (length(salt) BETWEEN 16 AND 64),
    hash       bytea NOT NULL CHECK (length(hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- One active key per name (names are what operators revoke by); a revoked
-- name may be issued again.
CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL;
