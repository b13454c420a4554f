-- The continuous reconciler (inv-reconciler): what each channel may sell.
--
-- sf_reconcile_claim(batch, now_ms) claims up to `batch` dirty skus and, in
-- the same transaction, records every (channel, sku) whose ats changed as a
-- pending channel_stock version (last + 1). The caller commits, publishes
-- each pending row with msg id <channel>:<sku>:<version>, then marks it
-- sent; a crash in between leaves it pending, and a restart republishes it
-- unchanged (same id: JetStream drops the duplicate).
--
-- The one idea: the claim DELETEs the dirty rows, so a sku can be claimed
-- by one reconciler only (a row is deleted once), and a consumer marking
-- the sku dirty again while the claim is open waits on the deleted row and
-- re-inserts it after the commit: a change that lands after the ats was
-- computed is always computed again. Nothing is lost if the reconciler
-- dies before its commit (the delete rolls back).
--
-- ats(channel, sku) = max(0, Σ over the channel's locations of
--   max(0, on_hand − reserved − safety_stock) − buffer)  (DESIGN.md).

CREATE INDEX IF NOT EXISTS channel_stock_pending ON channel_stock (computed_at)
    WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS dirty_marked ON dirty (marked_at, sku);

-- The ats of the given skus in every channel.
CREATE OR REPLACE FUNCTION sf_channel_ats(skus text[])
RETURNS TABLE (channel text, sku text, ats bigint)
LANGUAGE sql STABLE AS $$
    SELECT ch.channel, k.sku,
           GREATEST(0, COALESCE(sum(GREATEST(0, p.on_hand - p.reserved
                                                - COALESCE(l.safety_stock, 0))), 0)
                       - ch.buffer)::bigint
    FROM channels ch
    CROSS JOIN (SELECT DISTINCT unnest(skus) COLLATE "C" AS sku) k
    LEFT JOIN channel_locations cl ON cl.channel = ch.channel
    LEFT JOIN positions p ON p.sku = k.sku AND p.location = cl.location
    LEFT JOIN locations l ON l.location = cl.location
    GROUP BY ch.channel, k.sku, ch.buffer
$$;

CREATE OR REPLACE FUNCTION sf_reconcile_claim(batch int, now_ms bigint)
RETURNS TABLE (channel text, sku text, version bigint, ats bigint, computed_at bigint,
               claimed int)
LANGUAGE plpgsql AS $$
DECLARE
    skus text[];
BEGIN
    WITH c AS (
        DELETE FROM dirty d
        WHERE d.sku = ANY (ARRAY(SELECT x.sku FROM dirty x ORDER BY x.marked_at, x.sku
                                 LIMIT batch FOR UPDATE SKIP LOCKED))
        RETURNING d.sku)
    SELECT array_agg(c.sku ORDER BY c.sku) INTO skus FROM c;
    IF skus IS NULL THEN
        RETURN;
    END IF;
    -- Planned per call: the tables grow, a plan cached at the first call
    -- would not.
    RETURN QUERY EXECUTE $q$
        WITH ins AS (
            INSERT INTO channel_stock AS cs (channel, sku, version, ats, state, computed_at)
            SELECT a.channel, a.sku, COALESCE(l.version, 0) + 1, a.ats, 'pending', $2
            FROM sf_channel_ats($1) a
            LEFT JOIN LATERAL (
                SELECT s.version, s.ats FROM channel_stock s
                WHERE s.channel = a.channel AND s.sku = a.sku
                ORDER BY s.version DESC LIMIT 1) l ON true
            WHERE l.ats IS DISTINCT FROM a.ats
            ORDER BY 1, 2
            RETURNING cs.channel, cs.sku, cs.version, cs.ats, cs.computed_at)
        SELECT ins.*, cardinality($1)::int FROM ins
        UNION ALL
        -- one marker row so the caller learns how many skus were claimed
        SELECT NULL, NULL, NULL, NULL, NULL, cardinality($1)::int $q$
        USING skus, now_ms;
END
$$;

-- Raise an error from an expression (invctl's checks inside one statement).
CREATE OR REPLACE FUNCTION sf_raise(msg text) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', msg;
END
$$;

-- Reservations whose expiry has passed with something still outstanding
-- (DESIGN.md "expiry"), oldest first. FOR UPDATE SKIP LOCKED on the one
-- table: reconcilers running side by side split the work. Nothing is
-- claimed for good: the RELEASE a reconciler publishes has a deterministic
-- id, so until a consumer has applied it (outstanding 0) the row may be
-- found again and the same id published again, which JetStream and the
-- ledger drop.
CREATE OR REPLACE FUNCTION sf_expired_reservations(batch int, now_ms bigint)
RETURNS TABLE (ref text, sku text, location text, outstanding bigint, reserved bigint,
               expires_at bigint)
LANGUAGE sql AS $$
    SELECT r.ref, r.sku, r.location, r.outstanding, r.reserved, r.expires_at
    FROM reservations r
    WHERE r.expires_at <= now_ms AND r.outstanding > 0 AND NOT r.never_expires
      AND r.expires_at IS NOT NULL
    ORDER BY r.expires_at, r.ref, r.sku, r.location
    LIMIT batch
    FOR UPDATE SKIP LOCKED
$$;
