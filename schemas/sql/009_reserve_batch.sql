-- Check-and-reserve in batches: sf_reserve_batch() replaces sf_reserve()
-- (007). inv-api gathers the reservations that arrive while one batch runs
-- and sends them as the next batch: one statement, one transaction, one
-- commit for all of them (api/reserve.h). Per request, sf_reserve spent
-- most of its time in ten single-row statements and a commit; here each
-- statement serves the whole batch, as sf_apply_stage (002) does for the
-- consumers.
--
-- The one idea: every decision is taken under the row locks, in arrival
-- order, on the values the locks protect. The function locks the positions
-- rows of every candidate (sku, location) of the batch in key order (the
-- order sf_apply_stage upserts them in, so the two never deadlock), reads
-- available = on_hand - reserved - safety_stock once, then decides the
-- requests one by one in batch order, taking each grant's qty off the
-- row's available before the next request looks at it. A SALE applied by a
-- consumer meanwhile either committed before the lock (and is read) or
-- waits for the commit. Hence never more reserved than available.
--
-- A grant is taken off available at its full qty, although a RESERVE for
-- a ref that has sold more than it reserved raises reserved by less (its
-- outstanding is floored at 0): a later request of the same batch may be
-- refused that a request of its own transaction would have got; never the
-- reverse.
--
-- Idempotency, as in 007: each key's row is inserted first (in key order,
-- so two batches holding the same keys never wait on each other in a
-- circle); a key whose row exists already waits until its first request
-- commits and returns the stored answer (replay). The caller sends each
-- key at most once per batch.
--
-- A fresh key whose event_id is in the ledger already was granted by an
-- earlier request whose key row is gone (a purge): its ledger row is the
-- answer, and nothing is applied again.
--
-- The RESERVEs are applied with the statements sf_apply_stage runs for
-- RESERVE events, as one statement: ledger rows, reservations per (ref,
-- sku, location), positions.reserved by the change of outstanding, dirty,
-- and the outbox row the relay publishes (007). No pg_notify: inv-api
-- wakes the reconciler after the commit (api/reserve.c res__notify).

DROP FUNCTION IF EXISTS sf_reserve(text, text, text, text, text, bigint, text, text, bigint,
                                   bigint, text);

-- Arrays are parallel, one element per request (locations[i] or
-- channels[i] NULL, the other set). Returns one row per request, i from 1:
-- status 201 (event_id, location, expires_at), 409 (available: the most
-- this request could reserve when it was decided), 404 (no such channel;
-- not stored), 422 (the key was used before with another request; not
-- stored). replay: the stored answer of an earlier request.
CREATE OR REPLACE FUNCTION sf_reserve_batch(p_keys text[], p_requests text[],
                                            p_event_ids text[], p_refs text[], p_skus text[],
                                            p_qtys bigint[], p_locations text[],
                                            p_channels text[], p_occurred_ats bigint[],
                                            p_expires_ats bigint[], p_source text)
RETURNS TABLE (i int, status int, event_id text, location text, expires_at bigint,
               available bigint, replay boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    n int := cardinality(p_keys);
    st int[] := array_fill(0, ARRAY[n]);       -- 0 until decided
    o_loc text[] := array_fill(NULL::text, ARRAY[n]);
    o_eid text[] := array_fill(NULL::text, ARRAY[n]);
    o_exp bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    o_avail bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    o_replay boolean[] := array_fill(false, ARRAY[n]);
    buf bigint[] := array_fill(0::bigint, ARRAY[n]);
    fresh text[];
    c_sku text[];                              -- candidate rows, key order
    c_loc text[];
    c_avail bigint[];
    r record;
    j int;
    best int;
    best_avail bigint;
    total bigint;
    ats bigint;
BEGIN
    IF n IS NULL OR n = 0 THEN
        RETURN;
    END IF;

    -- Claim the keys; the ones already there are replays (or reuse).
    WITH ins AS (
        INSERT INTO idempotency AS d (key, request, status)
        SELECT u.k, u.q, 0 FROM unnest(p_keys, p_requests) AS u(k, q) ORDER BY u.k
        ON CONFLICT (key) DO NOTHING
        RETURNING d.key)
    SELECT COALESCE(array_agg(ins.key), '{}') INTO fresh FROM ins;
    IF cardinality(fresh) < n THEN
        FOR r IN
            SELECT u.x, d.request = u.q AS same, d.status AS s, d.event_id AS e,
                   d.location AS l, d.expires_at AS x_at, d.available AS a
            FROM unnest(p_keys, p_requests) WITH ORDINALITY AS u(k, q, x)
            JOIN idempotency d ON d.key = u.k
            WHERE NOT (u.k = ANY (fresh))
        LOOP
            o_replay[r.x] := true;
            IF NOT r.same THEN
                st[r.x] := 422;
            ELSE
                st[r.x] := r.s;
                o_eid[r.x] := r.e;
                o_loc[r.x] := r.l;
                o_exp[r.x] := r.x_at;
                o_avail[r.x] := r.a;
            END IF;
        END LOOP;
    END IF;

    -- A fresh key whose event is in the ledger already (its key's row was
    -- purged): the ledger's row is the first answer, and is stored again.
    FOR r IN
        SELECT u.x, g.location AS l, g.expires_at AS x_at
        FROM unnest(p_event_ids) WITH ORDINALITY AS u(e, x)
        JOIN ledger g ON g.event_id = u.e
        WHERE st[u.x] = 0
    LOOP
        st[r.x] := 201;
        o_replay[r.x] := true;
        o_eid[r.x] := p_event_ids[r.x];
        o_loc[r.x] := r.l;
        o_exp[r.x] := r.x_at;
    END LOOP;

    -- Channels: their buffer; an unknown one is 404 and its key is freed.
    FOR r IN
        SELECT u.x, c.buffer AS b
        FROM unnest(p_channels) WITH ORDINALITY AS u(ch, x)
        LEFT JOIN channels c ON c.channel = u.ch
        WHERE u.ch IS NOT NULL AND st[u.x] = 0
    LOOP
        IF r.b IS NULL THEN
            st[r.x] := 404;
            DELETE FROM idempotency d WHERE d.key = p_keys[r.x];
        ELSE
            buf[r.x] := r.b;
        END IF;
    END LOOP;

    -- Lock every candidate row of the batch in key order and read it under
    -- the lock. A location without a row has nothing to reserve.
    c_sku := '{}';
    c_loc := '{}';
    c_avail := '{}';
    FOR r IN
        SELECT p.sku AS s, p.location AS l,
               p.on_hand - p.reserved - COALESCE(lo.safety_stock, 0) AS a
        FROM positions p
        LEFT JOIN locations lo ON lo.location = p.location
        WHERE (p.sku, p.location) IN (
            SELECT u.sku, COALESCE(u.loc, cl.location)
            FROM unnest(p_skus, p_locations, p_channels) WITH ORDINALITY AS u(sku, loc, ch, x)
            LEFT JOIN channel_locations cl ON u.loc IS NULL AND cl.channel = u.ch
            WHERE st[u.x] = 0)
        ORDER BY p.sku, p.location
        FOR UPDATE OF p
    LOOP
        c_sku := c_sku || r.s;
        c_loc := c_loc || r.l;
        c_avail := c_avail || r.a;
    END LOOP;

    -- Decide in batch order. For a channel the location with the most
    -- available wins (the first in key order on a tie), and the channel's
    -- ats must cover qty too.
    FOR r IN
        SELECT u.x, array_agg(c.y ORDER BY c.loc) AS ys
        FROM unnest(p_skus, p_locations, p_channels) WITH ORDINALITY AS u(sku, loc, ch, x)
        LEFT JOIN channel_locations cl ON u.loc IS NULL AND cl.channel = u.ch
        JOIN unnest(c_sku, c_loc) WITH ORDINALITY AS c(sku, loc, y)
          ON c.sku = u.sku AND c.loc = COALESCE(u.loc, cl.location)
        WHERE st[u.x] = 0
        GROUP BY u.x ORDER BY u.x
    LOOP
        best := NULL;
        total := 0;
        FOREACH j IN ARRAY r.ys LOOP
            IF best IS NULL OR c_avail[j] > best_avail THEN
                best := j;
                best_avail := c_avail[j];
            END IF;
            total := total + GREATEST(0, c_avail[j]);
        END LOOP;
        IF p_channels[r.x] IS NOT NULL THEN
            ats := GREATEST(0, total - buf[r.x]);
        ELSE
            ats := GREATEST(0, best_avail);
        END IF;
        IF best_avail < p_qtys[r.x] OR ats < p_qtys[r.x] THEN
            st[r.x] := 409;
            o_avail[r.x] := GREATEST(0, LEAST(best_avail, ats));
        ELSE
            st[r.x] := 201;
            c_avail[best] := c_avail[best] - p_qtys[r.x];
            o_loc[r.x] := c_loc[best];
            o_eid[r.x] := p_event_ids[r.x];
            o_exp[r.x] := p_expires_ats[r.x];
        END IF;
    END LOOP;
    -- No candidate row at all: nothing there.
    FOR j IN 1 .. n LOOP
        IF st[j] = 0 THEN
            st[j] := 409;
            o_avail[j] := 0;
        END IF;
    END LOOP;

    -- Apply the grants as sf_apply_stage applies RESERVEs, and store the
    -- answers of the fresh keys (replays, 404 and 422 are not stored):
    -- one statement. Its parts run in no fixed order, which is safe: every
    -- row they touch is either new (ledger, outbox: an event_id is made
    -- from its key, whose row this transaction holds, and was not in the
    -- ledger above) or reached only through a positions row this
    -- transaction has locked already (reservations, dirty), as in
    -- sf_apply_stage.
    WITH g AS (
        SELECT u.e, u.sku, u.loc, u.qty, u.ch, u.ref, u.at, u.x_at
        FROM unnest(st, o_replay, p_event_ids, p_skus, o_loc, p_qtys, p_channels, p_refs,
                    p_occurred_ats, p_expires_ats) AS u(s, rp, e, sku, loc, qty, ch, ref, at, x_at)
        WHERE u.s = 201 AND NOT u.rp),
    ins AS (
        INSERT INTO ledger (event_id, kind, sku, location, qty, occurred_at, source, channel,
                            ref, condition, expires_at, stream_seq)
        SELECT g.e, 'RESERVE', g.sku, g.loc, g.qty, g.at, p_source, g.ch, g.ref, NULL, g.x_at,
               NULL
        FROM g ORDER BY g.e
        RETURNING ledger.event_id, ledger.sku, ledger.location, ledger.qty, ledger.ref,
                  ledger.channel, ledger.occurred_at, ledger.expires_at),
    src AS (
        SELECT ins.ref, ins.sku, ins.location, sum(ins.qty) AS qty, max(ins.expires_at) AS x_at
        FROM ins GROUP BY ins.sku, ins.location, ins.ref),
    -- reserved moves by new outstanding - old outstanding per key.
    up AS (
        INSERT INTO reservations AS rv (ref, sku, location, reserved, released, sold,
                                        expires_at, never_expires)
        SELECT src.ref, src.sku, src.location, src.qty, 0, 0, src.x_at, false
        FROM src ORDER BY src.sku, src.location, src.ref
        ON CONFLICT (ref, sku, location) DO UPDATE SET
            reserved = rv.reserved + excluded.reserved,
            expires_at = GREATEST(rv.expires_at, excluded.expires_at),
            updated_at = now()
        RETURNING rv.ref, rv.sku, rv.location, rv.reserved, rv.released, rv.sold,
                  rv.outstanding),
    d AS (
        SELECT up.sku, up.location,
               sum(up.outstanding
                   - GREATEST(0, up.reserved - src.qty - up.released - up.sold)) AS delta
        FROM up JOIN src ON src.ref = up.ref AND src.sku = up.sku AND src.location = up.location
        GROUP BY up.sku, up.location),
    pos AS (
        UPDATE positions p SET reserved = p.reserved + d.delta, version = p.version + 1,
                               updated_at = now()
        FROM d
        WHERE p.sku = d.sku AND p.location = d.location),
    dt AS (
        INSERT INTO dirty AS dt (sku)
        SELECT DISTINCT ins.sku FROM ins ORDER BY 1
        ON CONFLICT (sku) DO UPDATE SET marked_at = now()),
    ob AS (
        INSERT INTO outbox (event_id, kind, sku, location, qty, occurred_at, source, channel,
                            ref, expires_at)
        SELECT ins.event_id, 'RESERVE', ins.sku, ins.location, ins.qty, ins.occurred_at,
               p_source, ins.channel, ins.ref, ins.expires_at
        FROM ins ORDER BY ins.event_id),
    idem AS (
        UPDATE idempotency d
        SET status = u.s, event_id = u.e, location = u.l, expires_at = u.x_at, available = u.a
        FROM unnest(p_keys, st, o_eid, o_loc, o_exp, o_avail) AS u(k, s, e, l, x_at, a)
        WHERE d.key = u.k AND u.s IN (201, 409) AND u.k = ANY (fresh))
    SELECT count(*) INTO j FROM ins;

    RETURN QUERY
    SELECT u.x::int, u.s, u.e, u.l, u.x_at, u.a, u.rp
    FROM unnest(st, o_eid, o_loc, o_exp, o_avail, o_replay) WITH ORDINALITY
         AS u(s, e, l, x_at, a, rp, x)
    ORDER BY u.x;
END
$$;
