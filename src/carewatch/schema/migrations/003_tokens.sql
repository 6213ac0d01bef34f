-- API tokens (contracts/GRAPHQL.md "Authentication and scope"). The secret itself is never
-- stored: only its SHA-256. A fast hash is right here, unlike for passwords, because every
-- secret is `cw_` + 32 bytes from the operating system's CSPRNG (256 bits of entropy): there
-- is no dictionary to try, so slowing each guess down buys nothing, while a fast hash keeps
-- the lookup on every request cheap and lets it go through a unique index.
CREATE TABLE api_tokens (
    id            bigserial   PRIMARY KEY,
    name          text        NOT NULL DEFAULT '',
    role          text        NOT NULL
                  CHECK (role IN ('admin', 'commissioner', 'safeguarding', 'provider', 'ingest')),
    scope         text,       -- commissioner id or provider id; NULL only for admin
    secret_hash   text        NOT NULL UNIQUE,  -- hex SHA-256 of the secret
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz,
    CONSTRAINT api_tokens_scope_matches_role CHECK ((role = 'admin') = (scope IS NULL))
);
