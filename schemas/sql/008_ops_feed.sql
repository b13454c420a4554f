-- 008_ops_feed: sf_reconcile_claim names the skus it claimed, one marker
-- row each (channel NULL, sku set), instead of one anonymous marker row, so
-- the reconciler can publish stock.<sku> on the ops feed for exactly the
-- skus whose positions changed (DESIGN.md "Ops dashboard feed"). Every
-- other row, and the claim itself, are as in 004_reconciler.sql; callers
-- that skip rows with a NULL channel see no difference.
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
        -- one marker row per claimed sku: how many, and which
        SELECT NULL, k.sku, NULL, NULL, NULL, cardinality($1)::int
        FROM unnest($1) AS k(sku) $q$
        USING skus, now_ms;
END
$$;
