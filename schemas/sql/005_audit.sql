-- Batch jobs of inv-reconciler (reconciler/audit.c, reconciler/supplier_report.c):
-- positions and reservations rebuilt from the ledger alone, their drift from
-- what is stored, the repair, and a supplier COUNT's "book just before it".
--
-- The one idea: the rebuild restates DESIGN.md "Stock semantics" directly, as
-- sums and one maximum over the ledger, independently of the incremental
-- sf_apply_stage(); that independence is what makes it an audit. A change to
-- the semantics goes into both, never by making one call the other.
-- Every reader here is a STABLE SQL function over a sku range (lo, hi]
-- (bytewise: the columns are COLLATE "C"), so one calling statement reads
-- the ledger and the stored rows in one snapshot: a consumer's transaction
-- (ledger rows + positions together) is wholly inside it or wholly outside,
-- and live traffic can never look like drift. Ranges, not lists, keep every
-- scan an index range scan; lo = '' starts at the first sku (a sku is never
-- empty).

-- Reservations per (ref, sku, location) of the skus in (lo, hi]: a RESERVE
-- or RELEASE without a ref is the '' pool; a SALE counts only with a ref.
CREATE OR REPLACE FUNCTION sf_audit_reservations(lo text, hi text)
RETURNS TABLE (ref text, sku text, location text, reserved bigint, released bigint,
               sold bigint, expires_at bigint, never_expires boolean)
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(l.ref, ''), l.sku, l.location,
           COALESCE(sum(l.qty) FILTER (WHERE l.kind = 'RESERVE'), 0)::bigint,
           COALESCE(sum(l.qty) FILTER (WHERE l.kind = 'RELEASE'), 0)::bigint,
           COALESCE(sum(l.qty) FILTER (WHERE l.kind = 'SALE'), 0)::bigint,
           max(l.expires_at) FILTER (WHERE l.kind = 'RESERVE'),
           COALESCE(bool_or(l.expires_at IS NULL) FILTER (WHERE l.kind = 'RESERVE'), false)
    FROM ledger l
    WHERE l.sku > lo AND l.sku <= hi
      AND (l.kind IN ('RESERVE', 'RELEASE') OR (l.kind = 'SALE' AND l.ref IS NOT NULL))
    GROUP BY l.sku, l.location, COALESCE(l.ref, '')
$$;

-- Positions of the skus in (lo, hi], one row per (sku, location) the ledger
-- holds: on_hand = the latest COUNT (occurred_at, then event_id bytewise) +
-- the on_hand deltas strictly after it (all of them without a COUNT);
-- inbound = Σ ASN − Σ RECEIPT, raw; damaged = Σ RETURN DAMAGED; reserved =
-- Σ over refs of max(0, reserved − released − sold).
CREATE OR REPLACE FUNCTION sf_audit_positions(lo text, hi text)
RETURNS TABLE (sku text, location text, on_hand bigint, reserved bigint, inbound bigint,
               damaged bigint, count_qty bigint, count_at bigint, count_event_id text)
LANGUAGE sql STABLE AS $$
    -- The ledger is read twice through the index rather than materialised
    -- once: a batch's rows would overflow work_mem into a temp file.
    WITH lc AS (
        SELECT DISTINCT ON (e.sku, e.location) e.sku, e.location, e.qty, e.occurred_at, e.event_id
        FROM ledger e WHERE e.sku > lo AND e.sku <= hi AND e.kind = 'COUNT'
        ORDER BY e.sku, e.location, e.occurred_at DESC, e.event_id DESC),
    d AS (
        SELECT e.sku, e.location,
               sum(sf_on_hand_delta(e.kind, e.qty, e.condition))
                   FILTER (WHERE c.occurred_at IS NULL OR e.occurred_at > c.occurred_at)
                   AS on_hand,
               sum(CASE e.kind WHEN 'ASN' THEN e.qty WHEN 'RECEIPT' THEN -e.qty END) AS inbound,
               sum(e.qty) FILTER (WHERE e.kind = 'RETURN' AND e.condition = 'DAMAGED') AS damaged
        FROM ledger e LEFT JOIN lc c ON c.sku = e.sku AND c.location = e.location
        WHERE e.sku > lo AND e.sku <= hi
        GROUP BY e.sku, e.location),
    r AS (
        SELECT x.sku, x.location, sum(GREATEST(0, x.reserved - x.released - x.sold)) AS reserved
        FROM sf_audit_reservations(lo, hi) x GROUP BY x.sku, x.location)
    SELECT d.sku, d.location,
           (COALESCE(c.qty, 0) + COALESCE(d.on_hand, 0))::bigint,
           COALESCE(r.reserved, 0)::bigint,
           COALESCE(d.inbound, 0)::bigint,
           COALESCE(d.damaged, 0)::bigint,
           c.qty, c.occurred_at, c.event_id
    FROM d
    LEFT JOIN lc c ON c.sku = d.sku AND c.location = d.location
    LEFT JOIN r ON r.sku = d.sku AND r.location = d.location
$$;

-- Drift of the skus in (lo, hi]: one row per field whose stored value
-- differs from the rebuilt one, as text (NULL = absent), in (sku, location,
-- ref, field) order; then one last row with sku NULL and stored = how many
-- positions were compared. Position fields: on_hand, reserved, inbound,
-- damaged, count_qty, count_at, count_event_id (ref NULL); reservation
-- fields, with their ref: reservations.reserved, .released, .sold,
-- .expires_at, .never_expires. A missing stored row shows as stored NULL
-- on every field it would hold; a stored row without ledger rows is
-- compared with zeros (so an all-zero one is not drift).
CREATE OR REPLACE FUNCTION sf_audit_drift(lo text, hi text)
RETURNS TABLE (sku text, location text, ref text, field text, stored text, rebuilt text)
LANGUAGE sql STABLE AS $$
    WITH r AS (SELECT * FROM sf_audit_positions(lo, hi)),
    p AS (SELECT * FROM positions q WHERE q.sku > lo AND q.sku <= hi),
    j AS (
        SELECT COALESCE(p.sku, r.sku) AS sku, COALESCE(p.location, r.location) AS location,
               p.on_hand AS s_on_hand, p.reserved AS s_reserved, p.inbound AS s_inbound,
               p.damaged AS s_damaged, p.count_qty AS s_count_qty, p.count_at AS s_count_at,
               p.count_event_id AS s_count_event_id,
               COALESCE(r.on_hand, 0) AS r_on_hand, COALESCE(r.reserved, 0) AS r_reserved,
               COALESCE(r.inbound, 0) AS r_inbound, COALESCE(r.damaged, 0) AS r_damaged,
               r.count_qty AS r_count_qty, r.count_at AS r_count_at,
               r.count_event_id AS r_count_event_id
        FROM p FULL JOIN r ON p.sku = r.sku AND p.location = r.location),
    pd AS (
        SELECT j.sku, j.location, NULL::text AS ref, f.ord, f.field, f.stored, f.rebuilt
        FROM j CROSS JOIN LATERAL (VALUES
            (1, 'on_hand', j.s_on_hand::text, j.r_on_hand::text),
            (2, 'reserved', j.s_reserved::text, j.r_reserved::text),
            (3, 'inbound', j.s_inbound::text, j.r_inbound::text),
            (4, 'damaged', j.s_damaged::text, j.r_damaged::text),
            (5, 'count_qty', j.s_count_qty::text, j.r_count_qty::text),
            (6, 'count_at', j.s_count_at::text, j.r_count_at::text),
            (7, 'count_event_id', j.s_count_event_id::text, j.r_count_event_id::text))
            AS f(ord, field, stored, rebuilt)
        WHERE f.stored IS DISTINCT FROM f.rebuilt),
    rb AS (SELECT * FROM sf_audit_reservations(lo, hi)),
    rs AS (SELECT * FROM reservations q WHERE q.sku > lo AND q.sku <= hi),
    rj AS (
        SELECT COALESCE(s.sku, b.sku) AS sku, COALESCE(s.location, b.location) AS location,
               COALESCE(s.ref, b.ref) AS ref,
               s.reserved AS s_reserved, s.released AS s_released, s.sold AS s_sold,
               s.expires_at AS s_expires_at, s.never_expires AS s_never_expires,
               COALESCE(b.reserved, 0) AS r_reserved, COALESCE(b.released, 0) AS r_released,
               COALESCE(b.sold, 0) AS r_sold, b.expires_at AS r_expires_at,
               COALESCE(b.never_expires, false) AS r_never_expires
        FROM rs s FULL JOIN rb b
          ON s.ref = b.ref AND s.sku = b.sku AND s.location = b.location),
    rd AS (
        SELECT rj.sku, rj.location, rj.ref, f.ord, f.field, f.stored, f.rebuilt
        FROM rj CROSS JOIN LATERAL (VALUES
            (11, 'reservations.reserved', rj.s_reserved::text, rj.r_reserved::text),
            (12, 'reservations.released', rj.s_released::text, rj.r_released::text),
            (13, 'reservations.sold', rj.s_sold::text, rj.r_sold::text),
            (14, 'reservations.expires_at', rj.s_expires_at::text, rj.r_expires_at::text),
            (15, 'reservations.never_expires', rj.s_never_expires::text,
                 rj.r_never_expires::text))
            AS f(ord, field, stored, rebuilt)
        WHERE f.stored IS DISTINCT FROM f.rebuilt)
    SELECT x.sku, x.location, x.ref, x.field, x.stored, x.rebuilt
    FROM (SELECT * FROM pd
          UNION ALL SELECT * FROM rd
          UNION ALL SELECT NULL, NULL, NULL, 99, NULL, count(*)::text, NULL FROM j) x
    ORDER BY x.sku IS NULL, x.sku COLLATE "C", x.location COLLATE "C",
             x.ref COLLATE "C" NULLS FIRST, x.ord
$$;

-- Repair the positions `keys` (a JSON array of {"sku", "location"}, every
-- sku in (lo, hi]) and their reservations from the ledger, in the caller's
-- transaction, and mark their skus dirty. Returns the positions rows written.
-- Locks: the rows are upserted in key order first, as sf_apply_stage() does
-- (which also creates a missing row without breaking that order), so a
-- consumer waiting for one of them applies its batch on top of the repaired
-- values after the caller commits. Each later statement takes a new snapshot
-- (VOLATILE, READ COMMITTED): it sees every transaction that committed before
-- the locks were granted, and none that touches these keys can commit until
-- the caller does. Reservations need no lock of their own: every writer of a
-- reservation upserts its positions row first.
CREATE OR REPLACE FUNCTION sf_audit_repair(lo text, hi text, keys jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    -- A key outside the range would be "rebuilt" from no ledger rows: zeros.
    IF EXISTS (SELECT 1 FROM jsonb_to_recordset(keys) AS k(sku text, location text)
               WHERE (k.sku COLLATE "C" > lo AND k.sku COLLATE "C" <= hi
                      AND k.location IS NOT NULL) IS NOT TRUE) THEN
        RAISE EXCEPTION 'sf_audit_repair: a key lies outside the sku range (%, %]', lo, hi;
    END IF;

    INSERT INTO positions AS p (sku, location, version)
    SELECT DISTINCT k.sku COLLATE "C", k.location COLLATE "C", 1
    FROM jsonb_to_recordset(keys) AS k(sku text, location text)
    ORDER BY 1, 2
    ON CONFLICT (sku, location) DO UPDATE SET version = p.version + 1, updated_at = now();

    UPDATE positions p SET
        on_hand = COALESCE(r.on_hand, 0), reserved = COALESCE(r.reserved, 0),
        inbound = COALESCE(r.inbound, 0), damaged = COALESCE(r.damaged, 0),
        count_qty = r.count_qty, count_at = r.count_at, count_event_id = r.count_event_id
    FROM jsonb_to_recordset(keys) AS k(sku text, location text)
    LEFT JOIN sf_audit_positions(lo, hi) r ON r.sku = k.sku AND r.location = k.location
    WHERE p.sku = k.sku AND p.location = k.location;
    GET DIAGNOSTICS n = ROW_COUNT;

    INSERT INTO reservations AS s (ref, sku, location, reserved, released, sold,
                                   expires_at, never_expires)
    SELECT b.ref, b.sku, b.location, b.reserved, b.released, b.sold, b.expires_at,
           b.never_expires
    FROM sf_audit_reservations(lo, hi) b
    WHERE EXISTS (SELECT 1 FROM jsonb_to_recordset(keys) AS k(sku text, location text)
                  WHERE k.sku = b.sku AND k.location = b.location)
    ORDER BY b.sku COLLATE "C", b.location COLLATE "C", b.ref COLLATE "C"
    ON CONFLICT (ref, sku, location) DO UPDATE SET
        reserved = excluded.reserved, released = excluded.released, sold = excluded.sold,
        expires_at = excluded.expires_at, never_expires = excluded.never_expires,
        updated_at = now()
    WHERE (s.reserved, s.released, s.sold, s.expires_at, s.never_expires)
          IS DISTINCT FROM (excluded.reserved, excluded.released, excluded.sold,
                            excluded.expires_at, excluded.never_expires);

    -- A reservation row the ledger does not explain holds nothing.
    UPDATE reservations s SET reserved = 0, released = 0, sold = 0, expires_at = NULL,
                              never_expires = false, updated_at = now()
    FROM (SELECT q.ref, q.sku, q.location
          FROM reservations q
          JOIN jsonb_to_recordset(keys) AS k(sku text, location text)
            ON q.sku = k.sku AND q.location = k.location
          LEFT JOIN sf_audit_reservations(lo, hi) b
            ON b.ref = q.ref AND b.sku = q.sku AND b.location = q.location
          WHERE b.sku IS NULL) o
    WHERE s.ref = o.ref AND s.sku = o.sku AND s.location = o.location
      AND (s.reserved, s.released, s.sold, s.expires_at, s.never_expires)
          IS DISTINCT FROM (0::bigint, 0::bigint, 0::bigint, NULL::bigint, false);

    INSERT INTO dirty (sku)
    SELECT DISTINCT k.sku COLLATE "C" FROM jsonb_to_recordset(keys) AS k(sku text, location text)
    ORDER BY 1
    ON CONFLICT (sku) DO UPDATE SET marked_at = now();
    PERFORM pg_notify('inv_dirty', '');
    RETURN n;
END
$$;

-- Our book of (sku, location) just before a COUNT at (at, event_id): the
-- previous COUNT of the key from any source (the latest strictly before it
-- by (occurred_at, event_id)) plus the on_hand deltas after that one up to
-- and including p_at (a delta at the count's own time is inside the count);
-- with no previous COUNT, every delta up to and including p_at.
CREATE OR REPLACE FUNCTION sf_book_before(p_sku text, p_location text, p_at bigint,
                                          p_event_id text)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT (COALESCE(c.qty, 0) + COALESCE((
        SELECT sum(sf_on_hand_delta(l.kind, l.qty, l.condition)) FROM ledger l
        WHERE l.sku = p_sku AND l.location = p_location AND l.kind <> 'COUNT'
          AND l.occurred_at <= p_at
          AND l.occurred_at > COALESCE(c.occurred_at, '-9223372036854775808'::bigint)), 0))::bigint
    FROM (SELECT 1) one
    LEFT JOIN LATERAL (
        SELECT l.qty, l.occurred_at FROM ledger l
        WHERE l.sku = p_sku AND l.location = p_location AND l.kind = 'COUNT'
          AND l.occurred_at <= p_at AND (l.occurred_at, l.event_id) < (p_at, p_event_id)
        ORDER BY l.occurred_at DESC, l.event_id DESC LIMIT 1) c ON true
$$;
