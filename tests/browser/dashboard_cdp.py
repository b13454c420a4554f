#!/usr/bin/env python3
"""dashboard_cdp.py: drive GET /dashboard in headless Chromium and check that
it shows the live ops feed (tests/integration/test_dashboard_browser.c runs
it against a private inv-api; it can also be run by hand).

usage: dashboard_cdp.py URL KEY SCREENSHOT.png -- PUBLISH_CMD...

Chromium runs headless (--headless=new, --no-sandbox: root in CI) and is
driven over the DevTools protocol on a pipe (--remote-debugging-pipe: no
port to collide with other runs). Steps, each bounded in time:
  1. load URL?key=KEY; wait until the page's stream is open
     (body[data-state=open]);
  2. read the counters the page keeps on <body data-*>, run PUBLISH_CMD
     (it sends events through the pipeline), and wait until the page
     counted new stock.<sku> events, metrics from inv-consumer and
     inv-reconciler, a non-zero throughput sample, and a negative_stock
     alert;
  3. look a sku up with the page's own form (GET /v1/stock/{sku}) and wait
     for its table;
  4. save a screenshot.
Prints one line per step; exits 0 when every check held, 1 with a message
naming the check that failed (and the page's counters) otherwise.
"""
import base64
import json
import os
import subprocess
import sys
import time

STEP_TIMEOUT = float(os.environ.get("SF_BROWSER_STEP_S", "40"))


class Cdp:
    def __init__(self, argv):
        r_cmd, w_cmd = os.pipe()  # we write commands, chromium reads fd 3
        r_res, w_res = os.pipe()  # chromium writes results on fd 4

        def child():
            os.dup2(r_cmd, 3)
            os.dup2(w_res, 4)

        self.proc = subprocess.Popen(argv, pass_fds=(3, 4), preexec_fn=child,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(r_cmd)
        os.close(w_res)
        self.w = os.fdopen(w_cmd, "wb", buffering=0)
        self.r = os.fdopen(r_res, "rb", buffering=0)
        self.buf = b""
        self.next_id = 0
        self.session = None

    def _read_msg(self, deadline):
        import select
        while b"\0" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("chromium did not answer")
            ready, _, _ = select.select([self.r], [], [], left)
            if ready:
                chunk = os.read(self.r.fileno(), 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe (did it start?)")
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, timeout=30, session=True):
        self.next_id += 1
        m = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            m["sessionId"] = self.session
        self.w.write(json.dumps(m).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            msg = self._read_msg(deadline)
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})

    def close(self):
        try:
            self.call("Browser.close", session=False, timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def fail(why, page=None):
    print("FAIL: %s%s" % (why, "; page: %s" % json.dumps(page) if page is not None else ""))
    sys.exit(1)


def main():
    if "--" not in sys.argv or len(sys.argv) < 6:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        sys.exit(2)
    cut = sys.argv.index("--")
    url, key, png = sys.argv[1:cut]
    publish = sys.argv[cut + 1:]
    chrome = os.environ.get("SF_CHROMIUM", "chromium")
    profile = os.path.join(os.path.dirname(os.path.abspath(png)), "chromium-profile")
    argv = [chrome, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-dev-shm-usage", "--remote-debugging-pipe", "--user-data-dir=" + profile,
            "--window-size=1400,1000", "about:blank"]
    try:
        cdp = Cdp(argv)
    except OSError as e:
        fail("cannot start %s (%s); scripts/deps.sh installs chromium" % (chrome, e))
    try:
        run(cdp, url, key, png, publish)
    finally:
        cdp.close()


def run(cdp, url, key, png, publish):
    targets = cdp.call("Target.getTargets", session=False)["targetInfos"]
    page_t = [t for t in targets if t["type"] == "page"]
    tid = page_t[0]["targetId"] if page_t else cdp.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
    cdp.session = cdp.call("Target.attachToTarget", {"targetId": tid, "flatten": True},
                           session=False)["sessionId"]
    cdp.call("Page.enable")
    cdp.call("Emulation.setDeviceMetricsOverride",
             {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
    sep = "&" if "?" in url else "?"
    cdp.call("Page.navigate", {"url": url + sep + "key=" + key})

    def page():
        r = cdp.call("Runtime.evaluate", {"expression":
                     "document.body ? JSON.stringify(Object.assign({title: document.title},"
                     " document.body.dataset)) : 'null'", "returnByValue": True})
        v = r.get("result", {}).get("value")
        return json.loads(v) if v else None

    def wait(what, pred):
        deadline = time.time() + STEP_TIMEOUT
        p = None
        while time.time() < deadline:
            p = page()
            if p and pred(p):
                return p
            time.sleep(0.25)
        fail("%s within %.0f s" % (what, STEP_TIMEOUT), p)

    n = lambda p, k: int(p.get(k) or 0)
    p0 = wait("the event stream opened", lambda p: p.get("state") == "open")
    print("stream open: events=%s metrics=%s stock=%s alerts=%s" %
          (p0.get("events"), p0.get("metrics"), p0.get("stock"), p0.get("alerts")))

    rc = subprocess.run(publish, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=STEP_TIMEOUT)
    if rc.returncode not in (0,):
        fail("the publish command exited %d: %s" % (rc.returncode, rc.stdout.decode(errors="replace")[-2000:]))
    print("published: %s" % " ".join(publish[:3]))

    p1 = wait("new stock, metrics and a negative_stock alert on the page",
              lambda p: n(p, "stock") > n(p0, "stock") and n(p, "metrics") > n(p0, "metrics") and
              n(p, "alerts") > n(p0, "alerts"))
    p2 = wait("a throughput sample above 0 from inv-consumer",
              lambda p: n(p, "throughputMax") > 0)
    svc = cdp.call("Runtime.evaluate", {"expression":
                   "JSON.stringify(Array.from(document.querySelectorAll('#services tr')).map("
                   "function(r){return [r.dataset.service, r.dataset.status];}))",
                   "returnByValue": True})["result"]["value"]
    alerts = cdp.call("Runtime.evaluate", {"expression":
                      "JSON.stringify(Array.from(document.querySelectorAll('#alerts li'))"
                      ".map(function(l){return l.dataset.kind;}))", "returnByValue": True})["result"]["value"]
    print("after publishing: events=%s metrics=%s stock=%s alerts=%s peak throughput=%s/s title=%r" %
          (p2.get("events"), p2.get("metrics"), p2.get("stock"), p2.get("alerts"),
           p2.get("throughputMax"), p2.get("title")))
    print("services: %s" % svc)
    print("alerts: %s" % alerts)
    status = dict(json.loads(svc))
    for s in ("inv-consumer", "inv-reconciler"):
        if status.get(s) != "ok":
            fail("service %s is %s on the page, want ok" % (s, status.get(s)), p2)
    if "negative_stock" not in json.loads(alerts):
        fail("no negative_stock alert in the list", p2)
    if not p2.get("title", "").startswith("stockflow ops · "):
        fail("the title does not count events", p2)

    # DASH-NEG is the last event sent: until a consumer applied it the
    # lookup is a 404, so ask again (the page's own form each time).
    deadline = time.time() + STEP_TIMEOUT
    while True:
        cdp.call("Runtime.evaluate", {"expression":
                 "document.body.dataset.lookup = '';"
                 "document.getElementById('sku').value = 'DASH-NEG';"
                 "document.getElementById('lookup').requestSubmit(); 1"})
        p3 = wait("the stock lookup answered", lambda p: p.get("lookup"))
        if p3.get("lookup") == "200":
            break
        if p3.get("lookup") != "404" or time.time() > deadline:
            fail("the stock lookup answered %s" % p3.get("lookup"), p3)
        time.sleep(0.5)
    table = cdp.call("Runtime.evaluate", {"expression":
                     "document.getElementById('lookup-out').innerText", "returnByValue": True})["result"]["value"]
    print("lookup DASH-NEG: %s" % " | ".join(table.split("\n")[:4]))
    if "STORE-9" not in table or "-2" not in table:
        fail("the lookup table lacks STORE-9 at -2: %r" % table, p3)

    time.sleep(1.5)  # one more chart sample
    shot = cdp.call("Page.captureScreenshot", {"format": "png"})
    with open(png, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    print("screenshot: %s (%d bytes)" % (png, os.path.getsize(png)))
    print("OK")


if __name__ == "__main__":
    main()
