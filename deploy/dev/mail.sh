#!/usr/bin/env bash
# Mail servers for the email channel's tests, on loopback in a throwaway directory: source
# this file, then call `start_mail DIR`; `stop_mail` stops what was started.
#
#   SMTP  aiosmtpd (AUTH PLAIN/LOGIN, required, no TLS) relaying each message over LMTP to
#   LMTP  Dovecot, which writes the Maildirs and wakes IMAP IDLE clients;
#   IMAP  Dovecot (IDLE, plain login, no TLS).
#
# Users (password "$JOBERS_TEST_MAIL_PASSWORD", default "secret"):
#   recruiter@jobers.test, reply@jobers.test, applicant@example.test
# Mail to user+detail@… lands in the folder "detail" of user@… (created on delivery), so
# each test reads a folder of its own; reply+<token>@jobers.test lands in reply's "<token>".
#
# Exports JOBERS_TEST_SMTP_PORT, JOBERS_TEST_IMAP_PORT and JOBERS_TEST_MAIL_PASSWORD.
# Installs what it needs on Debian (dovecot-imapd, dovecot-lmtpd, python3-aiosmtpd, or
# aiosmtpd from PyPI where the Debian package is missing). Works as root or as a normal user;
# nothing listens beyond 127.0.0.1 and /etc/dovecot is never read.

# Reuse log, apt_install and free_port of services.sh.
if ! declare -F apt_install >/dev/null; then
  # shellcheck source=deploy/dev/services.sh
  source "$(dirname "${BASH_SOURCE[0]}")/services.sh"
fi

STARTED_MAIL_PIDS=()

# _mail_python — prints a Python interpreter that can import aiosmtpd, installing it if needed.
_mail_python() {
  if python3 -c 'import aiosmtpd' 2>/dev/null; then
    python3 -c 'import sys; print(sys.executable)'
    return 0
  fi
  if apt_install python3 python3-aiosmtpd 2>/dev/null && /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null; then
    echo /usr/bin/python3
    return 0
  fi
  log "installing aiosmtpd from PyPI"
  python3 -m pip install --quiet aiosmtpd >&2 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages aiosmtpd >&2 \
    || return 1
  python3 -c 'import sys; print(sys.executable)'
}

_mail_wait_port() {
  local _
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# start_mail DIR — SMTP, LMTP and IMAP on 127.0.0.1 with config, sockets, logs and Maildirs in DIR.
start_mail() {
  local dir="$1"
  apt_install dovecot-imapd dovecot-lmtpd
  local py
  py=$(_mail_python) || { echo "aiosmtpd could not be installed" >&2; return 1; }
  mkdir -p "$dir"
  dir=$(realpath "$dir")
  mkdir -p "$dir/run" "$dir/state"

  local login internal mail_user mail_group
  if [ "$(id -u)" -eq 0 ]; then
    # Dovecot's login and internal processes must not be root, nor may the mail uid be 0;
    # they must reach DIR.
    login=dovenull
    internal=dovecot
    mail_user=nobody
    mail_group=nogroup
    chmod o+x "$(dirname "$dir")" "$dir"
  else
    login=$(id -un)
    internal=$(id -un)
    mail_user=$(id -un)
    mail_group=$(id -gn)
  fi
  install -d -o "$mail_user" -g "$mail_group" "$dir/mail"

  local smtp_port lmtp_port imap_port
  # Three distinct free ports (held open together while chosen).
  read -r smtp_port lmtp_port imap_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
  export JOBERS_TEST_MAIL_PASSWORD="${JOBERS_TEST_MAIL_PASSWORD:-secret}"

  cat >"$dir/dovecot.conf" <<CONF
protocols = imap lmtp
listen = 127.0.0.1
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = $internal
default_internal_group = $(id -gn "$internal")
default_login_user = $login
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $dir/users
  default_fields = uid=$mail_user gid=$mail_group home=$dir/mail/%d/%n
}
mail_location = maildir:~/Maildir
recipient_delimiter = +
service anvil {
  chroot =
  # No growing auth penalty for 127.0.0.1: the wrong-password test must not slow the others.
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $lmtp_port
  }
}
protocol lmtp {
  postmaster_address = postmaster@jobers.test
  lmtp_save_to_detail_mailbox = yes
  lda_mailbox_autocreate = yes
}
protocol imap {
  mail_max_userip_connections = 100
}
CONF
  # user:{scheme}password:uid:gid:gecos:home:shell:extra (empty fields: userdb default_fields)
  local u
  : >"$dir/users"
  for u in recruiter@jobers.test reply@jobers.test applicant@example.test; do
    printf '%s:{PLAIN}%s::::::\n' "$u" "$JOBERS_TEST_MAIL_PASSWORD" >>"$dir/users"
  done
  chmod 0644 "$dir/users"

  cat >"$dir/smtp_relay.py" <<'PY'
"""SMTP on 127.0.0.1:<port> (aiosmtpd, AUTH required, checked against the Dovecot users
file) -> relays each message to Dovecot LMTP, which writes the Maildir with the right owner.
One LMTP transaction per recipient (smtplib.LMTP mis-reads multi-recipient DATA replies)."""
import asyncio, smtplib, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

SMTP_PORT, LMTP_PORT, USERS = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

def passwords():
    out = {}
    with open(USERS) as f:
        for line in f:
            user, _, rest = line.strip().partition(":")
            if user:
                out[user] = rest.split(":", 1)[0].removeprefix("{PLAIN}")
    return out

def authenticator(server, session, envelope, mechanism, auth_data):
    if isinstance(auth_data, LoginPassword):
        user, password = auth_data.login.decode(), auth_data.password.decode()
        if user in passwords() and passwords()[user] == password:
            return AuthResult(success=True)
    return AuthResult(success=False, handled=False)

class Relay:
    async def handle_DATA(self, server, session, envelope):
        def deliver():
            refused = {}
            with smtplib.LMTP("127.0.0.1", LMTP_PORT) as l:
                for rcpt in envelope.rcpt_tos:
                    try:
                        l.sendmail(envelope.mail_from, [rcpt], envelope.original_content)
                    except smtplib.SMTPRecipientsRefused as e:   # unknown user -> 550 from Dovecot
                        refused.update(e.recipients)
            return refused
        try:
            refused = await asyncio.get_running_loop().run_in_executor(None, deliver)
        except Exception as e:
            return f"451 LMTP delivery failed: {e}"
        if len(refused) == len(envelope.rcpt_tos):
            return "550 " + "; ".join(f"{r}: {c} {m.decode()}" for r, (c, m) in refused.items())
        return "250 OK" + (f" (not delivered to {', '.join(refused)})" if refused else "")

c = Controller(Relay(), hostname="127.0.0.1", port=SMTP_PORT, authenticator=authenticator,
               auth_required=True, auth_require_tls=False)
c.start(); print(f"SMTP relay on 127.0.0.1:{SMTP_PORT} -> LMTP {LMTP_PORT}", flush=True)
asyncio.new_event_loop().run_forever()          # stop with SIGTERM/SIGINT
PY

  local dovecot_bin
  dovecot_bin=$(command -v dovecot || echo /usr/sbin/dovecot)
  "$dovecot_bin" -F -c "$dir/dovecot.conf" >"$dir/dovecot.out" 2>&1 &
  STARTED_MAIL_PIDS+=("$!")
  "$py" "$dir/smtp_relay.py" "$smtp_port" "$lmtp_port" "$dir/users" >"$dir/relay.log" 2>&1 &
  STARTED_MAIL_PIDS+=("$!")
  if ! _mail_wait_port "$imap_port" || ! _mail_wait_port "$lmtp_port" || ! _mail_wait_port "$smtp_port"; then
    echo "the mail servers did not start:" >&2
    cat "$dir/dovecot.out" "$dir/dovecot.log" "$dir/relay.log" >&2 2>/dev/null || true
    stop_mail
    return 1
  fi
  export JOBERS_TEST_SMTP_PORT="$smtp_port"
  export JOBERS_TEST_IMAP_PORT="$imap_port"
  log "mail: SMTP on 127.0.0.1:$smtp_port, IMAP on 127.0.0.1:$imap_port (users in $dir/users)"
}

# stop_mail — stops the servers start_mail started (killing Dovecot's master stops its tree).
stop_mail() {
  local pid
  for pid in "${STARTED_MAIL_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED_MAIL_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  STARTED_MAIL_PIDS=()
}
