-- Check-and-reserve (DESIGN.md "Check-and-reserve"): POST /v1/reservations
-- of inv-api calls sf_reserve() once per request, as one statement, so the
-- whole check and apply is one transaction.
--
-- The one idea: the check and the RESERVE happen under the same row locks
-- the consumers take. sf_reserve locks the positions rows of the candidate
-- locations (FOR UPDATE, in key order, the order sf_apply_stage upserts
-- them in, so the two never deadlock), reads available = on_hand - reserved
-- - safety_stock under those locks, and applies the RESERVE with the
-- statements sf_apply_stage() (the consumers' function) runs for one new
-- RESERVE, before the locks are released. A SALE a consumer applies
-- meanwhile either commits first (and the check sees it) or waits for the
-- reservation; two reservations of the same row are serialised. Hence never
-- more reserved than available. Idempotency rows are kept (no purge yet).
--
-- Exactly once, twice over:
-- * idempotency: the key's row is inserted first; a second request with the
--   same key waits on that unique key until the first commits, then reads
--   its answer (201 or 409, stored with the request that made it).
-- * outbox: the RESERVE also lands in `outbox`, which the relay
--   (inv-reconciler, reconciler/relay.h) publishes to INV_EVENTS with
--   Nats-Msg-Id = event_id. The consumer that receives it finds event_id in
--   the ledger already and applies nothing. ledger.stream_seq of such a row
--   is NULL until the relay learns the sequence from JetStream's ack and
--   fills it in (the one update the ledger ever gets).
--
-- Lock order, as the consumers': the idempotency key (no consumer takes
-- it), positions rows in (sku, location) order, then a ledger row no one
-- else can hold yet (its id is new), then the reservations row and dirty,
-- which sf_apply_stage also takes after its positions rows: a reservation
-- and a consumer batch never wait on each other in a circle.

CREATE TABLE IF NOT EXISTS outbox (
    event_id    text COLLATE "C" PRIMARY KEY,
    kind        text NOT NULL,
    sku         text COLLATE "C" NOT NULL,
    location    text COLLATE "C" NOT NULL,
    qty         bigint NOT NULL,
    occurred_at bigint NOT NULL,
    source      text COLLATE "C" NOT NULL,
    channel     text COLLATE "C",
    ref         text COLLATE "C",
    expires_at  bigint,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at     timestamptz,          -- NULL until JetStream acknowledged it
    stream_seq  bigint                -- INV_EVENTS sequence from that ack
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (created_at, event_id) WHERE sent_at IS NULL;

-- One row per Idempotency-Key: the request it came with and its answer.
CREATE TABLE IF NOT EXISTS idempotency (
    key         text COLLATE "C" PRIMARY KEY,
    request     text COLLATE "C" NOT NULL,  -- ref, sku, qty, location, channel, ttl_s (0x1F)
    status      int NOT NULL,               -- 201 or 409 (0 while the first is in flight)
    event_id    text COLLATE "C",
    location    text COLLATE "C",
    expires_at  bigint,
    available   bigint,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Returns one row: status 201 (event_id, location, expires_at), 409
-- (available: the most one request could reserve now), 404 (no such
-- channel; not stored), 422 (the key was used before with another
-- request; not stored). replay: the answer is the stored one of an
-- earlier request with this key.
CREATE OR REPLACE FUNCTION sf_reserve(p_key text, p_request text, p_event_id text, p_ref text,
                                      p_sku text, p_qty bigint, p_location text, p_channel text,
                                      p_now_ms bigint, p_expires_at bigint, p_source text)
RETURNS TABLE (status int, event_id text, location text, expires_at bigint, available bigint,
               replay boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    locs text[];
    buf bigint := 0;
    best_loc text;
    best_avail bigint;
    ats bigint;
    n bigint;
    delta bigint;
    prev idempotency%ROWTYPE;
BEGIN
    -- Claim the key. A concurrent request with the same key blocks here
    -- until the first commits, then finds its row.
    INSERT INTO idempotency AS i (key, request, status) VALUES (p_key, p_request, 0)
    ON CONFLICT (key) DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO prev FROM idempotency i WHERE i.key = p_key;
        IF prev.request IS DISTINCT FROM p_request THEN
            RETURN QUERY SELECT 422, NULL::text, NULL::text, NULL::bigint, NULL::bigint, true;
            RETURN;
        END IF;
        RETURN QUERY SELECT prev.status, prev.event_id, prev.location, prev.expires_at,
                            prev.available, true;
        RETURN;
    END IF;

    IF p_channel IS NOT NULL THEN
        SELECT c.buffer INTO buf FROM channels c WHERE c.channel = p_channel;
        IF NOT FOUND THEN
            DELETE FROM idempotency i WHERE i.key = p_key;
            RETURN QUERY SELECT 404, NULL::text, NULL::text, NULL::bigint, NULL::bigint, false;
            RETURN;
        END IF;
        SELECT array_agg(cl.location ORDER BY cl.location) INTO locs
        FROM channel_locations cl WHERE cl.channel = p_channel;
    ELSE
        locs := ARRAY[p_location];
    END IF;

    -- Lock the sku's rows at the candidate locations in key order, then
    -- read them under the locks. A location without a row has nothing.
    PERFORM 1 FROM positions p
    WHERE p.sku = p_sku AND p.location = ANY (COALESCE(locs, '{}'))
    ORDER BY p.location FOR UPDATE;

    SELECT p.location, p.on_hand - p.reserved - COALESCE(l.safety_stock, 0)
    INTO best_loc, best_avail
    FROM positions p LEFT JOIN locations l ON l.location = p.location
    WHERE p.sku = p_sku AND p.location = ANY (COALESCE(locs, '{}'))
    ORDER BY 2 DESC, 1 LIMIT 1;

    IF p_channel IS NOT NULL THEN
        SELECT GREATEST(0, COALESCE(sum(GREATEST(0, p.on_hand - p.reserved
                                                 - COALESCE(l.safety_stock, 0))), 0) - buf)
        INTO ats
        FROM positions p LEFT JOIN locations l ON l.location = p.location
        WHERE p.sku = p_sku AND p.location = ANY (COALESCE(locs, '{}'));
    ELSE
        ats := GREATEST(0, COALESCE(best_avail, 0));
    END IF;

    IF best_loc IS NULL OR best_avail < p_qty OR ats < p_qty THEN
        n := GREATEST(0, LEAST(COALESCE(best_avail, 0), ats));
        UPDATE idempotency i SET status = 409, available = n WHERE i.key = p_key;
        RETURN QUERY SELECT 409, NULL::text, NULL::text, NULL::bigint, n, false;
        RETURN;
    END IF;

    -- The RESERVE, applied exactly as sf_apply_stage (002) applies one new
    -- RESERVE: ledger row, positions version, reservations row, positions
    -- reserved by the change of the row's outstanding, dirty, NOTIFY. Done
    -- here without its session temp tables, whose truncation at every
    -- commit would cost more than the whole reservation.
    INSERT INTO ledger (event_id, kind, sku, location, qty, occurred_at, source, channel, ref,
                        condition, expires_at, stream_seq)
    VALUES (p_event_id, 'RESERVE', p_sku, best_loc, p_qty, p_now_ms, p_source, p_channel, p_ref,
            NULL, p_expires_at, NULL)
    ON CONFLICT (event_id) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        -- Already in the ledger (the key's row was purged): the first
        -- answer is the ledger's.
        SELECT g.location, g.expires_at INTO best_loc, p_expires_at
        FROM ledger g WHERE g.event_id = p_event_id;
    ELSE
        INSERT INTO reservations AS r (ref, sku, location, reserved, released, sold, expires_at,
                                       never_expires)
        VALUES (p_ref, p_sku, best_loc, p_qty, 0, 0, p_expires_at, p_expires_at IS NULL)
        ON CONFLICT (ref, sku, location) DO UPDATE SET
            reserved = r.reserved + excluded.reserved,
            expires_at = GREATEST(r.expires_at, excluded.expires_at),
            never_expires = r.never_expires OR excluded.never_expires,
            updated_at = now()
        RETURNING r.outstanding - GREATEST(0, r.reserved - p_qty - r.released - r.sold)
        INTO delta;
        UPDATE positions p SET reserved = p.reserved + delta, version = p.version + 1,
                               updated_at = now()
        WHERE p.sku = p_sku AND p.location = best_loc;
        -- No pg_notify here: a notifying transaction holds a database-wide
        -- lock through its commit, which would serialise every reservation's
        -- fsync. inv-api wakes the reconciler after the reply, at most every
        -- 50 ms per thread (api_reserve_notify); its poll covers the rest.
        INSERT INTO dirty AS d (sku) VALUES (p_sku)
        ON CONFLICT (sku) DO UPDATE SET marked_at = now();
        INSERT INTO outbox (event_id, kind, sku, location, qty, occurred_at, source, channel, ref,
                            expires_at)
        VALUES (p_event_id, 'RESERVE', p_sku, best_loc, p_qty, p_now_ms, p_source, p_channel, p_ref,
                p_expires_at)
        ON CONFLICT DO NOTHING;
    END IF;
    UPDATE idempotency i SET status = 201, event_id = p_event_id, location = best_loc,
                             expires_at = p_expires_at
    WHERE i.key = p_key;
    RETURN QUERY SELECT 201, p_event_id, best_loc, p_expires_at, NULL::bigint, n = 0;
END
$$;

-- The relay's claim: unsent outbox rows, oldest first, one table, SKIP
-- LOCKED so several reconcilers share the work (TOOLCHAIN.md).
CREATE OR REPLACE FUNCTION sf_outbox_claim(batch int)
RETURNS SETOF outbox LANGUAGE sql AS $$
    SELECT * FROM outbox o WHERE o.sent_at IS NULL
    ORDER BY o.created_at, o.event_id LIMIT batch FOR UPDATE SKIP LOCKED
$$;

-- Mark claimed rows sent with the sequence JetStream gave each, and fill
-- in the ledger's stream_seq where it is still unknown.
CREATE OR REPLACE FUNCTION sf_outbox_sent(ids text[], seqs bigint[]) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    UPDATE outbox o SET sent_at = now(), stream_seq = u.seq
    FROM unnest(ids, seqs) AS u(id, seq)
    WHERE o.event_id = u.id AND o.sent_at IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE ledger g SET stream_seq = u.seq
    FROM unnest(ids, seqs) AS u(id, seq)
    WHERE g.event_id = u.id AND g.stream_seq IS NULL AND u.seq > 0;
    RETURN n;
END
$$;
