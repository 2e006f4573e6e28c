#!/usr/bin/env bash
# Installs the Debian packages the test suite uses as real peers, only when missing.
set -euo pipefail
need=()
command -v git >/dev/null || need+=(git)
command -v gpg >/dev/null || need+=(gnupg)
command -v age >/dev/null || need+=(age)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v kubectl >/dev/null || need+=(kubernetes-client)
[ -x /usr/lib/git-core/git-http-backend ] || need+=(git)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v docker-registry >/dev/null || need+=(docker-registry)  # the CNCF distribution registry v2
command -v htpasswd >/dev/null || need+=(apache2-utils)
[ -x /usr/bin/chromium ] || need+=(chromium)  # the dashboard's browser tests (Playwright drives it)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing system packages: ${need[*]} (install them with apt-get)" >&2
    exit 1
  fi
fi
