#!/usr/bin/env bash
# envoi side by side with its peers, on this machine, on loopback only.
#
#   benches/peers.sh [--quick] [--rounds N]
#
# Sets up what it needs (a Python venv with mailmerge 2.3.0 from PyPI; Debian's postfix package
# for the standalone smtp-sink/smtp-source programs, whose daemon is never started here; GNU
# time; hyperfine where Debian has it), builds envoi in release mode, generates equivalent
# synthetic campaigns for envoi and mailmerge (same letter text, same recipients, non-ASCII
# names), then measures, interleaved and repeated, and reports medians:
#
#   rendering  envoi preview --format raw  vs  mailmerge --dry-run --output-format raw
#   sending    envoi send (concurrency 4, no rate limit, durable delivery log)  vs  mailmerge
#              --no-dry-run  vs  smtp-source -d (4 reused sessions, same message size), all to
#              one smtp-sink on 127.0.0.1
#   memory     peak RSS of envoi preview --out and envoi send at N and 10 N rows
#   start-up   envoi --version and envoi check on the bundled campaign
#
# Writes a Markdown table to stdout and to benches/results/latest.md. --quick uses N = 1,000
# and 3 rounds (about two minutes); the full run uses N = 10,000 and 5 rounds. Every command
# runs under `timeout`, and every process this script starts is stopped when it exits.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=10000
ROUNDS=5
QUICK=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --quick) QUICK=1; N=1000; ROUNDS=3 ;;
        --rounds) ROUNDS=$2; shift ;;
        -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "peers.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
BIG=$((N * 10))
# Long enough for mailmerge's slowest round at N = 10,000 on a loaded machine; never unbounded.
LIMIT=900

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$TARGET/peers
VENV=$WORK/venv
DATA=$WORK/data
ENVOI=$TARGET/release/envoi
RESULTS=$ROOT/benches/results
mkdir -p "$WORK" "$DATA" "$RESULTS"

say() { echo "peers: $*" >&2; }

# --- processes we start, stopped on every exit ----------------------------------------------
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$DATA"/preview-* "${SHM:-/nonexistent}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- set-up ----------------------------------------------------------------------------------
apt_install() {
    local missing=()
    command -v smtp-sink >/dev/null || [[ -x /usr/sbin/smtp-sink ]] || missing+=(postfix)
    [[ -x /usr/bin/time ]] || missing+=(time)
    command -v hyperfine >/dev/null || missing+=(hyperfine)
    command -v python3 >/dev/null || missing+=(python3)
    python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
    [[ ${#missing[@]} -eq 0 ]] && return
    say "installing ${missing[*]} from Debian"
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    # Never start the Postfix daemon: only its standalone test programs are used. Debian's
    # maintainer scripts ask policy-rc.d whether they may start a service; 101 means no.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod +x "$policy"
        made_policy=1
    fi
    echo "postfix postfix/main_mailer_type select No configuration" |
        "${sudo[@]}" debconf-set-selections 2>/dev/null || true
    # Another apt-get may be running (unattended upgrades, a colleague): wait for its lock.
    local apt=("${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600)
    "${apt[@]}" update -qq
    # hyperfine is optional (older Debian lacks it): install the rest even if it is missing.
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null ||
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends \
            "${missing[@]/hyperfine/}" >/dev/null
    [[ $made_policy -eq 1 ]] && "${sudo[@]}" rm -f "$policy"
    return 0
}
apt_install
PATH=$PATH:/usr/sbin
command -v smtp-sink >/dev/null || { echo "peers.sh: smtp-sink is missing (Debian package postfix)" >&2; exit 1; }

if [[ ! -x $VENV/bin/mailmerge ]] || [[ $("$VENV/bin/mailmerge" --version 2>/dev/null) != *2.3.0* ]]; then
    say "creating a Python venv with mailmerge 2.3.0"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check mailmerge==2.3.0
fi
MAILMERGE=$VENV/bin/mailmerge

say "building envoi (release)"
(cd "$ROOT" && cargo build --release --quiet --bin envoi)

# --- synthetic campaigns ---------------------------------------------------------------------
# One generator for both tools, so that the letters have the same text and the same recipients.
generate() {
    local rows=$1 port=$2
    python3 - "$ROOT" "$DATA" "$rows" "$port" <<'PY'
import csv, pathlib, re, sys

root, data, rows, port = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
statement = (root / "templates" / "statement.md").read_text(encoding="utf-8")
subject = "Statement of the Commissioner for Human Rights (Ombudsman) on the 34th anniversary of 20 January 1990"
sender = "Commissioner for Human Rights (Ombudsman) <ombudsman@ombudsman.example>"
reply_to = "office@ombudsman.example"
body = """{{name}}
{{title}}
{{organisation}}

{{salutation}},

I have the honour to transmit to you the statement issued on 19 January 2024 by the Commissioner for Human Rights (Ombudsman) of the Republic of Azerbaijan. Its text is reproduced below.

* * *

%s

* * *

Please accept the assurances of my highest consideration.
"""
given = ["Səbinə", "Zoë", "Jürgen", "Ηλέκτρα", "Łukasz", "François", "Ayşe", "Nguyễn", "Дмитрий", "Søren"]
family = ["Əliyeva", "Ångström", "Müller", "Παπαδοπούλου", "Wałęsa", "Lefèvre", "Yılmaz", "Thị Hương", "Соколов", "Kierkegård"]
orgs = ["Société d'Études № %d", "Ministério da Justiça %d", "Bürgerrechtsbüro %d", "Ομοσπονδία %d", "Komisja Praw Człowieka %d"]

def write_rows(path, header, rows_iter):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows_iter)

def people(n):
    for i in range(n):
        yield [
            f"r{i}@org{i % 997}.example",
            orgs[i % len(orgs)] % i,
            f"{given[i % 10]} {family[(i // 10) % 10]}",
            "Director, Human Rights Department",
            f"Dear {given[i % 10]} {family[(i // 10) % 10]}",
        ]

header = ["email", "organisation", "name", "title", "salutation"]

# envoi: the statement as a partial, the letter as a Handlebars template with TOML front matter.
c = data / f"envoi-{rows}"
(c / "templates").mkdir(parents=True, exist_ok=True)
(c / "templates" / "statement.md").write_text(statement, encoding="utf-8")
(c / "templates" / "letter.hbs").write_text(
    f'+++\nsubject = "{subject}"\n+++\n' + body % "{{> statement}}", encoding="utf-8")
(c / "envoi.toml").write_text(f"""[campaign]
id = "bench-{rows}"
[sender]
from = "{sender}"
reply_to = "{reply_to}"
[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
[send]
rate = "unlimited"
concurrency = 4
max_attempts = 1
""", encoding="utf-8")
write_rows(c / "recipients.csv", header, people(rows))

# mailmerge: the same text inline (Python-Markdown's nl2br stands for CommonMark's `\` breaks),
# Markdown content type so it also sends text/plain + text/html.
m = data / f"mailmerge-{rows}"
m.mkdir(parents=True, exist_ok=True)
mm_statement = re.sub(r"\\\n", "\n", statement)
(m / "mailmerge_template.txt").write_text(
    f"TO: {{{{email}}}}\nFROM: {sender}\nREPLY-TO: {reply_to}\nSUBJECT: {subject}\n"
    "CONTENT-TYPE: text/markdown\n\n" + body % mm_statement, encoding="utf-8")
(m / "mailmerge_server.conf").write_text(
    f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\nratelimit = 0\n", encoding="utf-8")
write_rows(m / "mailmerge_database.csv", header, people(rows))
PY
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

PORT=$(free_port)
say "generating campaigns of $N and $BIG rows (smtp-sink on 127.0.0.1:$PORT)"
generate "$N" "$PORT"
generate "$BIG" "$PORT"

# A sink that accepts everything and keeps nothing. Under root it must drop privileges.
sink_user=()
[[ $(id -u) -eq 0 ]] && sink_user=(-u nobody)
smtp-sink "${sink_user[@]}" -m 64 "127.0.0.1:$PORT" 256 &
PIDS+=($!)
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done

# --- measuring -------------------------------------------------------------------------------
# Runs a command under `timeout` and adds its wall time in seconds to the list T[KEY]; a
# failure aborts the script.
declare -A T
measure() {
    local key=$1 start=$EPOCHREALTIME
    shift
    if ! timeout "$LIMIT" "$@" >/dev/null 2>"$WORK/last.err"; then
        echo "peers.sh: failed: $* (stderr in $WORK/last.err)" >&2
        tail -5 "$WORK/last.err" >&2
        exit 1
    fi
    T[$key]="${T[$key]:-} $(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.4f}')" "$start" "$EPOCHREALTIME")"
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
fmt() { python3 -c "import sys; print(format(float(sys.argv[1]), sys.argv[2]))" "$@"; }
ratio() { python3 -c "import sys; r = float(sys.argv[1]) / float(sys.argv[2]); print(f'{r:.2f}×' if r < 1 else f'{r:.1f}×')" "$@"; }

C=$DATA/envoi-$N
CB=$DATA/envoi-$BIG
M=$DATA/mailmerge-$N
fresh_log() { rm -f "$1/delivery-log.csv" "$1/delivery-log.csv.inflight"; }
SHM=$(mktemp -d /dev/shm/envoi-peers.XXXXXX)

# Commands, not shell functions, so that `timeout` can run them.
MM=("$MAILMERGE" --template "$M/mailmerge_template.txt" --database "$M/mailmerge_database.csv"
    --config "$M/mailmerge_server.conf" --no-limit --output-format raw)
# The size of one letter, so that smtp-source sends messages as large as envoi's.
SIZE=$("$ENVOI" --dir "$C" preview --format raw --limit 1 | wc -c)
SOURCE=(smtp-source -d -s 4 -m "$N" -l "$SIZE" -f ombudsman@ombudsman.example -t r@org.example "127.0.0.1:$PORT")

for round in $(seq "$ROUNDS"); do
    say "round $round of $ROUNDS"
    measure render_envoi "$ENVOI" --dir "$C" preview --format raw
    measure render_mm "${MM[@]}" --dry-run
    fresh_log "$C"
    measure send_envoi "$ENVOI" --dir "$C" send --yes
    # Diagnostic: the same run with the log on tmpfs, where fsync costs nothing, shows what the
    # durable log costs. Not a way to run envoi: a log on tmpfs does not survive a power cut.
    fresh_log "$SHM"
    measure send_envoi_tmpfs "$ENVOI" --dir "$C" send --yes --log "$SHM/delivery-log.csv"
    fresh_log "$SHM"
    measure send_mm "${MM[@]}" --no-dry-run
    measure send_source "${SOURCE[@]}"
done
fresh_log "$C"

# Peak resident memory, in MB, of one run.
peak_rss() {
    /usr/bin/time -v -o "$WORK/time.txt" timeout "$LIMIT" "$@" >/dev/null 2>"$WORK/last.err" || {
        echo "peers.sh: failed: $*" >&2; tail -5 "$WORK/last.err" >&2; exit 1; }
    awk -F: '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$WORK/time.txt"
}
say "peak memory"
RSS_PREVIEW_N=$(peak_rss "$ENVOI" --dir "$C" preview --out "$DATA/preview-$N")
rm -rf "$DATA/preview-$N"
RSS_PREVIEW_BIG=$(peak_rss "$ENVOI" --dir "$CB" preview --out "$DATA/preview-$BIG")
rm -rf "$DATA/preview-$BIG"
fresh_log "$C"
RSS_SEND_N=$(peak_rss "$ENVOI" --dir "$C" send --yes)
fresh_log "$CB"
RSS_SEND_BIG=$(peak_rss "$ENVOI" --dir "$CB" send --yes)
fresh_log "$C"
fresh_log "$CB"

say "start-up"
startup() {
    local label=$1
    shift
    if command -v hyperfine >/dev/null; then
        hyperfine -N --warmup 5 --runs 100 --export-json "$WORK/hf.json" "$*" >/dev/null 2>&1
        python3 -c "import json; r = json.load(open('$WORK/hf.json'))['results'][0]; print(f\"{r['median'] * 1000:.2f}\")"
    else
        local times=()
        T[$label]=""
        for _ in $(seq 30); do measure "$label" "$@"; done
        # shellcheck disable=SC2086
        python3 -c "import sys; print(f'{float(sys.argv[1]) * 1000:.2f}')" "$(median ${T[$label]})"
    fi
}
UP_VERSION=$(startup version "$ENVOI" --version)
UP_CHECK=$(startup check "$ENVOI" --dir "$ROOT" check)

# --- report ----------------------------------------------------------------------------------
py() { python3 -c "import sys; a = [float(x) for x in sys.argv[2:]]; print($1)" "$@"; }
# shellcheck disable=SC2086
{
    r_e=$(median ${T[render_envoi]}); r_m=$(median ${T[render_mm]})
    s_e=$(median ${T[send_envoi]}); s_m=$(median ${T[send_mm]}); s_s=$(median ${T[send_source]})
    s_t=$(median ${T[send_envoi_tmpfs]})
    per() { py "f'{a[0] / a[1]:,.0f}'" "$N" "$1"; }
    echo "$(date -u +%Y-%m-%d), $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)," \
        "$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, load average" \
        "$(cut -d' ' -f1 /proc/loadavg) at the end; \`benches/peers.sh$([[ $QUICK -eq 1 ]] && echo ' --quick')\`," \
        "$ROUNDS rounds, times are medians, letters of $SIZE bytes"
    echo
    echo "| measurement | tool | median of $ROUNDS | letters/s | envoi's speed ÷ its |"
    echo "| --- | --- | ---: | ---: | ---: |"
    echo "| render $N letters (raw, to /dev/null) | envoi preview --format raw | $(fmt "$r_e" .2f) s | $(per "$r_e") | |"
    echo "| | mailmerge --dry-run | $(fmt "$r_m" .2f) s | $(per "$r_m") | $(ratio "$r_m" "$r_e") |"
    echo "| send $N letters to smtp-sink | envoi send (4 connections, durable log) | $(fmt "$s_e" .2f) s | $(per "$s_e") | |"
    echo "| | mailmerge --no-dry-run | $(fmt "$s_m" .2f) s | $(per "$s_m") | $(ratio "$s_m" "$s_e") |"
    echo "| | smtp-source -d -s 4 -l $SIZE | $(fmt "$s_s" .2f) s | $(per "$s_s") | $(ratio "$s_s" "$s_e") |"
    echo "| | *diagnostic:* envoi send, log on tmpfs (fsync free, not durable) | $(fmt "$s_t" .2f) s | $(per "$s_t") | |"
    echo
    echo "| peak memory (RSS) | $N rows | $BIG rows | growth |"
    echo "| --- | ---: | ---: | ---: |"
    echo "| envoi preview --out | $RSS_PREVIEW_N MB | $RSS_PREVIEW_BIG MB | $(ratio "$RSS_PREVIEW_BIG" "$RSS_PREVIEW_N") |"
    echo "| envoi send | $RSS_SEND_N MB | $RSS_SEND_BIG MB | $(ratio "$RSS_SEND_BIG" "$RSS_SEND_N") |"
    echo
    echo "| start-up (median) | time |"
    echo "| --- | ---: |"
    echo "| envoi --version | $UP_VERSION ms |"
    echo "| envoi check (bundled campaign) | $UP_CHECK ms |"
    echo
    met() { if py "int($1)" "${@:2}" | grep -q 1; then echo met; else echo "**missed**"; fi; }
    echo "| target | measured | |"
    echo "| --- | --- | --- |"
    echo "| rendering ≥ 20× mailmerge | $(ratio "$r_m" "$r_e") | $(met 'a[0] / a[1] >= 20' "$r_m" "$r_e") |"
    echo "| sending ≥ 10× mailmerge | $(ratio "$s_m" "$s_e") | $(met 'a[0] / a[1] >= 10' "$s_m" "$s_e") |"
    echo "| sending ≥ ½ smtp-source | $(ratio "$s_s" "$s_e") | $(met 'a[0] / a[1] >= 0.5' "$s_s" "$s_e") |"
    for pair in "preview --out:$RSS_PREVIEW_N:$RSS_PREVIEW_BIG" "send:$RSS_SEND_N:$RSS_SEND_BIG"; do
        IFS=: read -r what small big <<<"$pair"
        echo "| $what memory at $BIG rows ≤ 1.5× at $N, < 64 MB | $(ratio "$big" "$small"), $big MB |" \
            "$(met 'a[1] <= 1.5 * a[0] and a[1] < 64' "$small" "$big") |"
    done
    echo "| envoi --version < 10 ms | $UP_VERSION ms | $(met 'a[0] < 10' "$UP_VERSION") |"
} | tee "$RESULTS/latest.md"
