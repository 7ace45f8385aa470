#!/usr/bin/env bash
# --json on every command that takes it: stdout holds one line, one JSON
# object, and nothing else; the human text goes to stderr.
set -u
LFP=$1
tmp=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill -9 $server 2> /dev/null; rm -rf "$tmp"' EXIT
fail=0
n=0
check() { # check NAME ARGS...: run lfp ARGS, then judge its stdout and stderr
  local name=$1
  shift
  n=$((n + 1))
  "$LFP" "$@" > "$tmp/$n.out" 2> "$tmp/$n.err" || { echo "FAIL: $name: lfp $* exited $?: $(cat "$tmp/$n.err")"; fail=1; return; }
  judge "$name" "$n"
}
judge() { # judge NAME N: N.out is one JSON object on one line, N.err is not empty
  /usr/bin/python3 - "$1" "$tmp/$2.out" "$tmp/$2.err" <<'PY' || fail=1
import json, sys
name, out, err = sys.argv[1], open(sys.argv[2]).read(), open(sys.argv[3]).read()
lines = out.splitlines()
try:
    ok = len(lines) == 1 and out.endswith("\n") and isinstance(json.loads(lines[0]), dict)
except ValueError:
    ok = False
if not ok: print(f"FAIL: {name} --json: stdout is not one JSON line: {out[:400]!r}")
if not err.strip(): print(f"FAIL: {name} --json: no human text on stderr"); ok = False
sys.exit(0 if ok else 1)
PY
}
check toy toy --steps 40 --train-size 400 --eval-size 50 --eval-reps 1 --width 16 --method fm --json
check collect collect --env lift --episodes 2 --seed 1 --out "$tmp/d.hdf5" --json
check replay replay "$tmp/d.hdf5" --json
check info info "$tmp/d.hdf5" --json
check train train --data "$tmp/d.hdf5" --out "$tmp/p.lfp" --steps 20 --width 16 --json
check distill distill --policy "$tmp/p.lfp" --data "$tmp/d.hdf5" --out "$tmp/s.lfp" --steps 4 --batch 16 --pairs 32 --json
check eval eval --policy "$tmp/p.lfp" --episodes 1 --json
check "bench envs" bench envs --seconds 0.2 --json
check "bench datasets" bench datasets --demos 2 --steps 20 --dir "$tmp" --json
check "bench node" bench node --policy "$tmp/p.lfp" --rounds 1 --per-round 5 --seconds 0.2 --mem-requests 2000 --json
# serve and sim: the node's JSON comes when it stops
"$LFP" serve --policy "$tmp/p.lfp" --bind "tcp://127.0.0.1:*" --json > "$tmp/serve.out" 2> "$tmp/serve.err" &
server=$!
ep=
for _ in $(seq 100); do
  ep=$(sed -n 's/.* on \(tcp:[^,]*\), protocol [0-9].*/\1/p' "$tmp/serve.err")
  [ -n "$ep" ] && break
  sleep 0.1
done
[ -n "$ep" ] || { echo "FAIL: serve --json printed no endpoint on stderr: $(cat "$tmp/serve.out" "$tmp/serve.err")"; fail=1; }
[ -n "$ep" ] && check sim sim --connect "$ep" --episodes 1 --json
kill -TERM $server
wait $server || { echo "FAIL: serve exited $?"; fail=1; }
server=
cp "$tmp/serve.out" "$tmp/serve1.out"
cp "$tmp/serve.err" "$tmp/serve1.err"
judge serve serve1
# the robomimic convention: env_args pretty-printed over lines; info's JSON stays one line
/usr/bin/python3 - "$tmp/d.hdf5" <<'PY' || { echo "FAIL: could not rewrite env_args"; fail=1; }
import h5py, json, sys
with h5py.File(sys.argv[1], "r+") as f:
    f["data"].attrs["env_args"] = json.dumps(json.loads(f["data"].attrs["env_args"]), indent=4)
PY
check "info (pretty env_args)" info "$tmp/d.hdf5" --json
[ $fail = 0 ] && echo "json: ok ($n commands)"
exit $fail
