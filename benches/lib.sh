# Shared by the HTTP bench scripts (sourced after `cd` to the repository): the engine binary,
# a free loopback port, and an engine started on a configuration and waited for.

# engine_bin: prints the boomerang binary to measure ($BIN, else release, else debug, built
# if neither exists).
engine_bin() {
    b=${BIN:-target/release/boomerang}
    [ -x "$b" ] || b=target/debug/boomerang
    [ -x "$b" ] || cargo build --bin boomerang >&2
    echo "$b"
}

# free_port: prints a TCP port that was free on loopback a moment ago.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_engine BIN CONFIG PORT [TRIES]: runs `BIN serve` on CONFIG (its log in CONFIG with
# .log for .yaml), sets $engine to its pid, and waits up to TRIES tenths of a second
# (default 100) for PORT to accept connections.
start_engine() {
    RUST_LOG=error "$1" serve --config "$2" >"${2%.yaml}.log" 2>&1 &
    engine=$!
    for _ in $(seq "${4:-100}"); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1',$3),1)" 2>/dev/null && break
        sleep 0.1
    done
}
