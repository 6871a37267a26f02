#!/usr/bin/env bash
# Two or more envoi builds against one smtp-sink, alternated round by round, with smtp-source
# for the ratio: the quick A/B behind BENCHMARKS.md's "The last levers" section.
#
#   benches/ab.sh ROWS ROUNDS SIZE BINARY...     SIZE: bundled (11.6 KB letters) or short (3.5 KB)
#   benches/ab.sh 10000 5 bundled old/envoi new/envoi
#
# The campaign is benches/peers.sh's (its `generate`, same letters, concurrency 4, rate
# unlimited), made once in $AB_DATA (default target/ab); the delivery log is on that disk and
# removed before every send. Prints each binary's times, the median and the ratio to
# `smtp-source -d -s 4` with messages of the same size. Needs smtp-sink and smtp-source
# (Debian's postfix package; peers.sh installs it) and, as root, runs the sink as nobody.
# AB_DELAY_MS=5 puts benches/latency-proxy.py between the senders and the sink, delaying every
# byte that long each way: a relay 10 ms away.
set -euo pipefail
[[ $# -ge 4 ]] || { sed -n '2,12p' "$0"; exit 2; }
ROWS=$1 ROUNDS=$2 SIZE=$3
shift 3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${AB_DATA:-${CARGO_TARGET_DIR:-$ROOT/target}/ab}
PORT=${AB_PORT:-2947}
DELAY=${AB_DELAY_MS:-}
PATH=$PATH:/usr/sbin
mkdir -p "$DATA"
eval "$(awk '/^generate\(\) \{/ {p = 1} p {print} p && /^}$/ {exit}' "$ROOT/benches/peers.sh")"
TO=$PORT
[[ -n $DELAY ]] && TO=$((PORT + 1))
C=$DATA/c-$SIZE-$ROWS${DELAY:+-far$DELAY}
[[ -d $C ]] || generate "$ROWS" "$TO" "${C##*/}" "$SIZE"
user=()
[[ $(id -u) -eq 0 ]] && user=(-u nobody)
smtp-sink "${user[@]}" -m 64 "127.0.0.1:$PORT" 256 &
PIDS=($!)
if [[ -n $DELAY ]]; then
    python3 "$ROOT/benches/latency-proxy.py" "$TO" "$PORT" "$DELAY" &
    PIDS+=($!)
fi
trap 'kill "${PIDS[@]}"' EXIT
sleep 0.5
LEN=$("$1" --dir "$C" preview --format raw --limit 1 | wc -c)
declare -A T
now() { date +%s.%N; }
for round in $(seq "$ROUNDS"); do
    bins=("$@")
    ((round % 2)) || mapfile -t bins < <(printf '%s\n' "$@" | tac)
    for b in "${bins[@]}"; do
        rm -f "$C"/delivery-log.csv*
        s=$(now)
        "$b" --dir "$C" send --yes >/dev/null 2>"$DATA/err" || { cat "$DATA/err"; exit 1; }
        T[$b]+=" $(echo "$(now) - $s" | bc)"
    done
    s=$(now)
    smtp-source -d -s 4 -m "$ROWS" -l "$LEN" -f ombudsman@ombudsman.example -t r@org.example "127.0.0.1:$TO"
    T[source]+=" $(echo "$(now) - $s" | bc)"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
src=$(median ${T[source]})
echo "$ROWS letters of $LEN bytes${DELAY:+ to a relay $(awk "BEGIN {print 2 * $DELAY}") ms away}, $ROUNDS rounds, load average $(cut -d' ' -f1 /proc/loadavg) at the end"
echo "smtp-source -d -s 4:${T[source]} (median $src)"
for b in "$@"; do
    # shellcheck disable=SC2086
    m=$(median ${T[$b]})
    echo "$b:${T[$b]} (median $m, $(echo "scale=2; $src / $m" | bc)x smtp-source)"
done
