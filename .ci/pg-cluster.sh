# A throwaway PostgreSQL cluster in a temporary directory, for the PostgreSQL store's tests and
# benches. Source it, then `pg_start` (add `durable` to keep fsync on, for benchmarks): it runs
# initdb and pg_ctl on a free loopback port, as the current user (as `postgres` when root, since
# PostgreSQL refuses to run as root), exports BOOMERANG_TEST_PG_URL (plus BOOMERANG_TEST_PG_BIN
# and BOOMERANG_TEST_PG_AS, so a test can start a private server of its own) and stops and
# removes everything when the shell exits. Needs Debian's postgresql package.

pg_start() {
    local mode="${1:-fast}" try port opts
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    if [ -z "$PG_BIN" ]; then
        echo "pg-cluster: PostgreSQL is not installed (apt-get install postgresql)" >&2
        return 1
    fi
    PG_DIR=$(mktemp -d /tmp/boomerang-pg.XXXXXX)
    PG_AS=()
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$PG_DIR"
        PG_AS=(runuser -u postgres --)
    fi
    "${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U boomerang --auth=trust -E UTF8 \
        --no-sync >/dev/null
    opts="-c listen_addresses=127.0.0.1 -k $PG_DIR -c max_connections=300"
    [ "$mode" = durable ] || opts="$opts -c fsync=off -c synchronous_commit=off"
    trap pg_stop EXIT
    for try in 1 2 3 4 5 6 7 8; do
        port=$(( 20000 + RANDOM % 20000 ))
        (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && continue
        if "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -s \
            -o "-p $port $opts" start >/dev/null 2>&1; then
            export BOOMERANG_TEST_PG_URL="postgres://boomerang@127.0.0.1:$port/postgres"
            export BOOMERANG_TEST_PG_BIN="$PG_BIN"
            export BOOMERANG_TEST_PG_AS="${PG_AS[*]}"
            return 0
        fi
    done
    echo "pg-cluster: PostgreSQL would not start; see $PG_DIR/log" >&2
    return 1
}

pg_stop() {
    if [ -n "${PG_DIR:-}" ]; then
        "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -s stop >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
        PG_DIR=
    fi
}
