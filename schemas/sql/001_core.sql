-- stockflow core schema: the ledger, positions, reservations and the
-- set-based apply function every writer shares (consumer, check-and-reserve).
--
-- The one idea: positions and reservations are pure functions of the SET of
-- events in the ledger. sf_apply_stage() inserts a staged batch into the
-- ledger (ON CONFLICT DO NOTHING) and applies only the rows actually
-- inserted, in the caller's transaction, so a redelivered event changes
-- nothing and any arrival order converges to the same numbers.
-- Times are epoch milliseconds (bigint): exact, and ties compare exactly.

CREATE TABLE ledger (
    event_id    text COLLATE "C" PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('SALE','RETURN','RECEIPT','ASN','COUNT','ADJUST',
                                              'TRANSFER_OUT','TRANSFER_IN','RESERVE','RELEASE')),
    sku         text COLLATE "C" NOT NULL,
    location    text COLLATE "C" NOT NULL,
    qty         bigint NOT NULL,
    occurred_at bigint NOT NULL,           -- epoch ms
    source      text COLLATE "C" NOT NULL,
    channel     text COLLATE "C",
    ref         text COLLATE "C",
    condition   text CHECK (condition IN ('RESELLABLE','DAMAGED')),
    expires_at  bigint,                    -- epoch ms, RESERVE only
    stream_seq  bigint,                    -- INV_EVENTS sequence (NULL until relayed)
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_key_time ON ledger (sku, location, occurred_at);
CREATE INDEX ledger_sku_seq ON ledger (sku, stream_seq);

CREATE TABLE positions (
    sku            text COLLATE "C" NOT NULL,
    location       text COLLATE "C" NOT NULL,
    on_hand        bigint NOT NULL DEFAULT 0,
    reserved       bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    inbound        bigint NOT NULL DEFAULT 0,  -- raw; floored at 0 when read
    damaged        bigint NOT NULL DEFAULT 0,
    count_qty      bigint,                     -- latest COUNT, if any
    count_at       bigint,
    count_event_id text COLLATE "C",
    version        bigint NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sku, location)
);

CREATE TABLE reservations (
    ref           text COLLATE "C" NOT NULL DEFAULT '',
    sku           text COLLATE "C" NOT NULL,
    location      text COLLATE "C" NOT NULL,
    reserved      bigint NOT NULL DEFAULT 0,
    released      bigint NOT NULL DEFAULT 0,
    sold          bigint NOT NULL DEFAULT 0,
    outstanding   bigint GENERATED ALWAYS AS (GREATEST(0, reserved - released - sold)) STORED,
    expires_at    bigint,                      -- latest expires_at among its RESERVEs
    never_expires boolean NOT NULL DEFAULT false, -- some RESERVE had no expires_at
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ref, sku, location)
);
CREATE INDEX reservations_key ON reservations (sku, location);
CREATE INDEX reservations_expiry ON reservations (expires_at)
    WHERE outstanding > 0 AND NOT never_expires AND expires_at IS NOT NULL;

CREATE TABLE locations (
    location     text COLLATE "C" PRIMARY KEY,
    safety_stock bigint NOT NULL DEFAULT 0 CHECK (safety_stock >= 0)
);

CREATE TABLE channels (
    channel text COLLATE "C" PRIMARY KEY,
    buffer  bigint NOT NULL DEFAULT 0 CHECK (buffer >= 0)
);

CREATE TABLE channel_locations (
    channel  text COLLATE "C" NOT NULL REFERENCES channels ON DELETE CASCADE,
    location text COLLATE "C" NOT NULL,
    PRIMARY KEY (channel, location)
);

-- What each channel was told: one row per published version.
CREATE TABLE channel_stock (
    channel     text COLLATE "C" NOT NULL,
    sku         text COLLATE "C" NOT NULL,
    version     bigint NOT NULL,
    ats         bigint NOT NULL,
    state       text NOT NULL CHECK (state IN ('pending','sent')),
    computed_at bigint NOT NULL,
    sent_at     timestamptz,
    PRIMARY KEY (channel, sku, version)
);

-- Outbox of skus whose positions changed, written in the apply transaction.
CREATE TABLE dirty (
    sku       text COLLATE "C" PRIMARY KEY,
    marked_at timestamptz NOT NULL DEFAULT now()
);

-- on_hand effect of a delta event (COUNT is absolute and handled apart).
CREATE FUNCTION sf_on_hand_delta(kind text, qty bigint, cond text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE kind
        WHEN 'SALE' THEN -qty
        WHEN 'RETURN' THEN CASE WHEN cond = 'DAMAGED' THEN 0 ELSE qty END
        WHEN 'RECEIPT' THEN qty
        WHEN 'ADJUST' THEN qty
        WHEN 'TRANSFER_OUT' THEN -qty
        WHEN 'TRANSFER_IN' THEN qty
        ELSE 0 END
$$;

-- Apply the rows staged in the session's temp table sf_stage (see
-- sf_stage_create) and return how many were new to the ledger. Runs in the
-- caller's transaction; the caller commits, then acknowledges.
-- Locks: ledger keys in event_id order, positions and reservations in key
-- order, so concurrent appliers never deadlock.
CREATE FUNCTION sf_apply_stage() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM sf_applied;
    WITH ins AS (
        INSERT INTO ledger (event_id, kind, sku, location, qty, occurred_at, source, channel,
                            ref, condition, expires_at, stream_seq)
        SELECT event_id, kind, sku, location, qty, occurred_at, source, channel,
               ref, condition, expires_at, stream_seq
        FROM sf_stage ORDER BY event_id
        ON CONFLICT (event_id) DO NOTHING
        RETURNING event_id, kind, sku, location, qty, occurred_at, source, channel,
                  ref, condition, expires_at, stream_seq)
    INSERT INTO sf_applied SELECT * FROM ins;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RETURN 0;
    END IF;

    -- Every touched key has a row, locked in key order before any update.
    INSERT INTO positions AS p (sku, location, version)
    SELECT DISTINCT sku, location, 1 FROM sf_applied ORDER BY 1, 2
    ON CONFLICT (sku, location) DO UPDATE SET version = p.version + 1, updated_at = now();

    -- Deltas: on_hand only for those after the position's current COUNT.
    UPDATE positions p SET
        on_hand = p.on_hand + a.on_hand,
        inbound = p.inbound + a.inbound,
        damaged = p.damaged + a.damaged
    FROM (
        SELECT s.sku, s.location,
               COALESCE(sum(sf_on_hand_delta(s.kind, s.qty, s.condition))
                        FILTER (WHERE q.count_at IS NULL OR s.occurred_at > q.count_at), 0) AS on_hand,
               COALESCE(sum(CASE s.kind WHEN 'ASN' THEN s.qty WHEN 'RECEIPT' THEN -s.qty END), 0)
                   AS inbound,
               COALESCE(sum(s.qty) FILTER (WHERE s.kind = 'RETURN' AND s.condition = 'DAMAGED'), 0)
                   AS damaged
        FROM sf_applied s JOIN positions q USING (sku, location)
        GROUP BY s.sku, s.location
    ) a
    WHERE p.sku = a.sku AND p.location = a.location;

    -- A COUNT later than the current one resets on_hand: its qty plus every
    -- delta in the ledger after it (the ledger already holds this batch).
    UPDATE positions p SET
        count_qty = c.qty, count_at = c.occurred_at, count_event_id = c.event_id,
        on_hand = c.qty + COALESCE((
            SELECT sum(sf_on_hand_delta(l.kind, l.qty, l.condition)) FROM ledger l
            WHERE l.sku = c.sku AND l.location = c.location AND l.occurred_at > c.occurred_at
              AND l.kind <> 'COUNT'), 0)
    FROM (
        SELECT DISTINCT ON (sku, location) sku, location, qty, occurred_at, event_id
        FROM sf_applied WHERE kind = 'COUNT'
        ORDER BY sku, location, occurred_at DESC, event_id DESC
    ) c
    WHERE p.sku = c.sku AND p.location = c.location
      AND (p.count_at IS NULL OR (c.occurred_at, c.event_id) > (p.count_at, p.count_event_id));

    -- Reservations per (ref, sku, location); a SALE consumes only its own ref.
    INSERT INTO reservations AS r (ref, sku, location, reserved, released, sold,
                                   expires_at, never_expires)
    SELECT COALESCE(ref, ''), sku, location,
           COALESCE(sum(qty) FILTER (WHERE kind = 'RESERVE'), 0),
           COALESCE(sum(qty) FILTER (WHERE kind = 'RELEASE'), 0),
           COALESCE(sum(qty) FILTER (WHERE kind = 'SALE'), 0),
           max(expires_at) FILTER (WHERE kind = 'RESERVE'),
           COALESCE(bool_or(expires_at IS NULL) FILTER (WHERE kind = 'RESERVE'), false)
    FROM sf_applied
    WHERE kind IN ('RESERVE', 'RELEASE') OR (kind = 'SALE' AND ref IS NOT NULL)
    GROUP BY sku, location, COALESCE(ref, '')
    ORDER BY sku, location, COALESCE(ref, '')
    ON CONFLICT (ref, sku, location) DO UPDATE SET
        reserved = r.reserved + excluded.reserved,
        released = r.released + excluded.released,
        sold = r.sold + excluded.sold,
        expires_at = GREATEST(r.expires_at, excluded.expires_at),
        never_expires = r.never_expires OR excluded.never_expires,
        updated_at = now();

    UPDATE positions p SET reserved = t.total
    FROM (
        SELECT r.sku, r.location, sum(r.outstanding) AS total
        FROM reservations r
        JOIN (SELECT DISTINCT sku, location FROM sf_applied
              WHERE kind IN ('RESERVE', 'RELEASE') OR (kind = 'SALE' AND ref IS NOT NULL)) k
          ON r.sku = k.sku AND r.location = k.location
        GROUP BY r.sku, r.location
    ) t
    WHERE p.sku = t.sku AND p.location = t.location;

    INSERT INTO dirty (sku) SELECT DISTINCT sku FROM sf_applied ORDER BY 1
    ON CONFLICT (sku) DO NOTHING;
    PERFORM pg_notify('inv_dirty', '');
    RETURN n;
END
$$;
