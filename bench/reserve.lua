-- bench/reserve.lua: the wrk script of bench/reserve.sh. Every request is a
-- POST /v1/reservations of 1 unit with its own Idempotency-Key (so each is
-- a new reservation), on sku HOT (RSV_SKUS=1) or on one of RSV_SKUS skus
-- B-0.. picked at random. The last line is the summary bench/reserve.sh
-- reads: RESULT requests rps p50_ms p99_ms and the count of each status.
local skus = tonumber(os.getenv("RSV_SKUS") or "1")
local key = os.getenv("RSV_KEY") or ""
local run = os.getenv("RSV_RUN") or "0"
local threads = {}
local counter = 0

function setup(thread)
    thread:set("tid", #threads + 1)
    table.insert(threads, thread)
end

function init(args)
    math.randomseed(tid * 7919 + os.time())
    s201, s409, sother = 0, 0, 0
end

function request()
    counter = counter + 1
    local sku = skus == 1 and "HOT" or ("B-" .. math.random(0, skus - 1))
    local k = run .. "-" .. tid .. "-" .. counter
    local body = string.format(
        '{"ref":"b-%s","sku":"%s","qty":1,"location":"BENCH-L1","ttl_s":3600}', k, sku)
    return wrk.format("POST", "/v1/reservations",
        {["Authorization"] = "Bearer " .. key, ["Idempotency-Key"] = k,
         ["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
    if status == 201 then
        s201 = s201 + 1
    elseif status == 409 then
        s409 = s409 + 1
    else
        sother = sother + 1
    end
end

function done(summary, latency, requests)
    local a, b, o = 0, 0, 0
    for _, t in ipairs(threads) do
        a = a + t:get("s201")
        b = b + t:get("s409")
        o = o + t:get("sother")
    end
    local e = summary.errors
    io.write(string.format(
        "RESULT requests=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f s201=%d s409=%d other=%d"
        .. " socket_errors=%d\n",
        summary.requests, summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
        a, b, o, e.connect + e.read + e.write + e.timeout))
end
