#!/bin/bash
# The checks that run inside the Debian 12 guest booted by Tests/systemd/e2e, as the oneshot
# unit broker-e2e.service, once per boot:
#
#   guest.sh install   first boot: install the older package with apt, users, configuration, key
#   guest.sh checks    second boot: everything a host sees after a reboot, then upgrade, stop,
#                      crash, watchdog, removal and purge
#
# Each check writes "ok NAME" or "not ok NAME: what was seen" to /e2e/results-PHASE; the host
# reads them after the guest has powered off. The last line is "done" when the phase ran to
# its end.
set -u
phase=$1
results=/e2e/results-$phase
: > "$results"
export SYSTEMD_PAGER=
socket=/run/maskinporten-broker/broker.sock
unit=maskinporten-broker.service

pass() { echo "ok $1" >> "$results"; }
fail() { echo "not ok $1: $(echo "$2" | tr '\n' ' ' | head -c 600)" >> "$results"; }
# equal NAME ACTUAL EXPECTED
equal() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "got '$2', expected '$3'"; fi; }
# run NAME COMMAND...: passes when the command exits 0
run() {
    local name=$1
    shift
    local output
    if output=$("$@" 2>&1); then pass "$name"; else fail "$name" "exit $?: $output"; fi
}
show() { systemctl show -p "$2" --value "$1"; }
# as USER PATH: the HTTP status of a request over the socket, the body in /tmp/body (written by
# root: each user's curl writes to standard output)
as() {
    runuser -u "$1" -- curl -s -w '\n%{http_code}' --max-time 10 --unix-socket "$socket" "http://localhost$2" > /tmp/response
    sed '$d' /tmp/response > /tmp/body
    tail -1 /tmp/response
}
# as_post USER PATH JSON: a POST over the socket as USER; prints the status, the body in /tmp/body
as_post() {
    runuser -u "$1" -- curl -s -w '\n%{http_code}' --max-time 10 --unix-socket "$socket" -H 'Content-Type: application/json' --data "$3" "http://localhost$2" > /tmp/response
    sed '$d' /tmp/response > /tmp/body
    tail -1 /tmp/response
}
# wait_for SECONDS COMMAND...: until the command succeeds
wait_for() {
    local limit=$1
    shift
    local end=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -ge "$end" ] && return 1
        sleep 0.2
    done
}
serving() { [ "$(as notifier /v1/token/notifications)" = 200 ]; }
owners() { stat -c '%U %G %a' "$1"; }

config() {
    cat <<EOF
log_level: info
environments:
  local:
    maskinporten_issuer: http://127.0.0.1:18080/
    altinn_platform: http://127.0.0.1:18080
profiles:
  notifications:
    environment: local
    client_id: e2e
    scopes: [altinn:serviceowner/notifications.create]
    key: { encoded_jwk_credential: notifications-jwk }
    allow: { users: [notifier] }
    gateway: {}
$1
EOF
}

install_phase() {
    # Installed in the chroot before this first boot (Tests/systemd/e2e): the boot made what
    # its postinst could not make there. Then purged, for apt to install it afresh.
    equal "the package installed in a chroot is there at the first boot" "$(dpkg-query -W -f='${Status}' maskinporten-broker)" "install ok installed"
    equal "the first boot made its configuration directory" "$(owners /etc/maskinporten-broker)" "root maskinporten-broker 750"
    equal "the first boot made its credentials directory" "$(owners /etc/maskinporten-broker/credentials)" "root root 700"
    run "apt purges the package installed in the chroot" apt-get purge -y maskinporten-broker

    run "apt installs the package" apt-get install -y --no-install-recommends /e2e/old.deb
    equal "the package starts no daemon before it is configured" "$(show $unit ActiveState)" inactive
    run "sysusers made the daemon's user" getent passwd maskinporten-broker
    run "sysusers made the clients' group" getent group maskinporten
    equal "tmpfiles made the configuration directory" "$(owners /etc/maskinporten-broker)" "root maskinporten-broker 750"
    run "the example configuration is installed" test -f /usr/share/maskinporten-broker/broker.example.yaml

    # README "Install": the package tried against the emulator, step by step, as a user would.
    mkdir /tmp/try && cd /tmp/try || return
    maskinporten-broker emulator --listen 127.0.0.1:18080 > emulator.log 2>&1 &
    local emulator=$!
    wait_for 10 curl -sf http://127.0.0.1:18080/_emulator/stats
    maskinporten-broker keygen --out dev.jwk > public.json 2>/dev/null
    curl -sS -o /dev/null -X POST 127.0.0.1:18080/_emulator/clients \
        -d '{"client_id":"dev-client","scopes":["altinn:serviceowner/notifications.create"],"keys":'"$(cat public.json)"'}'
    cp /usr/share/maskinporten-broker/dev.example.yaml broker.yaml
    maskinporten-broker serve --config broker.yaml > serve.log 2>&1 &
    local served=$!
    if wait_for 15 maskinporten-broker token demo --socket /tmp/maskinporten-broker-dev/broker.sock; then
        pass "README: the package tried against the emulator gives a token"
    else
        fail "README: the package tried against the emulator gives a token" "$(tail -5 serve.log)"
    fi
    kill "$served" "$emulator"
    wait "$served" "$emulator" 2>/dev/null
    cd / || return

    useradd --system --no-create-home --shell /usr/sbin/nologin --groups maskinporten notifier
    useradd --system --no-create-home --shell /usr/sbin/nologin --groups maskinporten stranger
    useradd --system --no-create-home --shell /usr/sbin/nologin outsider

    # The example as shipped, with a key keygen makes, checked as the unit runs check-config.
    run "keygen makes a key" maskinporten-broker keygen --out /root/example.jwk
    run "check-config passes on the shipped example, the key loaded as the unit's credential" \
        systemd-run --wait --pipe --quiet -p LoadCredential=notifications-jwk:/root/example.jwk \
        /usr/bin/maskinporten-brokerd check-config --config /usr/share/maskinporten-broker/broker.example.yaml

    # The local Maskinporten and Altinn emulator, from the package, up before the daemon.
    cat > /etc/systemd/system/e2e-emulator.service <<'EOF'
[Unit]
Description=Maskinporten and Altinn emulator for the end-to-end test
Before=maskinporten-broker.service

[Service]
ExecStart=/usr/bin/maskinporten-brokerd emulator --listen 127.0.0.1:18080 --state-dir /var/lib/e2e-emulator
ExecStartPost=/bin/sh -c 'until curl -sf http://127.0.0.1:18080/_emulator/stats >/dev/null; do sleep 0.1; done'

[Install]
WantedBy=multi-user.target
EOF
    systemctl daemon-reload
    run "the emulator starts" systemctl enable --now e2e-emulator.service
    run "the test client is registered with the emulator" curl -sf -X POST --data "{\"client_id\":\"e2e\",\"scopes\":[\"altinn:serviceowner/notifications.create\"],\"keys\":[$(cat /e2e/public.jwk)]}" http://127.0.0.1:18080/_emulator/clients

    # As README "Install" says: the configuration, the key as the unit's credential, enable.
    config "" > /etc/maskinporten-broker/broker.yaml
    chown root:maskinporten-broker /etc/maskinporten-broker/broker.yaml
    chmod 0640 /etc/maskinporten-broker/broker.yaml
    install -m 0600 /e2e/notifications.jwk /etc/maskinporten-broker/credentials/notifications.jwk
    run "check-config by hand reads the key where the unit loads it from" maskinporten-broker check-config
    run "the units are enabled" systemctl enable maskinporten-broker.socket maskinporten-broker.service
}

# token_of PROFILE: the token the allowed user is given now (empty when not 200)
token_of() {
    [ "$(as notifier /v1/token/$1)" = 200 ] && sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p' /tmp/body
}
# issued: the tokens the emulator has issued since it started
issued() { curl -sf http://127.0.0.1:18080/_emulator/stats | sed -n 's/.*"tokens_issued" *: *\([0-9]*\).*/\1/p'; }

tokens_phase() {
    # Tokens through restarts: systemd's file descriptor store, with upstream down. Two profiles
    # (the reload above added "second"); the watchdog drop-in (2 s) is still in place.
    wait_for 15 serving
    local first second pid fd held
    first=$(token_of notifications)
    second=$(token_of second)
    wait_for 5 test "$(show $unit NFileDescriptorStore)" = 1
    equal "the daemon keeps one descriptor in systemd's store" "$(show $unit NFileDescriptorStore)" 1
    fd=$(ls -l /proc/1/fd | awk '/memfd:tokens/ { print $9; exit }')
    if [ -n "$fd" ]; then pass "PID 1 holds it, a memfd named tokens"; else fail "PID 1 holds it, a memfd named tokens" "$(ls -l /proc/1/fd | grep memfd)"; fi
    # F_GET_SEALS (1034) through perl, which even a minimal Debian has: write, grow, shrink and seal (15).
    equal "the memfd is sealed against write, grow, shrink and further seals (F_GET_SEALS)" \
        "$(perl -e 'open(my $f, "<", $ARGV[0]) or die; print fcntl($f, 1034, 0) + 0' /proc/1/fd/"$fd")" 15

    systemctl stop e2e-emulator.service
    run "with upstream down, systemctl restart succeeds" systemctl restart $unit
    equal "after the restart, the same token is served (restored, not fetched)" "$(token_of notifications)" "$first"
    equal "the other profile's token too" "$(token_of second)" "$second"
    as notifier /v1/profiles >/dev/null
    run "/v1/profiles says the tokens were restored" grep -q '"origin":"restored"' /tmp/body
    run "one journal line says what was restored" sh -c "journalctl -b -u $unit -o cat --no-pager | grep 'tokens restored from systemd' | tail -1 | grep -q 'restored=2'"

    pid=$(show $unit MainPID)
    kill -KILL "$pid"
    if wait_for 20 sh -c "[ \"\$(systemctl show -p MainPID --value $unit)\" != $pid ] && systemctl is-active -q $unit"; then
        pass "with upstream down, a killed daemon is restarted"
    else
        fail "with upstream down, a killed daemon is restarted" "$(show $unit ActiveState)"
    fi
    equal "after kill -9, the same token is served" "$(token_of notifications)" "$first"

    pid=$(show $unit MainPID)
    kill -STOP "$pid"
    if wait_for 30 sh -c "[ \"\$(systemctl show -p MainPID --value $unit)\" != $pid ] && systemctl is-active -q $unit && curl -sf --unix-socket $socket http://localhost/healthz"; then
        pass "with upstream down, the watchdog replaces a frozen daemon"
    else
        fail "with upstream down, the watchdog replaces a frozen daemon" "$(show $unit ActiveState)"
    fi
    equal "after the watchdog, the same token is served" "$(token_of notifications)" "$first"

    # A profile whose client changed: its token is discarded (it would be another client's); the
    # other profile's is restored.
    cp /etc/maskinporten-broker/broker.yaml /root/two.yaml
    sed -i '/^  second:/,$ s/client_id: e2e/client_id: e2e-other/' /etc/maskinporten-broker/broker.yaml
    # Five starts in 30 s is the unit's limit; this test makes more on purpose.
    systemctl reset-failed $unit
    systemctl restart $unit
    wait_for 10 test "$(as notifier /v1/token/notifications)" = 200
    equal "a changed client id: the other profile is still restored" "$(token_of notifications)" "$first"
    equal "a changed client id: that profile's token is not served" "$(as notifier /v1/token/second)" 503
    run "the journal says why it was discarded" sh -c "journalctl -b -u $unit -o cat --no-pager | grep 'tokens restored from systemd' | tail -1 | grep -q 'second: identity_changed'"
    cp /root/two.yaml /etc/maskinporten-broker/broker.yaml
    systemctl reset-failed $unit
    systemctl restart $unit

    # Nowhere on disk, nowhere in the journal (but this script's own copies of the answers).
    rm -f /tmp/body /tmp/response
    if grep -rqsF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev "$first" / ; then
        fail "the token is in no file" "$(grep -rlsF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev "$first" / | head -3)"
    else
        pass "the token is in no file"
    fi
    if journalctl -b --no-pager -o cat | grep -qF "$first"; then fail "the token is in no journal line" "found"; else pass "the token is in no journal line"; fi

    # Upstream back: nothing was asked of it for the restored profile, while it was down or
    # since. (Profile second, whose token was discarded above, holds none: it fetches as soon as
    # upstream answers, so the emulator's count alone depends on when its retry falls.)
    systemctl start e2e-emulator.service
    wait_for 10 sh -c "curl -sf http://127.0.0.1:18080/_emulator/stats >/dev/null"
    sleep 1
    equal "the emulator, back, was asked for no token for the restored profile" \
        "$(journalctl _SYSTEMD_INVOCATION_ID="$(show $unit InvocationID)" -o cat --no-pager | grep 'token obtained' | grep -c 'profile=notifications')" 0
    equal "the restored token is still the one served" "$(token_of notifications)" "$first"

    # stop, then start: systemd empties the store; the daemon fetches anew.
    systemctl stop $unit
    equal "systemctl stop empties the store" "$(show $unit NFileDescriptorStore)" 0
    systemctl reset-failed $unit
    systemctl start $unit
    wait_for 15 serving
    held=$(token_of notifications)
    if [ -n "$held" ] && [ "$held" != "$first" ]; then pass "after stop and start, a new token is fetched"; else fail "after stop and start, a new token is fetched" "$held"; fi
}

tpm_phase() {
    # A key in the TPM under the unit. swtpm stands in for the TPM: a socket of group tss, mode
    # 0660, as Debian's tpm-udev makes /dev/tpmrm0 (and the tss group) on a host with one.
    getent group tss >/dev/null || groupadd --system tss
    local tcti=swtpm:path=/run/swtpm/sock
    systemd-run --quiet --unit=e2e-swtpm -p Group=tss -p RuntimeDirectory=swtpm -p RuntimeDirectoryMode=0750 \
        swtpm socket --tpm2 --server type=unixio,path=/run/swtpm/sock,mode=0660 --ctrl type=unixio,path=/run/swtpm/sock.ctrl,mode=0660 \
        --tpmstate dir=/run/swtpm --flags not-need-init,startup-clear
    wait_for 10 test -S /run/swtpm/sock
    local key=/etc/maskinporten-broker/tpm.tss2.pem kid
    maskinporten-broker keygen --tpm2 --tcti $tcti --out $key > /tmp/tpm-public.json 2>/tmp/tpm-keygen.log
    kid=$(sed -n 's/.*"kid":"\([^"]*\)".*/\1/p' /tmp/tpm-public.json)
    if [ -n "$kid" ] && head -1 $key | grep -q "BEGIN TSS2 PRIVATE KEY"; then pass "keygen --tpm2 makes a key in the TPM"; else fail "keygen --tpm2 makes a key in the TPM" "$(cat /tmp/tpm-keygen.log)"; fi
    chown root:maskinporten-broker $key
    chmod 0640 $key
    curl -sf -o /dev/null -X POST --data "{\"client_id\":\"e2e-tpm\",\"scopes\":[\"altinn:serviceowner/notifications.create\"],\"keys\":$(cat /tmp/tpm-public.json)}" \
        http://127.0.0.1:18080/_emulator/clients
    config "  tpm:
    environment: local
    client_id: e2e-tpm
    scopes: [altinn:serviceowner/notifications.create]
    key: { provider: tpm2, uri: \"file:$key\", tcti: \"$tcti\", kid: $kid }
    allow: { users: [notifier] }" > /etc/maskinporten-broker/broker.yaml

    # Without the drop-in the service's user may not reach the TPM: check-config, by hand as
    # root, says so with the fix, and the service refuses to start, saying why.
    local check
    check=$(maskinporten-broker check-config 2>&1)
    if [ $? = 1 ] && echo "$check" | grep -qF "/run/swtpm/sock cannot be opened by maskinporten-broker, the user maskinporten-broker.service runs as: the directory /run/swtpm (root:tss, mode 0750) does not let it through; add the TPM drop-in (SupplementaryGroups=tss): install -D -m 0644 /usr/share/maskinporten-broker/tpm.conf"; then
        pass "check-config by hand says the service's user cannot reach the TPM, with the drop-in as the fix"
    else
        fail "check-config by hand says the service's user cannot reach the TPM, with the drop-in as the fix" "$check"
    fi
    systemctl restart $unit >/dev/null 2>&1
    sleep 3
    equal "without the drop-in the service refuses the TPM profile (exit 78)" "$(show $unit ExecMainStatus)" 78
    if journalctl -b -u $unit -o cat --no-pager | grep -q "the TPM did not answer ($tcti): check that the device exists and that the daemon's user may open it"; then
        pass "the journal says the TPM did not answer, and what to check"
    else
        fail "the journal says the TPM did not answer, and what to check" "$(journalctl -b -u $unit -o cat --no-pager | tail -5)"
    fi

    # The drop-in, as docs/systemd.md says to put it in place.
    install -D -m 0644 /usr/share/maskinporten-broker/tpm.conf /etc/systemd/system/$unit.d/tpm.conf
    systemctl daemon-reload
    run "check-config passes with the TPM drop-in" maskinporten-broker check-config
    equal "the drop-in gives the service the tss group" "$(show $unit SupplementaryGroups)" tss
    # (char-rtc r: what ProtectClock=yes in the unit allows; systemctl shows one a line.)
    equal "the drop-in allows /dev/tpmrm0 and no other device" "$(show $unit DeviceAllow | tr '\n' ' ' | sed 's/ $//')" "char-rtc r /dev/tpmrm0 rw"
    equal "the device policy stays closed" "$(show $unit DevicePolicy)" closed
    systemctl reset-failed $unit maskinporten-broker.socket
    systemctl start maskinporten-broker.socket $unit
    if wait_for 15 test "$(as notifier /v1/token/tpm)" = 200; then pass "with the drop-in, the TPM profile is served"; else fail "with the drop-in, the TPM profile is served" "$(cat /tmp/body) $(journalctl -b -u $unit -o cat --no-pager | tail -5)"; fi
    if curl -sf http://127.0.0.1:18080/_emulator/stats | grep -q "\"$kid\""; then pass "the emulator checked a grant the TPM signed"; else fail "the emulator checked a grant the TPM signed" "$(curl -sf http://127.0.0.1:18080/_emulator/stats)"; fi
    as notifier /v1/profiles > /dev/null
    run "/v1/profiles says the key is in the TPM" grep -qF '"location":"tpm"' /tmp/body
    local exposure
    exposure=$(systemd-analyze security $unit 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    if [ -n "$exposure" ] && awk "BEGIN { exit !($exposure <= 2.0) }"; then pass "systemd-analyze security with the TPM drop-in: $exposure"; else fail "systemd-analyze security with the TPM drop-in at most 2.0" "$exposure"; fi
    if grep -rlE "BEGIN (RSA )?PRIVATE KEY|\"d\":" /var/lib/maskinporten-broker /etc/maskinporten-broker/tpm.tss2.pem 2>/dev/null | grep -q .; then
        fail "no private key in what the daemon keeps" "$(grep -rlE "BEGIN (RSA )?PRIVATE KEY|\"d\":" /var/lib/maskinporten-broker)"
    else
        pass "no private key in what the daemon keeps"
    fi

    rm -rf /etc/systemd/system/$unit.d
    systemctl stop e2e-swtpm
    config "" > /etc/maskinporten-broker/broker.yaml
    systemctl daemon-reload
    systemctl restart $unit
}

checks_phase() {
    # After a boot, as every host meets it.
    wait_for 30 test "$(show $unit ActiveState)" = active
    equal "after boot the socket is active" "$(show maskinporten-broker.socket ActiveState)" active
    equal "after boot the service runs" "$(show $unit SubState)" running
    local status
    status=$(show $unit StatusText)
    equal "after boot the service sent READY=1 with its status" "${status%%:*}" "serving 1 profile"
    equal "after boot the socket keeps its group and mode" "$(owners $socket)" "maskinporten-broker maskinporten 660"
    equal "after boot the socket's directory is the socket unit's" "$(owners /run/maskinporten-broker)" "root root 755"

    equal "a member of the group on the allow list gets a token" "$(as notifier /v1/token/notifications)" 200
    run "the answer holds a token" grep -q '"access_token":"ey' /tmp/body
    run "maskinporten-broker token works for the allowed user" runuser -u notifier -- maskinporten-broker token notifications
    # The gateway under the unit's sandbox: an order sent to the emulator's Notifications API.
    local orders=/v1/api/notifications/notifications/api/v1/future/orders
    local order="{\"idempotencyId\":\"e2e-$(date +%s%N)\",\"recipient\":{\"recipientOrganization\":{\"orgNumber\":\"991825827\",\"channelSchema\":\"Email\"}}}"
    equal "an order sent through the gateway is accepted (201)" "$(as_post notifier $orders "$order")" 201
    run "the gateway's answer is the order's, with no token in it" bash -c 'grep -q notificationOrderId /tmp/body && ! grep -q "\"ey" /tmp/body'
    equal "a user not on the allow list cannot send through the gateway" "$(as_post stranger $orders "$order")" 403
    wait_for 5 bash -c "journalctl -u $unit --no-pager | grep -q 'api request forwarded'" || true
    run "the forwarded call has its audit line in the journal" bash -c "journalctl -u $unit --no-pager | grep 'api request forwarded' | grep -q 'status=201'"
    equal "a member of the group not on the allow list gets 403" "$(as stranger /v1/token/notifications)" 403
    run "the 403 says access_denied" grep -q '"error":"access_denied"' /tmp/body
    local code
    runuser -u outsider -- curl -s -o /dev/null --max-time 5 --unix-socket $socket http://localhost/healthz
    code=$?
    equal "a user outside the group cannot connect" "$code" 7

    run "the key is the unit's credential (LoadCredential=)" test -f /run/credentials/$unit/notifications-jwk
    equal "the state directory for key rotation is the service's own (StateDirectory=)" "$(owners /var/lib/maskinporten-broker)" "maskinporten-broker maskinporten-broker 700"
    if runuser -u maskinporten-broker -- cat /etc/maskinporten-broker/credentials/notifications.jwk >/dev/null 2>&1; then
        fail "the daemon's user cannot read the key file itself" "it can"
    else
        pass "the daemon's user cannot read the key file itself"
    fi

    # Reload: a changed configuration, the same process.
    local pid reload
    pid=$(show $unit MainPID)
    config "  second:
    environment: local
    client_id: e2e
    scopes: [altinn:serviceowner/notifications.create]
    key: { encoded_jwk_credential: notifications-jwk }
    allow: { users: [notifier] }" > /etc/maskinporten-broker/broker.yaml
    if reload=$(systemctl reload $unit 2>&1); then
        pass "systemctl reload succeeds"
    else
        fail "systemctl reload succeeds" "$reload $(journalctl -b -u $unit -o cat --no-pager | tail -8)"
    fi
    if wait_for 15 test "$(as notifier /v1/token/second)" = 200; then pass "the reloaded configuration is served"; else fail "the reloaded configuration is served" "$(cat /tmp/body)"; fi
    equal "reload keeps the process" "$(show $unit MainPID)" "$pid"

    run "systemctl restart succeeds" systemctl restart $unit
    wait_for 15 serving
    equal "after a restart the socket keeps its group and mode" "$(owners $socket)" "maskinporten-broker maskinporten 660"

    systemctl stop $unit maskinporten-broker.socket
    rm -rf /run/maskinporten-broker
    run "the socket unit starts again" systemctl start maskinporten-broker.socket
    equal "a recreated directory gets the same owner and mode" "$(owners /run/maskinporten-broker)" "root root 755"
    equal "a recreated socket gets the same group and mode" "$(owners $socket)" "maskinporten-broker maskinporten 660"

    run "systemctl stop of the service succeeds" systemctl stop $unit
    equal "after a stop the socket still listens" "$(show maskinporten-broker.socket SubState)" listening
    equal "the first connection after a stop starts the service (socket activation)" "$(as notifier /v1/token/notifications)" 200
    equal "socket activation started the service" "$(show $unit ActiveState)" active

    local exposure
    exposure=$(systemd-analyze security $unit 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    if [ -n "$exposure" ] && awk "BEGIN { exit !($exposure <= 1.5) }"; then pass "systemd-analyze security: $exposure"; else fail "systemd-analyze security at most 1.5" "$exposure"; fi

    # The upgrade, with a client asking all the while, and upstream down: the new daemon starts
    # with the tokens the old one kept in systemd's file descriptor store.
    pid=$(show $unit MainPID)
    wait_for 5 test "$(show $unit NFileDescriptorStore)" = 1
    systemctl stop e2e-emulator.service
    (
        end=$((SECONDS + 12))
        while [ "$SECONDS" -lt "$end" ]; do
            runuser -u notifier -- curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 5 --unix-socket $socket http://localhost/v1/token/notifications >> /tmp/upgrade-client
            sleep 0.05
        done
    ) &
    local client=$!
    sleep 2
    run "apt upgrades the package" apt-get install -y --no-install-recommends /e2e/new.deb
    wait $client
    systemctl start e2e-emulator.service
    equal "the new version is installed" "$(dpkg-query -W -f='${Version}' maskinporten-broker)" "$(cat /e2e/new.version)"
    if [ "$(show $unit MainPID)" != "$pid" ] && [ "$(show $unit ActiveState)" = active ]; then
        pass "the upgrade restarted the running daemon"
    else
        fail "the upgrade restarted the running daemon" "pid $pid -> $(show $unit MainPID), $(show $unit ActiveState)"
    fi
    local answers failed slowest
    answers=$(wc -l < /tmp/upgrade-client)
    failed=$(grep -vc '^200 ' /tmp/upgrade-client)
    slowest=$(sort -k2 -n /tmp/upgrade-client | tail -1 | cut -d' ' -f2)
    if [ "$answers" -ge 50 ] && [ "$failed" -eq 0 ]; then
        pass "clients kept getting tokens across the upgrade, upstream down ($answers answers, slowest $slowest s)"
    else
        fail "clients kept getting tokens across the upgrade" "$answers answers, $failed not 200: $(grep -v '^200 ' /tmp/upgrade-client | head -5)"
    fi

    # Nothing above is worth a warning: start, reload, restart, stop, activation, upgrade. Wait
    # past libdispatch's idle worker timeout (5 s) first, which used to log every few seconds.
    sleep 8
    equal "the watchdog did not fire in normal operation" "$(show $unit NRestarts)" 0
    # libdispatch sets each new worker thread's nice value and writes to syslog when it cannot:
    # errno=1 is the system call filter (the unit once denied setpriority: a line every few
    # seconds, idle or not), errno=13 a value below what RLIMIT_NICE allows (LimitNICE=-4 lets its
    # timer and event threads have their -4 and -2). A machine whose PID 1 may not raise
    # RLIMIT_NICE (no CAP_SYS_RESOURCE, as some CI containers) leaves the limit at 0: there, and
    # only there, those threads' lines remain, written when a process starts them, never idle.
    equal "the unit asks for LimitNICE=-4" "$(show $unit LimitNICE)" 24
    local limit priority before after
    limit=$(awk '/Max nice priority/ { print $4 }' /proc/"$(show $unit MainPID)"/limits)
    priority() { journalctl -b -u $unit -o cat --no-pager | grep -c "Failed to set thread priority" || true; }
    before=$(priority)
    sleep 15
    after=$(priority)
    journalctl -b -u $unit -o short-monotonic --no-pager | grep -e "Failed to set thread priority" -e "ready status" -e "Starting" > /e2e/priority.log || true
    equal "no thread priority is denied by the system call filter" "$(journalctl -b -u $unit -o cat --no-pager | grep -c 'Failed to set thread priority.*errno=1$' || true)" 0
    equal "no thread priority line while the daemon idles (15 s)" "$after" "$before"
    if [ "$limit" = 24 ]; then
        equal "no thread priority line at all (LimitNICE in effect)" "$after" 0
    else
        pass "LimitNICE cannot take effect on this machine (RLIMIT_NICE stays $limit): $after lines from libdispatch's timer and event threads at process starts"
    fi
    local noise
    noise=$(journalctl -b -p warning -u $unit -u maskinporten-broker.socket -o cat --no-pager | grep -v "Failed to set thread priority")
    if [ -z "$noise" ]; then pass "the journal holds no other warning or error from the broker"; else fail "the journal holds no other warning or error from the broker" "$noise"; fi

    pid=$(show $unit MainPID)
    # A reload of a configuration that would be refused fails where the operator looks (the
    # exit status of systemctl reload), and the running configuration keeps serving.
    cp /etc/maskinporten-broker/broker.yaml /root/good.yaml
    printf 'profiles:\n  notifications: [\n' > /etc/maskinporten-broker/broker.yaml
    if reload=$(systemctl reload $unit 2>&1); then
        fail "systemctl reload of a broken configuration fails" "it exited 0: $reload"
    else
        pass "systemctl reload of a broken configuration fails"
    fi
    equal "a refused reload keeps the process" "$(show $unit MainPID)" "$pid"
    equal "a refused reload keeps serving" "$(as notifier /v1/token/notifications)" 200
    if journalctl -b -u $unit -o cat --no-pager | grep -q "error: /etc/maskinporten-broker/broker.yaml:.*YAML syntax error"; then
        pass "the journal says why the reload was refused"
    else
        fail "the journal says why the reload was refused" "$(journalctl -b -u $unit -o cat --no-pager | tail -5)"
    fi
    cp /root/good.yaml /etc/maskinporten-broker/broker.yaml

    run "systemctl stop is clean" systemctl stop $unit
    equal "the stop ended in success" "$(show $unit Result)" success
    equal "the daemon exited 0" "$(show $unit ExecMainStatus)" 0

    # A crash: Restart=on-failure brings it back.
    systemctl start $unit
    pid=$(show $unit MainPID)
    kill -KILL "$pid"
    if wait_for 20 sh -c "[ \"\$(systemctl show -p NRestarts --value $unit)\" = 1 ] && systemctl is-active -q $unit"; then
        pass "a killed daemon is restarted"
    else
        fail "a killed daemon is restarted" "NRestarts $(show $unit NRestarts), $(show $unit ActiveState)"
    fi
    if wait_for 15 serving; then pass "the restarted daemon serves"; else fail "the restarted daemon serves" "$(cat /tmp/body)"; fi

    # A frozen daemon: the watchdog ends it. A shorter WatchdogSec for the test than the 30 s shipped.
    mkdir -p /run/systemd/system/$unit.d
    printf '[Service]\nWatchdogSec=2s\nTimeoutAbortSec=2s\n' > /run/systemd/system/$unit.d/e2e-watchdog.conf
    systemctl daemon-reload
    systemctl restart $unit
    wait_for 15 serving
    local restarts
    restarts=$(show $unit NRestarts)
    kill -STOP "$(show $unit MainPID)"
    if wait_for 30 sh -c "journalctl -b -u $unit -o cat | grep -q 'Watchdog timeout'"; then
        pass "the watchdog fires on a frozen daemon"
    else
        fail "the watchdog fires on a frozen daemon" "$(journalctl -b -u $unit -o cat | tail -5)"
    fi
    if wait_for 30 sh -c "[ \"\$(systemctl show -p NRestarts --value $unit)\" -gt $restarts ] && curl -sf --unix-socket $socket http://localhost/healthz"; then
        pass "the frozen daemon is replaced and serves"
    else
        fail "the frozen daemon is replaced and serves" "$(show $unit ActiveState)"
    fi
    tokens_phase
    rm -rf /run/systemd/system/$unit.d
    systemctl daemon-reload
    tpm_phase

    # The operator's first mistakes, under systemd. A key file root made with keygen (0600) and
    # named by encoded_jwk_file: check-config, by hand as root, checks it as the service's user.
    systemctl reset-failed $unit maskinporten-broker.socket
    config "" | sed 's|key: { encoded_jwk_credential: notifications-jwk }|key: { encoded_jwk_file: /etc/maskinporten-broker/credentials/notifications.jwk }|' \
        > /etc/maskinporten-broker/broker.yaml
    local check
    check=$(maskinporten-broker check-config 2>&1)
    if [ $? = 1 ] && echo "$check" | grep -q "cannot be read by maskinporten-broker, the user maskinporten-broker.service runs as: the directory /etc/maskinporten-broker/credentials (root:root, mode 0700)"; then
        pass "check-config by hand refuses a key in root's credentials directory, naming the service's user"
    else
        fail "check-config by hand refuses a key in root's credentials directory, naming the service's user" "$check"
    fi
    install -m 0600 /e2e/notifications.jwk /etc/maskinporten-broker/notifications.jwk
    sed -i 's|/etc/maskinporten-broker/credentials/notifications.jwk|/etc/maskinporten-broker/notifications.jwk|' /etc/maskinporten-broker/broker.yaml
    check=$(maskinporten-broker check-config 2>&1)
    if [ $? = 1 ] && echo "$check" | grep -qF "run: chown root:maskinporten-broker /etc/maskinporten-broker/notifications.jwk && chmod 0640 /etc/maskinporten-broker/notifications.jwk"; then
        pass "check-config by hand refuses a root-only key file, naming the service's user and the fix"
    else
        fail "check-config by hand refuses a root-only key file, naming the service's user and the fix" "$check"
    fi

    # What check-config refused, the service refuses: failed at once (exit 78), not restarted.
    restarts=$(show $unit NRestarts)
    systemctl restart $unit >/dev/null 2>&1
    sleep 7
    equal "a refused configuration leaves the unit failed" "$(show $unit ActiveState)" failed
    equal "the daemon exited 78 (EX_CONFIG)" "$(show $unit ExecMainStatus)" 78
    equal "a refused configuration is not restarted" "$(show $unit NRestarts)" "$restarts"
    local named
    named=$(journalctl -b -u $unit -o cat --no-pager | grep -cF '/etc/maskinporten-broker/notifications.jwk cannot be read by maskinporten-broker, the user this runs as')
    if [ "$named" = 1 ]; then
        pass "the journal names the service's user, once"
    else
        fail "the journal names the service's user, once" "$named times: $(journalctl -b -u $unit -o short-monotonic --no-pager | tail -25)"
    fi
    # A client meanwhile (socket activation tries once more, and fails the same way) is told
    # where to look.
    local health
    health=$(runuser -u notifier -- maskinporten-broker health 2>&1)
    if [ $? = 1 ] && echo "$health" | grep -q "systemctl status maskinporten-broker"; then
        pass "a client of a daemon that fails to start is pointed at systemctl status"
    else
        fail "a client of a daemon that fails to start is pointed at systemctl status" "$health"
    fi

    # The fix check-config gave makes it pass, and then the service starts.
    chown root:maskinporten-broker /etc/maskinporten-broker/notifications.jwk
    chmod 0640 /etc/maskinporten-broker/notifications.jwk
    run "check-config passes with the fix it gave" maskinporten-broker check-config
    systemctl reset-failed $unit maskinporten-broker.socket
    systemctl start maskinporten-broker.socket $unit
    if wait_for 15 serving; then pass "check-config's ok means the service starts"; else fail "check-config's ok means the service starts" "$(show $unit ActiveState) $(cat /tmp/body)"; fi

    # Removal keeps the configuration; purge removes it.
    run "apt removes the package" apt-get remove -y maskinporten-broker
    equal "removal stops the service" "$(show $unit ActiveState)" inactive
    run "removal removes the executables" test ! -e /usr/bin/maskinporten-brokerd
    run "removal keeps /etc/maskinporten-broker" test -f /etc/maskinporten-broker/broker.yaml
    run "apt purges the package" apt-get purge -y maskinporten-broker
    run "purge removes /etc/maskinporten-broker" test ! -e /etc/maskinporten-broker
}

case "$phase" in
install) install_phase ;;
checks) checks_phase ;;
*) echo "unknown phase $phase" >> "$results" ;;
esac
# The daemon's journal, for the host to show when a check failed.
journalctl -b -u $unit -o short-monotonic --no-pager > "/e2e/journal-$phase.log" 2>&1
echo done >> "$results"
