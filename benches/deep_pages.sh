#!/bin/sh
# Deep callback pages and bulk previews against a store of 100,000 callbacks (issue #15,
# item 5): page 200 by `page` and by cursor, a short query's latency alone and while four
# clients loop on page 200, and a full-range bulk-cancel preview (size, time, RSS growth).
# With BEFORE=<an older boomerang binary>, the same measurements run on it first, in the same
# run, on an identical copy of the data. Usage: [BEFORE=bin] benches/deep_pages.sh [LOOP_SECONDS]
# Needs python3. Loopback only; bounded (fixed request counts, one LOOP-second window).
set -eu
cd "$(dirname "$0")/.."
loop=${1:-10}
. benches/lib.sh
bin=$(engine_bin)
work=$(mktemp -d)
engine=
trap '[ -n "$engine" ] && kill $engine 2>/dev/null; rm -rf "$work"' EXIT
password=bench-password
hash=$(echo "$password" | "$bin" hash-password)

# 100,000 callbacks SCHEDULED over the next 10 days, as the engine stores them.
mkdir -p "$work/seed"
python3 - "$work/seed/boomerang.db" <<'PY'
import json, random, sqlite3, sys, uuid, datetime
db = sqlite3.connect(sys.argv[1])
db.executescript("""
CREATE TABLE callbacks (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, queue TEXT NOT NULL,
  state TEXT NOT NULL, phone TEXT NOT NULL, desired_time INTEGER NOT NULL,
  retain_until INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX callbacks_state ON callbacks(state, seq);
CREATE INDEX callbacks_queue ON callbacks(queue, desired_time);
CREATE INDEX callbacks_phone ON callbacks(phone);
CREATE INDEX callbacks_retain ON callbacks(retain_until);
CREATE TABLE documents (kind TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, id));
""")
now = datetime.datetime.now(datetime.timezone.utc)
rng = random.Random(42)
rows = []
for i in range(100000):
    t = now + datetime.timedelta(seconds=rng.randint(3600, 10 * 86400))
    t = t.replace(microsecond=0)
    iso = t.strftime("%Y-%m-%dT%H:%M:%SZ")
    created = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    cid = str(uuid.uuid4())
    phone = "+336%08d" % i
    body = {"id": cid, "queue": "Sales_VQ_CB", "phone": phone, "desired_time": iso,
            "kind": "SCHEDULED", "origin": "API", "direction": "business_to_customer",
            "priority": 0, "queue_time": iso, "user_data": {"order": str(i)},
            "state": {"state": "SCHEDULED"}, "next_attempt_at": None, "created_at": created,
            "created_by": "api", "updated_at": created, "updated_by": "api", "previous_id": None,
            "metrics": {"ewt_at_offer_seconds": None, "position_at_offer": None,
                        "agents_logged_in_at_offer": None, "agents_logged_in_at_first_dial": None,
                        "attempts": [], "connected_agent": None, "cancelled_by": None,
                        "rescheduled_by": None},
            "history": [{"at": created, "from": None, "to": {"state": "SCHEDULED"}, "cause": "created"}]}
    ms = int(t.timestamp() * 1000)
    rows.append((cid, i + 1, "Sales_VQ_CB", "SCHEDULED", phone, ms, ms + 14 * 86400000, json.dumps(body)))
db.executemany("INSERT INTO callbacks VALUES (?,?,?,?,?,?,?,?)", rows)
db.commit()
PY

run() { # run LABEL BINARY
    cp -r "$work/seed" "$work/$1"
    port=$(free_port)
    cat >"$work/$1.yaml" <<YAML
listeners: {http: "127.0.0.1:$port", sip_udp: [], sip_tcp: []}
store: {data_dir: "$work/$1"}
api: {keys: [{name: b, key: bench-key}], rate_limit_per_second: 100000}
admin: {users: [{name: bench, password_hash: '$hash', roles: [Administrator]}]}
queues: [{name: Sales_VQ_CB}]
YAML
    start_engine "$2" "$work/$1.yaml" "$port" 600
    printf '%-7s %s\n' "$1" "$(python3 benches/http/deep_pages.py "$port" "$engine" "$password" "$loop")"
    kill $engine; wait $engine 2>/dev/null || true
    engine=
}

[ -n "${BEFORE:-}" ] && run before "$BEFORE"
run after "$bin"
