#!/usr/bin/env bash
# Installs the real servers and clients that Ferry's tests start (see docs/testing.md).
# Idempotent: prints nothing when everything is present, one line per thing it installs otherwise.
# Safe for CI (CI=true, no stdin): apt runs non-interactively.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

log() { printf 'install-test-deps: %s\n' "$*"; }

# Runs a command with its output kept aside, shown only if it fails: quiet on success, but a failure
# in CI still says why.
quietly() {
  local out
  out="$(mktemp)"
  if ! "$@" >"$out" 2>&1; then
    cat "$out" >&2
    rm -f "$out"
    echo "install-test-deps: failed: $*" >&2
    return 1
  fi
  rm -f "$out"
}

COSIGN_TMP=""
apt_updated=0
apt_install() {
  # Update the package lists once per run, and only when something is actually missing,
  # so a fully provisioned machine makes no network request at all.
  if [ "$apt_updated" -eq 0 ]; then
    quietly $SUDO apt-get update -qq
    apt_updated=1
  fi
  log "installing Debian package(s): $*"
  quietly $SUDO apt-get install -y -qq --no-install-recommends "$@"
}

missing=()
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v git >/dev/null 2>&1 || missing+=(git)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v unzip >/dev/null 2>&1 || missing+=(unzip)
# The SSH git server of the tests (test/support/sshd.ts) and the client Ferry drives. sshd lives
# in /usr/sbin, which a non-root PATH may lack: test the file itself.
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
for pkg in "${missing[@]}"; do
  apt_install "$pkg"
done

# sshd run as root refuses to start without its privilege separation directory, which the
# package's service would make, but its service never runs here, and /run empties at each boot.
if [ ! -d /run/sshd ]; then
  log "creating /run/sshd (sshd's privilege separation directory)"
  $SUDO install -d -m 0755 /run/sshd
fi

# The mirror the machine already uses for bookworm (deb822 or one-line format), so that no host
# name is hard-coded here and the trixie download goes through whatever mirror is reachable.
debian_mirror() {
  local f uri
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    f=/etc/apt/sources.list.d/debian.sources
    # First URI of a stanza whose URI is not the security archive.
    uri="$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f")"
    if [ -n "$uri" ]; then
      printf '%s\n' "$uri"
      return
    fi
  fi
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri="$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($i !~ /security/) { print $i; exit } else break } }' "$f")"
    if [ -n "$uri" ]; then
      printf '%s\n' "$uri"
      return
    fi
  done
  return 1
}

# Debian builds cosign without version ldflags ("GitVersion: devel"), so the version of the package
# we unpacked is kept in a stamp file beside the binary's install and read back when cosign says devel.
COSIGN_STAMP=/usr/local/share/ferry-test-deps/cosign.version

cosign_is_v2() {
  local v
  command -v cosign >/dev/null 2>&1 || return 1
  v="$(cosign version 2>/dev/null | awk '/^GitVersion:/ { print $2 }')"
  case "$v" in
    v2.* | 2.*) return 0 ;;
    devel | "(devel)")
      [ "$(command -v cosign)" = /usr/local/bin/cosign ] && [ -f "$COSIGN_STAMP" ] &&
        grep -Eq '^2\.' "$COSIGN_STAMP"
      ;;
    *) return 1 ;;
  esac
}

install_cosign() {
  local mirror tmp arch deb
  mirror="$(debian_mirror)" || {
    echo "install-test-deps: cannot find the Debian mirror in /etc/apt sources" >&2
    exit 1
  }
  arch="$(dpkg --print-architecture)"
  tmp="$(mktemp -d)"
  COSIGN_TMP="$tmp"
  trap 'rm -rf "$COSIGN_TMP"' EXIT
  # apt drops to the _apt user for downloads; let it reach the private lists/cache dirs.
  chmod 755 "$tmp"
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/dl"
  if id _apt >/dev/null 2>&1; then
    chown -R _apt "$tmp/lists" "$tmp/cache" "$tmp/dl" 2>/dev/null || true
  fi
  printf 'deb [arch=%s signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s trixie main\n' \
    "$arch" "$mirror" >"$tmp/trixie.list"
  # Separate source list, lists dir and caches: the system's apt state never sees trixie.
  local -a apt_opts=(
    -o "Dir::Etc::sourcelist=$tmp/trixie.list"
    -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::Lists=$tmp/lists"
    -o "Dir::Cache=$tmp/cache"
    -o "APT::Get::List-Cleanup=0"
  )
  log "installing cosign from Debian trixie to /usr/local/bin/cosign"
  quietly $SUDO apt-get "${apt_opts[@]}" update -qq
  (cd "$tmp/dl" && quietly $SUDO apt-get "${apt_opts[@]}" download -qq cosign)
  deb="$(find "$tmp/dl" -maxdepth 1 -name 'cosign_*.deb' | head -n 1)"
  if [ -z "$deb" ]; then
    echo "install-test-deps: apt-get download cosign produced no .deb" >&2
    exit 1
  fi
  dpkg-deb -x "$deb" "$tmp/root"
  $SUDO install -m 0755 "$tmp/root/usr/bin/cosign" /usr/local/bin/cosign
  $SUDO mkdir -p "$(dirname "$COSIGN_STAMP")"
  dpkg-deb -f "$deb" Version | $SUDO tee "$COSIGN_STAMP" >/dev/null
  if ! cosign_is_v2; then
    echo "install-test-deps: installed cosign does not report version 2.x" >&2
    exit 1
  fi
}

cosign_is_v2 || install_cosign

# npm packages: installed when node_modules is missing or was installed from another lockfile
# (a stamp of the lockfile's hash is kept in node_modules), so a pull that changes dependencies
# never runs the suite against stale packages.
lock_stamp="$REPO_ROOT/node_modules/.ferry-lock-sha256"
lock_sha="$(sha256sum "$REPO_ROOT/package-lock.json" 2>/dev/null | cut -d' ' -f1 || true)"
if [ ! -x "$REPO_ROOT/node_modules/.bin/vitest" ] || [ "$(cat "$lock_stamp" 2>/dev/null || true)" != "$lock_sha" ]; then
  cd "$REPO_ROOT"
  if [ -f package-lock.json ]; then
    log "installing npm packages (npm ci)"
    npm_out="$(mktemp)"
    if ! npm ci --no-audit --no-fund --loglevel=error >"$npm_out" 2>&1; then
      # A lock file out of step with package.json must not leave CI without its tools: say so,
      # then resolve from package.json without rewriting the lock file.
      grep -m 12 '^npm error' "$npm_out" >&2 || tail -n 12 "$npm_out" >&2
      log "npm ci failed (is package-lock.json in sync with package.json? run node scripts/complete-lockfile.ts); falling back to npm install --no-save"
      quietly npm install --no-save --no-audit --no-fund --loglevel=error
    fi
    rm -f "$npm_out"
    printf '%s\n' "$lock_sha" >"$lock_stamp"
  else
    log "installing npm packages (npm install)"
    quietly npm install --no-audit --no-fund --loglevel=error
  fi
fi
