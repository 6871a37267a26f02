#!/usr/bin/env bash
# envoi side by side with its peers, on this machine, on loopback only.
#
#   benches/peers.sh [--quick] [--rounds N]
#   ENVOI=path/to/envoi ENVOI_BASELINE=path/to/older/envoi benches/peers.sh --quick
#
# Sets up what it needs (a Python venv with mailmerge 2.3.0 from PyPI; Debian's postfix package
# for the standalone smtp-sink/smtp-source programs and for one private Postfix instance; GNU
# time; hyperfine where Debian has it), builds envoi in release mode, generates equivalent
# synthetic campaigns for envoi and mailmerge (same letter text, same recipients, non-ASCII
# names), then measures, interleaved and repeated, and reports medians:
#
#   rendering  envoi preview --format raw  vs  mailmerge --dry-run --output-format raw
#   sending    envoi send (concurrency 4, no rate limit, durable delivery log)  vs  mailmerge
#              --no-dry-run  vs  smtp-source -d (4 reused sessions, same message size), all to
#              one smtp-sink on 127.0.0.1; envoi and smtp-source again with ~3 KB letters
#   Postfix    1,000 letters through a private Postfix on 127.0.0.1 (.ci/postfix-instance; it
#              discards what it accepts), envoi send vs smtp-source; needs root
#   far relay  1,000 ~3 KB letters to the smtp-sink through benches/latency-proxy.py, which
#              delays every byte 5 ms each way: a relay 10 ms away, as an office's often is
#   memory     peak RSS of envoi preview --out and envoi send at N and 10 N rows
#   start-up   envoi --version and envoi check on the bundled campaign
#
# ENVOI names the binary to measure (then nothing is built); ENVOI_BASELINE adds another binary,
# measured in the same rounds as ENVOI (render, both sends, Postfix), to compare two versions.
# Writes a Markdown table to stdout and to benches/results/latest.md. --quick uses N = 1,000
# and 3 rounds (about three minutes); the full run uses N = 10,000 and 5 rounds. Every command
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
        -h | --help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "peers.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
BIG=$((N * 10))
# Letters through Postfix: the real relay's row is the same size in both modes.
PF_N=1000
# Letters to the far relay, and how far it is (each way).
FAR_N=1000
FAR_MS=5
# Long enough for mailmerge's slowest round at N = 10,000 on a loaded machine; never unbounded.
LIMIT=900

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$TARGET/peers
VENV=$WORK/venv
DATA=$WORK/data
BUILD=1
if [[ -n ${ENVOI:-} ]]; then
    BUILD=0
    ENVOI=$(realpath "$ENVOI")
else
    ENVOI=$TARGET/release/envoi
fi
BASELINE=${ENVOI_BASELINE:+$(realpath "$ENVOI_BASELINE")}
for binary in "$ENVOI" ${BASELINE:+"$BASELINE"}; do
    [[ $BUILD -eq 1 && $binary == "$ENVOI" ]] || [[ -x $binary ]] ||
        { echo "peers.sh: $binary is not an executable envoi" >&2; exit 2; }
done
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
    [[ ${PF_STARTED:-0} -eq 1 ]] && postfix_stop
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

if [[ $BUILD -eq 1 ]]; then
    say "building envoi (release)"
    (cd "$ROOT" && cargo build --release --quiet --bin envoi)
fi

# --- synthetic campaigns ---------------------------------------------------------------------
# One generator for both tools, so that the letters have the same text and the same recipients.
#   generate ROWS PORT NAME SIZE   envoi's campaign in $DATA/NAME, relay on 127.0.0.1:PORT;
#                                  SIZE "bundled" (the cover letter and the bundled statement:
#                                  11 KB letters) or "short" (the cover letter alone: 3.5 KB,
#                                  the HTML part's style sheet being most of it)
#   generate ROWS PORT NAME SIZE mailmerge   also mailmerge's in $DATA/mailmerge-ROWS
generate() {
    python3 - "$ROOT" "$DATA" "$@" <<'PY'
import csv, pathlib, re, sys

root, data, rows, port, name, size = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
with_mailmerge = sys.argv[7:] == ["mailmerge"]
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

if size == "short":
    body = body.replace(" Its text is reproduced below.\n\n* * *\n\n%s\n\n* * *\n", "\n")
    assert "%s" not in body

# envoi: the statement as a partial, the letter as a Handlebars template with TOML front matter.
c = data / name
(c / "templates").mkdir(parents=True, exist_ok=True)
(c / "templates" / "statement.md").write_text(statement, encoding="utf-8")
(c / "templates" / "letter.hbs").write_text(
    f'+++\nsubject = "{subject}"\n+++\n' + body.replace("%s", "{{> statement}}"), encoding="utf-8")
(c / "envoi.toml").write_text(f"""[campaign]
id = "bench-{name}"
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
if not with_mailmerge:
    sys.exit(0)

# mailmerge: the same text inline (Python-Markdown's nl2br stands for CommonMark's `\` breaks),
# Markdown content type so it also sends text/plain + text/html.
m = data / f"mailmerge-{rows}"
m.mkdir(parents=True, exist_ok=True)
mm_statement = re.sub(r"\\\n", "\n", statement)
(m / "mailmerge_template.txt").write_text(
    f"TO: {{{{email}}}}\nFROM: {sender}\nREPLY-TO: {reply_to}\nSUBJECT: {subject}\n"
    "CONTENT-TYPE: text/markdown\n\n" + body.replace("%s", mm_statement), encoding="utf-8")
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
generate "$N" "$PORT" "envoi-$N" bundled mailmerge
generate "$N" "$PORT" "envoi-short-$N" short
generate "$BIG" "$PORT" "envoi-$BIG" bundled

# A sink that accepts everything and keeps nothing. Under root it must drop privileges.
sink_user=()
[[ $(id -u) -eq 0 ]] && sink_user=(-u nobody)
smtp-sink "${sink_user[@]}" -m 64 "127.0.0.1:$PORT" 256 &
PIDS+=($!)
# The far relay: the same sink, FAR_MS away in each direction.
FAR_PORT=$(free_port)
python3 "$ROOT/benches/latency-proxy.py" "$FAR_PORT" "$PORT" "$FAR_MS" &
PIDS+=($!)
generate "$FAR_N" "$FAR_PORT" "envoi-far" short
for port in "$PORT" "$FAR_PORT"; do
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
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
CS=$DATA/envoi-short-$N
CB=$DATA/envoi-$BIG
CP=$DATA/envoi-postfix
CF=$DATA/envoi-far
M=$DATA/mailmerge-$N
fresh_log() { rm -f "$1/delivery-log.csv" "$1/delivery-log.csv.inflight"; }
SHM=$(mktemp -d /dev/shm/envoi-peers.XXXXXX)

# --- a private Postfix, the relay an office would run ----------------------------------------
# Its own instance (.ci/postfix-instance), on 127.0.0.1 only, discarding what it accepts: each
# letter still goes through smtpd, cleanup (which syncs the queue file before its 250) and qmgr.
POSTFIX=0
if [[ $(id -u) -eq 0 ]]; then
    # shellcheck source=.ci/postfix-instance
    . "$ROOT/.ci/postfix-instance"
    PF_PORT=$(free_port)
    say "starting a private Postfix on 127.0.0.1:$PF_PORT"
    postfix_instance envoi-peers "$PF_PORT"
    postfix_configure discard
    postfix_services </dev/null
    PF_STARTED=1
    postfix_start >/dev/null
    postfix_wait "$PF_PORT"
    generate "$PF_N" "$PF_PORT" envoi-postfix bundled
    POSTFIX=1
else
    say "not root: no Postfix row (a private Postfix instance needs root)"
fi
# Waits, bounded, until Postfix has passed on every letter it accepted, so that its queue
# manager's work is not timed against the next command.
postfix_drain() {
    local deadline=$((SECONDS + 300))
    while [[ -n $(find "$pf_queue"/{maildrop,incoming,active,deferred} -type f -print -quit 2>/dev/null) ]]; do
        if ((SECONDS > deadline)); then
            echo "peers.sh: Postfix still holds letters after 300 s (its log: $pf_maillog)" >&2
            exit 1
        fi
        sleep 0.2
    done
}

# Commands, not shell functions, so that `timeout` can run them.
MM=("$MAILMERGE" --template "$M/mailmerge_template.txt" --database "$M/mailmerge_database.csv"
    --config "$M/mailmerge_server.conf" --no-limit --output-format raw)
# The size of one letter, so that smtp-source sends messages as large as envoi's.
SIZE=$("$ENVOI" --dir "$C" preview --format raw --limit 1 | wc -c)
SIZE_SHORT=$("$ENVOI" --dir "$CS" preview --format raw --limit 1 | wc -c)
source_to() { echo smtp-source -d -s 4 -m "$1" -l "$2" -f ombudsman@ombudsman.example -t r@org.example "127.0.0.1:$3"; }
read -ra SOURCE <<<"$(source_to "$N" "$SIZE" "$PORT")"
read -ra SOURCE_SHORT <<<"$(source_to "$N" "$SIZE_SHORT" "$PORT")"
read -ra SOURCE_FAR <<<"$(source_to "$FAR_N" "$SIZE_SHORT" "$FAR_PORT")"
[[ $POSTFIX -eq 1 ]] && read -ra SOURCE_POSTFIX <<<"$(source_to "$PF_N" "$SIZE" "$PF_PORT")"

# The binaries measured: ENVOI (keys without a suffix) and ENVOI_BASELINE (keys ending in
# "_base"). Their order alternates from round to round, so neither always runs first.
BINARIES=("$ENVOI")
TAGS=("")
[[ -n $BASELINE ]] && BINARIES+=("$BASELINE") && TAGS+=("_base")
each_envoi() {
    local key=$1 i order=(0)
    shift
    if [[ ${#BINARIES[@]} -eq 2 ]]; then
        if ((round % 2)); then order=(0 1); else order=(1 0); fi
    fi
    for i in "${order[@]}"; do
        # A function, not a command: `measure` runs the binary itself, under `timeout`.
        "$@" "$key${TAGS[i]}" "${BINARIES[i]}"
    done
}
render() { measure "$1" "$2" --dir "$C" preview --format raw; }
send_to() {
    local campaign=$1
    shift
    fresh_log "$campaign"
    measure "$1" "$2" --dir "$campaign" send --yes
}
postfix_send() {
    send_to "$CP" "$@"
    postfix_drain
}

# How long the disk under the delivery log takes to sync: the one thing in a durable send that
# smtp-source does not pay, and the one that changes most from one day (or host) to the next.
# 200 overwrites of a 4 KiB block, each with O_DSYNC: what a sync of the zeroed-ahead journal
# costs. Measured before and after the rounds, so a table can be read against its disk.
sync_us() {
    local f=$WORK/sync.test
    dd if=/dev/zero of="$f" bs=4k count=256 status=none
    local s e
    s=$(date +%s%N)
    dd if=/dev/zero of="$f" bs=4k count=200 oflag=dsync conv=notrunc status=none
    e=$(date +%s%N)
    rm -f "$f"
    echo $(((e - s) / 200000))
}
SYNC_BEFORE=$(sync_us)
for round in $(seq "$ROUNDS"); do
    say "round $round of $ROUNDS"
    each_envoi render_envoi render
    measure render_mm "${MM[@]}" --dry-run
    each_envoi send_envoi send_to "$C"
    # Diagnostic: the same run with the log on tmpfs, where fsync costs nothing, shows what the
    # durable log costs. Not a way to run envoi: a log on tmpfs does not survive a power cut.
    fresh_log "$SHM"
    measure send_envoi_tmpfs "$ENVOI" --dir "$C" send --yes --log "$SHM/delivery-log.csv"
    fresh_log "$SHM"
    measure send_mm "${MM[@]}" --no-dry-run
    measure send_source "${SOURCE[@]}"
    each_envoi short_envoi send_to "$CS"
    measure short_source "${SOURCE_SHORT[@]}"
    each_envoi far_envoi send_to "$CF"
    measure far_source "${SOURCE_FAR[@]}"
    if [[ $POSTFIX -eq 1 ]]; then
        postfix_drain
        each_envoi postfix_envoi postfix_send
        measure postfix_source "${SOURCE_POSTFIX[@]}"
        postfix_drain
    fi
done
fresh_log "$C"
fresh_log "$CS"
fresh_log "$CP"
fresh_log "$CF"
if [[ $POSTFIX -eq 1 ]]; then
    # Every letter timed through Postfix was taken and passed on: count them in its log (which
    # postlogd writes a moment later).
    want=$((ROUNDS * PF_N * (${#BINARIES[@]} + 1)))
    for _ in $(seq 50); do
        got=$(grep -c 'status=sent' "$pf_maillog" || true)
        [[ $got -ge $want ]] && break
        sleep 0.2
    done
    [[ $got -eq $want ]] ||
        { echo "peers.sh: Postfix passed on $got letters, not $want (its log: $pf_maillog)" >&2; exit 1; }
fi

# Peak resident memory, in MB, of one run.
peak_rss() {
    /usr/bin/time -v -o "$WORK/time.txt" timeout "$LIMIT" "$@" >/dev/null 2>"$WORK/last.err" || {
        echo "peers.sh: failed: $*" >&2; tail -5 "$WORK/last.err" >&2; exit 1; }
    awk -F: '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$WORK/time.txt"
}
SYNC_AFTER=$(sync_us)
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
med() { median ${T[$1]}; }
per() { py "f'{a[0] / a[1]:,.0f}'" "$1" "$2"; }
# One table row: label, tool, key of the times, letters, and the key whose speed envoi's is
# divided by (or nothing).
row() {
    local t
    t=$(med "$3")
    echo "| ${1:+$1 }| $2 | $(fmt "$t" .2f) s | $(per "$4" "$t") | ${5:+$(ratio "$t" "$(med "$5")") }|"
}
# The baseline's row, when there is one: its ratio column is ENVOI's speed ÷ the baseline's.
base_row() {
    [[ -n $BASELINE ]] || return 0
    local t
    t=$(med "$2")
    echo "| | $1 | $(fmt "$t" .2f) s | $(per "$3" "$t") | $(ratio "$t" "$(med "${2%_base}")") |"
}
met() { if py "int($1)" "${@:2}" | grep -q 1; then echo met; else echo "**missed**"; fi; }
{
    r_e=$(med render_envoi); r_m=$(med render_mm)
    s_e=$(med send_envoi); s_m=$(med send_mm); s_s=$(med send_source)
    h_e=$(med short_envoi); h_s=$(med short_source)
    echo "$(date -u +%Y-%m-%d), $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)," \
        "$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, load average" \
        "$(cut -d' ' -f1 /proc/loadavg) at the end; \`benches/peers.sh$([[ $QUICK -eq 1 ]] && echo ' --quick')\`," \
        "$ROUNDS rounds, times are medians, letters of $SIZE and $SIZE_SHORT bytes${BASELINE:+; baseline binary $BASELINE};" \
        "a 4 KiB synced overwrite on the log's disk took $SYNC_BEFORE µs before the rounds, $SYNC_AFTER µs after"
    echo
    echo "| measurement | tool | median of $ROUNDS | letters/s | envoi's speed ÷ its |"
    echo "| --- | --- | ---: | ---: | ---: |"
    row "render $N letters (raw, to /dev/null)" "envoi preview --format raw" render_envoi "$N"
    base_row "baseline envoi preview --format raw" render_envoi_base "$N"
    row "" "mailmerge --dry-run" render_mm "$N" render_envoi
    row "send $N letters of $SIZE bytes to smtp-sink" "envoi send (4 connections, durable log)" send_envoi "$N"
    base_row "baseline envoi send" send_envoi_base "$N"
    row "" "mailmerge --no-dry-run" send_mm "$N" send_envoi
    row "" "smtp-source -d -s 4 -l $SIZE" send_source "$N" send_envoi
    row "" "*diagnostic:* envoi send, log on tmpfs (fsync free, not durable)" send_envoi_tmpfs "$N"
    row "send $N letters of $SIZE_SHORT bytes to smtp-sink" "envoi send (4 connections, durable log)" short_envoi "$N"
    base_row "baseline envoi send" short_envoi_base "$N"
    row "" "smtp-source -d -s 4 -l $SIZE_SHORT" short_source "$N" short_envoi
    row "send $FAR_N letters of $SIZE_SHORT bytes to a relay $((2 * FAR_MS)) ms away (benches/latency-proxy.py)" \
        "envoi send (4 connections, durable log)" far_envoi "$FAR_N"
    base_row "baseline envoi send" far_envoi_base "$FAR_N"
    row "" "smtp-source -d -s 4 -l $SIZE_SHORT" far_source "$FAR_N" far_envoi
    if [[ $POSTFIX -eq 1 ]]; then
        row "send $PF_N letters of $SIZE bytes through Postfix $(postconf -c "$pf_conf" -h mail_version) (127.0.0.1, discarded)" \
            "envoi send (4 connections, durable log)" postfix_envoi "$PF_N"
        base_row "baseline envoi send" postfix_envoi_base "$PF_N"
        row "" "smtp-source -d -s 4 -l $SIZE" postfix_source "$PF_N" postfix_envoi
    else
        echo "| send $PF_N letters through Postfix | not measured: starting a private Postfix needs root | | | |"
    fi
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
    echo "| target | measured | |"
    echo "| --- | --- | --- |"
    echo "| rendering ≥ 20× mailmerge | $(ratio "$r_m" "$r_e") | $(met 'a[0] / a[1] >= 20' "$r_m" "$r_e") |"
    echo "| sending ≥ 10× mailmerge | $(ratio "$s_m" "$s_e") | $(met 'a[0] / a[1] >= 10' "$s_m" "$s_e") |"
    for pair in "$SIZE:$s_s:$s_e" "$SIZE_SHORT:$h_s:$h_e"; do
        IFS=: read -r bytes source envoi <<<"$pair"
        echo "| sending ≥ 0.5× smtp-source, $bytes-byte letters (stretch 0.7×) | $(ratio "$source" "$envoi") |" \
            "$(met 'a[0] / a[1] >= 0.5' "$source" "$envoi")$(py "' (stretch met)' if a[0] / a[1] >= 0.7 else ''" "$source" "$envoi") |"
    done
    for pair in "preview --out:$RSS_PREVIEW_N:$RSS_PREVIEW_BIG" "send:$RSS_SEND_N:$RSS_SEND_BIG"; do
        IFS=: read -r what small big <<<"$pair"
        echo "| $what memory at $BIG rows ≤ 1.5× at $N, < 64 MB | $(ratio "$big" "$small"), $big MB |" \
            "$(met 'a[1] <= 1.5 * a[0] and a[1] < 64' "$small" "$big") |"
    done
    echo "| envoi --version < 10 ms | $UP_VERSION ms | $(met 'a[0] < 10' "$UP_VERSION") |"
} | tee "$RESULTS/latest.md"
