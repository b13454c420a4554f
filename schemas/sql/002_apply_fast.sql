-- sf_apply_stage(), second version: same semantics as 001, about half the
-- work per batch (bench/README.md "Findings" 3).
--
-- 1. One positions upsert carries every delta of the batch (aggregated per
--    key, in key order) and returns the key's current COUNT time. Only the
--    keys where some delta of the batch is at or before that COUNT (late
--    deltas, inside the count) get a correcting UPDATE, which subtracts
--    exactly those deltas again. The upsert takes the row lock, so the
--    COUNT time it returns is the committed one under that lock.
-- 2. The reservations upsert returns each row's new state; the batch's own
--    increments give the old state, so positions.reserved moves by the
--    change of Σ outstanding without re-reading every ref of the key.
-- 3. Statements that join the batch to a large table run through EXECUTE:
--    PL/pgSQL would otherwise keep the plan made at the session's first
--    batch (often on empty tables: hash joins over full scans) for the
--    life of a consumer.
-- The session's temp tables sf_stage, sf_applied and sf_late are created
-- by the client (common/ledger.c) before the first call.

CREATE OR REPLACE FUNCTION sf_apply_stage() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    late bigint;
BEGIN
    -- A second call in one transaction must not see the first one's rows.
    DELETE FROM sf_applied;
    DELETE FROM sf_late;
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

    -- Every touched key, locked in key order, gets all deltas of the batch;
    -- keys with a COUNT at or after their earliest delta are noted as late.
    WITH src AS (
        SELECT sku, location,
               sum(sf_on_hand_delta(kind, qty, condition)) AS on_hand,
               COALESCE(sum(CASE kind WHEN 'ASN' THEN qty WHEN 'RECEIPT' THEN -qty END), 0)
                   AS inbound,
               COALESCE(sum(qty) FILTER (WHERE kind = 'RETURN' AND condition = 'DAMAGED'), 0)
                   AS damaged,
               min(occurred_at) FILTER (WHERE sf_on_hand_delta(kind, qty, condition) <> 0)
                   AS first_delta_at
        FROM sf_applied GROUP BY sku, location),
    up AS (
        INSERT INTO positions AS p (sku, location, on_hand, inbound, damaged, version)
        SELECT sku, location, on_hand, inbound, damaged, 1 FROM src ORDER BY sku, location
        ON CONFLICT (sku, location) DO UPDATE SET
            on_hand = p.on_hand + excluded.on_hand,
            inbound = p.inbound + excluded.inbound,
            damaged = p.damaged + excluded.damaged,
            version = p.version + 1,
            updated_at = now()
        RETURNING sku, location, count_at)
    INSERT INTO sf_late (sku, location, count_at)
    SELECT up.sku, up.location, up.count_at FROM up JOIN src USING (sku, location)
    WHERE up.count_at IS NOT NULL AND src.first_delta_at <= up.count_at;
    GET DIAGNOSTICS late = ROW_COUNT;

    -- Deltas at or before the key's COUNT are inside it: take them out again.
    IF late > 0 THEN
        EXECUTE $q$
            UPDATE positions p SET on_hand = p.on_hand - x.inside
            FROM (SELECT s.sku, s.location,
                         sum(sf_on_hand_delta(s.kind, s.qty, s.condition)) AS inside
                  FROM sf_applied s JOIN sf_late k USING (sku, location)
                  WHERE s.occurred_at <= k.count_at AND s.kind <> 'COUNT'
                  GROUP BY s.sku, s.location) x
            WHERE p.sku = x.sku AND p.location = x.location AND x.inside <> 0 $q$;
    END IF;

    -- A COUNT later than the current one resets on_hand: its qty plus every
    -- delta in the ledger after it (the ledger already holds this batch).
    IF EXISTS (SELECT 1 FROM sf_applied WHERE kind = 'COUNT') THEN
        EXECUTE $q$
            UPDATE positions p SET
                count_qty = c.qty, count_at = c.occurred_at, count_event_id = c.event_id,
                on_hand = c.qty + COALESCE((
                    SELECT sum(sf_on_hand_delta(l.kind, l.qty, l.condition)) FROM ledger l
                    WHERE l.sku = c.sku AND l.location = c.location
                      AND l.occurred_at > c.occurred_at AND l.kind <> 'COUNT'), 0)
            FROM (SELECT DISTINCT ON (sku, location) sku, location, qty, occurred_at, event_id
                  FROM sf_applied WHERE kind = 'COUNT'
                  ORDER BY sku, location, occurred_at DESC, event_id DESC) c
            WHERE p.sku = c.sku AND p.location = c.location
              AND (p.count_at IS NULL
                   OR (c.occurred_at, c.event_id) > (p.count_at, p.count_event_id)) $q$;
    END IF;

    -- Reservations per (ref, sku, location); a SALE consumes only its own
    -- ref. reserved moves by new outstanding - old outstanding, where old =
    -- the returned totals minus this batch's increments.
    IF EXISTS (SELECT 1 FROM sf_applied
               WHERE kind IN ('RESERVE', 'RELEASE') OR (kind = 'SALE' AND ref IS NOT NULL)) THEN
        EXECUTE $q$
            WITH src AS (
                SELECT COALESCE(ref, '') AS ref, sku, location,
                       COALESCE(sum(qty) FILTER (WHERE kind = 'RESERVE'), 0) AS reserved,
                       COALESCE(sum(qty) FILTER (WHERE kind = 'RELEASE'), 0) AS released,
                       COALESCE(sum(qty) FILTER (WHERE kind = 'SALE'), 0) AS sold,
                       max(expires_at) FILTER (WHERE kind = 'RESERVE') AS expires_at,
                       COALESCE(bool_or(expires_at IS NULL) FILTER (WHERE kind = 'RESERVE'),
                                false) AS never_expires
                FROM sf_applied
                WHERE kind IN ('RESERVE', 'RELEASE') OR (kind = 'SALE' AND ref IS NOT NULL)
                GROUP BY sku, location, COALESCE(ref, '')),
            up AS (
                INSERT INTO reservations AS r (ref, sku, location, reserved, released, sold,
                                               expires_at, never_expires)
                SELECT ref, sku, location, reserved, released, sold, expires_at, never_expires
                FROM src ORDER BY sku, location, ref
                ON CONFLICT (ref, sku, location) DO UPDATE SET
                    reserved = r.reserved + excluded.reserved,
                    released = r.released + excluded.released,
                    sold = r.sold + excluded.sold,
                    expires_at = GREATEST(r.expires_at, excluded.expires_at),
                    never_expires = r.never_expires OR excluded.never_expires,
                    updated_at = now()
                RETURNING ref, sku, location, reserved, released, sold, outstanding),
            d AS (
                SELECT up.sku, up.location,
                       sum(up.outstanding - GREATEST(0, (up.reserved - src.reserved)
                                                        - (up.released - src.released)
                                                        - (up.sold - src.sold))) AS delta
                FROM up JOIN src USING (ref, sku, location)
                GROUP BY up.sku, up.location)
            UPDATE positions p SET reserved = p.reserved + d.delta
            FROM d
            WHERE p.sku = d.sku AND p.location = d.location AND d.delta <> 0 $q$;
    END IF;

    -- DO UPDATE, not DO NOTHING: it locks the dirty row, so a reconciler
    -- claiming the sku right now (004_reconciler.sql) is either waited for
    -- (and the row re-inserted after its delete) or skips the sku; a change
    -- can never slip past a claim that computed from older positions.
    INSERT INTO dirty AS d (sku) SELECT DISTINCT sku FROM sf_applied ORDER BY 1
    ON CONFLICT (sku) DO UPDATE SET marked_at = now();
    PERFORM pg_notify('inv_dirty', '');
    RETURN n;
END
$$;
