#!/usr/bin/env bash
# Checks the deployment files: alert rules and their tests, Prometheus and
# Alertmanager configuration (the fleet example's in config/fleet/ too),
# docker-compose.yml, the Grafana dashboards and the runbooks. The dashboard
# queries and recording rules run against a real Prometheus scraping a real
# caretaker in tests/it/dashboards.rs, and through federation in tests/it/fleet.rs.
#
#   scripts/check-deploy.sh            (from anywhere; works in the repo root)
#   VERBOSE=1 scripts/check-deploy.sh  (also print the output of passing checks)
#
# Installs what it needs when missing: the Debian packages prometheus and
# prometheus-alertmanager (promtool, amtool, prometheus) and check-jsonschema
# from PyPI. Exits non-zero if any check fails.
set -euo pipefail
usage() {
  echo "usage: scripts/check-deploy.sh [-h|--help]"
  sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"
}
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    *) echo "check-deploy.sh: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
  esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# ------------------------------------------------------------------ tools
install_tools() {
    local pkgs=()
    if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
        pkgs+=(prometheus)
    fi
    command -v amtool >/dev/null 2>&1 || pkgs+=(prometheus-alertmanager)
    if ((${#pkgs[@]})); then
        local sudo=()
        [[ $(id -u) -eq 0 ]] || sudo=(sudo)
        echo "installing ${pkgs[*]} (apt)"
        "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${pkgs[@]}" >/dev/null
    fi
    if ! command -v check-jsonschema >/dev/null 2>&1 \
        && ! python3 -c 'import check_jsonschema' >/dev/null 2>&1; then
        echo "installing check-jsonschema (pip)"
        # A Debian system Python refuses plain `pip install` (PEP 668).
        python3 -m pip install -q check-jsonschema 2>/dev/null \
            || python3 -m pip install -q --user --break-system-packages check-jsonschema
    fi
}

check_jsonschema() {
    if command -v check-jsonschema >/dev/null 2>&1; then
        check-jsonschema "$@"
    else
        python3 -m check_jsonschema "$@"
    fi
}

# ------------------------------------------------------------------ steps
PASSED=0
FAILED=0
SUMMARY=()

# step NAME COMMAND...: runs COMMAND, keeps its output, prints it on failure.
# COMMAND runs as an `if` condition, where bash ignores `set -e`: the check
# functions below return their failures explicitly.
step() {
    local name=$1
    shift
    local log="$TMP/step-$((PASSED + FAILED)).log"
    if "$@" >"$log" 2>&1; then
        PASSED=$((PASSED + 1))
        SUMMARY+=("ok    $name")
        if [[ -n ${VERBOSE:-} ]]; then
            echo "--- ok: $name"
            sed 's/^/    /' "$log"
        fi
    else
        FAILED=$((FAILED + 1))
        SUMMARY+=("FAIL  $name")
        echo "--- FAIL: $name"
        sed 's/^/    /' "$log"
    fi
}

check_rules() {
    promtool check rules alerts/*.rules.yml
}

test_rules() {
    promtool test rules alerts/tests/*.yml
}

# The configuration loads /etc/prometheus/alerts/*.rules.yml (the compose
# mount); check a copy that loads this repository's alerts/ instead, and make
# sure the rules were really found and loaded.
check_prometheus_config() {
    sed "s#/etc/prometheus/alerts/#$ROOT/alerts/#g" config/prometheus.yml >"$TMP/prometheus.yml" || return 1
    local out
    out=$(promtool check config "$TMP/prometheus.yml" 2>&1) || { echo "$out"; return 1; }
    echo "$out"
    local f
    for f in alerts/*.rules.yml; do
        grep -q "Checking $ROOT/$f" <<<"$out" || { echo "rule file $f was not loaded"; return 1; }
    done
}

# credentials_file must exist: check a copy that points at a temporary token.
alertmanager_copy() {
    echo "check-deploy-token-0123456789" >"$TMP/caretaker_token" || return 1
    sed "s#/run/secrets/caretaker_token#$TMP/caretaker_token#g" config/alertmanager.yml >"$TMP/alertmanager.yml"
}

check_alertmanager_config() {
    alertmanager_copy || return 1
    amtool check-config "$TMP/alertmanager.yml"
}

# expect_route EXPECTED_RECEIVER LABEL=VALUE...
expect_route() {
    local want=$1
    shift
    local got
    got=$(amtool config routes test --config.file="$TMP/alertmanager.yml" "$@" 2>/dev/null)
    echo "$* -> $got"
    [[ $got == "$want" ]] || { echo "expected receiver '$want'"; return 1; }
}

check_alertmanager_routes() {
    alertmanager_copy || return 1
    local rc=0
    expect_route caretaker alertname=CaretakerExpiredEntriesHigh database=memory severity=warning || rc=1
    expect_route caretaker alertname=CaretakerTargetDown instance=caretaker:10210 severity=critical || rc=1
    expect_route default alertname=NodeFilesystemAlmostOutOfSpace severity=critical || rc=1
    expect_route default alertname=Watchdog || rc=1
    expect_route deadman alertname=CaretakerWatchdog severity=none || rc=1
    return $rc
}

check_compose() {
    check_jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
}

# Alert names (the responder's contract), annotations, runbook anchors and
# test coverage.
check_alerts_and_runbooks() {
    python3 - <<'PY'
import glob, re, sys

CONTRACT = """CaretakerDatabaseDown CaretakerDatabaseLarge CaretakerDatabaseGrowingFast
CaretakerDatabaseFragmented CaretakerWalLarge CaretakerIntegrityCheckFailed
CaretakerIntegrityCheckStale CaretakerForeignKeyViolations CaretakerInvalidPatternRows
CaretakerOrphanedEmbeddings CaretakerExpiredEntriesHigh CaretakerPruneCandidatesHigh
CaretakerPatternConfidenceLow CaretakerBackupTooOld CaretakerBackupMissing
CaretakerBackupVerificationFailed CaretakerBackupFilesystemFilling CaretakerDiskUsageHigh
CaretakerDiskUsageCritical CaretakerMemoryHigh CaretakerCpuHigh CaretakerCollectorFailing
CaretakerConfigReloadFailed CaretakerTargetDown CaretakerTargetAbsent
CaretakerActionFailing CaretakerActionBreakerOpen CaretakerRemediationUnresolved
CaretakerWebhookAuthFailures CaretakerAlertsMisrouted CaretakerJobQueueBacklog CaretakerWatchdog
CaretakerOffsiteBackupTooOld CaretakerOffsiteUnreachable CaretakerRestoreDrillFailed
CaretakerRestoreDrillStale CaretakerRestoreNeverDrilled""".split()
# Always firing, on purpose (the dead man's switch): severity none, no for:,
# and no promtool test where it stays quiet.
ALWAYS_FIRING = {"CaretakerWatchdog"}
# The shared runbook link (see the comment at the top of alerts/caretaker.rules.yml).
RUNBOOK = ('{{ with $externalLabels.caretaker_runbook_base }}{{ . }}{{ else }}{{ with $labels.instance }}'
           '{{ or $externalLabels.caretaker_runbook_scheme "http" }}://{{ . }}/runbooks'
           '{{ else }}file:///usr/share/doc/caretaker/runbooks.md{{ end }}{{ end }}#')
# Alerts on series without a database label: their annotations cannot name one.
NO_DATABASE_GROUPS = {"caretaker.host", "caretaker.self"}
NO_DATABASE_ALERTS = {"CaretakerRemediationUnresolved", "CaretakerWebhookAuthFailures",
                      "CaretakerAlertsMisrouted", "CaretakerJobQueueBacklog"}

def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")

anchors = {slug(m) for m in re.findall(r"^#+\s+(.+)$", open("docs/runbooks.md").read(), re.M)}
errors = []

# Split the rules into alerts by indentation (no YAML library needed).
alerts = {}
for path in sorted(glob.glob("alerts/*.rules.yml")):
    group = None
    current = None
    for line in open(path):
        m = re.match(r"\s*- name:\s*(\S+)", line)
        if m:
            group = m.group(1)
        m = re.match(r"\s*- (alert|record):\s*(\S+)", line)
        if m:
            current = None
            if m.group(1) == "alert":
                name = m.group(2)
                if name in alerts:
                    errors.append(f"{name}: defined twice")
                current = alerts[name] = {"group": group, "text": ""}
            continue
        if current is not None:
            current["text"] += line

names = set(alerts)
for missing in sorted(set(CONTRACT) - names):
    errors.append(f"{missing}: missing from alerts/*.rules.yml (alert names are a contract)")
for extra in sorted(names - set(CONTRACT)):
    print(f"note: {extra} is not in the contract list")

tests = "".join(open(p).read() for p in sorted(glob.glob("alerts/tests/*.yml")))
# The runbooks' summary table: | [Name](#anchor) | severity | fires when | for | action |
table = {m.group(1): (m.group(2).strip(), m.group(3).strip())
         for m in re.finditer(r"^\| \[(Caretaker\w+)\]\(#\w+\) \|([^|]+)\|.*\|([^|]+)\|[^|]+\|\s*$",
                              open("docs/runbooks.md").read(), re.M)}
for name, a in sorted(alerts.items()):
    text = a["text"]
    sev = re.search(r"^\s*severity:\s*(\S+)", text, re.M)
    always = name in ALWAYS_FIRING
    if not sev or sev.group(1) not in ("critical", "warning", "info") + (("none",) if always else ()):
        errors.append(f"{name}: severity must be critical, warning or info")
    dur = re.search(r"^\s*for:\s*(\d+[smhd])\s*$", text, re.M)
    if not dur and not always:
        errors.append(f"{name}: no for: duration")
    if name not in table:
        errors.append(f"{name}: not in the table at the top of docs/runbooks.md")
    elif sev and dur and table[name] != (sev.group(1), dur.group(1)):
        errors.append(f"{name}: docs/runbooks.md table says {table[name]}, rules say {(sev.group(1), dur.group(1))}")
    ann = {}
    for key in ("summary", "description", "runbook_url"):
        m = re.search(rf"^\s*{key}:\s*'(.*)'\s*$", text, re.M)
        if not m:
            errors.append(f"{name}: annotation {key} missing (single-quoted, one line)")
        else:
            ann[key] = m.group(1)
    if "description" in ann and "$value" not in ann["description"]:
        errors.append(f"{name}: description does not quote $value")
    if a["group"] not in NO_DATABASE_GROUPS and name not in NO_DATABASE_ALERTS:
        both = ann.get("summary", "") + ann.get("description", "")
        if "$labels.database" not in both:
            errors.append(f"{name}: annotations do not name $labels.database")
    url = ann.get("runbook_url", "")
    if not url.startswith(RUNBOOK):
        errors.append(f"{name}: runbook_url must be the shared link form: {RUNBOOK}<anchor>")
    elif url[len(RUNBOOK):] != name.lower():
        errors.append(f"{name}: runbook_url must end in #{name.lower()}")
    elif url[len(RUNBOOK):] not in anchors:
        errors.append(f"{name}: docs/runbooks.md has no section #{url[len(RUNBOOK):]}")
    fires = re.search(rf"alertname:\s*{name}\s*\n\s*exp_alerts:\s*\n\s*- exp_labels", tests)
    quiet = re.search(rf"alertname:\s*{name}\s*\n\s*exp_alerts:\s*\[\]", tests)
    if not fires:
        errors.append(f"{name}: no promtool test where it fires")
    if not quiet and not always:
        errors.append(f"{name}: no promtool test where it stays quiet")

records = re.findall(r"^\s*- record:\s*(\S+)", open("alerts/caretaker.rules.yml").read(), re.M)
for r in records:
    if not re.search(rf"expr:\s*{re.escape(r)}\s*$", tests, re.M):
        errors.append(f"recording rule {r}: no promql_expr_test")

for e in errors:
    print("error:", e)
print(f"{len(alerts)} alerts, {len(records)} recording rules, {len(anchors)} runbook sections")
sys.exit(1 if errors else 0)
PY
}

# The fleet example (docs/fleet.md): each Prometheus configuration with the
# rules loaded, the generated Alertmanager configuration, and its routes.
check_fleet_example() {
    local f out
    for f in config/fleet/prometheus-*.yml; do
        sed "s#/etc/prometheus/alerts/#$ROOT/alerts/#g" "$f" >"$TMP/fleet.yml" || return 1
        out=$(promtool check config "$TMP/fleet.yml" 2>&1) || { echo "$f: $out"; return 1; }
        echo "$f: ok"
    done
    echo "check-deploy-token-0123456789" >"$TMP/caretaker_token" || return 1
    sed "s#/etc/alertmanager/caretaker_token#$TMP/caretaker_token#g" config/fleet/alertmanager.yml >"$TMP/alertmanager.yml"
    amtool check-config "$TMP/alertmanager.yml" || return 1
    expect_route caretaker-db2-10210 alertname=CaretakerWalLarge instance=db2:10210 || return 1
    expect_route default alertname=CaretakerWalLarge instance=db3:10210
}

# Dashboards: valid JSON, stable unique uid, the datasource and database
# variables, no __inputs, ${datasource} everywhere, a description on every
# panel, the database filter on every per-database selector.
check_dashboards() {
    python3 - <<'PY'
import glob, json, re, sys

DS = {"type": "prometheus", "uid": "${datasource}"}
NOT_PER_DATABASE = ("caretaker_host_", "caretaker:host_", "caretaker_process_",
                    "caretaker_build_info", "caretaker_config_", "caretaker_collector_",
                    # the responder's series without a database label
                    "caretaker_webhook_", "caretaker_alerts_", "caretaker_auth_",
                    "caretaker_action_duration_", "caretaker_action_queue_",
                    "caretaker_remediation_",
                    # the dead man's switch is one per caretaker
                    "caretaker_heartbeat_")
errors = []
uids = {}

def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))

files = sorted(glob.glob("dashboards/*.json"))
if not files:
    errors.append("no dashboards/*.json")
for path in files:
    def err(msg):
        errors.append(f"{path}: {msg}")
    try:
        with open(path) as f:
            text = f.read()
        d = json.loads(text)
    except ValueError as e:
        err(f"invalid JSON: {e}")
        continue
    if "__inputs" in d or "${DS_" in text:
        err("uses __inputs / ${DS_...}: file provisioning does not resolve them")
    uid = d.get("uid")
    if not isinstance(uid, str) or not re.fullmatch(r"caretaker-[a-z0-9-]{1,30}", uid):
        err(f"uid {uid!r} is not a stable caretaker-* uid")
    elif uid in uids:
        err(f"uid {uid} also used by {uids[uid]}")
    else:
        uids[uid] = path
    if not d.get("title"):
        err("no title")
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
        err("schemaVersion missing or older than 36")
    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        err("no datasource variable (type datasource, query prometheus)")
    db = variables.get("database")
    query = db and db.get("query")
    if isinstance(query, dict):
        query = query.get("query")
    if (not db or db.get("type") != "query" or not db.get("multi") or not db.get("includeAll")
            or not re.fullmatch(r'label_values\(caretaker_database_up(\{[^}]*\})?, database\)', query or "")):
        err("no database variable (query label_values(caretaker_database_up{...}, database), multi, includeAll)")
    for name, v in variables.items():
        if v.get("type") == "query" and v.get("datasource") != DS:
            err(f"variable {name} does not use ${{datasource}}")
    for a in d.get("annotations", {}).get("list", []):
        if a.get("expr") and a.get("datasource") != DS:
            err(f"annotation {a.get('name')} does not use ${{datasource}}")
    ids = [p.get("id") for p in walk(d.get("panels", []))]
    if len(ids) != len(set(ids)):
        err("panel ids are not unique")
    panels = list(walk(d.get("panels", [])))
    if not panels:
        err("no panels")
    for p in panels:
        title = p.get("title") or f"panel {p.get('id')}"
        if p.get("type") == "row":
            continue
        if p.get("datasource") != DS:
            err(f"{title}: panel datasource is not ${{datasource}}")
        if not str(p.get("description", "")).strip():
            err(f"{title}: no description")
        if not p.get("targets"):
            err(f"{title}: no targets")
        for t in p.get("targets", []):
            if t.get("datasource") != DS:
                err(f"{title}: target {t.get('refId')} datasource is not ${{datasource}}")
            expr = t.get("expr", "")
            if not expr.strip():
                err(f"{title}: target {t.get('refId')} has no expr")
            for m in re.finditer(r"(caretaker[_:][a-z0-9_:]+)(\{[^}]*\})?", expr):
                metric, selector = m.group(1), m.group(2) or ""
                if metric.startswith(NOT_PER_DATABASE):
                    continue
                if 'database=~"$database"' not in selector:
                    err(f"{title}: {metric} without database=~\"$database\"")
for e in errors:
    print("error:", e)
print(f"{len(files)} dashboards: {', '.join(sorted(uids))}")
sys.exit(1 if errors else 0)
PY
}

check_files() {
    local f
    for f in Dockerfile .dockerignore docker-compose.yml config/caretaker_token.example config/caretaker.toml \
        config/grafana/provisioning/datasources/prometheus.yml \
        config/grafana/provisioning/dashboards/caretaker.yml docs/runbooks.md; do
        [[ -s $f ]] || { echo "missing or empty: $f"; return 1; }
    done
    local pattern
    for pattern in '^FROM rust:1-bookworm AS builder' 'cargo build --release --locked' \
        '^FROM debian:bookworm-slim' '^USER ' '^EXPOSE 10210' '^ENTRYPOINT \["caretaker"\]'; do
        grep -q "$pattern" Dockerfile || { echo "Dockerfile lacks: $pattern"; return 1; }
    done
    grep -qx 'target' .dockerignore || { echo ".dockerignore does not exclude target"; return 1; }
}


# Every script answers --help and -h with its usage and exit 0 without doing
# any work (within a few seconds), and refuses an unknown flag with exit 2.
check_scripts_help() {
    local f rc=0 out code start took before
    for f in scripts/*.sh scripts/bench/*.sh; do
        before=$rc
        for flag in --help -h; do
            start=$(date +%s%N)
            out=$(timeout 10 bash "$f" "$flag" 2>&1) && code=0 || code=$?
            took=$((($(date +%s%N) - start) / 1000000))
            if [[ $code -ne 0 || $out != usage:* || $took -gt 5000 ]]; then
                echo "$f $flag: exit $code after $took ms, output: ${out:0:200}"
                rc=1
            fi
        done
        out=$(timeout 10 bash "$f" --no-such-flag 2>&1) && code=0 || code=$?
        if [[ $code -ne 2 || $out != *usage:* ]]; then
            echo "$f --no-such-flag: exit $code (want 2 with the usage), output: ${out:0:200}"
            rc=1
        fi
        [[ $rc -ne $before ]] || echo "$f: --help, -h, unknown flag ok"
    done
    return $rc
}

# The image's layout without Docker: the Dockerfile's user and data folder,
# a read-only configuration folder holding config/caretaker.toml (paths moved
# under a temporary root), and the image's command. caretaker must start and
# answer /-/healthy, with its state database in the data folder.
caretaker_bin() {
    local bin="${CARGO_TARGET_DIR:-$ROOT/target}/debug/caretaker"
    if [[ ! -x $bin ]]; then
        cargo build --locked --quiet >&2 || return 1
    fi
    echo "$bin"
}

check_image_layout() {
    local bin uid state_dir
    bin=$(caretaker_bin) || return 1
    uid=$(sed -n 's/.*useradd .*--uid \([0-9]*\).*/\1/p' Dockerfile)
    state_dir=$(sed -n 's/^ENV CARETAKER_STATE_DIR=\(.*\)$/\1/p' Dockerfile)
    [[ -n $uid && -n $state_dir ]] || { echo "Dockerfile: no useradd --uid or ENV CARETAKER_STATE_DIR"; return 1; }
    local R="$TMP/image"
    mkdir -p "$R/etc/caretaker" "$R$state_dir" "$R/srv/agent/.swarm" "$R/srv/agent/backups" "$R/usr/local/bin" || return 1
    chmod 0755 "$TMP" || return 1
    cp "$bin" "$R/usr/local/bin/caretaker" || return 1
    "$bin" demo --dir="$R/demo" --no-serve --patterns=200 >/dev/null 2>&1 || { echo "demo database not created"; return 1; }
    mv "$R/demo/memory.db" "$R/srv/agent/.swarm/memory.db" || return 1
    sed "s#/srv/agent/#$R/srv/agent/#g" config/caretaker.toml >"$R/etc/caretaker/caretaker.toml" || return 1
    echo "check-deploy-token-0123456789" >"$R/etc/caretaker/token" || return 1
    chmod 0600 "$R/etc/caretaker/token"
    local run=()
    if [[ $(id -u) -eq 0 ]]; then
        chown -R "$uid:$uid" "$R/srv/agent" "$R$state_dir" "$R/etc/caretaker/token" || return 1
        run=(setpriv --reuid="$uid" --regid="$uid" --clear-groups)
    fi
    chmod 0555 "$R/etc/caretaker" || return 1
    local log="$TMP/image.log"
    CARETAKER_STATE_DIR="$R$state_dir" "${run[@]}" "$R/usr/local/bin/caretaker" serve \
        --config.file="$R/etc/caretaker/caretaker.toml" --web.listen-address=127.0.0.1:0 >"$log" 2>&1 &
    local pid=$! address="" healthy="" i
    for ((i = 0; i < 300; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "caretaker stopped at startup:"; cat "$log"; return 1
        fi
        address=$(grep listening "$log" | grep -o 'address=[0-9.]*:[0-9]*' | head -1 | cut -d= -f2)
        if [[ -n $address ]] && curl -fsS "http://$address/-/healthy" >/dev/null 2>&1; then
            healthy=1
            break
        fi
        sleep 0.1
    done
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    chmod 0755 "$R/etc/caretaker"
    cat "$log"
    [[ -n $healthy ]] || { echo "no answer on /-/healthy"; return 1; }
    [[ -s $R$state_dir/caretaker-state.db ]] || { echo "no state database in $state_dir"; return 1; }
    [[ ! -e $R/etc/caretaker/state ]] || { echo "state written in the configuration folder"; return 1; }
    echo "uid ${uid}: healthy on $address, state in $state_dir"
}

install_tools
step "promtool check rules alerts/*.rules.yml" check_rules
step "promtool test rules alerts/tests/*.yml" test_rules
step "promtool check config config/prometheus.yml (rules loaded)" check_prometheus_config
step "amtool check-config config/alertmanager.yml" check_alertmanager_config
step "amtool config routes test (caretaker / default)" check_alertmanager_routes
step "check-jsonschema vendor.compose-spec docker-compose.yml" check_compose
step "config/fleet: promtool and amtool, per-host routes" check_fleet_example
step "alert names, annotations, runbook anchors, test coverage" check_alerts_and_runbooks
step "dashboards: uid, variables, \${datasource}, descriptions" check_dashboards
step "Dockerfile, .dockerignore, provisioning files present" check_files
step "scripts answer --help and -h, refuse unknown flags" check_scripts_help
step "image layout: uid of the Dockerfile, read-only /etc/caretaker, /-/healthy" check_image_layout

echo
echo "check-deploy summary:"
printf '  %s\n' "${SUMMARY[@]}"
echo "check-deploy: $PASSED passed, $FAILED failed"
((FAILED == 0))
